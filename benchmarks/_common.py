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

from bayesmoe.diagnostics import contraction_summary
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

    MATH.md: every exp(beta0)-weighted quantity assumes centred inputs. The conditional density
    is unchanged; beta0 and b absorb beta1 . center and a . center.
    """
    c = np.asarray(center, dtype=float)
    one = np.ones_like(c)
    st = Standardizer(c, one, c, one, 0.0, 1.0, measure.attrs.get("gate", "identity"))
    return st.to_standard(measure)


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
        return {"slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "theory": theory,
                "n_points": int(keep.sum())}
    da = xr.DataArray(means[keep][:, None], dims=("n", dim),
                      coords={"n": np.asarray(n, float)[keep]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = contraction_summary(da, sample_dims=[dim], theory_slope=theory)
    lo, hi = (float(x) for x in s.slope_ci.values)
    return {"slope": float(s.slope), "ci_low": lo, "ci_high": hi, "theory": theory,
            "n_points": int(keep.sum()), "covers_theory": bool(lo <= theory <= hi)}


def fmt_rate(r: dict) -> str:
    if not np.isfinite(r["slope"]):
        return "n/a"
    return f"{r['slope']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"


def environment() -> dict:
    import bayesmoe

    return {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "python": platform.python_version(), "numpy": np.__version__,
            "bayesmoe": getattr(bayesmoe, "__version__", "?"), "machine": platform.machine()}


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
