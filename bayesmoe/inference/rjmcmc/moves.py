"""Reversible-jump proposals for the padded random-K MoE, as pure functions (docs/math.md §3).

State: a slot matrix ``theta`` of shape (K_max, D) in the model's *value space* on the
standardised scale (one row per expert slot: column 0 the gate intercept beta0, then the gate
slopes, then the expert parameters, ``log sigma`` last for Gaussian experts) and the number of
active experts ``K``: rows ``0..K-1`` are active. Every move returns
``(proposal, log proposal ratio, log |Jacobian|)`` where ``proposal = (theta_new, K_new)`` and the
log proposal ratio is log q(reverse) − log q(forward) *within the active coordinates*: the prior
redraw of a slot that a death or merge frees, and the prior density of the inactive value a birth
or split overwrites, cancel against the prior factor of that inactive slot in the padded target
(see :mod:`bayesmoe.inference.rjmcmc.step`), so neither appears here.

Moves (their reverse in brackets):

- birth (death): slot K gets ``u ~ q(. | theta_{0..K-1})``, a Normal around a data-informed
  centre (the expert that best explains the observations the current mixture explains worst);
  q is a deterministic function of the K active experts, so the death of slot K can evaluate it.
- split (merge): expert j (uniform among K) splits into slots j and K with auxiliary variables
  ``u ~ Beta(a, a)`` (gate-weight share) and ``delta ~ N(0, diag(s^2))`` (parameter difference);
  the merge of slots j (uniform among K-1) and K-1 is its exact inverse. The gate weights
  ``exp(beta0)`` add, every other coordinate is preserved in weighted mean:
  ``beta0_1 = beta0 + log u``, ``beta0_2 = beta0 + log(1 - u)``,
  ``phi_1 = phi + (1 - u) delta``, ``phi_2 = phi - u delta``, with
  ``|d(theta_1, theta_2) / d(theta, u, delta)| = 1 / (u (1 - u))`` [derived].
- permutation: a uniformly random permutation of the active slots; exact and always accepted
  because the padded prior is exchangeable and the likelihood symmetric in the active experts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from bayesmoe.families import Transform, get_family
from bayesmoe.families.gaussian import weighted_lstsq
from bayesmoe.gates import SOFTMAX
from bayesmoe.inference.mle.mm_updates import SHORT_NUMPY

__all__ = [
    "MOVES",
    "MoveContext",
    "SlotLayout",
    "birth_log_density",
    "birth_proposal",
    "merge_map",
    "mixture_log_density",
    "move_probabilities",
    "propose_birth",
    "propose_death",
    "propose_merge",
    "propose_permutation",
    "propose_split",
    "slot_prior_logpdf",
    "split_map",
]

#: Codes of the trans-dimensional moves, as stored in the ``move`` sample stat.
MOVES = {"birth": 0, "death": 1, "split": 2, "merge": 3}

_LOG_2PI = float(np.log(2 * np.pi))


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """Plain-numpy logsumexp (scipy's carries array-API overhead that dominates small arrays)."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    return a - np.expand_dims(logsumexp(a, axis), axis)


@dataclass(frozen=True)
class SlotLayout:
    """Columns of the slot matrix: which value variable, which block shape, which prior group.

    ``vars`` lists ``(value_name, block_shape)`` in column order (``beta0_std`` first);
    ``groups`` the prior group of each (names of :class:`bayesmoe.models.Priors` fields).
    """

    vars: tuple
    groups: tuple

    @property
    def sizes(self) -> list[int]:
        return [int(np.prod(s, dtype=int)) for _, s in self.vars]

    @property
    def n_columns(self) -> int:
        return sum(self.sizes)

    @property
    def column_groups(self) -> np.ndarray:
        return np.repeat(np.array(self.groups), self.sizes)

    def pack(self, point: dict) -> np.ndarray:
        """Point dict (value name -> block_shape + (K_max,)) -> slot matrix (K_max, D)."""
        cols = [
            np.asarray(point[name], dtype=float).reshape(-1, np.shape(point[name])[-1])
            for name, _ in self.vars
        ]
        return np.concatenate(cols, axis=0).T.copy()

    def unpack(self, theta: np.ndarray) -> dict:
        """Slot matrix (K, D) -> dict value name -> block_shape + (K,)."""
        out, start = {}, 0
        for name, shape in self.vars:
            size = 1
            for s in shape:
                size *= s
            out[name] = theta[:, start : start + size].T.reshape(shape + (theta.shape[0],))
            start += size
        return out


@dataclass(frozen=True)
class MoveContext:
    """Everything a move needs besides the state: the standardised data, the layout, the prior.

    ``split_sd`` is the sd of ``delta`` per column (column 0 unused); ``birth_scale`` multiplies
    the data-derived sd of the birth proposal; ``split_beta`` is the Beta(a, a) parameter of ``u``.
    ``prior_sd`` is the prior scale per column (``log sigma`` column: the HalfNormal scale of
    sigma, whose value variable is ``log sigma``). ``prior_mix`` is the weight of the prior in the
    defensive birth proposal ``q = prior_mix * prior + (1 - prior_mix) * Normal``.
    """

    family: str
    Xs: np.ndarray = field(repr=False)
    Zs: np.ndarray = field(repr=False)
    ys: np.ndarray = field(repr=False)
    temperature: float
    n_classes: int
    layout: SlotLayout
    prior_sd: np.ndarray
    split_sd: np.ndarray
    birth_scale: float = 1.0
    split_beta: float = 2.0
    #: the value-space columns of positive parameters (``log sigma``, and e.g. ``log kappa``):
    #: HalfNormal priors with their Jacobians
    log_sigma_column: int | tuple | None = None
    prior_mix: float = 0.5
    #: per-row data of the family's standardised density (``Family.standard_data``: offsets)
    data: dict = field(default_factory=dict, repr=False)
    #: optional birth kernel with ``draw(theta, ctx, rng, prior_row)`` and
    #: ``log_density(u, theta, ctx)`` (e.g. :class:`~bayesmoe.inference.rjmcmc.categorical.
    #: AnchorBirth`); None: the Normal of :func:`birth_proposal`
    birth_kernel: object = field(default=None, repr=False)
    prior_logpdf: Callable | None = None  # slot prior density of a row, if not the default set


def move_probabilities(K: int, K_max: int, p_birth_death: float = 0.5) -> dict[str, float]:
    """Probabilities of the four moves at K: up-moves (birth, split) and down-moves (death, merge)
    each get half of the mass, all of it at the boundaries K = 1 and K = K_max.

    Examples
    --------
    >>> from bayesmoe.inference.rjmcmc.moves import move_probabilities
    >>> move_probabilities(1, 3)
    {'birth': 0.5, 'death': 0.0, 'split': 0.5, 'merge': 0.0}
    """
    if K_max == 1:
        return {"birth": 0.0, "death": 0.0, "split": 0.0, "merge": 0.0}
    up = 1.0 if K == 1 else (0.0 if K == K_max else 0.5)
    down = 1.0 - up
    p = float(p_birth_death)
    return {"birth": p * up, "death": p * down, "split": (1 - p) * up, "merge": (1 - p) * down}


# ----- split / merge maps ---------------------------------------------------------------------
def split_map(theta: np.ndarray, u: float, delta: np.ndarray):
    """Split one atom ``theta`` (D,) with auxiliaries ``u`` in (0, 1) and ``delta`` (D-1,).

    Returns ``(theta_1, theta_2, log_abs_jacobian)`` with the Jacobian of
    ``(theta, u, delta) -> (theta_1, theta_2)``: ``-log u - log(1 - u)``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.inference.rjmcmc.moves import split_map, merge_map
    >>> t1, t2, lj = split_map(np.array([0.0, 1.0]), 0.5, np.array([2.0]))
    >>> t1.round(4), t2.round(4), round(lj, 4)
    (array([-0.6931,  2.    ]), array([-0.6931,  0.    ]), 1.3863)
    >>> back, u, d, _ = merge_map(t1, t2)
    >>> np.allclose(back, [0.0, 1.0]), u, d
    (True, 0.5, array([2.]))
    """
    theta = np.asarray(theta, dtype=float)
    t1, t2 = theta.copy(), theta.copy()
    t1[0] = theta[0] + np.log(u)
    t2[0] = theta[0] + np.log1p(-u)
    t1[1:] = theta[1:] + (1.0 - u) * delta
    t2[1:] = theta[1:] - u * delta
    return t1, t2, float(-np.log(u) - np.log1p(-u))


def merge_map(theta_1: np.ndarray, theta_2: np.ndarray):
    """Inverse of :func:`split_map`: ``(theta, u, delta, log_abs_jacobian)`` where the Jacobian is
    that of the merge map, ``log u + log(1 - u)`` (minus the split's).
    """
    theta_1 = np.asarray(theta_1, dtype=float)
    theta_2 = np.asarray(theta_2, dtype=float)
    theta = np.empty_like(theta_1)
    theta[0] = np.logaddexp(theta_1[0], theta_2[0])
    # u = w1 / (w1 + w2) in a form that stays accurate when one weight is tiny
    u = float(np.exp(theta_1[0] - theta[0]))
    one_minus_u = float(np.exp(theta_2[0] - theta[0]))
    theta[1:] = u * theta_1[1:] + one_minus_u * theta_2[1:]
    delta = theta_1[1:] - theta_2[1:]
    return theta, u, delta, float(np.log(u) + np.log(one_minus_u))


def _norm_logpdf(x, mean, sd) -> float:
    z = (x - mean) / sd
    return float(np.sum(-0.5 * _LOG_2PI - np.log(sd) - 0.5 * z * z))


def _split_aux_logpdf(u: float, delta: np.ndarray, ctx: MoveContext) -> float:
    a = ctx.split_beta
    log_beta = (a - 1.0) * (np.log(u) + np.log1p(-u)) - (2.0 * gammaln(a) - gammaln(2.0 * a))
    return float(log_beta + _norm_logpdf(delta, 0.0, ctx.split_sd[1:]))


def slot_prior_logpdf(row: np.ndarray, ctx: MoveContext) -> float:
    """Prior log density of one slot row in value space: Normal coordinates, and for the
    ``log sigma`` columns the HalfNormal density of sigma times the Jacobian ``sigma``
    (``ctx.prior_logpdf`` instead, when set: other prior sets).
    """
    row = np.asarray(row, dtype=float)
    if ctx.prior_logpdf is not None:
        return float(ctx.prior_logpdf(row))
    if ctx.log_sigma_column is None:
        return _norm_logpdf(row, 0.0, ctx.prior_sd)
    j = np.atleast_1d(ctx.log_sigma_column)
    keep = ~np.isin(np.arange(row.shape[0]), j)
    v, s = row[j], ctx.prior_sd[j]
    log_halfnormal = 0.5 * np.log(2.0 / np.pi) - np.log(s) - 0.5 * np.exp(2.0 * v) / s**2
    return _norm_logpdf(row[keep], 0.0, ctx.prior_sd[keep]) + float(np.sum(log_halfnormal + v))


def birth_log_density(u: np.ndarray, mean: np.ndarray, sd: np.ndarray, ctx: MoveContext) -> float:
    """Log q(u) of the defensive birth proposal ``prior_mix * prior + (1 - prior_mix) * N``."""
    log_n = _norm_logpdf(u, mean, sd)
    if ctx.prior_mix <= 0.0:
        return log_n
    return float(
        np.logaddexp(
            np.log(ctx.prior_mix) + slot_prior_logpdf(u, ctx), np.log1p(-ctx.prior_mix) + log_n
        )
    )


# ----- data-informed birth proposal -------------------------------------------------------------
def _components(theta: np.ndarray, ctx: MoveContext):
    """Log gate (n, K) and log expert density (n, K) of the active rows ``theta`` (K, D): the
    family's one log density on the standardised scale.
    """
    p = ctx.layout.unpack(theta)
    beta0, beta1 = p["beta0_std"], p["beta1_std"]  # (K,), (d_gate, K)
    eta = (ctx.Zs @ beta1 + beta0) / ctx.temperature
    fam = get_family(ctx.family)
    free = {}
    for prm in fam.params:
        name = f"{prm.name}_std"
        free[name] = np.exp(p[f"{name}_log__"]) if prm.positive else p[name]
    canon = fam.canonical_from_free(SHORT_NUMPY, free)
    tr = Transform.identity(ctx.Xs.shape[1])
    comp = fam.log_prob(canon, ctx.Xs, ctx.ys, tr=tr, ops=SHORT_NUMPY, data=ctx.data)
    return eta, comp


def mixture_log_density(theta: np.ndarray, ctx: MoveContext) -> np.ndarray:
    """Pointwise log p(y_i | x_i) (standardised scale) of the experts in ``theta`` (K, D)."""
    eta, comp = _components(theta, ctx)
    return logsumexp(SOFTMAX.log_weights(eta, SHORT_NUMPY) + comp, axis=1)


def birth_proposal(theta: np.ndarray, ctx: MoveContext) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (both (D,)) of the Normal birth proposal given the active rows ``theta``.

    The observations are weighted by how badly the current mixture explains them,
    ``w_i ∝ exp(-l_i / 2)`` with ``l_i`` the pointwise log density, mixed half-and-half with
    uniform weights so that no single outlier decides. The new expert's centre is the weighted
    fit of the family under ``w`` (``Family.rj_birth_experts``: weighted least squares for
    Gaussian, Böhning-logistic for multinomial, IRLS for Poisson experts); its gate
    centre gives it the share ``t_i = n w_i / (K + 1)`` (clipped to [0.02, 0.98]) at every x_i
    given the K current gates (least squares on the logit scale). The sd is ``birth_scale`` times
    the sandwich standard error of each fit (gate: the prior sd / 3, at least the standard error).
    A deterministic function of ``theta``: the reverse death evaluates the same density.
    """
    n = ctx.Xs.shape[0]
    K = theta.shape[0]
    ll = mixture_log_density(theta, ctx)
    w = np.exp(log_softmax(-0.5 * ll, axis=0))
    w = 0.5 * w + 0.5 / n
    D = ctx.layout.n_columns
    mean, sd = np.zeros(D), np.zeros(D)
    # gate: share t_i given the current logits
    eta, _ = _components(theta, ctx)
    t = np.clip(n * w / (K + 1), 0.02, 0.98)
    target = ctx.temperature * (np.log(t) - np.log1p(-t) + logsumexp(eta, axis=1))
    A_gate = np.column_stack([np.ones(n), ctx.Zs])
    coef, var = weighted_lstsq(A_gate, target, np.full(n, 1.0 / n))
    resid_var = float(np.mean((target - A_gate @ coef) ** 2))
    g = 1 + ctx.Zs.shape[1]  # the gate's columns: intercept and the gate's own covariates
    mean[:g] = coef
    resid_var = resid_var if resid_var > 1e-6 else 1e-6
    sd[:g] = np.maximum(np.sqrt(var * resid_var), ctx.prior_sd[:g] / 3.0)
    fam = get_family(ctx.family)
    mean[g:], sd[g:] = fam.rj_birth_experts(ctx.Xs, ctx.ys, w, ctx.data, ctx.n_classes)
    sd = ctx.birth_scale * np.maximum(sd, 1e-3)
    return mean, sd


# ----- the moves ----------------------------------------------------------------------------------
def propose_birth(
    theta: np.ndarray, K: int, rng: np.random.Generator, ctx: MoveContext, prior_row: np.ndarray
):
    """Birth K -> K+1: slot K gets ``u ~ q(. | theta[:K])``, the defensive mixture of the prior
    (``prior_row`` is a prior draw, used with probability ``ctx.prior_mix``) and the Normal of
    :func:`birth_proposal` (or ``ctx.birth_kernel`` when set). Returns
    ``((theta_new, K + 1), -log q(u), log |J| = 0)``.
    """
    if ctx.birth_kernel is not None:
        u = ctx.birth_kernel.draw(theta[:K], ctx, rng, prior_row)
        new = theta.copy()
        new[K] = u
        return (new, K + 1), -ctx.birth_kernel.log_density(u, theta[:K], ctx), 0.0
    mean, sd = birth_proposal(theta[:K], ctx)
    if rng.uniform() < ctx.prior_mix:
        u = np.asarray(prior_row, dtype=float)
    else:
        u = mean + sd * rng.standard_normal(mean.shape)
    new = theta.copy()
    new[K] = u
    return (new, K + 1), -birth_log_density(u, mean, sd, ctx), 0.0


def propose_death(
    theta: np.ndarray, K: int, rng: np.random.Generator, ctx: MoveContext, prior_row: np.ndarray
):
    """Death K -> K-1 of the last active slot (the permutation move makes it a uniformly chosen
    expert); the freed slot takes ``prior_row``, a fresh prior draw. Returns
    ``((theta_new, K - 1), log q ratio = +log q(theta[K-1] | theta[:K-1]), 0)``.
    """
    if ctx.birth_kernel is not None:
        log_q = ctx.birth_kernel.log_density(theta[K - 1], theta[: K - 1], ctx)
    else:
        mean, sd = birth_proposal(theta[: K - 1], ctx)
        log_q = birth_log_density(theta[K - 1], mean, sd, ctx)
    new = theta.copy()
    new[K - 1] = prior_row
    return (new, K - 1), log_q, 0.0


def propose_split(theta: np.ndarray, K: int, rng: np.random.Generator, ctx: MoveContext):
    """Split K -> K+1: expert j ~ U{0..K-1} becomes slots j and K. The merge that reverses it
    picks j among the same K slots, so the pair choices cancel; the ratio is
    ``-log q(u, delta)`` and ``log |J| = -log(u (1 - u))``.
    """
    j = int(rng.integers(K))
    u = float(rng.beta(ctx.split_beta, ctx.split_beta))
    delta = ctx.split_sd[1:] * rng.standard_normal(theta.shape[1] - 1)
    t1, t2, log_jac = split_map(theta[j], u, delta)
    new = theta.copy()
    new[j], new[K] = t1, t2
    return (new, K + 1), -_split_aux_logpdf(u, delta, ctx), log_jac


def propose_merge(
    theta: np.ndarray, K: int, rng: np.random.Generator, ctx: MoveContext, prior_row: np.ndarray
):
    """Merge K -> K-1 of slots j ~ U{0..K-2} and K-1 into slot j; slot K-1 takes the prior draw
    ``prior_row``. Ratio ``+log q(u, delta)``, ``log |J| = log(u (1 - u))``.
    """
    j = int(rng.integers(K - 1))
    merged, u, delta, log_jac = merge_map(theta[j], theta[K - 1])
    new = theta.copy()
    new[j] = merged
    new[K - 1] = prior_row
    if not (0.0 < u < 1.0):  # a weight underflowed: the split could not have produced it
        return (new, K - 1), -np.inf, 0.0
    return (new, K - 1), _split_aux_logpdf(u, delta, ctx), log_jac


def propose_permutation(theta: np.ndarray, K: int, rng: np.random.Generator):
    """Uniform random permutation of the active slots: ratio 0, ``log |J| = 0``."""
    new = theta.copy()
    new[:K] = theta[rng.permutation(K)]
    return (new, K), 0.0, 0.0
