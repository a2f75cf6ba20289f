"""MM at small n: the whole default multi-start MM fit against 40 restarts of an EM baseline.

Target of issue 10: the whole default `fit_mle` (all its starts, the criteria, the output),
measured as a ratio against one EM fit of the same model on the same data in the same script,
is >= 10x faster than one fit of R's flexmix, whose times on this kind of machine are quoted in the
issue (FLEXMIX_SECONDS below), and its best log-likelihood is >= the best of 40 EM restarts.

Established EM software (flexmix, MoEClust, meteorits) cannot be installed here (no R, no CRAN),
so the EM is the stand-in of ``benchmarks/mm_speed.py`` (imported, not copied): E-step, then an
exact M-step up to Newton tolerance (gate and categorical experts by Newton/IRLS with step halving,
<= 25 inner steps; Gaussian experts by weighted least squares), tol 1e-8 relative, <= EM_CAP
iterations. That is the algorithm flexmix runs, in numpy; it is not flexmix.

Cases (``CASES``): mcycle (``load_dataset("mcycle")``, n = 133, K = 2 and 3), S-A (1-D synthetic
regression, K = 2) at n = 200 and n = 20 000, and iris from scikit-learn with two features,
sepal length and sepal width (n = 150, 3 classes, K = 2 multinomial-logistic experts), with the
default ridge 0 and with ridge 1 (as benchmarks/classification.py).

Protocol per case:

- EM: 40 starts from bayesmoe's initialiser (2/3 k-means++-seeded partitions of (x, y), 1/3 random
  partitions), each run to convergence; best log-likelihood = the EM reference; the median time
  of one EM fit is the unit of the ratio.
- MM: ``fit_mle(X, y, K, family=..., random_seed=s)`` with every default (10 starts, SQUAREM,
  numba engine, safeguarded Newton steps, pruning after 10 cycles to the best 20%, flat-ridge
  stop) for N_SEEDS seeds; wall and CPU (process) time of the whole call, log-likelihood,
  survivors, convergence.
- The machine is shared (load average printed with every case): wall times are inflated by the
  other jobs; the CPU time of our single-threaded process is the closer estimate of an idle
  machine's wall time.

Also measured (``jit_cost``): the one-off cost of the compiled engine in a fresh process — numba
import + loading the cached machine code (warm cache) or compiling it (cold cache, a temporary
NUMBA_CACHE_DIR), with ``BAYESMOE_MM_BACKGROUND=0`` (the default "auto" runs the numpy engine until
the kernels are loaded; ``benchmarks/first_call.py`` times that).

Run:  python benchmarks/mm_classic.py            (about 10 minutes on the shared 2-core machine)
      python benchmarks/mm_classic.py --quick    (3 seeds, 10 EM restarts, no n = 20 000)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mm_speed import em_fit

from bayesmoe.data import load_dataset, simulate
from bayesmoe.inference.mle import mm_updates as mu
from bayesmoe.inference.mle import mm_warmup
from bayesmoe.inference.mle.mm import _initial_theta, fit_mle
from bayesmoe.scaling import Standardizer

TOL_EM = 1e-8
N_RESTARTS = 40
EM_CAP = 2000
N_SEEDS = 10
#: a default MM fit "reaches" the EM reference when its log-likelihood is at most this far below
#: it (nats): far below any difference that changes a model choice.
REACH_TOL = 1e-3
#: one flexmix fit on this kind of machine, seconds (quoted in issue 10; S-A n=200 from its text)
FLEXMIX_SECONDS = {
    "mcycle K=3": 2.33,
    "S-A n=20000 K=2": 1.74,
    "iris (sepal) K=2": 12.3,
    "iris (sepal) K=2 ridge 1": 12.3,
    "S-A n=200 K=2": 0.08,
}


def _cpu() -> str:
    try:
        return (
            subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
            .stdout.split(":", 1)[1]
            .strip()
        )
    except (IndexError, OSError):
        return platform.processor() or "unknown"


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cases(quick: bool) -> dict:
    from sklearn.datasets import load_iris

    Xm, ym, _ = load_dataset("mcycle")
    iris = load_iris()
    Xi, yi = iris.data[:, :2], iris.target  # sepal length, sepal width
    out = {
        "mcycle K=2": (Xm, ym, 2, "gaussian", 0.0),
        "mcycle K=3": (Xm, ym, 3, "gaussian", 0.0),
        "S-A n=200 K=2": (*simulate("S-A", n=200, random_seed=0)[:2], 2, "gaussian", 0.0),
        "iris (sepal) K=2": (Xi, yi, 2, "categorical", 0.0),
        "iris (sepal) K=2 ridge 1": (Xi, yi, 2, "categorical", 1.0),
    }
    if not quick:
        out["S-A n=20000 K=2"] = (*simulate("S-A", n=20000, random_seed=0)[:2], 2, "gaussian", 0.0)
    return out


def em_restarts(X, y, K, family, ridge, n_restarts, seed=0):
    """40 EM fits from bayesmoe's initialiser; log-likelihoods (user units) and times."""
    n = X.shape[0]
    gauss = family == "gaussian"
    st = Standardizer.from_data(X, y if gauss else None)
    Xt = np.column_stack([np.ones(n), st.transform_X(X)])
    M = 0 if gauss else int(y.max()) + 1
    prob = mu.make_problem(
        family, Xt, Xt.copy(), st.transform_y(y) if gauss else y, K, M=M, ridge=ridge
    )
    thetas = _initial_theta(prob, n_restarts, np.random.default_rng(seed))
    log_sy = np.log(st.y_scale) if gauss else 0.0
    ll, wall, cpu, conv = [], [], [], []
    for s in range(n_restarts):
        t0, c0 = time.perf_counter(), time.process_time()
        th, f, _it, cv, _ = em_fit(prob, thetas[s : s + 1], tol=TOL_EM, max_iter=EM_CAP)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        pen = mu.penalty(prob, prob.layout.unpack(th))[0]
        ll.append(f + pen - n * log_sy)  # unpenalised log-likelihood, as MMResult.loglik_
        conv.append(cv)
    return np.array(ll), np.array(wall), np.array(cpu), np.array(conv)


def mm_defaults(X, y, K, family, ridge, n_seeds):
    rows = []
    fit_mle(X, y, K, family=family, ridge=ridge, random_seed=0)  # warm: numba cache loaded
    mm_warmup.start()  # "auto" runs numpy until the kernels are loaded: time loaded fits only
    mm_warmup.wait()
    for s in range(n_seeds):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always", UserWarning)
            t0, c0 = time.perf_counter(), time.process_time()
            res = fit_mle(X, y, K, family=family, ridge=ridge, random_seed=s)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            dict(
                seed=s,
                ll=res.loglik_,
                wall=wall,
                cpu=cpu,
                conv=res.converged_,
                it=res.n_iter_,
                surv=res.n_survivors_,
                starts=len(res.all_starts_loglik_),
                warned=len(w) > 0,
            )
        )
    return rows


def jit_cost() -> dict:
    """First fit in a fresh process: warm numba cache (as after installation + one run) and cold
    cache (a new NUMBA_CACHE_DIR: what a user's very first fit on a new machine pays)."""
    code = (
        "import time, warnings; warnings.simplefilter('ignore'); t=time.perf_counter();"
        "c=time.process_time(); import numba; t1=time.perf_counter(); c1=time.process_time();"
        "from bayesmoe.inference.mle.mm import fit_mle; from bayesmoe.data import load_dataset;"
        "from sklearn.datasets import load_iris; X,y,_=load_dataset('mcycle');"
        "ir=load_iris(); t2=time.perf_counter(); c2=time.process_time();"
        "fit_mle(X,y,3,random_seed=0); fit_mle(ir.data[:,:2],ir.target,2,family='categorical',"
        "random_seed=0); t3=time.perf_counter(); c3=time.process_time();"
        "fit_mle(X,y,3,random_seed=0); fit_mle(ir.data[:,:2],ir.target,2,family='categorical',"
        "random_seed=0); t4=time.perf_counter(); c4=time.process_time();"
        "print(t1-t, c1-c, t3-t2, c3-c2, t4-t3, c4-c3)"
    )
    out = {}
    # the compiled engine's cost: "auto" waits for it (its default runs numpy until the kernels
    # are loaded: benchmarks/first_call.py measures that)
    block = {"BAYESMOE_MM_BACKGROUND": "0"}
    for label, env in (("warm cache", {}), ("cold cache", {"NUMBA_CACHE_DIR": tempfile.mkdtemp()})):
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, **block, **env},
            check=True,
        )
        v = [float(x) for x in r.stdout.split()]
        out[label] = dict(
            import_wall=v[0],
            import_cpu=v[1],
            first_wall=v[2],
            first_cpu=v[3],
            second_wall=v[4],
            second_cpu=v[5],
        )
    return out


def report(name, em, mm, flex) -> dict:
    ll_em, wall_em, cpu_em, conv_em = em
    best = float(ll_em.max())
    lls = np.array([r["ll"] for r in mm])
    w = np.median([r["wall"] for r in mm])
    c = np.median([r["cpu"] for r in mm])
    reached = int((lls >= best - REACH_TOL).sum())
    S = mm[0]["starts"]
    summary = dict(
        case=name,
        em_best=best,
        em_reached=int((ll_em >= best - REACH_TOL).sum()),
        em_conv=int(conv_em.sum()),
        em_wall=float(np.median(wall_em)),
        em_cpu=float(np.median(cpu_em)),
        mm_min=float(lls.min()),
        mm_max=float(lls.max()),
        mm_reached=reached,
        seeds=len(mm),
        mm_wall=float(w),
        mm_cpu=float(c),
        ratio_wall=float(np.median(wall_em) / w),
        ratio_cpu=float(np.median(cpu_em) / c),
        survivors=sorted({r["surv"] for r in mm}),
        starts=S,
        conv=int(sum(r["conv"] for r in mm)),
        warned=int(sum(r["warned"] for r in mm)),
        iters=float(np.median([r["it"] for r in mm])),
        flexmix=flex,
        load=_load(),
    )
    budget = f"{flex / 10:.3f}" if flex else "-"
    met_t = (
        "-"
        if not flex
        else ("met" if c <= flex / 10 else "not met")
        + " (CPU), "
        + ("met" if w <= flex / 10 else "not met")
        + " (wall)"
    )
    print(
        f"| {name} | {best:.4f} | {summary['em_reached']}/{len(ll_em)} | "
        f"{summary['em_wall']:.3f} / {summary['em_cpu']:.3f} | "
        f"{lls.min():.4f} .. {lls.max():.4f} | {reached}/{len(mm)} | "
        f"{w:.3f} / {c:.3f} | {1e3 * c / S:.1f} | {summary['survivors']} of {S} | "
        f"{summary['conv']}/{len(mm)} | {summary['iters']:.0f} | "
        f"{summary['ratio_wall']:.2f} / {summary['ratio_cpu']:.2f} | {flex or '-'} | "
        f"{budget} | {met_t} | {summary['load']} |",
        flush=True,
    )
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, 10 EM restarts, small n only")
    ap.add_argument("--json", default=None, help="write the summaries to this file")
    args = ap.parse_args(argv)
    n_seeds, n_restarts = (3, 10) if args.quick else (N_SEEDS, N_RESTARTS)
    import numba
    import scipy

    print(
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {_cpu()}; "
        f"Python {platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}; "
        f"scipy {scipy.__version__}; load average at start {_load()}; EM: {n_restarts} restarts, "
        f"tol {TOL_EM}, cap {EM_CAP}; MM: {n_seeds} seeds of the default fit"
    )
    print(
        "\n| case | EM best of restarts | EM reached | EM one fit s (wall / CPU) | "
        "MM default log-lik (min .. max) | MM reached EM best | MM whole fit s (wall / CPU) | "
        "ms CPU per start | survivors | MM converged | MM median iterations | "
        "ratio EM one fit / MM whole (wall / CPU) | flexmix s | budget s | target | load |"
    )
    print("|" + "---|" * 16)
    out = []
    for name, (X, y, K, family, ridge) in cases(args.quick).items():
        em = em_restarts(X, y, K, family, ridge, n_restarts)
        mm = mm_defaults(X, y, K, family, ridge, n_seeds)
        out.append(report(name, em, mm, FLEXMIX_SECONDS.get(name)))
    jc = jit_cost()
    print("\nOne-off cost of the compiled engine in a fresh process (mcycle K=3 + iris fits):")
    print(
        "| numba cache | import numba s (wall / CPU) | first two fits s (wall / CPU) | "
        "same two fits again s (wall / CPU) |"
    )
    print("|---|---|---|---|")
    for k, v in jc.items():
        print(
            f"| {k} | {v['import_wall']:.2f} / {v['import_cpu']:.2f} | {v['first_wall']:.2f} / "
            f"{v['first_cpu']:.2f} | {v['second_wall']:.2f} / {v['second_cpu']:.2f} |"
        )
    print(f"load average at the end {_load()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cases": out, "jit": jc}, indent=1))


if __name__ == "__main__":
    main()
