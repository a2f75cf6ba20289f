"""PyMC model builder for the fixed-K softmax-gated mixture of experts (shared/MATH.md §1–2).

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

from bayesmoe._validation import (
    check_enough_rows,
    check_family,
    check_int,
    check_X,
    check_y,
    n_parameters,
)
from bayesmoe.models.gates import resolve_gate
from bayesmoe.models.priors import Priors, resolve_priors
from bayesmoe.scaling import Standardizer

__all__ = ["ModelInfo", "build_model", "IDENTIFIABILITY"]

IDENTIFIABILITY = ("zerosum", "reference")
_LOG_2PI = float(np.log(2 * np.pi))


@dataclass
class ModelInfo:
    """What a built model needs to be read back: options, labels and the data transform."""

    family: str
    n_experts: int
    gate: str  # measure name: identity / tanh / sigmoid / custom
    gate_fn: Callable = field(repr=False)
    temperature: float
    identifiability: str
    ordered: bool
    priors: Priors
    feature_names: list
    classes: list | None
    standardizer: Standardizer

    def initvals(self) -> dict:
        """Valid start values PyMC cannot find itself (the ordered intercepts need distinct ones)."""
        if not (self.ordered and self.n_experts > 1):
            return {}
        b = np.linspace(-1.0, 1.0, self.n_experts)
        if self.family == "categorical":
            b = np.tile(b, (len(self.classes) - 1, 1))
        return {"b_std": b}

    def options(self) -> dict:
        """JSON-ready record of the model options (for provenance attrs)."""
        return {
            "family": self.family,
            "n_experts": self.n_experts,
            "gate": self.gate,
            "temperature": self.temperature,
            "identifiability": self.identifiability,
            "ordered": self.ordered,
            "priors": self.priors.to_dict(),
        }


# ----- likelihoods (pure tensor functions; also used by tests) ---------------------------------
def gaussian_mixture_logp(value, eta, mu, sigma):
    """log sum_k softmax(eta)_k N(value | mu_k, sigma_k), elementwise over observations."""
    z = (value[..., None] - mu) / sigma
    comp = -0.5 * _LOG_2PI - pt.log(sigma) - 0.5 * z * z
    return pt.logsumexp(log_softmax(eta, axis=-1) + comp, axis=-1)


def categorical_mixture_logp(value, eta, logits):
    """log sum_k softmax(eta)_k softmax_s(logits[:, s, k]) at s = value."""
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
    priors : dict or Priors, optional
        Overrides of the prior scales (see :class:`bayesmoe.models.Priors`).
    feature_names, classes : sequence, optional
        Coordinate labels.

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
    family = check_family(experts)
    K = check_int(n_experts, "n_experts")
    X = check_X(X)
    n, d = X.shape
    y_arr, class_labels = check_y(y, family, n, classes)
    if identifiability not in IDENTIFIABILITY:
        raise ValueError(
            f"`identifiability` must be one of {IDENTIFIABILITY}; got {identifiability!r}."
        )
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive number; got {temperature!r}.")
    gate_name, gate_fn = resolve_gate(gate)
    pri = resolve_priors(priors)
    n_classes = len(class_labels) if class_labels is not None else 0
    check_enough_rows(n, n_parameters(K, d, family, n_classes))
    feature_names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    if len(feature_names) != d:
        raise ValueError(f"`feature_names` has {len(feature_names)} names for {d} features.")
    st = Standardizer.from_data(X, y_arr if family == "gaussian" else None, gate=gate_fn)
    info = ModelInfo(
        family, K, gate_name, gate_fn, float(temperature), identifiability, bool(ordered), pri,
        feature_names, class_labels, st,
    )

    coords = {"obs": np.arange(n), "feature": feature_names, "expert": np.arange(K)}
    if family == "categorical":
        coords["class"] = class_labels
        coords["class_free"] = class_labels[:-1]
    with pm.Model(coords=coords) as model:
        inp = data_inputs(X, st, gate_fn, family)
        beta0_s, beta1_s = _gate_parameters(K, d, pri, identifiability)
        eta = (pt.dot(inp.Zs, beta1_s) + beta0_s) / temperature
        gate_deterministics(beta0_s, beta1_s, inp)
        params = expert_block(family, pri, inp, K, d, ordered=ordered)
        observe(family, eta, params, y_arr)
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


def data_inputs(X, st: Standardizer, gate_fn: Callable, family: str) -> Inputs:
    """Register X and the transform constants as pm.Data and return the standardised inputs.

    pm.Data makes them graph inputs, not constants, so models of the same shape share one
    compiled graph across data sets (the compile cache hits).
    """
    X_data = pm.Data("X", X, dims=("obs", "feature"))
    cx = pm.Data("x_center", st.x_center, dims="feature")
    sx = pm.Data("x_scale", st.x_scale, dims="feature")
    cz = pm.Data("gate_input_center", st.z_center, dims="feature")
    sz = pm.Data("gate_input_scale", st.z_scale, dims="feature")
    inp = Inputs((X_data - cx) / sx, (gate_fn(X_data) - cz) / sz, cx, sx, cz, sz)
    if family == "gaussian":
        inp.sy = pm.Data("y_scale", st.y_scale)
        inp.cy = pm.Data("y_center", st.y_center)
    return inp


def gate_deterministics(beta0_s, beta1_s, inp: Inputs) -> None:
    """User-unit gate parameters (Standardizer.to_user written on tensors)."""
    beta1 = beta1_s / inp.sz[:, None]
    pm.Deterministic("beta1", beta1, dims=("feature", "expert"))
    pm.Deterministic("beta0", beta0_s - pt.dot(inp.cz, beta1), dims="expert")


def expert_block(family: str, pri: Priors, inp: Inputs, K: int, d: int, *,
                 ordered: bool = False) -> tuple:
    """Expert priors on the standardised scale and their user-unit Deterministics.

    Returns ``(mu, sigma)`` (Gaussian, user units of y) or ``(logits,)`` (categorical).
    """
    b_kw = {}
    if ordered and K > 1:  # starts: ModelInfo.initvals (initval= breaks log-lik evaluation)
        b_kw = {"transform": pm.distributions.transforms.ordered}
    if family == "gaussian":
        a_s = pm.Normal("a_std", 0.0, pri.expert_slope, dims=("feature", "expert"))
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
        pm.CustomDist("y", eta, *params, logp=gaussian_mixture_logp, random=_gaussian_random,
                      signature="(k),(k),(k)->()", observed=y_obs, dims="obs")
    else:
        pm.CustomDist("y", eta, *params, logp=categorical_mixture_logp,
                      random=_categorical_random, signature="(k),(m,k)->()", dtype="int64",
                      observed=y_obs, dims="obs")


def _gate_parameters(K: int, d: int, pri: Priors, identifiability: str):
    if K == 1:
        return pt.zeros((1,)), pt.zeros((d, 1))
    if identifiability == "zerosum":
        beta0 = pm.ZeroSumNormal("beta0_std", sigma=pri.gate_intercept, dims="expert")
        beta1 = pm.ZeroSumNormal("beta1_std", sigma=pri.gate_slope, dims=("feature", "expert"))
        return beta0, beta1
    model = pm.modelcontext(None)
    model.add_coord("expert_free", np.arange(K - 1))
    b0 = pm.Normal("beta0_std", 0.0, pri.gate_intercept, dims="expert_free")
    b1 = pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("feature", "expert_free"))
    return pt.concatenate([b0, pt.zeros((1,))]), pt.concatenate([b1, pt.zeros((d, 1))], axis=1)
