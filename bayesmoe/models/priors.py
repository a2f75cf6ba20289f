"""Prior sets of the mixture-of-experts models, on the standardised scale (docs/math.md §2).

Two named sets, selectable by name (``priors="default"`` or ``priors="richardson-green"``, CLI
``--priors NAME``) and adjustable field by field:

``"default"`` [choice]
    Weakly informative Normal priors on the standardised scale: gate intercepts and slopes
    ``N(0, 3)`` (ZeroSumNormal over experts in the fixed-K model), expert slopes and intercepts
    ``N(0, 2)``, noise sd ``sigma ~ HalfNormal(1)`` (units of sd(y)); negative binomial experts'
    ``1 / sqrt(size) ~ HalfNormal(1)``, Student-t experts' ``sqrt(2 / nu) ~ HalfNormal(0.5)``
    (both the coefficient of variation of the experts' latent Gamma variable; 0 is the Poisson
    or Gaussian expert).

``"richardson-green"`` [paper: Richardson & Green 1997, JRSS-B 59:731–792, §2.1 and §5.1]
    The hierarchical prior of the univariate normal mixture: mixing weights
    ``w ~ Dirichlet(delta, ..., delta)`` with ``delta = 1``; means ``mu_j ~ N(xi, 1/kappa)`` with
    ``xi`` the midpoint and ``R`` the range of y, ``kappa = 1/R^2``; precisions
    ``sigma_j^-2 ~ Gamma(alpha = 2, rate beta)`` and the hyperparameter
    ``beta ~ Gamma(g = 0.2, rate h = 10/R^2)``; with a random number of experts,
    ``k ~ Uniform{1, ..., k_max}`` (pass ``experts_prior="uniform"``). Every constant is scale-free
    in R, so it holds on the standardised scale with the standardised range and midpoint. The
    weights are parametrised as gate intercepts ``beta0_j = log g_j`` with
    ``g_j ~ Gamma(delta, 1)`` i.i.d.: ``softmax(beta0) = g / sum(g) ~ Dirichlet(delta, ...)``
    exactly, and the atoms stay i.i.d. (given beta), which the reversible-jump ratios rely on
    (docs/math.md §3). With covariates (d > 0) the gate and expert slopes keep the Normal
    priors of the default set.

The Dirichlet parametrisation of the gate intercepts is also available on its own
(``dirichlet_weights=True``) with the default set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = ["PRIOR_SETS", "Priors", "resolve_priors"]

#: Names of the prior sets and their source.
PRIOR_SETS = {
    "default": "weakly informative Normal priors on the standardised scale [choice]",
    "richardson-green": "Richardson & Green (1997, JRSS-B 59:731-792), hierarchical prior",
}
_FLOAT_FIELDS = (
    "gate_intercept",
    "gate_slope",
    "expert_slope",
    "expert_intercept",
    "noise",
    "dispersion",
    "tail",
    "weights_concentration",
    "precision_shape",
    "rate_shape",
    "rate_rate_factor",
    "mean_precision_factor",
)


@dataclass(frozen=True)
class Priors:
    """Prior set and scales, all on the standardised scale of X, M(X) and (Gaussian) y.

    Attributes
    ----------
    gate_intercept : float
        sd of ``beta0 ~ ZeroSumNormal`` over experts (or Normal for the reference-expert gate and
        the random-K model). Default 3: gate log-odds up to about ±6 between experts a priori.
        Unused with ``dirichlet_weights``.
    gate_slope : float
        sd of ``beta1 ~ ZeroSumNormal`` over experts. Default 3 allows gates that switch
        sharply over one standard deviation of the input.
    expert_slope : float
        sd of the expert slopes ``a ~ Normal``. Default 2 (y and x have unit sd).
    expert_intercept : float
        sd of the expert intercepts ``b ~ Normal``. Default 2 (``"default"`` set only).
    noise : float
        scale of ``sigma ~ HalfNormal`` (noise sd of Gaussian experts, in units of sd(y)).
        Default 1 (``"default"`` set only).
    dispersion : float
        scale of ``kappa ~ HalfNormal`` for negative binomial experts, ``kappa = sqrt(alpha)``
        with ``Var(y) = mu + alpha mu²`` (the CV of the Gamma rate multiplier; 0 is Poisson).
        Default 1, the Stan prior-choice recommendation for ``1 / sqrt(phi)`` [paper-cited].
    tail : float
        scale of ``sqrt(2 / nu) ~ HalfNormal`` for Student-t experts with nu degrees of freedom
        (the CV of the latent Gamma precision; 0 is Gaussian). Default 0.5 [choice]: median
        nu 17.6, ``P(nu < 4) = 0.16``, ``P(nu < 2) = 0.046``.
    scheme : {"default", "richardson-green"}
        The prior set (see the module docstring).
    dirichlet_weights : bool
        Gate intercepts ``beta0_j = log g_j``, ``g_j ~ Gamma(weights_concentration, 1)``, so
        that the weights at the centre of the gate input are Dirichlet. On for
        ``"richardson-green"``.
    weights_concentration : float
        delta of the Dirichlet(delta, ..., delta) weights (RG: 1).
    precision_shape : float
        alpha of ``sigma^-2 ~ Gamma(alpha, rate beta)`` (RG: 2).
    rate_shape, rate_rate_factor : float
        ``beta ~ Gamma(g, rate h)`` with ``g = rate_shape`` (RG: 0.2) and
        ``h = rate_rate_factor / R^2`` (RG: 10).
    mean_precision_factor : float
        ``mu ~ N(xi, 1/kappa)`` with ``kappa = mean_precision_factor / R^2`` (RG: 1).

    Examples
    --------
    >>> from bayesmoe.models.priors import resolve_priors
    >>> p = resolve_priors("richardson-green")
    >>> p.scheme, p.dirichlet_weights, p.precision_shape
    ('richardson-green', True, 2.0)
    """

    gate_intercept: float = 3.0
    gate_slope: float = 3.0
    expert_slope: float = 2.0
    expert_intercept: float = 2.0
    noise: float = 1.0
    dispersion: float = 1.0
    tail: float = 0.5
    scheme: str = "default"
    dirichlet_weights: bool = False
    weights_concentration: float = 1.0
    precision_shape: float = 2.0
    rate_shape: float = 0.2
    rate_rate_factor: float = 10.0
    mean_precision_factor: float = 1.0

    @property
    def hierarchical(self) -> bool:
        """True for the Richardson–Green expert prior (means around xi, Gamma precisions)."""
        return self.scheme == "richardson-green"

    def to_dict(self) -> dict:
        return asdict(self)


def _from_name(name: str) -> Priors:
    key = name.strip().lower().replace("_", "-")
    if key in ("rg", "richardson-green", "richardsongreen"):
        return Priors(scheme="richardson-green", dirichlet_weights=True)
    if key == "default":
        return Priors()
    raise ValueError(
        f"Unknown prior set {name!r}; expected one of {sorted(PRIOR_SETS)} "
        "(e.g. priors='richardson-green', or --priors richardson-green)."
    )


def resolve_priors(priors: Priors | dict | str | None) -> Priors:
    """Validate a prior choice into Priors.

    ``priors`` is None (the default set), a set name (``"default"``, ``"richardson-green"``), a
    Priors, or a dict of field -> value overrides; a dict may name the set under ``"scheme"``
    and then overrides that set's fields.
    """
    if priors is None:
        return Priors()
    if isinstance(priors, str):
        out = _from_name(priors)
    elif isinstance(priors, Priors):
        out = priors
    elif isinstance(priors, dict):
        known = {f.name for f in fields(Priors)}
        unknown = sorted(set(priors) - known)
        if unknown:
            raise ValueError(f"Unknown prior(s) {unknown}; expected keys among {sorted(known)}.")
        base = _from_name(str(priors["scheme"])) if "scheme" in priors else Priors()
        over = {
            k: (float(v) if k in _FLOAT_FIELDS else v) for k, v in priors.items() if k != "scheme"
        }
        out = replace(base, **over)
    else:
        raise TypeError(
            "`priors` must be a prior-set name, a dict or bayesmoe.models.Priors; got "
            f"{type(priors).__name__}."
        )
    if out.scheme not in PRIOR_SETS:
        raise ValueError(f"`scheme` must be one of {sorted(PRIOR_SETS)}; got {out.scheme!r}.")
    if not isinstance(out.dirichlet_weights, bool):
        raise TypeError(
            f"`dirichlet_weights` must be True or False; got {out.dirichlet_weights!r}."
        )
    for k in _FLOAT_FIELDS:
        v = getattr(out, k)
        if not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"Prior scale {k!r} must be a positive number; got {v!r}.")
    return out
