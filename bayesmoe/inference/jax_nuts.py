"""Compiled NUTS: NumPyro's NUTS kernel on bayesmoe's JAX log density, warmed up from the MM fit.

The whole sampler (tree building, adaptation, the chain loop) is one XLA program, so there is no
per-draw Python cost and no PyTensor/Numba compilation. The density is
:class:`bayesmoe.inference.flat_model.FlatModel` (tested equal to the PyMC model's logp), and the
returned DataTree has the same groups, variables, dims and coords as PyMC's sampler gives
(posterior in user units computed afterwards in numpy, ``log_likelihood`` pointwise in numpy).

Warm-up: the chains start at the (jittered) MM fit and the initial inverse mass matrix is the
inverse of the observed information -d^2 logp / dx^2 at the MM point on the unconstrained scale
(dense), so the sampler needs a much shorter tuning phase (benchmarks/README.md "NUTS speed").
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np
import xarray as xr

__all__ = ["available", "sample_flat", "mass_matrix_from_hessian", "ensure_host_devices",
           "compile_cache"]


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


def mass_matrix_from_hessian(hess: np.ndarray, *, dense: bool = True) -> np.ndarray:
    """Inverse mass matrix from the Hessian of logp at a mode (unconstrained scale).

    The observed information H = -hess is made positive definite by flooring its eigenvalues at
    1e-8 times the largest (a saddle or a flat direction of the MM optimum must not give an
    infinite or negative variance); the result is H^-1 (dense) or its diagonal.
    """
    H = -0.5 * (hess + hess.T)
    w, V = np.linalg.eigh(H)
    if not np.all(np.isfinite(w)) or w.max() <= 0:
        return np.eye(H.shape[0]) if dense else np.ones(H.shape[0])
    w = np.maximum(w, 1e-8 * w.max())
    inv = (V / w) @ V.T
    return 0.5 * (inv + inv.T) if dense else np.diag(inv).copy()


def _stats(extra: dict) -> dict:
    out = {
        "lp": -np.asarray(extra["potential_energy"]),
        "diverging": np.asarray(extra["diverging"]).astype(bool),
        "energy": np.asarray(extra["energy"]),
        "n_steps": np.asarray(extra["num_steps"]).astype(float),
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "step_size": np.asarray(extra["adapt_state.step_size"]),
    }
    out["tree_depth"] = (np.log2(np.maximum(out["n_steps"], 1)).astype(int) + 1)
    return out


def sample_flat(
    fm,
    model,
    starts: list[np.ndarray],
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int,
    mass_point: np.ndarray | None = None,
    dense_mass: bool = True,
    adapt_mass_matrix: bool = True,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progressbar: bool = True,
    log_likelihood: bool = True,
) -> tuple[xr.DataTree, dict]:
    """Run NumPyro NUTS on ``fm`` from flat unconstrained ``starts`` (one per chain).

    Returns the DataTree (posterior, sample_stats, observed_data, constant_data, log_likelihood)
    and a dict of timings and settings for the trace attrs.
    """
    ensure_host_devices(max(chains, os.cpu_count() or 1))
    import jax
    from numpyro.infer import MCMC, NUTS

    t0 = time.perf_counter()
    cache = compile_cache()
    with _x64(jax):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist

        logp = fm.jax_logp()
        data = {k: jnp.asarray(v) for k, v in fm.data().items()}
        inv_mass = None
        if mass_point is not None:
            hess = np.asarray(jax.jit(jax.hessian(logp))(jnp.asarray(mass_point), data))
            inv_mass = mass_matrix_from_hessian(hess, dense=dense_mass)
        t_mass = time.perf_counter() - t0

        def numpyro_model(data):
            # an improper flat prior on the flat vector; the density is all in the factor
            x = numpyro.sample("x", dist.ImproperUniform(dist.constraints.real_vector, (),
                                                         (fm.ndim,)))
            numpyro.factor("logp", logp(x, data))

        kernel = NUTS(numpyro_model,
                      inverse_mass_matrix=None if inv_mass is None else {("x",): inv_mass},
                      dense_mass=dense_mass, adapt_mass_matrix=adapt_mass_matrix,
                      target_accept_prob=target_accept, max_tree_depth=max_tree_depth)
        parallel = jax.local_device_count() >= chains
        mcmc = MCMC(kernel, num_warmup=tune, num_samples=draws, num_chains=chains,
                    chain_method="parallel" if parallel else "vectorized",
                    progress_bar=progressbar)
        init = np.stack(starts) if chains > 1 else starts[0]
        mcmc.run(jax.random.PRNGKey(int(random_seed) % (2**32)), data,
                 init_params={"x": jnp.asarray(init)},
                 extra_fields=("diverging", "energy", "num_steps", "accept_prob",
                               "potential_energy", "adapt_state.step_size"))
        flat = np.asarray(mcmc.get_samples(group_by_chain=True)["x"])
        extra = {k: np.asarray(v) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
    t_sample = time.perf_counter() - t0
    if flat.ndim == 2:  # one chain
        flat = flat[None]
        extra = {k: v[None] if v.ndim == 1 else v for k, v in extra.items()}
    tree = _to_datatree(fm, model, flat, _stats(extra), log_likelihood=log_likelihood,
                        tune=tune, seconds=t_sample)
    meta = {"chain_method": "parallel" if parallel else "vectorized",
            "mass_matrix": ("hessian-" if inv_mass is not None else "identity-")
            + ("dense" if dense_mass else "diag"),
            "seconds_mass_matrix": t_mass, "seconds_sampling": t_sample,
            "jax_compile_cache": cache or "off"}
    return tree, meta


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


def _to_datatree(fm, model, flat: np.ndarray, stats: dict, *, log_likelihood: bool, tune: int,
                 seconds: float) -> xr.DataTree:
    from arviz_base import from_dict

    free, _ = fm.constrain(flat)
    det = fm.deterministics(free)
    dims = {k: list(v) for k, v in model.named_vars_to_dims.items()}
    coords = {k: np.asarray(v) for k, v in model.coords.items() if v is not None}
    rv_order = [b.rv for b in fm.blocks]
    posterior = {k: free[k] for k in rv_order}
    posterior.update({k: det[k] for k in ("beta1", "beta0", "a", "b", "sigma") if k in det})
    groups = {"posterior": posterior, "sample_stats": stats,
              "observed_data": {"y": np.asarray(model["y_obs"].get_value())}}
    data_names = [v.name for v in model.data_vars if v.name not in ("y_obs",)]
    groups["constant_data"] = {k: np.asarray(model[k].get_value()) for k in data_names}
    if log_likelihood:
        groups["log_likelihood"] = {"y": fm.pointwise(free)}
    dims = dict(dims)
    dims["y"] = dims.get("y", ["obs"])
    lib = {"inference_library": "numpyro (bayesmoe flat model)",
           "inference_library_version": __import__("numpyro").__version__}
    run = {"sampling_time": seconds, "tuning_steps": tune}
    attrs = {g: {**lib, **(run if g in ("posterior", "sample_stats") else {})} for g in groups}
    tree = from_dict(groups, dims=dims, coords=coords, attrs=attrs)
    return tree
