"""Prior scales of the fixed-K model, on the standardised scale (shared/MATH.md §2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

__all__ = ["Priors", "resolve_priors"]


@dataclass(frozen=True)
class Priors:
    """Prior scales, all on the standardised scale of X, M(X) and (Gaussian) y.

    Attributes
    ----------
    gate_intercept : float
        sd of ``beta0 ~ ZeroSumNormal`` over experts (or Normal for the reference-expert gate).
        Default 3: gate log-odds up to about ±6 between experts a priori.
    gate_slope : float
        sd of ``beta1 ~ ZeroSumNormal`` over experts. Default 3 allows gates that switch
        sharply over one standard deviation of the input.
    expert_slope : float
        sd of the expert slopes ``a ~ Normal``. Default 2 (y and x have unit sd).
    expert_intercept : float
        sd of the expert intercepts ``b ~ Normal``. Default 2.
    noise : float
        scale of ``sigma ~ HalfNormal`` (noise sd of Gaussian experts, in units of sd(y)). Default 1.
    """

    gate_intercept: float = 3.0
    gate_slope: float = 3.0
    expert_slope: float = 2.0
    expert_intercept: float = 2.0
    noise: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_priors(priors: Priors | dict | None) -> Priors:
    """Validate user overrides (a dict of field -> positive float, or a Priors) into Priors."""
    if priors is None:
        return Priors()
    if isinstance(priors, Priors):
        out = priors
    elif isinstance(priors, dict):
        known = {f.name for f in fields(Priors)}
        unknown = sorted(set(priors) - known)
        if unknown:
            raise ValueError(f"Unknown prior(s) {unknown}; expected keys among {sorted(known)}.")
        out = replace(Priors(), **{k: float(v) for k, v in priors.items()})
    else:
        raise TypeError(f"`priors` must be a dict or bayesmoe.models.Priors; got {type(priors)}.")
    for k, v in out.to_dict().items():
        if not v > 0:
            raise ValueError(f"Prior scale {k!r} must be a positive number; got {v!r}.")
    return out
