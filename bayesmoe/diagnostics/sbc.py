"""Simulation-based calibration checks: uniformity of SBC ranks (Talts et al. 2018; Modrák et al.
2023) and the ECDF-difference plot.

The replicates are drawn, fitted and ranked by the study runner (:mod:`bayesmoe.study.sbc`:
``inference.method = "sbc"`` with ``data.source = "prior"``); :func:`bayesmoe.study.sbc.sbc_ranks`
collects the ranks of a study folder into a labelled :class:`xarray.Dataset`, and the functions
here only diagnose it: :func:`sbc_summary` tests each quantity for uniformity and
:func:`plot_sbc` draws the ECDF-difference plot with ArviZ's simultaneous bands. Which quantities
are exact checks for a mixture (the label-invariant **primary** ones) and which are approximate
(relabelled parameters) is explained in :mod:`bayesmoe.study.sbc`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["PRIMARY", "binomial_band", "plot_sbc", "sbc_pit", "sbc_summary"]

#: Label-invariant quantities (exact SBC checks).
PRIMARY = ("loglik_data", "loglik_test", "pred_mean", "gate_entropy")


def sbc_pit(ranks: xr.Dataset) -> xr.Dataset:
    """Ranks r in 0..L as PIT values (r + 0.5) / (L + 1) in (0, 1)."""
    L = ranks.attrs["n_ranked"]
    return ((ranks + 0.5) / (L + 1)).assign_attrs(ranks.attrs)


def binomial_band(n_replicates: int, n_bins: int, z: float = 3.0) -> tuple[float, float]:
    """Counts per bin expected under uniform ranks, +- z binomial sd: (low, high).

    Examples
    --------
    >>> from bayesmoe.diagnostics.sbc import binomial_band
    >>> [round(v, 2) for v in binomial_band(100, 10)]
    [1.0, 19.0]
    """
    p = 1.0 / n_bins
    mean = n_replicates * p
    sd = np.sqrt(n_replicates * p * (1 - p))
    return float(mean - z * sd), float(mean + z * sd)


def _components(ranks: xr.Dataset):
    """(label, quantity, selection, values) of every scalar component of every quantity."""
    for name, da in ranks.data_vars.items():
        other = [d for d in da.dims if d != "replicate"]
        if not other:
            yield name, name, {}, da.values
        else:
            for c in da[other[0]].values:
                yield f"{name}[{c}]", name, {other[0]: c}, da.sel({other[0]: c}).values


def sbc_summary(ranks: xr.Dataset, *, alpha: float = 0.05, n_bins: int = 10) -> xr.Dataset:
    """Uniformity test of every rank component (ArviZ's POT-C test) and a chi-square check.

    Parameters
    ----------
    ranks : xarray.Dataset
        From :func:`sbc_ranks`.
    alpha : float
        Family-wise level: a component is flagged non-uniform when its POT-C p-value is below
        alpha / (number of components) (Bonferroni over every component of every quantity), so a
        calibrated model passes as a whole with probability >= 1 - alpha.
    n_bins : int
        Bins of the chi-square test on the rank histogram (reported, not used in the verdict).

    Returns
    -------
    xarray.Dataset
        Dim ``component`` (e.g. ``"pred_mean[1]"``) with coords ``quantity`` and ``primary``
        (label-invariant); variables ``p_value`` (POT-C, ``azstats.uniformity_test``),
        ``p_chi2``, ``uniform`` (bool) and ``histogram`` (counts, dim ``bin``).
        ``attrs["verdict"]`` is "pass" when every primary component is uniform, else "fail".

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.sbc import sbc_summary
    >>> rng = np.random.default_rng(0)
    >>> ranks = xr.Dataset({"loglik_data": ("replicate", rng.integers(0, 50, 200)),
    ...                     "gate_entropy": ("replicate", rng.integers(40, 50, 200))},
    ...                    attrs={"n_ranked": 49})
    >>> s = sbc_summary(ranks)
    >>> s["uniform"].values.tolist(), s.attrs["verdict"]
    ([True, False], 'fail')
    """
    import arviz_stats  # noqa: F401 - registers the .azstats accessor
    from scipy import stats

    L = int(ranks.attrs["n_ranked"])
    comps = list(_components(ranks))
    level = alpha / len(comps)
    p_pot, p_chi, hist = [], [], []
    for _, _, _, r in comps:
        u = xr.DataArray((r + 0.5) / (L + 1), dims="replicate")
        p_pot.append(float(u.azstats.uniformity_test(dim="replicate", method="pot_c")[0]))
        bins = np.minimum((r * n_bins) // (L + 1), n_bins - 1)
        counts = np.bincount(bins, minlength=n_bins)
        hist.append(counts)
        p_chi.append(float(stats.chisquare(counts).pvalue))
    p_pot = np.array(p_pot)
    quantity = [q for _, q, _, _ in comps]
    ds = xr.Dataset(
        {
            "p_value": ("component", p_pot),
            "p_chi2": ("component", np.array(p_chi)),
            "uniform": ("component", p_pot >= level),
            "histogram": (("component", "bin"), np.array(hist)),
        },
        coords={
            "component": [c for c, _, _, _ in comps],
            "quantity": ("component", quantity),
            "primary": ("component", [q in PRIMARY for q in quantity]),
            "bin": np.arange(n_bins),
        },
    )
    prim = ds["uniform"].values[ds["primary"].values]
    ds.attrs.update(
        alpha=alpha,
        level_per_component=level,
        n_components=len(comps),
        n_replicates=int(ranks.sizes["replicate"]),
        n_ranked=L,
        verdict="pass" if bool(np.all(prim)) else "fail",
        test="POT-C (arviz_stats uniformity_test), Bonferroni over components",
    )
    return ds


def plot_sbc(
    ranks: xr.Dataset,
    *,
    var_names=None,
    envelope_prob: float = 0.95,
    n_simulations: int = 1000,
    summary: xr.Dataset | None = None,
    ncols: int = 4,
):
    """ECDF-difference plot of the ranks with simultaneous bands, one panel per component.

    The band is ArviZ's simultaneous envelope for independent PIT values
    (:func:`arviz_stats.ecdf_utils.ecdf_pit`, Säilynoja et al. 2022): under uniform ranks the
    whole ECDF difference stays inside it with probability `envelope_prob`. (``plot_ecdf_pit``
    of arviz_plots 1.3.2 fails with its "envelope" method, hence this thin matplotlib layer.)

    Parameters
    ----------
    ranks : xarray.Dataset
        From :func:`sbc_ranks`.
    var_names : list of str, optional
        Quantities to plot (default: all).
    envelope_prob : float
        Probability of the simultaneous band.
    n_simulations : int
        Simulations of the band.
    summary : xarray.Dataset, optional
        :func:`sbc_summary` output; its p-values are printed in the panels.
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from arviz_stats.ecdf_utils import ecdf_pit

    L = ranks.attrs["n_ranked"]
    panels = [
        (label, (r + 0.5) / (L + 1))
        for label, q, _, r in _components(ranks)
        if var_names is None or q in var_names
    ]
    n = ranks.sizes["replicate"]
    rng = np.random.default_rng(214)
    x, _, lo, hi = ecdf_pit(np.linspace(0, 1, n), envelope_prob, n_simulations, rng=rng)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows,
        min(ncols, len(panels)),
        figsize=(3.0 * min(ncols, len(panels)), 2.3 * nrows),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax, (label, vals) in zip(axes.flat, panels, strict=False):
        grid = np.linspace(0, 1, 201)
        ecdf = np.searchsorted(np.sort(vals), grid, side="right") / len(vals)
        ax.fill_between(x, lo - x, hi - x, step="post", color="0.85", lw=0)
        ax.axhline(0, color="0.5", lw=0.6)
        ax.step(grid, ecdf - grid, where="post", color="C0", lw=1.2)
        title = label
        if summary is not None:
            title += f"  p={float(summary['p_value'].sel(component=label)):.2g}"
        ax.set_title(title, fontsize=8)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel("PIT of the rank", fontsize=8)
    fig.supylabel("ECDF - uniform CDF", fontsize=8)
    fig.suptitle(
        f"SBC: {n} replicates, ranks among {ranks.attrs['n_ranked']} draws; "
        f"{envelope_prob:.0%} simultaneous band",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
