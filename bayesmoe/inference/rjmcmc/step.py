"""The reversible-jump step method for the padded random-K MoE (PyMC's step contract).

Combine with NUTS for the continuous parameters::

    model, info = build_random_k_model(X, y, max_experts=6)
    with model:
        rj = ReversibleJump(info=info)
        trace = pm.sample(step=[rj, pm.NUTS(continuous_vars)])

Target. In the padded space the posterior is
``pi(K, theta) ∝ p(K) prod_{k < K_max} p(theta_k) L(y | theta_{0..K-1})``. A move that changes
K changes at most the slots it touches; the prior factors of inactive slots that a birth or split
overwrites, or that a death or merge redraws from the prior, cancel against the proposal, so the
acceptance ratio only needs the *active target*
``log p(K) + sum_{k < K} log p(theta_k) + log L(y | theta_{0..K-1})``, compiled once in
``__init__`` from the model itself (per-slot prior terms, with the log-transform Jacobian of
``sigma``, and the observed log-likelihood). Each step first applies an exact random permutation
of the active slots, then one trans-dimensional move (birth, death, split or merge) chosen by
:func:`~bayesmoe.inference.rjmcmc.moves.move_probabilities`, accepted with probability
``min(1, exp(log_alpha))``,

    log_alpha = Δ active target + log q ratio + log |J| + log P(reverse move) − log P(move).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytensor.tensor as pt
from pymc.model import modelcontext
from pymc.step_methods.compound import BlockedStep, Competence
from pymc.util import get_random_generator, get_value_vars_from_user_vars

from bayesmoe.families import FAMILIES, get_family
from bayesmoe.inference.rjmcmc.moves import (
    MOVES,
    MoveContext,
    SlotLayout,
    move_probabilities,
    propose_birth,
    propose_death,
    propose_merge,
    propose_permutation,
    propose_split,
)
from bayesmoe.models.random_k import K_VAR, slot_prior_draw, slot_prior_logpdf
from bayesmoe.models.spec import ModelSpec

__all__ = ["DEFAULT_SPLIT_SD", "SCALE_GRID", "ReversibleJump"]

#: Default sd of the split differences ``delta`` per prior group (standardised value space).
DEFAULT_SPLIT_SD = {
    "gate_intercept": 1.0,  # unused: the gate intercept is split by the weight share u
    "gate_slope": 1.0,
    "expert_slope": 0.5,
    "expert_intercept": 0.5,
    "noise": 0.3,
    "dispersion": 0.3,  # log kappa of negative binomial experts
    "tail": 0.3,  # log sqrt(2 / nu) of Student-t experts
}
#: Multipliers of the proposal scales tried during tuning (one grid per move family).
SCALE_GRID = 2.0 ** np.arange(-3, 4)
_MIN_TRIES = 5
_MOVE_NAMES = {code: name for name, code in MOVES.items()}


class ReversibleJump(BlockedStep):
    """Reversible-jump moves on the number of experts of a padded random-K MoE.

    Parameters
    ----------
    vars : list, optional
        Variables the step updates; default (and required): the discrete ``n_experts_index`` and
        every slot variable of the model.
    info : ModelSpec
        The second return of :func:`bayesmoe.models.random_k.build_random_k_model`.
    p_birth_death : float
        Probability of a birth/death move (else split/merge), default 0.5.
    split_sd : dict, optional
        sd of the split differences per prior group (see ``DEFAULT_SPLIT_SD``).
    split_beta : float
        ``u ~ Beta(split_beta, split_beta)`` is the weight share of a split (default 2).
    birth_scale : float
        Multiplier of the data-derived sd of the birth proposal (default 1).
    birth_prior_mix : float
        Weight of the prior in the defensive birth proposal (default 0.5): it keeps births and
        deaths mixing where the data-informed Normal is far from the posterior (and with the
        likelihood off, where the posterior is the prior). 1 gives the naive prior-drawn birth.
        On S-B (n = 1000, K_max = 6) 0.5 gave 1.5x the ESS of K of 0.1 (benchmarks/README.md).
    birth : {"auto", "normal", "anchors"}
        Birth proposal: "normal" is the Normal around one weighted fit
        (:func:`~bayesmoe.inference.rjmcmc.moves.birth_proposal`); "anchors" the anchor-cell
        mixture of :class:`~bayesmoe.inference.rjmcmc.categorical.AnchorBirth` (categorical
        experts only: class logits from the class frequencies of the observations the new
        expert would take). "auto" (default): "anchors" for categorical experts, else "normal".
    n_anchors : int
        Number of anchors of the "anchors" birth (default 8).
    moves_per_step : int
        Trans-dimensional moves per call of ``step`` (each preceded by a permutation), default 1.
        They are cheap next to a NUTS iteration, so several per iteration raise the effective
        number of K updates per iteration.
    tune : bool
        Adapt one multiplier of the birth sd and one of the split sds during tuning only: each
        tuning proposal draws its multiplier from ``SCALE_GRID`` (2^-3 .. 2^3) at random (a valid
        mixture of kernels), and after tuning the multiplier with the highest mean acceptance
        probability is kept. (Acceptance of a trans-dimensional move is not monotone in the
        proposal scale, so the usual "raise the scale when acceptance is high" rule diverges.)
    model : pymc.Model, optional
    rng : RandomGenerator, optional
        Seeded generator; PyMC replaces it per chain through ``setup_chain``.
    compile_kwargs : dict, optional
        Passed to :meth:`pymc.Model.compile_fn`.

    Notes
    -----
    Sample stats (scalars, as PyMC's trace backends require): ``current_n_experts`` (K when the
    step starts); for the step's last move ``move`` (0 birth, 1 death, 2 split, 3 merge, -1 none
    when K_max = 1), ``proposed_n_experts``, ``accepted``, ``accept`` (the acceptance
    probability) and ``log_accept_ratio``; counts over all moves of the step
    ``proposed_<move>`` and ``accepted_<move>``; and ``birth_scale``, ``split_scale`` (the
    multipliers in use) and ``tune``.

    Examples
    --------
    >>> import pymc as pm
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc import ReversibleJump
    >>> X, y, _ = simulate("S-B", n=40, random_seed=0)
    >>> model, info = build_random_k_model(X, y, max_experts=3)
    >>> step = ReversibleJump(info=info, model=model, rng=0)
    >>> point, stats = step.step(model.initial_point())
    >>> stats[0]["current_n_experts"], stats[0]["proposed_n_experts"] in (1, 2)
    (1, True)
    """

    name = "reversible_jump"
    default_blocked = True
    stats_dtypes_shapes: ClassVar[dict] = {
        "move": (np.int64, []),
        "current_n_experts": (np.int64, []),
        "proposed_n_experts": (np.int64, []),
        "accepted": (bool, []),
        "accept": (np.float64, []),
        "log_accept_ratio": (np.float64, []),
        "birth_scale": (np.float64, []),
        "split_scale": (np.float64, []),
        "tune": (bool, []),
        **{f"{kind}_{m}": (np.int64, []) for m in MOVES for kind in ("proposed", "accepted")},
    }

    def __init__(
        self,
        vars=None,
        *,
        info: ModelSpec,
        p_birth_death: float = 0.5,
        split_sd: dict | None = None,
        split_beta: float = 2.0,
        birth_scale: float = 1.0,
        birth_prior_mix: float = 0.5,
        moves_per_step: int = 1,
        birth: str = "auto",
        n_anchors: int = 8,
        tune: bool = True,
        model=None,
        rng=None,
        compile_kwargs: dict | None = None,
        blocked: bool = True,
    ):
        model = modelcontext(model)
        if not (isinstance(info, ModelSpec) and info.kind == "slots"):
            raise TypeError(
                "`info` must be the ModelSpec returned by build_random_k_model; got "
                f"{getattr(info, 'kind', type(info).__name__)!r}."
            )
        if info.prior_pmf is None:
            raise ValueError(
                "The model has a fixed number of experts (built with fixed_experts=...); the "
                "reversible-jump step needs the random-K model (fixed_experts=None)."
            )
        if not (0.0 <= p_birth_death <= 1.0):
            raise ValueError(f"`p_birth_death` must be in [0, 1]; got {p_birth_death!r}.")
        if not (0.0 <= birth_prior_mix <= 1.0):
            raise ValueError(f"`birth_prior_mix` must be in [0, 1]; got {birth_prior_mix!r}.")
        if not (split_beta > 0 and birth_scale > 0):
            raise ValueError(
                f"`split_beta` and `birth_scale` must be positive; got {split_beta!r}, "
                f"{birth_scale!r}."
            )
        needed = {K_VAR, *(name for name, _ in info.slot_vars)}
        if vars is None:
            vars = [v for v in model.value_vars if v.name in needed]
        else:
            vars = get_value_vars_from_user_vars(vars, model)
        missing = needed - {v.name for v in vars}
        if missing:
            raise ValueError(
                f"The reversible-jump step must update {sorted(needed)}; missing "
                f"{sorted(missing)}. Pass vars=None to take them all."
            )
        self.vars = vars
        self.info = info
        self.K_max = info.max_experts
        self.log_pmf = np.log(info.prior_pmf)
        self.p_birth_death = float(p_birth_death)
        self.layout = SlotLayout(tuple(info.slot_vars), tuple(info.slot_groups))
        groups = self.layout.column_groups
        sds = {**DEFAULT_SPLIT_SD, **(split_sd or {})}
        unknown = set(split_sd or {}) - set(DEFAULT_SPLIT_SD)
        if unknown:
            raise ValueError(
                f"Unknown `split_sd` groups {sorted(unknown)}; expected among "
                f"{sorted(DEFAULT_SPLIT_SD)}."
            )
        self._split_sd0 = np.array([sds[g] for g in groups], dtype=float)
        self._prior_sd = np.array([getattr(info.priors, g) for g in groups], dtype=float)
        self._birth_scale0 = float(birth_scale)
        self._split_beta = float(split_beta)
        self._prior_mix = float(birth_prior_mix)
        if (
            isinstance(moves_per_step, bool)
            or not isinstance(moves_per_step, (int, np.integer))
            or moves_per_step < 1
        ):
            raise ValueError(f"`moves_per_step` must be an int >= 1; got {moves_per_step!r}.")
        self.moves_per_step = int(moves_per_step)
        fam = get_family(info.family)
        positive = [f"{p.name}_std_log__" for p in fam.params if p.positive]
        starts = np.cumsum([0, *self.layout.sizes])
        names = [name for name, _ in info.slot_vars]
        cols = tuple(int(starts[names.index(name)]) for name in positive)
        self._log_sigma_column = (cols[0] if len(cols) == 1 else cols) if cols else None
        if birth not in ("auto", "normal", "anchors"):
            raise ValueError(f"`birth` must be 'auto', 'normal' or 'anchors'; got {birth!r}.")
        if birth == "auto":
            birth = fam.rj_births[0]
        if birth not in fam.rj_births:
            offered = [f for f in FAMILIES if birth in get_family(f).rj_births]
            raise ValueError(
                f"birth={birth!r} is for {' and '.join(offered)} experts; {fam.name} experts take "
                f"one of {fam.rj_births} (or 'auto')."
            )
        if (
            isinstance(n_anchors, bool)
            or not isinstance(n_anchors, (int, np.integer))
            or n_anchors < 1
        ):
            raise ValueError(f"`n_anchors` must be an int >= 1; got {n_anchors!r}.")
        self.birth = birth
        self.birth_kernel = None
        if birth == "anchors":
            from bayesmoe.inference.rjmcmc.categorical import AnchorBirth

            self.birth_kernel = AnchorBirth(self._context(1.0, 1.0), n_anchors=int(n_anchors))
        self.tune = bool(tune)
        self._tune_default = bool(tune)
        self.reset_tuning()

        # log-densities compiled once: per-slot prior (value space, with Jacobians) and log L
        values = {v.name: v for v in model.value_vars}
        slot_rvs = [model.values_to_rvs[values[name]] for name, _ in info.slot_vars]
        terms = model.logp(vars=slot_rvs, sum=False, jacobian=True)
        slot_lp = sum(t.sum(axis=tuple(range(t.ndim - 1))) if t.ndim > 1 else t for t in terms)
        observed = [rv for rv in model.observed_RVs]
        loglik = model.logp(vars=observed) if observed else pt.as_tensor(0.0)
        self._inputs = [v.name for v in model.value_vars]
        self._logp_fn = model.compile_fn(
            [slot_lp, loglik],
            inputs=model.value_vars,
            on_unused_input="ignore",
            point_fn=False,
            **(compile_kwargs or {}),
        )
        self.rng = get_random_generator(rng)

    # ----- tuning ---------------------------------------------------------------------------------
    def reset_tuning(self):
        """Reset the adapted proposal scales to their initial values."""
        self._mult = {"birth": 1.0, "split": 1.0}
        self._grid_sum = {f: np.zeros(SCALE_GRID.size) for f in ("birth", "split")}
        self._grid_n = {f: np.zeros(SCALE_GRID.size, dtype=int) for f in ("birth", "split")}

    def setup_chain(self, rng, tune: int, draws: int) -> None:
        super().setup_chain(rng, tune, draws)
        self.tune = self._tune_default and tune > 0
        self.reset_tuning()

    def _record(self, family: str, index: int, accept_prob: float) -> None:
        self._grid_sum[family][index] += accept_prob
        self._grid_n[family][index] += 1
        n = self._grid_n[family]
        if np.all(n >= _MIN_TRIES):
            self._mult[family] = float(SCALE_GRID[np.argmax(self._grid_sum[family] / n)])

    def _context(self, birth_mult: float, split_mult: float, point=None) -> MoveContext:
        info = self.info
        prior_logpdf = None
        if info.priors.hierarchical or info.priors.dirichlet_weights:  # given the hyperparameters
            prior_logpdf = lambda row: slot_prior_logpdf(  # noqa: E731
                info, self.layout.unpack(row[None, :]), point
            )[0]
        return MoveContext(
            family=info.family,
            Xs=info.Xs,
            Zs=info.Zs,
            ys=info.ys,
            temperature=info.temperature,
            n_classes=info.n_classes,
            layout=self.layout,
            prior_sd=self._prior_sd,
            split_sd=self._split_sd0 * split_mult,
            birth_scale=self._birth_scale0 * birth_mult,
            split_beta=self._split_beta,
            log_sigma_column=self._log_sigma_column,
            prior_mix=self._prior_mix,
            data=info.data,
            birth_kernel=getattr(self, "birth_kernel", None),
            prior_logpdf=prior_logpdf,
        )

    # ----- target ---------------------------------------------------------------------------------
    def active_logp(self, point: dict) -> float:
        """Log p(K) + sum of the active slots' prior log densities + log-likelihood."""
        slot_lp, loglik = self._logp_fn(**{k: point[k] for k in self._inputs})
        K = int(point[K_VAR]) + 1
        return float(self.log_pmf[K - 1] + slot_lp[:K].sum() + loglik)

    def _point(self, point: dict, theta: np.ndarray, K: int) -> dict:
        new = dict(point)
        new.update(self.layout.unpack(theta))
        new[K_VAR] = np.asarray(K - 1, dtype=np.asarray(point[K_VAR]).dtype)
        return new

    def _prior_row(self, point=None) -> np.ndarray:
        draw = slot_prior_draw(self.info, self.rng, size=1, point=point)
        return self.layout.pack(draw)[0]

    # ----- the step -------------------------------------------------------------------------------
    def step(self, point: dict):
        """``moves_per_step`` rounds of (a permutation of the active slots, one
        trans-dimensional move).
        """
        birth_mult, split_mult, grid_index = self._mult["birth"], self._mult["split"], -1
        if self.tune:
            grid_index = int(self.rng.integers(SCALE_GRID.size))
            birth_mult = split_mult = float(SCALE_GRID[grid_index])
        ctx = self._context(birth_mult, split_mult, point)
        counts = {f"{kind}_{m}": 0 for m in MOVES for kind in ("proposed", "accepted")}
        K_start = int(point[K_VAR]) + 1
        current = self.active_logp(point)
        for _ in range(self.moves_per_step):
            point, current, out = self._one_move(point, current, ctx)
            if out["move"] < 0:
                continue
            name = _MOVE_NAMES[out["move"]]
            counts[f"proposed_{name}"] += 1
            counts[f"accepted_{name}"] += int(out["accepted"])
            if self.tune:
                family = "birth" if name in ("birth", "death") else "split"
                self._record(family, grid_index, out["accept"])
        stats = {
            **out,
            "current_n_experts": K_start,
            **counts,
            "birth_scale": self._birth_scale0 * birth_mult,
            "split_scale": split_mult,
            "tune": self.tune,
        }
        return point, [stats]

    def _one_move(self, point: dict, current: float, ctx: MoveContext):
        K = int(point[K_VAR]) + 1
        theta = self.layout.pack(point)
        (theta, _), _, _ = propose_permutation(theta, K, self.rng)
        point = self._point(point, theta, K)  # the active target is permutation invariant
        out = {
            "move": -1,
            "current_n_experts": K,
            "proposed_n_experts": K,
            "accepted": False,
            "accept": 0.0,
            "log_accept_ratio": -np.inf,
        }
        probs = move_probabilities(K, self.K_max, self.p_birth_death)
        names = list(probs)
        p = np.array([probs[name] for name in names])
        if p.sum() <= 0:
            return point, current, out
        move = names[int(self.rng.choice(len(names), p=p / p.sum()))]
        if move == "birth":
            (new_theta, K_new), log_q, log_jac = propose_birth(
                theta, K, self.rng, ctx, self._prior_row(point)
            )
        elif move == "death":
            (new_theta, K_new), log_q, log_jac = propose_death(
                theta, K, self.rng, ctx, self._prior_row(point)
            )
        elif move == "split":
            (new_theta, K_new), log_q, log_jac = propose_split(theta, K, self.rng, ctx)
        else:
            (new_theta, K_new), log_q, log_jac = propose_merge(
                theta, K, self.rng, ctx, self._prior_row(point)
            )
        reverse = {"birth": "death", "death": "birth", "split": "merge", "merge": "split"}[move]
        p_rev = move_probabilities(K_new, self.K_max, self.p_birth_death)[reverse]
        new_point = self._point(point, new_theta, K_new)
        proposed = self.active_logp(new_point)
        log_alpha = proposed - current + log_q + log_jac + np.log(p_rev) - np.log(probs[move])
        if not np.isfinite(log_alpha):
            log_alpha = -np.inf
        accept_prob = float(np.exp(min(0.0, log_alpha)))
        accepted = bool(np.log(self.rng.uniform()) < log_alpha)
        out.update(
            {
                "move": MOVES[move],
                "proposed_n_experts": K_new,
                "accepted": accepted,
                "accept": accept_prob,
                "log_accept_ratio": float(log_alpha),
            }
        )
        if accepted:
            return new_point, proposed, out
        return point, current, out

    @staticmethod
    def competence(var, has_grad):
        return Competence.INCOMPATIBLE
