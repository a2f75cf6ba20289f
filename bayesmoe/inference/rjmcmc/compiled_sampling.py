"""The compiled reversible jump behind :func:`~bayesmoe.inference.rjmcmc.sample_random_k`:
when it runs, its settings, and the DataTree it returns (the step method's schema).

The sampler itself is :mod:`bayesmoe.inference.rjmcmc.compiled`.
"""

from __future__ import annotations

import numpy as np

from bayesmoe.families import get_family
from bayesmoe.inference.rjmcmc.compiled import (
    COMPILED_OPTIONS,
    CompiledSettings,
    compiled_eligible,
    run_compiled,
)
from bayesmoe.inference.rjmcmc.compiled_births import BIRTHS
from bayesmoe.inference.rjmcmc.compiled_covariates import (
    COVARIATE_FAMILIES,
    COVARIATE_OPTIONS,
    CovariateSettings,
    covariates_eligible,
    run_covariates,
    soften_starts,
)
from bayesmoe.inference.rjmcmc.moves import MOVES
from bayesmoe.inference.rjmcmc.step import DEFAULT_SPLIT_SD

__all__ = ["MM_START_ITER", "compiled_trace", "sample_compiled", "use_compiled"]

#: SQUAREM cycles per start of the MM fits that start the covariate sampler's chains
MM_START_ITER = 50


def compiled_trace(model, info, values: dict, stats: dict, *, tune: int, seconds: float):
    """The DataTree of :func:`~bayesmoe.inference.rjmcmc.sample_random_k` from the compiled
    sampler's output: the same posterior (free variables and the model's Deterministics,
    computed by PyMC from the model itself), sample stats, observed and constant data.
    """
    import pymc as pm
    import xarray as xr
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants

    chains, draws = values["n_experts_index"].shape
    K_max = info.max_experts
    coords, dims = coords_and_dims_for_inferencedata(model)
    coords = {**coords, "chain": np.arange(chains), "draw": np.arange(draws)}
    cd, cde = ("chain", "draw"), ("chain", "draw", "expert")
    if "noise_rate_std_log__" in values:  # the Gibbs sampler of d = 0 mixtures
        empty = np.zeros((chains, draws, 0, K_max))  # no expert nor gate covariates
        cdfe = ("chain", "draw", "feature", "expert")
        cdge = ("chain", "draw", "gate_feature", "expert")
        free = {
            "n_experts_index": (cd, values["n_experts_index"].astype(np.int64)),
            "beta0_std": (cde, values["beta0_std"]),
            "beta1_std": (cdge, empty),
            "a_std": (cdfe, empty),
            "b_std": (cde, values["b_std"]),
            "noise_rate_std": (cd, np.exp(values["noise_rate_std_log__"])),
            "sigma_std": (cde, np.exp(values["sigma_std_log__"])),
        }
    else:  # the covariate sampler: every slot variable, positive ones back from the log scale
        free = {"n_experts_index": (cd, values["n_experts_index"].astype(np.int64))}
        for name, value in values.items():
            if name == "n_experts_index":
                continue
            rv = name[: -len("_log__")] if name.endswith("_log__") else name
            free[rv] = (cd + tuple(dims[rv]), np.exp(value) if rv != name else value)
    want = [rv.name for rv in model.free_RVs]
    if sorted(want) != sorted(free):
        raise RuntimeError(f"compiled sampler: the model's free variables {want} are not {free}.")
    used = {d for k in want for d in free[k][0]}
    post = xr.Dataset({k: free[k] for k in want}, coords={k: coords[k] for k in used})
    post = pm.compute_deterministics(post, model=model, extend_dataset=True, progressbar=False)
    lib = {
        "inference_library": "jax (bayesmoe compiled reversible jump)",
        "inference_library_version": __import__("jax").__version__,
        "sampling_time": seconds,
        "tuning_steps": int(tune),
    }
    post.attrs.update(lib)
    n_moves = sum(stats[f"proposed_{m}"] for m in MOVES)
    ss = {
        "move": stats["move"].astype(np.int64),
        "current_n_experts": stats["current_n_experts"].astype(np.int64),
        "proposed_n_experts": stats["proposed_n_experts"].astype(np.int64),
        "accepted": stats["accepted"].astype(bool),
        "accept": stats["accept"].astype(np.float64),
        "log_accept_ratio": stats["log_accept_ratio"].astype(np.float64),
        "birth_scale": np.ones((chains, draws)),  # the birth is the prior: no scale
        "split_scale": stats.get("split_scale", np.ones((chains, draws))).astype(np.float64),
        **{
            f"{kind}_{m}": stats[f"{kind}_{m}"].astype(np.int64)
            for m in MOVES
            for kind in ("proposed", "accepted")
        },
    }
    if "occupied" in stats:  # the Gibbs sampler's allocations
        ss["occupied"] = stats["occupied"].astype(np.int64)
    for name in ("acceptance_rate", "step_size", "step_size_bar", "lp"):  # HMC within K,
        if name in stats:  # as NUTS names them
            ss[name] = stats[name].astype(np.float64)
    if "diverging" in stats:
        ss["diverging"] = stats["diverging"].astype(bool)
    sample_stats = xr.Dataset(
        {k: (cd, v) for k, v in ss.items()},
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    sample_stats.attrs.update({**lib, "moves_per_draw": int(n_moves.max()) if n_moves.size else 0})
    groups = {"posterior": post, "sample_stats": sample_stats}
    if model.observed_RVs:  # absent with prior_only
        obs = {"y": (("obs",), np.asarray(info.y))}
        groups["observed_data"] = xr.Dataset(obs, coords={"obs": coords["obs"]})
    const = {}
    for name, value in find_constants(model).items():
        d = dims.get(name, [])
        const[name] = (tuple(d), np.asarray(value))
    keep = ("obs", "feature", "gate_feature")
    constant = xr.Dataset(const, coords={k: coords[k] for k in keep if k in coords})
    groups["constant_data"] = constant
    return xr.DataTree.from_dict(groups)


def use_compiled(sampler: str, info, continuous: str, step_kwargs, sample_kwargs) -> bool:
    """Whether :func:`~bayesmoe.inference.rjmcmc.sample_random_k` runs the compiled sampler
    (``sampler="compiled"`` that cannot run raises, naming why).
    """
    if sampler not in ("auto", "compiled", "step"):
        raise ValueError(f"`sampler` must be 'auto', 'compiled' or 'step'; got {sampler!r}.")
    if sampler == "step":
        return False
    from bayesmoe.inference.nuts.jax_nuts import available

    why = None
    gibbs = compiled_eligible(info)
    covariates = not gibbs and covariates_eligible(info)
    if not (gibbs or covariates):
        why = (
            "it covers mixtures without covariates (X of shape (n, 0)) with Gaussian experts, "
            "priors='richardson-green' and temperature 1, and experts with covariates of the "
            f"families {list(COVARIATE_FAMILIES)} under the default prior set"
        )
    elif gibbs and continuous not in ("auto", "gibbs"):
        why = f"it updates the continuous parameters by the Gibbs sweep, not {continuous!r}"
    elif covariates and continuous != "auto":
        why = f"it updates the continuous parameters by compiled HMC, not {continuous!r}"
    elif not available():
        why = "it needs jax and numpyro"
    else:
        options = (*COMPILED_OPTIONS, "sweeps_per_step") if gibbs else COVARIATE_OPTIONS
        extra = sorted(set(step_kwargs or {}) - set(options))
        extra += sorted(k for k in sample_kwargs if k != "nuts" or sample_kwargs[k])
        if extra:
            why = f"it takes none of the step method's or pm.sample's options {extra}"
    if why is None:
        # experts with covariates too: on S-B (n = 40, K_max = 4) its p(K | y) matches an
        # independent evidence computation where the step method's chains disagree
        # (benchmarks/rj_evidence.py, benchmarks/README.md)
        return True
    if sampler == "compiled":
        raise ValueError(f"sampler='compiled' cannot run this model: {why}. Use sampler='step'.")
    return False


def _common_settings(info, step_kwargs: dict | None, counts: tuple) -> tuple[dict, dict, dict]:
    """The options both compiled samplers take, checked: ``(opts, out, split_sd)``: the counts
    (ints >= 1), ``p_birth_death``, ``split_beta`` and the ``split_sd`` groups.
    """
    opts = dict(step_kwargs or {})
    out = {"k_max": info.max_experts}
    for name in counts:
        if name in opts:
            v = opts[name]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"`{name}` must be an int >= 1; got {v!r}.")
            out[name] = int(v)
    if "p_birth_death" in opts:
        p = float(opts["p_birth_death"])
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`p_birth_death` must be in [0, 1]; got {opts['p_birth_death']!r}.")
        out["p_birth_death"] = p
    if "split_beta" in opts:
        if not float(opts["split_beta"]) > 0:
            raise ValueError(f"`split_beta` must be positive; got {opts['split_beta']!r}.")
        out["split_beta"] = float(opts["split_beta"])
    sds = dict(opts.get("split_sd") or {})
    unknown = set(sds) - set(DEFAULT_SPLIT_SD)
    if unknown:
        raise ValueError(
            f"Unknown `split_sd` groups {sorted(unknown)}; expected among "
            f"{sorted(DEFAULT_SPLIT_SD)}."
        )
    return opts, out, sds


def _settings(info, step_kwargs: dict | None) -> CompiledSettings:
    opts, out, sds = _common_settings(info, step_kwargs, ("moves_per_step", "sweeps_per_step"))
    if "expert_intercept" in sds:
        out["split_sd_mean"] = float(sds["expert_intercept"])
    if "noise" in sds:
        out["split_sd_log_sigma"] = float(sds["noise"])
    if "tune" in opts:
        out["tune_scales"] = bool(opts["tune"])
    return CompiledSettings(**out)


def _covariate_settings(info, step_kwargs: dict | None) -> CovariateSettings:
    counts = ("moves_per_step", "sweeps_per_step", "leapfrog_steps")
    opts, out, sds = _common_settings(info, step_kwargs, counts)
    if "birth" in opts:
        if opts["birth"] not in BIRTHS:
            raise ValueError(f"`birth` must be one of {BIRTHS}; got {opts['birth']!r}.")
        if opts["birth"] == "anchors" and not get_family(info.family).has_classes:
            raise ValueError(
                f"`birth='anchors'` is for categorical experts; got family {info.family!r}."
            )
        out["birth"] = opts["birth"]
    if "birth_prior_mix" in opts:
        mix = float(opts["birth_prior_mix"])
        if not 0.0 <= mix <= 1.0:
            raise ValueError(
                f"`birth_prior_mix` must be in [0, 1]; got {opts['birth_prior_mix']!r}."
            )
        out["birth_prior_mix"] = mix
    out["split_sd"] = tuple(sorted((g, float(v)) for g, v in sds.items()))
    return CovariateSettings(**out)


def sample_compiled(
    model,
    info,
    *,
    draws: int,
    tune: int,
    chains: int,
    start_experts,
    step_kwargs,
    random_seed,
    init: str = "prior",
):
    """The compiled branch of :func:`~bayesmoe.inference.rjmcmc.sample_random_k`: start points
    (K spread over the prior's support as there), the compiled run, the DataTree and its
    provenance attrs. Mixtures without covariates start from the prior; experts with covariates
    from ``init`` (the MM fit at each chain's K, as the step method, or the prior).
    """
    import json
    import os
    import time

    from bayesmoe.inference.nuts.jax_nuts import ensure_host_devices
    from bayesmoe.inference.nuts.sampling import provenance_attrs
    from bayesmoe.inference.rjmcmc.sampling import start_points

    gibbs = compiled_eligible(info)
    settings = _settings(info, step_kwargs) if gibbs else _covariate_settings(info, step_kwargs)
    ensure_host_devices(max(chains, os.cpu_count() or 1))
    init_seed, run_seed = (
        int(s.generate_state(1)[0]) for s in np.random.SeedSequence(random_seed).spawn(2)
    )
    t0 = time.perf_counter()
    # [choice] prior starts for the Gibbs sampler: the exact Gibbs sweep forgets its start within
    # a few sweeps, and the MM fit of a 30-expert start took 52 s of the step method's 78 s on
    # galaxy (issue 23)
    init = "prior" if gibbs else init
    # [choice] experts with covariates: short MM fits (MM_START_ITER cycles). The start is
    # softened to 3 prior sds below, so the converged fit's last digits are lost anyway, and
    # categorical experts on separable classes creep for ~900 cycles (iris2, K = 4: 12.7 s of
    # a cached run's 18 s on the numpy engine; 50 cycles: 1.3 s)
    starts = start_points(
        info,
        chains=chains,
        start_experts=start_experts,
        init=init,
        random_seed=init_seed,
        mm_max_iter=2000 if gibbs else MM_START_ITER,
    )
    if not gibbs:  # near-hard MM gates and logits leave HMC no step size
        starts = soften_starts(starts, info)
    t_init = time.perf_counter() - t0
    run = run_compiled if gibbs else run_covariates
    values, stats = run(
        info,
        starts,
        draws=draws,
        tune=tune,
        seed=run_seed,
        settings=settings,
        prior_only=info.prior_only,
    )
    t_sample = time.perf_counter() - t0 - t_init
    trace = compiled_trace(model, info, values, stats, tune=tune, seconds=t_sample)
    trace.attrs.update(
        provenance_attrs(
            info,
            random_seed=random_seed,
            sampler="reversible_jump+gibbs" if gibbs else "reversible_jump+hmc",
            init=init,
            draws=draws,
            tune=tune,
            chains=chains,
            seconds_init=t_init,
            seconds_sampling=t_sample,
        )
    )
    extra = {"sweeps_per_step": settings.sweeps_per_step}
    if not gibbs:
        extra.update({"leapfrog_steps": settings.leapfrog_steps, "continuous_update": "hmc"})
    trace.attrs.update(
        {
            "max_experts": info.max_experts,
            "experts_prior": json.dumps(info.prior_pmf.tolist()),
            "prior_only": int(info.prior_only),
            "move_codes": json.dumps(MOVES),
            "start_experts": json.dumps([int(p["n_experts_index"]) + 1 for p in starts]),
            "rj_sampler": "compiled",
            "moves_per_step": settings.moves_per_step,
            **extra,
        }
    )
    return trace
