"""Compiled (Numba) MM / SQUAREM iteration of the MM fitter (docs/math.md §8).

The same maps as :mod:`bayesmoe.inference.mle.mm_updates` (E-step, Böhning gate step, weighted least
squares or Böhning categorical-expert steps, SQUAREM with the monotone fall-back), written as loops
over rows so that one call runs every start for a whole block of iterations without returning to
Python. At small n the numpy version spends most of its time in the Python/numpy call overhead of
a few dozen tiny array operations per iteration; here an iteration costs a few passes over the data.

Everything works on the standardised scale and on one parameter vector per start, in the packing of
:class:`bayesmoe.inference.mle.mm_updates.Layout`:

- gate W (D, K-1) at ``theta[d*(K-1) + k]`` (reference expert K-1 pinned to 0);
- Gaussian: A (D, K) at ``off + d*K + k`` then ``log σ²_k`` at ``off + D*K + k``;
- categorical: V (D, M-1, K) at ``off + (d*(M-1) + m)*K + k`` (reference class M-1 pinned to 0);

with ``off = D*(K-1)``. Functions are compiled on first use (``cache=True``: later processes load
the machine code from ``__pycache__``); :func:`available` says whether Numba can be imported.

The problem is handed over as one tuple (:func:`pack_problem`):
``(Xt, Zt, y, yi, gate_L, cls_U, cls_mu, ridge, var_floor, step_scale, jitter, K, M, gauss,
newton)``. With ``newton`` the pass also accumulates the Hessians of the gate's and of every
categorical expert's weighted multinomial log-likelihood, and the map takes safeguarded Newton steps
(:func:`mstep_newton`, :func:`_safe_map`).
"""

from __future__ import annotations

import math

import numpy as np

from bayesmoe.inference.mle.mm_pack import gate_operator, new_stats, pack_problem

try:  # numba comes with PyTensor; keep the numpy path working without it
    from numba import njit

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _HAVE_NUMBA = False

    def njit(*args, **kwargs):
        def wrap(f):
            return f

        return wrap(args[0]) if args and callable(args[0]) else wrap


__all__ = [
    "available",
    "estats",
    "gate_operator",
    "mstep",
    "mstep_fixed_tau",
    "new_stats",
    "pack_problem",
    "run_starts",
]

LOG_2PI = math.log(2.0 * math.pi)
#: factor by which the SQUAREM steplength bound grows after an accepted capped step and shrinks
#: after a rejected one (``mstep = 4`` of Varadhan & Roland's SQUAREM package)
CAP_STEP = 4.0
#: rows per block of :func:`estats` (its scratch arrays hold one block, column by column)
BLOCK = 64


def available() -> bool:
    """Whether the compiled kernels can be used (Numba importable)."""
    return _HAVE_NUMBA


# ----- small dense linear algebra ---------------------------------------------------------------
@njit(cache=True)
def _chol_solve(H, b, x):
    """Solve H x = b for symmetric positive definite H (D x D, D small) by Cholesky; H is
    overwritten by its factor.
    """
    D = H.shape[0]
    for j in range(D):
        s = H[j, j]
        for k in range(j):
            s -= H[j, k] * H[j, k]
        if not s > 0.0:  # not positive definite (or NaN): give NaN, the caller falls back
            for i in range(D):
                x[i] = np.nan
            return
        H[j, j] = math.sqrt(s)
        for i in range(j + 1, D):
            s = H[i, j]
            for k in range(j):
                s -= H[i, k] * H[j, k]
            H[i, j] = s / H[j, j]
    for i in range(D):  # forward: L z = b
        s = b[i]
        for k in range(i):
            s -= H[i, k] * x[k]
        x[i] = s / H[i, i]
    for i in range(D - 1, -1, -1):  # back: Lᵀ x = z
        s = x[i]
        for k in range(i + 1, D):
            s -= H[k, i] * x[k]
        x[i] = s / H[i, i]


# ----- one pass: E-step and the sufficient statistics of the M-step ------------------------------
@njit(cache=True)
def _row_max(A, mx, nb, K):
    """mx[j] = max_k A[k, j] over the first nb columns (NaN entries skipped; 0 when not finite),
    compared in the order k = 0, 1, ... as a row-by-row loop would.
    """
    for j in range(nb):
        mx[j] = -np.inf
    for k in range(K):
        for j in range(nb):
            if A[k, j] > mx[j]:
                mx[j] = A[k, j]
    for j in range(nb):
        if not math.isfinite(mx[j]):
            mx[j] = 0.0


@njit(cache=True)
def _add_rows(acc, U, J, nb):
    """acc[p] += U[p, 0] + ... + U[p, nb-1], added one after another (the order of the rows),
    eight sums at a time (independent additions overlap in the processor).
    """
    p0 = 0
    while p0 + 8 <= J:
        a0, a1, a2, a3 = acc[p0], acc[p0 + 1], acc[p0 + 2], acc[p0 + 3]
        a4, a5, a6, a7 = acc[p0 + 4], acc[p0 + 5], acc[p0 + 6], acc[p0 + 7]
        for j in range(nb):
            a0 += U[p0, j]
            a1 += U[p0 + 1, j]
            a2 += U[p0 + 2, j]
            a3 += U[p0 + 3, j]
            a4 += U[p0 + 4, j]
            a5 += U[p0 + 5, j]
            a6 += U[p0 + 6, j]
            a7 += U[p0 + 7, j]
        acc[p0], acc[p0 + 1], acc[p0 + 2], acc[p0 + 3] = a0, a1, a2, a3
        acc[p0 + 4], acc[p0 + 5], acc[p0 + 6], acc[p0 + 7] = a4, a5, a6, a7
        p0 += 8
    for p in range(p0, J):
        a = acc[p]
        for j in range(nb):
            a += U[p, j]
        acc[p] = a


@njit(cache=True)
def estats(theta, pb, tau, st, fixed):
    """One pass over the rows at ``theta``: the responsibilities (into ``tau``, unless ``fixed``:
    then the given ``tau`` is used) and the statistics the MM map needs (into ``st``, see
    :func:`new_stats`). Returns the penalised objective (-inf when not finite; meaningless when
    ``fixed``).

    Statistics, all sums over rows i: gate Σ z_i (τ_ik - γ_ik); per expert k: Σ τ_ik x_i x_iᵀ;
    Gaussian Σ τ_ik r_ik x_i and Σ τ_ik r_ik² (r the residual at theta), categorical
    Σ τ_ik x_i (Y_im - π_ikm); and Σ τ_ik. With ``newton`` (and not ``fixed``: the map at fixed
    responsibilities takes no Newton step): the gate Hessian Σ (diag γ_i - γ_i γ_iᵀ) ⊗ z_i z_iᵀ
    over the K-1 free experts and, per categorical expert k, Σ τ_ik (diag π_ik - π_ik π_ikᵀ) ⊗
    x_i x_iᵀ over the M-1 free classes (lower triangles, in the packing order of theta: index
    d*(K-1)+k and d*(M-1)+m).

    The rows go in blocks of :data:`BLOCK`, each held transposed (a row of the block per column)
    and worked one quantity at a time over the block's rows: at small K and D a row-by-row loop
    spends most of its time in the set-up of its short inner loops. Every row's arithmetic is
    that of a row-by-row pass, and the terms of each statistic are added in the order of the
    rows, so the results are the same floats.
    """
    Xt, Zt, y, yi, _, _, _, ridge, _, _, _, K, M, gauss, newton = pb
    gg, SS, BB, cc, nn, HG, HV = st
    n, D = Xt.shape
    off = D * (K - 1)
    Km, Mm = K - 1, M - 1
    hv = newton >= 2 and not gauss and not fixed
    if not gauss:
        BB[:, :, :] = 0.0
    if newton:
        HV[:, :, :] = 0.0
    # flat sums, in this order: gate gradient (k, d), Σ τ (k), weighted Gram (k, lower
    # triangle), Gaussian Σ τ r² (k) and Σ τ r x (k, d), gate Hessian (lower triangle)
    T = D * (D + 1) // 2
    G = D * Km if newton and K > 1 and not fixed else 0
    o_nn = Km * D
    o_ss = o_nn + K
    o_cc = o_ss + K * T
    o_bb = o_cc + (K if gauss else 0)
    o_hg = o_bb + (K * D if gauss else 0)
    J = o_hg + G * (G + 1) // 2
    acc = np.zeros(J)
    B = min(BLOCK, max(8, 524288 // J))  # U: at most 4 MB, unless J > 65536 sums
    U = np.empty((J, B))  # the block's terms: U[p, j] is row j's term of sum p
    XT = np.empty((D, B))
    ZT = np.empty((D, B))
    TT = np.empty((K, B))  # responsibilities
    E = np.empty((K, B))  # gate logits less their row max
    GM = np.empty((K, B))  # gate probabilities
    R = np.empty((K, B))  # Gaussian residuals
    LJ = np.empty((K, B))  # log g_k + log p_k, g before normalising
    MX = np.empty(B)
    SG = np.empty(B)
    ISG = np.empty(B)
    lg = np.empty((M, K))
    PR = np.empty((1 if gauss else B, M, K))  # class probabilities
    is2 = np.empty(K)
    ls2 = np.empty(K)
    if gauss:
        for k in range(K):
            ls2[k] = LOG_2PI + theta[off + D * K + k]
            is2[k] = math.exp(-theta[off + D * K + k])
    obj = 0.0
    for i0 in range(0, n, B):
        nb = min(B, n - i0)
        for j in range(nb):
            for d in range(D):
                XT[d, j] = Xt[i0 + j, d]
                ZT[d, j] = Zt[i0 + j, d]
        # gate: log softmax of Zt[i] @ W (last column 0); E keeps the logits shifted by their
        # max (the log-normaliser log sg enters once, in the row's log-likelihood below)
        for k in range(K):
            for j in range(nb):
                E[k, j] = 0.0
            if k < Km:
                for d in range(D):
                    w = theta[d * Km + k]
                    for j in range(nb):
                        E[k, j] += ZT[d, j] * w
        _row_max(E, MX, nb, K)
        for j in range(nb):
            SG[j] = 0.0
        for k in range(K):
            for j in range(nb):
                dk = E[k, j] - MX[j]
                E[k, j] = dk
                gk = 1.0 if dk == 0.0 else math.exp(dk)  # exp(0) = 1 is not computed
                GM[k, j] = gk
                SG[j] += gk
        for j in range(nb):
            ISG[j] = 1.0 / SG[j]
        for k in range(K):
            for j in range(nb):
                GM[k, j] *= ISG[j]
        # experts: log p_k(y_i | x_i)
        if gauss:
            for k in range(K):
                for j in range(nb):
                    R[k, j] = 0.0
                for d in range(D):
                    a = theta[off + d * K + k]
                    for j in range(nb):
                        R[k, j] += XT[d, j] * a
                for j in range(nb):
                    r = y[i0 + j] - R[k, j]
                    R[k, j] = r
                    LJ[k, j] = E[k, j] - 0.5 * (ls2[k] + r * r * is2[k])
        else:
            for j in range(nb):
                i = i0 + j
                for k in range(K):
                    mx2 = -np.inf
                    for m in range(M):
                        e = 0.0
                        if m < Mm:
                            for d in range(D):
                                e += Xt[i, d] * theta[off + (d * Mm + m) * K + k]
                        lg[m, k] = e
                        if e > mx2:
                            mx2 = e
                    if not math.isfinite(mx2):
                        mx2 = 0.0
                    s = 0.0
                    for m in range(M):
                        dm = lg[m, k] - mx2
                        pm = 1.0 if dm == 0.0 else math.exp(dm)
                        PR[j, m, k] = pm
                        s += pm
                    lse2 = math.log(s) + mx2
                    isd = 1.0 / s
                    for m in range(M):
                        PR[j, m, k] *= isd
                    LJ[k, j] = E[k, j] + lg[yi[i], k] - lse2
        if fixed:
            for j in range(nb):
                for k in range(K):
                    TT[k, j] = tau[i0 + j, k]
        else:
            _row_max(LJ, MX, nb, K)
            for j in range(nb):
                SG[j] = 0.0
            for k in range(K):
                for j in range(nb):
                    dk = LJ[k, j] - MX[j]
                    tk = 1.0 if dk == 0.0 else math.exp(dk)
                    TT[k, j] = tk
                    SG[j] += tk
            for j in range(nb):
                obj += math.log(SG[j] * ISG[j]) + MX[j]  # log Σ_k g_k p_k, g normalised here
                SG[j] = 1.0 / SG[j]
            for k in range(K):
                for j in range(nb):
                    TT[k, j] *= SG[j]
            for j in range(nb):
                for k in range(K):
                    tau[i0 + j, k] = TT[k, j]
        # statistics: the block's terms, then their sums
        for k in range(Km):
            for d in range(D):
                p = k * D + d
                for j in range(nb):
                    U[p, j] = ZT[d, j] * (TT[k, j] - GM[k, j])
        for k in range(K):
            for j in range(nb):
                U[o_nn + k, j] = TT[k, j]
            for d in range(D):
                for e in range(d + 1):
                    p = o_ss + k * T + d * (d + 1) // 2 + e
                    for j in range(nb):
                        U[p, j] = TT[k, j] * XT[d, j] * XT[e, j]
            if gauss:
                for j in range(nb):
                    U[o_cc + k, j] = TT[k, j] * R[k, j] * R[k, j]
                for d in range(D):
                    p = o_bb + k * D + d
                    for j in range(nb):
                        U[p, j] = TT[k, j] * R[k, j] * XT[d, j]
        p = o_hg
        for d in range(G // max(Km, 1)):
            for k in range(Km):
                for e in range(d + 1):
                    for q in range(Km if e < d else k + 1):  # b = e*Km + q <= a = d*Km + k
                        for j in range(nb):
                            gzz = GM[k, j] * ZT[d, j] * ZT[e, j]
                            w = -GM[q, j] * gzz
                            if q == k:
                                w += gzz
                            U[p, j] = w
                        p += 1
        _add_rows(acc, U, J, nb)
        if not gauss:
            for j in range(nb):
                i = i0 + j
                for k in range(K):
                    t = TT[k, j]
                    for m in range(Mm):
                        ym = 1.0 if yi[i] == m else 0.0
                        w = t * (ym - PR[j, m, k])
                        for d in range(D):
                            BB[k, d, m] += w * Xt[i, d]
                    if hv:
                        for d in range(D):
                            for m in range(Mm):
                                a = d * Mm + m
                                tpx = t * PR[j, m, k] * Xt[i, d]
                                for e in range(d + 1):
                                    txx = tpx * Xt[i, e]
                                    for m2 in range(Mm):
                                        b = e * Mm + m2
                                        if b > a:
                                            break
                                        w = -PR[j, m2, k] * txx
                                        if m2 == m:
                                            w += txx
                                        HV[k, a, b] += w
    gg[:, :] = 0.0
    for k in range(Km):
        for d in range(D):
            gg[d, k] = acc[k * D + d]
    SS[:, :, :] = 0.0
    cc[:] = 0.0
    if gauss:
        BB[:, :, :] = 0.0
    for k in range(K):
        nn[k] = acc[o_nn + k]
        for d in range(D):
            for e in range(d + 1):
                SS[k, d, e] = acc[o_ss + k * T + d * (d + 1) // 2 + e]
        if gauss:
            cc[k] = acc[o_cc + k]
            for d in range(D):
                BB[k, d, 0] = acc[o_bb + k * D + d]
    if newton:
        HG[:, :] = 0.0
        p = o_hg
        for a in range(G):
            for b in range(a + 1):
                HG[a, b] = acc[p]
                p += 1
    if ridge != 0.0:
        pen = 0.0
        for d in range(1, D):
            for k in range(K - 1):
                pen += theta[d * (K - 1) + k] ** 2
            if gauss:
                for k in range(K):
                    pen += theta[off + d * K + k] ** 2
            else:
                for m in range(M - 1):
                    for k in range(K):
                        pen += theta[off + (d * (M - 1) + m) * K + k] ** 2
        obj -= 0.5 * ridge * pen
    if not math.isfinite(obj):
        obj = -np.inf
    return obj


# ----- the MM map from the statistics -----------------------------------------------------------
@njit(cache=True)
def mstep(theta, st, pb, out):
    """The MM map at ``theta`` from its statistics ``st`` (:func:`estats`); result into ``out``.

    Gate: W + L vec(∇) (one Böhning step). Gaussian expert k: (b_k, a_k) += H⁻¹ ∇ with
    H = Σ τ x xᵀ / σ_k² + λP + jitter (a weighted-least-squares step), then
    σ_k² = max(floor, Σ τ (r - xᵀδ)² / Σ τ) expanded as (Σ τ r² - 2 δᵀ Σ τ r x + δᵀ (Σ τ x xᵀ) δ)
    / Σ τ. Categorical expert k: one Böhning step per eigenvector of I - 11ᵀ/M.
    """
    Xt, _Zt, _y, _yi, gL, cU, cmu, ridge, var_floor, ss, jit, K, M, gauss, _ = pb
    gg, SS, BB, cc, nn, _, _ = st
    D = Xt.shape[1]
    off = D * (K - 1)
    for j in range(theta.shape[0]):
        out[j] = theta[j]
    if K > 1:
        G = D * (K - 1)
        g = np.empty(G)
        for d in range(D):
            for k in range(K - 1):
                g[d * (K - 1) + k] = gg[d, k] - (ridge * theta[d * (K - 1) + k] if d > 0 else 0.0)
        for a in range(G):
            s = 0.0
            for b in range(G):
                s += gL[a, b] * g[b]
            out[a] = theta[a] + ss * s
    H = np.empty((D, D))
    rhs = np.empty(D)
    sol = np.empty(D)
    if gauss:
        for k in range(K):
            s2 = math.exp(theta[off + D * K + k])
            for d in range(D):
                for e in range(d + 1):
                    H[d, e] = SS[k, d, e] / s2
                    H[e, d] = H[d, e]
                H[d, d] += jit + (ridge if d > 0 else 0.0)
                rhs[d] = BB[k, d, 0] / s2 - (ridge * theta[off + d * K + k] if d > 0 else 0.0)
            _chol_solve(H, rhs, sol)
            q = cc[k]
            for d in range(D):
                dl = ss * sol[d]
                out[off + d * K + k] = theta[off + d * K + k] + dl
                q -= 2.0 * dl * BB[k, d, 0]
                for e in range(D):
                    Sde = SS[k, d, e] if e <= d else SS[k, e, d]
                    q += dl * Sde * ss * sol[e]
            if nn[k] > 1e-12:
                out[off + D * K + k] = math.log(max(q / nn[k], var_floor))
    else:
        Mm = M - 1
        gh = np.empty((D, Mm))
        stp = np.empty((D, Mm))
        for k in range(K):
            for d in range(D):
                for j in range(Mm):
                    s = 0.0
                    for m in range(Mm):
                        gm = BB[k, d, m] - (
                            ridge * theta[off + (d * Mm + m) * K + k] if d > 0 else 0.0
                        )
                        s += gm * cU[m, j]
                    gh[d, j] = s
            for j in range(Mm):
                for d in range(D):
                    for e in range(d + 1):
                        H[d, e] = 0.5 * cmu[j] * SS[k, d, e]
                        H[e, d] = H[d, e]
                    H[d, d] += jit + (ridge if d > 0 else 0.0)
                    rhs[d] = gh[d, j]
                _chol_solve(H, rhs, sol)
                for d in range(D):
                    stp[d, j] = sol[d]
            for d in range(D):
                for m in range(Mm):
                    s = 0.0
                    for j in range(Mm):
                        s += stp[d, j] * cU[m, j]
                    idx = off + (d * Mm + m) * K + k
                    out[idx] = theta[idx] + ss * s


@njit(cache=True)
def mstep_newton(theta, st, pb, out):
    """The Newton map at ``theta`` from its statistics ``st`` (filled with ``newton``); into
    ``out``. Returns whether any Newton block step was taken.

    Gate: W + H⁻¹ ∇ with H the Hessian of the soft-label multinomial log-likelihood
    Σ_i Σ_k τ_ik log γ_ik plus λP (one Newton step on the gate's Q); categorical expert k: the same
    with Σ_i τ_ik Σ_m Y_im log π_ikm; Gaussian experts as :func:`mstep` (its weighted least squares
    is already exact). A block whose Hessian is not positive definite to working precision keeps
    its Böhning step. Nothing here guarantees ascent: :func:`_safe_map` checks the observed
    objective and falls back to :func:`mstep`.
    """
    Xt, _Zt, _y, _yi, _gL, _cU, _cmu, ridge, _var_floor, ss, jit, K, M, gauss, newton = pb
    gg, _SS, BB, _cc, _nn, HG, HV = st
    D = Xt.shape[1]
    off = D * (K - 1)
    mstep(theta, st, pb, out)  # Böhning steps: the per-block fall-back
    took = False
    if K > 1:
        Km = K - 1
        G = D * Km
        H = np.empty((G, G))
        g = np.empty(G)
        sol = np.empty(G)
        for a in range(G):
            for b in range(a + 1):
                H[a, b] = HG[a, b]
                H[b, a] = HG[a, b]
            pen = a >= Km  # slopes: rows d >= 1
            H[a, a] += jit + (ridge if pen else 0.0)
            g[a] = gg[a // Km, a % Km] - (ridge * theta[a] if pen else 0.0)
        _chol_solve(H, g, sol)
        if _all_finite(sol):
            took = True
            for a in range(G):
                out[a] = theta[a] + ss * sol[a]
    if not gauss and newton >= 2:
        Mm = M - 1
        E = D * Mm
        H = np.empty((E, E))
        g = np.empty(E)
        sol = np.empty(E)
        for k in range(K):
            for a in range(E):
                for b in range(a + 1):
                    H[a, b] = HV[k, a, b]
                    H[b, a] = HV[k, a, b]
                pen = a >= Mm
                H[a, a] += jit + (ridge if pen else 0.0)
                g[a] = BB[k, a // Mm, a % Mm] - (ridge * theta[off + a * K + k] if pen else 0.0)
            _chol_solve(H, g, sol)
            if _all_finite(sol):
                took = True
                for a in range(E):
                    out[off + a * K + k] = theta[off + a * K + k] + ss * sol[a]
    return took


# ----- the iteration ----------------------------------------------------------------------------
# The small functions between run_starts and the pass are inlined where they are called
# (``inline="always"``): Numba optimises every compiled function together with all it calls, so
# each one that calls estats optimises its code again; 4 fewer of them cut a first compile (empty
# cache) from ~53 to ~36 s, and change nothing computed.
@njit(cache=True)
def _all_finite(x):
    for j in range(x.shape[0]):
        if not math.isfinite(x[j]):
            return False
    return True


@njit(cache=True, inline="always")
def _copy_stats(src, dst):
    a0, a1, a2, a3, a4, a5, a6 = src
    b0, b1, b2, b3, b4, b5, b6 = dst
    b0[:] = a0
    b1[:] = a1
    b2[:] = a2
    b3[:] = a3
    b4[:] = a4
    b5[:] = a5
    b6[:] = a6


@njit(cache=True, inline="always")
def _map(th, st, pb, out):
    """The map F of the iteration: :func:`mstep_newton` with ``newton``, else :func:`mstep`."""
    if pb[14]:
        mstep_newton(th, st, pb, out)
    else:
        mstep(th, st, pb, out)


@njit(cache=True, inline="always")
def _safe_map(th0, f0, st0, pb, th1, tau1, st1):
    """th1 = F(th0) with its pass (tau1, st1); returns its objective, never below f0 beyond
    round-off. With ``newton`` the Newton point is kept only when its objective is finite and
    >= f0; otherwise th1 is the MM map :func:`mstep` (monotone by construction), at the cost of
    one more pass.
    """
    if pb[14]:
        mstep_newton(th0, st0, pb, th1)
        f1 = estats(th1, pb, tau1, st1, False)
        if math.isfinite(f1) and f1 >= f0:
            return f1
    mstep(th0, st0, pb, th1)
    return estats(th1, pb, tau1, st1, False)


@njit(cache=True)
def _squarem(th0, f0, tau0, st0, pb, w, caps, s):
    """One SQUAREM cycle from th0 (whose pass is tau0, st0, f0), as
    ``mm_updates.squarem_cycle``. The new point and its pass overwrite th0/tau0/st0; returns its
    objective. ``w`` holds scratch buffers. Three passes over the data per cycle (four when the
    extrapolation is rejected; with ``newton`` one more for each rejected Newton point).
    ``caps[s]`` bounds the steplength, |α| <= caps[s], and adapts as in Varadhan & Roland's
    SQUAREM package (×4 after an accepted capped step, ÷4, not below 1, after a rejected one);
    ``inf`` leaves α unbounded.
    """
    th1, th2, thp, th3, tau1, taup, st1, stp = w
    P = th0.shape[0]
    _safe_map(th0, f0, st0, pb, th1, tau1, st1)
    _map(th1, st1, pb, th2)
    nr = 0.0
    nv = 0.0
    for j in range(P):
        r = th1[j] - th0[j]
        v = th2[j] - th1[j] - r
        nr += r * r
        nv += v * v
    nr = math.sqrt(nr)
    nv = math.sqrt(nv)
    alpha = -nr / nv if nv > 0 else -1.0
    if alpha > -1.0:  # np.minimum(alpha, -1); NaN stays NaN and gives a non-finite point
        alpha = -1.0
    amax = caps[s]
    hit = alpha < -amax
    if hit:
        alpha = -amax
    for j in range(P):
        r = th1[j] - th0[j]
        v = th2[j] - th1[j] - r
        thp[j] = th0[j] - 2.0 * alpha * r + alpha * alpha * v
    if not _all_finite(thp):
        thp[:] = th2
    fp = estats(thp, pb, taup, stp, False)
    if not math.isfinite(fp):  # as the numpy cycle: the map at θ' with the responsibilities τ1
        taup[:, :] = tau1
        estats(thp, pb, taup, stp, True)
        fp = np.inf  # (a Newton point is then never kept: the MM map is taken)
    # θ3 = F(θ'), safeguarded against fp as θ1 against f0: the Newton map may descend far from
    # the optimum, where the extrapolation lands; the MM map never does
    f3 = _safe_map(thp, fp, stp, pb, th3, tau0, st0)
    if math.isfinite(f3) and f3 >= f0:
        if hit:
            caps[s] = amax * CAP_STEP
        th0[:] = th3
        return f3
    if hit:
        caps[s] = max(1.0, amax / CAP_STEP)
    th0[:] = th2
    f2 = estats(th0, pb, tau0, st0, False)
    if not pb[14] or (math.isfinite(f2) and f2 >= f0):  # the MM double step never descends
        return f2
    th0[:] = th1  # Newton: θ2 = F(θ1) was not checked; θ1 was
    return estats(th0, pb, tau0, st0, False)


@njit(cache=True, inline="always")
def _plain(th0, f0, tau0, st0, pb, w):
    th1, tau1, st1 = w[0], w[4], w[6]
    f1 = _safe_map(th0, f0, st0, pb, th1, tau1, st1)
    th0[:] = th1
    tau0[:, :] = tau1
    _copy_stats(st1, st0)
    return f1


@njit(cache=True)
def run_starts(
    theta,
    f,
    active,
    converged,
    stalled,
    n_iter,
    trace,
    it0,
    it1,
    tol,
    accelerate,
    stall_window,
    stall_tol,
    caps,
    pb,
    sts,
    init,
):
    """Advance every start s with ``active[s]`` from iteration it0 to it1 (inclusive), in place.

    Per start and iteration: one SQUAREM cycle (``accelerate``) or one MM map; the objective goes
    to ``trace[s, it]``; the start stops (``active[s] = False``) when |Δf| <= tol·|f| (then
    ``converged[s] = True``) or when the objective is not finite. ``f`` holds each start's current
    objective and is updated. A start also stops (``stalled[s] = True``, not converged) when
    ``stall_window`` > 0 and its objective rose by less than ``stall_tol`` over the last
    ``stall_window`` iterations (``trace[s, it - stall_window]`` must hold the earlier value).
    ``sts``: three statistics buffers (:func:`new_stats`). With ``init`` the starts' objectives
    are not known yet: every start's objective at ``theta[s]`` goes to ``f[s]`` and
    ``trace[s, it0]``, and a start whose objective is not finite is made inactive (the pass that
    gives an active start's objective also begins its iteration, so none is done twice).
    """
    Xt = pb[0]
    K = pb[11]
    n = Xt.shape[0]
    S, P = theta.shape
    st0, st1, stp = sts
    tau = np.empty((n, K))
    w = (
        np.empty(P),
        np.empty(P),
        np.empty(P),
        np.empty(P),
        np.empty((n, K)),
        np.empty((n, K)),
        st1,
        stp,
    )
    th = np.empty(P)
    for s in range(S):
        if not (active[s] or init):
            continue
        th[:] = theta[s]
        f0 = estats(th, pb, tau, st0, False)
        if init:
            f[s] = f0
            trace[s, it0] = f0
            if not math.isfinite(f0):
                active[s] = False
            if not active[s]:
                continue
        for it in range(it0 + 1, it1 + 1):
            if accelerate:
                fn = _squarem(th, f0, tau, st0, pb, w, caps, s)
            else:
                fn = _plain(th, f0, tau, st0, pb, w)
            trace[s, it] = fn
            n_iter[s] = it
            done = abs(fn - f0) <= tol * abs(fn)
            f0 = fn
            if done:
                converged[s] = True
            if done or not math.isfinite(fn):
                active[s] = False
                break
            if stall_window > 0 and it >= stall_window:
                if fn - trace[s, it - stall_window] < stall_tol:
                    stalled[s] = True
                    active[s] = False
                    break
        theta[s] = th
        f[s] = f0


@njit(cache=True)
def mstep_fixed_tau(theta, tau, pb, n_inner, st):
    """``n_inner`` MM maps of every start at fixed responsibilities ``tau`` (S, n, K), in place
    (the initialiser's fit of a partition, as ``mm_updates.mstep`` repeated).
    """
    S, P = theta.shape
    th = np.empty(P)
    out = np.empty(P)
    for s in range(S):
        th[:] = theta[s]
        for _ in range(n_inner):
            estats(th, pb, tau[s], st, True)
            mstep(th, st, pb, out)
            th[:] = out
        theta[s] = th
