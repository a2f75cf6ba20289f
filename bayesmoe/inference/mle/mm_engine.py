"""The MM fitter's iteration engines (docs/math.md §8): blocks of MM/SQUAREM iterations on a
batch of starts, on the compiled kernels of :mod:`.mm_numba` or the numpy maps of
:mod:`.mm_updates`, with pruning, early drops and the flat-ridge stop. :func:`.mm.fit_mle` sets
them up and reads their result.
"""

from __future__ import annotations

import numpy as np

from bayesmoe.inference.mle import mm_updates as mu

# ----- the iteration engines ------------------------------------------------------------------
#: iterations per call of the compiled engine when a progress bar is shown
_CHUNK = 100
#: the MM iteration engines (``fit_mle(engine=...)``; the samplers' backends are another list)
ENGINES = ("auto", "numba", "numpy")


class _Engine:
    """Runs blocks of MM/SQUAREM iterations on a batch of starts: the compiled kernels of
    :mod:`bayesmoe.inference.mle.mm_numba` (one call per block, every start and iteration inside) or
    the numpy kernels of :mod:`bayesmoe.inference.mle.mm_updates` (one vectorised pass over the
    active starts per iteration).
    """

    def __init__(self, prob: mu.Problem, engine: str):
        self.name, self.prob, self.nb, self.pb, self.sts = engine, prob, None, None, None
        self.load_after = False  # "auto" ran numpy because the kernels are not loaded yet
        if engine == "numpy":  # no numba import (~0.3 s): the sampling start's engine
            return
        lay = prob.layout
        if lay.fam.numba_kernel is None or lay.gate_D != lay.D:  # no compiled kernels for it
            if engine == "numba":
                why = (
                    f"{lay.family} experts"
                    if lay.fam.numba_kernel is None
                    else "a gate with covariates of its own (another number of columns)"
                )
                raise ValueError(
                    f"`engine='numba'` has no compiled kernels for {why}; use "
                    "engine='numpy' (or 'auto')."
                )
            self.name = "numpy"
            return
        from bayesmoe.inference.mle import mm_warmup

        if engine == "auto":  # the compiled kernels once loaded; numpy while they load
            engine = mm_warmup.auto_engine()
            if engine == "numpy":
                self.name, self.load_after = "numpy", True
                return
        from bayesmoe.inference.mle import mm_numba

        if engine == "numba" and not mm_numba.available():
            raise ValueError(
                "`engine='numba'` needs the numba package; install it or use engine='numpy'."
            )
        mm_warmup.tell_if_cold("the fit waits for them")
        if engine == "numba":  # a cold cache compiles under the cross-process lock
            mm_warmup.ensure_loaded()
        self.name = engine
        self.prob = prob
        self.nb = mm_numba if engine == "numba" else None
        self.pb = mm_numba.pack_problem(prob) if self.nb else None
        self.sts = tuple(mm_numba.new_stats(self.pb) for _ in range(3)) if self.nb else None

    def init_fit(self, theta: np.ndarray, tau: np.ndarray, n_inner: int) -> np.ndarray:
        """``n_inner`` MM maps at fixed responsibilities (the initialiser's partition fit)."""
        if self.nb is None:
            for _ in range(n_inner):
                theta = mu.mstep(self.prob, theta, tau, newton=0)
            return theta
        theta = np.ascontiguousarray(theta, dtype=float)
        self.nb.mstep_fixed_tau(theta, np.ascontiguousarray(tau), self.pb, n_inner, self.sts[0])
        return theta

    def responsibilities(self, theta_row: np.ndarray) -> np.ndarray:
        """τ (n, K) at one parameter vector (the compiled pass when available)."""
        if self.nb is None:
            return mu.estep(self.prob, theta_row[None])[0][0]
        tau = np.empty((self.prob.Xt.shape[0], self.prob.layout.K))
        self.nb.estats(np.ascontiguousarray(theta_row), self.pb, tau, self.sts[0], False)
        return tau

    @property
    def objective_in_advance(self) -> bool:
        """Whether :meth:`advance` can compute the starts' objectives itself (``init``): the
        compiled engine, where the pass that gives a start's objective also begins its iteration.
        """
        return self.nb is not None

    def objective(self, theta: np.ndarray) -> np.ndarray:
        if self.nb is None:
            return mu.estep(self.prob, theta)[1]
        tau = np.empty((self.prob.Xt.shape[0], self.prob.layout.K))
        return np.array([self.nb.estats(t, self.pb, tau, self.sts[0], False) for t in theta])

    def advance(
        self,
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
        init=False,
    ):
        """Run the active starts from iteration it0 to it1, in place (see mm_numba.run_starts).
        With ``init`` (compiled engine only, see :attr:`objective_in_advance`) the starts'
        objectives are computed here first: into ``f`` and ``trace[:, it0]``, and a start whose
        objective is not finite is made inactive.
        """
        if self.nb is not None:
            self.nb.run_starts(
                theta,
                f,
                active,
                converged,
                stalled,
                n_iter,
                trace,
                it0,
                it1,
                float(tol),
                bool(accelerate),
                int(stall_window or 0),
                float(stall_tol),
                caps,
                self.pb,
                self.sts,
                bool(init),
            )
            return
        prob = self.prob
        cycle = mu.squarem_cycle if accelerate else mu.mm_cycle
        idx = np.flatnonzero(active)
        tau, _ = mu.estep(prob, theta[idx])
        ft = f[idx]
        th = theta[idx]
        cp = caps[idx]
        live = np.ones(idx.size, dtype=bool)
        for it in range(it0 + 1, it1 + 1):
            j = np.flatnonzero(live)
            if j.size == 0:
                break
            c_j = cp[j]
            th_j, ta_j, fn, _ = cycle(prob, th[j], tau[j], ft[j], c_j)
            cp[j] = c_j
            conv = np.abs(fn - ft[j]) <= tol * np.abs(fn)
            th[j], tau[j], ft[j] = th_j, ta_j, fn
            trace[idx[j], it] = fn
            n_iter[idx[j]] = it
            converged[idx[j[conv]]] = True
            stop = conv | ~np.isfinite(fn)
            if stall_window and it >= stall_window:
                stall = ~stop & (fn - trace[idx[j], it - stall_window] < stall_tol)
                stalled[idx[j[stall]]] = True
                stop |= stall
            live[j[stop]] = False
        theta[idx], f[idx], caps[idx] = th, ft, cp
        active[idx] = live


def _iterate(
    engine,
    theta,
    max_iter,
    *,
    tol,
    accelerate,
    stall_window,
    stall_tol,
    bar=None,
    active=None,
    prune_after=None,
    n_keep=None,
    drop_after=None,
    cap0=np.inf,
) -> dict:
    """Run the starts (rows of ``theta``, updated in place) for up to ``max_iter`` iterations,
    pruning to the best ``n_keep`` at ``prune_after`` and dropping poor starts at
    ``drop_after``. Returns the per-start state (f, trace, n_iter, converged, stalled, pruned).
    """
    S = theta.shape[0]
    init = engine.objective_in_advance  # f and trace[:, 0] are filled by the first block
    f = np.full(S, -np.inf) if init else engine.objective(theta)
    trace = np.full((S, max_iter + 1), np.nan)
    trace[:, 0] = f
    n_iter = np.zeros(S, dtype=np.int64)
    converged = np.zeros(S, dtype=bool)
    stalled = np.zeros(S, dtype=bool)
    pruned = np.zeros(S, dtype=bool)
    caps = np.full(S, float(cap0))  # SQUAREM steplength bounds, per start
    active = np.ones(S, dtype=bool) if active is None else np.array(active, dtype=bool)
    if not init:
        active &= np.isfinite(f)
    stops = {max_iter}
    if prune_after is not None and prune_after < max_iter:
        stops.add(prune_after)
    if drop_after is not None and drop_after < max_iter:
        stops.add(drop_after)
    if bar is not None:
        stops.update(range(_CHUNK, max_iter, _CHUNK))
    it = 0
    for stop in sorted(stops):
        if active.any() or init:
            engine.advance(
                theta,
                f,
                active,
                converged,
                stalled,
                n_iter,
                trace,
                it,
                stop,
                tol,
                accelerate,
                stall_window,
                stall_tol,
                caps,
                init,
            )
            init = False
        if bar is not None:
            bar.update(stop - it)
        it = stop
        if stop == drop_after:
            fb = np.max(f[np.isfinite(f)]) if np.isfinite(f).any() else -np.inf
            drop = active & (f < fb - max(10.0, 1e-3 * abs(fb)))
            active &= ~drop
            pruned |= drop
        if stop == prune_after and S > n_keep:
            # rank every start by its objective now; converged starts are finished, not pruned
            order = np.argsort(-np.where(np.isfinite(f), f, -np.inf), kind="stable")
            drop = np.zeros(S, dtype=bool)
            drop[order[n_keep:]] = True
            drop &= active
            active &= ~drop
            pruned |= drop
    return dict(
        f=f, trace=trace, n_iter=n_iter, converged=converged, stalled=stalled, pruned=pruned
    )
