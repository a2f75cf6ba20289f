"""Gaussian regression experts: ``y | x, k ~ N(a_k . x + b_k, sigma_k^2)`` (docs/math.md §1.1).

Free parameters (standardised scale): slopes ``a_std[feature, expert]`` ~ N(0, expert_slope),
intercepts ``b_std[expert]`` ~ N(0, expert_intercept), noise sds ``sigma_std[expert]`` ~
HalfNormal(noise). The response is standardised, ``y_s = (y - y_center) / y_scale``. Canonical
(measure) variables: ``a``, ``b``, ``sigma2`` (noise *variances*); the trace stores the noise sd
``sigma``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe._validation import check_real_response
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

__all__ = ["GAUSSIAN", "Gaussian"]

_LOG_SQRT_2PI = 0.5 * float(np.log(2.0 * np.pi))


def weighted_lstsq(A: np.ndarray, t: np.ndarray, w: np.ndarray):
    """Weighted least squares: coefficients and the diagonal of the sandwich covariance / s^2."""
    AtWA = A.T @ (A * w[:, None]) + 1e-8 * np.eye(A.shape[1])
    inv = np.linalg.inv(AtWA)
    coef = inv @ (A.T @ (w * t))
    sandwich = inv @ (A.T @ (A * (w * w)[:, None])) @ inv
    return coef, np.diag(sandwich)


def pick(values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``values[..., k]`` per observation: values (..., K) broadcast to k.shape + (K,)."""
    values = np.broadcast_to(values, k.shape + np.shape(values)[-1:])
    return np.take_along_axis(values, k[..., None], -1)[..., 0]


class Gaussian(Family):
    """Gaussian linear-regression experts (see the module docstring)."""

    name = "gaussian"
    description = "Gaussian linear-regression experts (real responses)"
    params = (
        Param("a", ("feature",), "expert_slope"),
        Param("b", (), "expert_intercept", intercept=True),
        Param("sigma", (), "noise", positive=True),
    )
    canonical_dims: ClassVar[dict] = {
        "a": ("feature", "expert"),
        "b": ("expert",),
        "sigma2": ("expert",),
    }
    trace_dims: ClassVar[dict] = {
        "a": ("feature", "expert"),
        "b": ("expert",),
        "sigma": ("expert",),
    }
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in the mean of y per unit of the feature, within the expert",
        "b": "expert intercept: mean of y at x = 0 within the expert",
        "sigma": "expert noise sd: standard deviation of y around the expert's line, y's units",
    }
    standardizes_response = True
    positive_canonical = ("sigma2",)
    voronoi_rbar = True
    dendrogram_linear = ("a", "sigma2")
    transforms_response = True
    hierarchical_prior = True
    signature = "(k),(k),(k)->()"
    numba_kernel = "gaussian"

    def check_response(self, y, n_obs, classes=None):
        return check_real_response(y, n_obs, family=self.name), None

    def response_center_scale(self, y, offset=None):
        y = np.asarray(y, dtype=float)
        sy = float(y.std())
        if sy <= 0:
            raise ValueError("`y` is constant; there is nothing to model.")
        return float(y.mean()), sy

    def example_response(self, n, n_classes=0):
        return np.linspace(-1.0, 1.0, n)

    def standard_data(self, y, tr: Transform, offset=None):
        return (np.asarray(y, dtype=float) - tr.y_center) / tr.y_scale, {"offset": None}

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free):
        s = free["sigma_std"]
        return {"a": free["a_std"], "b": free["b_std"], "sigma2": s * s}

    def free_from_canonical(self, canon):
        return {
            "a_std": np.asarray(canon["a"], float),
            "b_std": np.asarray(canon["b"], float),
            "sigma_std": np.sqrt(np.asarray(canon["sigma2"], float)),
        }

    def to_user(self, xp, canon, tr: Transform):
        a, b = linear_to_user(xp, canon["a"], canon["b"], tr, 0, tr.y_scale, tr.y_center)
        return {"a": a, "b": b, "sigma2": tr.y_scale**2 * canon["sigma2"]}

    def to_standard(self, canon, tr: Transform):
        a, b = linear_to_standard(canon["a"], canon["b"], tr, 0, tr.y_scale, tr.y_center)
        return {"a": a, "b": b, "sigma2": np.asarray(canon["sigma2"]) / tr.y_scale**2}

    def trace_from_canonical(self, xp, canon):
        return {"a": canon["a"], "b": canon["b"], "sigma": xp.sqrt(canon["sigma2"])}

    def canonical_from_trace(self, values):
        sigma = values["sigma"]  # arrays or DataArrays
        return {"a": values["a"], "b": values["b"], "sigma2": sigma * sigma}

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(mu, sigma), both (..., n, K), in the user's units of y (every predictor is per
        observation, as PyMC's CustomDist signature batches them).
        """
        xp = ops.xp
        eta = linear_eta(xp, X, canon["a"], canon["b"], 0)
        sigma = tr.y_scale * xp.sqrt(canon["sigma2"])[..., None, :]
        return tr.y_center + tr.y_scale * eta, xp.zeros_like(eta) + sigma

    def component_log_prob(self, ops: Ops, y, mu, sigma):
        z = (y[..., None] - mu) / sigma
        return -0.5 * z * z - ops.xp.log(sigma) - _LOG_SQRT_2PI

    def draw(self, rng, k, mu, sigma):
        return pick(mu, k) + pick(sigma, k) * rng.standard_normal(k.shape)

    def mean(self, mu, sigma):
        return mu

    def cdf(self, y, mu, sigma):
        from scipy.special import ndtr

        return ndtr((y - mu) / sigma)

    def quantile_bounds(self, mu, sigma):
        return mu - 10 * sigma, mu + 10 * sigma

    def mixture_distance(self, wp, preds_p, wq, preds_q, *, kind, n_grid=17):
        """Gaussian mixtures: quadrature on a union grid (see
        :func:`bayesmoe.diagnostics.hellinger.gaussian_mixture_distance`).
        """
        from bayesmoe.diagnostics.hellinger import gaussian_mixture_distance

        (mup, sp), (muq, sq) = preds_p, preds_q
        return gaussian_mixture_distance(wp, mup, sp, wq, muq, sq, kind=kind, n_grid=n_grid)

    # ----- reversible jump ----------------------------------------------------------------------
    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """Weighted least squares for (a, b) with sandwich standard errors; ``log sigma`` at
        the weighted residual sd, sd ``sqrt(1 / (2 n_eff))``.
        """
        n = Xs.shape[0]
        A = np.column_stack([Xs, np.ones(n)])  # columns: a (d), b
        coef, var = weighted_lstsq(A, y, w)
        r2 = float(np.sum(w * (y - A @ coef) ** 2) / np.sum(w))
        s2 = r2 if r2 > 1e-4 else 1e-4
        n_eff = 1.0 / np.sum(w * w)
        mean = np.r_[coef, 0.5 * np.log(s2)]
        sd = np.r_[np.sqrt(var * s2), np.sqrt(1.0 / (2.0 * n_eff))]
        return mean, sd

    # ----- MM ---------------------------------------------------------------------------------
    def mm_blocks(self, D, K, M):
        return {"A": (D, K), "log_s2": (K,)}

    def mm_unpack(self, blocks):
        return {**linear_unpack(blocks["A"]), "sigma2": np.exp(blocks["log_s2"])}

    def mm_pack(self, canon):
        return {"A": linear_pack(canon), "log_s2": np.log(canon["sigma2"])}

    def mm_project(self, blocks, prob):
        return {**blocks, "log_s2": np.maximum(blocks["log_s2"], np.log(prob.var_floor))}

    def mm_step(self, prob, blocks, tau, newton):
        """Weighted least squares for (b_k, a_k) at the current σ_k², then the closed-form
        σ_k² = max(floor, Σ τ r² / Σ τ): each maximises the expected complete-data
        log-likelihood in its block, so neither decreases it.
        """
        from bayesmoe.inference.mle.mm_updates import JITTER, weighted_gram

        Xt, y = prob.Xt, prob.y
        n, D = Xt.shape
        A, s2 = blocks["A"], np.exp(blocks["log_s2"])
        r = y[None, :, None] - Xt @ A
        grad = np.swapaxes(Xt.T @ (tau * r), 1, 2) / s2[:, :, None]
        grad -= prob.ridge * np.einsum("de,sek->skd", prob.P, A)
        H = weighted_gram(Xt, tau) / s2[:, :, None, None]
        H = H + prob.ridge * prob.P + JITTER * n * np.eye(D)
        step = np.linalg.solve(H, grad[..., None])[..., 0]  # (S, K, D)
        A_new = A + prob.step_scale * np.moveaxis(step, 1, -1)
        r = y[None, :, None] - Xt @ A_new
        nk = tau.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (tau * r * r).sum(1) / nk
        s2_new = np.where(nk > 1e-12, np.maximum(v, prob.var_floor), s2)
        return {"A": A_new, "log_s2": np.log(s2_new)}


GAUSSIAN = Gaussian()
