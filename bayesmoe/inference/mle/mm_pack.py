"""The MM fitter's problem as the compiled kernels of :mod:`.mm_numba` take it (one tuple,
:func:`pack_problem`) and the buffers of their statistics (:func:`new_stats`); plain Python, kept
apart from the kernels' module so that it stays short (``mm_numba`` re-exports these names).
"""

from __future__ import annotations

import numpy as np

__all__ = ["gate_operator", "new_stats", "pack_problem"]


def gate_operator(prob) -> np.ndarray:
    """The gate step as one matrix L, step = L @ vec(grad) with vec over (d, k), row-major.

    ``mm_updates.gate_step`` applies H_j⁻¹ in the eigenbasis U of I - 11ᵀ/K; the same operator is
    L[(d,k),(e,l)] = Σ_j H_j⁻¹[d,e] U[l,j] U[k,j].
    """
    lay = prob.layout
    D, K = lay.D, lay.K
    if K == 1:
        return np.zeros((0, 0))
    L = np.einsum("jde,lj,kj->dkel", prob.gate_hinv, prob.gate_U, prob.gate_U)
    return np.ascontiguousarray(L.reshape(D * (K - 1), D * (K - 1)))


def pack_problem(prob) -> tuple:
    """The :class:`~bayesmoe.inference.mle.mm_updates.Problem` as the tuple the kernels take."""
    from bayesmoe.inference.mle.mm_updates import JITTER

    lay = prob.layout
    n = prob.Xt.shape[0]
    gauss = lay.fam.numba_kernel == "gaussian"  # the compiled kernel set (gaussian or categorical)
    y = np.ascontiguousarray(prob.y, dtype=float) if gauss else np.zeros(n)
    yi = np.zeros(n, dtype=np.int64) if gauss else np.ascontiguousarray(prob.y, dtype=np.int64)
    if gauss:
        cU, cmu = np.zeros((1, 1)), np.zeros(1)
    else:
        cU, cmu = np.ascontiguousarray(prob.cls_U), np.ascontiguousarray(prob.cls_mu)
    return (
        np.ascontiguousarray(prob.Xt, dtype=float),
        np.ascontiguousarray(prob.Zt, dtype=float),
        y,
        yi,
        gate_operator(prob),
        cU,
        cmu,
        float(prob.ridge),
        float(prob.var_floor),
        float(prob.step_scale),
        float(JITTER * n),
        int(lay.K),
        int(max(lay.M, 1)),
        bool(gauss),
        int(getattr(prob, "newton", 0)),
    )


def new_stats(pb) -> tuple:
    """Buffers for :func:`~.mm_numba.estats`: (gate gradient (D, K-1), weighted Gram (K, D, D),
    expert gradient (K, D, C) with C = 1 (Gaussian) or M-1, Σ τ r² (K,), Σ τ (K,), gate Hessian
    (G, G) with G = D(K-1), categorical-expert Hessians (K, E, E) with E = D(M-1); the two
    Hessians are filled (lower triangles) only when the problem has ``newton``).
    """
    Xt, K, M, gauss, newton = pb[0], pb[11], pb[12], pb[13], pb[14]
    D = Xt.shape[1]
    C = 1 if gauss else M - 1
    G = max(D * (K - 1), 1) if newton else 1
    E = D * (M - 1) if newton >= 2 and not gauss else 1
    return (
        np.zeros((D, max(K - 1, 1))),
        np.zeros((K, D, D)),
        np.zeros((K, D, C)),
        np.zeros(K),
        np.zeros(K),
        np.zeros((G, G)),
        np.zeros((K, E, E)),
    )
