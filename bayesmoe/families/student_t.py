"""Student-t regression experts: ``y | x, k ~ t_{nu_k}(a_k . x + b_k, sigma_k)`` (robust).

The t expert is a Gaussian whose precision is multiplied by a latent ``u ~ Gamma(nu/2, rate
nu/2)`` of mean 1; ``tail = sqrt(2 / nu)`` is that variable's coefficient of variation, so
``tail -> 0`` is the Gaussian expert (:mod:`bayesmoe.families.gaussian`).

Free parameters (standardised scale, the response standardised as for Gaussian experts): slopes
``a_std`` ~ N(0, expert_slope), intercepts ``b_std`` ~ N(0, expert_intercept), scales
``sigma_std`` ~ HalfNormal(noise) and ``tail_std = sqrt(2 / nu)`` ~ HalfNormal(tail), default
0.5 [choice]: it shrinks towards the Gaussian expert (median nu 17.6) while leaving
``P(nu < 4) = 0.16`` and ``P(nu < 2) = 0.046``. ``nu`` is scale-free, the same on both scales.
Canonical (measure) variables: ``a``, ``b``, ``sigma2`` (squared scales) and ``nu``; the trace
stores ``sigma`` and ``nu``. With ``StudentT(df=nu)`` (the family name ``"student-t(df=nu)"``)
the degrees of freedom are fixed by the user: ``nu`` stays a canonical variable (a constant) and
``tail`` is not a parameter.

The log density's constant ``gammaln((nu+1)/2) - gammaln(nu/2) - log(nu pi)/2`` comes from
:func:`~bayesmoe.families._ops.log_gamma_ratio`, accurate as nu -> inf.

Maximum likelihood: the ECME algorithm of Liu & Rubin (1995, Statistica Sinica 5:19-39) with the
responsibilities as weights. Given the latent weights ``u = (nu + 1) / (nu + r²/sigma²)`` at the
current expert, weighted least squares for ``(b, a)`` and ``sigma² = Σ τ u r² / Σ τ`` are the exact
conditional maximisers of the complete-data objective (an EM step for the τ-weighted t
log-likelihood: it cannot decrease it); then ``log nu`` takes a safeguarded Newton step on the
τ-weighted t log-likelihood itself (halved until it does not decrease), kept within
``[NU_MIN, NU_MAX]``. Each expert's expected complete-data log-likelihood therefore never
decreases: the MM/EM iteration stays monotone.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe._validation import check_real_response
from bayesmoe.families._ascent import newton_1d
from bayesmoe.families._ops import NUMPY, Ops, log_gamma_ratio, materialized
from bayesmoe.families.base import Param, Transform
from bayesmoe.families.gaussian import Gaussian, pick, weighted_lstsq

__all__ = ["STUDENT_T", "StudentT"]

#: bounds of the degrees of freedom in the MM fitter (nu = 1 is Cauchy; above 1000 the expert is
#: Gaussian to within 1e-3 in log density at 3 scales)
NU_MIN, NU_MAX = 0.5, 1000.0
#: quantile bounds: the predictive tails are cut where the t CDF is 1e-12 (at most 1e10 scales)
_TAIL_P, _TAIL_CAP = 1e-12, 1e10


class StudentT(Gaussian):
    """Student-t linear-regression experts (see the module docstring).

    Parameters
    ----------
    df : float, optional
        Fixed degrees of freedom of every expert (None: one free ``nu`` per expert).

    Examples
    --------
    >>> from bayesmoe.families import get_family
    >>> get_family("student-t").canonical_dims["nu"], get_family("student-t").n_params(2)
    (('expert',), 5)
    >>> fixed = get_family("student-t(df=4)")
    >>> fixed.df, fixed.n_params(2)
    (4.0, 4)
    """

    description = "Student-t linear-regression experts, df per expert (robust; real responses)"
    canonical_dims: ClassVar[dict] = {
        "a": ("feature", "expert"),
        "b": ("expert",),
        "sigma2": ("expert",),
        "nu": ("expert",),
    }
    trace_dims: ClassVar[dict] = {
        "a": ("feature", "expert"),
        "b": ("expert",),
        "sigma": ("expert",),
        "nu": ("expert",),
    }
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in the centre of y per unit of the feature, within the expert",
        "b": "expert intercept: centre of y at x = 0 within the expert",
        "sigma": "expert scale: the t distribution's scale around the expert's line, y's units",
        "nu": "expert degrees of freedom: tail weight (small: heavy tails; large: Gaussian)",
    }
    positive_canonical = ("sigma2", "nu")
    voronoi_rbar = False
    hierarchical_prior = False
    numba_kernel = None

    def __init__(self, df: float | None = None):
        if df is not None and not (np.isfinite(df) and df > 0):
            raise ValueError(f"`df` must be a positive number of degrees of freedom; got {df!r}.")
        self.df = None if df is None else float(df)
        self.name = "student-t" if df is None else f"student-t(df={self.df:g})"
        base = (
            Param("a", ("feature",), "expert_slope"),
            Param("b", (), "expert_intercept", intercept=True),
            Param("sigma", (), "noise", positive=True),
        )
        self.params = base if df is not None else (*base, Param("tail", (), "tail", positive=True))
        self.signature = "(k),(k),(k),(k)->()"

    def check_response(self, y, n_obs, classes=None):
        return check_real_response(y, n_obs, family="student-t"), None

    # ----- parameters -----------------------------------------------------------------------
    def _nu_of(self, xp, like):
        return xp.zeros_like(like) + self.df

    def canonical_from_free(self, ops: Ops, free):
        out = super().canonical_from_free(ops, free)
        if self.df is None:
            c = free["tail_std"]
            out["nu"] = 2.0 / (c * c)
        else:
            out["nu"] = self._nu_of(ops.xp, free["b_std"])
        return out

    def free_from_canonical(self, canon):
        out = super().free_from_canonical(canon)
        if self.df is None:
            out["tail_std"] = np.sqrt(2.0 / np.asarray(canon["nu"], float))
        return out

    def to_user(self, xp, canon, tr: Transform):
        return {**super().to_user(xp, canon, tr), "nu": canon["nu"]}

    def to_standard(self, canon, tr: Transform):
        return {**super().to_standard(canon, tr), "nu": np.asarray(canon["nu"], float)}

    def trace_from_canonical(self, xp, canon):
        return {**super().trace_from_canonical(xp, canon), "nu": canon["nu"]}

    def canonical_from_trace(self, values):
        return {**super().canonical_from_trace(values), "nu": values["nu"]}

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(location, scale, nu) in the user's units of y: location and scale (..., n, K), nu
        (..., 1, K), broadcasting against the rows.

        nu is per expert, not per row: kept at one row, the density's ``gammaln`` terms (and
        their gradients) are evaluated K times instead of n K times. That matters most in the
        compiled sampler, whose cached programs (``jax.export``) carry ``lgamma``/``digamma``
        expanded into elementwise polynomials that cost several times XLA's own per element
        (benchmarks/README.md, Student-t NUTS speed). :meth:`user_predictors` broadcasts nu to
        (..., n, K) for prediction, simulation and the diagnostics.
        """
        mu, sigma = super().predictors(ops, canon, X, tr, data)
        return mu, sigma, canon["nu"][..., None, :]

    def user_predictors(self, canon, X, data=None):
        """:meth:`predictors` in the user's units with nu broadcast to (..., n, K).

        Examples
        --------
        >>> import numpy as np
        >>> from bayesmoe.families import get_family
        >>> canon = {"a": np.zeros((1, 2)), "b": np.zeros(2), "sigma2": np.ones(2),
        ...          "nu": np.array([3.0, 30.0])}
        >>> [p.shape for p in get_family("student-t").user_predictors(canon, np.zeros((4, 1)))]
        [(4, 2), (4, 2), (4, 2)]
        """
        mu, sigma, nu = super().user_predictors(canon, X, data)
        return mu, sigma, np.broadcast_to(nu, np.shape(mu)).copy()

    def component_log_prob(self, ops: Ops, y, mu, sigma, nu):
        xp = ops.xp
        z = (y[..., None] - mu) / sigma
        const = materialized(ops, log_gamma_ratio(ops, nu))  # per expert: computed once
        return const - xp.log(sigma) - 0.5 * (nu + 1.0) * xp.log1p(z * z / nu)

    def draw(self, rng, k, mu, sigma, nu):
        return pick(mu, k) + pick(sigma, k) * rng.standard_t(pick(nu, k))

    def mean(self, mu, sigma, nu):
        """The location (the mean where nu > 1; the median always)."""
        return mu

    def cdf(self, y, mu, sigma, nu):
        from scipy.special import stdtr

        return stdtr(nu, (y - mu) / sigma)

    def quantile_bounds(self, mu, sigma, nu):
        from scipy.special import stdtrit

        q = np.minimum(stdtrit(nu, 1.0 - _TAIL_P), _TAIL_CAP)
        return mu - q * sigma, mu + q * sigma

    def mixture_distance(self, wp, preds_p, wq, preds_q, *, kind, n_grid=17):
        """Gauss–Legendre quadrature (4 nodes) on the union over components of the t quantiles
        at the normal probabilities of ``linspace(-8, 8, n_grid)`` (Gaussian experts' grid as
        nu -> inf), each integral normalised by the rule's own ``∫p``, ``∫q``; TV is
        ``½ ∫ |p - q|`` by the same rule (not root-refined as for Gaussian experts).
        """
        from scipy.special import ndtr, stdtrit

        u = ndtr(np.linspace(-8.0, 8.0, n_grid))
        pts = []
        for mu, sigma, nu in (preds_p, preds_q):
            pts.append(mu[:, :, None] + sigma[:, :, None] * stdtrit(nu[:, :, None], u))
        y = np.sort(np.concatenate(pts, axis=1).reshape(len(wp), -1), axis=1)
        x, wgl = np.polynomial.legendre.leggauss(4)
        lo, hi = y[:, :-1], y[:, 1:]
        nodes = (0.5 * (lo + hi)[:, :, None] + 0.5 * (hi - lo)[:, :, None] * x).reshape(len(y), -1)
        wts = ((0.5 * (hi - lo))[:, :, None] * wgl).reshape(len(y), -1)
        f = []
        for w, preds in ((wp, preds_p), (wq, preds_q)):
            lp = self.component_log_prob(NUMPY, nodes, *[v[:, None, :] for v in preds])
            f.append(np.einsum("bmk,bk->bm", np.exp(lp), w))
        ip, iq = (f[0] * wts).sum(1), (f[1] * wts).sum(1)
        if kind == "hellinger":
            bc = (np.sqrt(f[0] * f[1]) * wts).sum(1) / np.sqrt(ip * iq)
            return np.clip(1.0 - bc, 0.0, 1.0)
        return 0.5 * (np.abs(f[0] / ip[:, None] - f[1] / iq[:, None]) * wts).sum(1)

    # ----- reversible jump ----------------------------------------------------------------------
    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """The Gaussian experts' weighted least squares for (a, b, log sigma); with free nu,
        ``log tail`` at the value of ``nu = 4 + 6 / excess kurtosis`` of the weighted residuals
        (nu in [4.5, 200]), sd 1.
        """
        mean, sd = super().rj_birth_experts(Xs, y, w, data, n_classes)
        if self.df is not None:
            return mean, sd
        A = np.column_stack([Xs, np.ones(Xs.shape[0])])
        coef, _ = weighted_lstsq(A, y, w)
        r = y - A @ coef
        m2 = np.sum(w * r * r) / np.sum(w)
        m4 = np.sum(w * r**4) / np.sum(w)
        excess = m4 / (m2 * m2) - 3.0 if m2 > 0 else 0.0
        nu = 4.0 + 6.0 / excess if excess > 6.0 / 196.0 else 200.0
        nu = min(max(nu, 4.5), 200.0)
        return np.r_[mean, 0.5 * np.log(2.0 / nu)], np.r_[sd, 1.0]

    # ----- MM ---------------------------------------------------------------------------------
    def mm_blocks(self, D, K, M):
        out = {"A": (D, K), "log_s2": (K,)}
        return out if self.df is not None else {**out, "log_nu": (K,)}

    def mm_unpack(self, blocks):
        out = super().mm_unpack(blocks)
        if self.df is None:
            out["nu"] = np.exp(blocks["log_nu"])
        else:
            out["nu"] = self._nu_of(np, blocks["log_s2"])
        return out

    def mm_pack(self, canon):
        out = super().mm_pack(canon)
        if self.df is None:
            out["log_nu"] = np.log(canon["nu"])
        return out

    def mm_project(self, blocks, prob):
        out = super().mm_project(blocks, prob)
        if self.df is None:
            out["log_nu"] = np.clip(out["log_nu"], np.log(NU_MIN), np.log(NU_MAX))
        return out

    def _q(self, prob, A, s2, nu, tau):
        """Each expert's penalised τ-weighted t log-likelihood, shape (S, K)."""
        mu = prob.Xt @ A
        sig = np.broadcast_to(np.sqrt(s2)[:, None, :], mu.shape)
        lp = self.component_log_prob(
            NUMPY, prob.y, mu, sig, np.broadcast_to(nu[:, None, :], mu.shape)
        )
        slopes = np.einsum("de,sek->sdk", prob.P, A)
        return (tau * lp).sum(1) - 0.5 * prob.ridge * (slopes * A).sum(1)

    def mm_step(self, prob, blocks, tau, newton):
        """ECME (module docstring): weighted least squares for (b, a) and the closed-form
        sigma² under the latent weights ``τ u``, then a safeguarded Newton step on log nu.
        """
        from bayesmoe.inference.mle.mm_updates import JITTER, weighted_gram

        Xt, y = prob.Xt, prob.y
        n, D = Xt.shape
        A, s2 = blocks["A"], np.exp(blocks["log_s2"])
        nu = np.exp(blocks["log_nu"]) if self.df is None else np.full(s2.shape, self.df)
        r = y[None, :, None] - Xt @ A
        u = (nu[:, None, :] + 1.0) / (nu[:, None, :] + r * r / s2[:, None, :])
        wt = tau * u
        grad = np.swapaxes(Xt.T @ (wt * r), 1, 2) / s2[:, :, None]
        grad -= prob.ridge * np.einsum("de,sek->skd", prob.P, A)
        H = weighted_gram(Xt, wt) / s2[:, :, None, None]
        H = H + prob.ridge * prob.P + JITTER * n * np.eye(D)
        step = np.linalg.solve(H, grad[..., None])[..., 0]  # (S, K, D)
        A_new = A + prob.step_scale * np.moveaxis(step, 1, -1)
        r = y[None, :, None] - Xt @ A_new
        nk = tau.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (wt * r * r).sum(1) / nk
        s2_new = np.where(nk > 1e-12, np.maximum(v, prob.var_floor), s2)
        out = {"A": A_new, "log_s2": np.log(s2_new)}
        if self.df is None:  # from within the bounds (an extrapolated start may lie outside)
            lo, hi = np.log(NU_MIN), np.log(NU_MAX)
            out["log_nu"] = newton_1d(
                lambda t: self._q(prob, A_new, s2_new, np.exp(t), tau),
                np.clip(np.log(nu), lo, hi),
                lo,
                hi,
            )
        return out


STUDENT_T = StudentT()
