"""K-sweep: NUTS fits of K = 1..5 experts on S-B (n = 1000), as a notebook user sweeping K does.

Each configuration runs the whole sweep in ONE fresh Python process (so compilation per K, or its
reuse, is counted), 2 chains x 1000 draws per K, on the same data (simulated by the driver, handed
over as an .npz file). Reported: total wall time of the process, seconds per K (the fit call), and
the min relabelled bulk ESS per K (computed by the driver outside the timing, as in
benchmarks/nuts_speed.py).

- ``numpyro-fast``: the hand-written NumPyro model of nuts_speed.py (reference-expert gate,
  MixtureSameFamily; K = 1 is the plain Gaussian regression), 1000 tuning steps, default init;
- ``bayesmoe``: ``bayesmoe.inference.sample(X, y, n_experts=K, chains=2)``, default path;
- ``bayesmoe-pymc`` (``--with-pymc``): the PyMC backend, 1000 tuning steps;
- ``bayesmoe-select``: what ``bayesmoe select --nuts --max-experts 5 --draws 1000`` runs:
  ``compare_experts(X, y, ks=range(1, 6), nuts=True, nuts_kwargs={"draws": 1000, "chains":
  2})`` (the MM table of K = 1..5, NUTS of every K from the table's starts, tune 500 as the CLI's
  default, LOO and the MTM posterior of K); "s per K" is each fit's compile wait plus sampling,
  the total is the whole process (the MM table included);
- ``bayesmoe-select-ref`` (``--ref-src DIR``): the same call with another checkout's bayesmoe
  on the path (e.g. the main branch before a change), for a before/after ratio in one run.

Usage::

    python benchmarks/k_sweep.py [--seed 1] [--with-pymc] [--configs ...] [--ref-src DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nuts_speed import PARAMS, _load, _standardise, _summarise

N_OBS, KS, DRAWS, TUNE, CHAINS = 1000, (1, 2, 3, 4, 5), 1000, 1000, 2
HERE = Path(__file__).resolve().parent


def _numpyro_fast(Xs, ys, K: int, seed: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    n, d = Xs.shape

    def model(Xs, ys):
        a = numpyro.sample("a", dist.Normal(0.0, 2.0).expand([d, K]).to_event(2))
        b = numpyro.sample("b", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0).expand([K]).to_event(1))
        comp = dist.Normal(Xs @ a + b, sigma)
        if K == 1:
            with numpyro.plate("obs", n):
                numpyro.sample("y", dist.Normal((Xs @ a + b)[:, 0], sigma[0]), obs=ys)
            return
        beta0 = numpyro.sample("beta0", dist.Normal(0.0, 3.0).expand([K - 1]).to_event(1))
        beta1 = numpyro.sample("beta1", dist.Normal(0.0, 3.0).expand([d, K - 1]).to_event(2))
        logits = jnp.concatenate([Xs @ beta1 + beta0, jnp.zeros((n, 1))], axis=-1)
        with numpyro.plate("obs", n):
            numpyro.sample(
                "y", dist.MixtureSameFamily(dist.Categorical(logits=logits), comp), obs=ys
            )

    mcmc = MCMC(
        NUTS(model),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="parallel",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), Xs, ys, extra_fields=("diverging",))
    s = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    lead = s["a"].shape[:2]
    if K == 1:
        s["beta0"], s["beta1"] = np.zeros(lead + (0,)), np.zeros(lead + (d, 0))
    out = {
        "beta0_std": np.concatenate([s["beta0"], np.zeros(lead + (1,))], -1),
        "beta1_std": np.concatenate([s["beta1"], np.zeros(lead + (d, 1))], -1),
        "a_std": s["a"],
        "b_std": s["b"],
        "sigma_std": s["sigma"],
    }
    out["divergences"] = np.asarray(int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum()))
    return out


def _bayesmoe(X, y, K: int, seed: int, backend: str) -> dict:
    import numpy as np

    from bayesmoe.inference import sample

    tr = sample(
        X,
        y,
        n_experts=K,
        draws=DRAWS,
        chains=CHAINS,
        backend=backend,
        tune=TUNE if backend == "pymc" else None,
        random_seed=seed,
        progressbar=False,
    )
    post = tr.posterior
    out = {}
    for k in PARAMS:
        v = post[k].values if k in post else None
        if v is None:  # K = 1 has no gate parameters
            v = np.zeros(
                post["a_std"].shape[:2] + ((1,) if k == "beta0_std" else (post.sizes["feature"], 1))
            )
        out[k] = v
    out["divergences"] = np.asarray(int(tr.sample_stats["diverging"].sum()))
    return out


def _select(X, y, seed: int, outdir: str, kind: str) -> dict:
    """``compare_experts`` with NUTS for every K (as ``bayesmoe select --nuts``); saves each K's
    draws like :func:`_bayesmoe` and returns per-K seconds, the LOO and MTM choices, warnings.
    """
    import warnings

    import numpy as np

    from bayesmoe.selection.compare import compare_experts

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table, fits = compare_experts(
            X,
            y,
            ks=range(1, max(KS) + 1),
            nuts=True,
            nuts_kwargs={"draws": DRAWS, "chains": CHAINS},
            random_seed=seed,
            progressbar=False,
            return_fits=True,
        )
    out = {"warnings": sorted({str(w.message)[:160] for w in caught})}
    for K, tr in fits["nuts"].items():
        post = tr.posterior
        res = {}
        for k in PARAMS:
            v = post[k].values if k in post else None
            if v is None:
                shape = (1,) if k == "beta0_std" else (post.sizes["feature"], 1)
                v = np.zeros(post["a_std"].shape[:2] + shape)
            res[k] = v
        res["divergences"] = np.asarray(int(tr.sample_stats["diverging"].sum()))
        np.savez(f"{outdir}/{kind}-K{K}.npz", **res)
        out[K] = float(tr.attrs.get("seconds_compile_wait", 0.0)) + float(
            tr.attrs["seconds_sampling"]
        )
        out[f"steps{K}"] = float(tr.sample_stats["n_steps"].mean())
        out[f"wait{K}"] = float(tr.attrs.get("seconds_compile_wait", 0.0))
    out["selected"] = {k: v for k, v in table.attrs["selected"].items() if v is not None}
    out["mm_seconds"] = float(table["seconds"].sum())
    return out


def _worker(kind: str, data: str, seed: int, outdir: str) -> None:
    import numpy as np

    t_start = time.perf_counter()
    X, y = _load(data)
    if kind.startswith("bayesmoe-select"):
        timings = _select(X, y, seed, outdir, kind)
        timings["in_process"] = time.perf_counter() - t_start
        Path(f"{outdir}/{kind}.json").write_text(json.dumps(timings))
        return
    timings = {}
    for K in KS:
        t0 = time.perf_counter()
        if kind == "numpyro-fast":
            Xs, ys = _standardise(X, y)
            res = _numpyro_fast(Xs, ys, K, seed)
        else:
            res = _bayesmoe(X, y, K, seed, "pymc" if kind == "bayesmoe-pymc" else "auto")
        timings[K] = time.perf_counter() - t0
        np.savez(f"{outdir}/{kind}-K{K}.npz", **res)
    timings["in_process"] = time.perf_counter() - t_start
    Path(f"{outdir}/{kind}.json").write_text(json.dumps(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--data")
    parser.add_argument("--outdir")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--with-pymc", action="store_true")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["numpyro-fast", "bayesmoe", "bayesmoe-select"],
        help="configurations to run, in this order (ratios against numpyro-fast, else the first)",
    )
    parser.add_argument("--ref-src", help="checkout whose bayesmoe runs bayesmoe-select-ref")
    parser.add_argument("--json", default=str(HERE / "results" / "k_sweep.json"))
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.data, args.seed, args.outdir)
        return
    import numpy as np

    from bayesmoe.data import simulate

    kinds = list(args.configs) + (["bayesmoe-pymc"] if args.with_pymc else [])
    if args.ref_src:
        kinds.append("bayesmoe-select-ref")
    rows = []
    with tempfile.TemporaryDirectory(prefix="k-sweep-") as wd:
        X, y, _ = simulate("S-B", n=N_OBS, random_seed=args.seed)
        data = f"{wd}/data.npz"
        np.savez(data, X=X, y=y)
        base_env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
        for kind in kinds:
            env = dict(base_env)
            if kind == "bayesmoe-select-ref":
                env["PYTHONPATH"] = str(Path(args.ref_src).resolve())
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    kind,
                    "--data",
                    data,
                    "--seed",
                    str(args.seed),
                    "--outdir",
                    wd,
                ],
                env=env,
                check=True,
            )
            wall = time.perf_counter() - t0
            per_k = json.loads(Path(f"{wd}/{kind}.json").read_text())
            row = {
                "name": kind,
                "process_seconds": wall,
                "load_1min": load,
                "seconds_per_k": {K: per_k[str(K)] for K in KS},
                "ess_per_k": {},
                "divergences_per_k": {},
                "load_after": os.getloadavg()[0],
            }
            for key in ("selected", "mm_seconds", "warnings"):
                if key in per_k:
                    row[key] = per_k[key]
            if "steps1" in per_k:
                row["mean_steps_per_k"] = {K: per_k[f"steps{K}"] for K in KS}
                row["compile_wait_per_k"] = {K: per_k[f"wait{K}"] for K in KS}
            for K in KS:
                npz = f"{wd}/{kind}-K{K}.npz"
                row["divergences_per_k"][K] = int(np.load(npz)["divergences"])
                row["ess_per_k"][K] = _summarise(npz)["min_ess_bulk"]
            rows.append(row)
            print(
                f"{kind:<14} total {wall:6.1f} s  load {load:.1f}-{row['load_after']:.1f}  per K "
                + " ".join(f"{row['seconds_per_k'][K]:.1f}" for K in KS)
                + (f"  selected {row['selected']}" if "selected" in row else ""),
                flush=True,
            )
    ref = next((r for r in rows if r["name"] == "numpyro-fast"), rows[0])["process_seconds"]
    print(
        "\n| configuration | total s | × numpyro-fast time | s per K (K = 1..5) "
        "| min ESS per K | divergences | load |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['process_seconds']:.1f} | {r['process_seconds'] / ref:.2f} | "
            + ", ".join(f"{r['seconds_per_k'][K]:.1f}" for K in KS)
            + " | "
            + ", ".join(f"{r['ess_per_k'][K]:.0f}" for K in KS)
            + " | "
            + ", ".join(str(r["divergences_per_k"][K]) for K in KS)
            + f" | {r['load_1min']:.1f}–{r['load_after']:.1f} |"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
