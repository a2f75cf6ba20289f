"""NUTS sampling of the fixed-K MoE, started from a point estimate; returns a labelled DataTree."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr

from bayesmoe._validation import (
    PYMC_RESERVED_KWARGS,
    check_keywords,
    check_sampler_args,
    family_keyword,
    pymc_sample_keywords,
    warn_user,
)
from bayesmoe.families import get_family
from bayesmoe.measure import measure_from_arrays
from bayesmoe.models.spec import ModelSpec, fixed_k_spec, trace_layout

__all__ = ["BACKENDS", "INITS", "provenance_attrs", "sample", "start_values"]

BACKENDS = ("auto", "jax", "pymc", "nutpie", "numpyro")
INITS = ("mm", "map", "prior")
_BACKEND_MODULES = {
    "pymc": ("pymc",),
    "nutpie": ("nutpie",),
    "numpyro": ("numpyro", "jax"),
    "jax": ("jax", "numpyro"),
    "auto": (),
}
#: default tuning steps: the jax backend starts from the MM fit with a mass matrix from the MM
#: fit's observed information and needs fewer (benchmarks/README.md "NUTS speed")
DEFAULT_TUNE = {"jax": 300}
#: pm.sample keywords the jax backend understands (others send backend="auto" to PyMC)
_JAX_KWARGS = {
    "target_accept",
    "max_treedepth",
    "dense_mass",
    "adapt_mass_matrix",
    "init_mass",
    "reparam",
    "pool_mass",
}


def sample_parameters() -> set[str]:
    """The names of :func:`sample`'s own parameters."""
    import inspect

    return {
        n for n, p in inspect.signature(sample).parameters.items() if p.kind is not p.VAR_KEYWORD
    }


def _check_sample_kwargs(where: str, sample_kwargs: dict, backend: str) -> None:
    """Unknown keywords raise (naming the nearest valid one); PyMC-only keywords switch
    ``backend="auto"`` to PyMC with a warning; JAX-only keywords need the JAX sampler.

    ``sample_kwargs`` may hold :func:`sample`'s own parameters (``MoE.fit`` passes them on).
    """
    own = sample_parameters()
    valid = set(_JAX_KWARGS) | own
    check_keywords(
        where,
        sample_kwargs,
        valid,
        passthrough=pymc_sample_keywords,
        reserved=PYMC_RESERVED_KWARGS,
    )
    pymc_only = sorted(set(sample_kwargs) - _JAX_KWARGS - own)
    if pymc_only and backend == "auto" and _installed("jax"):
        warn_user(
            f"keyword {pymc_only[0]!r} is only supported by the PyMC sampler; using "
            "backend='pymc' (pass backend='pymc' to silence this)."
        )
    if backend not in ("auto", "jax"):
        jax_only = sorted(set(sample_kwargs) & (_JAX_KWARGS - pymc_sample_keywords()))
        if jax_only:
            raise TypeError(
                f"keyword {jax_only[0]!r} is only supported by the JAX sampler; got "
                f"backend={backend!r} (use backend='jax' or 'auto', or drop it)."
            )


def _installed(backend: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in _BACKEND_MODULES[backend])


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}; got {backend!r}.")
    if not _installed(backend):
        raise ValueError(
            f"backend={backend!r} needs {' and '.join(_BACKEND_MODULES[backend])}, which is not "
            "installed; install it (`pip install 'bayesmoe[fast]'` for nutpie, `pip install jax "
            "numpyro` for jax/numpyro) or use backend='auto' or 'pymc'."
        )
    return backend


def _resolve_backend(backend: str, model, info, sample_kwargs: dict):
    """The backend that runs and, for "jax", the flat model; "auto" picks "jax" when jax and
    numpyro are installed, the model is one the flat model knows and no PyMC-only keyword is
    passed, else "pymc".
    """
    if backend not in ("auto", "jax"):
        return backend, None, None
    from bayesmoe.inference.nuts.flat_model import flat_model

    reason = None
    fm = None
    if not _installed("jax"):
        reason = "jax/numpyro not installed"
    elif set(sample_kwargs) - _JAX_KWARGS:
        reason = f"keyword(s) {sorted(set(sample_kwargs) - _JAX_KWARGS)} need PyMC's sampler"
    else:
        fm = flat_model(model, info)
        if fm is None:
            reason = "model has variables the flat JAX model does not know"
    if reason is None:
        return "jax", fm, None
    if backend == "jax":
        raise ValueError(
            f"backend='jax' cannot run this call: {reason}; use backend='auto' "
            "(falls back to PyMC) or backend='pymc'."
        )
    return "pymc", None, reason


def _say(msg: str, progressbar: bool) -> None:
    if progressbar:
        print(msg, file=sys.stderr, flush=True)


def _point_from_measure(measure: xr.Dataset, info: ModelSpec) -> dict[str, np.ndarray]:
    """Free-variable values (standardised scale) of the model at a user-units measure."""
    G = info.standardizer.to_standard(measure)
    fam = get_family(info.family)
    pri, K = info.priors, info.n_experts
    beta0 = G["beta0"].values
    beta1 = G["beta1"].transpose("gate_feature", "expert").values
    if info.identifiability == "zerosum":
        beta0 = beta0 - beta0.mean()
        beta1 = beta1 - beta1.mean(-1, keepdims=True)
    else:
        beta0, beta1 = (beta0 - beta0[-1])[:-1], (beta1 - beta1[:, -1:])[:, :-1]
    if pri.dirichlet_weights:  # K intercepts log g_j: log weights shifted to E sum g = K delta
        beta0 = G["beta0"].values
        beta0 = beta0 - np.logaddexp.reduce(beta0) + np.log(K * pri.weights_concentration)
    point = {}
    if K > 1:
        point = {"beta0_std": beta0, "beta1_std": beta1}
    canon = {k: G[k].transpose(*dims).values for k, dims in fam.canonical_dims.items()}
    point.update(fam.free_from_canonical(canon))
    return point


def _rate_start(point: dict, info: ModelSpec, y) -> dict:
    """The Richardson–Green shared rate ``noise_rate_std`` (beta) at its conditional mean given
    the start's precisions: ``beta | tau ~ Gamma(g + K alpha, h + sum tau)`` (docs/math.md §2.2).
    """
    pri = info.priors
    if not pri.hierarchical or "sigma_std" not in point:
        return point
    tau = np.asarray(point["sigma_std"], dtype=float) ** -2.0
    ys = info.standardizer.transform_y(np.asarray(y, dtype=float))
    h = pri.rate_rate_factor / float(np.ptp(ys)) ** 2
    rate = (pri.rate_shape + tau.size * pri.precision_shape) / (h + tau.sum())
    return {**point, "noise_rate_std": np.asarray(rate)}


def _order_by_intercept(measure: xr.Dataset, info: ModelSpec) -> xr.Dataset:
    """Experts sorted by the intercept ``ordered=True`` constrains (its first entry)."""
    fam = get_family(info.family)
    name = next(p.name for p in fam.params if p.intercept)
    key = measure[name]
    key = key.isel({d: 0 for d in key.dims if d != "expert"})
    return measure.isel(expert=np.argsort(key.values)).assign_coords(
        expert=measure["expert"].values
    )


def start_values(
    info: ModelSpec,
    *,
    method: str = "mm",
    model=None,
    random_seed=None,
) -> tuple[dict | None, xr.Dataset | None]:
    """Point estimate used to start every chain: ("mm") the MM maximum-likelihood fit of the
    model's own :class:`~bayesmoe.models.spec.ModelSpec` (its data, gate covariates, offsets and
    trials; nothing validated again), ("map") PyMC's MAP, ("prior") none — PyMC's own jittered
    initial point.

    Returns the free-variable dict (standardised scale) and the measure in user units.
    """
    if isinstance(method, xr.Dataset) or hasattr(method, "measure_"):
        G = method.measure_ if hasattr(method, "measure_") else method
        if "chain" in G.dims or "draw" in G.dims:
            raise ValueError("`init` must be one mixing measure without (chain, draw) dims.")
        if G.sizes.get("expert") != info.n_experts:
            raise ValueError(
                f"`init` has {G.sizes.get('expert')} experts; the model has {info.n_experts}."
            )
    elif method == "prior":
        return None, None
    elif method == "mm":
        from bayesmoe.inference.mle.mm import fit_mle  # imported late: optional heavy module
        from bayesmoe.inference.mle.mm_warmup import fixed_engine

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res = fit_mle(
                spec=info,
                random_seed=random_seed,
                # one fit per process: the numpy engine is as fast as loading the compiled one
                # and never pays its first-run Numba compile (~140 s wall at load 17; issue 10);
                # never an engine chosen by timing (round-off would grow into other chains)
                engine=fixed_engine(info.n, info.family, not info.gate_shared),
            )
        # the MM gate has temperature 1; the model's logits are eta / temperature
        G = res.measure_.assign(
            beta0=res.measure_["beta0"] * info.temperature,
            beta1=res.measure_["beta1"] * info.temperature,
        )
    elif method == "map":
        import pymc as pm

        start = info.initvals() or None  # a partial point; PyMC fills in the rest
        with warnings.catch_warnings():  # PyMC announces a future InferenceData return type
            warnings.simplefilter("ignore", FutureWarning)
            mp = pm.find_MAP(
                initvals=start,
                jitter=False,
                random_seed=random_seed,
                model=model,
                progressbar=False,
                return_inferencedata=False,
            )
        point = {k: np.asarray(v) for k, v in mp.items() if k in {v.name for v in model.free_RVs}}
        names = ("beta0", "beta1", *get_family(info.family).trace_dims)
        post = xr.Dataset(
            {k: (model.named_vars_to_dims.get(k, ()), np.asarray(mp[k])) for k in names}
        )
        G = _measure_from_posterior(post, info)
        return point, G
    else:
        raise ValueError(f"`init` must be one of {INITS}; got {method!r}.")
    if info.ordered and info.n_experts > 1:
        G = _order_by_intercept(G, info)
    return _rate_start(_clip_gate(_point_from_measure(G, info), info), info, info.y), G


#: NUTS starts keep standardised gate parameters within this many prior sds
_GATE_START_SDS = 3.0


def _clip_gate(point: dict, info: ModelSpec) -> dict:
    """Pull near-step gates of an MM fit (|beta| ~ 1000 on separable data) to within
    ``_GATE_START_SDS`` prior sds: the posterior lives there, and a start out in the prior's far
    tail leaves NUTS with huge gradients and a collapsed step size (chains that never move).
    """
    pri = info.priors
    for k, scale in (("beta0_std", pri.gate_intercept), ("beta1_std", pri.gate_slope)):
        if k in point and not (k == "beta0_std" and pri.dirichlet_weights):
            v = np.clip(point[k], -_GATE_START_SDS * scale, _GATE_START_SDS * scale)
            if info.identifiability == "zerosum":
                v = v - v.mean(-1, keepdims=True)
            point[k] = v
    if pri.dirichlet_weights and "beta0_std" in point:  # log g_j, g_j ~ Gamma(delta, 1): at
        # most _GATE_START_SDS sds below log(delta) (sd^2 = trigamma(delta), series in 1/delta)
        d = pri.weights_concentration
        sd = np.sqrt(1.0 / d + 0.5 / d**2 + 1.0 / (6.0 * d**3))
        point["beta0_std"] = np.maximum(point["beta0_std"], np.log(d) - _GATE_START_SDS * sd)
    return point


def _measure_from_posterior(post: xr.Dataset, info: ModelSpec) -> xr.Dataset:
    sample_dims = tuple(d for d in ("chain", "draw") if d in post.dims)
    fam = get_family(info.family)
    values = {
        k: post[k].transpose(*sample_dims, *dims).values for k, dims in fam.trace_dims.items()
    }
    return measure_from_arrays(
        post["beta0"].transpose(*sample_dims, "expert").values,
        post["beta1"].transpose(*sample_dims, "gate_feature", "expert").values,
        fam.canonical_from_trace(values),
        family=fam.name,
        gate=info.gate,
        temperature=info.temperature,
        feature=info.feature_names,
        gate_feature=info.gate_feature_names,
        classes=info.classes,
        sample_dims=sample_dims,
    )


def _jitter(point: dict, info: ModelSpec, rng: np.random.Generator, scale: float) -> dict:
    fam = get_family(info.family)
    positive = {f"{p.name}_std" for p in fam.params if p.positive} | {"noise_rate_std"}
    ordered = {f"{p.name}_std" for p in fam.params if p.intercept} if info.ordered else set()
    out = {}
    for k, v in point.items():
        e = scale * rng.standard_normal(np.shape(v))
        if k in positive:
            out[k] = v * np.exp(e)
        elif k in ("beta0_std", "beta1_std") and info.identifiability == "zerosum":
            out[k] = v + e - e.mean(-1, keepdims=True)
        else:
            out[k] = v + e
        if k in ordered:
            out[k] = np.sort(out[k], axis=-1)
    return out


def layout_from_model(model) -> dict:
    """Coords, dims and constant data of a built PyMC model (see ``spec.trace_layout``)."""
    return {
        "coords": {k: v for k, v in model.coords.items() if v is not None},
        "dims": {k: tuple(v) for k, v in model.named_vars_to_dims.items()},
        "constant_data": {
            v.name: np.asarray(v.get_value()) for v in model.data_vars if v.name != "y_obs"
        },
    }


def _prepare_jax(
    fm,
    *,
    draws,
    tune,
    chains,
    log_likelihood,
    target_accept=0.8,
    max_treedepth=10,
    dense_mass=True,
    adapt_mass_matrix=True,
    init_mass="hessian",
    reparam=None,
    pool_mass=False,
):
    """Start loading/compiling the jax sampler's programs in the background (see
    :class:`~bayesmoe.inference.nuts.jax_nuts.PreparedRun`).
    """
    from bayesmoe.inference.nuts.jax_nuts import PreparedRun

    if init_mass not in ("hessian", "identity"):
        raise ValueError(f"`init_mass` must be 'hessian' or 'identity'; got {init_mass!r}.")
    return PreparedRun(
        fm,
        chains=chains,
        draws=draws,
        tune=tune,
        dense_mass=dense_mass,
        adapt_mass_matrix=adapt_mass_matrix,
        target_accept=target_accept,
        max_tree_depth=max_treedepth,
        log_likelihood=log_likelihood,
        reparam=reparam,
        pool_mass=pool_mass,
    )


def _sample_jax(
    run,
    layout,
    model,
    info,
    point,
    *,
    jitter,
    jitter_seed,
    pm_seed,
    progressbar,
    init_mass="hessian",
    **_,
):
    """Starts (flat, unconstrained) and the MM mass point for the compiled sampler, then run it."""
    from bayesmoe.inference.nuts.jax_nuts import sample_flat

    fm, chains = run.fm, run.chains
    rng = np.random.default_rng(jitter_seed)
    if point is not None:
        starts = [fm.unconstrain(_jitter(point, info, rng, jitter)) for _ in range(chains)]
        mass_point = fm.unconstrain(point) if init_mass == "hessian" else None
    else:  # PyMC's default: its initial point, jittered by U(-1, 1) on the unconstrained scale
        ip = dict(model.initial_point())
        if info.initvals():  # distinct ordered intercepts (ModelSpec.initvals)
            b = info.initvals()["b_std"]
            ip["b_std_ordered__"] = np.concatenate([b[..., :1], np.log(np.diff(b, axis=-1))], -1)
        starts = [fm.flatten(ip) + rng.uniform(-1, 1, fm.ndim) for _ in range(chains)]
        mass_point = None
    _say("compiling model (JAX)...", progressbar)
    return sample_flat(
        run, layout, starts, random_seed=pm_seed, mass_point=mass_point, progressbar=progressbar
    )


def provenance_attrs(
    info,
    *,
    random_seed,
    sampler: str,
    init: str,
    draws: int,
    tune: int,
    chains: int,
    seconds_init: float,
    seconds_sampling: float,
) -> dict:
    """netCDF-safe provenance attrs of a trace (model options, data transform, sampler, seed)."""
    from bayesmoe import __version__

    return {
        "bayesmoe_version": __version__,
        "model_options": json.dumps(info.options()),
        "family": info.family,
        "gate": info.gate,
        "temperature": info.temperature,
        "random_seed": "none" if random_seed is None else int(random_seed),
        "sampler": sampler,
        "init": init,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "data_transform": json.dumps(info.standardizer.to_dict()),
        "feature_names": json.dumps([str(f) for f in info.feature_names]),
        "gate_features": json.dumps([str(f) for f in info.gate_feature_names]),
        "classes": json.dumps(None if info.classes is None else [str(c) for c in info.classes]),
        "seconds_init": seconds_init,
        "seconds_sampling": seconds_sampling,
    }


def sample(
    X=None,
    y=None,
    *,
    n_experts: int,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    identifiability: str = "zerosum",
    ordered: bool = False,
    priors=None,
    feature_names=None,
    classes=None,
    offset=None,
    gate_X=None,
    gate_feature_names=None,
    trials=None,
    draws: int = 1000,
    tune: int | None = None,
    chains: int = 4,
    cores: int | None = None,
    backend: str = "auto",
    init="mm",
    jitter: float = 0.05,
    relabel: bool = True,
    log_likelihood: bool = True,
    random_seed: int | None = None,
    progressbar: bool = True,
    experts: str | None = None,
    data=None,
    formula: str | None = None,
    gate_formula: str | None = None,
    **sample_kwargs,
) -> xr.DataTree:
    """Sample the posterior of a fixed-K softmax-gated MoE with NUTS.

    Parameters
    ----------
    X, y, n_experts, family, gate, temperature, identifiability, ordered, priors
        Model options, see :func:`bayesmoe.models.build_model`.
    experts : str, optional
        Deprecated alias of ``family`` (kept one release; a ``FutureWarning`` says so).
    feature_names, classes
        Names of the columns of ``X`` and of the classes, see :func:`bayesmoe.models.build_model`.
    offset : array_like, shape (n_obs,), optional
        Per-row log-exposure of families with a log link (``family="poisson"``).
    gate_X : array_like, shape (n_obs, n_gate_features), optional
        The gate's own covariates (default: ``X``); zero columns give constant mixing weights
        (a mixture of regressions). See :func:`bayesmoe.models.build_model`.
    gate_feature_names : sequence, optional
        Labels of ``gate_X``'s columns.
    trials : array_like, shape (n_obs,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).
    data, formula, gate_formula : DataFrame, str, str, optional
        The formula form instead of ``X``, ``y``, ``offset``, ``gate_X`` and the names:
        :func:`bayesmoe.formula.design_matrices` builds them, and the trace's ``attrs`` keep the
        design, so the prediction functions take new DataFrames (:mod:`bayesmoe.formula`).
    draws, chains, cores : int
        Draws per chain, number of chains, and worker processes of the ``pymc`` backend.
    tune : int, optional
        Tuning steps per chain; default 300 for the ``jax`` backend started from the MM fit
        (its mass matrix starts from the MM fit's observed information), else 1000.
    backend : {"auto", "jax", "pymc", "nutpie", "numpyro"}
        NUTS implementation. ``"auto"`` (default) runs ``"jax"`` when jax and numpyro are
        installed and the model and keywords allow it, else ``"pymc"``. ``"jax"``: NumPyro's
        compiled NUTS on bayesmoe's own JAX log density of the same model (tested equal to the
        PyMC model's logp), chains on parallel CPU devices, no PyTensor compilation. ``"pymc"``:
        PyMC's NUTS on the compiled PyMC graph. ``"nutpie"``/``"numpyro"``: PyMC's bridges
        (nutpie needs the ``fast`` extra). Which one ran is ``trace.attrs["sampler"]``.
    init : {"mm", "map", "prior"}, mixing measure or MM result
        Start every chain from the MM maximum-likelihood fit (default), from PyMC's MAP, from
        PyMC's jittered prior-based initial point, or from a given measure in user units (e.g. a
        :func:`~bayesmoe.inference.fit_mle` result, to avoid refitting). Random starts can leave
        chains in minor modes (docs/math.md §1.1).
    jitter : float
        sd of the per-chain jitter added to the start (standardised scale).
    relabel : bool
        Align expert labels across draws and chains (:func:`bayesmoe.diagnostics.relabel`).
        Skipped with ``ordered=True``: the ordering of the standardised intercepts ``b_std``
        already identifies the labels.
    log_likelihood : bool
        Add the ``log_likelihood`` group (pointwise, for ``az.loo``).
    random_seed : int, optional
    progressbar : bool
    **sample_kwargs
        Passed through to :func:`pymc.sample` (e.g. ``target_accept``). The ``jax`` backend
        takes ``target_accept``, ``max_treedepth``, ``dense_mass`` (default True),
        ``adapt_mass_matrix`` (default True) and ``init_mass`` (``"hessian"``, default: the
        inverse observed information at the MM start; ``"identity"``) and ``reparam``
        (``"gate-scaled"``: sample expert parameters scaled by their expert's gate mass;
        ``"gate-scaled-slopes"``: and the lightest expert's gate slopes;
        :mod:`bayesmoe.inference.nuts.reparam`; default None) and ``pool_mass`` (True: the
        chains' dense mass-matrix windows are pooled; default False); any other keyword makes
        ``"auto"`` use PyMC, with a warning. A keyword neither function takes raises TypeError
        naming the nearest valid one; ``model``, ``step``, ``initvals`` and ``nuts_sampler``
        are set by bayesmoe and refused.

    Returns
    -------
    xarray.DataTree
        Groups posterior, sample_stats, observed_data, constant_data, (log_likelihood); the
        posterior holds the mixing measure in user units (``beta0, beta1, a, b``, ``sigma``) and
        the standardised free variables (``*_std``); provenance in ``attrs``.

    Warns
    -----
    bayesmoe.ConvergenceWarning
        After sampling: relabelled R-hat > 1.01 or bulk ESS < 100 per chain (naming the worst
        parameters), or divergences (:mod:`bayesmoe.diagnostics.convergence`).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference import sample
    >>> X, y, _ = simulate("S-B", n=300, random_seed=0)
    >>> trace = sample(X, y, n_experts=3, draws=20, tune=20, chains=1,
    ...                random_seed=0, progressbar=False)  # tiny run for the example
    >>> dict(trace.posterior["beta0"].sizes)
    {'chain': 1, 'draw': 20, 'expert': 3}
    """
    family = family_keyword(family, experts, "sample")
    from bayesmoe.formula import entry_inputs

    X, y, kw, design = entry_inputs(  # the formula form's matrices, or the matrices given
        X,
        y,
        data,
        formula,
        gate_formula,
        family,
        offset=offset,
        gate_X=gate_X,
        feature_names=feature_names,
        gate_feature_names=gate_feature_names,
        classes=classes,
    )
    feature_names, gate_feature_names = kw["feature_names"], kw["gate_feature_names"]
    offset, gate_X, classes = kw["offset"], kw["gate_X"], kw.get("classes")
    _check_backend(backend)
    _check_sample_kwargs("sample", sample_kwargs, backend)
    _, tune, _, _ = check_sampler_args(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        target_accept=sample_kwargs.get("target_accept"),
    )
    fitted_start = isinstance(init, xr.Dataset) or hasattr(init, "measure_")
    if not fitted_start and init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}; got {init!r}.")
    opts = dict(
        n_experts=n_experts,
        family=family,
        gate=gate,
        temperature=temperature,
        identifiability=identifiability,
        ordered=ordered,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    spec = info = fixed_k_spec(X, y, **opts)  # every input check; PyMC is not imported
    requested = backend
    model, fm, fallback = None, None, None
    if (
        backend in ("auto", "jax")
        and (init == "mm" or fitted_start)
        and not set(sample_kwargs) - _JAX_KWARGS
        and _installed("jax")
    ):
        from bayesmoe.inference.nuts.flat_model import flat_model_from_spec

        fm = flat_model_from_spec(spec)  # the compiled path needs no PyMC model
    if fm is not None:
        backend, layout = "jax", trace_layout(spec)
        layout = dict(zip(("coords", "dims", "constant_data"), layout, strict=True))
    else:
        from bayesmoe.models.builder import model_from_spec

        model = model_from_spec(spec)  # the same spec: nothing is validated again
        backend, fm, fallback = _resolve_backend(backend, model, info, sample_kwargs)
        layout = layout_from_model(model) if fm is not None else None
    if tune is None:
        tune = DEFAULT_TUNE.get(backend, 1000) if init == "mm" or fitted_start else 1000
    seed_seq = np.random.SeedSequence(random_seed)
    init_seed, jitter_seed, pm_seed = (int(s.generate_state(1)[0]) for s in seed_seq.spawn(3))
    run = None
    if backend == "jax":  # the sampler's programs load/compile while the MM start is fitted
        run = _prepare_jax(
            fm,
            draws=draws,
            tune=tune,
            chains=chains,
            log_likelihood=log_likelihood,
            **sample_kwargs,
        )
    try:
        t0 = time.perf_counter()
        point, _start_measure = start_values(spec, method=init, model=model, random_seed=init_seed)
        t_init = time.perf_counter() - t0
        if run is not None:
            trace, meta = _sample_jax(
                run,
                layout,
                model,
                info,
                point,
                jitter=jitter,
                jitter_seed=jitter_seed,
                pm_seed=pm_seed,
                progressbar=progressbar,
                **sample_kwargs,
            )
    finally:
        if run is not None:
            run.close()
    extra_attrs = {"backend_requested": requested}
    if fallback:
        extra_attrs["backend_fallback"] = fallback
    if backend == "jax":
        t_sample = meta.pop("seconds_sampling")
        extra_attrs.update(meta)
    else:
        import pymc as pm

        kwargs = dict(sample_kwargs)
        if point is not None:
            rng = np.random.default_rng(jitter_seed)
            starts = [_jitter(point, info, rng, jitter) for _ in range(chains)]
            # nutpie takes one start for all chains (it jitters nothing itself)
            kwargs["initvals"] = starts[0] if backend == "nutpie" else starts
            if backend == "pymc":
                kwargs.setdefault("init", "adapt_diag")  # the starts are jittered already
        elif info.initvals():
            kwargs.setdefault("initvals", info.initvals())
        _say(
            f"compiling model ({backend}; a first run on a new machine compiles for ~30 s, "
            "later runs reuse the cache)...",
            progressbar,
        )
        t1 = time.perf_counter()
        trace = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=pm_seed,
            model=model,
            nuts_sampler=backend,
            progressbar=progressbar,
            compute_convergence_checks=False,
            **kwargs,
        )
        t_sample = time.perf_counter() - t1
        if log_likelihood:
            pm.compute_log_likelihood(trace, model=model, progressbar=False)
    trace.attrs.update(
        provenance_attrs(
            info,
            random_seed=random_seed,
            sampler=backend,
            init="measure" if fitted_start else init,
            draws=draws,
            tune=tune,
            chains=chains,
            seconds_init=t_init,
            seconds_sampling=t_sample,
        )
    )
    trace.attrs.update(extra_attrs)
    trace.attrs["n_experts"] = info.n_experts
    if relabel and info.n_experts > 1 and not info.ordered:  # ordering already fixes labels
        from bayesmoe.diagnostics.relabel import relabel as _relabel

        trace = _relabel(trace)
    from bayesmoe.diagnostics.convergence import check_fixed_k

    if design is not None:  # the formulas and the design, for predictions on new DataFrames
        trace.attrs.update(design.attrs())
    check_fixed_k(trace)
    return trace
