"""Binomial regression experts with a logit link:
``y | x, k ~ Binomial(trials, expit(a_k . x + b_k))``.

``trials`` is a known per-row number of trials (a positive integer; default 1 in every row, the
Bernoulli case: a 0/1 response, or a two-level one coded 0/1 in sorted order, the second level
the success). Free parameters (standardised scale): slopes ``a_std[feature, expert]`` ~
N(0, expert_slope) and intercepts ``b_std[expert]`` ~ N(0, expert_intercept) on the logit scale
(the response is not transformed: the default N(0, 2) intercept prior means "success
probabilities between about 0.02 and 0.98" at two prior sds). Canonical (measure) variables:
``a``, ``b`` (user units: ``logit P(success | x, k) = a . x + b``).

Maximum likelihood: each expert's weighted logistic regression takes one Newton (IRLS) step with
step halving until its expected complete-data log-likelihood does not decrease, so the MM/EM
iteration stays monotone (as :mod:`bayesmoe.families.poisson`).

Examples
--------
>>> import numpy as np
>>> from bayesmoe.families import get_family
>>> fam = get_family("binomial")
>>> canon = {"a": np.zeros((1, 1)), "b": np.zeros(1)}
>>> X = np.zeros((2, 1))
>>> lp = fam.log_prob(canon, X, np.array([0.0, 3.0]), data={"trials": np.array([1.0, 4.0])})
>>> np.round(np.exp(lp[:, 0]), 4)  # 1/2 and C(4, 3) / 16
array([0.5 , 0.25])
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe._validation import check_binomial_response
from bayesmoe.families._ascent import glm_newton_step, halved_step
from bayesmoe.families._ops import Ops
from bayesmoe.families.base import (
    Family,
    Param,
    Transform,
    linear_eta,
    linear_pack,
    linear_to_standard,
    linear_to_user,
    linear_unpack,
)
from bayesmoe.families.gaussian import pick

__all__ = ["BINOMIAL", "Binomial"]


def _trials_like(xp, data, eta):
    """Per-row trials broadcast to the predictor's shape (ones when none were given)."""
    t = None if data is None else data.get("trials")
    if t is None:
        return xp.zeros_like(eta) + 1.0
    return t[..., None] + xp.zeros_like(eta)


def _expit(eta):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(eta, dtype=float)))


class Binomial(Family):
    """Binomial logit-link regression experts (see the module docstring)."""

    name = "binomial"
    description = "binomial regression experts, logit link, per-row trials (proportions, 0/1)"
    params = (
        Param("a", ("feature",), "expert_slope"),
        Param("b", (), "expert_intercept", intercept=True),
    )
    canonical_dims: ClassVar[dict] = {"a": ("feature", "expert"), "b": ("expert",)}
    trace_dims: ClassVar[dict] = canonical_dims
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in the log-odds of success per unit of the feature, within "
        "the expert (e^a is the odds ratio)",
        "b": "expert intercept: log-odds of success at x = 0, within the expert",
    }
    row_data = ("trials",)
    signature = "(k),(k),(k)->()"
    y_dtype = "int64"
    discrete = True

    def check_response(self, y, n_obs, classes=None):
        return check_binomial_response(y, n_obs, family=self.name), None

    def example_response(self, n, n_classes=0):
        return np.arange(n) % 2

    def standard_data(self, y, tr: Transform, offset=None):
        """Successes are not rescaled; trials join the data where the caller has them."""
        return np.asarray(y), {"offset": None}

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free):
        return {"a": free["a_std"], "b": free["b_std"]}

    def free_from_canonical(self, canon):
        return {"a_std": np.asarray(canon["a"], float), "b_std": np.asarray(canon["b"], float)}

    def to_user(self, xp, canon, tr: Transform):
        a, b = linear_to_user(xp, canon["a"], canon["b"], tr, 0)
        return {"a": a, "b": b}

    def to_standard(self, canon, tr: Transform):
        a, b = linear_to_standard(canon["a"], canon["b"], tr, 0)
        return {"a": a, "b": b}

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(logit (..., n, K), trials (..., n, K)): ``a . x + b`` and the row's trials."""
        eta = linear_eta(ops.xp, X, canon["a"], canon["b"], 0)
        return eta, _trials_like(ops.xp, data, eta)

    def component_log_prob(self, ops: Ops, y, logit, trials):
        xp = ops.xp
        y = y[..., None]
        log_choose = ops.gammaln(trials + 1.0) - ops.gammaln(y + 1.0)
        log_choose = log_choose - ops.gammaln(trials - y + 1.0)
        return log_choose + y * logit - trials * xp.logaddexp(0.0, logit)

    def draw(self, rng, k, logit, trials):
        n = np.rint(pick(trials, k)).astype(np.int64)
        return rng.binomial(n, _expit(pick(logit, k)))

    def mean(self, logit, trials):
        return trials * _expit(logit)

    def cdf(self, y, logit, trials):
        from scipy.special import bdtr

        y = np.broadcast_to(y, np.broadcast_shapes(np.shape(y), np.shape(logit)))
        below = y < 0
        out = bdtr(np.clip(np.floor(y), 0, trials), trials, _expit(logit))
        return np.where(below, 0.0, np.where(y >= trials, 1.0, out))

    def quantile_bounds(self, logit, trials):
        return np.zeros_like(trials), np.asarray(trials, dtype=float) + 0.0

    # ----- reversible jump ----------------------------------------------------------------------
    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """Ten weighted IRLS steps of a logistic regression (ridge 1e-2, which keeps separable
        subsets finite); sd twice the sandwich standard error.
        """
        n, d = Xs.shape
        A = np.column_stack([Xs, np.ones(n)])  # columns: a (d), b
        y = np.asarray(y, dtype=float)
        t = np.ones(n) if data.get("trials") is None else np.asarray(data["trials"], float)
        coef = np.zeros(d + 1)
        coef[-1] = np.log((np.sum(w * y) + 0.5) / (np.sum(w * (t - y)) + 0.5))
        ridge = 1e-2 * np.eye(d + 1)
        for _ in range(10):
            p = _expit(A @ coef)
            H = A.T @ (A * (w * t * p * (1 - p))[:, None]) + ridge
            coef = coef + np.linalg.solve(H, A.T @ (w * (y - t * p)) - ridge @ coef)
        p = _expit(A @ coef)
        H_inv = np.linalg.inv(A.T @ (A * (w * t * p * (1 - p))[:, None]) + ridge)
        meat = A.T @ (A * (w * w * t * p * (1 - p))[:, None])
        se = np.sqrt(np.maximum(np.diag(H_inv @ meat @ H_inv), 0.0))
        return coef, 2.0 * se

    # ----- MM ---------------------------------------------------------------------------------
    def mm_blocks(self, D, K, M):
        return {"A": (D, K)}

    def mm_unpack(self, blocks):
        return linear_unpack(blocks["A"])

    def mm_pack(self, canon):
        return {"A": linear_pack(canon)}

    def mm_prepare(self, prob, M: int) -> None:
        if getattr(prob, "trials", None) is None:
            prob.trials = np.ones(prob.Xt.shape[0])

    def mm_init_features(self, y, n_classes):
        return np.asarray(y, dtype=float)[:, None]

    def mm_init_columns(self, prob):
        """The empirical logit ``log((y + 1/2) / (trials - y + 1/2))``: successes of rows with
        different numbers of trials are clustered as proportions.
        """
        t = np.ones(len(prob.y)) if prob.trials is None else prob.trials
        y = np.asarray(prob.y, dtype=float)
        return np.log((y + 0.5) / (t - y + 0.5))[:, None]

    def _q(self, prob, A, tau):
        """Each expert's penalised expected complete-data log-likelihood, shape (S, K)."""
        eta = prob.Xt @ A
        y, t = prob.y[None, :, None], prob.trials[None, :, None]
        ll = (tau * (y * eta - t * np.logaddexp(0.0, eta))).sum(1)
        slopes = np.einsum("de,sek->sdk", prob.P, A)
        return ll - 0.5 * prob.ridge * (slopes * A).sum(1)

    def mm_step(self, prob, blocks, tau, newton):
        """One Newton (IRLS) step per expert on its weighted binomial log-likelihood, halved
        until that expert's objective does not decrease (generalised EM: monotone).
        """
        A, t = blocks["A"], prob.trials[None, :, None]
        with np.errstate(over="ignore", invalid="ignore"):
            p = _expit(prob.Xt @ A)  # (S, n, K)
            mean = t * p
            resid_w, curv_w = tau * (prob.y[None, :, None] - mean), tau * mean * (1.0 - p)
        step = glm_newton_step(prob, A, resid_w, curv_w)
        return {"A": halved_step(lambda a: self._q(prob, a, tau), A, step)}


BINOMIAL = Binomial()
