"""Plots of a fitted mixture of experts, in the user's units.

Each function takes a fit — a posterior trace from :meth:`bayesmoe.MoE.fit` /
:func:`bayesmoe.inference.sample` (an ``xarray.DataTree``), a maximum-likelihood fit from
:func:`bayesmoe.fit_mle` (``MMResult``) or one mixing measure (``xarray.Dataset``) — and returns
the matplotlib Axes it drew on (pass ``ax=`` to draw into your own figure and adjust it as
usual). Everything is computed by :mod:`bayesmoe.prediction` (expert means, gate
probabilities, the conditional density); the expert family says what its experts predict
(a mean, or class probabilities), never its name.

- :func:`plot_experts`: the data against one feature with each expert's fitted mean curve
  (Gaussian, Poisson) or class-probability curves (categorical) and a credible band, the points
  coloured by their most probable expert;
- :func:`plot_gate`: the gate probabilities against one feature;
- :func:`plot_predictive_density`: p(y | x) at one input row;
- :func:`plot_k_posterior`: p(K | y) with its Monte Carlo error beside the prior of K
  (random-K traces);
- :func:`plot_k_choice`: the :func:`bayesmoe.compare_experts` table as one figure;
- :func:`plot_fit`: experts and gate side by side (what the fit report shows first).

Posterior curves are the posterior mean with a pointwise equal-tailed band over the (relabelled)
draws; a maximum-likelihood fit has no band. The features not plotted are held at their
medians over the data, or at the values of the row ``at=``.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

__all__ = [
    "plot_experts",
    "plot_fit",
    "plot_gate",
    "plot_k_choice",
    "plot_k_posterior",
    "plot_predictive_density",
    "responsibilities",
]

_BAND_DRAWS = 300  # posterior draws the curves and bands are computed from (thinned evenly)


# ----- the fit and its data ---------------------------------------------------------------------
def _source(fit):
    """(what prediction reads, is_posterior): a DataTree, or a mixing measure Dataset."""
    if isinstance(fit, xr.DataTree):
        if "posterior" not in fit.children:
            raise ValueError(
                "`fit` must be a trace with a 'posterior' group (from MoE.fit or "
                "bayesmoe.inference.sample); this DataTree has none."
            )
        return fit, True
    if isinstance(fit, xr.Dataset):
        return fit, False
    measure = getattr(fit, "measure_", None)
    if isinstance(measure, xr.Dataset):
        return measure, False
    raise TypeError(
        "`fit` must be a trace (xarray.DataTree), an MMResult from fit_mle or a mixing measure "
        f"(xarray.Dataset); got {type(fit).__name__}."
    )


def _check_fixed_k(src) -> None:
    if isinstance(src, xr.DataTree):
        post = src["posterior"]
        if "active" in post or "n_experts" in post:
            raise ValueError(
                "`fit` is a random-K trace, whose expert labels are only defined given K; plot "
                "one K with bayesmoe.inference.rjmcmc.relabel_at_k(trace, K), or p(K | y) with "
                "plot_k_posterior."
            )


def _relabelled(src):
    """A posterior trace with relabelled draws (relabelled here if it is not yet)."""
    if isinstance(src, xr.DataTree) and not src.attrs.get("relabelled"):
        post = src["posterior"]
        if "expert" in post.dims and post.sizes["expert"] > 1:
            from bayesmoe.diagnostics.relabel import relabel

            return relabel(src)
    return src


def _data(src, G, X, y, need_y: bool, gate_X=None):
    """``(X, y, gate_X)``: as given, else the trace's constant_data and observed_data.

    ``gate_X`` stays None where the gate reads the experts' covariates or none; a DataFrame ``X``
    may carry the gate's own covariates as extra columns (picked by name).
    """
    from bayesmoe.measure import gate_covariates, gate_is_shared

    has = isinstance(src, xr.DataTree) and "constant_data" in src.children
    stored = src["constant_data"].to_dataset() if has else None
    if X is None and stored is not None:
        X = stored["X"].transpose("obs", "feature").values
        if gate_X is None and "gate_X" in stored.data_vars:
            gate_X = stored["gate_X"].values
    if y is None and isinstance(src, xr.DataTree) and "observed_data" in src.children:
        y = next(iter(src["observed_data"].data_vars.values())).values
    if X is None or (need_y and y is None):
        raise ValueError(
            "Pass the data as `X=` and `y=`: a maximum-likelihood fit (and a trace without "
            "constant_data/observed_data) does not store them."
        )
    if not gate_is_shared(G) and G.sizes["gate_feature"]:
        gate_X = gate_covariates(G, X, gate_X)
        if hasattr(X, "columns"):
            feats = [str(f) for f in G["feature"].values]
            X = X[[c for f in feats for c in X.columns if str(c) == f]]
    else:
        gate_X = None
    X = np.asarray(getattr(X, "values", X), dtype=float)
    if X.ndim != 2:
        raise ValueError(f"`X` must be 2-D (n, n_features); got shape {X.shape}.")
    return X, (None if y is None else np.asarray(getattr(y, "values", y))), gate_X


def _measure(src):
    from bayesmoe.diagnostics.mixing import mixing_measure

    return mixing_measure(src)  # also a relabel_at_k Dataset or a measure


def _panel(G, X: np.ndarray, gate_X):
    """The columns a plot can run along: the experts' features, then the gate's own covariates
    (those not among the features), as one matrix ``A`` with its names, and ``split(rows)`` that
    turns rows of ``A`` back into ``(X_new, gate_X_new)``.
    """
    names = [str(f) for f in G["feature"].values]
    if gate_X is None:
        return X, names, lambda rows: (rows, None)
    gate_names = [str(g) for g in G["gate_feature"].values]
    extra = [g for g in gate_names if g not in names]
    Z = np.asarray(gate_X, dtype=float)
    A = np.column_stack([X] + [Z[:, [gate_names.index(g)]] for g in extra])
    every = names + extra
    pick = [every.index(g) for g in gate_names]
    return A, every, lambda rows: (rows[:, : len(names)], rows[:, pick])


def _measure_info(G) -> tuple[list, object, list | None]:
    """(feature names, family, class labels or None) of a mixing measure."""
    from bayesmoe.families import get_family

    fam = get_family(G.attrs["family"])
    classes = G["class"].values.tolist() if fam.has_classes else None
    return G["feature"].values.tolist(), fam, classes


def _feature_index(feature, names: list) -> int:
    if isinstance(feature, (int, np.integer)) and not isinstance(feature, bool):
        if not 0 <= feature < len(names):
            raise ValueError(
                f"`feature` must be a column index in 0..{len(names) - 1} or a name in {names}; "
                f"got {feature!r}."
            )
        return int(feature)
    if feature in names:
        return names.index(feature)
    raise ValueError(f"`feature` must be a name in {names} or a column index; got {feature!r}.")


def _grid(X: np.ndarray, j: int, at, names: list, n_grid: int) -> np.ndarray:
    """``n_grid`` rows spanning feature j over the data; the others at their medians or ``at``."""
    if X.shape[1] == 0:
        raise ValueError("The fit has no features: there is no x to plot against.")
    if at is None:
        base = np.median(X, axis=0)
    else:
        if isinstance(at, dict):
            at = [at[n] if n in at else np.median(X[:, i]) for i, n in enumerate(names)]
        base = np.asarray(getattr(at, "values", at), dtype=float).ravel()
        if base.shape != (X.shape[1],):
            raise ValueError(
                f"`at` must be one row of {X.shape[1]} feature values (or a dict by name); got "
                f"shape {base.shape}."
            )
    grid = np.repeat(base[None, :], n_grid, axis=0)
    lo, hi = X[:, j].min(), X[:, j].max()
    grid[:, j] = np.linspace(lo, hi, n_grid)
    return grid


def _class_codes(y, classes: list) -> np.ndarray:
    """Observed classes as codes 0..M-1 (labels of the fit, or codes already)."""
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([lookup[v] for v in np.asarray(y).tolist()], dtype=int)
    except KeyError:
        codes = np.asarray(y)
        if (
            np.issubdtype(codes.dtype, np.integer)
            and codes.min() >= 0
            and codes.max() < len(classes)
        ):
            return codes.astype(int)
        raise ValueError(f"`y` holds values that are not classes of the fit {classes}.") from None


def _expert_curves(src, X_new, max_draws, gate_X=None):
    """Each expert's mean (*S, n, K) or class probabilities (*S, n, M, K) at X_new, the family,
    and the sample dims' count (0 for one measure).
    """
    from bayesmoe.prediction import _mixture, _prepare

    _, p, X_new, sdims, _ = _prepare(src, X_new, None, max_draws, gate_X=gate_X)
    mix = _mixture(p, X_new)
    return mix, len(sdims)


def _summarise(values: np.ndarray, n_sample_dims: int, ci_prob: float):
    """Posterior mean and equal-tailed band over the leading sample dims (None: one measure)."""
    if n_sample_dims == 0:
        return values, None, None
    flat = values.reshape((-1,) + values.shape[n_sample_dims:])
    lo, hi = np.quantile(flat, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
    return flat.mean(0), lo, hi


def responsibilities(
    fit, X=None, y=None, *, gate_X=None, max_draws: int | None = _BAND_DRAWS
) -> np.ndarray:
    """Posterior probability that each observation came from each expert, (n, K).

    ``p(k | x_i, y_i) = g_k(x_i) p_k(y_i | x_i) / sum_j g_j(x_i) p_j(y_i | x_i)``, averaged over
    the (relabelled) posterior draws; for a maximum-likelihood fit, at the estimate. ``gate_X``:
    the gate's own covariates of the rows, when it has them (default: the trace's
    ``constant_data.gate_X``, or extra columns of a DataFrame ``X``).

    Examples
    --------
    >>> import bayesmoe as bm
    >>> from bayesmoe.plots import responsibilities
    >>> X, y, truth = bm.data.simulate("S-B", n=40, random_seed=0)
    >>> r = responsibilities(truth, X, y)
    >>> r.shape, bool(abs(r.sum(1) - 1).max() < 1e-12)
    ((40, 3), True)
    """
    from bayesmoe.families import NUMPY
    from bayesmoe.prediction import _mixture, _prepare

    src, _ = _source(fit)
    _check_fixed_k(src)
    src = _relabelled(src)
    G = _measure(src)
    X, y, gate_X = _data(src, G, X, y, need_y=True, gate_X=gate_X)
    _, fam, classes = _measure_info(G)
    values = _class_codes(y, classes) if fam.has_classes else np.asarray(y, dtype=float)
    _, p, X, sdims, _ = _prepare(src, X, None, max_draws, gate_X=gate_X)
    mix = _mixture(p, X)
    with np.errstate(all="ignore"):
        log_pk = fam.component_log_prob(NUMPY, values, *mix["predictors"])
    log_r = mix["log_w"] + np.where(mix["on"], log_pk, 0.0)
    log_r = log_r - log_r.max(-1, keepdims=True)
    r = np.exp(log_r)
    r /= r.sum(-1, keepdims=True)
    return r.reshape((-1,) + r.shape[len(sdims) :]).mean(0) if sdims else r


# ----- axes ------------------------------------------------------------------------------------
def _new_axes(ax, ncols: int = 1, figsize=None):
    import matplotlib.pyplot as plt

    if ax is not None:
        return np.atleast_1d(ax).ravel()
    size = figsize or (5.0 * ncols, 3.6)
    _, axes = plt.subplots(1, ncols, figsize=size, squeeze=False, constrained_layout=True)
    return axes.ravel()


def _y_label(src, y_label):
    if y_label is not None:
        return str(y_label)
    if isinstance(src, xr.DataTree):
        for key in ("target_name", "target"):
            if key in src.attrs:
                return str(src.attrs[key])
    return "y"


def _held(X: np.ndarray, at) -> str:
    if X.shape[1] == 1:
        return ""
    return " (others at `at`)" if at is not None else " (others at medians)"


def _colour(k: int) -> str:
    return f"C{k % 10}"


# ----- the plots -------------------------------------------------------------------------------
def plot_experts(
    fit,
    X=None,
    y=None,
    *,
    feature=0,
    at=None,
    gate_X=None,
    ax=None,
    ci_prob: float = 0.94,
    n_grid: int = 100,
    y_label: str | None = None,
    max_draws: int | None = _BAND_DRAWS,
    min_gate: float = 0.05,
):
    """The data against one feature with each expert's fitted curve and band.

    Regression experts (Gaussian, Poisson): one axis, each expert's mean E[y | x, k] (posterior
    mean curve and ``ci_prob`` band). Classification experts: one axis per class, each expert's
    P(y = class | x, k) and the mixture's P(y = class | x) (black, dashed), the observations
    drawn at 1 (that class) or 0. Points are coloured by their most probable expert
    (:func:`responsibilities`).

    Parameters
    ----------
    fit : DataTree, MMResult or mixing measure
        A fixed-K fit; a posterior trace is relabelled first if it is not yet.
    X, y : array_like, optional
        The data (default: the trace's ``constant_data.X`` and ``observed_data``; required for
        an ``MMResult``).
    feature : int or str
        The feature on the x axis (index or name): one of the experts' features or, when the
        gate has its own covariates, one of those (after the features, in index order).
    at : array_like or dict, optional
        Values of the other features (and gate covariates) along the curves (default: their
        medians).
    gate_X : array_like (n, n_gate_features), optional
        The gate's own covariates of the rows, when it has them (default: the trace's
        ``constant_data.gate_X``, or extra columns of a DataFrame ``X``).
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes (regression) or one per class (classification).
    ci_prob : float
        Mass of the pointwise band.
    n_grid : int
        Points along each curve.
    y_label : str, optional
        Label of the response axis (default: the trace's ``target_name`` attr, else "y").
    max_draws : int, optional
        Posterior draws the curves are computed from.
    min_gate : float
        Each expert's curve is drawn where its gate probability (posterior mean) is at least
        this, i.e. where the expert explains data; 0 draws every curve over the whole range.

    Returns
    -------
    numpy.ndarray of matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import bayesmoe as bm
    >>> from bayesmoe.plots import plot_experts
    >>> X, y, _ = bm.data.simulate("S-B", n=120, random_seed=0)
    >>> fit = bm.fit_mle(X, y, n_experts=2, n_starts=2, random_seed=0)
    >>> axes = plot_experts(fit, X, y, feature="x0")
    >>> axes[0].get_xlabel(), len(axes[0].get_lines())
    ('x0', 2)
    """
    src, posterior = _source(fit)
    _check_fixed_k(src)
    src = _relabelled(src)
    G = _measure(src)
    X, y, gate_X = _data(src, G, X, y, need_y=True, gate_X=gate_X)
    _, fam, classes = _measure_info(G)
    A, names, split = _panel(G, X, gate_X)
    j = _feature_index(feature, names)
    grid = _grid(A, j, at, names, n_grid)
    grid_X, grid_Z = split(grid)
    mix, n_s = _expert_curves(src, grid_X, max_draws if posterior else None, grid_Z)
    K = mix["w"].shape[-1]
    if not 0 <= min_gate < 1:
        raise ValueError(f"`min_gate` must be in [0, 1); got {min_gate!r}.")
    gate = _summarise(mix["w"], n_s, ci_prob)[0]  # (n, K), posterior mean
    shown = gate >= min_gate
    resp = responsibilities(src, X, y, gate_X=gate_X, max_draws=max_draws if posterior else None)
    who = resp.argmax(1)
    xs = grid[:, j]
    if not fam.has_classes:
        ax = _new_axes(ax)[0]
        mean, lo, hi = _summarise(mix["mean"], n_s, ci_prob)
        for k in range(K):
            sel = who == k
            ax.scatter(A[sel, j], np.asarray(y, float)[sel], s=10, alpha=0.6, color=_colour(k))
            on = shown[:, k]
            ax.plot(
                xs, np.where(on, mean[:, k], np.nan), color=_colour(k), lw=2, label=f"expert {k}"
            )
            if lo is not None:
                ax.fill_between(xs, lo[:, k], hi[:, k], where=on, color=_colour(k), alpha=0.2, lw=0)
        ax.set_xlabel(str(names[j]))
        ax.set_ylabel(_y_label(src, y_label))
        ax.set_title(f"experts over {names[j]}{_held(A, at)}", fontsize=10)
        band = f", {ci_prob:.0%} band" if lo is not None else ""
        gated = f"\nwhere its gate >= {min_gate:g}" if min_gate > 0 else ""
        ax.legend(fontsize=8, title=f"mean of y{band}{gated}", title_fontsize=8)
        return np.array([ax])
    axes = _new_axes(ax, len(classes))
    if axes.size != len(classes):
        raise ValueError(f"`ax` must hold one Axes per class ({len(classes)}); got {axes.size}.")
    codes = _class_codes(y, classes)
    mean, lo, hi = _summarise(mix["mean"], n_s, ci_prob)  # (n, M, K)
    w = mix["w"].reshape((-1,) + mix["w"].shape[n_s:]) if n_s else mix["w"][None]
    m = mix["mean"].reshape((-1,) + mix["mean"].shape[n_s:]) if n_s else mix["mean"][None]
    total = np.einsum("snk,snmk->nm", w, m) / w.shape[0]
    rng = np.random.default_rng(0)  # jitter of the 0/1 points, for display only
    for c, axc in enumerate(axes):
        hit = (codes == c).astype(float) + rng.uniform(-0.03, 0.03, codes.size)
        for k in range(K):
            sel = who == k
            axc.scatter(A[sel, j], hit[sel], s=8, alpha=0.5, color=_colour(k))
            on = shown[:, k]
            axc.plot(
                xs, np.where(on, mean[:, c, k], np.nan), color=_colour(k), lw=2, label=f"expert {k}"
            )
            if lo is not None:
                axc.fill_between(
                    xs, lo[:, c, k], hi[:, c, k], where=on, color=_colour(k), alpha=0.2, lw=0
                )
        axc.plot(xs, total[:, c], color="k", ls="--", lw=1.5, label="mixture")
        axc.set_ylim(-0.08, 1.08)
        axc.set_xlabel(str(names[j]))
        axc.set_ylabel(f"P({_y_label(src, y_label)} = {classes[c]} | x)")
        axc.set_title(f"class {classes[c]}", fontsize=10)
    axes[0].legend(fontsize=8)
    return axes


def plot_gate(
    fit,
    X=None,
    *,
    feature=0,
    at=None,
    gate_X=None,
    ax=None,
    ci_prob: float = 0.94,
    n_grid: int = 100,
    max_draws: int | None = _BAND_DRAWS,
):
    """Gate probabilities g_k(x) of every expert against one feature (or gate covariate).

    Parameters are those of :func:`plot_experts` (``X`` and ``gate_X`` only set the range of the
    plotted column and the medians of the others).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import bayesmoe as bm
    >>> from bayesmoe.plots import plot_gate
    >>> X, y, truth = bm.data.simulate("S-B", n=60, random_seed=0)
    >>> ax = plot_gate(truth, X, feature=1)
    >>> ax.get_xlabel(), ax.get_ylabel(), len(ax.get_lines())
    ('x1', 'gate probability', 3)
    """
    from bayesmoe.prediction import gate_probabilities

    src, posterior = _source(fit)
    _check_fixed_k(src)
    src = _relabelled(src)
    G = _measure(src)
    X, _, gate_X = _data(src, G, X, None, need_y=False, gate_X=gate_X)
    A, names, split = _panel(G, X, gate_X)
    j = _feature_index(feature, names)
    grid = _grid(A, j, at, names, n_grid)
    grid_X, grid_Z = split(grid)
    g = gate_probabilities(src, grid_X, gate_X=grid_Z, max_draws=max_draws if posterior else None)
    sdims = [d for d in ("chain", "draw") if d in g.dims]
    values = g.transpose(*sdims, "obs", "expert").values
    mean, lo, hi = _summarise(values, len(sdims), ci_prob)
    ax = _new_axes(ax)[0]
    for k, e in enumerate(g["expert"].values.tolist()):
        ax.plot(grid[:, j], mean[:, k], color=_colour(k), lw=2, label=f"expert {e}")
        if lo is not None:
            ax.fill_between(grid[:, j], lo[:, k], hi[:, k], color=_colour(k), alpha=0.2, lw=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(str(names[j]))
    ax.set_ylabel("gate probability")
    ax.set_title(f"gate over {names[j]}{_held(A, at)}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_predictive_density(
    fit,
    x,
    *,
    y_grid=None,
    ax=None,
    ci_prob: float = 0.94,
    y_label: str | None = None,
    max_draws: int | None = _BAND_DRAWS,
):
    """The predictive density p(y | x) at one input row (a pmf for counts and classes).

    Parameters
    ----------
    fit : DataTree, MMResult or mixing measure
        Fixed or random K (the mixture is defined either way).
    x : array_like (n_features,) or dict
        The input row in the user's units (a dict by feature name). When the gate has its own
        covariates, the row continues with those not among the features (or the dict names
        them too).
    y_grid : array_like, optional
        Where to evaluate: default 200 points over the 0.1%–99.9% predictive range
        (real responses), the counts up to its 99.9% quantile, or every class.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import bayesmoe as bm
    >>> from bayesmoe.plots import plot_predictive_density
    >>> X, y, truth = bm.data.simulate("S-B", n=60, random_seed=0)
    >>> ax = plot_predictive_density(truth, [0.5, -1.0])
    >>> ax.get_ylabel()
    'p(y | x)'
    """
    from bayesmoe.measure import gate_is_shared
    from bayesmoe.prediction import conditional_density, predict

    src, posterior = _source(fit)
    G = _measure(src)
    _, fam, classes = _measure_info(G)
    own = not gate_is_shared(G) and G.sizes["gate_feature"] > 0  # the gate's own covariates
    Z0 = np.zeros((1, G.sizes["gate_feature"])) if own else None
    _, names, split = _panel(G, np.zeros((1, G.sizes["feature"])), Z0)
    if isinstance(x, dict):
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"`x` as a dict must give every feature; missing {missing}.")
        x = [x[n] for n in names]
    full = np.asarray(getattr(x, "values", x), dtype=float).reshape(1, -1)
    if full.shape[1] != len(names):
        raise ValueError(f"`x` must hold {len(names)} feature values {names}; got {full.shape[1]}.")
    row, gate_row = split(full)
    draws = max_draws if posterior else None
    if y_grid is None:
        if fam.has_classes:
            y_grid = np.asarray(classes)
        else:
            q = predict(src, row, gate_X=gate_row, ci_prob=0.998, max_draws=draws, random_seed=0)
            lo, hi = float(q["lower"][0]), float(q["upper"][0])
            if fam.discrete:
                y_grid = np.arange(max(0, int(np.floor(lo))), int(np.ceil(hi)) + 1)
            else:
                pad = 0.05 * (hi - lo)
                y_grid = np.linspace(lo - pad, hi + pad, 200)
    d = conditional_density(src, row, y_grid, gate_X=gate_row, ci_prob=ci_prob, max_draws=draws)
    dens = d["density"].values[0]
    band = ("lower" in d) and (d["lower"].values[0], d["upper"].values[0])
    ax = _new_axes(ax)[0]
    yl = _y_label(src, y_label)
    where = ", ".join(f"{n}={v:.3g}" for n, v in zip(names, full[0], strict=True))
    if fam.has_classes or fam.discrete:
        pos = np.arange(len(y_grid)) if fam.has_classes else np.asarray(y_grid, float)
        ax.bar(pos, dens, color="C0", alpha=0.7, label="posterior mean" if band else "fit")
        if band:
            ax.errorbar(
                pos,
                dens,
                yerr=[dens - band[0], band[1] - dens],
                fmt="none",
                color="k",
                capsize=2,
                label=f"{ci_prob:.0%} interval",
            )
        if fam.has_classes:
            ax.set_xticks(pos, [str(c) for c in y_grid])
        ax.set_ylabel(f"P({yl} | x)")
    else:
        ax.plot(y_grid, dens, color="C0", lw=2, label="posterior mean" if band else "fit")
        if band:
            ax.fill_between(
                y_grid, band[0], band[1], color="C0", alpha=0.25, lw=0, label=f"{ci_prob:.0%} band"
            )
        ax.set_ylabel("p(y | x)" if yl == "y" else f"p({yl} | x)")
    ax.set_xlabel(yl)
    ax.set_title(f"predictive at {where}" if where else "predictive", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def _prior_of_k(trace, ks: np.ndarray):
    """The prior pmf of K stored by sample_random_k (attrs ``experts_prior``), on ``ks``."""
    raw = trace.attrs.get("experts_prior") if isinstance(trace, xr.DataTree) else None
    if raw is None:
        return None
    try:
        pmf = np.asarray(json.loads(raw) if isinstance(raw, str) else raw, dtype=float).ravel()
    except (TypeError, ValueError):
        return None  # a prior given by name only (e.g. "poisson:1.0"): nothing to draw
    if pmf.size < ks.max():
        return None
    return pmf[ks - 1]


def plot_k_posterior(trace, *, ax=None, prior=None, true_k: int | None = None):
    """p(K | y) of a random-K trace with its Monte Carlo standard errors, beside the prior of K.

    Parameters
    ----------
    trace : DataTree
        A :func:`bayesmoe.inference.rjmcmc.sample_random_k` trace (``n_experts`` per draw).
    prior : array_like, optional
        Prior pmf on K = 1..K_max (default: the trace's ``experts_prior`` attr).
    true_k : int, optional
        Mark a known K (simulations).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.plots import plot_k_posterior
    >>> k = np.random.default_rng(0).choice([1, 2, 3], p=[.2, .7, .1], size=(2, 200))
    >>> post = xr.Dataset({"n_experts": (("chain", "draw"), k)})
    >>> tree = xr.DataTree.from_dict({"posterior": post})
    >>> tree.attrs["experts_prior"] = "[0.5, 0.3, 0.2]"
    >>> ax = plot_k_posterior(tree)
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['prior p(K)', 'p(K | y) ± 2 MCSE']
    """
    from bayesmoe.inference.rjmcmc import k_posterior

    pk = k_posterior(trace)
    ks = pk["n_experts"].values.astype(int)
    p = pk.values
    mcse = np.nan_to_num(pk["mcse"].values)
    prior_p = _prior_of_k(trace, ks) if prior is None else np.asarray(prior, float)[ks - 1]
    ax = _new_axes(ax)[0]
    width = 0.38 if prior_p is not None else 0.7
    if prior_p is not None:
        ax.bar(ks - width / 2, prior_p, width=width, color="0.7", label="prior p(K)")
    pos = ks + (width / 2 if prior_p is not None else 0)
    ax.bar(pos, p, width=width, color="C0", label="p(K | y) ± 2 MCSE")
    lo, hi = np.clip(p - 2 * mcse, 0, 1), np.clip(p + 2 * mcse, 0, 1)  # within [0, 1]
    ax.errorbar(pos, p, yerr=[p - lo, hi - p], fmt="none", color="k", capsize=3)
    if true_k is not None:
        ax.axvline(true_k, color="k", ls="--", lw=1)
    ax.set_xticks(ks)
    ax.set_xlabel("number of experts K")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"p(K | y): mode K = {int(ks[np.argmax(p)])}", fontsize=10)
    ax.legend(fontsize=8)
    return ax


def plot_k_choice(table, *, figsize=(12, 6.2)):
    """The :func:`bayesmoe.compare_experts` table as one figure: the criteria panels of
    :func:`~bayesmoe.selection.compare.plot_compare_experts` above the table itself (ties
    marked), with the recommendation as the title.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd
    >>> from bayesmoe.plots import plot_k_choice
    >>> t = pd.DataFrame({"loglik": [-3.0, -1.0], "aic": [8.0, 6.0], "bic": [9.0, 8.0],
    ...                   "icl": [9.5, 8.5]}, index=pd.Index([1, 2], name="n_experts"))
    >>> t.attrs.update(selected={"bic": 2}, recommendation="K = 2: BIC, AIC and ICL agree.")
    >>> fig = plot_k_choice(t)
    >>> len(fig.axes), fig._suptitle.get_text()
    (4, 'K = 2: BIC, AIC and ICL agree.')
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from bayesmoe.selection.compare import plot_compare_experts

    fig = plt.figure(figsize=figsize, constrained_layout=True)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.2, 1])
    plot_compare_experts(table, axes=top.subplots(1, 3))
    ax = bottom.subplots()
    ax.axis("off")
    cols = [
        c
        for c in (
            "loglik",
            "n_params",
            "aic",
            "bic",
            "icl",
            "dsc",
            "p_mtm",
            "p_rjmcmc",
            "elpd_loo",
            "se_loo",
            "elpd_diff",
            "loo_tie",
        )
        if c in table and table[c].notna().any()
    ]
    cells = []
    for k in table.index:
        row = []
        for c in cols:
            v = table.loc[k, c]
            if v is None or (np.ndim(v) == 0 and v is pd.NA):
                row.append("")
            elif isinstance(v, (bool, np.bool_)):
                row.append("tie" if v else "")
            elif isinstance(v, (float, np.floating)):
                row.append("" if np.isnan(v) else f"{v:.4g}")
            else:
                row.append(str(v))
        cells.append(row)
    tab = ax.table(
        cellText=cells, colLabels=cols, rowLabels=[f"K={k}" for k in table.index], loc="center"
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    rec = table.attrs.get("recommendation")
    if rec:
        fig.suptitle(rec, fontsize=10)
    return fig


def plot_fit(fit, X=None, y=None, *, feature=0, at=None, gate_X=None, y_label=None, figsize=None):
    """The fitted model at a glance: :func:`plot_experts` beside :func:`plot_gate`.

    Parameters are those of :func:`plot_experts`.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import bayesmoe as bm
    >>> from bayesmoe.plots import plot_fit
    >>> X, y, truth = bm.data.simulate("S-B", n=60, random_seed=0)
    >>> fig = plot_fit(truth, X, y)
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    src, _ = _source(fit)
    _check_fixed_k(src)
    src = _relabelled(src)  # once for both panels
    _, fam, classes = _measure_info(_measure(src))
    n = (len(classes) if fam.has_classes else 1) + 1
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.6 * n, 3.6), constrained_layout=True)
    where = {"feature": feature, "at": at, "gate_X": gate_X}
    plot_experts(src, X, y, **where, ax=axes[:-1], y_label=y_label)
    plot_gate(src, X, **where, ax=axes[-1])
    return fig
