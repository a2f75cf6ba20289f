"""bayesmoe's default NUTS fit against Stan on the same model and priors.

The model: bayesmoe's default fixed-K Gaussian mixture of experts (softmax gate, ZeroSumNormal
gate parameters, docs/math.md §2.1), written in Stan in ``benchmarks/stan/moe_gaussian.stan`` on
the same standardised scale (numpy mean and sd, ddof 0, of every input column and of y, as
:class:`bayesmoe.scaling.Standardizer`). Both run 4 chains x 1000 draws: bayesmoe with its
defaults (``sample(X, y, n_experts=K, chains=4)``: MM start, Hessian mass matrix, its default
tuning), Stan (PyStan 3, a benchmark-only dependency: ``pip install pystan``) with its defaults
(1000 warm-up iterations, random inits in (-2, 2), chains in parallel processes).

Every run is a fresh Python process, timed whole ("process seconds": interpreter, imports,
the model build or program load, start, sampling, and for bayesmoe the DataTree a user gets), and
its CPU seconds (user + system of the process and its children, Stan's chain processes included:
less sensitive than wall time to a machine shared with other work).
Caches are warm: one untimed run of each side per case first (Stan's compiled model sits in
httpstan's cache; bayesmoe's programs in the JAX cache), as a user's second call would find them.
The Stan worker never imports bayesmoe.

ESS, the same way for both (computed by the driver outside the timing): label-invariant
quantities on the standardised scale — the log predictive density log p(y_j | x_g) at 5 input
points x_g (the data rows at the 10/30/50/70/90 % quantiles of the first column) times 7
responses y_j in [-2, 2], E[y | x_g] at the 5 points, and the sorted noise sds — and the minimum
bulk ESS (ArviZ) over them; max R-hat over them. Posterior agreement: for each quantity
z = (mean_bayesmoe - mean_stan) / sqrt(mcse_bayesmoe^2 + mcse_stan^2); the posteriors agree when
max |z| < 4 (about 50 quantities: under agreement P(max |z| >= 4) < 50 * 6.3e-5 = 0.3 %, a
Bonferroni bound).

Cases: NPreg K = 2 (flexmix's ``NPreg``, n = 200, ``yn`` on x and x^2, written by R; skipped
without R and flexmix) and S-B K = 3 (``bayesmoe.data.simulate("S-B", n=1000)``, data seed 1 as
benchmarks/nuts_speed.py).

Usage::

    python benchmarks/stan_compare.py --seeds 1 2           # sampler seeds; table + JSON
    python benchmarks/stan_compare.py --cases npreg --seeds 1
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
STAN_FILE = HERE / "stan" / "moe_gaussian.stan"
CHAINS, DRAWS, STAN_WARMUP = 4, 1000, 1000
CASES = {"npreg": 2, "sb": 3}  # case -> K
NAMES = ("beta0", "beta1", "a", "b", "sigma")


# ----- worker side (a fresh process) --------------------------------------------------------------
def _standardise(X, y):
    Xs = (X - X.mean(0)) / X.std(0)
    ys = (y - y.mean()) / y.std()
    return Xs, ys


def _worker_stan(data: str, seed: int, build_only: bool) -> dict:
    import numpy as np
    import stan

    d = np.load(data)
    Xs, ys = _standardise(d["X"], d["y"])
    K = int(d["K"])
    stan_data = {"N": len(ys), "D": Xs.shape[1], "K": K, "X": Xs, "y": ys}
    t0 = time.perf_counter()
    posterior = stan.build(STAN_FILE.read_text(), data=stan_data, random_seed=seed)
    if build_only:
        return {"samples": {}}
    t1 = time.perf_counter()
    fit = posterior.sample(num_chains=CHAINS, num_samples=DRAWS, num_warmup=STAN_WARMUP)
    seconds = {"seconds_build": t1 - t0, "seconds_sampling": time.perf_counter() - t1}
    samples = {}
    for name in NAMES:
        v = np.asarray(fit[name])  # (*dims, chains * draws), chain by chain
        v = v.reshape(v.shape[:-1] + (CHAINS, DRAWS))
        samples[name] = np.moveaxis(np.moveaxis(v, -1, 0), -1, 0)  # (chain, draw, *dims)
    div = int(np.asarray(fit["divergent__"]).sum())
    return {"samples": samples, "divergences": div, **seconds}


def _worker_bayesmoe(data: str, seed: int) -> dict:
    import numpy as np

    from bayesmoe.inference import sample

    d = np.load(data)
    trace = sample(
        d["X"], d["y"], n_experts=int(d["K"]), chains=CHAINS, random_seed=seed, progressbar=False
    )
    post = trace.posterior
    samples = {k: post[f"{k}_std"].values for k in NAMES}
    div = int(trace.sample_stats["diverging"].sum())
    seconds = {k: float(v) for k, v in trace.attrs.items() if k.startswith("seconds_")}
    return {"samples": samples, "divergences": div, "tune": int(trace.attrs["tune"]), **seconds}


def _worker(kind: str, data: str, seed: int, out: str, build_only: bool) -> None:
    import numpy as np

    if kind == "stan":
        res = _worker_stan(data, seed, build_only)
    else:
        res = _worker_bayesmoe(data, seed)
    np.savez(out, **res.pop("samples"))
    Path(out + ".json").write_text(json.dumps(res))


# ----- driver side --------------------------------------------------------------------------------
def _npreg(workdir: Path):
    import numpy as np

    csv = workdir / "npreg.csv"
    r = subprocess.run(
        [
            "Rscript",
            "-e",
            f"library(flexmix); data(NPreg); write.csv(NPreg[, c('x', 'yn')], '{csv}', "
            "row.names = FALSE)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        return None
    d = np.loadtxt(csv, delimiter=",", skiprows=1)
    return np.column_stack([d[:, 0], d[:, 0] ** 2]), d[:, 1]


def _data(case: str, workdir: Path) -> str | None:
    import numpy as np

    if case == "npreg":
        xy = _npreg(workdir)
        if xy is None:
            return None
        X, y = xy
    else:
        from bayesmoe.data import simulate

        X, y, _ = simulate("S-B", n=1000, random_seed=1)
    path = workdir / f"data-{case}.npz"
    np.savez(path, X=X, y=y, K=CASES[case])
    return str(path)


def quantities(s: dict, X, y) -> dict:
    """Label-invariant quantities per draw, (chain, draw, q) arrays by name."""
    import numpy as np
    from scipy.special import log_softmax, logsumexp

    Xs, _ = _standardise(X, y)
    order = np.argsort(Xs[:, 0], kind="stable")
    xg = Xs[order[(np.array([0.1, 0.3, 0.5, 0.7, 0.9]) * (len(order) - 1)).astype(int)]]
    yg = np.linspace(-2.0, 2.0, 7)
    eta = np.einsum("gd,...dk->...gk", xg, s["beta1"]) + s["beta0"][..., None, :]
    log_g = log_softmax(eta, axis=-1)  # (c, s, G, K)
    mu = np.einsum("gd,...dk->...gk", xg, s["a"]) + s["b"][..., None, :]
    sig = s["sigma"][..., None, None, :]
    z = (yg[:, None, None] - mu[..., None, :, :]) / sig  # (c, s, J, G, K)
    comp = -0.5 * z**2 - np.log(sig) - 0.5 * np.log(2 * np.pi)
    logdens = logsumexp(log_g[..., None, :, :] + comp, axis=-1)  # (c, s, J, G)
    cond_mean = (np.exp(log_g) * mu).sum(-1)
    return {
        "log_density": logdens.reshape(logdens.shape[:2] + (-1,)),
        "cond_mean": cond_mean,
        "sorted_sigma": np.sort(s["sigma"], axis=-1),
    }


def _summary(q: dict) -> dict:
    import arviz as az
    import numpy as np

    out = {}
    for name, v in q.items():
        ds = {"v": v}
        out[name] = {
            "ess": np.asarray(az.ess(ds, method="bulk")["v"]),
            "rhat": np.asarray(az.rhat(ds)["v"]),
            "mean": v.mean((0, 1)),
            "mcse": np.asarray(az.mcse(ds, method="mean")["v"]),
        }
    return out


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes (and theirs: Stan's chains)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(kind: str, case: str, seed: int, data: str, workdir: Path, build_only=False) -> dict:
    import numpy as np

    out = str(workdir / f"{kind}-{case}-{seed}.npz")
    env = dict(os.environ)
    env.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--worker", kind, "--data", data, "--seed", str(seed)]
    cmd += ["--out", out] + (["--build-only"] if build_only else [])
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    if res.returncode != 0:
        raise RuntimeError(f"{kind} {case} failed:\n{res.stderr[-3000:]}")
    row = json.loads(Path(out + ".json").read_text())
    row.update(
        kind=kind,
        case=case,
        seed=seed,
        process_seconds=wall,
        process_cpu_seconds=cpu,
        load_1min=load,
    )
    if not build_only:
        d = np.load(data)
        s = dict(np.load(out))
        row["summary"] = _summary(quantities(s, d["X"], d["y"]))
        row["min_ess_bulk"] = float(min(v["ess"].min() for v in row["summary"].values()))
        row["max_rhat"] = float(max(v["rhat"].max() for v in row["summary"].values()))
        row["ess_per_process_second"] = row["min_ess_bulk"] / wall
        row["ess_per_cpu_second"] = row["min_ess_bulk"] / cpu
    return row


def _agreement(a: dict, b: dict) -> float:
    import numpy as np

    zs = [
        np.abs(a[k]["mean"] - b[k]["mean"]) / np.sqrt(a[k]["mcse"] ** 2 + b[k]["mcse"] ** 2)
        for k in a
    ]
    return float(max(z.max() for z in zs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("stan", "bayesmoe"))
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--json", default=str(HERE / "results" / "stan_compare.json"))
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.data, args.seed, args.out, args.build_only)
        return
    from importlib.metadata import version

    versions = {p: version(p) for p in ("pystan", "httpstan", "jax", "numpyro", "numpy")}
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {versions}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="stan-compare-") as wd:
        workdir = Path(wd)
        for case in args.cases:
            data = _data(case, workdir)
            if data is None:
                print(f"{case}: skipped (no R or flexmix)")
                continue
            _run("stan", case, 0, data, workdir, build_only=True)  # warm httpstan's cache
            _run("bayesmoe", case, 0, data, workdir)  # warm the JAX cache (untimed)
            for seed in args.seeds:
                pair = {k: _run(k, case, seed, data, workdir) for k in ("bayesmoe", "stan")}
                z = _agreement(pair["bayesmoe"]["summary"], pair["stan"]["summary"])
                ratio, ratio_cpu = (
                    pair["bayesmoe"][k] / pair["stan"][k]
                    for k in ("ess_per_process_second", "ess_per_cpu_second")
                )
                for kind, r in pair.items():
                    r.pop("summary")
                    r.update(max_abs_z=z, ratio_to_stan=ratio, ratio_to_stan_cpu=ratio_cpu)
                    rows.append(r)
                    print(
                        f"{case:<6} seed {seed} {kind:<9} min ESS {r['min_ess_bulk']:6.0f}  "
                        f"R-hat {r['max_rhat']:.3f}  div {r['divergences']}  process "
                        f"{r['process_seconds']:5.1f} s (sampling {r['seconds_sampling']:5.1f} s, "
                        f"CPU {r['process_cpu_seconds']:5.1f} s)  "
                        f"ESS/s {r['ess_per_process_second']:6.1f}"
                        f"  load {r['load_1min']:.1f}",
                        flush=True,
                    )
                print(
                    f"{case:<6} seed {seed}: bayesmoe/Stan ESS per process second {ratio:.2f}, "
                    f"per CPU second {ratio_cpu:.2f}  max|z| {z:.2f}"
                )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"versions": versions, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
