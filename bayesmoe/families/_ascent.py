"""Safeguarded ascent steps shared by the families' M-steps (numpy, vectorised over starts and
experts).

Both take a proposed move and halve it until each expert's objective does not decrease, so an
M-step built from them is a generalised EM step: the expected complete-data log-likelihood of every
expert never goes down (docs/math.md §8).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_HALVINGS", "glm_newton_step", "halved_step", "newton_1d"]

#: step halvings tried before an expert keeps its value (the step is then 2⁻³⁰ of the proposal)
MAX_HALVINGS = 30


def glm_newton_step(prob, A, resid_w, curv_w):
    """The Newton (IRLS) step of every expert's weighted GLM log-likelihood with a canonical link,
    shape (S, D, K) like ``A``: gradient ``Xᵀ resid_w``, curvature ``Xᵀ diag(curv_w) X``, both
    with the problem's ridge on the slopes; a start whose system is singular gets no step.

    ``resid_w`` is τ·(y minus the expert's mean) and ``curv_w`` τ times its variance function
    (Poisson: τ(y − rate) and τ·rate; binomial: τ(y − t·p) and τ·t·p(1 − p)), each (S, n, K).
    """
    from bayesmoe.inference.mle.mm_updates import JITTER

    Xt = prob.Xt
    n, D = Xt.shape
    with np.errstate(over="ignore", invalid="ignore"):
        grad = np.einsum("nd,snk->skd", Xt, resid_w)
        grad -= prob.ridge * np.einsum("de,sek->skd", prob.P, A)
        H = np.einsum("nd,ne,snk->skde", Xt, Xt, curv_w, optimize=True)
        H = H + prob.ridge * prob.P + JITTER * n * np.eye(D)
        step = np.linalg.solve(H, grad[..., None])[..., 0]  # (S, K, D)
    step = np.where(np.isfinite(step), step, 0.0)
    return prob.step_scale * np.moveaxis(step, 1, -1)


def halved_step(q, x, step, q0=None, lo=None, hi=None):
    """``x + 2^-j step`` with the smallest j whose objective is not below ``q(x)``, per expert.

    Parameters
    ----------
    q : callable
        ``q(x) -> (S, K)``: each expert's objective (expert axis last in x as well).
    x, step : ndarray, shape (S, ..., K)
    q0 : ndarray (S, K), optional
        ``q(x)`` if already known.
    lo, hi : float, optional
        Bounds the candidate is clipped to (the feasible set).

    Returns
    -------
    ndarray
        The new x (an expert keeps its value where no halving ascends).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.families._ascent import halved_step
    >>> q = lambda x: -((x - 1.0) ** 2)[:, 0, :]  # maximum at 1
    >>> halved_step(q, np.zeros((1, 1, 2)), np.full((1, 1, 2), 8.0))[0, 0]  # 8, 4 overshoot
    array([2., 2.])
    """
    q0 = q(x) if q0 is None else q0
    out = x.copy()
    todo = np.ones(q0.shape, dtype=bool)
    extra = (slice(None),) + (None,) * (x.ndim - 2) + (slice(None),)
    scale = 1.0
    for _ in range(MAX_HALVINGS):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            cand = x + scale * step
            if lo is not None or hi is not None:
                cand = np.clip(cand, lo, hi)
            q1 = q(cand)
        ok = todo & np.isfinite(q1) & (q1 >= q0)
        out = np.where(ok[extra], cand, out)
        todo &= ~ok
        if not todo.any():
            break
        scale *= 0.5
    return out


def newton_1d(q, t, lo, hi, *, h=1e-4, max_move=3.0):
    """One safeguarded Newton step on a scalar parameter per expert, ``t`` (S, K).

    The slope and curvature are central differences of ``q`` at spacing ``h``; where the
    curvature is not negative the proposal is a unit move uphill. The move is capped at
    ``max_move``, clipped to ``[lo, hi]`` and halved until ``q`` does not decrease
    (:func:`halved_step`).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.families._ascent import newton_1d
    >>> q = lambda t: -((t - 0.5) ** 2)  # quadratic: Newton lands on the maximum
    >>> newton_1d(q, np.zeros((1, 2)), -5.0, 5.0).round(6)
    array([[0.5, 0.5]])
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q0 = q(t)
        qp, qm = q(t + h), q(t - h)
        g = (qp - qm) / (2 * h)
        c = (qp - 2 * q0 + qm) / (h * h)
        step = np.where(c < 0, -g / np.where(c < 0, c, -1.0), np.sign(g))
    step = np.where(np.isfinite(step), np.clip(step, -max_move, max_move), 0.0)
    out = halved_step(lambda x: q(x[:, 0, :]), t[:, None, :], step[:, None, :], q0, lo, hi)
    return out[:, 0, :]
