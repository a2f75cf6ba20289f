"""Plots of the parameter-level diagnostics: Voronoi-loss posteriors, contraction rates, the
posterior of the number of experts and distortion–rate curves. Each returns its matplotlib Axes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["plot_contraction", "plot_loss_posterior", "plot_num_experts", "plot_rate_distortion"]


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def plot_loss_posterior(loss: xr.DataArray, *, ax=None, bins: int = 30, hdi_prob: float = 0.9):
    """Histogram of the posterior draws of a loss or distance, with its mean and central interval.

    Parameters
    ----------
    loss : xarray.DataArray
        E.g. :func:`voronoi_loss` or :func:`expected_hellinger` over (chain, draw); all dims are
        pooled.
    bins : int
    hdi_prob : float
        Probability of the central (equal-tailed) interval drawn as dotted lines.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.plots import plot_loss_posterior
    >>> ax = plot_loss_posterior(xr.DataArray(np.random.default_rng(0).gamma(2, 1, 500),
    ...                                       dims="draw", name="loss"))
    """
    if not isinstance(loss, xr.DataArray):
        raise TypeError(f"`loss` must be an xarray.DataArray of draws; got {type(loss).__name__}.")
    if not 0 < hdi_prob < 1:
        raise ValueError(f"`hdi_prob` must be in (0, 1); got {hdi_prob!r}.")
    v = np.asarray(loss.values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("`loss` has no finite values to plot.")
    ax = _axes(ax)
    ax.hist(v, bins=bins, density=True, color="C0", alpha=0.6)
    ax.axvline(v.mean(), color="C1", label=f"mean {v.mean():.3g}")
    lo, hi = np.quantile(v, [(1 - hdi_prob) / 2, (1 + hdi_prob) / 2])
    ax.axvline(lo, color="C1", ls=":", label=f"{hdi_prob:.0%} interval")
    ax.axvline(hi, color="C1", ls=":")
    label = loss.attrs.get("long_name", loss.name or "loss")
    ax.set_xlabel(str(label))
    ax.set_ylabel("posterior density")
    ax.legend()
    return ax


def plot_contraction(summary: xr.Dataset, *, ax=None, show_theory: bool = True):
    """Log–log plot of a per-fit posterior summary against n, with the fitted and theory lines.

    Parameters
    ----------
    summary : xarray.Dataset
        The result of :func:`contraction_summary` with sample sizes (it has ``slope``).
    show_theory : bool
        Draw the theoretical slope through the geometric centre of the points.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.contraction import contraction_summary
    >>> from bayesmoe.diagnostics.plots import plot_contraction
    >>> n = np.array([500, 1000, 2000, 5000, 10000, 20000, 50000])
    >>> d = xr.DataArray(n[:, None] ** -0.5 * np.random.default_rng(0).lognormal(0, .1, (7, 50)),
    ...                  dims=("n", "draw"), coords={"n": n})
    >>> ax = plot_contraction(contraction_summary(d))
    """
    if not isinstance(summary, xr.Dataset) or "slope" not in summary:
        raise ValueError(
            "`summary` must be a contraction_summary Dataset computed with sample sizes (it has "
            "no `slope`); pass `n=` to contraction_summary or add an `n` coordinate."
        )
    ax = _axes(ax)
    stat_name = summary.attrs.get("statistic", "mean")
    stat = (
        summary["mean"]
        if stat_name == "mean"
        else summary["quantiles"].sel(quantile=0.5, method="nearest")
    )
    stat, n = xr.broadcast(stat, summary["n"])
    x, y = n.values.ravel(), stat.values.ravel()
    q = summary["quantiles"]
    lo = xr.broadcast(q.isel(quantile=0), summary["n"])[0].values.ravel()
    hi = xr.broadcast(q.isel(quantile=-1), summary["n"])[0].values.ravel()
    ax.errorbar(
        x,
        y,
        yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
        fmt="o",
        ms=4,
        color="C0",
        alpha=0.7,
        label=f"posterior {stat_name} (quantile bars)",
    )
    grid = np.geomspace(x.min(), x.max(), 50)
    slope, icpt = float(summary["slope"]), float(summary["intercept"])
    ci = summary["slope_ci"].values
    ax.plot(
        grid,
        np.exp(icpt) * grid**slope,
        color="C1",
        label=f"fit: slope {slope:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]",
    )
    if show_theory:
        ts = float(summary["theory_slope"])
        lx, ly = np.log(x).mean(), np.log(y).mean()
        ax.plot(
            grid,
            np.exp(ly + ts * (np.log(grid) - lx)),
            color="k",
            ls="--",
            label=f"theory: slope {ts:g}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel("distance to the reference")
    ax.legend()
    return ax


def plot_num_experts(pmf: xr.DataArray, *, ax=None, true_k: int | None = None):
    """Bar chart of a posterior pmf of the number of experts (:func:`num_experts_posterior`).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import xarray as xr
    >>> from bayesmoe.diagnostics.plots import plot_num_experts
    >>> pmf = xr.DataArray([0.1, 0.7, 0.2], dims="n_experts", coords={"n_experts": [1, 2, 3]})
    >>> ax = plot_num_experts(pmf, true_k=2)
    """
    if not isinstance(pmf, xr.DataArray) or pmf.dims != ("n_experts",):
        raise ValueError(
            "`pmf` must be a DataArray over `n_experts` (from num_experts_posterior); got "
            f"{type(pmf).__name__} with dims {getattr(pmf, 'dims', None)}."
        )
    ax = _axes(ax)
    k = pmf["n_experts"].values
    ax.bar(k, pmf.values, color="C0", alpha=0.8)
    if true_k is not None:
        ax.axvline(true_k, color="k", ls="--", label=f"true K = {true_k}")
        ax.legend()
    ax.set_xticks(k)
    ax.set_xlabel(
        "number of experts" + (f" ({pmf.attrs['method']})" if "method" in pmf.attrs else "")
    )
    ax.set_ylabel("posterior probability")
    return ax


def plot_rate_distortion(rd: xr.Dataset, *, ax=None, rate=None):
    """Distortion–rate curve D(R) from :func:`distortion_rate`; optionally mark gate rates.

    Parameters
    ----------
    rd : xarray.Dataset
        With ``R`` and ``D`` over ``slope``.
    rate : float or xarray.DataArray, optional
        Gate rate(s) I(X;T) (e.g. :func:`gate_information_rate` draws) marked on the R axis.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.gate_rate import distortion_rate
    >>> from bayesmoe.diagnostics.plots import plot_rate_distortion
    >>> ax = plot_rate_distortion(distortion_rate(np.array([[0., 1.], [1., 0.]]),
    ...                                           np.linspace(0, 6, 20)))
    """
    if not isinstance(rd, xr.Dataset) or "R" not in rd or "D" not in rd:
        raise ValueError("`rd` must be a distortion_rate Dataset with variables R and D.")
    ax = _axes(ax)
    order = np.argsort(rd["R"].values)
    ax.plot(rd["R"].values[order], rd["D"].values[order], "o-", ms=3, color="C0", label="D(R)")
    if rate is not None:
        r = np.asarray(getattr(rate, "values", rate), dtype=float).ravel()
        ax.axvspan(
            np.quantile(r, 0.05),
            np.quantile(r, 0.95),
            color="C1",
            alpha=0.2,
            label="gate rate (90%)" if r.size > 1 else None,
        )
        ax.axvline(r.mean(), color="C1", label=f"gate rate {r.mean():.3g} nats")
    ax.set_xlabel("rate R (nats)")
    ax.set_ylabel("distortion D")
    ax.legend()
    return ax
