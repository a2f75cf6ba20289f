"""Negative binomial regression experts (NB2, log link): ``y | x, k ~ NB(mean mu_k, alpha_k)`` with
``log mu_k = a_k . x + b_k + offset`` and ``Var(y) = mu + alpha_k mu²``.

The negative binomial is a Poisson whose rate is multiplied by a Gamma(1/alpha, 1/alpha) variable
of mean 1; ``kappa = sqrt(alpha)`` is that variable's coefficient of variation, so ``kappa -> 0``
is the Poisson expert (:mod:`bayesmoe.families.poisson`). The per-row ``offset`` is a
log-exposure, as for Poisson experts; the standardised scale centres the log link at the data's
log rate in the same way.

Priors (standardised scale): slopes and intercepts as Poisson experts (``expert_slope``,
``expert_intercept``); ``kappa_std ~ HalfNormal(dispersion)``, default 1: the prior on
``1 / sqrt(phi)`` (``phi = 1 / alpha`` the size) recommended by the Stan prior-choice notes
(github.com/stan-dev/stan/wiki/Prior-Choice-Recommendations) [paper-cited choice]; it shrinks
towards the Poisson expert and gives the extra-Poisson CV below 2 with probability 0.95.
Canonical (measure) variables: ``a``, ``b`` (user units, as Poisson) and ``alpha``; the trace
stores ``alpha``.

The log pmf is ``D(y, phi) + y log mu - gammaln(y + 1) - (phi + y) log1p(alpha mu)`` with
``D = gammaln(y + phi) - gammaln(phi) - y log phi`` from
:func:`~bayesmoe.families._ops.log_rising_scaled`, accurate as ``alpha -> 0``.

Maximum likelihood (generalised EM, monotone): each expert takes a Fisher-scoring (IRLS) step for
``(b, a)`` at its current ``alpha``, halved until its expected complete-data log-likelihood does
not decrease, then a safeguarded Newton step on ``log alpha`` (central-difference slope and
curvature, halved likewise), kept within ``[ALPHA_MIN, ALPHA_MAX]``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe.families._ascent import halved_step, newton_1d
from bayesmoe.families._ops import NUMPY, Ops, log_rising_scaled
from bayesmoe.families.base import (
    Param,
    Transform,
    linear_pack,
    linear_to_standard,
    linear_to_user,
    linear_unpack,
)
from bayesmoe.families.gaussian import pick
from bayesmoe.families.poisson import Poisson

__all__ = ["NEGBINOMIAL", "NegBinomial"]

#: bounds of the overdispersion in the MM fitter (the Poisson limit is alpha -> 0)
ALPHA_MIN, ALPHA_MAX = 1e-12, 1e4


class NegBinomial(Poisson):
    """Negative binomial (NB2) log-link regression experts (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.families import get_family
    >>> fam = get_family("negbinomial")
    >>> canon = {"a": np.zeros((1, 2)), "b": np.log([2.0, 5.0]), "alpha": np.array([1e-12, 0.5])}
    >>> lp = fam.log_prob(canon, np.zeros((1, 1)), np.array([3]))  # alpha -> 0: the Poisson pmf
    >>> bool(np.isclose(np.exp(lp[0, 0]), 2.0**3 * np.exp(-2.0) / 6))
    True
    """

    name = "negbinomial"
    description = "negative binomial regression experts, log link, optional offset (counts)"
    params = (
        Param("a", ("feature",), "expert_slope"),
        Param("b", (), "expert_intercept", intercept=True),
        Param("kappa", (), "dispersion", positive=True),
    )
    canonical_dims: ClassVar[dict] = {
        "a": ("feature", "expert"),
        "b": ("expert",),
        "alpha": ("expert",),
    }
    trace_dims: ClassVar[dict] = canonical_dims
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in log E[y] per unit of the feature, within the expert "
        "(e^a is the rate ratio)",
        "b": "expert intercept: log E[y] at x = 0 and exposure 1, within the expert",
        "alpha": "expert overdispersion: Var[y] = E[y] + alpha E[y]^2 within the expert "
        "(0 is Poisson)",
    }
    positive_canonical = ("alpha",)
    signature = "(k),(k),(k)->()"

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free):
        k = free["kappa_std"]
        return {"a": free["a_std"], "b": free["b_std"], "alpha": k * k}

    def free_from_canonical(self, canon):
        return {
            "a_std": np.asarray(canon["a"], float),
            "b_std": np.asarray(canon["b"], float),
            "kappa_std": np.sqrt(np.asarray(canon["alpha"], float)),
        }

    def to_user(self, xp, canon, tr: Transform):
        a, b = linear_to_user(xp, canon["a"], canon["b"], tr, 0, 1.0, tr.y_center)
        return {"a": a, "b": b, "alpha": canon["alpha"]}

    def to_standard(self, canon, tr: Transform):
        a, b = linear_to_standard(canon["a"], canon["b"], tr, 0, 1.0, tr.y_center)
        return {"a": a, "b": b, "alpha": np.asarray(canon["alpha"], float)}

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(log mean, alpha), both (..., n, K)."""
        (eta,) = super().predictors(ops, canon, X, tr, data)
        return eta, ops.xp.zeros_like(eta) + canon["alpha"][..., None, :]

    def component_log_prob(self, ops: Ops, y, log_mu, alpha):
        xp = ops.xp
        y = y[..., None]
        phi = 1.0 / alpha
        return (
            log_rising_scaled(ops, y, phi)
            + y * log_mu
            - ops.gammaln(y + 1.0)
            - (phi + y) * xp.log1p(alpha * xp.exp(log_mu))
        )

    def draw(self, rng, k, log_mu, alpha):
        """Gamma–Poisson draws: ``Poisson(mu G)``, ``G ~ Gamma(1/alpha, scale alpha)``."""
        mu, al = np.exp(pick(log_mu, k)), pick(alpha, k)
        return rng.poisson(mu * rng.gamma(1.0 / al, al))

    def mean(self, log_mu, alpha):
        return np.exp(log_mu)

    def cdf(self, y, log_mu, alpha):
        from scipy.special import betainc

        phi = 1.0 / alpha
        p = phi / (phi + np.exp(log_mu))
        yy = np.floor(np.maximum(y, 0.0))
        return np.where(y < 0, 0.0, betainc(phi, yy + 1.0, p))

    def quantile_bounds(self, log_mu, alpha):
        """0 and the Poisson experts' bound at the rate ``mu g``, ``g`` the Gamma multiplier's
        upper 1e-13 quantile (the mass above is below 1e-12).
        """
        from scipy.special import gammainccinv

        top = np.exp(log_mu) * gammainccinv(1.0 / alpha, 1e-13) * alpha
        return np.zeros_like(top), top + 10.0 * np.sqrt(top) + 10.0

    # ----- reversible jump ----------------------------------------------------------------------
    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """The Poisson experts' weighted IRLS fit for (a, b) with twice its sandwich standard
        errors (valid under overdispersion); ``log kappa`` at half the log of the weighted
        moment estimate ``sum w ((y - mu)² - mu) / sum w mu²`` (at least 1e-3), sd
        ``0.5 + 1 / sqrt(n_eff)``.
        """
        coef, sd = super().rj_birth_experts(Xs, y, w, data, n_classes)
        n = Xs.shape[0]
        off = np.zeros(n) if data.get("offset") is None else np.asarray(data["offset"])
        mu = np.exp(np.clip(np.column_stack([Xs, np.ones(n)]) @ coef + off, -30.0, 30.0))
        y = np.asarray(y, dtype=float)
        alpha = np.sum(w * ((y - mu) ** 2 - mu)) / np.sum(w * mu * mu)
        alpha = alpha if alpha > 1e-3 else 1e-3
        n_eff = 1.0 / np.sum(w * w)
        return np.r_[coef, 0.5 * np.log(alpha)], np.r_[sd, 0.5 + 1.0 / np.sqrt(n_eff)]

    # ----- MM ---------------------------------------------------------------------------------
    def mm_blocks(self, D, K, M):
        return {"A": (D, K), "log_alpha": (K,)}

    def mm_unpack(self, blocks):
        return {**linear_unpack(blocks["A"]), "alpha": np.exp(blocks["log_alpha"])}

    def mm_pack(self, canon):
        return {"A": linear_pack(canon), "log_alpha": np.log(canon["alpha"])}

    def mm_project(self, blocks, prob):
        la = np.clip(blocks["log_alpha"], np.log(ALPHA_MIN), np.log(ALPHA_MAX))
        return {**blocks, "log_alpha": la}

    def _q(self, prob, A, log_alpha, tau):
        """Each expert's penalised expected complete-data log-likelihood, shape (S, K)."""
        eta = prob.Xt @ A + prob.offset[None, :, None]
        alpha = np.broadcast_to(np.exp(log_alpha)[:, None, :], eta.shape)
        lp = self.component_log_prob(NUMPY, prob.y_float, eta, alpha)
        slopes = np.einsum("de,sek->sdk", prob.P, A)
        return (tau * lp).sum(1) - 0.5 * prob.ridge * (slopes * A).sum(1)

    def mm_prepare(self, prob, M: int) -> None:
        super().mm_prepare(prob, M)
        prob.y_float = np.asarray(prob.y, dtype=float)

    def mm_step(self, prob, blocks, tau, newton):
        """Fisher scoring for (b, a) at the current alpha, halved until Q_k does not decrease;
        then a safeguarded Newton step on log alpha (both monotone in each expert's Q_k).
        """
        from bayesmoe.inference.mle.mm_updates import JITTER

        Xt, y = prob.Xt, prob.y_float
        n, D = Xt.shape
        A, la = blocks["A"], blocks["log_alpha"]
        alpha = np.exp(la)[:, None, :]
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(Xt @ A + prob.offset[None, :, None])  # (S, n, K)
            v = 1.0 + alpha * mu
            grad = np.einsum("nd,snk->skd", Xt, tau * (y[None, :, None] - mu) / v)
            grad -= prob.ridge * np.einsum("de,sek->skd", prob.P, A)
            H = np.einsum("nd,ne,snk->skde", Xt, Xt, tau * mu / v, optimize=True)
            H = H + prob.ridge * prob.P + JITTER * n * np.eye(D)
            step = np.linalg.solve(H, grad[..., None])[..., 0]  # (S, K, D)
        step = np.where(np.isfinite(step), step, 0.0)
        step = prob.step_scale * np.moveaxis(step, 1, -1)  # (S, D, K)
        A = halved_step(lambda a: self._q(prob, a, la, tau), A, step)
        lo, hi = np.log(ALPHA_MIN), np.log(ALPHA_MAX)  # from within the bounds (see StudentT)
        la = newton_1d(lambda t: self._q(prob, A, t, tau), np.clip(la, lo, hi), lo, hi)
        return {"A": A, "log_alpha": la}


NEGBINOMIAL = NegBinomial()
