"""Nested checks of the negative binomial and Student-t experts on real data (issue 21).

At the same K the negative binomial nests the Poisson (alpha -> 0) and the Student-t nests the
Gaussian (nu -> inf), so their maximum log-likelihoods must be at least the smaller family's. Each
row fits both families by ``fit_mle`` (``n_starts`` random starts each); the larger family is also
started from the smaller one's MLE (alpha = 1e-12, nu = 1000), so ">=" holds up to the
optimiser's tolerance, and the row says by how much the larger family gains.

Data: the count data sets of flexmix's vignettes (seizure with the log-exposure offset, patent,
fabricfault, bioChemists; CSVs exported from flexmix 2.3-18, provenance in the notes folder
``--data``) and mcycle (bundled). The gate is softmax on the expert covariates (this branch has no
separate gate covariates), so the Poisson rows are not flexmix's models (constant weights or other
concomitants); flexmix's printed numbers are quoted only where the model is the same.

    python benchmarks/families_nested.py [--data /work/notes/data] [--starts 30]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _counts(data: Path):
    out = {}
    s = pd.read_csv(data / "seizure.csv")
    tr = (s["Treatment"] == "Yes").to_numpy(float)
    ld = np.log(s["Day"].to_numpy(float))
    out["seizure"] = (
        np.column_stack([tr, ld, tr * ld]),
        s["Seizures"].to_numpy(),
        np.log(s["Hours"].to_numpy(float)),
        "Treatment*log(Day), offset log(Hours)",
    )
    p = pd.read_csv(data / "patent.csv")
    out["patent"] = (p[["lgRD"]].to_numpy(float), p["Patents"].to_numpy(), None, "lgRD")
    f = pd.read_csv(data / "fabricfault.csv")
    out["fabricfault"] = (
        np.log(f[["Length"]].to_numpy(float)),
        f["Faults"].to_numpy(),
        None,
        "log(Length)",
    )
    b = pd.read_csv(data / "bioChemists.csv")
    Xb = np.column_stack(
        [
            (b["fem"] == "Women").to_numpy(float),
            (b["mar"] == "Married").to_numpy(float),
            b[["kid5", "phd", "ment"]].to_numpy(float),
        ]
    )
    out["bioChemists"] = (Xb, b["art"].to_numpy(), None, "fem + mar + kid5 + phd + ment")
    return out


def _pair(X, y, K, small, large, extra, starts, offset=None):
    import bayesmoe as bm

    t0 = time.perf_counter()
    a = bm.fit_mle(X, y, K, family=small, offset=offset, n_starts=starts, random_seed=0)
    G = a.measure_.assign({extra[0]: ("expert", np.full(K, extra[1]))}).assign_attrs(family=large)
    b = bm.fit_mle(X, y, K, family=large, offset=offset, n_starts=starts, starts=[G], random_seed=0)
    secs = time.perf_counter() - t0
    viol = len(bm.inference.monotone_violations(b.loglik_trace_))
    return a, b, secs, viol


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/notes/data"))
    ap.add_argument("--starts", type=int, default=30)
    args = ap.parse_args(argv)
    import warnings

    import bayesmoe as bm

    warnings.simplefilter("ignore")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"Python {sys.version.split()[0]}, n_starts {args.starts}"
    )
    print(
        "| data | experts | K | smaller family: logLik (df) | larger family: logLik (df) | "
        "gain | larger's extra parameters | monotone violations | s |\n" + "|---" * 9 + "|"
    )
    rows = []
    if args.data.is_dir():
        for name, (X, y, off, desc) in _counts(args.data).items():
            for K in (1, 2, 3):
                a, b, secs, viol = _pair(
                    X, y, K, "poisson", "negbinomial", ("alpha", 1e-12), args.starts, off
                )
                alpha = ", ".join(f"{v:.3g}" for v in b.measure_["alpha"].values)
                rows.append(
                    f"| {name} (n={len(y)}) | {desc} | {K} | "
                    f"Poisson {a.loglik_:.4f} ({a.n_params_}) | "
                    f"NB {b.loglik_:.4f} ({b.n_params_}) | {b.loglik_ - a.loglik_:+.4f} | "
                    f"alpha {alpha} | {viol} | {secs:.1f} |"
                )
                print(rows[-1], flush=True)
    X, y, _ = bm.data.load_dataset("mcycle")
    Xq = np.column_stack([X[:, 0], X[:, 0] ** 2])
    for K in (2, 3, 4):
        a, b, secs, viol = _pair(Xq, y, K, "gaussian", "student-t", ("nu", 1000.0), args.starts)
        nu = ", ".join(f"{v:.3g}" for v in b.measure_["nu"].values)
        rows.append(
            f"| mcycle (n=133) | times + times² | {K} | Gaussian {a.loglik_:.4f} ({a.n_params_}) | "
            f"Student-t {b.loglik_:.4f} ({b.n_params_}) | {b.loglik_ - a.loglik_:+.4f} | "
            f"nu {nu} | {viol} | {secs:.1f} |"
        )
        print(rows[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
