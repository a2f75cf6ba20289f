"""Galaxy data: reversible jump under the Richardson–Green prior against their Table 1; MM BIC.

Runs ``sample_random_k`` on the 82 galaxy velocities (X of shape (82, 0)) with
``priors="richardson-green"``, ``experts_prior="uniform"`` and k_max = 30 (Richardson & Green
1997, §5.1 and Table 1), and reports p(k | y) with its Monte Carlo standard error (from the ESS of
each indicator 1{k = j}), the ESS of k, the acceptance per move type and the wall time; then the
mclust-style BIC (2 loglik − p log n, higher is better; unequal variances, p = 3K − 1) of the MM
fits for K = 1..8. Results: ``benchmarks/results/galaxy.json`` and the k chains in
``galaxy_k.npz``. A statistical study, not a speed measurement: run it under ``nice``.

    nice -n 15 python benchmarks/galaxy.py [--chains 4 --draws 25000 --tune 2000] [--quick]

``--cli`` instead times the whole ``bayesmoe fit`` process of issue 23 (galaxy, RG prior,
k_max 30, 2 chains x (1000 + 5000), seed 4) for the compiled sampler and the step method side by
side, each a fresh process run one after the other (``--samplers``; ``--cold`` empties the JAX
caches first): wall and CPU time of the process (CPU: user + system of the child, the fair
measure on a shared machine), sampling seconds, ESS and R-hat of k, p(k | y) for
k = 3..8 against Table 1, acceptance per move, the 1-minute load before and after. Results:
``benchmarks/results/galaxy_cli.json``.

    python benchmarks/galaxy.py --cli [--samplers compiled step] [--cold]
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import arviz as az
import numpy as np

import bayesmoe
from bayesmoe.data import load_dataset
from bayesmoe.inference import select_experts
from bayesmoe.inference.rjmcmc import acceptance_summary, sample_random_k

RESULTS = Path(__file__).resolve().parent / "results"

#: Richardson & Green (1997) Table 1, galaxy data, p(k | y) for k = 1..14 (k ~ U{1..30}).
RG_TABLE1 = np.array(
    [
        0.000,
        0.000,
        0.061,
        0.128,
        0.182,
        0.199,
        0.160,
        0.109,
        0.071,
        0.040,
        0.023,
        0.013,
        0.006,
        0.003,
    ]
)


def k_summary(k_chains: np.ndarray, k_max: int) -> dict:
    """p(k | y), the MC standard error of each p_k (indicator ESS) and the ESS of k itself."""
    p, se, ess_ind = [], [], []
    for j in range(1, k_max + 1):
        ind = (k_chains == j).astype(float)
        pj = float(ind.mean())
        e = float(az.ess(ind)) if 0 < pj < 1 else float(ind.size)
        p.append(pj)
        ess_ind.append(e)
        se.append(float(np.sqrt(pj * (1 - pj) / max(e, 1.0))))
    return {
        "p": p,
        "se": se,
        "ess_indicator": ess_ind,
        "ess_k_bulk": float(az.ess(k_chains.astype(float))),
        "ess_k_mean": float(az.ess(k_chains.astype(float), method="mean")),
        "rhat_k": float(az.rhat(k_chains.astype(float))),
    }


def run_rj(
    chains: int,
    draws: int,
    tune: int,
    moves_per_step: int,
    seed: int,
    k_max: int = 30,
    on_chain=None,
) -> tuple[dict, np.ndarray]:
    """One chain at a time (over-dispersed starts: K spread over 1..k_max), so that a partial
    result is saved after every chain (``on_chain(result, k)``)."""
    X, y, _ = load_dataset("galaxy")
    starts = np.linspace(1, k_max, chains).round().astype(int).tolist() if chains > 1 else [5]
    ks, counts, seconds, out = [], None, 0.0, {}
    for c in range(chains):
        t0 = time.perf_counter()
        trace = sample_random_k(
            X,
            y,
            max_experts=k_max,
            experts_prior="uniform",
            priors="richardson-green",
            draws=draws,
            tune=tune,
            chains=1,
            cores=1,
            random_seed=seed + c,
            start_experts=starts[c],
            step_kwargs={"moves_per_step": moves_per_step},
            progressbar=False,
        )
        seconds += time.perf_counter() - t0
        ks.append(np.asarray(trace["posterior"]["n_experts"].values, dtype=int)[0])
        acc = acceptance_summary(trace)
        c_counts = acc[["proposed", "accepted"]]
        counts = c_counts if counts is None else counts + c_counts
        k = np.stack(ks)
        rate = counts["accepted"] / counts["proposed"]
        out = {
            "chains": len(ks),
            "draws": draws,
            "tune": tune,
            "moves_per_step": moves_per_step,
            "seed": seed,
            "k_max": k_max,
            "sampler": trace.attrs["sampler"],
            "seconds": seconds,
            "start_experts": starts[: len(ks)],
            "acceptance": {
                str(m): {
                    "proposed": int(counts["proposed"].sel(move=m)),
                    "accepted": int(counts["accepted"].sel(move=m)),
                    "rate": float(rate.sel(move=m)),
                }
                for m in counts["move"].values
            },
            "acceptance_overall": float(counts["accepted"].sum() / counts["proposed"].sum()),
            **k_summary(k, k_max),
        }
        if on_chain is not None:
            on_chain(out, k)
    return out, np.stack(ks)


def mclust_bic(max_k: int = 8, seed: int = 0) -> list[dict]:
    """mclust-style BIC = 2 loglik - p log n of MM fits (unequal variances), K = 1..max_k."""
    X, y, _ = load_dataset("galaxy")
    table = select_experts(X, y, max_k, n_starts=20, random_seed=seed)
    n = y.size
    rows = []
    for K, row in table.iterrows():
        rows.append(
            {
                "K": int(K),
                "loglik": float(row["loglik"]),
                "n_params": int(row["n_params"]),
                "bic_mclust": float(2 * row["loglik"] - row["n_params"] * np.log(n)),
                "converged": bool(row["converged"]),
            }
        )
    return rows


def markdown(result: dict) -> str:
    """The benchmarks/README.md rows of a results file: p(k | y) beside RG's Table 1 with the
    tolerance of tests/rjmcmc/test_galaxy_rg.py (z = 3.19, se_RG taken equal to ours), the
    acceptance per move type, and the BIC table."""
    from scipy import stats

    rj = result["rj"]
    z = stats.norm.ppf(1 - 0.01 / (2 * RG_TABLE1.size))
    lines = [
        "| k | bayesmoe p(k given y) ± MC se | RG (1997) Table 1 | difference | tolerance |",
        "|---|---|---|---|---|",
    ]
    for j, rg in enumerate(RG_TABLE1):
        p, se = rj["p"][j], rj["se"][j]
        tol = z * np.sqrt(2) * se + 0.0005
        lines.append(f"| {j + 1} | {p:.3f} ± {se:.3f} | {rg:.3f} | {p - rg:+.3f} | {tol:.3f} |")
    rest = float(np.sum(rj["p"][14:]))
    lines.append(f"| >= 15 | {rest:.3f} | ~0.005 | | |")
    lines += ["", "| move | proposed | accepted | rate |", "|---|---|---|---|"]
    for m, a in rj["acceptance"].items():
        lines.append(f"| {m} | {a['proposed']} | {a['accepted']} | {a['rate']:.3f} |")
    if "bic" in result:
        lines += ["", "| K | log L (MM) | p | BIC = 2 log L - p log n |", "|---|---|---|---|"]
        best = max(result["bic"], key=lambda r: r["bic_mclust"])["K"]
        for r in result["bic"]:
            mark = " (best)" if r["K"] == best else ""
            lines.append(
                f"| {r['K']} | {r['loglik']:.2f} | {r['n_params']} | {r['bic_mclust']:.2f}{mark} |"
            )
    return "\n".join(lines)


def run_cli(sampler: str, workdir: Path, *, cold: bool = False, seed: int = 4) -> dict:
    """One ``bayesmoe fit`` process (issue 23's command) with ``--rj-sampler sampler``."""
    import os
    import shutil
    import subprocess
    import sys

    import xarray as xr

    _, y, _ = load_dataset("galaxy")
    csv = workdir / "galaxy.csv"
    csv.write_text("velocity\n" + "\n".join(repr(float(v)) for v in y) + "\n")
    out = workdir / f"out_{sampler}"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if cold:
        cache = workdir / "jaxcache_cold"
        shutil.rmtree(cache, ignore_errors=True)
        env["BAYESMOE_JAX_CACHE"] = str(cache)
    cmd = [
        sys.executable,
        "-c",
        "from bayesmoe.cli import main; main()",
        "fit",
        str(csv),
        "--target",
        "velocity",
        "--features",
        "none",
        "--priors",
        "richardson-green",
        "--experts-prior",
        "uniform:30",
        "--chains",
        "2",
        "--draws",
        "5000",
        "--tune",
        "1000",
        "--seed",
        str(seed),
        "--rj-sampler",
        sampler,
        "--out",
        str(out),
        "--quiet",
    ]
    import resource

    load_before = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"{sampler}: bayesmoe fit failed\n{proc.stderr[-2000:]}")
    trace = xr.open_datatree(out / "trace.nc", engine="h5netcdf")
    k = np.asarray(trace["posterior"]["n_experts"].values, dtype=int)
    summary = k_summary(k, 30)
    acc = acceptance_summary(trace)
    return {
        "sampler": sampler,
        "rj_sampler": str(trace.attrs.get("rj_sampler", "step")),
        "cold": cold,
        "process_s": wall,
        "process_cpu_s": cpu,
        "sampling_s": float(trace.attrs["seconds_sampling"]),
        "init_s": float(trace.attrs["seconds_init"]),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "ess_k": summary["ess_k_bulk"],
        "rhat_k": summary["rhat_k"],
        "ess_k_per_s": summary["ess_k_bulk"] / wall,
        "ess_k_per_cpu_s": summary["ess_k_bulk"] / cpu,
        "p": summary["p"],
        "se": summary["se"],
        "changed": [float(np.mean(np.diff(c) != 0)) for c in k],
        "acceptance": {
            str(m): float(acc["acceptance_rate"].sel(move=m)) for m in acc["move"].values
        },
    }


def cli_rows(rows: list[dict]) -> str:
    """README rows of the ``--cli`` comparison (ratios against the step method's row)."""
    ref = next((r for r in rows if r["sampler"] == "step"), None)
    lines = [
        "| sampler | caches | process s (wall) | process CPU s | sampling s | ESS of k | R-hat k "
        "| ESS/s | ESS/CPU s | x step (CPU) | p(k given y), k = 3..8 | load before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["ess_k_per_cpu_s"] / ref["ess_k_per_cpu_s"] if ref else float("nan")
        pk = ", ".join(f"{p:.3f}" for p in r["p"][2:8])
        lines.append(
            f"| {r['rj_sampler']} | {'cold' if r['cold'] else 'warm'} | {r['process_s']:.1f} "
            f"| {r['process_cpu_s']:.1f} | {r['sampling_s']:.1f} | {r['ess_k']:.0f} "
            f"| {r['rhat_k']:.3f} | {r['ess_k_per_s']:.1f} | {r['ess_k_per_cpu_s']:.1f} "
            f"| {ratio:.1f} | {pk} "
            f"| {r['load_before']:.1f} / {r['load_after']:.1f} |"
        )
    return "\n".join(lines)


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=25000)
    ap.add_argument("--tune", type=int, default=2000)
    ap.add_argument("--moves-per-step", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1997)
    ap.add_argument("--skip-bic", action="store_true")
    ap.add_argument("--quick", action="store_true", help="a short run: checks the script works")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--table", type=Path, help="print the README rows of a results JSON and exit")
    ap.add_argument("--cli", action="store_true", help="time whole `bayesmoe fit` processes")
    ap.add_argument("--samplers", nargs="+", default=["compiled", "step"])
    ap.add_argument("--cold", action="store_true", help="--cli: empty JAX caches first")
    a = ap.parse_args()
    if a.cli:
        import tempfile

        a.out.mkdir(parents=True, exist_ok=True)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for sampler in a.samplers:
                rows.append(run_cli(sampler, Path(tmp), cold=a.cold))
                print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("p", "se")}))
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
            "python": platform.python_version(),
            "bayesmoe": bayesmoe.__version__,
            "jax": __import__("jax").__version__,
        }
        name = "galaxy_cli_cold" if a.cold else "galaxy_cli"
        (a.out / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(cli_rows(rows))
        return
    if a.table is not None:
        print(markdown(json.loads(a.table.read_text())))
        return
    if a.quick:
        a.chains, a.draws, a.tune = 2, 300, 100
    a.out.mkdir(parents=True, exist_ok=True)
    import os

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
        "bayesmoe": bayesmoe.__version__,
    }
    import pymc

    meta["pymc"] = pymc.__version__
    name = "galaxy_quick" if a.quick else "galaxy"
    result = {"meta": meta, "rg_table1": RG_TABLE1.tolist()}

    def save(rj, k):
        meta["load_after"] = os.getloadavg()
        result["rj"] = rj
        (a.out / f"{name}.json").write_text(json.dumps(result, indent=1))
        np.savez_compressed(a.out / f"{name}_k.npz", k=k)

    if not a.skip_bic:
        result["bic"] = mclust_bic()
    rj, _k = run_rj(a.chains, a.draws, a.tune, a.moves_per_step, a.seed, on_chain=save)
    p = np.array(rj["p"])
    print(
        f"sampler {rj['sampler']}, {rj['chains']} x {rj['draws']} draws in {rj['seconds']:.0f} s;"
        f" ESS(k) bulk {rj['ess_k_bulk']:.0f}, R-hat {rj['rhat_k']:.3f}"
    )
    for j in range(14):
        print(f"k={j + 1:2d}  ours {p[j]:.3f} ± {rj['se'][j]:.3f}   RG {RG_TABLE1[j]:.3f}")
    print("k>=15:", round(float(p[14:].sum()), 4), "acceptance:", rj["acceptance"])
    for row in result.get("bic", []):
        print(row)


if __name__ == "__main__":
    main()
