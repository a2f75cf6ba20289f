"""First MM fits that do not wait for Numba: the compiled kernels load in a background thread.

A fresh process's first call of the compiled kernels of :mod:`bayesmoe.inference.mle.mm_numba`
pays for importing numba and loading their machine code from the cache (~0.5 s), or, on a new
machine or after an upgrade (an empty or stale cache), for compiling them (20-90 s). Most MM fits
at small n take a few hundredths of a second, so ``fit_mle(..., engine="auto")`` does not wait:

- when the kernels are loaded in this process, the fit runs them (``engine_ == "numba"``);
- otherwise it runs on the numpy engine (``engine_ == "numpy"``) and, when it has finished,
  calls :func:`start` (once per process: a daemon thread that imports numba and runs every kernel
  once on a small problem, loading or compiling the exact specialisations the fits use). Both
  engines compute the same maps, equal to round-off (tests/inference/mle/test_mm.py).

The load starts after the fit, not beside it: loading is Python work that holds the GIL, and a
thread loading beside a small fit made that fit several times slower; after it, the load runs
while the caller does other things (and a process that ends at once loses nothing).

When the cache holds no machine code for the kernels, a one-line message on stderr says that
they are being compiled, and the process waits for the compilation before it exits (an atexit
hook), so that the next process finds them in the cache; a process that stops a warm load early
loses nothing. A fork (``multiprocessing``, PyMC's chains) waits for a running load, so that no
child inherits its locks. Processes that find the cache cold at the same time (pytest-xdist
workers, a study's dask workers) compile one at a time (:func:`compile_lock`, a file lock): the
first compiles and writes the cache, the others then load from it instead of compiling again.

``BAYESMOE_MM_BACKGROUND=0`` in the environment restores the blocking behaviour: ``"auto"`` then
loads (or compiles) the kernels in the calling thread and always runs them, so that every fit of
a process uses the same engine.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import sys
import tempfile
import threading

__all__ = [
    "auto_engine",
    "cache_is_warm",
    "compile_lock",
    "ensure_loaded",
    "fixed_engine",
    "ready",
    "start",
    "tell_if_cold",
    "wait",
]

#: environment variable; "0" makes ``engine="auto"`` wait for the compiled kernels
ENV = "BAYESMOE_MM_BACKGROUND"
#: up to this many rows a seeded sampler's MM start runs the numpy engine (:func:`fixed_engine`)
NUMPY_MAX_N = 20_000

_lock = threading.Lock()
_thread: threading.Thread | None = None
#: "idle" (nothing started), "loading", "ready", "failed" (numba missing or the warm-up raised)
_state = "idle"
_compiling = False  # the running load compiles (the cache was cold): join it at exit
_checked = threading.Event()  # the running load has read the cache index (warm or cold known)
_told = False  # the compile message was printed (or the cache was found warm)


def ready() -> bool:
    """Whether the compiled kernels are loaded in this process (``"auto"`` then runs them)."""
    return _state == "ready"


def cache_is_warm() -> bool | None:
    """Whether Numba's cache holds machine code for the kernels of this version of
    :mod:`~bayesmoe.inference.mle.mm_numba` (``None``: unknown, e.g. numba without caching).

    Imports numba (~0.3 s). Reads the cache index of :func:`~.mm_numba.run_starts`, the entry
    point that inlines most of the others; an index written for other source (an edited or
    upgraded module) counts as cold, as Numba then compiles again.
    """
    from bayesmoe.inference.mle import mm_numba

    if not mm_numba.available():
        return None
    try:
        return len(mm_numba.run_starts._cache._cache_file._load_index()) > 0
    except Exception:  # private Numba API: no message rather than a wrong one
        return None


def tell_if_cold(meanwhile: str) -> None:
    """One line on stderr, once per process, when the kernels are about to be compiled (Numba's
    cache is cold); ``meanwhile`` says what the caller does in the meantime.
    """
    global _told
    if _told or _state == "ready":
        return
    _told = True
    if cache_is_warm() is False:
        print(
            "bayesmoe: compiling the MM fitter's Numba kernels (once per installation; about "
            f"20-90 s on an idle machine); {meanwhile}.",
            file=sys.stderr,
            flush=True,
        )


def _warm_up() -> None:
    """Run every compiled kernel once on a small Gaussian problem: loads (or compiles) the
    specialisations every family's fit uses (the packed problem has the same types for all).
    """
    import numpy as np

    from bayesmoe.inference.mle import mm_updates as mu
    from bayesmoe.inference.mle.mm import SQUAREM_CAP0, _initial_theta
    from bayesmoe.inference.mle.mm_engine import _Engine, _iterate

    rng = np.random.default_rng(0)
    n = 60
    x = np.linspace(-1.0, 1.0, n)
    Xt = np.column_stack([np.ones(n), x])
    y = np.where(x > 0, x, -x) + 0.1 * rng.standard_normal(n)
    prob = mu.make_problem("gaussian", Xt, Xt.copy(), y, 2, newton=2)
    engine = _Engine(prob, "numba")
    theta = np.ascontiguousarray(_initial_theta(prob, 3, rng, engine=engine))
    out = _iterate(
        engine,
        theta,
        4,
        tol=1e-10,
        accelerate=True,
        stall_window=2,
        stall_tol=1e-3,
        prune_after=2,
        n_keep=2,
        cap0=SQUAREM_CAP0,
    )
    engine.responsibilities(theta[int(np.argmax(out["f"]))])
    engine.objective(theta)


@contextlib.contextmanager
def compile_lock():
    """Hold an exclusive lock shared by every process that compiles this copy of the kernels
    into the same Numba cache (a file lock in the temporary directory, keyed by the module's path
    and ``NUMBA_CACHE_DIR``); a no-op where ``fcntl`` is missing (Windows).

    Examples
    --------
    >>> from bayesmoe.inference.mle import mm_warmup
    >>> with mm_warmup.compile_lock():
    ...     pass
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    from bayesmoe.inference.mle import mm_numba

    key = f"{os.path.abspath(mm_numba.__file__)}|{os.environ.get('NUMBA_CACHE_DIR', '')}"
    name = f"bayesmoe-mm-numba-{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock"
    with open(os.path.join(tempfile.gettempdir(), name), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run() -> None:
    global _state, _compiling
    try:
        cold = cache_is_warm() is False
        _compiling = cold
        _checked.set()
        if cold:
            tell_if_cold("fits run on the numpy engine meanwhile; the process waits for it at exit")
        from bayesmoe.inference.mle import mm_numba

        if not mm_numba.available():
            _state = "failed"
            return
        # cold: one process compiles at a time; a later one finds the cache written and loads it
        with compile_lock() if cold else contextlib.nullcontext():
            _warm_up()
        _state = "ready"
    except Exception:  # the numpy engine stays in use; engine="numba" shows the error
        _state = "failed"
    finally:
        _compiling = False
        _checked.set()


def start() -> None:
    """Start loading the compiled kernels in a daemon thread (once per process)."""
    global _thread, _state
    with _lock:
        if _state != "idle":
            return
        _state = "loading"
        _thread = threading.Thread(target=_run, name="bayesmoe-mm-numba", daemon=True)
        _thread.start()


def wait(timeout: float | None = None) -> bool:
    """Wait for a started load to finish (at most ``timeout`` seconds); whether it is ready.

    Examples
    --------
    >>> from bayesmoe.inference.mle import mm_warmup
    >>> mm_warmup.start()
    >>> mm_warmup.wait()
    True
    """
    t = _thread
    if t is not None:
        t.join(timeout)
    return ready()


def ensure_loaded() -> None:
    """Load the kernels before a fit that asked for them (``engine="numba"``): through the
    warm-up thread, so that a cold cache is compiled under :func:`compile_lock`, one process at a
    time. A no-op when they are loaded, or when called from the warm-up itself.
    """
    if _state == "ready" or threading.current_thread() is _thread:
        return
    start()
    wait()


def auto_engine() -> str:
    """The engine ``engine="auto"`` runs now.

    ``"numba"`` when the kernels are loaded, else ``"numpy"`` (the fit calls :func:`start` when it
    has finished); with ``BAYESMOE_MM_BACKGROUND=0``, ``"numba"`` after loading them here
    (``"numpy"`` when that fails).
    """
    if _state == "ready":
        return "numba"
    if os.environ.get(ENV, "1").strip() == "0":
        tell_if_cold("the fit waits for them")
        start()
        wait()
        return "numba" if ready() else "numpy"
    return "numpy"


@atexit.register
def _finish_compile() -> None:
    """At exit, a cold compile finishes (so that later processes find the kernels cached); a warm
    load is dropped once it is known to be one (the wait is at most numba's import).
    """
    t = _thread
    if t is None or not t.is_alive():
        return
    _checked.wait()
    if _compiling:
        t.join()


def _before_fork() -> None:
    """No fork while the load runs: a child would inherit its locks held (Numba's compiler lock,
    import locks) by a thread that does not exist there, and hang on its first compile.
    """
    t = _thread
    if t is not None and t.is_alive() and t is not threading.current_thread():
        t.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork)


def steady_engine(family: str = "gaussian", own_gate: bool = False) -> str:
    """One engine for a batch of fits whose results must not depend on when a background load
    finished (``select_experts``' K = 1..K_max, a study's tasks): the compiled kernels when they
    are loaded or load quickly (a warm Numba cache: waited for, ~0.5 s), else ``"numpy"`` (a cold
    cache would make the batch wait for a compile; the kernels are then compiled by the next
    ``"auto"`` fit, as usual).

    Examples
    --------
    >>> from bayesmoe.inference.mle import mm_warmup
    >>> mm_warmup.steady_engine("poisson")  # no compiled kernels for Poisson experts
    'numpy'
    """
    from bayesmoe.families import get_family

    if own_gate or get_family(family).numba_kernel is None:
        return "numpy"
    if not ready():
        if cache_is_warm() is not True:
            return "numpy"
        start()
        wait()
    return "auto" if ready() else "numpy"


def fixed_engine(n_rows: int, family: str = "gaussian", own_gate: bool = False) -> str:
    """The engine of an MM fit whose result must not depend on timing (a seeded sampler's start:
    round-off differences between the engines grow into different chains).

    ``"numpy"`` up to :data:`NUMPY_MAX_N` rows (one fit: as fast as loading the compiled kernels,
    and never a first compile) and wherever the compiled kernels cannot run (a ``family`` without
    them, a gate with covariates of its own: ``own_gate``), else ``"auto"`` after waiting for the
    compiled kernels (``"auto"`` then runs them).

    Examples
    --------
    >>> from bayesmoe.inference.mle import mm_warmup
    >>> mm_warmup.fixed_engine(500)
    'numpy'
    """
    from bayesmoe.families import get_family

    if n_rows <= NUMPY_MAX_N or own_gate or get_family(family).numba_kernel is None:
        return "numpy"
    start()
    wait()
    return "auto"


#: the names before the MM engines got their own word (kept for code written against them)
auto_backend, steady_backend, fixed_backend = auto_engine, steady_engine, fixed_engine
