"""A data-informed birth proposal for multinomial-logistic (categorical) experts: anchor cells.

The generic birth (:func:`bayesmoe.inference.rjmcmc.moves.birth_proposal`) proposes one Normal
around a single weighted fit. For class-probability experts that rarely places the newborn where
a new expert would help: it fits *all* observations, weighted towards the worst explained, so its
class logits sit near the overall class frequencies. The anchor kernel instead offers ``m``
candidate territories and one Normal per territory:

- **anchors** are ``m`` k-means centres of the standardised gate inputs (a deterministic function
  of the data; Lloyd iterations from evenly spaced sorted points). Their Voronoi cells
  (docs/math.md §4 in input space) are the candidate territories.
- **expert part** of anchor c (data only, computed once): class logits from the smoothed class
  frequencies of the observations in cell c (``b_s = log((n_cs + 1/2) / (n_cM + 1/2))``, class M
  the pinned reference), refined by a few ridge-penalised Böhning steps of the multinomial
  logistic fit on the cell (ridge = the prior precision, so separable cells stay finite); sd the
  posterior-style standard error ``sqrt(diag((H + ridge)^-1))`` (at least 0.05).
- **gate part** of anchor c (given the current experts): the newborn's gate takes the share 0.6
  of each observation in cell c and 0.05 of the others; its intercept and slopes are the least
  squares fit of the logits that give those shares against the current gate, with the sd of the
  generic birth (the prior sd / 3, at least the standard error).
- **anchor weights** ``pi_c(theta) = 1/(2m) + (1/2) * (share of the badness of fit in cell c)``,
  badness ``exp(-l_i / 2)`` with ``l_i`` the pointwise log density of the current mixture: cells
  the current experts explain worst are proposed most.

The density is the defensive mixture
``q(u | theta) = prior_mix * prior(u) + (1 - prior_mix) * sum_c pi_c(theta) N(u; m_c, s_c)``,
a deterministic function of the current active experts, so the reverse death evaluates exactly
the density the birth drew from (no approximation enters the acceptance ratio).
"""

from __future__ import annotations

import numpy as np

from bayesmoe.families import get_family
from bayesmoe.inference.rjmcmc.moves import (
    _LOG_2PI,
    MoveContext,
    _components,
    log_softmax,
    logsumexp,
    mixture_log_density,
    slot_prior_logpdf,
)

__all__ = ["AnchorBirth", "kmeans_anchors"]

#: Gate share the newborn expert is given inside / outside its anchor cell.
SHARE_IN, SHARE_OUT = 0.6, 0.05


def kmeans_anchors(Z: np.ndarray, m: int, n_iter: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means of the rows of ``Z`` (n, d): ``(centres (m', d), labels (n,))``.

    Starts from ``m`` evenly spaced points of the rows sorted by their first principal
    coordinate; empty cells are dropped, so ``m' <= m``. With ``d = 0`` there is one cell.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.inference.rjmcmc.categorical import kmeans_anchors
    >>> Z = np.r_[np.zeros((5, 1)), np.ones((5, 1)) * 10]
    >>> c, lab = kmeans_anchors(Z, 2)
    >>> c.ravel().tolist(), lab.tolist()
    ([0.0, 10.0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    """
    n, d = Z.shape
    if d == 0 or m <= 1 or n <= 1:
        return Z.mean(axis=0, keepdims=True) if n else np.zeros((1, d)), np.zeros(n, dtype=int)
    Zc = Z - Z.mean(axis=0)
    _, _, vt = np.linalg.svd(Zc, full_matrices=False)
    order = np.argsort(Zc @ vt[0], kind="stable")
    centres = Z[order[np.linspace(0, n - 1, min(m, n)).round().astype(int)]].copy()
    labels = np.zeros(n, dtype=int)
    for _ in range(n_iter):
        d2 = ((Z[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.argmin(d2, axis=1)
        keep = np.unique(new)
        centres = np.stack([Z[new == c].mean(axis=0) for c in keep])
        new = np.searchsorted(keep, new)
        if np.array_equal(new, labels) and keep.size == centres.shape[0]:
            break
        labels = new
    d2 = ((Z[:, None, :] - centres[None]) ** 2).sum(-1)
    return centres, np.argmin(d2, axis=1)


def _cell_logistic(
    A: np.ndarray, Y: np.ndarray, ridge: np.ndarray, b0: np.ndarray, n_steps: int = 10
):
    """Ridge-penalised multinomial logistic fit by Böhning steps: (coef (p, M-1), sd (p, M-1)).

    ``A`` (n_c, p) design (columns a (d), b), ``Y`` (n_c, M) one-hot, reference class last;
    ``ridge`` (p,) prior precisions; ``b0`` (M-1,) starting intercepts.
    """
    p, M1 = A.shape[1], Y.shape[1] - 1
    V = np.zeros((p, M1))
    V[-1] = b0
    B = 2.0 * (np.eye(M1) + np.ones((M1, M1)))  # inverse of Böhning's (I - 11'/M) / 2
    H = A.T @ A
    # Böhning's bound: -H_loglik <= (1/2)(I - 11'/M) (x) A'A; with the ridge, per class block
    H_inv = np.linalg.inv(H + 2.0 * np.diag(ridge) + 1e-8 * np.eye(p))
    for _ in range(n_steps):
        logits = np.column_stack([A @ V, np.zeros(A.shape[0])])
        P = np.exp(log_softmax(logits, axis=1))
        grad = A.T @ (Y - P)[:, :M1] - ridge[:, None] * V
        V = V + H_inv @ grad @ B / 2.0
    # curvature at the fit: (A' diag(P_s (1 - P_s)) A + ridge) per free class
    logits = np.column_stack([A @ V, np.zeros(A.shape[0])])
    P = np.exp(log_softmax(logits, axis=1))
    sd = np.empty((p, M1))
    for s in range(M1):
        w = P[:, s] * (1.0 - P[:, s])
        info = A.T @ (A * w[:, None]) + np.diag(ridge)
        sd[:, s] = np.sqrt(np.diag(np.linalg.inv(info)))
    return V, sd


class AnchorBirth:
    """Anchor-cell birth kernel for categorical experts (see the module docstring).

    Parameters
    ----------
    ctx : MoveContext
        The move context of the step (data, layout, prior sds); ``family`` must be categorical.
    n_anchors : int
        Number of k-means anchors (default 8; fewer when cells would hold < 5 observations).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc import ReversibleJump
    >>> X, y, _ = simulate("S-D", n=60, random_seed=0)
    >>> model, info = build_random_k_model(X, y, max_experts=3, family="categorical")
    >>> step = ReversibleJump(info=info, model=model, rng=0)
    >>> type(step.birth_kernel).__name__, step.birth_kernel.n_anchors <= 8
    ('AnchorBirth', True)
    """

    def __init__(self, ctx: MoveContext, n_anchors: int = 8):
        if "anchors" not in get_family(ctx.family).rj_births:
            raise ValueError(
                "AnchorBirth is for categorical experts; got family "
                f"{ctx.family!r}. Use birth='normal' for {ctx.family} experts."
            )
        Xs, Zs, ys = ctx.Xs, ctx.Zs, np.asarray(ctx.ys, dtype=int)
        n, d = Xs.shape
        dz = Zs.shape[1]
        M = int(ctx.n_classes)
        m = int(max(1, min(n_anchors, n // 5)))
        centres, labels = kmeans_anchors(Zs, m)
        self.centres, self.labels = centres, labels
        self.n_anchors = centres.shape[0]
        D = ctx.layout.n_columns
        self._D, self._dz = D, dz
        expert_mean = np.zeros((self.n_anchors, D - 1 - dz))
        expert_sd = np.zeros_like(expert_mean)
        Y = np.eye(M)[ys]
        A = np.column_stack([Xs, np.ones(n)])
        ps = ctx.prior_sd[1 + dz :]
        # prior precisions of the rows of V: slope rows (sa), intercept row (sb)
        ridge = np.r_[np.full(d, 1.0 / ps[0] ** 2), 1.0 / ps[-1] ** 2]
        for c in range(self.n_anchors):
            cell = labels == c
            counts = np.bincount(ys[cell], minlength=M) + 0.5
            b0 = np.log(counts[:-1] / counts[-1])
            V, sd = _cell_logistic(A[cell], Y[cell], ridge, b0)
            expert_mean[c] = np.r_[V[:d].reshape(-1), V[d]]
            expert_sd[c] = np.r_[sd[:d].reshape(-1), sd[d]]
        self.expert_mean = expert_mean
        self.expert_sd = np.maximum(expert_sd, 0.05)
        self._A_gate = np.column_stack([np.ones(n), Zs])
        G = self._A_gate.T @ self._A_gate / n + 1e-8 * np.eye(1 + dz)
        self._gate_solve = np.linalg.inv(G) @ self._A_gate.T / n  # (1 + dz, n) least squares
        self._gate_var = np.diag(np.linalg.inv(G)) / n
        share = np.where(labels[None, :] == np.arange(self.n_anchors)[:, None], SHARE_IN, SHARE_OUT)
        self._share_logit = np.log(share) - np.log1p(-share)  # (m, n)

    def components(self, theta: np.ndarray, ctx: MoveContext):
        """Anchor weights (m,), means (m, D) and sds (m, D) given the active rows ``theta``."""
        ll = mixture_log_density(theta, ctx)
        bad = np.exp(log_softmax(-0.5 * ll, axis=0))
        cell_bad = np.bincount(self.labels, weights=bad, minlength=self.n_anchors)
        weights = 0.5 / self.n_anchors + 0.5 * cell_bad
        eta, _ = _components(theta, ctx)
        target = ctx.temperature * (self._share_logit + logsumexp(eta, axis=1)[None, :])
        coef = target @ self._gate_solve.T  # (m, 1 + dz)
        resid = target - coef @ self._A_gate.T
        rv = np.maximum(np.mean(resid**2, axis=1), 1e-6)  # (m,)
        gate_sd = np.maximum(
            np.sqrt(self._gate_var[None, :] * rv[:, None]), ctx.prior_sd[None, : 1 + self._dz] / 3.0
        )
        means = np.concatenate([coef, self.expert_mean], axis=1)
        sds = ctx.birth_scale * np.concatenate([gate_sd, self.expert_sd], axis=1)
        return weights / weights.sum(), means, np.maximum(sds, 1e-3)

    def log_density(self, u: np.ndarray, theta: np.ndarray, ctx: MoveContext) -> float:
        """Log q(u | theta) of the defensive mixture (prior and the anchor Normals)."""
        if ctx.prior_mix >= 1.0:
            return slot_prior_logpdf(u, ctx)
        w, means, sds = self.components(theta, ctx)
        z = (u[None, :] - means) / sds
        log_n = np.sum(-0.5 * _LOG_2PI - np.log(sds) - 0.5 * z * z, axis=1)
        log_mix = float(logsumexp(np.log(w) + log_n, axis=0))
        if ctx.prior_mix <= 0.0:
            return log_mix
        return float(
            np.logaddexp(
                np.log(ctx.prior_mix) + slot_prior_logpdf(u, ctx),
                np.log1p(-ctx.prior_mix) + log_mix,
            )
        )

    def draw(
        self, theta: np.ndarray, ctx: MoveContext, rng: np.random.Generator, prior_row: np.ndarray
    ) -> np.ndarray:
        """A draw from q(. | theta): ``prior_row`` with probability ``prior_mix``, else an anchor
        c ~ pi(theta) and u ~ N(m_c, s_c).
        """
        if rng.uniform() < ctx.prior_mix:
            return np.asarray(prior_row, dtype=float)
        w, means, sds = self.components(theta, ctx)
        c = int(rng.choice(w.size, p=w))
        return means[c] + sds[c] * rng.standard_normal(means.shape[1])
