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

from bayesmoe._validation import family_keyword
from bayesmoe.families import Transform, get_family, pytensor_ops
from bayesmoe.families.categorical import sample_classes
from bayesmoe.gates import SOFTMAX, Gate
from bayesmoe.models.priors import Priors
from bayesmoe.models.spec import (  # noqa: F401 - re-exported (the builders' shared checks)
    IDENTIFIABILITY,
    ModelInfo,
    ModelSpec,
    Prepared,
    fixed_k_spec,
    prepare,
)

__all__ = ["IDENTIFIABILITY", "ModelInfo", "ModelSpec", "build_model", "model_from_spec"]
_LOG_2PI = float(np.log(2 * np.pi))


# ----- the observed mixture, derived from the family (pure tensor functions) ---------------------
def mixture_logp(family, gate: Gate = SOFTMAX):
    """The CustomDist logp ``(value, eta, *predictors) -> log sum_k g_k p_k(value)`` of an
    expert family and a gate, from their one definitions (:meth:`Family.component_log_prob`,
    :meth:`Gate.log_weights <bayesmoe.gates.base.Gate.log_weights>`).
    """
    fam = get_family(family)
    ops = pytensor_ops()

    def logp(value, eta, *predictors):
        comp = fam.component_log_prob(ops, value, *predictors)
        return pt.logsumexp(gate.log_weights(eta, ops) + comp, axis=-1)

    return logp


def draw_component(eta, rng, size=None):
    """One expert index per row of softmax(eta) (the gate's draw), shape ``size`` or eta's rows."""
    eta = np.asarray(eta)
    if size is not None:
        eta = np.broadcast_to(eta, tuple(size) + eta.shape[-1:])
    return sample_classes(eta, rng)


def mixture_random(family):
    """The CustomDist random ``(eta, *predictors, rng, size) -> y`` of an expert family."""
    fam = get_family(family)

    def random(eta, *predictors, rng=None, size=None):
        return fam.draw(rng, draw_component(eta, rng, size), *predictors)

    return random


# ----- builder ------------------------------------------------------------------------------------
def build_model(
    X,
    y,
    *,
    n_experts: int,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    identifiability: str = "zerosum",
    ordered: bool = False,
    priors: Priors | dict | None = None,
    feature_names: Sequence | None = None,
    classes: Sequence | None = None,
    offset=None,
    experts: str | None = None,
    gate_X=None,
    gate_feature_names: Sequence | None = None,
    trials=None,
) -> tuple[pm.Model, ModelSpec]:
    """Build the PyMC model of a softmax-gated MoE with a fixed number of experts.

    Parameters
    ----------
    X : array_like, shape (n_obs, n_features)
        Inputs; ``n_features`` may be 0.
    y : array_like, shape (n_obs,)
        Real responses (``family="gaussian"``) or class labels (``"categorical"``; any hashable
        labels, coded 0..M-1 in sorted order unless `classes` is given).
    n_experts : int
        Number of experts K >= 1.
    family : str
        The expert family (:data:`bayesmoe.families.FAMILIES`): "gaussian" linear-regression,
        "categorical" multinomial-logistic, or "poisson" log-link regression experts.
    experts : str, optional
        Deprecated alias of ``family`` (kept one release; a ``FutureWarning`` says so).
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
    offset : array_like, shape (n_obs,), optional
        Per-row log-exposure of families with a log link (``family="poisson"``).
    gate_X : array_like, shape (n_obs, n_gate_features), optional
        The gate's own covariates (default: ``X``, the experts'). Zero columns give constant
        mixing weights ``softmax(beta0)`` while the experts keep their covariates.
    gate_feature_names : sequence, optional
        Labels of ``gate_X``'s columns (a DataFrame's column names by default, else z0, z1, …).
    trials : array_like, shape (n_obs,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).

    Notes
    -----
    ``X`` may have zero columns (a mixture without covariates): ``beta1`` and ``a`` are then
    empty and the gate is the mixing weights ``softmax(beta0)``.

    Returns
    -------
    model : pymc.Model
        Coords ``obs``, ``feature``, ``gate_feature``, ``expert`` (and ``class``,
        ``class_free``).
    spec : ModelSpec
        The validated data and options (:func:`bayesmoe.models.spec.fixed_k_spec`).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models import build_model
    >>> X, y, _ = simulate("S-B", n=100, random_seed=0)
    >>> model, info = build_model(X, y, n_experts=3)
    >>> sorted(model.coords)
    ['expert', 'feature', 'gate_feature', 'obs']
    """
    family = family_keyword(family, experts, "build_model")
    spec = fixed_k_spec(
        X,
        y,
        n_experts=n_experts,
        family=family,
        gate=gate,
        temperature=temperature,
        identifiability=identifiability,
        ordered=ordered,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    return model_from_spec(spec), spec


def model_from_spec(s: ModelSpec) -> pm.Model:
    """The PyMC model of a fixed-K :class:`ModelSpec` (no check repeated: the spec is valid).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.builder import model_from_spec
    >>> from bayesmoe.models.spec import fixed_k_spec
    >>> X, y, _ = simulate("S-B", n=100, random_seed=0)
    >>> model = model_from_spec(fixed_k_spec(X, y, n_experts=2))
    >>> model["beta0"].eval().shape
    (2,)
    """
    K = s.n_experts
    with pm.Model(coords=s.coords(K)) as model:
        inp = data_inputs(s)
        beta0_s, beta1_s = _gate_parameters(K, s.d_gate, s.priors, s.identifiability)
        eta = (pt.dot(inp.Zs, beta1_s) + beta0_s) / s.temperature
        gate_deterministics(beta0_s, beta1_s, inp)
        params = expert_block(s.family, s.priors, inp, K, s.d, ordered=s.ordered)
        observe(s.family, eta, params, s.y, s.gate_module)
    return model


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
    cy: object = 0.0
    sy: object = 1.0
    offset: object = None
    trials: object = None
    prior: dict = field(default_factory=dict)

    @property
    def transform(self) -> Transform:
        return Transform(self.cx, self.sx, self.cy, self.sy)


def data_inputs(s: ModelSpec) -> Inputs:
    """Register X and the transform constants as pm.Data and return the standardised inputs.

    pm.Data makes them graph inputs, not constants, so models of the same shape share one
    compiled graph across data sets (the compile cache hits). The Richardson–Green constants
    (midpoint and range of y) are data too.
    """
    st = s.standardizer
    X_data = pm.Data("X", s.X, dims=("obs", "feature"))
    cx = pm.Data("x_center", st.x_center, dims="feature")
    sx = pm.Data("x_scale", st.x_scale, dims="feature")
    Z_data = X_data if s.gate_shared else pm.Data("gate_X", s.Z, dims=("obs", "gate_feature"))
    cz = pm.Data("gate_input_center", st.z_center, dims="gate_feature")
    sz = pm.Data("gate_input_scale", st.z_scale, dims="gate_feature")
    MZ = s.gate_module.transform(Z_data, pytensor_ops())  # the gate's input transform M
    inp = Inputs((X_data - cx) / sx, (MZ - cz) / sz, cx, sx, cz, sz)
    fam = get_family(s.family)
    if fam.transforms_response:
        inp.sy = pm.Data("y_scale", st.y_scale)
        inp.cy = pm.Data("y_center", st.y_center)
    if fam.takes_offset:
        inp.offset = pm.Data("offset", s.offset_values(), dims="obs")
    if "trials" in fam.row_data:
        inp.trials = pm.Data("trials", s.trials_values(), dims="obs")
    inp.prior = {k: pm.Data(f"prior_{k}", v) for k, v in s.prior_constants.items()}
    return inp


def gate_deterministics(beta0_s, beta1_s, inp: Inputs) -> None:
    """User-unit gate parameters (Standardizer.to_user written on tensors)."""
    beta1 = beta1_s / inp.sz[:, None]
    pm.Deterministic("beta1", beta1, dims=("gate_feature", "expert"))
    pm.Deterministic("beta0", beta0_s - pt.dot(inp.cz, beta1), dims="expert")


def expert_block(
    family, pri: Priors, inp: Inputs, K: int, d: int, *, ordered: bool = False
) -> tuple:
    """Expert priors on the standardised scale (from the family's :class:`Param` declarations)
    and their user-unit Deterministics. Returns the family's predictors (user units of y).
    """
    fam = get_family(family)
    free = {}
    for p in fam.params:
        name, dims = f"{p.name}_std", (*p.dims, "expert")
        kw = {}
        if ordered and p.intercept and K > 1:  # starts: ModelSpec.initvals (initval= breaks
            kw = {"transform": pm.distributions.transforms.ordered}  # log-lik evaluation)
        if pri.hierarchical and p.intercept:  # Richardson & Green (1997): mu ~ N(xi, 1/kappa)
            c = inp.prior
            free[name] = pm.Normal(name, c["mean_center"], c["mean_sd"], dims=dims, **kw)
        elif pri.hierarchical and p.positive:  # Gamma precisions with a Gamma rate
            free[name] = _hierarchical_precision(name, pri, inp, dims)
        elif p.positive:
            free[name] = pm.HalfNormal(name, getattr(pri, p.prior), dims=dims)
        else:
            free[name] = pm.Normal(name, 0.0, getattr(pri, p.prior), dims=dims, **kw)
    ops = pytensor_ops()
    canon = fam.canonical_from_free(ops, free)
    tr = inp.transform
    user = fam.trace_from_canonical(pt, fam.to_user(pt, canon, tr))
    for name, dims in fam.trace_dims.items():
        pm.Deterministic(name, user[name], dims=dims)
    return fam.predictors(ops, canon, inp.Xs, tr, {"offset": inp.offset, "trials": inp.trials})


def _hierarchical_precision(name: str, pri: Priors, inp: Inputs, dims):
    """``sigma = tau^(-1/2)``, ``tau ~ Gamma(alpha, beta)``, ``beta ~ Gamma(g, h)``."""
    rate = pm.Gamma("noise_rate_std", alpha=pri.rate_shape, beta=inp.prior["rate_rate"])
    pm.Deterministic("noise_rate", rate * inp.sy**2)  # beta in units of y^2
    return pm.CustomDist(
        name,
        pri.precision_shape,
        rate,
        logp=inverse_sqrt_gamma_logp,
        random=inverse_sqrt_gamma_random,
        support_point=_inverse_sqrt_gamma_start,
        transform=pm.distributions.transforms.log,
        dims=dims,
    )


def observe(family, eta, params: tuple, y_arr, gate: Gate = SOFTMAX) -> None:
    """The observed mixture likelihood ``y`` (user units of y), data as pm.Data."""
    fam = get_family(family)
    y_obs = pm.Data("y_obs", y_arr, dims="obs")
    pm.CustomDist(
        "y",
        eta,
        *params,
        logp=mixture_logp(fam, gate),
        random=mixture_random(fam),
        signature=fam.signature,
        dtype=fam.y_dtype,
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
            return pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("gate_feature", "expert"))
        return pm.ZeroSumNormal("beta1_std", sigma=pri.gate_slope, dims=("gate_feature", "expert"))
    b1 = pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("gate_feature", "expert_free"))
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
