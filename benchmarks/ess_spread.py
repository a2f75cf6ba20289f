"""Min-ESS spread of the default NUTS fit over sampler seeds, on several S-B data sets.

Issue 24's warm-up target: on each of 3 S-B data seeds (n = 1000, K = 3, 2 chains x 1000 draws,
as benchmarks/nuts_speed.py), the minimum over 6 sampler seeds of the min bulk ESS is at least
0.8x their median. A wide spread means the warm-up sometimes leaves a slow direction (a gate
slope) badly scaled.

ESS is computed as in nuts_speed.py (its ``_summarise``: the standardised-scale parameters, the
gate as sum-to-zero vectors, relabelled, min bulk ESS over all scalars). One process per
(variant, data seed) runs the 6 sampler seeds in turn after one untimed warm-up fit (the spread
is about ESS; whole-process times are nuts_speed.py's job). Reported per fit: min ESS, max R-hat,
divergences, sampling seconds (in-process, loaded machine).

Variants are keyword sets of :func:`bayesmoe.inference.sample` (``VARIANTS``). The shrinkage of
the adapted mass matrices towards the Hessian start was measured with commit 1aad980's version of
this script and of ``jax_nuts`` (benchmarks/README.md) and did not win; neither did the later
variants here (a longer warm-up with a higher target acceptance, 4 chains, expert parameters
scaled by their expert's gate mass, with and without the lightest expert's gate slopes, chains'
mass-matrix windows pooled, twice the draws): README rows.

Usage::

    python benchmarks/ess_spread.py --variants default fixed-hessian --data-seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from nuts_speed import CHAINS, DRAWS, N_OBS, PARAMS, K, _summarise
from stan_compare import quantities

#: name -> keyword arguments of sample() (besides data, K, seed; draws and chains default to
#: nuts_speed.py's DRAWS and CHAINS)
VARIANTS = {
    "default": {},
    "tune600": {"tune": 600},
    "tune1000": {"tune": 1000},
    "fixed-hessian": {"adapt_mass_matrix": False},
    "diag": {"dense_mass": False},
    "accept90": {"target_accept": 0.9},
    "accept95": {"target_accept": 0.95},
    "tune1000-accept90": {"tune": 1000, "target_accept": 0.9},
    # more chains: the chains run in parallel on the CPU devices (2 here)
    "chains4-500": {"chains": 4, "draws": 500},
    "chains4": {"chains": 4},
    # expert parameters scaled by their expert's gate mass (bayesmoe/inference/nuts/reparam.py)
    "gate-scaled": {"reparam": "gate-scaled"},
    # every chain's dense mass window pooled over the chains (jax_nuts._pool_windows)
    "pooled": {"pool_mass": True},
    "pooled-tune600": {"pool_mass": True, "tune": 600},
    "pooled-gate-scaled": {"pool_mass": True, "reparam": "gate-scaled"},
    # and the lightest expert's gate slopes scaled by its intercepts' weight
    "gate-scaled-slopes": {"reparam": "gate-scaled-slopes"},
    "gate-scaled-slopes-pooled": {"reparam": "gate-scaled-slopes", "pool_mass": True},
    "gate-scaled-slopes-accept90": {"reparam": "gate-scaled-slopes", "target_accept": 0.9},
    # the stretch capped: rho -> (rho + 0.05) / 1.05 (at most sqrt(21) = 4.6x)
    "gate-scaled-slopes-capped": {"reparam": "gate-scaled-slopes-capped"},
    "gate-scaled-slopes-capped-accept90": {
        "reparam": "gate-scaled-slopes-capped",
        "target_accept": 0.9,
    },
    "gate-scaled-slopes-noshift-accept90": {
        "reparam": "gate-scaled-slopes-noshift",
        "target_accept": 0.9,
    },
    # twice the draws (is the spread a matter of run length?)
    "draws2000": {"draws": 2000},
}


def spread_text(ess, width: int = 5) -> str:
    """``ESS e1 e2 ...  median m  min/median r`` for one set of per-run min ESS values."""
    import numpy as np

    ess = np.asarray(ess, float)
    return (
        f"ESS {' '.join(f'{e:{width}.0f}' for e in ess)}  median {np.median(ess):{width}.0f}  "
        f"min/median {ess.min() / np.median(ess):.2f}"
    )


def run_worker(script: str, args: list[str], what: str) -> None:
    """Run ``script`` with ``args`` in a fresh process on 2 host devices; raise if it fails."""
    env = dict(os.environ)
    env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    cmd = [sys.executable, script, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{r.stderr[-3000:]}")


def _worker(variant: str, data_seed: int, seeds: list[int], out: str) -> None:
    import arviz as az
    import numpy as np

    from bayesmoe.data import simulate
    from bayesmoe.inference import sample

    X, y, _ = simulate("S-B", n=N_OBS, random_seed=data_seed)
    kw = dict(VARIANTS[variant])
    kw.setdefault("draws", DRAWS)
    kw.setdefault("chains", CHAINS)
    rows = []
    for seed in [None, *seeds]:  # the first fit warms the caches (not reported)
        t0 = time.perf_counter()
        trace = sample(
            X,
            y,
            n_experts=K,
            random_seed=0 if seed is None else seed,
            progressbar=False,
            **kw,
        )
        wall = time.perf_counter() - t0
        if seed is None:
            continue
        post = trace.posterior
        npz = f"{out}-{seed}.npz"
        np.savez(npz, **{k: post[k].values for k in PARAMS})
        s = _summarise(npz)
        # the same ESS over label-invariant quantities (no relabelling), as stan_compare.py
        std = {k.removesuffix("_std"): post[k].values for k in PARAMS}
        q = quantities(std, X, y)
        s["min_ess_invariant"] = float(
            min(az.ess({"v": v}, method="bulk")["v"].min() for v in q.values())
        )
        rows.append(
            dict(
                s,
                seed=seed,
                divergences=int(trace.sample_stats["diverging"].sum()),
                fit_seconds=wall,
                seconds_sampling=float(trace.attrs.get("seconds_sampling", np.nan)),
                tune=int(trace.attrs.get("tune", -1)),
            )
        )
    Path(out).write_text(json.dumps(rows))


def main() -> None:
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker")
    p.add_argument("--out")
    p.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    p.add_argument("--data-seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    p.add_argument("--json", default=str(HERE / "results" / "ess_spread.json"))
    args = p.parse_args()
    if args.worker:
        _worker(args.worker, args.data_seeds[0], args.seeds, args.out)
        return
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="ess-spread-") as wd:
        for variant in args.variants:
            for ds in args.data_seeds:
                out = str(Path(wd) / f"{variant}-{ds}.json")
                load = os.getloadavg()[0]
                worker = ["--worker", variant, "--out", out, "--data-seeds", str(ds)]
                worker += ["--seeds", *map(str, args.seeds)]
                run_worker(__file__, worker, f"{variant} data seed {ds}")
                rows = json.loads(Path(out).read_text())
                ess = np.array([row["min_ess_bulk"] for row in rows])
                inv = np.array([row["min_ess_invariant"] for row in rows])
                res = dict(
                    variant=variant,
                    data_seed=ds,
                    load_1min=load,
                    rows=rows,
                    median=float(np.median(ess)),
                    min=float(ess.min()),
                    min_over_median=float(ess.min() / np.median(ess)),
                    invariant_min_over_median=float(inv.min() / np.median(inv)),
                    mean_sampling_seconds=float(np.mean([w["seconds_sampling"] for w in rows])),
                )
                results.append(res)
                print(
                    f"{variant:<14} data {ds}: {spread_text(ess)}  "
                    f"max R-hat {max(w['max_rhat'] for w in rows):.3f}  "
                    f"div {sum(w['divergences'] for w in rows)}  invariant "
                    f"{spread_text(inv)}  "
                    f"sampling {res['mean_sampling_seconds']:.2f} s  load {load:.1f}",
                    flush=True,
                )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
