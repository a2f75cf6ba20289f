"""Poisson regression experts with a log link: ``y | x, k ~ Poisson(exp(a_k . x + b_k + offset))``.

The optional per-row ``offset`` is a log-exposure (``offset = log(exposure)``), known and not
fitted. Free parameters (standardised scale): slopes ``a_std[feature, expert]`` ~
N(0, expert_slope) and intercepts ``b_std[expert]`` ~ N(0, expert_intercept) around the data's
log rate: the standardised scale centres the log link at ``y_center = log(Σ y / Σ exposure)``
(``y_scale`` is 1), so the default N(0, 2) intercept prior means "rates within a factor e² ≈ 7.4 of
the overall rate" whatever the units of the counts. Canonical (measure) variables: ``a``, ``b``
(user units: ``log E[y | x, k] = a . x + b + offset``).

Maximum likelihood: each expert's weighted Poisson regression takes one Newton (IRLS) step with
step halving until its expected complete-data log-likelihood does not decrease, so the MM/EM
iteration stays monotone without a global quadratic bound (the Poisson log-likelihood has none).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe._validation import check_count_response
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

__all__ = ["POISSON", "Poisson"]


class Poisson(Family):
    """Poisson log-link regression experts (see the module docstring)."""

    name = "poisson"
    description = "Poisson regression experts, log link, optional offset (counts)"
    params = (
        Param("a", ("feature",), "expert_slope"),
        Param("b", (), "expert_intercept", intercept=True),
    )
    canonical_dims: ClassVar[dict] = {"a": ("feature", "expert"), "b": ("expert",)}
    trace_dims: ClassVar[dict] = canonical_dims
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in log E[y] per unit of the feature, within the expert "
        "(e^a is the rate ratio)",
        "b": "expert intercept: log E[y] at x = 0 and exposure 1, within the expert",
    }
    takes_offset = True
    row_data = ("offset",)
    transforms_response = True
    signature = "(k),(k)->()"
    y_dtype = "int64"
    discrete = True

    def check_response(self, y, n_obs, classes=None):
        return check_count_response(y, n_obs, family=self.name), None

    def response_center_scale(self, y, offset=None):
        """``(log(Σ y / Σ exposure), 1)``: where the standardised log link is centred."""
        y = np.asarray(y, dtype=float)
        exposure = np.exp(offset) if offset is not None else np.ones_like(y)
        total = y.sum()
        if total <= 0:
            raise ValueError("`y` is zero in every row: there is no rate to model.")
        return float(np.log(total / exposure.sum())), 1.0

    def example_response(self, n, n_classes=0):
        return np.arange(n) % 5

    def standard_data(self, y, tr: Transform, offset=None):
        """Counts are not rescaled; the centre of the log link joins the offset."""
        y = np.asarray(y)
        off = np.zeros(y.shape) if offset is None else np.asarray(offset, dtype=float)
        return y, {"offset": off + tr.y_center}

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free):
        return {"a": free["a_std"], "b": free["b_std"]}

    def free_from_canonical(self, canon):
        return {"a_std": np.asarray(canon["a"], float), "b_std": np.asarray(canon["b"], float)}

    def to_user(self, xp, canon, tr: Transform):
        a, b = linear_to_user(xp, canon["a"], canon["b"], tr, 0, 1.0, tr.y_center)
        return {"a": a, "b": b}

    def to_standard(self, canon, tr: Transform):
        a, b = linear_to_standard(canon["a"], canon["b"], tr, 0, 1.0, tr.y_center)
        return {"a": a, "b": b}

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(log rate (..., n, K),): ``y_center + a . x + b + offset``."""
        eta = tr.y_center + linear_eta(ops.xp, X, canon["a"], canon["b"], 0)
        if data is not None and data.get("offset") is not None:
            eta = eta + data["offset"][..., None]
        return (eta,)

    def component_log_prob(self, ops: Ops, y, log_rate):
        y = y[..., None]
        return y * log_rate - ops.xp.exp(log_rate) - ops.gammaln(y + 1.0)

    def draw(self, rng, k, log_rate):
        return rng.poisson(np.exp(pick(log_rate, k)))

    def mean(self, log_rate):
        return np.exp(log_rate)

    def cdf(self, y, log_rate):
        from scipy.special import pdtr

        return pdtr(np.maximum(y, -1.0), np.exp(log_rate))

    def quantile_bounds(self, log_rate):
        rate = np.exp(log_rate)
        return np.zeros_like(rate), rate + 10.0 * np.sqrt(rate) + 10.0

    # ----- reversible jump ----------------------------------------------------------------------
    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """Ten weighted IRLS steps of a Poisson regression (ridge 1e-6); sd twice the
        sandwich standard error.
        """
        n, d = Xs.shape
        A = np.column_stack([Xs, np.ones(n)])  # columns: a (d), b
        y = np.asarray(y, dtype=float)
        off = np.zeros(n) if data.get("offset") is None else np.asarray(data["offset"])
        coef = np.zeros(d + 1)
        coef[-1] = np.log((np.sum(w * y) + 0.5) / np.sum(w * np.exp(off)))
        for _ in range(10):
            rate = np.exp(np.clip(A @ coef + off, -30.0, 30.0))
            H = A.T @ (A * (w * rate)[:, None]) + 1e-6 * np.eye(d + 1)
            coef = coef + np.linalg.solve(H, A.T @ (w * (y - rate)))
        rate = np.exp(np.clip(A @ coef + off, -30.0, 30.0))
        H_inv = np.linalg.inv(A.T @ (A * (w * rate)[:, None]) + 1e-6 * np.eye(d + 1))
        meat = A.T @ (A * (w * w * rate)[:, None])
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
        if prob.offset is None:
            prob.offset = np.zeros(prob.Xt.shape[0])

    def mm_init_features(self, y, n_classes):
        return np.log1p(np.asarray(y, dtype=float))[:, None]

    def _q(self, prob, A, tau):
        """Each expert's penalised expected complete-data log-likelihood, shape (S, K)."""
        eta = prob.Xt @ A + prob.offset[None, :, None]
        ll = (tau * (prob.y[None, :, None] * eta - np.exp(eta))).sum(1)
        slopes = np.einsum("de,sek->sdk", prob.P, A)
        return ll - 0.5 * prob.ridge * (slopes * A).sum(1)

    def mm_step(self, prob, blocks, tau, newton):
        """One Newton (IRLS) step per expert on its weighted Poisson log-likelihood, halved
        until that expert's objective does not decrease (generalised EM: monotone).
        """
        A = blocks["A"]
        with np.errstate(over="ignore", invalid="ignore"):
            rate = np.exp(prob.Xt @ A + prob.offset[None, :, None])  # (S, n, K)
            resid_w, curv_w = tau * (prob.y[None, :, None] - rate), tau * rate
        step = glm_newton_step(prob, A, resid_w, curv_w)
        return {"A": halved_step(lambda a: self._q(prob, a, tau), A, step)}


POISSON = Poisson()
