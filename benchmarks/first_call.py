"""First MLE fit in a fresh process, against one flexmix fit (issue 24, "first calls").

Every row is a new Python process (``subprocess``) that imports ``bayesmoe``, builds one case's data
and runs the default ``fit_mle`` twice with the same seed; it reports the import, the first fit,
the second fit and then the first access of ``measure_`` (the labelled Dataset, built on first
access), wall and CPU seconds, and which engine ran (``engine_``). The parent times the
whole process (interpreter start to exit, including an exit that waits for a compile). Modes:

- ``auto`` - the default: the numpy engine while the compiled (Numba) kernels are not loaded,
  their load started after the fit (``bayesmoe.inference.mle.mm_warmup``);
- ``blocking`` - ``BAYESMOE_MM_BACKGROUND=0``: "auto" waits for the compiled kernels, as every
  fit did before issue 24;
- ``numpy`` - ``engine="numpy"``: numba never imported;
- ``auto, no dask`` - ``auto`` in a process where ``import dask`` fails: xarray's first ``Dataset``
  imports ``dask.array`` when dask is installed (~0.2 CPU s of the first fit); dask is not a
  bayesmoe dependency (it is in this environment for the study runner's cluster).

Caches: ``warm`` (Numba's cache filled by an earlier process, as after one use) and, with
``--cold``, ``cold`` (an empty ``NUMBA_CACHE_DIR``: a new machine's first process; mcycle only,
the compile takes minutes on a loaded machine).

flexmix (R, ``Rscript``, run side by side in the same script when ``Rscript`` and flexmix are
installed): the same case as a mixture of experts with a softmax gate, ``flexmix(y ~ x, k = K,
concomitant = FLXPmultinom(~ x))`` (iris: ``model = FLXMRmultinom()``), one fit per seed; it
reports the fit of a fresh R process (after ``library(flexmix)``) and the median of three more fits,
and the parent times the whole Rscript process. The issue's quoted flexmix times (mcycle K = 3
2.33 s, NPreg K = 2 0.08 s, iris K = 2 12.3 s) are printed beside them.

Cases: mcycle K = 3 (``load_dataset("mcycle")``, n = 133), NPreg K = 2 (flexmix's ``NPreg``,
n = 200, ``yn`` on x and x², written from R to a temporary CSV; skipped without R), iris K = 2
(sepal length and width, 3 classes, categorical experts).

Run:  python benchmarks/first_call.py [--reps 3] [--cold] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUOTED_FLEXMIX = {"mcycle K=3": 2.33, "NPreg K=2": 0.08, "iris K=2": 12.3}

#: child-process code: X, y, K, fam of the case (reads `case`, `npreg` and `np`)
LOAD_CASE = """\
if case.startswith("mcycle"):
    from bayesmoe.data import load_dataset
    X, y, _ = load_dataset("mcycle"); K, fam = 3, "gaussian"
elif case.startswith("NPreg"):
    d = np.loadtxt(npreg, delimiter=",", skiprows=1)
    X, y, K, fam = np.column_stack([d[:, 0], d[:, 0] ** 2]), d[:, 1], 2, "gaussian"
else:
    from sklearn.datasets import load_iris
    ir = load_iris(); X, y, K, fam = ir.data[:, :2], ir.target, 2, "categorical"
"""

CHILD = (
    r"""
import json, sys, time, warnings
if sys.argv[4] == "nodask":  # an installation without dask (not a bayesmoe dependency)
    sys.modules["dask"] = None
t0, c0 = time.perf_counter(), time.process_time()
from bayesmoe.inference.mle.mm import fit_mle
import numpy as np
t1, c1 = time.perf_counter(), time.process_time()
case, backend, npreg = sys.argv[1], sys.argv[2], sys.argv[3]
"""
    + LOAD_CASE
    + r"""out = dict(import_wall=t1 - t0, import_cpu=c1 - c0)
warnings.simplefilter("ignore")
for i in (1, 2):
    t, c = time.perf_counter(), time.process_time()
    r = fit_mle(X, y, K, family=fam, random_seed=0, engine=backend)
    out[f"fit{i}_wall"], out[f"fit{i}_cpu"] = time.perf_counter() - t, time.process_time() - c
    out[f"fit{i}_engine"], out[f"fit{i}_ll"] = r.engine_, r.loglik_
t, c = time.perf_counter(), time.process_time()
r.measure_  # the labelled Dataset, built on first access (xarray's first Dataset: dask import)
out["measure_wall"], out["measure_cpu"] = time.perf_counter() - t, time.process_time() - c
print(json.dumps(out))
"""
)

R_CHILD = r"""
t0 <- proc.time()[["elapsed"]]
suppressMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
case <- args[1]
if (case == "mcycle K=3") {
  d <- MASS::mcycle; f <- accel ~ times; cf <- ~ times; K <- 3; mod <- FLXMRglm()
} else if (case == "NPreg K=2") {
  data(NPreg); d <- NPreg; f <- yn ~ x + I(x^2); cf <- ~ x + I(x^2); K <- 2; mod <- FLXMRglm()
} else {
  d <- iris; f <- Species ~ Sepal.Length + Sepal.Width
  cf <- ~ Sepal.Length + Sepal.Width; K <- 2; mod <- FLXMRmultinom()
}
t1 <- proc.time()[["elapsed"]]
one <- function(s) {
  set.seed(s); t <- proc.time()[["elapsed"]]
  m <- flexmix(f, data = d, k = K, model = mod, concomitant = FLXPmultinom(cf))
  c(proc.time()[["elapsed"]] - t, logLik(m))
}
a <- one(1); b <- sapply(2:4, one)
cat(t1 - t0, a[1], median(b[1, ]), max(c(a[2], b[2, ])), "\n")
"""


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln)
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def npreg_csv(tmp: Path) -> Path | None:
    """flexmix's NPreg (x, yn) written by R; None without Rscript/flexmix."""
    if shutil.which("Rscript") is None:
        return None
    path = tmp / "npreg.csv"
    code = (
        "suppressMessages(library(flexmix)); data(NPreg); "
        f"write.csv(NPreg[, c('x', 'yn')], '{path}', row.names = FALSE)"
    )
    r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    return path if r.returncode == 0 and path.exists() else None


def run_python(case: str, mode: str, cache_dir: str | None, npreg: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BAYESMOE_MM_BACKGROUND", None)
    if mode == "blocking":
        env["BAYESMOE_MM_BACKGROUND"] = "0"
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    backend = "numpy" if mode == "numpy" else "auto"
    dask = "nodask" if mode.endswith("no dask") else "dask"
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, case, backend, str(npreg), dask],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_wall"] = time.perf_counter() - t
    out["stderr"] = r.stderr.strip()
    return out


def run_flexmix(case: str) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    t = time.perf_counter()
    r = subprocess.run(["Rscript", "-e", R_CHILD, case], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        return None
    v = [float(x) for x in r.stdout.split()]
    return dict(library=v[0], fit1=v[1], fit_median=v[2], ll=v[3], process_wall=wall)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="fresh processes per row (median)")
    ap.add_argument("--cold", action="store_true", help="also empty-cache rows (mcycle)")
    ap.add_argument("--json", default=None, help="write every process's numbers here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="first_call-"))
    npreg = npreg_csv(tmp)
    cases = ["mcycle K=3", "iris K=2"] + (["NPreg K=2"] if npreg else [])
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {_cpu()}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; uptime: {up}"
    )
    run_python("mcycle K=3", "blocking", None, npreg)  # fill the default Numba cache (warm rows)
    rows, raw = [], []
    modes = ("auto", "blocking", "numpy", "auto, no dask")
    plan = [(c, m, "warm") for c in cases for m in modes]
    if args.cold:
        plan += [("mcycle K=3", m, "cold") for m in ("auto", "blocking")]
    for case in cases:
        fl = [run_flexmix(case) for _ in range(args.reps)]
        fl = [f for f in fl if f]
        if fl:
            med = {k: float(np.median([f[k] for f in fl])) for k in fl[0]}
            rows.append((case, "flexmix (R)", "-", med, _load()))
            raw.append(dict(case=case, mode="flexmix", runs=fl))
    for case, mode, cache in plan:
        runs = []
        for _ in range(1 if cache == "cold" else args.reps):
            cdir = tempfile.mkdtemp(prefix="numba-cold-") if cache == "cold" else None
            runs.append(run_python(case, mode, cdir, npreg))
            if cdir:
                shutil.rmtree(cdir, ignore_errors=True)
        med = {
            k: float(np.median([r[k] for r in runs]))
            for k in runs[0]
            if isinstance(runs[0][k], float)
        }
        med["engines"] = "/".join(sorted({f"{r['fit1_engine']},{r['fit2_engine']}" for r in runs}))
        med["stderr"] = runs[0]["stderr"][:120]
        rows.append((case, mode, cache, med, _load()))
        raw.append(dict(case=case, mode=mode, cache=cache, runs=runs))
    print(
        "\n| case | run | Numba cache | import s (wall / CPU) | first fit s (wall / CPU) | "
        "second fit s (wall / CPU) | first `measure_` s (wall / CPU) | engines (1st, 2nd) | "
        "whole process s | first fit / flexmix's (wall) | flexmix quoted s | load |"
    )
    print("|" + "---|" * 12)
    flex = {case: m["fit1"] for case, mode, _, m, _ in rows if mode.startswith("flexmix")}
    for case, mode, cache, m, load in rows:
        if mode.startswith("flexmix"):
            print(
                f"| {case} | flexmix (R) | - | library {m['library']:.2f} | {m['fit1']:.3f} | "
                f"{m['fit_median']:.3f} (median of 3) | - | - | {m['process_wall']:.2f} | 1 | "
                f"{QUOTED_FLEXMIX[case]} | {load} |"
            )
            continue
        print(
            f"| {case} | {mode} | {cache} | {m['import_wall']:.2f} / {m['import_cpu']:.2f} | "
            f"{m['fit1_wall']:.3f} / {m['fit1_cpu']:.3f} | {m['fit2_wall']:.3f} / "
            f"{m['fit2_cpu']:.3f} | {m['measure_wall']:.3f} / {m['measure_cpu']:.3f} | "
            f"{m['engines']} | {m['process_wall']:.2f} | "
            f"{m['fit1_wall'] / flex[case] if case in flex else float('nan'):.2f} | "
            f"{QUOTED_FLEXMIX[case]} | {load} |"
        )
    for case, mode, cache, m, _ in rows:
        if m.get("stderr"):
            print(f"stderr of {case} {mode} {cache}: {m['stderr']!r}")
    print(f"load average at the end: {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
