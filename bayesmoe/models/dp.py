"""Dirichlet-process gate: truncated stick-breaking weights as gate intercepts (docs/math.md §2).

    v_k ~ Beta(1, alpha), k < K_max;  w_k = v_k prod_{j<k} (1 - v_j);  w_{K_max} = prod_j (1 - v_j)
    beta0_k = log w_k,   beta1 ~ ZeroSumNormal over experts (free slopes),   alpha fixed or Gamma

so the gate is softmax_k(log w_k + beta1_k . z) on the standardised gate input z: at the centre of
the data the gate probabilities are the stick-breaking weights GEM(alpha) truncated at K_max.
Every parameter is continuous, so the model is sampled by NUTS alone
(:func:`bayesmoe.inference.dp.sample_dp`). Without covariates (X of shape (n, 0)) it is the
truncated DP mixture of normals.

Caution (Miller & Harrison 2013, 2014): under a Dirichlet-process (or Pitman–Yor) prior the
posterior of the number of *occupied* experts (experts with at least one observation allocated)
is inconsistent for the true number K*: it keeps putting mass on extra, tiny experts however
large n is. :func:`occupied_experts` reports it, as asked for, but select K with
merge–truncate–merge (:mod:`bayesmoe.selection.mtm`) or the dendrogram of mixing measures
instead of reading it off this count.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayesmoe._lazy import lazy_exports
from bayesmoe._validation import check_int, check_X, family_keyword
from bayesmoe.families import pytensor_ops
from bayesmoe.gates import STICK_BREAKING
from bayesmoe.measure import expert_log_prob, gate_probabilities, measure_arrays
from bayesmoe.models.builder import (
    data_inputs,
    expert_block,
    gate_deterministics,
    gate_slopes,
    observe,
    prepare,
)
from bayesmoe.models.priors import Priors

__all__ = ["TruncationWarning", "build_dp_model", "check_truncation", "occupied_experts"]


# sample_dp moved to bayesmoe.inference.dp; the old path keeps working
__getattr__, _ = lazy_exports(__name__, {"sample_dp": "bayesmoe.inference.dp"})


class TruncationWarning(UserWarning):
    """The last stick of a truncated stick-breaking gate carries non-negligible weight."""


def _check_alpha(alpha, alpha_prior):
    if alpha_prior is not None:
        try:
            a, b = (float(v) for v in alpha_prior)
        except (TypeError, ValueError):
            raise ValueError(
                "`alpha_prior` must be a pair (shape, rate) of positive numbers; got "
                f"{alpha_prior!r}."
            ) from None
        if not (a > 0 and b > 0):
            raise ValueError(f"`alpha_prior` (shape, rate) must be positive; got {alpha_prior!r}.")
        return None, (a, b)
    if alpha is None or not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(
            f"`alpha` must be a positive number (or give alpha_prior=(shape, rate)); got {alpha!r}."
        )
    return float(alpha), None


def build_dp_model(
    X,
    y,
    *,
    max_experts: int = 8,
    alpha: float | None = 1.0,
    alpha_prior: tuple[float, float] | None = None,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    priors: Priors | dict | None = None,
    feature_names: Sequence | None = None,
    classes: Sequence | None = None,
    experts: str | None = None,
):
    """Build the MoE whose gate intercepts are truncated stick-breaking log-weights.

    Parameters
    ----------
    X, y : array_like
        Inputs (n, d) and responses (real, or class labels for ``family="categorical"``).
    max_experts : int
        Truncation level K_max >= 2.
    alpha : float, optional
        Fixed DP concentration (default 1). Ignored when ``alpha_prior`` is given.
    alpha_prior : (shape, rate), optional
        ``alpha ~ Gamma(shape, rate)`` instead of a fixed value.
    experts, gate, temperature, priors, feature_names, classes
        As in :func:`bayesmoe.models.build_model` (``priors.gate_intercept`` is unused: the
        intercepts are the stick-breaking log-weights).

    Returns
    -------
    model : pymc.Model
        Free ``sticks`` (v, dim ``stick``), ``beta1_std``, ``a_std``, ``b_std`` (``sigma_std``),
        (``alpha``); Deterministics ``weights[expert]`` and the user-units measure
        ``beta0, beta1, a, b`` (``sigma``).
    spec : bayesmoe.models.spec.ModelSpec
        The validated data and options (``kind="dp"``, with ``alpha`` and ``alpha_prior``).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.dp import build_dp_model
    >>> X, y, _ = simulate("S-B", n=50, random_seed=0)
    >>> model, info = build_dp_model(X, y, max_experts=5, alpha=1.0)
    >>> model.initial_point()["sticks_logodds__"].shape
    (4,)
    """
    family = family_keyword(family, experts, "build_dp_model")
    K = check_int(max_experts, "max_experts", minimum=2)
    alpha, alpha_prior = _check_alpha(alpha, alpha_prior)
    s = prepare(
        X,
        y,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
    )
    coords = {**s.coords(K), "stick": np.arange(K - 1)}
    with pm.Model(coords=coords) as model:
        inp = data_inputs(s)
        a_conc = pm.Gamma("alpha", alpha_prior[0], alpha_prior[1]) if alpha_prior else alpha
        v = pm.Beta("sticks", 1.0, a_conc, dims="stick")
        log_w = STICK_BREAKING.log_intercepts(v, pytensor_ops())
        pm.Deterministic("weights", pt.exp(log_w), dims="expert")
        beta1_s = gate_slopes(K, s.d_gate, s.priors, "zerosum")
        eta = (pt.dot(inp.Zs, beta1_s) + log_w) / s.temperature
        gate_deterministics(log_w, beta1_s, inp)
        params = expert_block(s.family, s.priors, inp, K, s.d)
        observe(s.family, eta, params, s.y, STICK_BREAKING)
    s.n_experts, s.kind, s.alpha, s.alpha_prior = K, "dp", alpha, alpha_prior
    info = s
    return model, info


def occupied_experts(
    trace: xr.DataTree, X, y, *, min_count: int = 1, random_seed=None, gate: Callable | None = None
) -> xr.DataArray:
    """Number of occupied experts per draw: allocations ``z_i ~ p(z_i = k | x_i, y_i, theta)``
    drawn once per draw, and the experts with at least ``min_count`` observations counted.

    Miller–Harrison caution: under DP/PY priors this count is inconsistent for K* (extra tiny
    experts persist as n grows); report it, but select K with MTM or the dendrogram.

    Parameters
    ----------
    trace : xarray.DataTree
        Posterior with ``beta0, beta1, a, b`` (``sigma``) in user units (e.g. :func:`sample_dp`).
    X, y : array_like
        The data the trace was fitted to (y as class codes 0..M-1 for categorical experts).
    min_count : int
        Observations an expert needs to count as occupied (1: the Miller–Harrison quantity).
    random_seed : int, optional
    gate : callable, optional
        The gate transform, needed for a measure with ``gate="custom"``.

    Returns
    -------
    xarray.DataArray
        dims (chain, draw), name ``n_occupied``.

    Examples
    --------
    The true measure of a simulation written as a one-chain, two-draw "posterior":

    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.dp import occupied_experts
    >>> X, y, truth = simulate("S-B", n=300, random_seed=0)
    >>> post = truth.drop_vars("sigma2").assign(sigma=np.sqrt(truth["sigma2"]))
    >>> trace = xr.DataTree.from_dict({"posterior": post.expand_dims(chain=1, draw=2)})
    >>> occupied_experts(trace, X, y, random_seed=0).values
    array([[3, 3]])
    >>> occupied_experts(trace, X, y, min_count=100, random_seed=0).values
    array([[1, 1]])
    """
    from bayesmoe.diagnostics.mixing import mixing_measure

    check_int(min_count, "min_count")
    G = mixing_measure(trace)
    p = measure_arrays(G, ["chain", "draw"])
    X = check_X(X)
    rng = np.random.default_rng(random_seed)
    g = gate if gate is not None else G.attrs.get("gate", "softmax")
    C, D = p["sample_shape"]
    out = np.zeros((C, D), dtype=np.int64)
    K = p["beta0"].shape[-1]
    for c in range(C):  # one chain at a time bounds memory at draws x n x K
        sub = {k: v[c] if isinstance(v, np.ndarray) else v for k, v in p.items()}
        log_g = np.log(
            np.maximum(
                gate_probabilities(
                    sub["beta0"],
                    sub["beta1"],
                    X,
                    gate=g,
                    temperature=G.attrs.get("temperature", 1.0),
                ),
                1e-300,
            )
        )
        lp = log_g + expert_log_prob(sub, X, y)  # (D, n, K)
        lp -= lp.max(-1, keepdims=True)
        prob = np.exp(lp)
        prob /= prob.sum(-1, keepdims=True)
        u = rng.uniform(size=prob.shape[:-1] + (1,))
        z = np.minimum((u > np.cumsum(prob, -1)).sum(-1), K - 1)  # (D, n)
        counts = (z[..., None] == np.arange(K)).sum(-2)  # (D, K)
        out[c] = (counts >= min_count).sum(-1)
    return xr.DataArray(
        out,
        dims=("chain", "draw"),
        coords={"chain": G["chain"].values, "draw": G["draw"].values},
        name="n_occupied",
        attrs={
            "min_count": min_count,
            "caution": "Miller & Harrison: inconsistent for the number of experts under DP priors",
        },
    )


def check_truncation(trace, *, tol: float = 0.01) -> float:
    """Posterior mean weight of the last stick ``w_{K_max}``; warns (:class:`TruncationWarning`)
    when it exceeds ``tol`` (the truncation level is too small).

    Examples
    --------
    >>> import warnings, xarray as xr
    >>> from bayesmoe.models.dp import check_truncation
    >>> post = xr.Dataset({"weights": (("chain", "draw", "expert"), [[[0.7, 0.29, 0.01]]])})
    >>> tree = xr.DataTree.from_dict({"posterior": post})
    >>> round(check_truncation(tree, tol=0.05), 3)
    0.01
    """
    post = trace["posterior"] if isinstance(trace, xr.DataTree) else trace
    if "weights" not in post:
        raise ValueError("The posterior has no `weights`; pass a sample_dp trace.")
    last = float(post["weights"].isel(expert=-1).mean())
    if last > tol:
        K = post["weights"].sizes["expert"]
        warnings.warn(
            f"The last stick carries posterior mean weight {last:.3g} > {tol}: the truncation at "
            f"max_experts={K} is too small for this alpha and data. Increase max_experts.",
            TruncationWarning,
            stacklevel=2,
        )
    return last
