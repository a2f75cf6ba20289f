"""Maximum-likelihood fit of a softmax-gated mixture of experts by MM (docs/math.md §8).

:func:`fit_mle` standardises the data (:class:`bayesmoe.scaling.Standardizer`), runs a batch of
starts as one vectorised iteration (numerical kernels in :mod:`.mm_updates` and,
compiled, :mod:`.mm_numba`), optionally accelerated by SQUAREM with a monotone
fall-back, and returns the best start as a mixing measure in the user's units.

The map of one iteration is the E-step followed by one Newton step of the gate and of every
categorical expert on their expected complete-data log-likelihood (Gaussian experts: exact weighted
least squares). The Newton point is kept only when the observed objective did not decrease;
otherwise the MM map (Böhning-bound steps, which cannot decrease it) is taken. So the contract,
monotone ascent of the (ridge-penalised) log-likelihood at every iteration, holds for both paths;
:func:`monotone_violations` checks a trace for it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from bayesmoe._validation import (
    check_class_codes,
    check_int,
    check_X,
    keywords_checked,
    n_parameters,
)
from bayesmoe.families import get_family
from bayesmoe.gates import check_gate, stored_name, transform_of
from bayesmoe.inference.mle import mm_updates as mu
from bayesmoe.inference.mle.mm_engine import ENGINES, _Engine, _iterate
from bayesmoe.inference.mle.mm_starts import (
    _initial_theta,
    _measure_from_theta,  # noqa: F401 - imported from here by tests and benchmarks/mm_speed.py
    _parts_from_theta,
    _theta_from_measure,
)
from bayesmoe.measure import MeasureParts
from bayesmoe.models.spec import check_gate_X, check_offset, check_trials
from bayesmoe.scaling import Standardizer

__all__ = ["MMResult", "count_parameters", "fit_mle", "monotone_violations"]

#: relative round-off allowed by :func:`monotone_violations`: a drop counts only when larger than
#: ROUNDOFF_RTOL·max(1, |objective|). Summing n log-terms in double precision loses about
#: n·eps relative; 1e-10 covers n up to ~10^5 with a margin.
ROUNDOFF_RTOL = 1e-10
#: initial SQUAREM steplength bound |α| <= cap (adapted per start, mm_numba._squarem)
SQUAREM_CAP0 = 1.0


@dataclass(frozen=True)
class Tuning:
    """Developer settings of the fitter, not options of :func:`fit_mle` (changed only through
    :func:`tuning`, by tests' must-fail twins and the benchmarks' "before" rows).

    ``newton`` and ``newton_sub``: Newton level of the full-data and of the subsample iteration
    (0 MM maps only, 1 Newton gate steps, 2 also categorical experts; the subsample uses 1: on
    S-D, n = 16000, Newton expert steps on 2000 rows overfit them and led the survivors to a lower
    optimum); ``cap0``: the initial SQUAREM steplength bound (``inf``: unbounded, the MM path
    before issue 10); ``step_scale``: a factor on the M-steps' moves (1; other values break the
    monotone ascent on purpose).
    """

    step_scale: float = 1.0
    newton: int = 2
    newton_sub: int = 1
    cap0: float = SQUAREM_CAP0


_TUNING: ContextVar[Tuning] = ContextVar("mm_tuning", default=Tuning())  # noqa: B039 - frozen


@contextmanager
def tuning(**changes):
    """Run the fits inside the block with other :class:`Tuning` settings.

    Examples
    --------
    >>> from bayesmoe.inference.mle import mm
    >>> with mm.tuning(newton=0):
    ...     mm._TUNING.get().newton
    0
    """
    token = _TUNING.set(replace(_TUNING.get(), **changes))
    try:
        yield
    finally:
        _TUNING.reset(token)


class _LazyMeasure:
    """``MMResult.measure_``: holds a Dataset or the :class:`~bayesmoe.measure.MeasureParts` of
    one, made into the Dataset on first access (a process's first xarray object costs ~0.3 s
    when dask is installed: xarray imports ``dask.array``; a small fit takes ~0.01 s).
    """

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:  # dataclasses ask for a default: there is none
            raise AttributeError(self.slot[1:])
        value = obj.__dict__[self.slot]
        if isinstance(value, MeasureParts):
            value = obj.__dict__[self.slot] = value.dataset()
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value

    @staticmethod
    def peek(obj):
        """The stored value (Dataset or parts), without building: ``.attrs`` and ``.sizes``."""
        return obj.__dict__["_measure_"]


@dataclass
class MMResult:
    """Result of :func:`fit_mle`. Information criteria follow "lower is better".

    Attributes
    ----------
    measure_ : xarray.Dataset
        Fitted mixing measure in the user's units (no sample dims; gate in sum-to-zero form:
        the mean over experts of ``beta0`` and of ``beta1`` is zero). Built on first access
        (a process's first xarray object costs ~0.3 s when dask is installed; the fit does not
        pay it); ``repr`` and :meth:`to_dict` do not build it.
    loglik_ : float
        Log-likelihood of the original (X, y) at ``measure_`` (unpenalised, user units).
    loglik_trace_ : ndarray
        Penalised objective of the best start after every iteration (user units; index 0 is the
        initial value). With SQUAREM one iteration is one cycle (at least two MM steps).
    converged_ : bool
        Whether the best start met |Δf| <= tol·|f|.
    n_iter_ : int
    responsibilities_ : ndarray, shape (n, K)
    n_params_ : int
    aic_, bic_, icl_ : float
        AIC = -2ℓ + 2p; BIC = -2ℓ + p log n; ICL = BIC + 2·EN with EN = -Σ τ log τ >= 0 the
        entropy of the responsibilities (Biernacki et al. 2000, in the lower-is-better sign).
    seconds_ : float
    all_starts_loglik_ : ndarray
        Final unpenalised log-likelihood of every start (user units).
    all_starts_converged_ : ndarray of bool
    all_starts_pruned_ : ndarray of bool
        Starts stopped early by pruning (``prune_after``) or by ``drop_after``.
    n_survivors_ : int
        Starts that were not pruned (ran until they converged or reached ``max_iter``).
    engine_ : str
        The iteration engine used ("numba" or "numpy"); ``backend_`` is its old name.
    """

    measure_: xr.Dataset = _LazyMeasure()  # type: ignore[assignment]  # built on first access
    loglik_: float
    loglik_trace_: np.ndarray
    converged_: bool
    n_iter_: int
    responsibilities_: np.ndarray
    n_params_: int
    aic_: float
    bic_: float
    icl_: float
    seconds_: float
    all_starts_loglik_: np.ndarray
    all_starts_converged_: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    all_starts_pruned_: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    n_survivors_: int = 0
    engine_: str = "numpy"

    @property
    def backend_(self) -> str:
        """The old name of :attr:`engine_` (the samplers' ``backend`` is another concept)."""
        return self.engine_

    def __repr__(self) -> str:
        G = _LazyMeasure.peek(self)  # no Dataset built for a repr
        return (
            f"MMResult(family={G.attrs['family']!r}, gate={G.attrs['gate']!r}, "
            f"n_experts={G.sizes['expert']}, loglik={self.loglik_:.4f}, "
            f"n_params={self.n_params_}, aic={self.aic_:.2f}, bic={self.bic_:.2f}, "
            f"icl={self.icl_:.2f}, converged={self.converged_}, n_iter={self.n_iter_}, "
            f"seconds={self.seconds_:.2f}, starts={len(self.all_starts_loglik_)}, "
            f"survivors={self.n_survivors_})"
        )

    def to_dict(self) -> dict:
        """JSON-ready summary (floats, ints, bools and nested lists only)."""
        G = _LazyMeasure.peek(self)
        if isinstance(G, MeasureParts):
            params = {k: np.asarray(v[1]).tolist() for k, v in G.data_vars.items()}
        else:
            params = {k: G[k].values.tolist() for k in G.data_vars}
        return {
            "loglik": float(self.loglik_),
            "n_params": int(self.n_params_),
            "aic": float(self.aic_),
            "bic": float(self.bic_),
            "icl": float(self.icl_),
            "converged": bool(self.converged_),
            "iterations": int(self.n_iter_),
            "seconds": float(self.seconds_),
            "starts": len(self.all_starts_loglik_),
            "survivors": int(self.n_survivors_),
            "family": G.attrs["family"],
            "gate": G.attrs["gate"],
            "parameters": params,
        }


def count_parameters(
    family: str,
    n_experts: int,
    n_features: int,
    n_classes: int = 0,
    n_gate_features: int | None = None,
) -> int:
    """Free parameters: gate (K-1)(d_gate+1) plus K times the family's per-expert count
    (Gaussian d+2, categorical (M-1)(d+1), Poisson d+1); ``d_gate`` defaults to ``d``.

    Examples
    --------
    >>> count_parameters("gaussian", 3, 2)
    18
    >>> count_parameters("gaussian", 3, 2, n_gate_features=0)  # constant mixing weights
    14
    """
    return n_parameters(int(n_experts), int(n_features), family, int(n_classes), n_gate_features)


def monotone_violations(trace, rtol: float = ROUNDOFF_RTOL) -> np.ndarray:
    """Indices i where ``trace[i] < trace[i-1]`` by more than rtol·max(1, |trace[i-1]|).

    Examples
    --------
    >>> monotone_violations([-3.0, -2.0, -2.5, -1.0]).tolist()
    [2]
    """
    t = np.asarray(trace, dtype=float)
    drop = t[:-1] - t[1:]
    return np.flatnonzero(drop > rtol * np.maximum(1.0, np.abs(t[:-1]))) + 1


# ----- validation -----------------------------------------------------------------------------
def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}; got {value!r}.")
    return int(value)


def _validate(X, y, n_experts, family, gate, n_classes):
    """Entry checks of fit_mle, through the shared bayesmoe._validation helpers."""
    feature = None
    if hasattr(X, "columns"):
        feature = [str(c) for c in X.columns]
    X = check_X(X)
    K = check_int(n_experts, "n_experts")
    fam = get_family(family, "family")
    check_gate(gate)
    if fam.has_classes:  # fit_mle takes class codes (MoE and the CLI code labels)
        y, M = check_class_codes(y, X.shape[0], n_classes)
    else:
        y, M = fam.check_response(y, X.shape[0])[0], 0
    return X, y, K, M, feature


# ----- the fitter -----------------------------------------------------------------------------
@keywords_checked
def fit_mle(
    X=None,
    y=None,
    n_experts: int | None = None,
    *,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    ridge: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 2000,
    n_starts: int = 10,
    starts: Sequence[xr.Dataset] | None = None,
    accelerate: bool = True,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
    n_classes: int | None = None,
    var_floor: float = 1e-6,
    drop_after: int | None = None,
    prune_after: int | None = 10,
    prune_keep: float = 0.2,
    prune_rows: int | None = 2000,
    stall_window: int | None = 100,
    stall_tol: float = 1e-3,
    engine: str = "auto",
    offset=None,
    gate_X=None,
    gate_feature_names: Sequence | None = None,
    data=None,
    formula: str | None = None,
    gate_formula: str | None = None,
    trials=None,
    spec=None,
    backend: str | None = None,
) -> MMResult:
    """Fit a softmax-gated mixture of experts by maximum likelihood with the MM algorithm.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
        Real responses (``family="gaussian"``) or integer class codes 0..M-1 (``"categorical"``).
    n_experts : int
        Number of experts K >= 1.
    family : str
        The expert family (:data:`bayesmoe.families.FAMILIES`).
    gate : {"softmax", "tanh", "sigmoid"} or callable
        The standard softmax gate, or a modified softmax gate on M(x) (docs/math.md §1.3), the
        same names as :func:`bayesmoe.inference.sample` (``"identity"``, the old name, is read
        as ``"softmax"`` with a DeprecationWarning). The measure records the gate's name
        (``"softmax"`` for the standard gate; a callable as ``"custom"``).
    ridge : float
        λ >= 0: the objective is ℓ - (λ/2)(‖gate slopes‖² + ‖expert slopes‖²) on the standardised
        scale (intercepts and variances are not penalised; the gate's reference expert is the last).
    tol : float
        Stop a start when |Δf| <= tol·|f| between iterations. The default 1e-10 is tighter than
        the earlier 1e-8 because SQUAREM creeps along flat optima: on mcycle with K = 2, 1e-8
        stopped 0.002-0.02 nats short of the optimum (benchmarks/README.md).
    max_iter : int
        Iterations per start (SQUAREM cycles when ``accelerate``).
    n_starts : int
        Random starts (k-means-like and random partitions), all run as one vectorised batch.
    starts : sequence of xarray.Dataset, optional
        Extra starting measures in the user's units (same K, d and family).
    accelerate : bool
        SQUAREM (Varadhan & Roland 2008) with fall-back to the plain double step whenever the
        extrapolated point would lower the objective: ascent stays monotone.
    random_seed : int or numpy.random.Generator, optional
    progressbar : bool
    n_classes : int, optional
        Number of classes M (categorical); default ``max(y) + 1``.
    var_floor : float
        Floor on the expert noise variances on the standardised scale (σ² >= var_floor·var(y)):
        the Gaussian likelihood is unbounded when an expert collapses onto a few points; the
        constrained maximum keeps the update monotone.
    drop_after : int, optional
        At this iteration, stop the starts whose objective is more than max(10, 1e-3·|f_best|)
        below the best start's (they keep their values and count as not converged). Saves time
        with many starts; off by default.
    prune_after : int or None
        Early pruning ("short-run" multi-start, docs/math.md §8): after this many iterations
        (10: with Newton steps a start is near its basin's optimum after 10 SQUAREM cycles; 20 was
        the MM path's default; shorter short runs also overfit a subsample less)
        every start is ranked by its objective and only the best ``prune_keep`` fraction (at
        least two) runs on to convergence; the others keep their values, count as not converged
        and are flagged in ``all_starts_pruned_``. ``None`` runs every start to the end.
    prune_keep : float
        Fraction of the starts kept at ``prune_after`` (0 < prune_keep <= 1).
    prune_rows : int or None
        With more rows than this, the short runs (initialisation and ``prune_after``
        iterations of every start) use a random subsample of ``prune_rows`` rows (ridge scaled
        by prune_rows/n), and only the survivors are iterated on all rows; ``trace``,
        ``n_iter_`` and convergence then refer to the full-data iterations. ``None``: always
        all rows.
    stall_window, stall_tol : int or None, float
        Flat-ridge stop: a start whose objective rose by less than ``stall_tol`` nats over the
        last ``stall_window`` iterations stops (it counts as not converged: the fit warns when
        that is the best start). Where the supremum is approached only as the gate sharpens
        towards a step (docs/math.md §8) no start converges by the relative rule, and this
        keeps the fit from spending ``max_iter`` iterations on gains of 1e-5 nats per iteration.
        ``None`` turns it off.
    offset : array_like, shape (n,), optional
        Per-row log-exposure of families with a log link (``family="poisson"``).
    gate_X : array_like, shape (n, d_gate), optional
        The gate's own covariates (default: ``X``); zero columns give constant mixing weights (a
        mixture of regressions, as flexmix without concomitant variables). The compiled kernels
        need the gate to see the experts' covariates; other gates run the numpy engine.
    gate_feature_names : sequence, optional
        Labels of ``gate_X``'s columns (a DataFrame's column names by default).
    data, formula, gate_formula : DataFrame, str, str, optional
        The formula form instead of ``X``, ``y``, ``offset`` and ``gate_X``:
        :func:`bayesmoe.formula.design_matrices` builds them; the measure's ``attrs`` keep the
        formulas.
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).
    spec : bayesmoe.models.spec.ModelSpec, optional
        A model specification validated already (e.g. by a sampler fitting its start) in place
        of ``X``, ``y``, ``family``, ``gate``, ``offset``, ``gate_X`` and ``trials``: nothing is
        validated again, and the spec's data transform is used.
    engine : {"auto", "numba", "numpy"}
        Iteration engine: the compiled kernels of :mod:`.mm_numba` (every start
        and iteration of a block in one compiled call) or the numpy kernels of
        :mod:`.mm_updates` (one vectorised pass over the starts per iteration). Both compute the
        same maps (equal to round-off). "auto" runs the compiled kernels once they are loaded in
        this process; until then it runs the numpy engine and loads them in a background thread
        (:mod:`.mm_warmup`: a fresh process's first fit does not wait ~0.5 s for numba, nor
        minutes for a first compile, which is announced on stderr); ``engine_`` says which ran.
        ``BAYESMOE_MM_BACKGROUND=0`` makes "auto" wait for the compiled kernels instead.
    backend : str, optional
        The old name of ``engine`` (a DeprecationWarning; ``backend`` names the samplers').

    Returns
    -------
    MMResult

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference.mle.mm import fit_mle
    >>> X, y, truth = simulate("S-B", n=300, random_seed=0)
    >>> res = fit_mle(X, y, 3, n_starts=3, random_seed=0)
    >>> res.measure_.sizes["expert"], res.n_params_
    (3, 18)
    """
    t0 = time.perf_counter()
    tune = _TUNING.get()
    design = None
    if formula is not None or data is not None:  # the formula form (bayesmoe.formula)
        from bayesmoe.formula import formula_inputs

        dm = formula_inputs(X, y, data, formula, gate_formula, family, offset=offset, gate_X=gate_X)
        X, offset, gate_X, design = dm.X, dm.offset, dm.gate_X, dm.design
        y = dm.y if design.classes is None else dm.codes()
        n_classes = n_classes or (None if design.classes is None else len(design.classes))
    if spec is not None:
        if X is not None or y is not None or formula is not None:
            raise ValueError("Pass either `spec` or the data (`X`, `y` or a formula); got both.")
        X, y, M, feature, family = spec.X, spec.y, spec.n_classes, spec.feature_names, spec.family
        K = check_int(spec.n_experts if n_experts is None else n_experts, "n_experts")
    else:
        X, y, K, M, feature = _validate(X, y, n_experts, family, gate, n_classes)
    n, d = X.shape
    n_starts = _check_int("n_starts", n_starts, 0)
    max_iter = _check_int("max_iter", max_iter, 1)
    starts = list(starts) if starts is not None else []
    if n_starts + len(starts) < 1:
        raise ValueError("`n_starts` is 0 and no `starts` were given; ask for at least one start.")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"`ridge` must be a finite float >= 0; got {ridge!r}.")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"`tol` must be a positive float; got {tol!r}.")
    if drop_after is not None:
        drop_after = _check_int("drop_after", drop_after, 1)
    if prune_after is not None:
        prune_after = _check_int("prune_after", prune_after, 1)
    if not (isinstance(prune_keep, (int, float, np.floating)) and 0 < prune_keep <= 1):
        raise ValueError(f"`prune_keep` must be a fraction in (0, 1]; got {prune_keep!r}.")
    if prune_rows is not None:
        prune_rows = _check_int("prune_rows", prune_rows, 100)
    if stall_window is not None:
        stall_window = _check_int("stall_window", stall_window, 1)
    if not (np.isfinite(stall_tol) and stall_tol >= 0):
        raise ValueError(f"`stall_tol` must be a finite float >= 0 (nats); got {stall_tol!r}.")
    if backend is not None:
        warnings.warn(
            "fit_mle(backend=...) is now fit_mle(engine=...): the samplers' `backend` is "
            "another list.",
            DeprecationWarning,
            stacklevel=2,
        )
        engine = backend
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}; got {engine!r}.")
    if not (np.isfinite(var_floor) and var_floor > 0):
        raise ValueError(f"`var_floor` must be a positive float; got {var_floor!r}.")
    if spec is not None:
        Z, gate_feature = spec.gate_X, spec.gate_feature_names
    else:
        Z, gate_feature = check_gate_X(
            gate_X, gate_feature_names, X, feature or [f"x{j}" for j in range(d)]
        )
    n_params = count_parameters(family, K, d, M, None if Z is None else Z.shape[1])
    if n < n_params:
        raise ValueError(
            f"{n} rows cannot identify {n_params} free parameters (K={K}, d={d}"
            f"{f', M={M}' if M else ''}); use fewer experts or more data."
        )
    rng = np.random.default_rng(random_seed)
    fam = get_family(family)
    if spec is not None:
        gate_name, offset, trials, st = spec.gate, spec.offset, spec.trials, spec.standardizer
    else:
        gate_name = stored_name(gate)  # the measure records the gate input transform M
        gate = transform_of(gate_name, gate)
        offset = check_offset(offset, fam.name, n)
        trials = check_trials(trials, y, fam.name, n)
        st = Standardizer.from_data(X, y, gate=gate, family=fam, offset=offset, gate_X=Z)
    Xt = np.column_stack([np.ones(n), st.transform_X(X)])
    Zt = np.column_stack([np.ones(n), st.transform_gate(X if Z is None else Z)])
    ys, sdata = fam.standard_data(y, st.transform, offset)
    off_s = sdata.get("offset")
    prob = mu.make_problem(
        family,
        Xt,
        Zt,
        ys,
        K,
        M=M,
        ridge=ridge,
        var_floor=var_floor,
        step_scale=tune.step_scale,
        newton=tune.newton,
        offset=off_s,
        trials=trials,
    )
    lay = prob.layout
    engine = _Engine(prob, engine)
    S = n_starts + len(starts)
    n_keep = max(min(S, 2), int(np.ceil(prune_keep * S)))
    # Short runs of every start on a subsample when the data are large (docs/math.md §8): ranking
    # starts needs far fewer rows than fitting the survivors.
    sub = prune_after is not None and prune_rows is not None and n > prune_rows and S > n_keep
    if sub:
        rows = np.sort(rng.choice(n, size=prune_rows, replace=False))
        prob_s = mu.make_problem(
            family,
            Xt[rows],
            Zt[rows],
            ys[rows],
            K,
            M=M,
            ridge=ridge * prune_rows / n,
            var_floor=var_floor,
            step_scale=tune.step_scale,
            newton=tune.newton_sub,
            offset=None if off_s is None else off_s[rows],
            trials=None if trials is None else trials[rows],
        )
        engine_s = _Engine(prob_s, engine.name)
    else:
        prob_s, engine_s = prob, engine
    thetas = [_initial_theta(prob_s, n_starts, rng, engine=engine_s)] if n_starts > 0 else []
    thetas += [_theta_from_measure(G, st, lay, K, d) for G in starts]
    theta = np.concatenate(thetas, axis=0)
    p = lay.unpack(theta)  # user starts may lie outside the fitter's set (a variance floor)
    p.update(fam.mm_project(lay.experts(p), prob))
    theta = lay.pack(p)
    theta = np.ascontiguousarray(theta, dtype=float)

    bar = None
    if progressbar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter + (prune_after if sub else 0), desc=f"MM K={K}")
    loop = dict(
        tol=tol,
        accelerate=accelerate,
        stall_window=stall_window,
        stall_tol=stall_tol,
        bar=bar,
        cap0=tune.cap0,
    )
    if sub:
        short = _iterate(engine_s, theta, prune_after, **loop)
        fs = np.where(np.isfinite(short["f"]), short["f"], -np.inf)
        keep = np.zeros(S, dtype=bool)
        keep[np.argsort(-fs, kind="stable")[:n_keep]] = True
        out = _iterate(engine, theta, max_iter, active=keep, drop_after=drop_after, **loop)
        out["pruned"] |= ~keep
    else:
        out = _iterate(
            engine,
            theta,
            max_iter,
            prune_after=prune_after,
            n_keep=n_keep,
            drop_after=drop_after,
            **loop,
        )
    if bar is not None:
        bar.close()
    f, trace, n_iter = out["f"], out["trace"], out["n_iter"]
    converged, stalled, pruned = out["converged"], out["stalled"], out["pruned"]
    best = int(np.argmax(np.where(np.isfinite(f), f, -np.inf)))
    pen = mu.penalty(prob, lay.unpack(theta))
    log_sy = np.log(st.y_scale)  # the density of y_s against that of y (0 unless standardised)
    ll_all = f + pen - n * log_sy
    if stalled[best]:
        why = (
            f"it stopped at iteration {n_iter[best]} on a flat ridge (gain < {stall_tol:g} "
            f"nats over the last {stall_window} iterations)"
        )
    else:
        why = f"it stopped at max_iter={max_iter}"
    if converged.any() and not converged[best]:
        warnings.warn(
            f"The best start of the MM fit (K={K}) did not converge to tol={tol}: {why} (other "
            "starts converged, at lower log-likelihood); its gate may be sharpening towards a "
            "step. Raise `max_iter` (or `stall_window`) to follow it further.",
            UserWarning,
            stacklevel=2,
        )
    if not converged.any():
        warnings.warn(
            f"No start of the MM fit (K={K}) converged to tol={tol}; the best start is returned "
            f"({why}). Raise `max_iter`, loosen `tol`, or suspect a gate that sharpens towards a "
            "step (|beta| growing without bound).",
            UserWarning,
            stacklevel=2,
        )
    G = _parts_from_theta(theta[best], lay, st, gate_name, feature, gate_feature)
    resp = engine.responsibilities(theta[best])
    ll = float(ll_all[best])
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = float(-np.sum(np.where(resp > 0, resp * np.log(resp), 0.0)))
    bic = -2 * ll + n_params * np.log(n)
    if design is not None:
        G.attrs.update(design.attrs())
    if engine.load_after:  # later fits of this process: the compiled kernels (mm_warmup)
        from bayesmoe.inference.mle import mm_warmup

        mm_warmup.start()
    return MMResult(
        measure_=G,
        loglik_=ll,
        loglik_trace_=trace[best, : n_iter[best] + 1] - n * log_sy,
        converged_=bool(converged[best]),
        n_iter_=int(n_iter[best]),
        responsibilities_=resp,
        n_params_=n_params,
        aic_=float(-2 * ll + 2 * n_params),
        bic_=float(bic),
        icl_=float(bic + 2 * ent),
        seconds_=time.perf_counter() - t0,
        all_starts_loglik_=ll_all,
        all_starts_converged_=converged,
        all_starts_pruned_=pruned,
        n_survivors_=int(S - pruned.sum()),
        engine_=engine.name,
    )
