"""Warm MLE fits against flexmix fits, side by side (issue 24: "a warm fit >= 10x faster").

``--processes`` Python processes per case (default 5, one after another) each load the compiled
kernels (``mm_warmup.wait()``), run three untimed fits and then ``--fits`` default ``fit_mle``
calls with seeds 0, 1, ...; a process's median moves by up to ~3 ms from one process to the next on
the 2-core VM, so the median over the processes is reported, with each process's. One Rscript
process per case runs two untimed flexmix fits and then as many timed ones (``set.seed(s)``, the
model of ``benchmarks/first_call.py``: softmax-gated, ``concomitant = FLXPmultinom``). Reported:
the median wall and CPU seconds per fit of each (CPU: ``time.process_time`` / R's user + system),
the median log-likelihood, and flexmix's median over bayesmoe's (wall and CPU). Cases and data are
first_call.py's (mcycle K = 3, NPreg K = 2 from R's flexmix, iris K = 2).

Run:  python benchmarks/warm_fit.py [--fits 30] [--processes 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_call import LOAD_CASE, QUOTED_FLEXMIX, ROOT, _cpu, _load, npreg_csv

CHILD = (
    r"""
import json, sys, time, warnings
import numpy as np
from bayesmoe.inference.mle import mm_warmup
from bayesmoe.inference.mle.mm import fit_mle
case, npreg, n_fits = sys.argv[1], sys.argv[2], int(sys.argv[3])
"""
    + LOAD_CASE
    + r"""warnings.simplefilter("ignore")
mm_warmup.start(); mm_warmup.wait()
for s in range(3):
    fit_mle(X, y, K, family=fam, random_seed=s)
wall, cpu, ll, eng = [], [], [], set()
for s in range(n_fits):
    t, c = time.perf_counter(), time.process_time()
    r = fit_mle(X, y, K, family=fam, random_seed=s)
    wall.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    ll.append(r.loglik_); eng.add(r.engine_)
print(json.dumps(dict(wall=float(np.median(wall)), cpu=float(np.median(cpu)),
                      ll=float(np.median(ll)), engine="/".join(sorted(eng)))))
"""
)

R_CHILD = r"""
suppressMessages(library(flexmix))
args <- commandArgs(trailingOnly = TRUE)
case <- args[1]; nf <- as.integer(args[2])
if (case == "mcycle K=3") {
  d <- MASS::mcycle; f <- accel ~ times; cf <- ~ times; K <- 3; mod <- FLXMRglm()
} else if (case == "NPreg K=2") {
  data(NPreg); d <- NPreg; f <- yn ~ x + I(x^2); cf <- ~ x + I(x^2); K <- 2; mod <- FLXMRglm()
} else {
  d <- iris; f <- Species ~ Sepal.Length + Sepal.Width
  cf <- ~ Sepal.Length + Sepal.Width; K <- 2; mod <- FLXMRmultinom()
}
one <- function(s) {
  set.seed(s); p <- proc.time()
  m <- flexmix(f, data = d, k = K, model = mod, concomitant = FLXPmultinom(cf))
  q <- proc.time() - p
  c(q[["elapsed"]], q[["user.self"]] + q[["sys.self"]], logLik(m))
}
invisible(sapply(1000:1001, one))
r <- sapply(seq_len(nf) - 1, one)
cat(median(r[1, ]), median(r[2, ]), median(r[3, ]), "\n")
"""


def run_python(case: str, npreg: Path | None, n_fits: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BAYESMOE_MM_BACKGROUND", None)
    r = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(npreg), str(n_fits)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_flexmix(case: str, n_fits: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    r = subprocess.run(
        ["Rscript", "-e", R_CHILD, case, str(n_fits)], capture_output=True, text=True
    )
    if r.returncode != 0:
        return None
    wall, cpu, ll = (float(x) for x in r.stdout.split())
    return dict(wall=wall, cpu=cpu, ll=ll)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=30, help="timed fits per case (median)")
    ap.add_argument(
        "--processes",
        type=int,
        default=5,
        help="bayesmoe processes per case (a process's median moves by ~1.5 ms between "
        "processes on the 2-core VM): the median over processes is reported, with their range",
    )
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="warm_fit-"))
    npreg = npreg_csv(tmp)
    cases = ["mcycle K=3", "iris K=2"] + (["NPreg K=2"] if npreg else [])
    up = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {_cpu()}; uptime: {up}")
    print(
        "\n| case | bayesmoe warm fit ms (wall / CPU) | CPU ms per process | engine | log-lik "
        "| flexmix fit ms (wall / CPU) | log-lik | flexmix / bayesmoe (wall / CPU) "
        "| flexmix quoted s | load |"
    )
    print("|" + "---|" * 10)
    for case in cases:
        fl = run_flexmix(case, args.fits)
        runs = [run_python(case, npreg, args.fits) for _ in range(args.processes)]
        py = dict(runs[0], **{k: float(np.median([r[k] for r in runs])) for k in ("wall", "cpu")})
        per = " ".join(f"{1e3 * r['cpu']:.1f}" for r in runs)
        if fl is None:
            fcol, ratio, fll = "-", "-", "-"
        else:
            fcol = f"{1e3 * fl['wall']:.1f} / {1e3 * fl['cpu']:.1f}"
            ratio = f"{fl['wall'] / py['wall']:.1f} / {fl['cpu'] / py['cpu']:.1f}"
            fll = f"{fl['ll']:.2f}"
        print(
            f"| {case} | {1e3 * py['wall']:.1f} / {1e3 * py['cpu']:.1f} | {per} | {py['engine']} | "
            f"{py['ll']:.2f} | {fcol} | {fll} | {ratio} | {QUOTED_FLEXMIX[case]} | {_load()} |",
            flush=True,
        )
    print(f"load average at the end: {_load()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
