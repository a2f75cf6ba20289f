"""PyMC model builder for the fixed-K softmax-gated mixture of experts (docs/math.md §1–2).

The model is written on the standardised scale (free variables end in ``_std``); the mixing
measure in the user's units is recorded as Deterministics ``beta0, beta1, a, b`` (and ``sigma``,
the noise sd, for Gaussian experts). The likelihood is one observed CustomDist ``y`` in the user's
units of y, so ``pm.compute_log_likelihood`` and ``az.loo`` see the data's own scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.tensor.special import log_softmax

from bayesmoe.models.priors import Priors
from bayesmoe.models.spec import (  # noqa: F401 - re-exported (the builders' shared checks)
    IDENTIFIABILITY,
    ModelInfo,
    Prepared,
    fixed_k_spec,
    prepare,
)

__all__ = ["IDENTIFIABILITY", "ModelInfo", "build_model"]
_LOG_2PI = float(np.log(2 * np.pi))


# ----- likelihoods (pure tensor functions; also used by tests) ---------------------------------
def gaussian_mixture_logp(value, eta, mu, sigma):
    """Log sum_k softmax(eta)_k N(value | mu_k, sigma_k), elementwise over observations."""
    z = (value[..., None] - mu) / sigma
    comp = -0.5 * _LOG_2PI - pt.log(sigma) - 0.5 * z * z
    return pt.logsumexp(log_softmax(eta, axis=-1) + comp, axis=-1)


def categorical_mixture_logp(value, eta, logits):
    """Log sum_k softmax(eta)_k softmax_s(logits[:, s, k]) at s = value."""
    n_classes = logits.shape[-2]
    onehot = pt.eq(value[..., None], pt.arange(n_classes))  # (n, M)
    comp = (log_softmax(logits, axis=-2) * onehot[..., None]).sum(axis=-2)  # (n, K)
    return pt.logsumexp(log_softmax(eta, axis=-1) + comp, axis=-1)


def _draw_component(eta, rng, size):
    eta = np.asarray(eta)
    p = np.exp(eta - eta.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if size is not None:
        p = np.broadcast_to(p, tuple(size) + p.shape[-1:])
    u = rng.uniform(size=p.shape[:-1] + (1,))
    return np.minimum((u > np.cumsum(p, -1)).sum(-1), p.shape[-1] - 1)


def _gaussian_random(eta, mu, sigma, rng=None, size=None):
    k = _draw_component(eta, rng, size)
    mu = np.broadcast_to(mu, k.shape + mu.shape[-1:])
    sigma = np.broadcast_to(sigma, k.shape + np.shape(sigma)[-1:])
    m = np.take_along_axis(mu, k[..., None], -1)[..., 0]
    s = np.take_along_axis(sigma, k[..., None], -1)[..., 0]
    return m + s * rng.standard_normal(k.shape)


def _categorical_random(eta, logits, rng=None, size=None):
    k = _draw_component(eta, rng, size)
    logits = np.broadcast_to(logits, k.shape + logits.shape[-2:])
    lk = np.take_along_axis(logits, k[..., None, None], -1)[..., 0]  # (..., M)
    return _draw_component(lk, rng, None)


# ----- builder ------------------------------------------------------------------------------------
def build_model(
    X,
    y,
    *,
    n_experts: int,
    experts: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    identifiability: str = "zerosum",
    ordered: bool = False,
    priors: Priors | dict | None = None,
    feature_names: Sequence | None = None,
    classes: Sequence | None = None,
) -> tuple[pm.Model, ModelInfo]:
    """Build the PyMC model of a softmax-gated MoE with a fixed number of experts.

    Parameters
    ----------
    X : array_like, shape (n_obs, n_features)
        Inputs; ``n_features`` may be 0.
    y : array_like, shape (n_obs,)
        Real responses (``experts="gaussian"``) or class labels (``"categorical"``; any hashable
        labels, coded 0..M-1 in sorted order unless `classes` is given).
    n_experts : int
        Number of experts K >= 1.
    experts : {"gaussian", "categorical"}
        Gaussian linear-regression experts or multinomial-logistic experts.
    gate : {"softmax", "tanh", "sigmoid"} or callable
        Standard softmax gate, or a modified softmax gate on M(x) with M elementwise (a callable
        on tensors is accepted if non-affine). Experts always see the raw x.
    temperature : float
        Gate temperature tau: g = softmax(eta / tau).
    identifiability : {"zerosum", "reference"}
        Sum-to-zero gate parameters over experts (default, symmetric in experts) or the last
        expert as the reference (its gate parameters pinned to 0).
    ordered : bool
        Smooth ordering constraint on the expert intercepts (Gaussian: ``b``; categorical: the
        first class intercept). Off by default (post-hoc relabelling is used instead).
    priors : str, dict or Priors, optional
        A prior set by name (``"default"``, ``"richardson-green"``) or overrides of its fields
        (see :mod:`bayesmoe.models.priors`). Under ``"richardson-green"`` the intercepts are
        Dirichlet log-weights (no zero-sum constraint) and ``noise_rate_std`` (beta) is a free
        variable.
    feature_names, classes : sequence, optional
        Coordinate labels.

    Notes
    -----
    ``X`` may have zero columns (a mixture without covariates): ``beta1`` and ``a`` are then
    empty and the gate is the mixing weights ``softmax(beta0)``.

    Returns
    -------
    model : pymc.Model
        Coords ``obs``, ``feature``, ``expert`` (and ``class``, ``class_free``).
    info : ModelInfo

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models import build_model
    >>> X, y, _ = simulate("S-B", n=100, random_seed=0)
    >>> model, info = build_model(X, y, n_experts=3)
    >>> sorted(model.coords)
    ['expert', 'feature', 'obs']
    """
    s, info = fixed_k_spec(
        X,
        y,
        n_experts=n_experts,
        experts=experts,
        gate=gate,
        temperature=temperature,
        identifiability=identifiability,
        ordered=ordered,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
    )
    K = info.n_experts
    with pm.Model(coords=s.coords(K)) as model:
        inp = data_inputs(s)
        beta0_s, beta1_s = _gate_parameters(K, s.d, s.priors, identifiability)
        eta = (pt.dot(inp.Zs, beta1_s) + beta0_s) / s.temperature
        gate_deterministics(beta0_s, beta1_s, inp)
        params = expert_block(s.family, s.priors, inp, K, s.d, ordered=ordered)
        observe(s.family, eta, params, s.y)
    return model, info


# ----- blocks shared by the fixed-K, random-K and DP builders (call inside a model context) -----
@dataclass
class Inputs:
    """Standardised inputs and the transform constants, as graph inputs (pm.Data)."""

    Xs: object
    Zs: object
    cx: object
    sx: object
    cz: object
    sz: object
    cy: object = None
    sy: object = None
    prior: dict = field(default_factory=dict)


def data_inputs(s: Prepared) -> Inputs:
    """Register X and the transform constants as pm.Data and return the standardised inputs.

    pm.Data makes them graph inputs, not constants, so models of the same shape share one
    compiled graph across data sets (the compile cache hits). The Richardson–Green constants
    (midpoint and range of y) are data too.
    """
    st = s.standardizer
    X_data = pm.Data("X", s.X, dims=("obs", "feature"))
    cx = pm.Data("x_center", st.x_center, dims="feature")
    sx = pm.Data("x_scale", st.x_scale, dims="feature")
    cz = pm.Data("gate_input_center", st.z_center, dims="feature")
    sz = pm.Data("gate_input_scale", st.z_scale, dims="feature")
    inp = Inputs((X_data - cx) / sx, (s.gate_fn(X_data) - cz) / sz, cx, sx, cz, sz)
    if s.family == "gaussian":
        inp.sy = pm.Data("y_scale", st.y_scale)
        inp.cy = pm.Data("y_center", st.y_center)
    inp.prior = {k: pm.Data(f"prior_{k}", v) for k, v in s.prior_constants().items()}
    return inp


def gate_deterministics(beta0_s, beta1_s, inp: Inputs) -> None:
    """User-unit gate parameters (Standardizer.to_user written on tensors)."""
    beta1 = beta1_s / inp.sz[:, None]
    pm.Deterministic("beta1", beta1, dims=("feature", "expert"))
    pm.Deterministic("beta0", beta0_s - pt.dot(inp.cz, beta1), dims="expert")


def expert_block(
    family: str, pri: Priors, inp: Inputs, K: int, d: int, *, ordered: bool = False
) -> tuple:
    """Expert priors on the standardised scale and their user-unit Deterministics.

    Returns ``(mu, sigma)`` (Gaussian, user units of y) or ``(logits,)`` (categorical).
    """
    b_kw = {}
    if ordered and K > 1:  # starts: ModelInfo.initvals (initval= breaks log-lik evaluation)
        b_kw = {"transform": pm.distributions.transforms.ordered}
    if family == "gaussian":
        a_s = pm.Normal("a_std", 0.0, pri.expert_slope, dims=("feature", "expert"))
        if pri.hierarchical:  # Richardson & Green (1997): mu ~ N(xi, 1/kappa), Gamma precisions
            c = inp.prior
            b_s = pm.Normal("b_std", c["mean_center"], c["mean_sd"], dims="expert", **b_kw)
            rate = pm.Gamma("noise_rate_std", alpha=pri.rate_shape, beta=c["rate_rate"])
            pm.Deterministic("noise_rate", rate * inp.sy**2)  # beta in units of y^2
            sigma_s = pm.CustomDist(
                "sigma_std",
                pri.precision_shape,
                rate,
                logp=inverse_sqrt_gamma_logp,
                random=inverse_sqrt_gamma_random,
                support_point=_inverse_sqrt_gamma_start,
                transform=pm.distributions.transforms.log,
                dims="expert",
            )
        else:
            b_s = pm.Normal("b_std", 0.0, pri.expert_intercept, dims="expert", **b_kw)
            sigma_s = pm.HalfNormal("sigma_std", pri.noise, dims="expert")
        sy, cy = inp.sy, inp.cy
        a = sy * a_s / inp.sx[:, None]
        pm.Deterministic("a", a, dims=("feature", "expert"))
        pm.Deterministic("b", cy + sy * b_s - pt.dot(inp.cx, a), dims="expert")
        sigma = pm.Deterministic("sigma", sy * sigma_s, dims="expert")
        return cy + sy * (pt.dot(inp.Xs, a_s) + b_s), sigma
    a_free = pm.Normal("a_std", 0.0, pri.expert_slope, dims=("feature", "class_free", "expert"))
    b_free = pm.Normal("b_std", 0.0, pri.expert_intercept, dims=("class_free", "expert"), **b_kw)
    a_s = pt.concatenate([a_free, pt.zeros((d, 1, K))], axis=1)
    b_s = pt.concatenate([b_free, pt.zeros((1, K))], axis=0)
    a = a_s / inp.sx[:, None, None]
    pm.Deterministic("a", a, dims=("feature", "class", "expert"))
    pm.Deterministic("b", b_s - pt.tensordot(inp.cx, a, axes=[[0], [0]]), dims=("class", "expert"))
    return (pt.tensordot(inp.Xs, a_s, axes=[[1], [0]]) + b_s,)  # (n, M, K)


def observe(family: str, eta, params: tuple, y_arr) -> None:
    """The observed mixture likelihood ``y`` (user units of y), data as pm.Data."""
    y_obs = pm.Data("y_obs", y_arr, dims="obs")
    if family == "gaussian":
        pm.CustomDist(
            "y",
            eta,
            *params,
            logp=gaussian_mixture_logp,
            random=_gaussian_random,
            signature="(k),(k),(k)->()",
            observed=y_obs,
            dims="obs",
        )
    else:
        pm.CustomDist(
            "y",
            eta,
            *params,
            logp=categorical_mixture_logp,
            random=_categorical_random,
            signature="(k),(m,k)->()",
            dtype="int64",
            observed=y_obs,
            dims="obs",
        )


# ----- Dirichlet weights and Gamma precisions as PyMC variables ---------------------------------
def log_gamma_logp(value, delta):
    """Log density of ``log g`` with ``g ~ Gamma(delta, 1)`` (the Dirichlet-weights intercepts)."""
    return delta * value - pt.exp(value) - pt.gammaln(delta)


def log_gamma_random(delta, rng=None, size=None):
    return np.log(rng.gamma(delta, size=size))


def inverse_sqrt_gamma_logp(value, alpha, rate):
    """Log density of ``sigma = tau^(-1/2)`` with ``tau ~ Gamma(alpha, rate)``
    (Jacobian ``|d tau / d sigma| = 2 sigma^-3``).
    """
    tau = value**-2
    return (
        alpha * pt.log(rate)
        - pt.gammaln(alpha)
        + (alpha - 1.0) * pt.log(tau)
        - rate * tau
        + np.log(2.0)
        - 3.0 * pt.log(value)
    )


def inverse_sqrt_gamma_random(alpha, rate, rng=None, size=None):
    return 1.0 / np.sqrt(rng.gamma(alpha, 1.0 / np.asarray(rate), size=size))


def _inverse_sqrt_gamma_start(rv, size, alpha, rate):
    return pt.full_like(rv, 1.0) * pt.sqrt(rate / alpha)  # tau at its prior mean alpha / rate


def gate_intercepts(name: str, pri: Priors, dims: str):
    """i.i.d. gate intercepts of one slot each: ``log Gamma(delta, 1)`` variables when
    ``pri.dirichlet_weights`` (softmax of them is Dirichlet(delta, ...)), else ``N(0, s0)``.
    """
    if pri.dirichlet_weights:
        return pm.CustomDist(
            name, pri.weights_concentration, logp=log_gamma_logp, random=log_gamma_random, dims=dims
        )
    return pm.Normal(name, 0.0, pri.gate_intercept, dims=dims)


def gate_slopes(K: int, d: int, pri: Priors, identifiability: str):
    if identifiability == "zerosum":
        if d == 0:  # no covariates: the gate is the mixing weights alone (an empty variable,
            # kept so that every model has the same named variables)
            return pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("feature", "expert"))
        return pm.ZeroSumNormal("beta1_std", sigma=pri.gate_slope, dims=("feature", "expert"))
    b1 = pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("feature", "expert_free"))
    return pt.concatenate([b1, pt.zeros((d, 1))], axis=1)


def _gate_parameters(K: int, d: int, pri: Priors, identifiability: str):
    """Gate intercepts and slopes of the fixed-K model (slopes are zeros of shape (0, K) when
    d = 0).
    """
    if K == 1:
        return pt.zeros((1,)), pt.zeros((d, 1))
    if identifiability == "reference":
        pm.modelcontext(None).add_coord("expert_free", np.arange(K - 1))
    beta1 = gate_slopes(K, d, pri, identifiability)
    if pri.dirichlet_weights:  # the Dirichlet is its own identification of the intercepts
        return gate_intercepts("beta0_std", pri, "expert"), beta1
    if identifiability == "zerosum":
        return pm.ZeroSumNormal("beta0_std", sigma=pri.gate_intercept, dims="expert"), beta1
    b0 = pm.Normal("beta0_std", 0.0, pri.gate_intercept, dims="expert_free")
    return pt.concatenate([b0, pt.zeros((1,))]), beta1
