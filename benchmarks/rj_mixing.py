"""Reversible-jump mixing: bayesmoe's moves vs a naive ±1 birth/death with prior draws.

Usage::

    python benchmarks/rj_mixing.py [--n 1000] [--max-experts 6] [--chains 4] [--tune 1000]
                                   [--draws 2000] [--moves-per-step 5] [--seed 1]
    python benchmarks/rj_mixing.py --data iris --max-experts 4 ...   # categorical experts

``--data``: ``S-B`` (Gaussian experts, simulated, the default), ``S-D`` (simulated multinomial
experts, n = ``--n``), or scikit-learn's bundled ``iris`` / ``wine`` (no download; class codes
as the response, inputs standardised by the model). For categorical data the samplers are
``bayesmoe`` (anchor-cell birth, :mod:`bayesmoe.inference.rjmcmc.categorical`),
``bayesmoe-normal-birth`` (the same moves with the generic one-Normal birth) and ``naive``.

Both samplers run in the same process on the same data (S-B, n = 1000, seed 1), the same padded
random-K model (K − 1 ~ Poisson(1) truncated at K_max − 1), the same over-dispersed starts (chains
start at K spread over 1..K_max, active experts at the MM fit of that K) and the same NUTS step
for the continuous parameters:

- **bayesmoe**: ``ReversibleJump`` defaults (birth/death with the defensive data-informed
  proposal, split/merge, permutation; scales tuned during tuning) with ``moves_per_step`` moves
  per iteration;
- **naive**: birth/death only, the newborn expert drawn from the prior (``birth_prior_mix=1``),
  one move per iteration.

Reported per sampler: acceptance per move type, overall trans-dimensional acceptance, ESS of K
(arviz bulk ESS of ``n_experts``) per 10,000 iterations, p(K | y) pooled and per chain, the Ks
each chain visits, and wall time. Also the *ideal-proposal bound* on the trans-dimensional
acceptance implied by the pooled p(K | y): with detailed balance the flux between K and K+1 is
at most ``min(pi(K) P_up(K), pi(K+1) P_down(K+1))``, so the acceptance rate of any proposal is at
most ``2 * sum_K min(...)`` — when p(K | y) is concentrated on one K, no proposal can reach a high
trans-dimensional acceptance.
"""

from __future__ import annotations

import argparse
import json
import time

import arviz as az
import numpy as np

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, sample_random_k
from bayesmoe.inference.rjmcmc.moves import move_probabilities


def flux_bound(pk: np.ndarray, p_birth_death: float = 0.5) -> float:
    K_max = pk.size
    total = 0.0
    for K in range(1, K_max):
        up = sum(
            v
            for m, v in move_probabilities(K, K_max, p_birth_death).items()
            if m in ("birth", "split")
        )
        down = sum(
            v
            for m, v in move_probabilities(K + 1, K_max, p_birth_death).items()
            if m in ("death", "merge")
        )
        total += min(pk[K - 1] * up, pk[K] * down)
    return 2.0 * total


def load_data(name: str, n: int, seed: int):
    """(X, y, family, feature names, provenance) of a benchmark data set."""
    if name == "S-B":
        X, y, _ = simulate("S-B", n=n, random_seed=seed)
        return X, y, "gaussian", None, f"simulated S-B, n={n}, seed {seed}"
    if name == "mcycle":
        from bayesmoe.data import load_dataset

        X, y, _ = load_dataset("mcycle")
        return X, y, "gaussian", None, "bundled mcycle (MASS; n=133, d=1)"
    if name == "S-D":
        X, y, _ = simulate("S-D", n=n, random_seed=seed)
        return X, y, "categorical", None, f"simulated S-D (regime A), n={n}, seed {seed}"
    from sklearn import datasets

    base = "iris" if name == "iris2" else name
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine}[base]
    bunch = loader()
    cols = slice(0, 2) if name == "iris2" else slice(None)  # iris2: sepal length and width
    X = np.asarray(bunch.data, dtype=float)[:, cols]
    return (
        X,
        np.asarray(bunch.target, dtype=int),
        "categorical",
        list(bunch.feature_names)[cols],
        f"scikit-learn bundled {base} (n={X.shape[0]}, "
        f"d={X.shape[1]}, {len(bunch.target_names)} classes)",
    )


def _load() -> str:
    import os

    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def k_change_rate(k: np.ndarray) -> float:
    """Fraction of iterations (after tuning, per chain, pooled) at which K changed."""
    return float(np.mean(k[:, 1:] != k[:, :-1]))


def run(name, X, y, args, step_kwargs, sampler="step"):
    """Sample with one step configuration and summarise the mixing of K."""
    t0 = time.perf_counter()
    trace = sample_random_k(
        X,
        y,
        max_experts=args.max_experts,
        experts_prior=args.experts_prior,
        sampler=sampler,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        random_seed=args.seed,
        step_kwargs=step_kwargs,
        family=args.family,
        feature_names=args.feature_names,
    )
    wall = time.perf_counter() - t0
    acc = acceptance_summary(trace)
    k = trace["posterior"]["n_experts"].values
    ess = float(az.ess(k.astype(float))) if np.unique(k).size > 1 else float("nan")
    iters = args.chains * args.draws
    pk = k_posterior(trace).values
    per_chain = [np.bincount(c, minlength=args.max_experts + 1)[1:] / c.size for c in k]
    visited_ok = all(all(pc[j] > 0 for j in np.flatnonzero(pk >= 0.05)) for pc in per_chain)
    return {
        "sampler": name,
        "ess_k_per_second": None if np.isnan(ess) else round(ess / wall, 3),
        "k_change_rate_per_chain": [round(k_change_rate(c[None, :]), 4) for c in k],
        "wall_seconds": round(wall, 1),
        "init_seconds": round(float(trace.attrs["seconds_init"]), 1),  # the MM starts
        "sampling_seconds": round(float(trace.attrs["seconds_sampling"]), 1),
        "acceptance_per_move": {
            m: (None if np.isnan(v) else round(float(v), 4))
            for m, v in zip(acc["move"].values, acc["acceptance_rate"].values, strict=True)
        },
        "proposed_per_move": dict(
            zip(acc["move"].values.tolist(), acc["proposed"].values.tolist(), strict=True)
        ),
        "trans_dimensional_acceptance": round(acc.attrs["acceptance_rate"], 4),
        "ideal_proposal_bound": round(flux_bound(pk), 4),
        "ess_k": None if np.isnan(ess) else round(ess, 1),
        "ess_k_per_10k_iterations": None if np.isnan(ess) else round(ess * 1e4 / iters, 1),
        "k_change_rate": round(k_change_rate(k), 4),
        "p_k": [round(float(v), 4) for v in pk],
        "p_k_per_chain": [[round(float(v), 3) for v in pc] for pc in per_chain],
        "start_k": json.loads(trace.attrs["start_experts"]),
        "every_chain_visits_every_k_with_mass_ge_0.05": bool(visited_ok),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--max-experts", type=int, default=6)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--moves-per-step", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--birth-prior-mix",
        type=float,
        default=0.5,
        help="weight of the prior in bayesmoe's defensive birth proposal",
    )
    ap.add_argument(
        "--data", choices=["S-B", "S-D", "iris", "iris2", "wine", "mcycle"], default="S-B"
    )
    ap.add_argument("--experts-prior", default="poisson:1.0")
    ap.add_argument(
        "--only",
        choices=["bayesmoe", "bayesmoe-normal-birth", "naive", "compiled"],
        default=None,
    )
    ap.add_argument(
        "--compiled-moves", type=int, default=5, help="moves per sweep of the compiled sampler"
    )
    ap.add_argument(
        "--compiled-birth",
        choices=["prior", "anchors"],
        default=None,
        help="birth kernel of the compiled sampler (default: its own default)",
    )
    ap.add_argument(
        "--compiled-p-birth-death",
        type=float,
        default=None,
        help="share of birth/death among the compiled sampler's moves (default: its own, 0.5)",
    )
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"load at start: {_load()}", flush=True)
    X, y, args.family, args.feature_names, provenance = load_data(args.data, args.n, args.seed)
    print(f"data: {provenance}", flush=True)
    results = []
    if args.only in (None, "bayesmoe"):
        results.append(
            run(
                "bayesmoe",
                X,
                y,
                args,
                {"moves_per_step": args.moves_per_step, "birth_prior_mix": args.birth_prior_mix},
            )
        )
        print(json.dumps(results[-1]), flush=True)
    if args.family == "categorical" and args.only in (None, "bayesmoe-normal-birth"):
        results.append(
            run(
                "bayesmoe-normal-birth",
                X,
                y,
                args,
                {
                    "moves_per_step": args.moves_per_step,
                    "birth": "normal",
                    "birth_prior_mix": args.birth_prior_mix,
                },
            )
        )
        print(json.dumps(results[-1]), flush=True)
    if args.only in (None, "compiled"):
        results.append(
            run(
                "compiled (JAX: HMC within K, prior birth/death, split/merge)",
                X,
                y,
                args,
                {
                    "moves_per_step": args.compiled_moves,
                    **({"birth": args.compiled_birth} if args.compiled_birth else {}),
                    **(
                        {"p_birth_death": args.compiled_p_birth_death}
                        if args.compiled_p_birth_death is not None
                        else {}
                    ),
                },
                sampler="compiled",
            )
        )
        print(json.dumps(results[-1]), flush=True)
    if args.only in (None, "naive"):
        results.append(
            run(
                "naive ±1 birth/death, prior draws",
                X,
                y,
                args,
                {"p_birth_death": 1.0, "birth_prior_mix": 1.0, "tune": False},
            )
        )
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        import platform

        import pymc

        meta = {
            "data": provenance,
            "pymc": pymc.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(),
            "started": started,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "load_at_end": _load(),
        }
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "meta": meta, "results": results}, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
