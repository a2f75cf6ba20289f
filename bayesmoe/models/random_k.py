"""Random number of experts in a padded space (docs/math.md §2–3).

The model keeps ``max_experts`` expert slots and an integer number of active experts
``K = n_experts`` with a prior on 1..K_max (a truncated Poisson on K − 1 by default: the
"mixture of finite mixtures" prior). Only the first ``K`` slots enter the gate and the likelihood:
the gate logits of inactive slots are set to −inf through a mask (never a −inf Potential), so
their gate probability is exactly 0 and they follow their prior, which keeps NUTS updating them
correctly. The atoms of every slot are i.i.d. from one prior:

    beta0_k ~ N(0, s0),  beta1_k ~ N(0, s1 I)          (gate, standardised M(x))
    a_k ~ N(0, sa I),  b_k ~ N(0, sb),  sigma_k ~ HalfNormal(s_sigma)   (Gaussian experts)
    a_ks ~ N(0, sa I), b_ks ~ N(0, sb), s < M, class M pinned to 0       (multinomial experts)

Under ``priors="richardson-green"`` (Richardson & Green 1997) the slot atoms are
``beta0_k = log g_k`` with ``g_k ~ Gamma(delta, 1)`` (so the weights of the active slots are
Dirichlet(delta, ...) whatever K is), ``b_k ~ N(xi, 1/kappa)`` and ``sigma_k^-2 ~ Gamma(alpha,
beta)``, i.i.d. given the hyperparameter beta (a free variable ``noise_rate_std`` outside the
slots), which keeps every reversible-jump ratio exact: the moves are conditional on beta.
``X`` may have zero columns (d = 0, a plain mixture).

[choice] The gate parameters are i.i.d. Normal per slot, not ZeroSumNormal as in the fixed-K
builder: a sum-to-zero constraint couples active and inactive slots, which breaks both the
"inactive slots follow their prior" property and the exchangeability that the permutation move
needs. The common translation of all gate parameters is then identified by the prior only
(a proper posterior; NUTS sees a ridge of prior width).

The number of experts K moves only through the reversible-jump step methods of
:mod:`bayesmoe.inference.rjmcmc`; continuous parameters are sampled by NUTS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import stats
from scipy.special import gammaln

from bayesmoe._validation import check_int, family_keyword
from bayesmoe.families import get_family
from bayesmoe.models.builder import (
    data_inputs,
    expert_block,
    gate_deterministics,
    gate_intercepts,
    observe,
    prepare,
)
from bayesmoe.models.priors import Priors
from bayesmoe.models.spec import ModelSpec

__all__ = [
    "K_VAR",
    "RandomKInfo",
    "build_random_k_model",
    "experts_prior_pmf",
    "hyper_prior_draw",
    "parse_experts_prior",
    "random_k_model_from_spec",
    "random_k_spec",
    "slot_prior_draw",
    "slot_prior_logpdf",
]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: Name of the discrete free variable holding K − 1 (values 0..K_max−1).
K_VAR = "n_experts_index"


#: the record of a random-K model is the one model specification (``kind="slots"``)
RandomKInfo = ModelSpec


# ----- the prior on K ---------------------------------------------------------------------------
_SPEC = re.compile(r"^\s*(poisson|uniform|geometric)\s*(?::\s*([0-9.eE+-]+))?\s*$")


def experts_prior_pmf(spec, max_experts: int) -> np.ndarray:
    """Prior pmf of K on 1..max_experts from a spec string or an array (normalised).

    Parameters
    ----------
    spec : str or array_like
        ``"poisson:RATE"`` (K − 1 ~ Poisson(RATE) truncated at K_max − 1), ``"uniform"``
        (on 1..K_max), ``"uniform:KMAX"`` (on 1..KMAX, KMAX <= K_max; Richardson & Green 1997 use
        ``uniform:30``),
        ``"geometric:P"`` (K − 1 ~ Geometric(P) on 0, 1, ... truncated), or an array of
        ``max_experts`` non-negative numbers (normalised to sum 1).
    max_experts : int
        K_max >= 1.

    Returns
    -------
    numpy.ndarray, shape (max_experts,)
        p(K = 1), ..., p(K = K_max).

    Examples
    --------
    >>> from bayesmoe.models.random_k import experts_prior_pmf
    >>> experts_prior_pmf("poisson:1.0", 3).round(4)
    array([0.4, 0.4, 0.2])
    """
    K_max = check_int(max_experts, "max_experts")
    if isinstance(spec, str):
        kind, value = parse_experts_prior(spec)
        k = np.arange(K_max)
        if kind == "poisson":
            p = stats.poisson.pmf(k, value)
        elif kind == "geometric":
            p = stats.geom.pmf(k + 1, value)
        else:  # uniform on 1..KMAX (all of 1..K_max without a KMAX)
            kmax = K_max if value is None else int(value)
            if kmax > K_max:
                raise ValueError(
                    f"`experts_prior` {spec!r} puts mass up to K = {kmax} but max_experts = "
                    f"{K_max}; set max_experts >= {kmax} (e.g. --max-experts {kmax})."
                )
            p = (k < kmax).astype(float)
    else:
        try:
            p = np.asarray(spec, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(
                "`experts_prior` must be a string such as 'poisson:1.0' or an array of "
                f"probabilities; got {type(spec).__name__}."
            ) from None
        if p.shape != (K_max,):
            raise ValueError(
                f"`experts_prior` as an array must have max_experts = {K_max} entries "
                f"(p(K=1)..p(K={K_max})); got shape {p.shape}. Pad with zeros or change "
                "max_experts."
            )
        if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError(
                "`experts_prior` must hold finite non-negative numbers with a positive sum; "
                f"got {p.tolist()}."
            )
    if p.sum() <= 0 or not np.isfinite(p.sum()):
        raise ValueError(f"`experts_prior` {spec!r} puts no mass on 1..{K_max}.")
    return p / p.sum()


def parse_experts_prior(spec: str) -> tuple[str, float | None]:
    """Parse a CLI prior spec ``"poisson:RATE"``, ``"geometric:P"``, ``"uniform"`` or
    ``"uniform:KMAX"``.

    Returns ``(kind, value)``; raises ValueError with the accepted forms otherwise.

    Examples
    --------
    >>> from bayesmoe.models.random_k import parse_experts_prior
    >>> parse_experts_prior("poisson:2.5")
    ('poisson', 2.5)
    """
    if not isinstance(spec, str):
        raise TypeError(f"`experts_prior` spec must be a string; got {type(spec).__name__}.")
    m = _SPEC.match(spec.lower())
    if m is None:
        raise ValueError(
            f"Cannot read the experts prior {spec!r}; expected 'poisson:RATE' (RATE > 0), "
            "'geometric:P' (0 < P <= 1), 'uniform' or 'uniform:KMAX', e.g. --experts-prior "
            "poisson:1.0."
        )
    kind, raw = m.group(1), m.group(2)
    if kind == "uniform":
        if raw is None:
            return kind, None
        try:
            kmax = float(raw)
        except ValueError:
            kmax = float("nan")
        if not (np.isfinite(kmax) and kmax >= 1 and kmax == int(kmax)):
            raise ValueError(
                f"'uniform:KMAX' needs an integer KMAX >= 1 (K ~ Uniform{{1..KMAX}}); got {spec!r}."
            )
        return kind, float(int(kmax))
    if raw is None:
        raise ValueError(f"{kind!r} needs a parameter, e.g. '{kind}:1.0'; got {spec!r}.")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"The parameter of {spec!r} is not a number.") from None
    if kind == "poisson" and not (np.isfinite(value) and value > 0):
        raise ValueError(f"The Poisson rate must be > 0; got {value} in {spec!r}.")
    if kind == "geometric" and not (0 < value <= 1):
        raise ValueError(f"The geometric probability must be in (0, 1]; got {value} in {spec!r}.")
    return kind, value


# ----- builder ------------------------------------------------------------------------------------
def build_random_k_model(
    X,
    y,
    *,
    max_experts: int,
    experts_prior="poisson:1.0",
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    priors: Priors | dict | None = None,
    prior_only: bool = False,
    fixed_experts: int | None = None,
    feature_names: Sequence | None = None,
    classes: Sequence | None = None,
    offset=None,
    experts: str | None = None,
    gate_X=None,
    gate_feature_names: Sequence | None = None,
    trials=None,
) -> tuple[pm.Model, ModelSpec]:
    """Build the padded random-K softmax-gated MoE (docs/math.md §3).

    Parameters
    ----------
    X : array_like, shape (n_obs, n_features)
    y : array_like, shape (n_obs,)
        The response as the expert family takes it (real values, class labels, counts).
    max_experts : int
        Number of slots K_max >= 1.
    experts_prior : str or array_like
        Prior of K on 1..K_max, see :func:`experts_prior_pmf` (default ``"poisson:1.0"``).
    family : str
        The expert family (:data:`bayesmoe.families.FAMILIES`).
    experts : str, optional
        Deprecated alias of ``family`` (kept one release; a ``FutureWarning`` says so).
    gate : {"softmax", "tanh", "sigmoid"} or callable
        Gate input transform, as in :func:`bayesmoe.models.build_model`.
    temperature : float
        Gate temperature.
    priors : str, dict or Priors, optional
        Prior set of every slot's atom (standardised scale): ``"default"`` or
        ``"richardson-green"`` (Dirichlet weights as ``log Gamma(delta, 1)`` intercepts, means
        around the midpoint of y, Gamma precisions given the shared ``noise_rate_std``), see
        :mod:`bayesmoe.models.priors`.
    prior_only : bool
        Leave the likelihood out (the observed variable is absent): the posterior is the prior.
    fixed_experts : int, optional
        Build instead the fixed-K model with the same atom prior (``fixed_experts`` slots, all
        active, no discrete variable): its marginal likelihood is Z_K of p(K | y) ∝ p(K) Z_K.
    feature_names, classes : sequence, optional
    offset : array_like, shape (n_obs,), optional
        Per-row log-exposure of families with a log link (``family="poisson"``).
    trials : array_like, shape (n_obs,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).

    Returns
    -------
    model : pymc.Model
        Free variables ``n_experts_index`` (K − 1; absent when ``fixed_experts``), ``beta0_std``,
        ``beta1_std``, ``a_std``, ``b_std`` (and ``sigma_std``); Deterministics ``n_experts``,
        ``active[expert]`` and the user-units measure ``beta0, beta1, a, b`` (``sigma``).
    info : ModelSpec

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> X, y, _ = simulate("S-B", n=50, random_seed=0)
    >>> model, info = build_random_k_model(X, y, max_experts=4)
    >>> info.prior_pmf.shape, "n_experts" in model.named_vars
    ((4,), True)
    """
    family = family_keyword(family, experts, "build_random_k_model")
    spec = random_k_spec(
        X,
        y,
        max_experts=max_experts,
        experts_prior=experts_prior,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        prior_only=prior_only,
        fixed_experts=fixed_experts,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    return random_k_model_from_spec(spec), spec


def random_k_spec(
    X,
    y,
    *,
    max_experts: int,
    experts_prior="poisson:1.0",
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    priors: Priors | dict | None = None,
    prior_only: bool = False,
    fixed_experts: int | None = None,
    feature_names: Sequence | None = None,
    classes: Sequence | None = None,
    offset=None,
    gate_X=None,
    gate_feature_names: Sequence | None = None,
    trials=None,
) -> ModelSpec:
    """The :class:`~bayesmoe.models.spec.ModelSpec` of :func:`build_random_k_model`
    (``kind="slots"``): every check, without building (or importing) the PyMC model.
    """
    if fixed_experts is not None:
        K = check_int(fixed_experts, "fixed_experts")
        pmf = None
    else:
        K = check_int(max_experts, "max_experts")
        pmf = experts_prior_pmf(experts_prior, K)
    if not isinstance(prior_only, (bool, np.bool_)):
        raise TypeError(f"`prior_only` must be True or False; got {prior_only!r}.")
    s = prepare(
        X,
        y,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    s.n_experts, s.prior_pmf, s.kind, s.prior_only = K, pmf, "slots", bool(prior_only)
    return s


def random_k_model_from_spec(s: ModelSpec) -> pm.Model:
    """The padded random-K PyMC model of a ``kind="slots"`` spec; records the slot variables
    (``s.slot_vars``, ``s.slot_groups``) on the spec for the reversible-jump moves.
    """
    K, pmf, pri = s.n_experts, s.prior_pmf, s.priors
    with pm.Model(coords=s.coords(K)) as model:
        inp = data_inputs(s)
        if pmf is None:
            active = pt.ones((K,), dtype=bool)
            n_active = pt.as_tensor(K)
        else:
            k_index = pm.Categorical(K_VAR, p=pmf)
            n_active = k_index + 1
            active = pt.lt(pt.arange(K), n_active)
        pm.Deterministic("n_experts", n_active)
        pm.Deterministic("active", active, dims="expert")
        beta0_s = gate_intercepts("beta0_std", pri, "expert")
        beta1_s = pm.Normal("beta1_std", 0.0, pri.gate_slope, dims=("gate_feature", "expert"))
        eta = (pt.dot(inp.Zs, beta1_s) + beta0_s) / s.temperature
        eta = pt.where(active, eta, -np.inf)  # inactive slots: gate probability exactly 0

        gate_deterministics(beta0_s, beta1_s, inp)
        params = expert_block(s.family, pri, inp, K, s.d)
        if not s.prior_only:
            observe(s.family, eta, params, s.y, s.gate_module)

    slot_vars, slot_groups = [], []
    fam = get_family(s.family)
    for rv_name, group in (
        ("beta0_std", "gate_intercept"),
        ("beta1_std", "gate_slope"),
        *((f"{p.name}_std", p.prior) for p in fam.params),
    ):
        if rv_name not in model.named_vars:
            continue
        rv = model[rv_name]
        value = model.rvs_to_values[rv]
        shape = tuple(int(d) for d in model.initial_point()[value.name].shape[:-1])
        slot_vars.append((value.name, shape))
        slot_groups.append(group)
    s.slot_vars, s.slot_groups = slot_vars, slot_groups
    return model


# ----- the slot prior, in value space (draws and densities for the reversible-jump moves) -------
#: Value variables of hyperparameters the slot prior is conditional on (Richardson–Green: beta).
HYPER_VARS = ("noise_rate_std_log__",)


def hyper_values(info: ModelSpec, point: dict | None = None) -> dict:
    """Hyperparameters of the slot prior on their natural scale (``{"noise_rate": beta}`` on the
    standardised scale for Richardson–Green; empty for the default set). Taken from ``point``
    (value space) or, without one, at the prior mean ``g / h``.
    """
    if not info.priors.hierarchical:
        return {}
    if point is not None and HYPER_VARS[0] in point:
        return {"noise_rate": float(np.exp(point[HYPER_VARS[0]]))}
    return {"noise_rate": info.priors.rate_shape / info.prior_constants["rate_rate"]}


def hyper_prior_draw(info: ModelSpec, rng: np.random.Generator) -> dict:
    """One prior draw of the hyperparameters, as value-space entries of a point (empty for the
    default set).
    """
    if not info.priors.hierarchical:
        return {}
    beta = rng.gamma(info.priors.rate_shape, 1.0 / info.prior_constants["rate_rate"])
    return {HYPER_VARS[0]: np.asarray(np.log(beta))}


def hyper_start(info: ModelSpec) -> dict:
    """Start values of the hyperparameters (value space): the prior mean of beta."""
    h = hyper_values(info)
    return {HYPER_VARS[0]: np.asarray(np.log(h["noise_rate"]))} if h else {}


def _group_prior(info: ModelSpec, group: str, hyper: dict):
    """(kind, parameters) of the prior of one slot block, in value space."""
    pri, c = info.priors, info.prior_constants
    if group == "gate_intercept" and pri.dirichlet_weights:
        return "log_gamma", (pri.weights_concentration,)
    if group == "expert_intercept" and pri.hierarchical:
        return "normal", (c["mean_center"], c["mean_sd"])
    if group == "noise" and pri.hierarchical:
        return "log_inverse_sqrt_gamma", (pri.precision_shape, hyper["noise_rate"])
    if group in {p.prior for p in get_family(info.family).params if p.positive}:
        return "log_halfnormal", (getattr(pri, group),)  # noise, dispersion, tail
    return "normal", (0.0, getattr(pri, group))


def slot_prior_draw(
    info: ModelSpec, rng: np.random.Generator, size: int = 1, point: dict | None = None
) -> dict:
    """Draw ``size`` slot atoms from the prior, as value-space blocks (expert axis last).

    The draw matches the model's priors, in value space: Normal blocks; ``log sigma`` with
    ``sigma ~ HalfNormal`` (default set) or ``sigma^-2 ~ Gamma(alpha, beta)`` (Richardson–Green,
    given beta from ``point``, see :func:`hyper_values`); ``log g`` with ``g ~ Gamma(delta, 1)``
    for Dirichlet weights.
    """
    hyper = hyper_values(info, point)
    out = {}
    for (name, shape), group in zip(info.slot_vars, info.slot_groups, strict=True):
        kind, par = _group_prior(info, group, hyper)
        full = shape + (size,)
        if kind == "normal":
            draw = rng.normal(par[0], par[1], size=full)
        elif kind == "log_halfnormal":
            draw = np.log(np.abs(rng.normal(0.0, par[0], size=full)))
        elif kind == "log_gamma":
            draw = np.log(rng.gamma(par[0], size=full))
        else:  # log sigma = -log(tau) / 2, tau ~ Gamma(alpha, rate)
            draw = -0.5 * np.log(rng.gamma(par[0], 1.0 / par[1], size=full))
        out[name] = draw
    return out


def slot_prior_logpdf(info: ModelSpec, blocks: dict, point: dict | None = None) -> np.ndarray:
    """Prior log density (value space, Jacobians included) of each slot in ``blocks`` (value
    name -> block_shape + (m,)), shape (m,): the density :func:`slot_prior_draw` samples from.
    """
    hyper = hyper_values(info, point)
    total = 0.0
    for (name, _shape), group in zip(info.slot_vars, info.slot_groups, strict=True):
        v = np.asarray(blocks[name], dtype=float).reshape(-1, np.shape(blocks[name])[-1])
        kind, par = _group_prior(info, group, hyper)
        if kind == "normal":  # plain numpy: scipy's overhead dominates these small arrays
            r = (v - par[0]) / par[1]
            lp = -0.5 * r * r - np.log(par[1]) - 0.5 * _LOG_2PI
        elif kind == "log_halfnormal":  # sigma = e^v ~ HalfNormal(s), Jacobian e^v
            lp = (
                0.5 * np.log(2.0 / np.pi) - np.log(par[0]) - 0.5 * np.exp(2.0 * v) / par[0] ** 2 + v
            )
        elif kind == "log_gamma":
            lp = par[0] * v - np.exp(v) - gammaln(par[0])
        else:  # tau = e^(-2v) ~ Gamma(alpha, rate), Jacobian 2 tau
            a, r = par
            log_tau = -2.0 * v
            lp = a * np.log(r) - gammaln(a) + a * log_tau - r * np.exp(log_tau) + np.log(2.0)
        total = total + lp.sum(axis=0)
    return np.asarray(total)
