"""Compiled NUTS: NumPyro's NUTS kernel on bayesmoe's JAX log density, warmed up from the MM fit.

The sampler (tree building, adaptation, the iteration loop) runs as compiled XLA programs, chains
in parallel on CPU devices, so there is no per-draw Python cost and no PyTensor/Numba
compilation. The density is :class:`.flat_model.FlatModel` (tested equal to the
PyMC model's logp), and the returned DataTree has the same groups, variables, dims and coords as
PyMC's sampler gives (posterior in user units computed afterwards in numpy, ``log_likelihood``
pointwise in one XLA program).

Warm-up: the chains start at the (jittered) MM fit and the initial inverse mass matrix is the
inverse of the observed information -d^2 logp / dx^2 at the MM point on the unconstrained scale
(dense, by differences of the gradient), so the sampler needs a much shorter tuning phase
(benchmarks/README.md "NUTS speed").

Fixed cost: the programs are exported once to the JAX cache directory
(:mod:`.jax_programs`) and XLA's executables sit in JAX's persistent cache, so a
later process with a model of the same shape neither traces nor compiles.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np
import xarray as xr

__all__ = [
    "PreparedRun",
    "available",
    "compile_cache",
    "ensure_host_devices",
    "hessian_fd",
    "mass_matrix_from_hessian",
    "sample_flat",
]


def available() -> bool:
    """True when jax and numpyro can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("jax", "numpyro"))


def ensure_host_devices(n: int) -> None:
    """Ask XLA for ``n`` CPU devices (so chains run in parallel), if jax has not started yet.

    XLA reads the flag once, when jax first initialises its backends; an explicit user setting
    is left alone.
    """
    if "jax" in sys.modules:
        try:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return
        except (ImportError, AttributeError):  # private API moved: do not touch the flags
            return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(n)}".strip()


def compile_cache() -> str | None:
    """Turn on JAX's persistent compilation cache (unless the user configured one or set
    ``BAYESMOE_JAX_CACHE=off``): ``$BAYESMOE_JAX_CACHE`` or ``~/.cache/bayesmoe/jax``.

    The compiled sampler of a model shape is then reused by later processes (the data are
    arguments of the program, so a new data set of the same shape hits the cache).
    Returns the directory in use, or None.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    where = os.environ.get("BAYESMOE_JAX_CACHE", "")
    if where.lower() == "off":
        return None
    where = where or os.path.join(os.path.expanduser("~"), ".cache", "bayesmoe", "jax")
    try:
        os.makedirs(where, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return where


#: smallest precision of a direction of the Hessian mass matrix: 1 / the widest default prior
#: variance on the standardised scale (gate sd 3), so no direction starts wider than the prior
MIN_PRECISION = 1.0 / 9.0


def mass_matrix_from_hessian(hess: np.ndarray, *, dense: bool = True) -> np.ndarray:
    """Inverse mass matrix from the Hessian of logp at a mode (unconstrained scale).

    The observed information H = -hess is made positive definite eigenvalue by eigenvalue: a
    saddle direction (negative curvature, e.g. an over-fitted model's duplicated experts) takes
    its absolute value, and every eigenvalue is floored at :data:`MIN_PRECISION` (and 1e-8 times
    the largest), so a flat or saddle direction gets a prior-sized variance, not an infinite one;
    the result is H^-1 (dense) or its diagonal.
    """
    H = -0.5 * (hess + hess.T)
    w, V = np.linalg.eigh(H)
    if not np.all(np.isfinite(w)) or w.max() <= 0:
        return np.eye(H.shape[0]) if dense else np.ones(H.shape[0])
    w = np.maximum(np.abs(w), max(MIN_PRECISION, 1e-8 * w.max()))
    inv = (V / w) @ V.T
    return 0.5 * (inv + inv.T) if dense else np.diag(inv).copy()


def hessian_fd(grad, x: np.ndarray, data, *, rel_step: float = 1e-5) -> np.ndarray:
    """Hessian of logp at ``x`` by central differences of its gradient ``grad(points, data)``
    (vectorised over points).

    2 * ndim gradient evaluations: cheaper here than tracing ``jax.hessian`` (forward over
    reverse), and exact enough for a mass matrix (truncation error O(h^2), h = 1e-5 (1 + |x|)).
    """
    n = x.size
    h = rel_step * (1.0 + np.abs(x))
    steps = np.concatenate([x + np.diag(h), x - np.diag(h)])  # (2n, n)
    g = np.asarray(grad(steps, data))
    H = (g[:n] - g[n:]) / (2 * h)[:, None]
    return 0.5 * (H + H.T)


#: iterations per call of the compiled sampler (the progress bar moves once per call)
CHUNK = 100


def _window_ends(tune: int) -> list[int]:
    """Last iterations of NumPyro's middle (mass-matrix) adaptation windows for ``tune`` steps."""
    from numpyro.infer.hmc_util import build_adaptation_schedule

    return [int(w.end) for w in build_adaptation_schedule(tune)[1:-1]]


def _pool_windows(leaves: list, nd: int) -> list:
    """Pool the chains' dense mass-matrix accumulators just before a window closes: every
    chain's Welford state (NumPyro's ``welford_covariance``: mean, m2, n) gets the sum of the
    chains' m2 and n, so each adapted inverse mass matrix is the pooled within-chain covariance
    of all chains' window draws (chains x more draws than its own).

    m2 is the fourth (chains, nd, nd) leaf of the state (after the inverse mass matrix and its
    two square roots) and n the leaf after it; another layout is left alone.
    """
    square = [i for i, v in enumerate(leaves) if np.shape(v)[1:] == (nd, nd)]
    if len(square) != 4 or np.ndim(leaves[square[3] + 1]) != 1:
        return leaves
    i = square[3]
    out = list(leaves)
    m2, n = np.asarray(leaves[i]), np.asarray(leaves[i + 1])
    out[i] = np.broadcast_to(m2.sum(0), m2.shape).copy()
    out[i + 1] = np.full_like(n, n.sum())
    return out


#: per-iteration records kept from the sampler state (the trace's sample_stats come from them)
_RECORDS = ("z", "diverging", "energy", "num_steps", "accept_prob", "potential_energy", "step_size")


def _record(state) -> dict:
    """What is kept of a sampler state per iteration (keys: :data:`_RECORDS`)."""
    return {
        "z": state.z,
        "diverging": state.diverging,
        "energy": state.energy,
        "num_steps": state.num_steps,
        "accept_prob": state.accept_prob,
        "potential_energy": state.potential_energy,
        "step_size": state.adapt_state.step_size,
    }


def _stats(rec: dict) -> dict:
    out = {
        "lp": -rec["potential_energy"],
        "diverging": rec["diverging"].astype(bool),
        "energy": rec["energy"],
        "n_steps": rec["num_steps"].astype(float),
        "acceptance_rate": rec["accept_prob"],
        "step_size": rec["step_size"],
    }
    out["tree_depth"] = np.log2(np.maximum(out["n_steps"], 1)).astype(int) + 1
    return out


def _devices_for(chains: int, jax) -> int:
    """Devices the chains run on: the largest divisor of `chains` not above the device count."""
    n = min(chains, jax.local_device_count())
    while chains % n:
        n -= 1
    return n


def _per_device(fn, chains_per_device: int, n_sharded: int, n_args: int):
    """Run ``fn`` (one chain) on a device's block of chains: the first `n_sharded` arguments
    carry the chain axis; a block of one chain is squeezed (no vmap: a vmapped NUTS advances
    its chains in lockstep).
    """
    import jax

    if chains_per_device > 1:
        return jax.vmap(fn, in_axes=(0,) * n_sharded + (None,) * (n_args - n_sharded))

    def one(*args):
        a = [jax.tree.map(lambda v: v[0], x) for x in args[:n_sharded]] + list(args[n_sharded:])
        return jax.tree.map(lambda v: v[None], fn(*a))

    return one


def _nuts_programs(
    fm,
    *,
    chains,
    tune,
    dense_mass,
    adapt_mass_matrix,
    target_accept,
    max_tree_depth,
    example,
    cache_dir,
    reparam=None,
):
    """The compiled programs of one run: (mesh, gradient, init, advance, pointwise).

    ``init(keys, x0, inv_mass, data)`` -> state leaves; ``advance(leaves, data, n)`` -> (leaves,
    records of n <= CHUNK iterations); all chain-sharded over the mesh's devices.
    """
    import jax
    import jax.numpy as jnp
    from jax import lax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P
    from numpyro.infer.hmc import hmc

    from bayesmoe.inference.nuts.flat_model import _jax_ops
    from bayesmoe.inference.nuts.jax_programs import cached_program

    logp = fm.jax_logp() if reparam is None else reparam.jax_logp()
    rp_name = None
    if reparam is not None:
        rp = reparam
        rp_name = f"gate-scaled-{rp.slopes is not None}-{rp.slope_shift}-{rp.rho_floor}"
    n_dev = _devices_for(chains, jax)
    mesh = Mesh(np.array(jax.devices()[:n_dev]), ("chain",))
    per_dev = chains // n_dev
    settings = {
        "model": fm.signature(),
        "tune": tune,
        "dense_mass": bool(dense_mass),
        "adapt_mass_matrix": bool(adapt_mass_matrix),
        "chunk": CHUNK,
        "target_accept": float(target_accept),
        "max_tree_depth": max_tree_depth,
        "chains": chains,
        "devices": n_dev,
        "reparam": rp_name,
    }
    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda data: lambda x: -logp(x, data), algo="NUTS"
    )

    def init_state(key, x0, inv_mass, data):
        return init_kernel(
            x0,
            num_warmup=tune,
            inverse_mass_matrix=inv_mass,
            dense_mass=dense_mass,
            adapt_mass_matrix=adapt_mass_matrix,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            model_args=(data,),
            rng_key=key,
        )

    def init_chain(key, x0, inv_mass, data):
        return jax.tree.leaves(init_state(key, x0, inv_mass, data))

    keys, x0, inv_mass, data = example
    treedef = []

    def kernel_settings():
        """Abstract evaluation of the kernel's init: sets its warm-up settings (closure state of
        numpyro's hmc, read by sample_kernel) and gives the state's structure.
        """
        if not treedef:
            shape = jax.eval_shape(
                init_state,
                *(jax.ShapeDtypeStruct(a.shape[1:], a.dtype) for a in (keys, x0, inv_mass)),
                data,
            )
            treedef.append(jax.tree.structure(shape))
        return treedef[0]

    def advance_chain(leaves, data, n):
        state = jax.tree.unflatten(kernel_settings(), leaves)
        buf0 = {
            k: jnp.zeros((CHUNK,) + jnp.shape(v), jnp.result_type(v))
            for k, v in _record(state).items()
        }

        def body(i, carry):
            st, buf = carry
            st = sample_kernel(st, model_args=(data,))
            rec = _record(st)
            return st, {k: buf[k].at[i].set(rec[k]) for k in buf}

        state, buf = lax.fori_loop(0, n, body, (state, buf0))
        return jax.tree.leaves(state), buf

    ch, rep = NamedSharding(mesh, P("chain")), NamedSharding(mesh, P())

    def sharded(fn, n_sharded, n_args):
        local = _per_device(fn, per_dev, n_sharded, n_args)
        specs = (P("chain"),) * n_sharded + (P(),) * (n_args - n_sharded)
        sm = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P("chain"), check_vma=False)
        return jax.jit(
            sm, in_shardings=(ch,) * n_sharded + (rep,) * (n_args - n_sharded), out_shardings=ch
        )

    init = cached_program(
        "nuts-init",
        lambda: sharded(init_chain, 3, 4),
        example,
        settings=settings,
        cache_dir=cache_dir,
        mesh=mesh,
    )

    def advance_for(leaves):  # its example arguments are the state init returns
        return cached_program(
            "nuts-advance",
            lambda: sharded(advance_chain, 1, 3),
            (leaves, data, np.int32(CHUNK)),
            settings=settings,
            cache_dir=cache_dir,
            mesh=mesh,
        )

    ops = _jax_ops()

    def grad():
        return cached_program(
            "grad",
            lambda: jax.jit(jax.vmap(jax.grad(logp), in_axes=(0, None))),
            (jax.ShapeDtypeStruct((2 * fm.ndim, fm.ndim), jnp.float64), data),
            settings={"model": fm.signature(), "reparam": rp_name},
            cache_dir=cache_dir,
        )

    def pointwise_fn(flat, data):
        return fm.pointwise(fm.constrain(flat, ops.xp)[0], ops, data)

    return mesh, grad, init, advance_for, pointwise_fn


def _pointwise_program(fm, pointwise_fn, flat_shape, data, cache_dir):
    import jax
    import jax.numpy as jnp

    from bayesmoe.inference.nuts.jax_programs import cached_program

    return cached_program(
        "pointwise",
        lambda: jax.jit(pointwise_fn),
        (jax.ShapeDtypeStruct(flat_shape, jnp.float64), data),
        settings={"model": fm.signature()},
        cache_dir=cache_dir,
    )


def _compiled(program, example):
    """XLA executable of a jitted program for arguments shaped like `example` (from JAX's
    persistent cache when it holds one).
    """
    return program.lower(*example).compile()


class PreparedRun:
    """The compiled programs of one sampler run, prepared in two background threads.

    Loading (or tracing, exporting) and compiling the programs takes from a fraction of a second
    (warm caches) to several seconds (a new machine); XLA compiles without holding the GIL, so
    the caller fits the MM start meanwhile and the two largest compiles run side by side.
    Sets float64 for JAX globally until :meth:`close` (``jax.enable_x64`` is thread-local:
    NumPyro's progress-bar callback and these threads would not see it).
    """

    def __init__(
        self,
        fm,
        *,
        chains: int,
        draws: int,
        tune: int,
        dense_mass: bool = True,
        adapt_mass_matrix: bool = True,
        target_accept: float = 0.8,
        max_tree_depth: int = 10,
        log_likelihood: bool = True,
        reparam: str | None = None,
        pool_mass: bool = False,
    ):
        from concurrent.futures import ThreadPoolExecutor

        ensure_host_devices(max(chains, os.cpu_count() or 1))
        import jax

        self.t0 = time.perf_counter()
        self.fm, self.chains, self.draws, self.tune = fm, chains, draws, tune
        self.dense_mass = dense_mass
        # pool the chains' mass-matrix windows (dense adaptation of more than one chain only)
        self.pool_mass = bool(pool_mass and dense_mass and adapt_mass_matrix and chains > 1)
        self._jax = jax
        self._x64_before = bool(jax.config.jax_enable_x64)
        jax.config.update("jax_enable_x64", True)
        self.cache = compile_cache()
        self.programs_dir = os.path.join(self.cache, "programs") if self.cache else None
        # numpy arguments throughout: jnp.asarray would run (and cache-load) a program per array
        self.data = {k: np.asarray(v, float) for k, v in fm.data().items()}
        self.reparam = None
        names = (
            "gate-scaled",
            "gate-scaled-slopes",
            "gate-scaled-slopes-noshift",
            "gate-scaled-slopes-capped",
        )
        if reparam in names:
            from bayesmoe.inference.nuts.reparam import gate_scaled

            self.reparam = gate_scaled(
                fm,
                slopes=reparam.startswith("gate-scaled-slopes"),
                slope_shift=not reparam.endswith("noshift"),
                rho_floor=0.05 if reparam.endswith("capped") else 0.0,
            )
        elif reparam is not None:
            raise ValueError(f"`reparam` must be None or one of {names}; got {reparam!r}.")
        if self.reparam is not None:  # its constants are data (switched off until the MM point)
            self.data.update(self.reparam.off())
        sds = jax.ShapeDtypeStruct
        mass_shape = (chains, fm.ndim, fm.ndim) if dense_mass else (chains, fm.ndim)
        example = (
            sds((chains, 2), np.uint32),
            sds((chains, fm.ndim), np.float64),
            sds(mass_shape, np.float64),
            self.data,
        )
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="bayesmoe-compile")
        settings = dict(
            chains=chains,
            tune=tune,
            dense_mass=dense_mass,
            adapt_mass_matrix=adapt_mass_matrix,
            target_accept=target_accept,
            max_tree_depth=max_tree_depth,
        )
        built = self._pool.submit(
            _nuts_programs,
            fm,
            example=example,
            cache_dir=self.programs_dir,
            reparam=self.reparam,
            **settings,
        )

        def init_and_advance():
            _mesh, _, init, advance_for, _ = built.result()
            leaves = jax.eval_shape(init, *example)
            advance = advance_for(leaves)
            return (
                _compiled(init, example),
                _compiled(advance, (leaves, self.data, np.int32(CHUNK))),
            )

        def small_programs():
            mesh, grad, _, _, pointwise_fn = built.result()
            g = grad()
            g = _compiled(g, (sds((2 * fm.ndim, fm.ndim), np.float64), self.data))
            pw = None
            if log_likelihood:
                flat = sds((chains, draws, fm.ndim), np.float64)
                pw = _pointwise_program(fm, pointwise_fn, flat.shape, self.data, self.programs_dir)
                pw = _compiled(pw, (flat, self.data))
            return mesh, g, pw

        self._big = self._pool.submit(init_and_advance)
        self._small = self._pool.submit(small_programs)

    def programs(self):
        """``(mesh, grad, pointwise, init, advance)``, waiting for the threads."""
        mesh, grad, pointwise = self._small.result()
        init, advance = self._big.result()
        return mesh, grad, pointwise, init, advance

    def close(self) -> None:
        """Wait for the threads and restore JAX's float64 setting."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._jax.config.update("jax_enable_x64", self._x64_before)


def sample_flat(
    run: PreparedRun,
    layout: dict,
    starts: list[np.ndarray],
    *,
    random_seed: int,
    mass_point: np.ndarray | None = None,
    progressbar: bool = True,
) -> tuple[xr.DataTree, dict]:
    """Run NumPyro's NUTS kernel on ``run.fm`` from flat unconstrained ``starts`` (one per chain).

    The chains run in parallel, one per CPU device (several per device, vectorised, when there
    are more chains than devices), in calls of :data:`CHUNK` iterations (the progress bar moves
    per call). The compiled programs (:class:`PreparedRun`) are kept in the JAX cache directory
    (:mod:`.jax_programs`), so a later process of the same model shape neither
    traces nor compiles. ``layout`` holds the model's ``coords``, ``dims`` and ``constant_data``
    (:func:`bayesmoe.models.spec.trace_layout`).

    Returns the DataTree (posterior, sample_stats, observed_data, constant_data, log_likelihood)
    and a dict of timings and settings for the trace attrs.
    """
    fm, chains, tune, draws, data = run.fm, run.chains, run.tune, run.draws, run.data
    starts = np.stack([np.asarray(s, float) for s in starts])
    bad = ~np.isfinite(fm.logp(starts))
    if bad.any():
        raise ValueError(
            f"The start of chain(s) {np.flatnonzero(bad).tolist()} has a non-finite "
            "log density; pass another `init` or a smaller `jitter`."
        )
    t_wait = time.perf_counter()
    mesh, grad, pointwise, init, advance = run.programs()
    t_wait = time.perf_counter() - t_wait
    t0 = time.perf_counter()
    ident = np.eye(fm.ndim) if run.dense_mass else np.ones(fm.ndim)
    inv_mass = ident
    rp = run.reparam if mass_point is not None else None
    if mass_point is not None:
        mass_point = np.asarray(mass_point, float)
        hess = hessian_fd(grad, mass_point, data)
        if rp is not None:  # sample z (module reparam): its constants from the MM point
            data = {**data, **rp.fit(mass_point, -hess, data)}
            hess = hessian_fd(grad, rp.inverse(mass_point, data), data)
            starts = rp.inverse(starts, data)
        inv_mass = mass_matrix_from_hessian(hess, dense=run.dense_mass)
    # one raw threefry key (uint32[2]) per chain, from the seed
    keys = np.random.SeedSequence(int(random_seed)).generate_state(2 * chains, np.uint32)
    leaves = init(keys.reshape(chains, 2), starts, np.stack([inv_mass] * chains), data)
    total, done, chunks = tune + draws, 0, []
    stops = _window_ends(tune) if run.pool_mass else []
    bar = _progress(total, chains, progressbar)
    while done < total:
        n = min([CHUNK, total - done] + [e - done for e in stops if e > done])
        leaves, rec = advance(leaves, data, np.int32(n))
        if done + n in stops:  # the window closes at the next iteration
            leaves = _pool_windows(leaves, fm.ndim)
        rec = {k: np.asarray(v)[:, :n] for k, v in rec.items()}  # waits for the chunk
        chunks.append(rec)
        done += n
        bar.update(n)
        if done <= tune or done - n < tune:
            bar.set_postfix_str("warm-up" if done <= tune else "sampling")
    bar.close()
    rec = {k: np.concatenate([c[k] for c in chunks], axis=1)[:, tune:] for k in _RECORDS}
    flat = rec.pop("z")
    if rp is not None:  # back to the model's coordinates; lp is the model's log density
        flat, log_det = rp.forward(flat, data)
        rec["potential_energy"] = rec["potential_energy"] + log_det
    t_sample = time.perf_counter() - t0
    loglik = None if pointwise is None else np.asarray(pointwise(flat, data))
    t_loglik = time.perf_counter() - t0 - t_sample
    tree = _to_datatree(fm, layout, flat, _stats(rec), loglik, tune=tune, seconds=t_sample)
    meta = {
        "chain_method": "parallel" if mesh.size == chains else "vectorized",
        "devices": int(mesh.size),
        "mass_matrix": ("hessian-" if mass_point is not None else "identity-")
        + ("dense" if run.dense_mass else "diag"),
        "seconds_compile_wait": t_wait,
        "seconds_sampling": t_sample,
        "seconds_log_likelihood": t_loglik,
        "jax_compile_cache": run.cache or "off",
    }
    return tree, meta


def _progress(total: int, chains: int, show: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        disable=not show,
        desc=f"NUTS ({chains} chain{'s' * (chains > 1)})",
        unit="it",
        file=sys.stderr,
        leave=True,
    )


@contextlib.contextmanager
def _x64(jax):
    """float64 for the whole run, set globally and restored after.

    ``jax.enable_x64`` is thread-local: NumPyro's progress-bar host callback runs on another
    thread, sees float32/int32 and fails ("Incorrect output dtype ... Expected: int64").
    """
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def _to_datatree(
    fm, layout: dict, flat: np.ndarray, stats: dict, loglik, *, tune: int, seconds: float
) -> xr.DataTree:
    from arviz_base import from_dict

    free, _ = fm.constrain(flat)
    det = fm.deterministics(free)
    dims = {k: list(v) for k, v in layout["dims"].items()}
    coords = {k: np.asarray(v) for k, v in layout["coords"].items() if v is not None}
    rv_order = [b.rv for b in fm.blocks]
    posterior = {k: free[k] for k in rv_order}
    posterior.update(det)  # the model's Deterministics (FlatModel.deterministics)
    groups = {
        "posterior": posterior,
        "sample_stats": stats,
        "observed_data": {"y": np.asarray(fm.y)},
        "constant_data": dict(layout["constant_data"]),
    }
    if loglik is not None:
        groups["log_likelihood"] = {"y": loglik}
    dims = dict(dims)
    dims["y"] = dims.get("y", ["obs"])
    lib = {
        "inference_library": "numpyro (bayesmoe flat model)",
        "inference_library_version": __import__("numpyro").__version__,
    }
    run = {"sampling_time": seconds, "tuning_steps": tune}
    attrs = {g: {**lib, **(run if g in ("posterior", "sample_stats") else {})} for g in groups}
    tree = from_dict(groups, dims=dims, coords=coords, attrs=attrs)
    return tree
