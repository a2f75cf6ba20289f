"""Posterior prediction for new inputs, in the user's units, as labelled xarray objects."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from bayesmoe._validation import align_columns, check_X, keywords_checked
from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.families import NUMPY, get_family
from bayesmoe.formula import new_rows
from bayesmoe.gates import stored_gate
from bayesmoe.measure import (
    SAMPLE_DIMS,
    _log_gate,
    _offset,
    _trials,
    gate_covariates,
    gate_is_shared,
    measure_arrays,
)

__all__ = [
    "conditional_density",
    "gate_probabilities",
    "posterior_predictive",
    "predict",
]


def _design(G, X_new, gate_X):
    """The experts' rows and the gate's raw rows: a DataFrame ``X_new`` may carry the gate's own
    covariates as extra columns (picked by name when ``gate_X`` is not given).
    """
    feats = [str(f) for f in G["feature"].values]
    if gate_X is None and hasattr(X_new, "columns") and not gate_is_shared(G):
        Z = gate_covariates(G, X_new, None)
        cols = [str(c) for c in X_new.columns]
        if set(feats) <= set(cols):
            X_new = X_new[[c for f in feats for c in X_new.columns if str(c) == f]]
        return align_columns(X_new, feats, "X_new"), Z
    X_new = align_columns(X_new, feats, "X_new")
    return X_new, gate_covariates(G, check_X(X_new, "X_new"), gate_X)


def _prepare(trace, X_new, gate, max_draws, offset=None, gate_X=None, trials=None):
    # Into memory before thinning: a lazily opened trace.nc (xr.open_datatree without .load())
    # cannot be fancy-indexed on its zero-size variables (no covariates: beta1 and a have
    # feature = 0), h5py raises "Dataspaces don't have hyperslab selections".
    G = mixing_measure(trace).load()
    X_new, offset, gate_X = new_rows(trace, X_new, offset, gate_X)  # a formula fit's designs
    gate = stored_gate(G.attrs.get("gate"), gate, what="This posterior", fix="pass it as `gate=`")
    X_new, Z = _design(G, X_new, gate_X)
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
    p["Z"] = Z
    p["gate"] = gate
    p["temperature"] = G.attrs.get("temperature", 1.0)
    fam = get_family(p["family"])
    if offset is not None and not fam.takes_offset:
        raise ValueError(f"`offset` applies to families with a log link; {fam.name} takes none.")
    p["offset"] = _offset(offset, X_new.shape[0])
    if trials is not None and "trials" not in fam.row_data:
        raise ValueError(f"`trials` applies to binomial experts; {fam.name} takes none.")
    p["trials"] = _trials(trials, X_new.shape[0])
    coords = {s: G[s].values for s in sample_dims}
    coords["obs"] = np.arange(X_new.shape[0])
    return G, p, X_new, sample_dims, coords


def _mixture(p: dict, X_new: np.ndarray) -> dict:
    """The mixture p(y | x) = sum_k g_k(x) p_k(y | x) of every draw at X_new: the one place
    where prediction evaluates it (gate_probabilities, posterior_predictive, predict,
    conditional_density and the exact quantiles all use it).

    Inactive experts (random K: ``active`` False) get log-weight -inf, so the weights are the
    softmax over the active experts only and sum to one; their expert parameters (prior draws
    in padded slots) never enter a result.

    Returns a dict with ``log_w`` (*S, n, K), ``w``, ``on`` (bool, the active experts), the
    family ``fam``, its ``predictors`` at X_new (the family's one definition) and ``mean``:
    each expert's mean (*S, n, K), or class probabilities (*S, n, M, K), zero where inactive.
    """
    log_w = _log_gate(
        p["beta0"],
        p["beta1"],
        p["Z"],
        gate=p["gate"],
        temperature=p["temperature"],
        active=p.get("active"),
    )
    on = np.isfinite(log_w)
    fam = get_family(p["family"])
    canon = {k: p[k] for k in fam.canonical_dims}
    with np.errstate(all="ignore"):  # inactive slots may hold anything; they are masked
        preds = fam.user_predictors(canon, X_new, p)
        mean = fam.mean(*preds)
    mask = on[..., None, :] if fam.has_classes else on
    return {
        "log_w": log_w,
        "w": np.exp(log_w),
        "on": on,
        "fam": fam,
        "predictors": preds,
        "mean": np.where(mask, mean, 0.0),
    }


def _draw_expert(w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One expert index per (draw, obs) with probabilities w (..., K), never one of weight 0.

    The cumulative sum is divided by its last entry, so it reaches exactly 1 at the last active
    expert and a uniform draw in [0, 1) never selects an inactive slot after it.
    """
    c = np.cumsum(w, -1)
    c = c / c[..., -1:]
    k = (rng.uniform(size=w.shape[:-1] + (1,)) > c).sum(-1)
    return np.minimum(k, w.shape[-1] - 1)[..., None]


@keywords_checked
def gate_probabilities(
    trace,
    X_new,
    *,
    gate: Callable | None = None,
    max_draws: int | None = None,
    gate_X=None,
) -> xr.DataArray:
    """Posterior draws of the gate probabilities g_k(x) at new inputs.

    Returns
    -------
    xarray.DataArray
        dims (chain, draw, obs, expert). Relabel the trace first to compare experts across draws.
        In a random-K trace the inactive (padded) experts of a draw have probability 0 and the
        active ones sum to 1. For a model whose gate has covariates of its own pass them as
        ``gate_X`` (n_new rows), or as extra columns of a DataFrame ``X_new``.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import gate_probabilities
    >>> X, y, truth = simulate("S-B", n=20, random_seed=0)
    >>> gate_probabilities(truth, X[:5]).dims
    ('obs', 'expert')
    """
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws, None, gate_X)
    w = _mixture(p, X_new)["w"]
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
    extend: bool = False,
    observed=None,
    offset=None,
    gate_X=None,
    trials=None,
) -> xr.Dataset | xr.DataTree:
    """Posterior predictive draws at new inputs.

    Parameters
    ----------
    trace : xarray.DataTree or mixing measure
        A posterior trace (fixed K, random K or DP), in memory or lazily opened with
        ``xarray.open_datatree``; or one mixing measure.
    X_new : array_like (n_new, n_features)
        Inputs in the user's units.
    gate : callable, optional
        The gate callable, for a model fitted with a custom gate.
    max_draws : int, optional
        Thin to at most this many posterior draws (spread evenly over each chain).
    random_seed : int or numpy.random.Generator, optional
    extend : bool, default False
        If True, add the draws ``y`` to ``trace`` (a DataTree) in place as its
        ``posterior_predictive`` group, replacing an existing one, with an ``observed_data``
        group next to it when the trace has none (from ``observed``), and return the trace: the
        layout of ``pymc.sample_posterior_predictive(extend_inferencedata=True)`` that ArviZ's
        predictive checks read (``arviz.plot_ppc_dist(trace)``). ``X_new`` must then be the
        inputs of the observations, one row per observation: the draws share the ``obs``
        coordinate and the variable name of ``observed_data``. Classification draws are
        stored as class codes 0..M-1, as the observed classes are.
    observed : array_like (n_new,), optional
        With ``extend=True`` only: the observed responses at ``X_new`` (class labels for
        classification), written as ``observed_data.y`` when the trace has no
        ``observed_data`` group. If the trace has one, ``observed`` must equal it.
    offset : array_like (n_new,), optional
        Log-exposures at ``X_new`` for families with a log link (Poisson); default 0
        (exposure 1).
    trials : array_like (n_new,), optional
        Numbers of trials at ``X_new`` of binomial experts; default 1 (Bernoulli rows).
    gate_X : array_like (n_new, n_gate_features), optional
        The gate's covariates at the new rows, for a model whose gate has its own (a DataFrame
        ``X_new`` may carry them as extra columns instead).

    Returns
    -------
    xarray.Dataset or xarray.DataTree
        ``extend=False``: a Dataset with ``y[chain, draw, obs]`` predictive draws (class labels
        for classification) and ``expected_y[chain, draw, obs]`` (regression: E[y|x]) or
        ``probs[chain, draw, obs, class]`` (classification: P(y = class | x)).
        ``extend=True``: ``trace`` itself, with the ``posterior_predictive`` (and
        ``observed_data``) group.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import posterior_predictive
    >>> X, y, truth = simulate("S-B", n=30, random_seed=0)
    >>> post = truth.expand_dims(chain=[0], draw=[0, 1])
    >>> tree = xr.DataTree.from_dict({"posterior": post})
    >>> tree = posterior_predictive(tree, X, extend=True, observed=y, random_seed=0)
    >>> sorted(tree.children), tree["posterior_predictive"]["y"].dims
    (['observed_data', 'posterior', 'posterior_predictive'], ('chain', 'draw', 'obs'))
    """
    if not isinstance(extend, (bool, np.bool_)):
        raise TypeError(f"`extend` must be True or False; got {extend!r}.")
    if extend and not isinstance(trace, xr.DataTree):
        raise TypeError(
            "`extend=True` adds a group to a trace, so `trace` must be an xarray.DataTree; "
            f"got {type(trace).__name__}."
        )
    if observed is not None and not extend:
        raise ValueError("`observed` is only used with `extend=True`; got extend=False.")
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws, offset, gate_X, trials)
    rng = np.random.default_rng(random_seed)
    mix = _mixture(p, X_new)
    w, fam = mix["w"], mix["fam"]
    k = _draw_expert(w, rng)[..., 0]
    y = fam.draw(rng, k, *mix["predictors"])
    dims = (*sdims, "obs")
    if not fam.has_classes:
        expected = (w * mix["mean"]).sum(-1)
        out = xr.Dataset({"y": (dims, y), "expected_y": (dims, expected)}, coords=coords)
        return _extend(trace, out, y, observed, None) if extend else out
    probs = np.einsum("...nk,...nmk->...nm", w, mix["mean"])
    classes = G["class"].values
    coords["class"] = classes
    out = xr.Dataset({"y": (dims, classes[y]), "probs": ((*dims, "class"), probs)}, coords=coords)
    return _extend(trace, out, y, observed, classes) if extend else out


def _extend(trace: xr.DataTree, pp: xr.Dataset, draws, observed, classes) -> xr.DataTree:
    """Add ``posterior_predictive`` (and ``observed_data``) groups to ``trace`` in place."""
    n = pp.sizes["obs"]
    sdims = [d for d in SAMPLE_DIMS if d in pp.dims]
    if sdims != list(SAMPLE_DIMS):
        raise ValueError(
            "`extend=True` needs a posterior with (chain, draw) dims; the trace's posterior has "
            f"sample dims {sdims}."
        )
    if observed is not None:
        obs = np.asarray(observed)
        if obs.shape != (n,):
            raise ValueError(
                f"`observed` must have shape ({n},), one value per row of `X_new`; got shape "
                f"{obs.shape}."
            )
        if classes is not None:
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            try:
                obs = np.array([lookup[c] for c in obs.tolist()])
            except KeyError as err:
                raise ValueError(
                    f"`observed` label {err.args[0]!r} is not a class of the fit."
                ) from None
    if "observed_data" in trace.children:
        od = trace["observed_data"].to_dataset()
        names = list(od.data_vars)
        name = names[0] if len(names) == 1 else "y"
        if name not in od or od[name].dims != ("obs",):
            raise ValueError(
                "`extend=True` needs one observed variable with dim 'obs' in observed_data; "
                f"found {names}."
            )
        if od.sizes["obs"] != n:
            raise ValueError(
                f"`X_new` must be the inputs of the {od.sizes['obs']} observations of "
                f"observed_data when `extend=True`; got {n} rows."
            )
        obs_coord = od["obs"].values
        if observed is not None and not np.array_equal(np.asarray(od[name].values), obs):
            raise ValueError(
                "`observed` differs from the trace's observed_data; pass observed=None to keep "
                "the trace's observations."
            )
    else:
        if observed is None:
            raise ValueError(
                "The trace has no observed_data group; pass the observed responses at `X_new` "
                "as `observed=` (extend=True)."
            )
        name, obs_coord = "y", pp["obs"].values
        trace["observed_data"] = xr.Dataset({name: ("obs", obs)}, coords={"obs": obs_coord})
    group = xr.Dataset(
        {name: (("chain", "draw", "obs"), draws)},
        coords={"chain": pp["chain"].values, "draw": pp["draw"].values, "obs": obs_coord},
        attrs={"created_by": "bayesmoe.inference.posterior_predictive"},
    )
    trace["posterior_predictive"] = group
    return trace


@keywords_checked
def predict(
    trace,
    X_new,
    *,
    ci_prob: float = 0.94,
    gate: Callable | None = None,
    max_draws: int | None = 2000,
    random_seed: int | np.random.Generator | None = None,
    offset=None,
    gate_X=None,
    trials=None,
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
    offset : array_like (n_new,), optional
        Log-exposures at ``X_new`` (families with a log link); default 0.
    trials : array_like (n_new,), optional
        Numbers of trials at ``X_new`` of binomial experts; default 1 (Bernoulli rows).
    gate_X : array_like (n_new, n_gate_features), optional
        The gate's covariates at the new rows, for a model whose gate has its own (a DataFrame
        ``X_new`` may carry them as extra columns instead).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import predict
    >>> X, y, truth = simulate("S-B", n=50, random_seed=0)
    >>> list(predict(truth, X[:3], random_seed=0).data_vars)
    ['mean', 'mean_lower', 'mean_upper', 'lower', 'upper']
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"`ci_prob` must be in (0, 1); got {ci_prob!r}.")
    pp = posterior_predictive(
        trace,
        X_new,
        gate=gate,
        max_draws=max_draws,
        random_seed=random_seed,
        offset=offset,
        gate_X=gate_X,
        trials=trials,
    )
    sdims = [d for d in SAMPLE_DIMS if d in pp.dims]
    q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    attrs = {"ci_prob": ci_prob}
    if "expected_y" in pp:
        ey = pp["expected_y"]
        if sdims:
            mq = ey.quantile(q, dim=sdims)
            # counts: the draws' own values (the smallest whose share reaches q), not a value
            # interpolated between two counts
            method = "inverted_cdf" if pp["y"].dtype.kind in "iu" else "linear"
            yq = pp["y"].quantile(q, dim=sdims, method=method).values
        else:  # one measure: E[y|x] is exact; predictive quantiles by inverting the mixture CDF
            mq = xr.concat([ey, ey], "quantile")
            yq = _mixture_quantiles(trace, X_new, q, gate, offset, gate_X, trials)
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


def _mixture_quantiles(
    measure, X_new, q, gate, offset=None, gate_X=None, trials=None, n_bisect: int = 80
) -> np.ndarray:
    """Quantiles q of the mixture y | x of one measure, by vectorised bisection on the family's
    CDF (for a discrete family: the smallest count whose CDF reaches q).
    """
    _, p, X_new, _, _ = _prepare(measure, X_new, gate, None, offset, gate_X, trials)
    mix = _mixture(p, X_new)
    w, on, fam, preds = mix["w"], mix["on"], mix["fam"], mix["predictors"]
    lo_k, hi_k = fam.quantile_bounds(*preds)
    lo0 = np.where(on, lo_k, np.inf).min(1)
    hi0 = np.where(on, hi_k, -np.inf).max(1)
    out = np.empty((len(q), X_new.shape[0]))
    for j, qq in enumerate(q):
        lo, hi = lo0, hi0
        for _ in range(n_bisect):  # interval halves each step: 2**-80 of the initial width
            mid = 0.5 * (lo + hi)
            t = np.floor(mid) if fam.discrete else mid
            below = (w * np.where(on, fam.cdf(t[:, None], *preds), 0.0)).sum(1) < qq
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out[j] = np.ceil(lo) if fam.discrete else 0.5 * (lo + hi)
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
    offset=None,
    gate_X=None,
    trials=None,
) -> xr.Dataset:
    """The conditional density p(y | x) (regression), pmf (counts, classification) at new inputs.

    Parameters
    ----------
    y_grid : array_like
        Values of y at which to evaluate (regression, counts), or class labels (classification).
    offset : array_like (n_new,), optional
        Log-exposures at ``X_new`` (families with a log link); default 0.
    trials : array_like (n_new,), optional
        Numbers of trials at ``X_new`` of binomial experts; default 1 (Bernoulli rows).
    gate_X : array_like (n_new, n_gate_features), optional
        The gate's covariates at the new rows, for a model whose gate has its own (a DataFrame
        ``X_new`` may carry them as extra columns instead).

    Returns
    -------
    xarray.Dataset
        ``density[obs, y]`` (posterior mean) and, for a posterior, ``lower/upper[obs, y]``
        (pointwise equal-tailed credible band). Each draw's density is the mixture of its
        active experts (random K: inactive, padded slots carry no weight), so it integrates
        (sums over classes) to one.
    """
    G, p, X_new, sdims, coords = _prepare(trace, X_new, gate, max_draws, offset, gate_X, trials)
    y_grid = np.asarray(y_grid)
    if y_grid.ndim != 1 or y_grid.size == 0:
        raise ValueError(f"`y_grid` must be a non-empty 1-D array; got shape {y_grid.shape}.")
    mix = _mixture(p, X_new)
    fam = mix["fam"]
    log_w = mix["log_w"][..., :, None, :]  # (..., n, 1, K)
    if fam.has_classes:
        lookup = {c: i for i, c in enumerate(G["class"].values.tolist())}
        try:
            values = np.array([lookup[c] for c in y_grid.tolist()], dtype=int)
        except KeyError as err:
            raise ValueError(f"`y_grid` label {err.args[0]!r} is not a class of the fit.") from None
    else:
        values = y_grid.astype(float)
    # every predictor gets a grid axis after obs: (..., n, 1, [M,] K) against values (m,)
    preds = [np.expand_dims(v, -(2 + fam.n_event)) for v in mix["predictors"]]
    with np.errstate(all="ignore"):
        log_pk = fam.component_log_prob(NUMPY, values, *preds)  # (..., n, m, K)
    log_pk = np.where(np.isfinite(log_w), log_pk, 0.0)
    dens = np.exp(logsumexp(log_w + log_pk, axis=-1))  # (..., n, m); inactive experts: -inf
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
