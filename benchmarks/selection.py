"""Selecting the number of experts on S-B (K* = 3): frequency of K̂ = K* over replicates as n grows,
for BIC, DSC and merge-truncate-merge (MATH.md §6-7).

- BIC and DSC: :func:`bayesmoe.inference.select_experts` (MM fits of K = 1..5; DSC on the
  dendrogram of the K̄ = 5 fit).
- MTM on MM fits ("MTM (MM)"): the K̄ = 5 MM fit of select_experts, refitted with the same seed
  (the MM fit is deterministic given the seed, so it is the same measure), reduced by
  :func:`merge_truncate_merge` with the default radius ω_n = (log n / n)^{1/8}, c = 1, r = 4.
- MTM on short NUTS posteriors ("MTM (NUTS)", part ``nuts``): an over-fitted K̄ = 5 NUTS fit at a
  few n (one replicate each; 2 chains × 150 + 150 draws), K̂ = mode of the posterior of K̃.

Run: python benchmarks/selection.py [--quick] [--part mm|nuts|all]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, seed_for, write_results  # noqa: E402

from bayesmoe.data import simulate  # noqa: E402
from bayesmoe.diagnostics import merge_truncate_merge, mixing_measure, num_experts_posterior  # noqa: E402
from bayesmoe.inference import fit_mle, sample, select_experts  # noqa: E402

K_TRUE, K_MAX = 3, 5
GRID = [200, 500, 1000, 2000, 4000]
REPLICATES = 5
MM = {"n_starts": 3, "max_iter": 300}
NUTS_GRID = [500, 2000]
NUTS = {"draws": 150, "tune": 150, "chains": 2}
METHODS = ("BIC", "DSC", "MTM (MM)")


def run_mm(grid, reps) -> pd.DataFrame:
    rows = []
    for rep in range(reps):
        for n in grid:
            t0 = time.perf_counter()
            X, y, _ = simulate("S-B", n, random_seed=seed_for("selection", rep, n))
            seed = seed_for("selection-mm", rep, n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = select_experts(X, y, K_MAX, random_seed=seed, **MM)
                # select_experts seeds fit K with the K-th integer of default_rng(seed)
                seed_k = int(np.random.default_rng(seed).integers(0, 2**63 - 1, size=K_MAX)[-1])
                top = fit_mle(X, y, K_MAX, random_seed=seed_k, **MM)
            if not np.isclose(top.loglik_, table.loc[K_MAX, "loglik"], rtol=1e-9):
                raise RuntimeError("the refitted K_max measure differs from select_experts' fit")
            mtm = merge_truncate_merge(top.measure_, n=n, random_seed=seed)
            rows.append({"replicate": rep, "n": n, "BIC": table.attrs["selected_bic"],
                         "AIC": table.attrs["selected_aic"], "ICL": table.attrs["selected_icl"],
                         "DSC": table.attrs["selected_dsc"],
                         "MTM (MM)": int(mtm.n_experts), "mtm_omega": mtm.measure.attrs["mtm_omega"],
                         "seconds": time.perf_counter() - t0})
            r = rows[-1]
            print(f"[mm] rep={rep} n={n}: BIC={r['BIC']} DSC={r['DSC']} MTM={r['MTM (MM)']} "
                  f"({r['seconds']:.1f}s)", flush=True)
    return pd.DataFrame(rows)


def run_nuts(grid, draws, tune) -> pd.DataFrame:
    rows = []
    for n in grid:
        t0 = time.perf_counter()
        X, y, _ = simulate("S-B", n, random_seed=seed_for("selection", 0, n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tr = sample(X, y, n_experts=K_MAX, draws=draws, tune=tune, chains=NUTS["chains"],
                        cores=1, random_seed=seed_for("selection-nuts", n), progressbar=False)
        pmf = num_experts_posterior(mixing_measure(tr), method="mtm", n=n,
                                    random_seed=seed_for("selection-mtm", n))
        rows.append({"replicate": 0, "n": n, "MTM (NUTS)": int(pmf.idxmax()),
                     **{f"p(K={k})": float(pmf.sel(n_experts=k)) for k in range(1, K_MAX + 1)},
                     "seconds": time.perf_counter() - t0})
        print(f"[nuts] n={n}: MTM mode={rows[-1]['MTM (NUTS)']} pmf={np.round(pmf.values, 2)} "
              f"({rows[-1]['seconds']:.0f}s)", flush=True)
    return pd.DataFrame(rows)


def frequencies(mm: pd.DataFrame) -> pd.DataFrame:
    methods = [m for m in (*METHODS, "AIC", "ICL") if m in mm]
    return mm.groupby("n")[methods].agg(lambda s: float(np.mean(s == K_TRUE)))


def figure(mm, nuts, path):
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.2))
    if mm is not None:
        f = frequencies(mm)
        for i, m in enumerate(METHODS):
            ax0.plot(f.index, f[m], "o-", color=f"C{i}", label=m)
        ax0.set(xscale="log", ylim=(-0.05, 1.05), xlabel="n",
                ylabel=f"frequency of K̂ = {K_TRUE}",
                title=f"S-B: selection of K* = 3 ({mm.replicate.nunique()} replicates per n)")
        ax0.legend()
        for i, m in enumerate(METHODS):
            c = mm.groupby(m).size()
            ax1.bar(np.array(c.index) + (i - 1) * 0.27, c.values, width=0.27, color=f"C{i}",
                    label=m)
    if nuts is not None and len(nuts):
        ax0.plot(nuts.n, (nuts["MTM (NUTS)"] == K_TRUE).astype(float), "s", ms=9, mfc="none",
                 color="C3", label="MTM (NUTS), 1 replicate")
        ax0.legend()
    ax1.set(xlabel="selected K (all n pooled)", ylabel="count", title="selected K")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--part", choices=("mm", "nuts", "all"), default="all")
    args = p.parse_args(argv)
    grid, reps = (GRID, REPLICATES) if not args.quick else ([150, 300], 1)
    ngrid, draws, tune = (NUTS_GRID, NUTS["draws"], NUTS["tune"]) if not args.quick \
        else ([300], 40, 40)
    stem = "selection_quick" if args.quick else "selection"
    t0 = time.perf_counter()
    mm = nuts = None
    meta = {"grid": grid, "replicates": reps, "mm": MM, "nuts_grid": ngrid,
            "nuts": {**NUTS, "draws": draws, "tune": tune}, "K_true": K_TRUE, "K_max": K_MAX}
    if args.part in ("mm", "all"):
        mm = run_mm(grid, reps)
        f = frequencies(mm)
        write_results(args.out, stem + "_mm", mm, {**meta, "frequency_correct": f.to_dict()})
        print(f.round(2).to_string())
    elif (args.out / f"{stem}_mm.csv").exists():
        mm = pd.read_csv(args.out / f"{stem}_mm.csv")
    if args.part in ("nuts", "all"):
        nuts = run_nuts(ngrid, draws, tune)
        write_results(args.out, stem + "_nuts", nuts, meta)
    elif (args.out / f"{stem}_nuts.csv").exists():
        nuts = pd.read_csv(args.out / f"{stem}_nuts.csv")
    figure(mm, nuts, args.out / f"{stem}.png")
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
