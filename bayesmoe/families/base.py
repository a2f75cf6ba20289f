"""The expert-family protocol: what every backend asks of a family, and the shared linear pieces.

A family is one module with one :class:`Family` instance. It declares

- its **free parameters** on the standardised scale (:class:`Param`: name, dims before the expert
  axis, support, which prior scale of :class:`bayesmoe.models.Priors` it takes);
- its **canonical parameters** (the mixing measure's expert variables, expert axis last) and the
  maps free → canonical (standardised) → canonical (user units) → trace variables;
- its **log density, written once** against an :class:`~bayesmoe.families._ops.Ops` (numpy,
  jax.numpy or PyTensor), in two stages: per-observation *predictors* of each expert
  (:meth:`Family.predictors`), then the component log density of y given them
  (:meth:`Family.component_log_prob`); the PyMC likelihood, the compiled JAX density, the MM
  E-step, prediction, SBC and the reversible-jump moves all call these;
- draws and means given the predictors (posterior predictive, simulation);
- the weighted M-step of the MM/EM fitter (:meth:`Family.mm_step`, monotone in the expected
  complete-data log-likelihood of each expert).

The package never compares a family's name: it asks the family (docs/families.md: the protocol
and how to add a family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bayesmoe.families._ops import NUMPY, Ops

__all__ = [
    "Family",
    "Param",
    "Transform",
    "linear_eta",
    "linear_pack",
    "linear_to_standard",
    "linear_to_user",
    "linear_unpack",
]


@dataclass(frozen=True)
class Param:
    """A free expert parameter on the standardised scale (the model variable ``{name}_std``).

    Attributes
    ----------
    name : str
        Name of the parameter (``a``, ``b``, ``sigma``); the free variable is ``{name}_std``.
    dims : tuple of str
        Dims before the expert axis (``("feature",)``, ``()``, ``("feature", "class_free")``).
    prior : str
        Field of :class:`bayesmoe.models.Priors` holding its prior scale.
    positive : bool
        HalfNormal(prior) on a log transform if True, else Normal(0, prior).
    intercept : bool
        The intercept that ``ordered=True`` constrains (ordered along the expert axis).
    """

    name: str
    dims: tuple
    prior: str
    positive: bool = False
    intercept: bool = False


@dataclass(frozen=True)
class Transform:
    """The data transform of the standardised scale (arrays, or graph inputs on PyTensor).

    Experts see ``x_s = (x - x_center) / x_scale``; a family whose response is standardised
    (``Family.standardizes_response``) sees ``y_s = (y - y_center) / y_scale``.
    """

    x_center: Any
    x_scale: Any
    y_center: Any = 0.0
    y_scale: Any = 1.0

    @classmethod
    def identity(cls, d: int) -> Transform:
        return cls(np.zeros(d), np.ones(d), 0.0, 1.0)


def _event_letters(n: int) -> str:
    return "mlo"[:n]


def linear_eta(xp, X, a, b, n_event: int):
    """``a . x + b`` per observation: ``a`` (..., d, *E, K), ``b`` (..., *E, K) with
    ``n_event = len(E)``; returns (..., n, *E, K).
    """
    e = _event_letters(n_event)
    eta = xp.einsum(f"nd,...d{e}k->...n{e}k", X, a)
    index = (Ellipsis, None) + (slice(None),) * (n_event + 1)
    return eta + b[index]


def linear_to_user(xp, a, b, tr: Transform, n_event: int, scale=1.0, center=0.0):
    """User-unit slopes and intercepts of a standardised linear predictor (exact).

    With ``x_s = (x - c) / s`` and a response scale ``scale``/``center`` (Gaussian experts:
    ``y = center + scale * y_s``): ``a_u = scale * a / s``, ``b_u = center + scale * b - a_u . c``.
    """
    e = _event_letters(n_event)
    shape = (slice(None),) + (None,) * (n_event + 1)
    a_u = scale * a / tr.x_scale[shape]
    b_u = center + scale * b - xp.einsum(f"d,...d{e}k->...{e}k", tr.x_center, a_u)
    return a_u, b_u


def linear_to_standard(a_u, b_u, tr: Transform, n_event: int, scale=1.0, center=0.0):
    """Inverse of :func:`linear_to_user` (numpy)."""
    e = _event_letters(n_event)
    shape = (slice(None),) + (None,) * (n_event + 1)
    x_center = np.asarray(tr.x_center, dtype=float)
    a = np.asarray(a_u) * np.asarray(tr.x_scale, dtype=float)[shape] / scale
    b = (np.asarray(b_u) - center + np.einsum(f"d,...d{e}k->...{e}k", x_center, a_u)) / scale
    return a, b


class Family:
    """Base class of the expert families (see the module docstring for the protocol).

    Subclasses set the class attributes and implement the methods that raise
    ``NotImplementedError`` here.
    """

    #: the family's name in the Python API, the CLI, the study spec and the trace attrs
    name: ClassVar[str]
    #: one line for error messages and docs
    description: ClassVar[str]
    #: free parameters on the standardised scale
    params: ClassVar[tuple[Param, ...]]
    #: canonical (measure) variables and their dims, expert axis last
    canonical_dims: ClassVar[dict[str, tuple]]
    #: user-unit trace variables (model Deterministics) and their dims
    trace_dims: ClassVar[dict[str, tuple]]
    #: one line per trace variable saying what it means in the user's units (summary legends)
    trace_descriptions: ClassVar[dict[str, str]] = {}
    #: dims of the trace variables that hold a fixed reference entry (dim -> index), e.g. the
    #: reference class of multinomial-logistic experts, whose slopes and intercept are pinned
    #: to 0: summaries leave these constants out
    reference_index: ClassVar[dict[str, int]] = {}
    #: the response is standardised before fitting (real-valued responses)
    standardizes_response: ClassVar[bool] = False
    #: the standardised scale has a response centre/scale (``y_center``, ``y_scale`` data)
    transforms_response: ClassVar[bool] = False
    #: the Richardson–Green hierarchical prior applies (normal mixtures)
    hierarchical_prior: ClassVar[bool] = False
    #: the family has classes (a ``class`` coordinate)
    has_classes: ClassVar[bool] = False
    #: the family reads a per-row offset (log-exposure) from the data
    takes_offset: ClassVar[bool] = False
    #: the per-row data the family's density reads besides X and y (``"offset"``, ``"trials"``);
    #: every entry point accepts them as keywords of the same names
    row_data: ClassVar[tuple[str, ...]] = ()
    #: canonical variables that are positive (variances): compared on the log scale
    positive_canonical: ClassVar[tuple[str, ...]] = ()
    #: over-fitted Voronoi cells use the r̄(m) exponents of Gaussian experts (docs/math.md §4.3);
    #: otherwise squared norms, as for multinomial experts
    voronoi_rbar: ClassVar[bool] = False
    #: canonical variables that enter the dendrogram's merge distance through a plain norm
    #: (the others squared; docs/math.md §7)
    dendrogram_linear: ClassVar[tuple[str, ...]] = ()
    #: y takes integer values (quantiles are counts)
    discrete: ClassVar[bool] = False
    #: number of event axes of the linear predictor (categorical: 1, the class axis)
    n_event: ClassVar[int] = 0
    #: PyMC CustomDist signature of (gate logits, *predictors) -> y
    signature: ClassVar[str]
    #: dtype of y in the PyMC model
    y_dtype: ClassVar[str] = "floatX"
    #: name of the compiled MM kernel set in :mod:`bayesmoe.inference.mle.mm_numba` (None: numpy)
    numba_kernel: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<bayesmoe family {self.name!r}>"

    # ----- data -----------------------------------------------------------------------------
    def check_response(self, y, n_obs: int, classes=None) -> tuple[np.ndarray, list | None]:
        """Validated response: (y as the family codes it, class labels or None)."""
        raise NotImplementedError

    def response_center_scale(self, y, offset=None) -> tuple[float, float]:
        """Centre and scale of the standardised scale's response map (see :class:`Transform`)."""
        return 0.0, 1.0

    def standard_data(self, y, tr: Transform, offset=None) -> tuple[np.ndarray, dict]:
        """``(y, data)`` as the standardised-scale density sees them (MM, reversible jump):
        with them, :meth:`predictors` under an identity response transform give the density
        of the standardised response.
        """
        return np.asarray(y), {"offset": offset}

    def dim_sizes(self, d: int, n_classes: int = 0) -> dict[str, int]:
        """Sizes of the event dims (``feature`` and, for families with classes, ``class``,
        ``class_free``).
        """
        out = {"feature": d}
        if self.has_classes:
            out.update({"class": n_classes, "class_free": n_classes - 1})
        return out

    def n_params(self, d: int, n_classes: int = 0) -> int:
        """Free parameters of one expert."""
        sizes = self.dim_sizes(d, n_classes)
        return int(sum(np.prod([sizes[x] for x in p.dims], dtype=int) for p in self.params))

    def example_response(self, n: int, n_classes: int = 0) -> np.ndarray:
        """A valid response of ``n`` rows that carries no information (SBC's stand-in y)."""
        raise NotImplementedError

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free: dict) -> dict:
        """Canonical parameters on the standardised scale from the free ``*_std`` values."""
        raise NotImplementedError

    def free_from_canonical(self, canon: dict) -> dict:
        """Inverse of :meth:`canonical_from_free` (numpy; starting points)."""
        raise NotImplementedError

    def to_user(self, xp, canon: dict, tr: Transform) -> dict:
        """Canonical parameters in the user's units from the standardised ones (exact)."""
        raise NotImplementedError

    def to_standard(self, canon: dict, tr: Transform) -> dict:
        """Inverse of :meth:`to_user` (numpy)."""
        raise NotImplementedError

    def trace_from_canonical(self, xp, canon: dict) -> dict:
        """The user-unit trace variables (PyMC Deterministics) from canonical parameters."""
        return dict(canon)

    def canonical_from_trace(self, values: dict) -> dict:
        """Inverse of :meth:`trace_from_canonical` (numpy)."""
        return {k: values[k] for k in self.canonical_dims}

    # ----- atoms (diagnostics) ----------------------------------------------------------------
    def atom_blocks(self, canon: dict, S: int, K: int) -> dict:
        """Gauge-fixed parameter blocks of every expert, (S, K, ·), from canonical arrays with
        one flattened sample axis S (Voronoi cells, dendrogram, cross-K relabelling).
        """
        out = {}
        for name, dims in self.canonical_dims.items():
            v = np.asarray(canon[name])
            v = v.reshape((S,) + v.shape[v.ndim - len(dims) :])
            out[name] = np.moveaxis(v, -1, 1).reshape(S, K, -1)
        return out

    def atom_labels(self, feature, classes=None) -> dict:
        """Column labels of :meth:`atom_blocks`, per block."""
        out = {}
        for name, dims in self.canonical_dims.items():
            if dims == ("expert",):
                out[name] = [name]
            elif dims == ("feature", "expert"):
                out[name] = [f"{name}[{f}]" for f in feature]
            else:
                raise NotImplementedError(f"{self.name}: labels of {name}{dims}")
        return out

    # ----- the density, written once --------------------------------------------------------
    def predictors(self, ops: Ops, canon: dict, X, tr: Transform, data: dict | None = None):
        """Per-observation parameters of each expert's distribution of y in the user's units,
        as a tuple (the PyMC CustomDist's inputs after the gate logits).
        """
        raise NotImplementedError

    def component_log_prob(self, ops: Ops, y, *predictors):
        """Log density of y under every expert, shape (..., n, K)."""
        raise NotImplementedError

    def user_predictors(self, canon: dict, X, data: dict | None = None):
        """:meth:`predictors` of canonical parameters in the user's units at inputs ``X``
        (numpy): what prediction, simulation and the diagnostics evaluate.
        """
        return self.predictors(NUMPY, canon, X, Transform.identity(np.shape(X)[1]), data)

    def log_prob(
        self, canon: dict, X, y, *, tr: Transform | None = None, ops: Ops = NUMPY, data=None
    ):
        """``log p_k(y_i | x_i)``, shape (..., n, K): :meth:`component_log_prob` of
        :meth:`predictors` (identity transform: ``canon`` in the user's units).
        """
        tr = tr if tr is not None else Transform.identity(np.shape(X)[1])
        return self.component_log_prob(ops, y, *self.predictors(ops, canon, X, tr, data))

    # ----- draws and means (numpy) ----------------------------------------------------------
    def draw(self, rng: np.random.Generator, k: np.ndarray, *predictors) -> np.ndarray:
        """Draws of y given the chosen expert ``k`` (shape (..., n)) and the predictors."""
        raise NotImplementedError

    def mean(self, *predictors) -> np.ndarray:
        """Mean of y under each expert: (..., n, K); for families with classes the class
        probabilities (..., n, M, K).
        """
        raise NotImplementedError

    def cdf(self, y, *predictors) -> np.ndarray:
        """P(Y <= y) under each expert (numpy; families without classes)."""
        raise NotImplementedError

    def quantile_bounds(self, *predictors) -> tuple[np.ndarray, np.ndarray]:
        """Per-expert values below and above nearly all the mass (bisection brackets)."""
        raise NotImplementedError

    # ----- reversible jump (docs/math.md §3) ------------------------------------------------------
    #: birth proposals the family offers; the first is the default ("normal": a Normal around a
    #: weighted fit to the observations the mixture explains worst)
    rj_births: ClassVar[tuple[str, ...]] = ("normal",)

    def rj_birth_experts(self, Xs, y, w, data: dict, n_classes: int = 0):
        """Mean and sd of the birth proposal's expert columns (the slot row's value-space
        coordinates after the gate's, in :attr:`params` order): a fit to the observations
        weighted by ``w``. Must be a deterministic function of its arguments.
        """
        raise NotImplementedError

    def mixture_distance(self, wp, preds_p, wq, preds_q, *, kind: str, n_grid: int = 17):
        """Squared Hellinger distance (``kind="hellinger"``) or total variation (``"tv"``)
        between the mixtures ``sum_k w_k p_k`` of two sets of experts, per row: weights (B, K),
        predictors (B, K) each; returns (B,). Discrete families: exact sums over the counts
        below the largest :meth:`quantile_bounds` (the mass above is below 1e-12).
        """
        if not self.discrete:
            raise NotImplementedError(f"{self.name}: mixture distance")
        top = max(
            float(np.max(self.quantile_bounds(*preds_p)[1])),
            float(np.max(self.quantile_bounds(*preds_q)[1])),
        )
        grid = np.arange(int(np.ceil(top)) + 1, dtype=float)
        out = np.empty(wp.shape[0])
        step = max(1, 2_000_000 // (grid.size * max(wp.shape[-1], wq.shape[-1])))
        for lo in range(0, wp.shape[0], step):
            sl = slice(lo, lo + step)
            pmf = []
            for w, preds in ((wp, preds_p), (wq, preds_q)):
                lp = self.component_log_prob(NUMPY, grid, *[v[sl, None, :] for v in preds])
                pmf.append(np.einsum("bmk,bk->bm", np.exp(lp), w[sl]))
            if kind == "hellinger":
                out[sl] = np.clip(1.0 - np.sqrt(pmf[0] * pmf[1]).sum(-1), 0.0, 1.0)
            else:
                out[sl] = 0.5 * np.abs(pmf[0] - pmf[1]).sum(-1)
        return out

    # ----- maximum likelihood (MM/EM, docs/math.md §8) ---------------------------------------
    def mm_blocks(self, D: int, K: int, M: int) -> dict[str, tuple]:
        """Packed blocks of the expert parameters in the MM fitter: name -> shape (per start)."""
        raise NotImplementedError

    def mm_unpack(self, blocks: dict) -> dict:
        """MM blocks (leading start axis; rows of ``D`` = intercept, slopes) -> canonical
        standardised parameters.
        """
        raise NotImplementedError

    def mm_pack(self, canon: dict) -> dict:
        """Inverse of :meth:`mm_unpack`."""
        raise NotImplementedError

    def mm_step(self, prob, blocks: dict, tau: np.ndarray, newton: int) -> dict:
        """One weighted M-step of every expert given responsibilities ``tau`` (S, n, K); must
        not decrease each expert's expected complete-data log-likelihood (Newton steps are
        allowed where the caller's safeguard checks the objective).
        """
        raise NotImplementedError

    def mm_prepare(self, prob, M: int) -> None:
        """Constant pieces of the family's M-step, stored on the MM problem (none by default)."""

    def mm_project(self, blocks: dict, prob) -> dict:
        """Blocks moved into the fitter's feasible set (e.g. above a variance floor)."""
        return blocks

    def mm_init_features(self, y, n_classes: int) -> np.ndarray:
        """Columns of the response the k-means initialiser clusters on (with x)."""
        return np.asarray(y, dtype=float)[:, None]

    def mm_init_columns(self, prob) -> np.ndarray:
        """:meth:`mm_init_features` of the MM problem's response (a family whose per-row data
        change what the response means, e.g. binomial trials, overrides this).
        """
        return self.mm_init_features(prob.y, prob.layout.M)


def linear_unpack(A: np.ndarray) -> dict:
    """The MM fitter's coefficient block ``A`` (start axis first, rows: intercept, slopes) as
    the canonical ``{"a": slopes, "b": intercepts}`` of a linear predictor.
    """
    return {"a": A[:, 1:], "b": A[:, 0]}


def linear_pack(canon: dict) -> np.ndarray:
    """Inverse of :func:`linear_unpack`."""
    return np.concatenate([np.asarray(canon["b"])[:, None], np.asarray(canon["a"])], axis=1)
