"""Contraction rates on S-A and S-B: MM fits over a grid of n (frequentist curve) and short NUTS
runs at a few n (posterior curve), against the rates of docs/math.md §4-5.

Per fit it records
- exact-fitted (K = K*): the Voronoi loss D1 and the expected Hellinger distance h̄ to the truth;
- over-fitted (K = K* + 1): D2, h̄, and the per-block errors of the over-fitted Voronoi cell (the
  cell holding two fitted atoms): mass-weighted mean of ‖(Δβ1, Δb)‖ and of ‖(Δa, Δσ²)‖ over the
  cell's atoms, and the cell's mass error |Σ p_i − p*_j|.
Slopes of log(mean over replicates) on log(n) come with 95% t-intervals
(bayesmoe.diagnostics.contraction_summary). Theory: D1, h̄, D2, masses −1/2; over-fitted cell
(β1, b) −1/8, (a, σ²) −1/4.

Losses are computed after centring the inputs (S-A: x − 0.5; S-B is centred already), since the
exp(β0) weights of docs/math.md §4 assume centred inputs; h̄ is invariant to this and uses 2000 fresh
inputs from the setting's input distribution.

Run: python benchmarks/contraction.py [--quick] [--part mm|nuts|all]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    cell_blocks,
    centre_inputs,
    fit,
    fmt_rate,
    loglog_panel,
    parser,
    perturbed_split,
    pooled_rate,
    rate,
    seed_for,
    write_results,
)

from bayesmoe.data import simulate
from bayesmoe.diagnostics import (
    expected_hellinger,
    mixing_measure,
    voronoi_cells,
    voronoi_loss,
)
from bayesmoe.inference import sample
from bayesmoe.measure import log_likelihood

SETTINGS = {"S-A": {"K": 2, "centre": [0.5]}, "S-B": {"K": 3, "centre": None}}
GRID = [500, 1000, 2000, 4000, 8000, 14000, 20000]
REPLICATES = 3
NUTS_GRID = [500, 1000, 2000, 4000]
NUTS = {"draws": 300, "tune": 300, "chains": 2, "thin_hellinger": 6, "n_x_hellinger": 500}
THEORY = {
    "D1": -0.5,
    "hellinger": -0.5,
    "D2": -0.5,
    "cell_beta1_b": -0.125,
    "cell_a_sigma2": -0.25,
    "cell_mass": -0.5,
    "hellinger_over": -0.5,
}


def centred(G, name):
    c = SETTINGS[name]["centre"]
    return G if c is None else centre_inputs(G, c)


def overfitted_cell(G, truth) -> dict:
    """Per-block errors of the over-fitted cell (size 2) of a K*+1 fit (NaN if none)."""
    cells = voronoi_cells(G, truth)
    size = cells.cell_size.values
    out = {"cell_sizes": "/".join(str(int(s)) for s in size)}
    j = np.flatnonzero(size == 2)
    if j.size != 1:
        return {**out, "cell_beta1_b": np.nan, "cell_a_sigma2": np.nan, "cell_mass": np.nan}
    j = int(j[0])
    members = cells.assignment.values == j
    p = cells.mass.values[members]
    top = np.hypot(cells.error_beta1.values[members], cells.error_b.values[members])
    bot = np.hypot(cells.error_a.values[members], cells.error_sigma2.values[members])
    return {
        **out,
        "cell_beta1_b": float(p @ top / p.sum()),
        "cell_a_sigma2": float(p @ bot / p.sum()),
        "cell_mass": float(abs(cells.mass_error.values[j])),
    }


def run_mm(grid, reps, quick) -> pd.DataFrame:
    rows = []
    for name, cfg in SETTINGS.items():
        X_h = simulate(name, 2000, random_seed=seed_for("contraction-xh", name))[0]
        for rep in range(reps):
            for n in grid:
                t0 = time.perf_counter()
                X, y, truth = simulate(name, n, random_seed=seed_for("contraction", name, rep, n))
                T = centred(truth, name)
                ex = fit(X, y, cfg["K"], seed_for("mm-exact", name, rep, n))
                ov = fit(
                    X,
                    y,
                    cfg["K"] + 1,
                    seed_for("mm-over", name, rep, n),
                    max_iter=150 if quick else 300,
                )
                row = {
                    "setting": name,
                    "replicate": rep,
                    "n": n,
                    "D1": float(voronoi_loss(centred(ex.measure_, name), T, kind="exact")),
                    "hellinger": float(expected_hellinger(ex.measure_, truth, X_h)),
                    "D2": float(voronoi_loss(centred(ov.measure_, name), T, kind="overfitted")),
                    "hellinger_over": float(expected_hellinger(ov.measure_, truth, X_h)),
                    "converged_exact": ex.converged_,
                    "converged_over": ov.converged_,
                }
                row.update(overfitted_cell(centred(ov.measure_, name), T))
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                print(
                    f"[mm] {name} rep={rep} n={n}: D1={row['D1']:.4f} h={row['hellinger']:.4f} "
                    f"D2={row['D2']:.4f} cells={row['cell_sizes']} ({row['seconds']:.1f}s)",
                    flush=True,
                )
    return pd.DataFrame(rows)


def run_nuts(grid, draws, tune) -> pd.DataFrame:
    rows = []
    for name, cfg in SETTINGS.items():
        X_h = simulate(
            name, NUTS["n_x_hellinger"], random_seed=seed_for("contraction-xh-nuts", name)
        )[0]
        for n in grid:
            t0 = time.perf_counter()
            X, y, truth = simulate(name, n, random_seed=seed_for("contraction", name, 0, n))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tr = sample(
                    X,
                    y,
                    n_experts=cfg["K"],
                    draws=draws,
                    tune=tune,
                    chains=NUTS["chains"],
                    cores=1,
                    random_seed=seed_for("nuts", name, n),
                    progressbar=False,
                )
            G = mixing_measure(tr)
            d1 = voronoi_loss(centred(G, name), centred(truth, name), kind="exact")
            h = expected_hellinger(
                G.isel(draw=slice(None, None, NUTS["thin_hellinger"])), truth, X_h
            )
            rows.append(
                {
                    "setting": name,
                    "n": n,
                    "D1_post_mean": float(d1.mean()),
                    "D1_q05": float(d1.quantile(0.05)),
                    "D1_q95": float(d1.quantile(0.95)),
                    "hellinger_post_mean": float(h.mean()),
                    "hellinger_q05": float(h.quantile(0.05)),
                    "hellinger_q95": float(h.quantile(0.95)),
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(
                f"[nuts] {name} n={n}: E[D1]={rows[-1]['D1_post_mean']:.4f} "
                f"E[h]={rows[-1]['hellinger_post_mean']:.4f} ({rows[-1]['seconds']:.0f}s)",
                flush=True,
            )
    return pd.DataFrame(rows)


def mm_rates(df: pd.DataFrame) -> dict:
    out = {}
    for name, sub in df.groupby("setting"):
        out[name] = {}
        grid = np.sort(sub.n.unique())
        for col, th in THEORY.items():
            v = sub.pivot(index="n", columns="replicate", values=col).loc[grid].values
            out[name][col] = rate(v, grid, theory=th)
    return out


def nuts_rates(df: pd.DataFrame) -> dict:
    out = {}
    for name, sub in df.groupby("setting"):
        sub = sub.sort_values("n")
        out[name] = {
            col: rate(sub[col].values, sub.n.values, theory=-0.5)
            for col in ("D1_post_mean", "hellinger_post_mean")
        }
    return out


def figure(mm: pd.DataFrame | None, nuts: pd.DataFrame | None, rates: dict, path: Path):
    cols = [
        ("D1", "exact-fitted D1"),
        ("hellinger", "expected Hellinger (K = K*)"),
        ("cell_beta1_b", "over-fitted cell ‖(Δβ1, Δb)‖"),
        ("cell_a_sigma2", "over-fitted cell ‖(Δa, Δσ²)‖"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))
    for i, name in enumerate(SETTINGS):
        for j, (col, title) in enumerate(cols):
            ax = axes[i, j]
            if mm is not None:
                sub = mm[mm.setting == name]
                ax.scatter(sub.n, sub[col], s=10, alpha=0.35, color="C0")
                m = sub.groupby("n")[col].mean()
                r = rates["mm"][name][col]
                ax.plot(m.index, m.values, "o-", color="C0", label=f"MM mean: slope {fmt_rate(r)}")
                if np.isfinite(r["slope"]):
                    g = np.array([m.index.min(), m.index.max()], float)
                    c = np.exp(np.mean(np.log(m.values[m.values > 0])))
                    gm = np.exp(np.mean(np.log(m.index.values.astype(float))))
                    ax.plot(
                        g,
                        c * (g / gm) ** r["theory"],
                        "k--",
                        lw=1,
                        label=f"theory slope {r['theory']:+.3g}",
                    )
            if nuts is not None and col in ("D1", "hellinger"):
                sub = nuts[nuts.setting == name]
                pc = col + "_post_mean" if col == "D1" else "hellinger_post_mean"
                lo = "D1_q05" if col == "D1" else "hellinger_q05"
                hi = "D1_q95" if col == "D1" else "hellinger_q95"
                r = rates["nuts"][name][pc]
                ax.errorbar(
                    sub.n,
                    sub[pc],
                    yerr=[sub[pc] - sub[lo], sub[hi] - sub[pc]],
                    fmt="s-",
                    color="C3",
                    capsize=3,
                    label=f"NUTS posterior mean: {fmt_rate(r)}",
                )
            ax.set(xscale="log", yscale="log", xlabel="n", title=f"{name}: {title}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Part "overfit": the over-fitted cell out to n = 10^5, block by block (issue 11)
# ---------------------------------------------------------------------------------------------
OVER_GRID = [1000, 3000, 10000, 30000, 100000]
OVER_REPS = {"S-A": 3, "S-B": 2}
OVER_REPS_CAP = {100000: 2}  # replicates at the largest n (CPU budget of the 2026-12-02 run)
OVER_FIT = {"n_starts": 2, "max_iter": 300}


def run_overfit(grid, reps, settings, out_csv) -> pd.DataFrame:
    """MLE of the K*+1 model (random + perturbed truth-split starts) at each n, block by block."""
    done = pd.read_csv(out_csv) if out_csv.exists() else pd.DataFrame()
    rows = done.to_dict("records")
    have = {(r["setting"], r["replicate"], r["n"]) for r in rows}
    for name in settings:
        K = SETTINGS[name]["K"]
        for rep in range(reps[name]):
            for n in grid:
                if (name, rep, n) in have or rep >= OVER_REPS_CAP.get(n, rep + 1):
                    continue  # resume: rows already in the table are kept
                t0 = time.perf_counter()
                X, y, truth = simulate(name, n, random_seed=seed_for("overfit", name, rep, n))
                T = centred(truth, name)
                rng = np.random.default_rng(seed_for("overfit-split", name, rep, n))
                splits = [perturbed_split(truth, k, rng) for k in range(K)]
                ov = fit(
                    X, y, K + 1, seed_for("overfit-mm", name, rep, n), starts=splits, **OVER_FIT
                )
                sp = fit(X, y, K + 1, 0, n_starts=0, starts=splits, max_iter=OVER_FIT["max_iter"])
                G = centred(ov.measure_, name)
                row = {
                    "setting": name,
                    "replicate": rep,
                    "n": n,
                    "D2": float(voronoi_loss(G, T, kind="overfitted")),
                    "D2_split_only": float(
                        voronoi_loss(centred(sp.measure_, name), T, kind="overfitted")
                    ),
                    "loglik": ov.loglik_,
                    "loglik_split_only": sp.loglik_,
                    "loglik_truth": float(log_likelihood(truth, X, y)),
                    "converged": ov.converged_,
                }
                row.update(cell_blocks(G, T))
                row["seconds"] = time.perf_counter() - t0
                rows.append(row)
                pd.DataFrame(rows).to_csv(out_csv, index=False)
                print(
                    f"[overfit] {name} rep={rep} n={n}: D2={row['D2']:.4g} cells="
                    f"{row['cell_sizes']} light mass={row['light_mass']:.3g} "
                    f"ll-ll*={row['loglik'] - row['loglik_truth']:.2f} "
                    f"split-only ll-ll*={row['loglik_split_only'] - row['loglik_truth']:.2f} "
                    f"({row['seconds']:.0f}s)",
                    flush=True,
                )
    return pd.DataFrame(rows)


OVER_QUANT = [
    ("D2", "D2", -0.5),
    ("top_term", "cell Σ p‖(Δβ1, Δb)‖^r̄", -0.5),
    ("bottom_term", "cell Σ p‖(Δa, Δσ²)‖^(r̄/2)", -0.5),
    ("heavy_a_sigma2", "heavy atom ‖(Δa, Δσ²)‖", -0.25),
    ("heavy_beta1_b", "heavy atom ‖(Δβ1, Δb)‖", -0.125),
    ("light_a_sigma2", "light atom ‖(Δa, Δσ²)‖", -0.25),
    ("light_beta1_b", "light atom ‖(Δβ1, Δb)‖", -0.125),
    ("light_mass", "light atom mass", None),
    ("cell_a_sigma2", "cell mass-weighted ‖(Δa, Δσ²)‖ (2026-11-30 quantity)", -0.25),
]


def overfit_derived(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for lab in ("heavy", "light"):
        df[f"{lab}_a_sigma2"] = np.hypot(df[f"{lab}_a"], df[f"{lab}_sigma2"])
        df[f"{lab}_beta1_b"] = np.hypot(df[f"{lab}_beta1"], df[f"{lab}_b"])
    df["cell_type"] = np.where(
        df.cell_sizes.str.count("2") == 1, "split expert " + df.cell.astype(str), "other"
    )
    return df


def overfit_rates(df: pd.DataFrame) -> dict:
    """Pooled log-log slopes (all fits, and per cell type) per setting and quantity."""
    out = {}
    for name, sub in df.groupby("setting"):
        out[name] = {}
        for col, _, th in OVER_QUANT:
            th = np.nan if th is None else th
            d = {"all": pooled_rate(sub[col], sub.n, theory=th)}
            for ct, s2 in sub.groupby("cell_type"):
                d[ct] = pooled_rate(s2[col], s2.n, theory=th)
            out[name][col] = d
    return out


def overfit_figure(df: pd.DataFrame, path: Path) -> None:
    names = list(dict.fromkeys(df.setting))
    fig, axes = plt.subplots(3 * len(names), 3, figsize=(14, 11 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        sub = df[df.setting == name]
        for j, (col, title, th) in enumerate(OVER_QUANT):
            ax = axes[3 * i + j // 3, j % 3]
            loglog_panel(ax, sub.n, sub[col], theory=th, color="k", label="all")
            for c, (ct, s2) in enumerate(sub.groupby("cell_type")):
                loglog_panel(ax, s2.n, s2[col], theory=None, color=f"C{c}", label=ct)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = parser(__doc__)
    p.add_argument(
        "--part",
        default="all",
        choices=("mm", "nuts", "all", "report", "overfit", "overfit-report"),
        help="report: recompute rates and the figure from the saved tables; overfit: "
        "the over-fitted cell block by block out to n = 10^5",
    )
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), help="part overfit only")
    args = p.parse_args(argv)
    if args.part == "overfit-report":
        stem = "contraction_overfit" + ("_quick" if args.quick else "")
        df = overfit_derived(pd.read_csv(args.out / f"{stem}.csv"))
        rates = overfit_rates(df)
        write_results(
            args.out,
            stem,
            df,
            {
                "grid": OVER_GRID,
                "replicates": OVER_REPS,
                "replicates_cap": OVER_REPS_CAP,
                "fit": OVER_FIT,
                "rates": rates,
            },
        )
        overfit_figure(df, args.out / f"{stem}.png")
        for name, d in rates.items():
            for col, dd in d.items():
                print(name, f"{col:16s}", "  ".join(f"{k}: {fmt_rate(r)}" for k, r in dd.items()))
        return
    if args.part == "overfit":
        grid, reps = (
            (OVER_GRID, OVER_REPS) if not args.quick else ([300, 1000], {"S-A": 1, "S-B": 1})
        )
        stem = "contraction_overfit" + ("_quick" if args.quick else "")
        args.out.mkdir(parents=True, exist_ok=True)
        run_overfit(grid, reps, args.settings, args.out / f"{stem}.csv")
        return
    grid, reps = (GRID, REPLICATES) if not args.quick else ([300, 600, 1200], 1)
    ngrid, draws, tune = (
        (NUTS_GRID, NUTS["draws"], NUTS["tune"]) if not args.quick else ([300, 600], 40, 40)
    )
    stem = "contraction_quick" if args.quick else "contraction"
    t0 = time.perf_counter()
    mm = nuts = None
    rates, summary = (
        {},
        {
            "grid": grid,
            "replicates": reps,
            "nuts_grid": ngrid,
            "nuts": {**NUTS, "draws": draws, "tune": tune},
            "theory": THEORY,
        },
    )
    if args.part in ("mm", "all"):
        mm = run_mm(grid, reps, args.quick)
        rates["mm"] = mm_rates(mm)
    else:
        mm_path = args.out / f"{stem}_mm.csv"
        if mm_path.exists():
            mm = pd.read_csv(mm_path)
            rates["mm"] = mm_rates(mm)
    if mm is not None:
        write_results(args.out, stem + "_mm", mm, {**summary, "rates": rates["mm"]})
    if args.part in ("nuts", "all"):
        nuts = run_nuts(ngrid, draws, tune)
        rates["nuts"] = nuts_rates(nuts)
    else:
        nuts_path = args.out / f"{stem}_nuts.csv"
        if nuts_path.exists():
            nuts = pd.read_csv(nuts_path)
            rates["nuts"] = nuts_rates(nuts)
    if nuts is not None:
        write_results(args.out, stem + "_nuts", nuts, {**summary, "rates": rates["nuts"]})
    figure(mm, nuts, rates, args.out / f"{stem}.png")
    for part, rr in rates.items():
        for name, d in rr.items():
            for col, r in d.items():
                print(f"{part:4s} {name} {col:20s} slope {fmt_rate(r)}  theory {r['theory']:+.3f}")
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
