"""Posterior prediction for new inputs, in the user's units, as labelled xarray objects."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy.special import log_softmax, logsumexp

from bayesmoe._validation import align_columns, check_X, keywords_checked
from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.measure import (
    SAMPLE_DIMS,
    conditional_mean,
    expert_log_prob,
    gate_input,
    measure_arrays,
)
from bayesmoe.measure import (
    gate_probabilities as _gate_probs,
)

__all__ = [
    "conditional_density",
    "gate_probabilities",
    "posterior_predictive",
    "predict",
]


def _feature_names(trace) -> list | None:
    """The fit's feature names: the ``feature`` coordinate of the posterior or measure."""
    if isinstance(trace, xr.DataTree):
        for group in ("posterior", "constant_data"):
            if group in trace.children and "feature" in trace[group].coords:
                return trace[group]["feature"].values.tolist()
        return None
    if isinstance(trace, xr.Dataset) and "feature" in trace.coords:
        return trace["feature"].values.tolist()
    return None


def _align(trace, X_new):
    """``X_new`` with a DataFrame's columns put in the fit's order, by name (numpy unchanged)."""
    return align_columns(X_new, _feature_names(trace), "X_new")


def _prepare(trace, X_new, gate, max_draws, random_seed=None):
    G = mixing_measure(trace)
    if G.attrs.get("gate") == "custom" and gate is None:
        raise ValueError(
            "This posterior uses a custom gate callable; pass it again as `gate=` "
            "(callables are not stored in traces)."
        )
    X_new = check_X(X_new, "X_new")
    d = G.sizes["feature"]
    if X_new.shape[1] != d:
        raise ValueError(
            f"`X_new` must have {d} feature columns (as in the fit); got {X_new.shape[1]}."
        )
    sample_dims = [s for s in SAMPLE_DIMS if s in G.dims]
    if max_draws is not None and sample_dims == ["chain", "draw"]:
        n_draws = G.sizes["draw"]
        per_chain = max(1, int(max_draws) // G.sizes["chain"])
        if per_chain < n_draws:
            G = G.isel(draw=np.linspace(0, n_draws - 1, per_chain).round().astype(int))
    p = measure_arrays(G, sample_dims)
    p["gate"] = gate if gate is not None else G.attrs.get("gate", "identity")
    p["temperature"] = G.attrs.get("temperature", 1.0)
    coords = {s: G[s].values for s in sample_dims}
    coords["obs"] = np.arange(X_new.shape[0])
    return G, p, X_new, sample_dims, coords


@keywords_checked
def gate_probabilities(
    trace, X_new, *, gate: Callable | None = None, max_draws: int | None = None
) -> xr.DataArray:
    """Posterior draws of the gate probabilities g_k(x) at new inputs.

    Returns
    -------
    xarray.DataArray
        dims (chain, draw, obs, expert). Relabel the trace first to compare experts across draws.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import gate_probabilities
    >>> X, y, truth = simulate("S-B", n=20, random_seed=0)
    >>> gate_probabilities(truth, X[:5]).dims
    ('obs', 'expert')
    """
    X_new = _align(trace, X_new)
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws)
    w = _gate_probs(
        p["beta0"],
        p["beta1"],
        X_new,
        gate=p["gate"],
        temperature=p["temperature"],
        active=p.get("active"),
    )
    coords["expert"] = G["expert"].values
    return xr.DataArray(w, dims=(*sdims, "obs", "expert"), coords=coords, name="gate")


@keywords_checked
def posterior_predictive(
    trace,
    X_new,
    *,
    gate: Callable | None = None,
    max_draws: int | None = None,
    random_seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Posterior predictive draws at new inputs.

    Returns
    -------
    xarray.Dataset
        ``y[chain, draw, obs]`` predictive draws (class labels for classification) and
        ``expected_y[chain, draw, obs]`` (regression: E[y|x]) or
        ``probs[chain, draw, obs, class]`` (classification: P(y = class | x)).
    """
    X_new = _align(trace, X_new)
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws)
    rng = np.random.default_rng(random_seed)
    w = _gate_probs(
        p["beta0"],
        p["beta1"],
        X_new,
        gate=p["gate"],
        temperature=p["temperature"],
        active=p.get("active"),
    )
    k = (rng.uniform(size=w.shape[:-1] + (1,)) > np.cumsum(w, -1)).sum(-1)
    k = np.minimum(k, w.shape[-1] - 1)[..., None]
    dims = (*sdims, "obs")
    if "sigma2" in p:
        mu = np.einsum("nd,...dk->...nk", X_new, p["a"]) + p["b"][..., None, :]
        sd = np.broadcast_to(np.sqrt(p["sigma2"])[..., None, :], mu.shape)
        y = (
            np.take_along_axis(mu, k, -1)
            + np.take_along_axis(sd, k, -1) * rng.standard_normal(k.shape)
        )[..., 0]
        return xr.Dataset({"y": (dims, y), "expected_y": (dims, (w * mu).sum(-1))}, coords=coords)
    probs = conditional_mean(p, X_new)  # (..., n, M)
    logits = np.einsum("nd,...dmk->...nmk", X_new, p["a"]) + p["b"][..., None, :, :]
    pk = np.exp(log_softmax(np.take_along_axis(logits, k[..., None, :], -1)[..., 0], axis=-1))
    codes = np.minimum(
        (rng.uniform(size=pk.shape[:-1] + (1,)) > np.cumsum(pk, -1)).sum(-1), pk.shape[-1] - 1
    )
    classes = G["class"].values
    coords["class"] = classes
    return xr.Dataset(
        {"y": (dims, classes[codes]), "probs": ((*dims, "class"), probs)}, coords=coords
    )


@keywords_checked
def predict(
    trace,
    X_new,
    *,
    ci_prob: float = 0.94,
    gate: Callable | None = None,
    max_draws: int | None = 2000,
    random_seed: int | np.random.Generator | None = None,
) -> xr.Dataset:
    """Posterior predictive summary at new inputs.

    Regression: ``mean[obs]`` (posterior mean of E[y|x]), ``mean_lower/mean_upper`` (credible
    interval of E[y|x]) and ``lower/upper`` (predictive interval of a new y), all in y's units.
    Classification: ``probs[obs, class]`` (posterior mean class probabilities), ``label[obs]``
    (most probable class).

    Parameters
    ----------
    trace : DataTree or mixing measure
    X_new : array_like (n_new, n_features)
    ci_prob : float
        Probability mass of the equal-tailed intervals.
    gate : callable, optional
        The gate callable, for a model fitted with a custom gate.
    max_draws : int, optional
        Thin to at most this many posterior draws (spread evenly over each chain).
    random_seed : int, optional

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import predict
    >>> X, y, truth = simulate("S-B", n=50, random_seed=0)
    >>> list(predict(truth, X[:3], random_seed=0).data_vars)
    ['mean', 'mean_lower', 'mean_upper', 'lower', 'upper']
    """
    X_new = _align(trace, X_new)
    if not 0 < ci_prob < 1:
        raise ValueError(f"`ci_prob` must be in (0, 1); got {ci_prob!r}.")
    pp = posterior_predictive(trace, X_new, gate=gate, max_draws=max_draws, random_seed=random_seed)
    sdims = [d for d in SAMPLE_DIMS if d in pp.dims]
    q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    attrs = {"ci_prob": ci_prob}
    if "expected_y" in pp:
        ey = pp["expected_y"]
        if sdims:
            mq = ey.quantile(q, dim=sdims)
            yq = pp["y"].quantile(q, dim=sdims).values
        else:  # one measure: E[y|x] is exact; predictive quantiles by inverting the mixture CDF
            mq = xr.concat([ey, ey], "quantile")
            yq = _mixture_quantiles(trace, X_new, q, gate)
        return xr.Dataset(
            {
                "mean": ey.mean(sdims) if sdims else ey,
                "mean_lower": mq.isel(quantile=0, drop=True),
                "mean_upper": mq.isel(quantile=1, drop=True),
                "lower": (("obs",), yq[0]),
                "upper": (("obs",), yq[1]),
            }
        ).assign_attrs(attrs)
    probs = pp["probs"].mean(sdims) if sdims else pp["probs"]
    label = probs["class"].values[probs.argmax("class").values]
    return xr.Dataset(
        {"probs": probs, "label": (("obs",), label)}, coords={"obs": pp["obs"].values}
    ).assign_attrs(attrs)


def _mixture_quantiles(measure, X_new, q, gate, n_bisect: int = 80) -> np.ndarray:
    """Quantiles q of the Gaussian mixture y | x of one measure, by vectorised bisection."""
    from scipy.stats import norm

    _, p, X_new, _, _ = _prepare(measure, X_new, gate, None)
    w = _gate_probs(
        p["beta0"],
        p["beta1"],
        X_new,
        gate=p["gate"],
        temperature=p["temperature"],
        active=p.get("active"),
    )
    mu = X_new @ p["a"] + p["b"]
    sd = np.sqrt(p["sigma2"])
    out = np.empty((len(q), X_new.shape[0]))
    for j, qq in enumerate(q):
        lo, hi = (mu - 10 * sd).min(1), (mu + 10 * sd).max(1)
        for _ in range(n_bisect):  # interval halves each step: 2**-80 of the initial width
            mid = 0.5 * (lo + hi)
            below = (w * norm.cdf((mid[:, None] - mu) / sd)).sum(1) < qq
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out[j] = 0.5 * (lo + hi)
    return out


@keywords_checked
def conditional_density(
    trace,
    X_new,
    y_grid,
    *,
    ci_prob: float = 0.94,
    gate: Callable | None = None,
    max_draws: int | None = 1000,
) -> xr.Dataset:
    """The conditional density p(y | x) (regression) or pmf (classification) at new inputs.

    Parameters
    ----------
    y_grid : array_like
        Values of y at which to evaluate (regression), or class labels (classification).

    Returns
    -------
    xarray.Dataset
        ``density[obs, y]`` (posterior mean) and, for a posterior, ``lower/upper[obs, y]``
        (pointwise equal-tailed credible band).
    """
    X_new = _align(trace, X_new)
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws)
    y_grid = np.asarray(y_grid)
    if y_grid.ndim != 1 or y_grid.size == 0:
        raise ValueError(f"`y_grid` must be a non-empty 1-D array; got shape {y_grid.shape}.")
    n, m = X_new.shape[0], y_grid.size
    Xr = np.repeat(X_new, m, axis=0)
    if "sigma2" in p:
        yr = np.tile(y_grid.astype(float), n)
    else:
        lookup = {c: i for i, c in enumerate(G["class"].values.tolist())}
        try:
            yr = np.tile([lookup[c] for c in y_grid.tolist()], n)
        except KeyError as err:
            raise ValueError(f"`y_grid` label {err.args[0]!r} is not a class of the fit.") from None
    eta = np.einsum("nd,...dk->...nk", gate_input(Xr, p["gate"]), p["beta1"])
    eta = (eta + p["beta0"][..., None, :]) / p["temperature"]
    logd = logsumexp(log_softmax(eta, -1) + expert_log_prob(p, Xr, yr), -1)
    dens = np.exp(logd).reshape(logd.shape[:-1] + (n, m))
    coords["y"] = y_grid
    da = xr.DataArray(dens, dims=(*sdims, "obs", "y"), coords=coords)
    if not sdims:
        return xr.Dataset({"density": da})
    q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    band = da.quantile(q, dim=sdims)
    return xr.Dataset(
        {
            "density": da.mean(sdims),
            "lower": band.isel(quantile=0, drop=True),
            "upper": band.isel(quantile=1, drop=True),
        }
    ).assign_attrs(ci_prob=ci_prob)
