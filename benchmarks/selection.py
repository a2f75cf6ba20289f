"""Selecting the number of experts on S-B (K* = 3): frequency of K̂ = K* over replicates as n grows,
for BIC, DSC and merge-truncate-merge (docs/math.md §6-7).

- BIC and DSC: :func:`bayesmoe.inference.select_experts` (MM fits of K = 1..5; DSC on the
  dendrogram of the K̄ = 5 fit).
- MTM on MM fits ("MTM (MM)"): the K̄ = 5 MM fit of select_experts, refitted with the same seed
  (the MM fit is deterministic given the seed, so it is the same measure), reduced by
  :func:`merge_truncate_merge` with the radius ω_n = (log n / n)^{1/8}, c = 1, r = 4 (given
  explicitly: since 2026-12-02 MTM refuses a point estimate without an explicit radius).
- Part ``mtm-fit`` / ``mtm`` (issue 11): K̄ = 5 MM fits and two K̄ = 5 NUTS posteriors, then K̂ of
  MTM over radius constants C (ω_n = C (log n / n)^{1/8}) and c ∈ {0.5, 1}.
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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parser, seed_for, write_results

from bayesmoe.data import simulate
from bayesmoe.diagnostics import merge_truncate_merge, mixing_measure, num_experts_posterior
from bayesmoe.inference import fit_mle, sample, select_experts
from bayesmoe.selection.mtm import mtm_omega

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
            # a point estimate: MTM refuses the default radius, so it is passed explicitly
            mtm = merge_truncate_merge(top.measure_, omega=mtm_omega(n, 4.0), random_seed=seed)
            rows.append(
                {
                    "replicate": rep,
                    "n": n,
                    "BIC": table.attrs["selected_bic"],
                    "AIC": table.attrs["selected_aic"],
                    "ICL": table.attrs["selected_icl"],
                    "DSC": table.attrs["selected_dsc"],
                    "MTM (MM)": int(mtm.n_experts),
                    "mtm_omega": mtm.measure.attrs["mtm_omega"],
                    "seconds": time.perf_counter() - t0,
                }
            )
            r = rows[-1]
            print(
                f"[mm] rep={rep} n={n}: BIC={r['BIC']} DSC={r['DSC']} MTM={r['MTM (MM)']} "
                f"({r['seconds']:.1f}s)",
                flush=True,
            )
    return pd.DataFrame(rows)


def _nuts_fit(n, draws, tune):
    """The over-fitted K_MAX NUTS fit on the S-B data set of size n used by both NUTS parts."""
    X, y, _ = simulate("S-B", n, random_seed=seed_for("selection", 0, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = sample(
            X,
            y,
            n_experts=K_MAX,
            draws=draws,
            tune=tune,
            chains=NUTS["chains"],
            cores=1,
            random_seed=seed_for("selection-nuts", n),
            progressbar=False,
        )
    return tr


def run_nuts(grid, draws, tune) -> pd.DataFrame:
    rows = []
    for n in grid:
        t0 = time.perf_counter()
        tr = _nuts_fit(n, draws, tune)
        pmf = num_experts_posterior(
            mixing_measure(tr), method="mtm", n=n, random_seed=seed_for("selection-mtm", n)
        )
        rows.append(
            {
                "replicate": 0,
                "n": n,
                "MTM (NUTS)": int(pmf.idxmax()),
                **{f"p(K={k})": float(pmf.sel(n_experts=k)) for k in range(1, K_MAX + 1)},
                "seconds": time.perf_counter() - t0,
            }
        )
        print(
            f"[nuts] n={n}: MTM mode={rows[-1]['MTM (NUTS)']} pmf={np.round(pmf.values, 2)} "
            f"({rows[-1]['seconds']:.0f}s)",
            flush=True,
        )
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
        ax0.set(
            xscale="log",
            ylim=(-0.05, 1.05),
            xlabel="n",
            ylabel=f"frequency of K̂ = {K_TRUE}",
            title=f"S-B: selection of K* = 3 ({mm.replicate.nunique()} replicates per n)",
        )
        ax0.legend()
        for i, m in enumerate(METHODS):
            c = mm.groupby(m).size()
            ax1.bar(
                np.array(c.index) + (i - 1) * 0.27, c.values, width=0.27, color=f"C{i}", label=m
            )
    if nuts is not None and len(nuts):
        ax0.plot(
            nuts.n,
            (nuts["MTM (NUTS)"] == K_TRUE).astype(float),
            "s",
            ms=9,
            mfc="none",
            color="C3",
            label="MTM (NUTS), 1 replicate",
        )
        ax0.legend()
    ax1.set(xlabel="selected K (all n pooled)", ylabel="count", title="selected K")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Part "mtm": MTM's radius constant C on MM points and on posterior draws (issue 11)
# ---------------------------------------------------------------------------------------------
MTM_GRID = [500, 1000, 2000, 4000, 8000]
MTM_REPS = 4
MTM_C = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
MTM_SMALL_C = [0.5, 1.0]
MTM_NUTS_GRID = [1000]  # n = 4000 (K̄ = 5) did not finish in 10 min at load 19; stopped


def mtm_fits(grid, reps, nuts_grid, draws, tune, out: Path, stem: str) -> None:
    """K̄ = 5 MM fits (saved as one netCDF) and K̄ = 5 NUTS posteriors (one netCDF per n)."""
    fits = []
    for rep in range(reps):
        for n in grid:
            t0 = time.perf_counter()
            X, y, _ = simulate("S-B", n, random_seed=seed_for("selection", rep, n))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                top = fit_mle(X, y, K_MAX, random_seed=seed_for("mtm-mm", rep, n), **MM)
            fits.append(
                top.measure_.expand_dims(fit=[len(fits)]).assign_coords(
                    n=("fit", [n]), replicate=("fit", [rep])
                )
            )
            print(f"[mtm-mm] rep={rep} n={n} ({time.perf_counter() - t0:.1f}s)", flush=True)
            xr.concat(fits, "fit").to_netcdf(out / f"{stem}_mm.nc", engine="scipy")
    for n in nuts_grid:
        t0 = time.perf_counter()
        tr = _nuts_fit(n, draws, tune)
        mixing_measure(tr).to_netcdf(out / f"{stem}_nuts_{n}.nc", engine="scipy")
        print(f"[mtm-nuts] n={n} ({time.perf_counter() - t0:.0f}s)", flush=True)


def mtm_sweep(out: Path, nuts_grid, stem: str) -> pd.DataFrame:
    """K̂ of MTM over (C, c) for every saved MM point and every saved posterior."""
    rows = []
    mm = xr.open_dataset(out / f"{stem}_mm.nc", engine="scipy").load()
    for i in range(mm.sizes["fit"]):
        G = mm.isel(fit=i, drop=False)
        n, rep = int(G.n), int(G.replicate)
        G = G.drop_vars(["fit", "n", "replicate"])
        for C in MTM_C:
            for c in MTM_SMALL_C:
                k = merge_truncate_merge(
                    G, omega=mtm_omega(n, 4.0, C), c=c, random_seed=seed_for("mtm", rep, n)
                )
                rows.append(
                    {
                        "source": "MM point",
                        "n": n,
                        "replicate": rep,
                        "C": C,
                        "c": c,
                        "K_hat": int(k.n_experts),
                        "p_correct": float(k.n_experts == K_TRUE),
                    }
                )
    for n in nuts_grid:
        path = out / f"{stem}_nuts_{n}.nc"
        if not path.exists():
            continue
        G = xr.open_dataset(path, engine="scipy").load()
        for C in MTM_C:
            for c in MTM_SMALL_C:
                pmf = num_experts_posterior(
                    G,
                    method="mtm",
                    n=n,
                    c=c,
                    omega_scale=C,
                    random_seed=seed_for("selection-mtm", n),
                )
                rows.append(
                    {
                        "source": "NUTS posterior",
                        "n": n,
                        "replicate": 0,
                        "C": C,
                        "c": c,
                        "K_hat": int(pmf.idxmax()),
                        "p_correct": float(pmf.sel(n_experts=K_TRUE)),
                    }
                )
    return pd.DataFrame(rows)


def mtm_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Frequency of K̂ = K* (MM points: over replicates; posteriors: mode) by source, c, C and n."""
    hit = sweep.assign(hit=(sweep.K_hat == K_TRUE).astype(float))
    return hit.pivot_table(index=["source", "c", "C"], columns="n", values="hit", aggfunc="mean")


def mtm_figure(sweep: pd.DataFrame, path: Path) -> None:
    sources = list(dict.fromkeys(sweep.source))
    fig, axes = plt.subplots(1, len(sources), figsize=(6.2 * len(sources), 4.2), squeeze=False)
    for ax, src in zip(axes[0], sources, strict=True):
        sub = sweep[sweep.source == src]
        for i, n in enumerate(sorted(sub.n.unique())):
            for c, ls in zip(MTM_SMALL_C, ("--", "-"), strict=True):
                f = (
                    sub[(sub.n == n) & (sub.c == c)]
                    .groupby("C")
                    .K_hat.apply(lambda k: float(np.mean(k == K_TRUE)))
                )
                ax.plot(
                    f.index,
                    f.values,
                    ls,
                    marker="o",
                    color=f"C{i}",
                    label=f"n = {n}" if c == 1.0 else None,
                )
        ax.set(
            xlabel="radius constant C (ω_n = C (log n / n)^{1/8})",
            ylim=(-0.05, 1.05),
            ylabel=f"frequency of K̂ = {K_TRUE}",
            title=f"S-B, MTM on {src}s (solid c = 1, dashed c = 0.5)",
        )
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument(
        "--part",
        choices=("mm", "nuts", "all", "mtm-fit", "mtm"),
        default="all",
        help="mtm-fit: K̄ = 5 MM fits and NUTS posteriors for the MTM sweep; mtm: "
        "the sweep over the radius constant C (and c) on the saved fits",
    )
    args = p.parse_args(argv)
    if args.part in ("mtm-fit", "mtm"):
        grid, reps, ngrid = (
            (MTM_GRID, MTM_REPS, MTM_NUTS_GRID) if not args.quick else ([300, 600], 1, [])
        )
        stem = "selection_mtm" + ("_quick" if args.quick else "")
        args.out.mkdir(parents=True, exist_ok=True)
        if args.part == "mtm-fit":
            mtm_fits(grid, reps, ngrid, NUTS["draws"], NUTS["tune"], args.out, stem)
        sweep = mtm_sweep(args.out, ngrid, stem)
        write_results(
            args.out,
            stem,
            sweep,
            {
                "grid": grid,
                "replicates": reps,
                "mm": MM,
                "C": MTM_C,
                "c": MTM_SMALL_C,
                "nuts_grid": ngrid,
            },
        )
        mtm_figure(sweep, args.out / f"{stem}.png")
        print(mtm_table(sweep).to_string())
        return
    grid, reps = (GRID, REPLICATES) if not args.quick else ([150, 300], 1)
    ngrid, draws, tune = (
        (NUTS_GRID, NUTS["draws"], NUTS["tune"]) if not args.quick else ([300], 40, 40)
    )
    stem = "selection_quick" if args.quick else "selection"
    t0 = time.perf_counter()
    mm = nuts = None
    meta = {
        "grid": grid,
        "replicates": reps,
        "mm": MM,
        "nuts_grid": ngrid,
        "nuts": {**NUTS, "draws": draws, "tune": tune},
        "K_true": K_TRUE,
        "K_max": K_MAX,
    }
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
