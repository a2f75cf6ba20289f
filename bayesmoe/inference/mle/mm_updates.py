"""Numerical kernels of the MM fitter (docs/math.md §8), vectorised over a leading start axis.

Everything here works on the *standardised* scale and on plain numpy arrays:

- ``Xt`` (n, D) expert design ``[1, x_s]`` and ``Zt`` (n, D) gate design ``[1, z_s]``, D = d + 1;
- a parameter vector ``theta`` of shape (S, P): one row per start, unpacked by :class:`Layout` into
  ``W`` (S, D, K) gate coefficients (row 0 the intercept; the reference expert K-1 pinned to 0)
  and the expert family's blocks (``Family.mm_blocks``: ``A`` (S, D, K) + ``log_s2`` (S, K) for
  Gaussian experts, ``V`` (S, D, M-1, K) for multinomial-logistic experts, ``A`` for Poisson).

The E-step evaluates the family's one log density (``Family.log_prob``); the expert M-step is the
family's (``Family.mm_step``); this module holds the gate's steps, the Böhning steps the
categorical family uses, and the iteration.

With ``Problem.newton`` the map takes Newton steps for the gate and the categorical experts
instead (:func:`newton_gate_step`, :func:`newton_categorical_step`), kept only when the observed
objective does not decrease (:func:`safe_map`).

The MM map is one E-step (responsibilities) followed by closed-form block updates that each
maximise a minorizer of the (ridge-penalised) expected complete-data log-likelihood Q:

- gate: one Böhning step, curvature ``½ (I - 11ᵀ/K) ⊗ ZᵀZ + λP`` (constant: inverted once);
- categorical expert k: one Böhning step with the tighter ``½ (I - 11ᵀ/M) ⊗ Xᵀdiag(τ_k)X + λP``;
- Gaussian expert k: a weighted-least-squares step for (b_k, a_k) at the current σ_k², then the
  closed-form σ_k² = max(floor, Σ τ r² / Σ τ);
- Poisson expert k: a Newton (IRLS) step halved until Q_k does not decrease.

Every step is written as ``θ + H⁻¹ ∇`` with H at least the curvature of the surrogate, plus a tiny
jitter ``eps·I`` (more curvature is always safe for ascent), so each block step cannot decrease Q
and
hence, by Jensen, cannot decrease the penalised log-likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import gammaln

from bayesmoe.families import Ops, Transform, get_family

#: relative jitter added to every curvature matrix (times n); keeps solves finite when an expert
#: loses all its responsibility. Extra curvature only shortens steps, so ascent is preserved.
JITTER = 1e-10
#: SQUAREM steplength-bound factor (``mstep`` of Varadhan & Roland's SQUAREM package)
CAP_STEP = 4.0


def _reduce_small(x: np.ndarray, axis: int, op) -> np.ndarray:
    """op-reduce over a short axis by a loop over its slices (much faster than numpy's strided
    reductions when the axis has a handful of entries, as the expert and class axes do).
    """
    x = np.moveaxis(x, axis, 0)
    out = x[0].copy()
    for i in range(1, x.shape[0]):
        op(out, x[i], out=out)
    return np.expand_dims(out, axis)


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """Log Σ exp over a short axis (numerically stable; -inf rows give -inf)."""
    m = _reduce_small(x, axis, np.maximum)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(_reduce_small(np.exp(x - m), axis, np.add)) + m
    return out if keepdims else np.squeeze(out, axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """X - logsumexp(x) over a short axis."""
    return x - logsumexp(x, axis=axis, keepdims=True)


#: numpy with the short-axis reductions above (the expert and class axes have a few entries)
SHORT_NUMPY = Ops(
    "numpy",
    np,
    lambda x, axis: logsumexp(x, axis=axis),
    lambda x, axis: log_softmax(x, axis=axis),
    gammaln,
    lambda codes, m: (np.asarray(codes)[..., None] == np.arange(m)).astype(float),
)


@dataclass(frozen=True)
class Layout:
    """Shapes of the parameter blocks and how they pack into one vector per start."""

    family: str
    D: int
    K: int
    M: int = 0  # number of classes (categorical only)
    Dg: int | None = None  # gate columns incl. intercept (None: D, the gate sees the experts' x)

    @property
    def gate_D(self) -> int:
        return self.D if self.Dg is None else self.Dg

    @property
    def fam(self):
        return get_family(self.family)

    @cached_property
    def blocks(self) -> dict:
        """Block name -> shape per start: the gate ``W`` then the family's blocks."""
        return {"W": (self.gate_D, self.K - 1), **self.fam.mm_blocks(self.D, self.K, self.M)}

    @property
    def sizes(self) -> dict:
        return {k: int(np.prod(v, dtype=int)) for k, v in self.blocks.items()}

    @property
    def size(self) -> int:
        return sum(self.sizes.values())

    def unpack(self, theta: np.ndarray) -> dict:
        """Blocks of every start; ``W`` with the reference expert's zero column."""
        S = theta.shape[0]
        out, i = {}, 0
        for name, shape in self.blocks.items():
            size = int(np.prod(shape, dtype=int))
            out[name] = theta[:, i : i + size].reshape((S, *shape))
            i += size
        W = np.zeros((S, self.gate_D, self.K))
        W[:, :, : self.K - 1] = out["W"]
        out["W"] = W
        return out

    def pack(self, p: dict) -> np.ndarray:
        S = p["W"].shape[0]
        parts = [p["W"][:, :, : self.K - 1].reshape(S, -1)]
        parts += [np.asarray(p[name]).reshape(S, -1) for name in self.blocks if name != "W"]
        return np.concatenate(parts, axis=1)

    def experts(self, p: dict) -> dict:
        """The family's blocks of unpacked ``p``."""
        return {k: p[k] for k in self.blocks if k != "W"}


@dataclass
class Problem:
    """Standardised data and the constant pieces of the MM map."""

    layout: Layout
    Xt: np.ndarray  # (n, D)
    Zt: np.ndarray  # (n, Dg): the gate's columns (the experts' unless it has its own)
    y: np.ndarray  # (n,) float (gaussian, standardised) or int codes (categorical)
    ridge: float = 0.0
    var_floor: float = 1e-6
    Y1: np.ndarray | None = None  # one-hot (n, M) for categorical
    gate_hinv: np.ndarray | None = None  # (K-1, D, D) inverse curvature in B's eigenbasis
    gate_U: np.ndarray | None = None  # (K-1, K-1) eigenvectors of I - 11ᵀ/K
    cls_U: np.ndarray | None = None  # (M-1, M-1) eigenvectors of I - 11ᵀ/M
    cls_mu: np.ndarray | None = None  # (M-1,) its eigenvalues
    step_scale: float = 1.0  # 1 for the MM; != 1 only to test that the ascent checker bites
    newton: int = 0  # safeguarded Newton steps: 1 the gate, 2 also the categorical experts
    offset: np.ndarray | None = None  # per-row offset of the standardised density (Poisson)
    trials: np.ndarray | None = None  # per-row numbers of trials (binomial)

    @property
    def P(self) -> np.ndarray:
        """Ridge mask of the experts: penalise slopes (rows 1..d), never intercepts."""
        return _ridge_mask(self.layout.D)

    @property
    def Pg(self) -> np.ndarray:
        """Ridge mask of the gate (rows 1..d_gate)."""
        return _ridge_mask(self.layout.gate_D)


def _ridge_mask(D: int) -> np.ndarray:
    P = np.ones(D)
    P[0] = 0.0
    return np.diag(P)


def boehning_eig(m_plus_1: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of Böhning's matrix I_m - 11ᵀ/(m+1)."""
    m = m_plus_1 - 1
    B = np.eye(m) - np.ones((m, m)) / m_plus_1
    mu, U = np.linalg.eigh(B)
    return mu, U


def make_problem(
    family,
    Xt,
    Zt,
    y,
    K,
    *,
    M=0,
    ridge=0.0,
    var_floor=1e-6,
    step_scale=1.0,
    newton=False,
    offset=None,
    trials=None,
):
    """Assemble a :class:`Problem`, factoring the constant gate curvature once. ``y`` and
    ``offset`` as the family's standardised-scale density sees them (``Family.standard_data``).
    """
    n, D = Xt.shape
    Dg = Zt.shape[1]
    fam = get_family(family)
    lay = Layout(fam.name, D, K, M, None if Dg == D else Dg)
    prob = Problem(
        lay,
        Xt,
        Zt,
        y,
        float(ridge),
        float(var_floor),
        step_scale=float(step_scale),
        newton=int(newton),
        offset=None if offset is None else np.asarray(offset, dtype=float),
        trials=None if trials is None else np.asarray(trials, dtype=float),
    )
    if K > 1:
        mu, U = boehning_eig(K)
        C = Zt.T @ Zt
        H = 0.5 * mu[:, None, None] * C + ridge * prob.Pg + JITTER * n * np.eye(Dg)
        prob.gate_hinv = np.linalg.inv(H)
        prob.gate_U = U
    fam.mm_prepare(prob, M)
    return prob


# ----- E-step ---------------------------------------------------------------------------------
def log_joint(prob: Problem, p: dict) -> np.ndarray:
    """Log g_k(x_i) + log p_k(y_i | x_i), shape (S, n, K): the family's one log density."""
    eta = prob.Zt @ p["W"]
    log_g = log_softmax(eta, axis=-1)
    fam = prob.layout.fam
    canon = fam.mm_unpack(prob.layout.experts(p))
    tr = Transform.identity(prob.Xt.shape[1] - 1)
    lp = fam.log_prob(
        canon,
        prob.Xt[:, 1:],
        prob.y,
        tr=tr,
        ops=SHORT_NUMPY,
        data={"offset": prob.offset, "trials": prob.trials},
    )
    return log_g + lp


def penalty(prob: Problem, p: dict) -> np.ndarray:
    """Ridge penalty (λ/2)·(‖gate slopes‖² + ‖expert slopes‖²), shape (S,)."""
    S = p["W"].shape[0]
    if prob.ridge == 0.0:
        return np.zeros(S)
    slopes = prob.layout.fam.mm_unpack(prob.layout.experts(p))["a"]
    s = (p["W"][:, 1:] ** 2).reshape(S, -1).sum(1) + (slopes**2).reshape(S, -1).sum(1)
    return 0.5 * prob.ridge * s


def estep(prob: Problem, theta: np.ndarray):
    """Responsibilities (S, n, K) and the penalised objective (S,) at ``theta``."""
    p = prob.layout.unpack(theta)
    with np.errstate(all="ignore"):
        lj = log_joint(prob, p)
        ll_i = logsumexp(lj, axis=-1, keepdims=True)
        tau = np.exp(lj - ll_i)
        obj = ll_i[..., 0].sum(-1) - penalty(prob, p)
    obj = np.where(np.isfinite(obj), obj, -np.inf)
    return tau, obj


def _class_logits(Xt: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Class logits of every expert, shape (S, n, M, K)."""
    S, D, M, K = V.shape
    return (Xt @ V.reshape(S, D, M * K)).reshape(S, Xt.shape[0], M, K)


def weighted_gram(Xt: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Xᵀ diag(τ_k) X for every start and expert, shape (S, K, D, D)."""
    XX = Xt[:, :, None] * Xt[:, None, :]  # (n, D, D)
    return np.einsum("snk,nde->skde", tau, XX, optimize=True)


# ----- M-step blocks --------------------------------------------------------------------------
def gate_step(prob: Problem, W: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """One Böhning step of the gate towards the soft labels ``tau``; returns the new W."""
    K = prob.layout.K
    if K == 1:
        return W
    eta = prob.Zt @ W
    Gam = np.exp(log_softmax(eta, axis=-1))
    grad = prob.Zt.T @ (tau - Gam)[..., : K - 1]
    grad -= prob.ridge * np.einsum("de,sek->sdk", prob.Pg, W[:, :, : K - 1])
    gh = grad @ prob.gate_U  # (S, D, K-1) in B's eigenbasis
    step = np.einsum("jde,sej->sdj", prob.gate_hinv, gh) @ prob.gate_U.T
    out = W.copy()
    out[:, :, : K - 1] += prob.step_scale * step
    return out


def categorical_step(prob: Problem, V: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """One Böhning step per expert with S_k = Xᵀdiag(τ_k)X (tighter than XᵀX)."""
    Xt = prob.Xt
    n, D = Xt.shape
    M = prob.layout.M
    logits = _class_logits(Xt, V)
    Pi = np.exp(log_softmax(logits, axis=2))
    R = (prob.Y1[None, :, :, None] - Pi)[:, :, : M - 1, :]  # (S, n, M-1, K)
    grad = np.einsum("nd,snmk->skdm", Xt, tau[:, :, None, :] * R, optimize=True)  # (S, K, D, M-1)
    grad -= prob.ridge * np.einsum("de,semk->skdm", prob.P, V[:, :, : M - 1, :])
    Sk = weighted_gram(Xt, tau)  # (S, K, D, D)
    H = (
        0.5 * prob.cls_mu[:, None, None] * Sk[:, :, None]
        + prob.ridge * prob.P
        + JITTER * n * np.eye(D)
    )  # (S, K, M-1, D, D)
    gh = grad @ prob.cls_U  # (S, K, D, M-1)
    sol = np.linalg.solve(H, np.moveaxis(gh, -1, -2)[..., None])[..., 0]  # (S, K, M-1, D)
    step = np.moveaxis(sol, -1, -2) @ prob.cls_U.T  # (S, K, D, M-1)
    out = V.copy()
    out[:, :, : M - 1, :] += prob.step_scale * np.moveaxis(step, 1, -1)
    return out


def _newton_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve H x = g for each leading index by Cholesky; NaN rows where H is not positive
    definite (as mm_numba._chol_solve: the caller keeps the Böhning step there).
    """
    out = np.full(g.shape, np.nan)
    for i in np.ndindex(*H.shape[:-2]):
        try:
            L = np.linalg.cholesky(H[i])
        except np.linalg.LinAlgError:
            continue
        out[i] = np.linalg.solve(L.T, np.linalg.solve(L, g[i]))
    return out


def newton_gate_step(prob: Problem, W: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """One Newton step of the gate on Q_gate(W) = Σ_i Σ_k τ_ik log γ_ik(W) - (λ/2)‖slopes‖²:
    W + H⁻¹∇ with H = Σ_i (diag γ_i - γ_i γ_iᵀ) ⊗ z_i z_iᵀ + λP over the K-1 free experts
    (index d*(K-1)+k, the packing of theta). Starts whose H is not positive definite keep the
    Böhning step (:func:`gate_step`). No ascent guarantee: the iteration checks the objective.
    """
    K = prob.layout.K
    if K == 1:
        return W
    Km = K - 1
    Z = prob.Zt
    n, D = Z.shape
    S = W.shape[0]
    Gam = np.exp(log_softmax(Z @ W, axis=-1))[..., :Km]  # (S, n, K-1)
    grad = Z.T @ (tau[..., :Km] - Gam)  # (S, D, K-1)
    grad -= prob.ridge * np.einsum("de,sek->sdk", prob.Pg, W[:, :, :Km])
    H = np.einsum("nd,ne,snk->sdke", Z, Z, Gam)[:, :, :, :, None] * np.eye(Km)[None, None, :, None]
    H = H - np.einsum("nd,ne,snk,snl->sdkel", Z, Z, Gam, Gam)
    H = H.reshape(S, D * Km, D * Km)
    H = H + np.kron(prob.ridge * prob.Pg, np.eye(Km)) + JITTER * n * np.eye(D * Km)
    sol = _newton_solve(H, grad.reshape(S, D * Km)).reshape(S, D, Km)
    out = gate_step(prob, W, tau)
    ok = np.all(np.isfinite(sol), axis=(1, 2))
    out[ok, :, :Km] = W[ok, :, :Km] + prob.step_scale * sol[ok]
    return out


def newton_categorical_step(prob: Problem, V: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """One Newton step per expert on Q_k(V_k) = Σ_i τ_ik log π_ik,y_i(V_k) - (λ/2)‖slopes‖²:
    H = Σ_i τ_ik (diag π_ik - π_ik π_ikᵀ) ⊗ x_i x_iᵀ + λP over the M-1 free classes (index
    d*(M-1)+m). Experts whose H is not positive definite keep the Böhning step.
    """
    Xt = prob.Xt
    n, D = Xt.shape
    M = prob.layout.M
    Mm = M - 1
    S, _, _, K = V.shape
    Pi = np.exp(log_softmax(_class_logits(Xt, V), axis=2))[:, :, :Mm, :]  # (S, n, M-1, K)
    R = prob.Y1[None, :, :Mm, None] - Pi
    grad = np.einsum("nd,snmk->skdm", Xt, tau[:, :, None, :] * R, optimize=True)
    grad -= prob.ridge * np.einsum("de,semk->skdm", prob.P, V[:, :, :Mm, :])
    tP = tau[:, :, None, :] * Pi  # (S, n, M-1, K)
    H = (
        np.einsum("nd,ne,snmk->skdme", Xt, Xt, tP, optimize=True)[..., None]
        * np.eye(Mm)[:, None, :]
    )  # (S, K, D, M-1, D, M-1)
    H = H - np.einsum("nd,ne,snmk,snlk->skdmel", Xt, Xt, tP, Pi, optimize=True)
    E = D * Mm
    H = H.reshape(S, K, E, E) + np.kron(prob.ridge * prob.P, np.eye(Mm)) + JITTER * n * np.eye(E)
    sol = _newton_solve(H, grad.reshape(S, K, E)).reshape(S, K, D, Mm)
    out = categorical_step(prob, V, tau)
    ok = np.all(np.isfinite(sol), axis=(2, 3))  # (S, K)
    new = V[:, :, :Mm, :] + prob.step_scale * np.moveaxis(sol, 1, -1)  # (S, D, M-1, K)
    okb = ok[:, None, None, :]
    out[:, :, :Mm, :] = np.where(okb, new, out[:, :, :Mm, :])
    return out


def mstep(prob: Problem, theta: np.ndarray, tau: np.ndarray, newton: int | None = None):
    """The map given the responsibilities at ``theta``: the MM (Böhning / weighted least squares)
    steps, or with ``newton`` (default ``prob.newton``) Newton steps for the gate and the
    categorical experts (no ascent guarantee by itself; see :func:`safe_map`).
    """
    lay = prob.layout
    newton = prob.newton if newton is None else newton
    p = lay.unpack(theta)
    with np.errstate(all="ignore"):
        p["W"] = (newton_gate_step if newton else gate_step)(prob, p["W"], tau)
        p.update(lay.fam.mm_step(prob, lay.experts(p), tau, newton))
    return lay.pack(p)


def safe_map(prob: Problem, theta0: np.ndarray, tau0: np.ndarray, f0: np.ndarray):
    """θ1 = F(θ0) and its E-step, never below f0: with ``prob.newton`` a Newton point whose
    objective is not finite or below f0 is replaced by the MM map (monotone by construction).
    Returns (θ1, τ1, f1).
    """
    theta1 = mstep(prob, theta0, tau0)
    tau1, f1 = estep(prob, theta1)
    if prob.newton:
        bad = ~(np.isfinite(f1) & (f1 >= f0))
        if bad.any():
            thb = mstep(prob, theta0[bad], tau0[bad], newton=0)
            taub, fb = estep(prob, thb)
            theta1, tau1, f1 = theta1.copy(), tau1.copy(), f1.copy()
            theta1[bad], tau1[bad], f1[bad] = thb, taub, fb
    return theta1, tau1, f1


# ----- the iteration: plain MM or SQUAREM, vectorised over starts -----------------------------
def squarem_cycle(
    prob: Problem,
    theta0: np.ndarray,
    tau0: np.ndarray,
    f0: np.ndarray,
    cap: np.ndarray | None = None,
):
    """One SQUAREM cycle (Varadhan & Roland 2008, scheme S3) with the monotone fall-back.

    Two steps θ1 = F(θ0) (safeguarded: :func:`safe_map`), θ2 = F(θ1); steplength α = -‖r‖/‖v‖
    (at most -1; with ``cap``, at least -cap, the bound adapted in place), r = θ1-θ0,
    v = θ2-2θ1+θ0; extrapolate θ' = θ0 - 2αr + α²v and stabilise with θ3 = F(θ') (safeguarded
    against ℓ(θ')). Accept θ3 when its penalised objective is finite and not below f0; otherwise
    fall back to the double step θ2 (the MM double step never decreases the objective; an
    unchecked Newton θ2 below f0 falls back to θ1). Returns (θ, τ, f, accepted) at the new point.
    """
    theta1, tau1, f1 = safe_map(prob, theta0, tau0, f0)
    theta2 = mstep(prob, theta1, tau1)
    r = theta1 - theta0
    v = theta2 - theta1 - r
    nr = np.sqrt((r * r).sum(1))
    nv = np.sqrt((v * v).sum(1))
    with np.errstate(all="ignore"):
        alpha = np.where(nv > 0, -nr / nv, -1.0)
    alpha = np.minimum(alpha, -1.0)
    hit = np.zeros(len(alpha), dtype=bool)
    if cap is not None:  # steplength bound |α| <= cap, adapted in place (see mm_numba._squarem)
        hit = alpha < -cap
        alpha = np.where(hit, -cap, alpha)
    alpha = alpha[:, None]
    thetap = theta0 - 2 * alpha * r + alpha**2 * v
    ok = np.all(np.isfinite(thetap), axis=1)
    thetap = np.where(ok[:, None], thetap, theta2)
    taup, fp = estep(prob, thetap)
    okp = np.isfinite(fp)
    taup = np.where(okp[:, None, None], taup, tau1)
    # θ3 = F(θ'), safeguarded against ℓ(θ') (+inf where that is not finite: the MM map is taken)
    theta3, tau3, f3 = safe_map(prob, thetap, taup, np.where(okp, fp, np.inf))
    acc = np.isfinite(f3) & (f3 >= f0)
    if cap is not None:
        cap[hit & acc] *= CAP_STEP
        cap[hit & ~acc] = np.maximum(1.0, cap[hit & ~acc] / CAP_STEP)
    theta = np.where(acc[:, None], theta3, theta2)
    tau, f = tau3, f3.copy()
    if not np.all(acc):
        rej = ~acc
        tau2, f2 = estep(prob, theta2[rej])
        tau = tau.copy()
        tau[rej] = tau2
        f[rej] = f2
        if prob.newton:  # θ2 = F(θ1) was not checked; θ1 was
            back = rej & ~(np.isfinite(f) & (f >= f0))
            theta[back], tau[back], f[back] = theta1[back], tau1[back], f1[back]
    return theta, tau, f, acc


def mm_cycle(prob: Problem, theta0: np.ndarray, tau0: np.ndarray, f0: np.ndarray, cap=None):
    """One plain MM iteration (with ``prob.newton``: the safeguarded Newton map).
    Returns (θ, τ, f, accepted=None).
    """
    theta, tau, f = safe_map(prob, theta0, tau0, f0)
    return theta, tau, f, None
