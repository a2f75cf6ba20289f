"""Posterior contraction summaries (docs/math.md §5).

Per fit: the posterior distribution of a distance to a reference (expected Hellinger, a Voronoi
loss, ...) is summarised by its mean, sd and quantiles. Across fits at increasing sample sizes n:
``log(summary) = intercept + slope * log(n)`` by least squares gives the empirical contraction rate
with a t-based confidence interval, to be set next to the theoretical slope (-1/2 up to logs for
densities and exact-fitted parameters; see docs/math.md §4.4 for over-fitted cells).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import stats

from bayesmoe.measure import SAMPLE_DIMS

__all__ = ["contraction_summary", "rate_fit"]


def rate_fit(n, values, *, ci_prob: float = 0.95) -> dict:
    """Least-squares fit of log(values) on log(n) (numpy core of :func:`contraction_summary`).

    Returns a dict with slope, intercept, stderr, ci (lower, upper), r_value, df.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.contraction import rate_fit
    >>> n = np.array([100, 1000, 10000])
    >>> round(rate_fit(n, 2 * n ** -0.5)["slope"], 12)
    -0.5
    """
    x = np.log(np.asarray(n, dtype=float).ravel())
    y = np.log(np.asarray(values, dtype=float).ravel())
    if x.size < 3 or np.unique(x).size < 2:
        raise ValueError(
            f"A rate fit needs at least 3 fits over at least 2 distinct sample sizes; got "
            f"{x.size} fits over {np.unique(x).size} sizes. Add fits at more values of n."
        )
    res = stats.linregress(x, y)
    df = x.size - 2
    half = stats.t.ppf(0.5 + ci_prob / 2, df) * res.stderr
    return {
        "slope": float(res.slope),
        "intercept": float(res.intercept),
        "stderr": float(res.stderr),
        "ci": (float(res.slope - half), float(res.slope + half)),
        "r_value": float(res.rvalue),
        "df": int(df),
    }


def _resolve_n(distances: xr.DataArray, fit_dims: list[str], n) -> xr.DataArray | None:
    if n is None:
        if "n" in distances.coords and set(distances.coords["n"].dims) <= set(fit_dims):
            n = distances.coords["n"]
        else:
            return None
    if not isinstance(n, xr.DataArray):
        n = np.asarray(n, dtype=float)
        if n.ndim != 1 or len(fit_dims) != 1 or n.size != distances.sizes[fit_dims[0]]:
            raise ValueError(
                f"`n` must be a 1-d array with one sample size per fit along the fit dim "
                f"{fit_dims}; got shape {n.shape} for fit dims "
                f"{ {d: distances.sizes[d] for d in fit_dims} }. For several fit dims pass a "
                "DataArray or put an `n` coordinate on `distances`."
            )
        n = xr.DataArray(n, dims=fit_dims)
    if not set(n.dims) <= set(fit_dims):
        raise ValueError(f"`n` has dims {n.dims}, which are not fit dims {fit_dims}.")
    if not np.all(np.isfinite(n.values)) or np.any(n.values < 2):
        raise ValueError("`n` must hold finite sample sizes >= 2.")
    return n.astype(float)


def contraction_summary(
    distances: xr.DataArray,
    n=None,
    *,
    sample_dims: Sequence[str] | None = None,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    statistic: str = "mean",
    theory_slope: float = -0.5,
    ci_prob: float = 0.95,
) -> xr.Dataset:
    """Per-fit posterior summaries of a distance and, across sample sizes, the empirical rate.

    Parameters
    ----------
    distances : xarray.DataArray
        Distances with sample dims (default: whichever of chain, draw it has) and any number of
        fit dims (e.g. ``n`` and ``replicate``), as returned by :func:`expected_hellinger` or
        :func:`voronoi_loss` and concatenated over fits.
    n : array_like or xarray.DataArray, optional
        Sample size of each fit. Default: a coordinate named ``n`` on the fit dims. Without it
        only the per-fit summaries are returned.
    sample_dims : sequence of str, optional
        Dims to summarise over.
    quantiles : sequence of float
        Posterior quantiles per fit.
    statistic : {"mean", "median"}
        The per-fit summary regressed on n.
    theory_slope : float
        Theoretical log–log slope to report (and plot) next to the fitted one.
    ci_prob : float
        Coverage of the slope's confidence interval (t quantile with #fits − 2 df).

    Returns
    -------
    xarray.Dataset
        ``mean``, ``sd``, ``quantiles[quantile, ...]`` over the fit dims; with sample sizes also
        ``n`` (a coordinate), ``slope``, ``intercept``, ``slope_stderr``,
        ``slope_ci[ci_bound]`` (lower, upper),
        ``r_value`` and ``theory_slope``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.contraction import contraction_summary
    >>> n = np.array([500, 1000, 2000, 5000, 10000, 20000, 50000])
    >>> rng = np.random.default_rng(0)
    >>> d = xr.DataArray(n[:, None] ** -0.5 * rng.lognormal(0, 0.1, (7, 200)),
    ...                  dims=("n", "draw"), coords={"n": n})
    >>> s = contraction_summary(d)
    >>> bool(s.slope_ci[0] < -0.5 < s.slope_ci[1]), s.quantiles.dims
    (True, ('quantile', 'n'))
    """
    if not isinstance(distances, xr.DataArray):
        raise TypeError(
            f"`distances` must be an xarray.DataArray with sample dims; got "
            f"{type(distances).__name__}. Wrap numpy arrays with "
            "xarray.DataArray(values, dims=...)."
        )
    if statistic not in ("mean", "median"):
        raise ValueError(f"`statistic` must be 'mean' or 'median'; got {statistic!r}.")
    if not 0 < ci_prob < 1:
        raise ValueError(f"`ci_prob` must be in (0, 1); got {ci_prob!r}.")
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or np.any((q < 0) | (q > 1)):
        raise ValueError(f"`quantiles` must be numbers in [0, 1]; got {quantiles!r}.")
    if sample_dims is None:
        sample_dims = [d for d in SAMPLE_DIMS if d in distances.dims]
    sample_dims = list(sample_dims)
    missing = [d for d in sample_dims if d not in distances.dims]
    if missing:
        raise ValueError(f"`sample_dims` {missing} are not dims of `distances` {distances.dims}.")
    if not np.all(np.isfinite(distances.values)) or np.any(distances.values < 0):
        raise ValueError("`distances` must be finite and non-negative.")
    fit_dims = [d for d in distances.dims if d not in sample_dims]
    over = sample_dims if sample_dims else None
    out = xr.Dataset(
        {
            "mean": distances.mean(over) if over else distances,
            "sd": distances.std(over) if over else xr.zeros_like(distances),
            "quantiles": (
                distances.quantile(q, dim=over) if over else distances.expand_dims(quantile=q)
            ),
        }
    )
    out = out.drop_vars([c for c in out.coords if c in sample_dims], errors="ignore")
    out.attrs = {"statistic": statistic, "ci_prob": ci_prob}
    n_da = _resolve_n(distances, fit_dims, n)
    if n_da is None:
        return out
    stat = out["mean"] if statistic == "mean" else (distances.median(over) if over else distances)
    stat, n_b = xr.broadcast(stat, n_da)
    if np.any(stat.values <= 0):
        raise ValueError(
            f"The per-fit {statistic} of `distances` must be > 0 to take logs; some are 0 (a fit "
            "equal to its reference?). Drop those fits before the rate fit."
        )
    n_vals = n_b.values.ravel()
    decades = np.log10(n_vals.max() / n_vals.min())
    if np.unique(n_vals).size < 7 or decades < 1.5 or n_vals.min() < 500:
        warnings.warn(
            "docs/math.md §5 recommends at least 7 values of n over at least 1.5 decades, with "
            f"n >= 500, for slope fits; got {np.unique(n_vals).size} values from "
            f"{n_vals.min():g} to {n_vals.max():g}. The rate estimate may be biased by "
            "pre-asymptotic behaviour.",
            UserWarning,
            stacklevel=2,
        )
    fit = rate_fit(n_vals, stat.values.ravel(), ci_prob=ci_prob)
    if "n" not in out.coords:
        out = out.assign_coords(n=n_da)
    out = out.assign(
        slope=fit["slope"],
        intercept=fit["intercept"],
        slope_stderr=fit["stderr"],
        slope_ci=xr.DataArray(
            list(fit["ci"]), dims="ci_bound", coords={"ci_bound": ["lower", "upper"]}
        ),
        r_value=fit["r_value"],
        theory_slope=float(theory_slope),
    )
    out["slope_ci"].attrs = {"prob": ci_prob, "df": fit["df"]}
    return out
