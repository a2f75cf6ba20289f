"""Shared helpers of the issue-4 studies (contraction, gating regimes, selection, finite rate).

Not part of the package: small utilities for seeding, quiet MM fits, input centring, rate fits
with intervals, and writing the results tables under ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesmoe.diagnostics import contraction_summary, voronoi_cells
from bayesmoe.diagnostics.contraction import rate_fit
from bayesmoe.diagnostics.voronoi import R_BAR
from bayesmoe.inference import fit_mle
from bayesmoe.scaling import Standardizer

RESULTS = Path(__file__).resolve().parent / "results"


def seed_for(*parts) -> int:
    """Deterministic 32-bit seed from any labels (stable across processes, unlike hash())."""
    key = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny grid: checks that the script runs")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for tables and figures")
    return p


def fit(X, y, K, seed, **kw):
    """MM maximum-likelihood fit with the study defaults, convergence warnings silenced
    (the result records ``converged_``)."""
    kw.setdefault("n_starts", 4)
    kw.setdefault("max_iter", 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mle(X, y, K, random_seed=seed, **kw)


def centre_inputs(measure: xr.Dataset, center) -> xr.Dataset:
    """Exact reparametrisation of a measure to centred inputs x' = x - center.

    docs/math.md (notation): every exp(beta0)-weighted quantity assumes centred inputs. The
    conditional density is unchanged; beta0 and b absorb beta1 . center and a . center.
    """
    c = np.asarray(center, dtype=float)
    one = np.ones_like(c)
    st = Standardizer(c, one, c, one, 0.0, 1.0, measure.attrs.get("gate", "softmax"))
    return st.to_standard(measure)


def perturbed_split(truth, k, rng, rel=0.05):
    """The truth with expert k split into two half-mass copies whose gate slopes, expert slopes
    and intercepts are moved apart by ±rel·(1 + |value|) (random signs): a truth-informed start
    for the K* + 1 model. Exact copies were a fixed point of the numpy MM engine (identical
    responsibilities, identical updates); moved copies do not depend on the engine."""
    idx = list(range(truth.sizes["expert"])) + [k]
    G = truth.isel(expert=idx).assign_coords(expert=np.arange(len(idx)))
    out = G.copy()
    b0 = G["beta0"].values.copy()
    b0[[k, -1]] -= np.log(2.0)
    out["beta0"] = ("expert", b0)
    for v in ("beta1", "a", "b"):
        val = G[v].values.copy()
        step = rel * (1 + np.abs(val[..., k])) * rng.choice([-1.0, 1.0], val[..., k].shape)
        val[..., k] += step
        val[..., -1] -= step
        out[v] = (G[v].dims, val)
    return out


def cell_blocks(G, truth, cell: int | None = None) -> dict:
    """Block decomposition of the over-fitted Voronoi loss D2 of a fit, and of one of its cells.

    ``cell`` defaults to the largest cell. Returns the D2 terms: ``mass_term``, ``single_term``
    (linear terms of singleton cells) and, for the chosen cell, ``top_term`` / ``bottom_term`` =
    sum_i p_i ‖(Δβ1, Δb)‖^r̄ and sum_i p_i ‖(Δa, Δσ²)‖^(r̄/2) (Gaussian; multinomial:
    sum p ‖Δβ1‖² and sum p (‖Δa‖² + ‖Δb‖²)); the mass-weighted mean errors ``cell_beta1_b``
    and ``cell_a_sigma2`` (multinomial: ``cell_beta1`` and ``cell_a_b``); and, for the cell's
    heaviest ("heavy") and second-heaviest ("light") atoms, the mass and each block error."""
    c = voronoi_cells(G, truth)
    size, asg, p = c.cell_size.values, c.assignment.values, c.mass.values
    j = int(np.argmax(size)) if cell is None else int(cell)
    blocks = [b for b in ("beta1", "a", "b", "sigma2") if f"error_{b}" in c]
    e = {blk: c[f"error_{blk}"].values for blk in blocks}
    out = {
        "cell_sizes": "/".join(str(int(s)) for s in size),
        "cell": j,
        "mass_term": float(np.abs(c.mass_error.values).sum()),
    }
    single = np.isin(asg, np.flatnonzero(size == 1))
    out["single_term"] = float((p * sum(e.values()))[single].sum())
    members = np.flatnonzero(asg == j)
    members = members[np.argsort(-p[members])]
    pm = p[members]
    if "sigma2" in e:
        top, bot = np.hypot(e["beta1"], e["b"])[members], np.hypot(e["a"], e["sigma2"])[members]
        r = R_BAR.get(len(members), np.nan)
        out["top_term"], out["bottom_term"] = float(pm @ top**r), float(pm @ bot ** (r / 2))
        names = ("cell_beta1_b", "cell_a_sigma2")
    else:
        top, bot = e["beta1"][members], np.hypot(e["a"], e["b"])[members]
        out["top_term"], out["bottom_term"] = float(pm @ top**2), float(pm @ bot**2)
        names = ("cell_beta1", "cell_a_b")
    with np.errstate(invalid="ignore", divide="ignore"):
        out[names[0]] = float(pm @ top / pm.sum())
        out[names[1]] = float(pm @ bot / pm.sum())
    out["cell_mass_error"] = float(abs(c.mass_error.values[j]))
    for lab, i in (
        ("heavy", members[0] if len(members) else None),
        ("light", members[1] if len(members) > 1 else None),
    ):
        out[f"{lab}_mass"] = float(p[i]) if i is not None else np.nan
        for blk in e:
            out[f"{lab}_{blk}"] = float(e[blk][i]) if i is not None else np.nan
    return out


def rate(values, n, *, theory: float, dim: str = "replicate") -> dict:
    """Log-log slope on n of the mean over replicates of `values` (array (len(n), R); NaN marks a
    replicate without the quantity and is skipped), with its 95% t-interval from
    bayesmoe.diagnostics.contraction_summary (one point per n, df = #n - 2)."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    ok = np.isfinite(v).any(axis=1)
    means = np.full(v.shape[0], np.nan)
    means[ok] = np.nanmean(v[ok], axis=1)
    keep = ok & (means > 0)
    if keep.sum() < 3:
        return {
            "slope": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "theory": theory,
            "n_points": int(keep.sum()),
        }
    da = xr.DataArray(
        means[keep][:, None], dims=("n", dim), coords={"n": np.asarray(n, float)[keep]}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = contraction_summary(da, sample_dims=[dim], theory_slope=theory)
    lo, hi = (float(x) for x in s.slope_ci.values)
    return {
        "slope": float(s.slope),
        "ci_low": lo,
        "ci_high": hi,
        "theory": theory,
        "n_points": int(keep.sum()),
        "covers_theory": bool(lo <= theory <= hi),
    }


def pooled_rate(values, n, *, theory: float) -> dict:
    """Log-log slope on n from every fit (replicates pooled, df = #fits - 2), with its 95%
    t-interval. Robust to the heavy right tail of over-fitted losses, where one outlying
    replicate dominates the mean over replicates that :func:`rate` regresses on."""
    v, n = np.asarray(values, float).ravel(), np.asarray(n, float).ravel()
    keep = np.isfinite(v) & (v > 0)
    if keep.sum() < 3 or np.unique(n[keep]).size < 2:
        return {
            "slope": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "theory": theory,
            "n_points": int(keep.sum()),
        }
    r = rate_fit(n[keep], v[keep])
    return {
        "slope": r["slope"],
        "ci_low": r["ci"][0],
        "ci_high": r["ci"][1],
        "theory": theory,
        "n_points": int(keep.sum()),
        "covers_theory": bool(r["ci"][0] <= theory <= r["ci"][1]),
    }


def loglog_panel(ax, n, values, *, theory: float | None, color="C0", label="", pooled=True):
    """One log-log panel: pale points per fit, the geometric mean per n, the fitted slope with
    its interval in the legend and a dashed theory line through the geometric-mean centre.
    Returns the rate dict (pooled over fits by default, else on the mean over replicates)."""
    n, v = np.asarray(n, float), np.asarray(values, float)
    ok = np.isfinite(v) & (v > 0)
    ax.scatter(n[ok], v[ok], s=10, alpha=0.35, color=color)
    g = pd.Series(np.log(v[ok])).groupby(n[ok]).mean()
    r = pooled_rate(v, n, theory=np.nan if theory is None else theory) if pooled else None
    ax.plot(
        g.index,
        np.exp(g.values),
        "o-",
        color=color,
        label=f"{label} slope {fmt_rate(r)}" if r else label,
    )
    if theory is not None and len(g) > 1:
        gm, cm = np.mean(np.log(g.index.values)), np.mean(g.values)
        x = np.array([g.index.min(), g.index.max()])
        ax.plot(
            x,
            np.exp(cm + theory * (np.log(x) - gm)),
            "--",
            color=color,
            lw=1,
            label=f"theory {theory:+.3g}",
        )
    ax.set(xscale="log", yscale="log", xlabel="n")
    return r


def fmt_rate(r: dict) -> str:
    if not np.isfinite(r["slope"]):
        return "n/a"
    return f"{r['slope']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"


def environment() -> dict:
    import bayesmoe

    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "bayesmoe": getattr(bayesmoe, "__version__", "?"),
        "machine": platform.machine(),
    }


def write_results(out: Path, name: str, table: pd.DataFrame, summary: dict) -> None:
    """Write ``<name>.csv`` (tidy per-fit table) and ``<name>.json`` (rates and settings)."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{name}.csv", index=False)
    summary = {**summary, "environment": environment()}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.bool_,)):
        return bool(o)
    raise TypeError(type(o))
