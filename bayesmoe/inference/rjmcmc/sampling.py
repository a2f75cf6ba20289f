"""Sampling the random-K MoE: reversible-jump steps + NUTS; summaries of a random-K trace."""

from __future__ import annotations

import inspect
import json
import re
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pymc as pm
import xarray as xr

from bayesmoe._validation import (
    check_enough_rows,
    check_int,
    check_pymc_sampler_call,
    family_keyword,
    n_parameters,
    nuts_step_keywords,
    warn_user,
)
from bayesmoe.families import get_family
from bayesmoe.inference.rjmcmc.moves import MOVES, SlotLayout
from bayesmoe.inference.rjmcmc.step import ReversibleJump
from bayesmoe.models.random_k import (
    K_VAR,
    hyper_start,
    random_k_model_from_spec,
    random_k_spec,
    slot_prior_draw,
)
from bayesmoe.models.spec import ModelSpec

__all__ = [
    "INITS",
    "acceptance_summary",
    "k_posterior",
    "parse_gate_prior",
    "relabel_at_k",
    "sample_random_k",
    "start_points",
]

INITS = ("mm", "prior")
_GATE_SPEC = re.compile(r"^\s*dp\s*:\s*(gamma\s*:\s*)?([0-9.eE+-]+)\s*(?:,\s*([0-9.eE+-]+))?\s*$")


def parse_gate_prior(spec: str) -> dict:
    """Parse a CLI gate prior ``"dp:ALPHA"`` (fixed concentration) or ``"dp:gamma:A,B"``
    (``alpha ~ Gamma(A, B)``, rate B) into keyword arguments of
    :func:`bayesmoe.models.dp.build_dp_model`.

    Examples
    --------
    >>> from bayesmoe.inference.rjmcmc import parse_gate_prior
    >>> parse_gate_prior("dp:1.5")
    {'alpha': 1.5}
    >>> parse_gate_prior("dp:gamma:2,1")
    {'alpha': None, 'alpha_prior': (2.0, 1.0)}
    """
    if not isinstance(spec, str):
        raise TypeError(f"`gate_prior` spec must be a string; got {type(spec).__name__}.")
    m = _GATE_SPEC.match(spec.lower())
    hint = (
        "expected 'dp:ALPHA' (ALPHA > 0, fixed) or 'dp:gamma:A,B' (alpha ~ Gamma(A, B)), "
        "e.g. --gate-prior dp:1.0"
    )
    if m is None:
        raise ValueError(f"Cannot read the gate prior {spec!r}; {hint}.")
    is_gamma, first, second = m.group(1) is not None, m.group(2), m.group(3)
    try:
        a = float(first)
        b = float(second) if second is not None else None
    except ValueError:
        raise ValueError(f"Cannot read the numbers in {spec!r}; {hint}.") from None
    if is_gamma:
        if b is None or not (a > 0 and b > 0):
            raise ValueError(f"'dp:gamma:A,B' needs two positive numbers; got {spec!r}.")
        return {"alpha": None, "alpha_prior": (a, b)}
    if b is not None or not (np.isfinite(a) and a > 0):
        raise ValueError(f"'dp:ALPHA' needs one positive number; got {spec!r}; {hint}.")
    return {"alpha": a}


# ----- start values -------------------------------------------------------------------------------
def _active_rows_from_measure(measure: xr.Dataset, info: ModelSpec) -> np.ndarray:
    """Slot rows (K, D) in value space of a user-units measure with K experts (temperature 1)."""
    G = info.standardizer.to_standard(measure)
    T = info.temperature
    beta0 = G["beta0"].values * T
    beta1 = G["beta1"].transpose("gate_feature", "expert").values * T
    beta0 = beta0 - beta0.mean()
    beta1 = beta1 - beta1.mean(-1, keepdims=True)
    point = {"beta0_std": beta0, "beta1_std": beta1}
    fam = get_family(info.family)
    canon = {k: G[k].transpose(*dims).values for k, dims in fam.canonical_dims.items()}
    free = fam.free_from_canonical(canon)
    for p in fam.params:  # value space: positive parameters on the log scale
        name = f"{p.name}_std"
        if p.positive:
            point[f"{name}_log__"] = np.log(free[name])
        else:
            point[name] = free[name]
    layout = SlotLayout(tuple(info.slot_vars), tuple(info.slot_groups))
    return layout.pack(point)


def start_points(
    info: ModelSpec,
    *,
    chains: int,
    start_experts=None,
    init: str = "mm",
    random_seed=None,
    mm_max_iter: int = 2000,
) -> list[dict]:
    """One start point per chain (value space): K from ``start_experts`` (an int, or one per
    chain; default spread over 1..K_max across chains), active slots from the MM fit at that K
    (``init="mm"``, at most ``mm_max_iter`` SQUAREM cycles per start) or from the prior
    (``init="prior"``), inactive slots from the prior. The MM fits read the spec's own data
    (validated once).
    """
    if init not in INITS:
        raise ValueError(f"`init` must be one of {INITS}; got {init!r}.")
    K_max = info.max_experts
    if start_experts is None:
        support = np.flatnonzero(info.prior_pmf > 0) + 1
        picks = (
            np.linspace(0, support.size - 1, chains).round().astype(int)
            if chains > 1
            else [int(np.argmax(info.prior_pmf[support - 1]))]
        )
        start_experts = [int(support[i]) for i in picks]
    elif np.ndim(start_experts) == 0:
        start_experts = [start_experts] * chains
    start_experts = [check_int(k, "start_experts") for k in start_experts]
    if len(start_experts) != chains or max(start_experts) > K_max:
        raise ValueError(
            f"`start_experts` must be one int in 1..{K_max} or {chains} of them (one per chain); "
            f"got {start_experts}."
        )
    rng = np.random.default_rng(random_seed)
    layout = SlotLayout(tuple(info.slot_vars), tuple(info.slot_groups))
    fits: dict[int, np.ndarray] = {}
    points = []
    for K in start_experts:
        theta = layout.pack(slot_prior_draw(info, rng, size=K_max))
        if init == "mm" and not info.prior_only:
            if K not in fits:
                from bayesmoe.inference.mle.mm import fit_mle  # late: optional heavy module
                from bayesmoe.inference.mle.mm_warmup import fixed_engine

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    try:
                        res = fit_mle(
                            spec=info,
                            n_experts=K,
                            n_starts=4,
                            max_iter=mm_max_iter,
                            random_seed=int(rng.integers(2**31)),
                            # an engine not chosen by timing
                            engine=fixed_engine(info.n, info.family, not info.gate_shared),
                        )
                    except ValueError:  # K too large for an MLE on these data: prior start
                        res = None
                fits[K] = None if res is None else _active_rows_from_measure(res.measure_, info)
            if fits[K] is not None:
                theta[:K] = fits[K] + 0.01 * rng.standard_normal(fits[K].shape)
        point = layout.unpack(theta)
        point.update(hyper_start(info))  # the slot draws above are at this hyperparameter
        point[K_VAR] = np.asarray(K - 1, dtype=np.int64)
        points.append(point)
    return points


# ----- sampling -----------------------------------------------------------------------------------
def sample_random_k(
    X=None,
    y=None,
    *,
    max_experts: int,
    experts_prior="poisson:1.0",
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    priors=None,
    prior_only: bool = False,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    init: str = "mm",
    start_experts: int | Sequence[int] | None = None,
    step_kwargs: dict | None = None,
    random_seed: int | None = None,
    progressbar: bool = False,
    feature_names=None,
    classes=None,
    continuous: str = "auto",
    offset=None,
    experts: str | None = None,
    gate_X=None,
    gate_feature_names=None,
    sampler: str = "auto",
    trials=None,
    data=None,
    formula: str | None = None,
    gate_formula: str | None = None,
    **sample_kwargs,
) -> xr.DataTree:
    """Sample the posterior of a softmax-gated MoE with a random number of experts.

    Reversible-jump moves (:class:`~bayesmoe.inference.rjmcmc.ReversibleJump`: birth/death,
    split/merge, a permutation of the active slots) change K; NUTS updates the continuous
    parameters of all K_max slots (inactive ones follow their prior).

    Parameters
    ----------
    X, y, max_experts, experts_prior, experts, gate, temperature, priors, prior_only
        Model options, see :func:`bayesmoe.models.random_k.build_random_k_model`.
        ``prior_only=True`` switches the likelihood off and runs the same steps: the draws of K
        must then reproduce the prior pmf.
    draws, tune, chains, cores
        Passed to :func:`pymc.sample`; proposal scales are adapted during ``tune`` only.
    init : {"mm", "prior"}
        Start the active experts of each chain at the MM maximum-likelihood fit with that
        chain's K (default), or from the prior.
    start_experts : int or sequence of int, optional
        Starting K per chain; default spread over the support of the prior across chains
        (over-dispersed starts, so that stuck chains show).
    step_kwargs : dict, optional
        Passed to :class:`~bayesmoe.inference.rjmcmc.ReversibleJump`.
    random_seed : int, optional
    progressbar : bool
    continuous : {"auto", "nuts", "gibbs"}
        Update of the continuous parameters between reversible-jump steps: NUTS, or the exact
        conjugate Gibbs sweep of :class:`bayesmoe.inference.rjmcmc.gibbs.ConjugateGibbs` (only for a
        mixture without covariates, X of shape (n, 0), under ``priors="richardson-green"``).
        ``"auto"`` (default) takes Gibbs where it applies, NUTS elsewhere.
    offset : array_like, shape (n_obs,), optional
        Per-row log-exposure of families with a log link (``family="poisson"``).
    trials : array_like, shape (n_obs,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).
    gate_X, gate_feature_names : optional
        The gate's own covariates and their labels (default: the experts' ``X``); zero columns
        give constant mixing weights. See :func:`bayesmoe.models.build_model`.
    data, formula, gate_formula : DataFrame, str, str, optional
        The formula form instead of ``X``, ``y``, ``offset``, ``gate_X`` and the names, as in
        :func:`bayesmoe.inference.sample`; the trace's ``attrs`` keep the design.
    sampler : {"auto", "compiled", "step"}
        "compiled": the whole chain (Gibbs sweeps and reversible-jump moves) in one JAX program
        (:mod:`bayesmoe.inference.rjmcmc.compiled`; only the models of the conjugate Gibbs sweep:
        d = 0, Gaussian experts, ``priors="richardson-green"``; chains start from the prior,
        ``init`` and ``progressbar`` do not apply, ``step_kwargs`` takes
        ``moves_per_step`` (default 5), ``sweeps_per_step`` (Gibbs sweeps per draw, each followed
        by ``moves_per_step`` moves; default 10), ``p_birth_death``, ``split_sd``,
        ``split_beta``, ``tune``). For experts with covariates (Gaussian or categorical
        experts, the default prior set) the compiled program is
        :mod:`bayesmoe.inference.rjmcmc.compiled_covariates` (within-K sweeps: allocations,
        the gate by HMC, the experts conjugate or by HMC; prior birth/death and split/merge;
        ``step_kwargs`` takes ``moves_per_step`` (default 5), ``sweeps_per_step`` (default 4),
        ``leapfrog_steps`` (default 6), ``p_birth_death``, ``split_sd``, ``split_beta``,
        ``birth`` ("prior", default, or "anchors": the anchor-cell birth of categorical
        experts, :mod:`bayesmoe.inference.rjmcmc.compiled_births`), ``birth_prior_mix``
        (default 0.5); chains start from ``init``). "step": PyMC's sampler with the step methods
        (NUTS for the continuous parameters). "auto" (default): "compiled" for every model it
        covers (the d = 0 Richardson–Green mixtures; Gaussian and categorical experts with
        covariates under the default prior set) when no option of the step method or of
        :func:`pymc.sample` is given, else "step". On S-B (n = 40, K_max = 4) the compiled
        p(K | y) matches an independent evidence computation, where the step method's chains
        disagree (benchmarks/README.md, "Reference p(K | y) on S-B n = 40").
    **sample_kwargs
        Passed to :func:`pymc.sample`; the NUTS step's own keywords (``target_accept``,
        ``max_treedepth``, ..., or ``nuts={...}``) go to the NUTS step of the compound sampler
        (with the Gibbs update they do not apply, and a warning says so). Unknown keywords raise
        TypeError naming the nearest valid one.

    Returns
    -------
    xarray.DataTree
        ``posterior``: ``n_experts`` per draw, ``active[expert]``, the padded mixing measure in
        user units (``beta0, beta1, a, b``, ``sigma``) and the standardised free variables;
        ``sample_stats``: the NUTS stats and the reversible-jump stats ``move``,
        ``current_n_experts``, ``proposed_n_experts``, ``accepted``, ``accept``,
        ``log_accept_ratio``; provenance in ``attrs``. Expert labels are *not* aligned (the
        permutation move shuffles them on purpose): use label-invariant summaries such as
        :func:`k_posterior`, or relabel draws conditionally on K.

    Warns
    -----
    bayesmoe.ConvergenceWarning
        After sampling: a chain whose K never changes while others move (named), no accepted
        trans-dimensional move, or divergences (:mod:`bayesmoe.diagnostics.convergence`).

    Examples
    --------
    Not run as a doctest (skipped): it compiles and runs a PyMC sampler, 5-15 s even
    with 20 draws.

    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference.rjmcmc import sample_random_k, k_posterior
    >>> X, y, _ = simulate("S-B", n=200, random_seed=0)
    >>> trace = sample_random_k(X, y, max_experts=4, draws=200, tune=200, chains=2,
    ...                         random_seed=0)  # doctest: +SKIP
    >>> k_posterior(trace)  # doctest: +SKIP
    """
    family = family_keyword(family, experts, "sample_random_k")
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
    from bayesmoe.inference.nuts.sampling import provenance_attrs

    _, tune, chains, _ = check_pymc_sampler_call(
        "sample_random_k",
        sample_kwargs,
        _OWN_PARAMETERS,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
    )
    info = random_k_spec(
        X,
        y,
        max_experts=max_experts,
        experts_prior=experts_prior,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        prior_only=prior_only,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    if not prior_only:  # before the model is built (and compiled): the rows must at least fit
        # K = 1, the smallest model of the prior's support; K_max may exceed what n could fit
        # alone (e.g. Richardson & Green's k_max = 30 for the 82 galaxy velocities).
        check_enough_rows(info.n, n_parameters(1, info.d, info.family, info.n_classes))
    model = random_k_model_from_spec(info)
    from bayesmoe.inference.rjmcmc.compiled_sampling import use_compiled

    if use_compiled(sampler, info, continuous, step_kwargs, sample_kwargs):
        from bayesmoe.inference.rjmcmc.compiled_sampling import sample_compiled

        trace = sample_compiled(
            model,
            info,
            draws=draws,
            tune=tune,
            chains=chains,
            start_experts=start_experts,
            step_kwargs=step_kwargs,
            random_seed=random_seed,
            init=init,
        )
        if design is not None:  # the formulas and the design, for predictions on new data
            trace.attrs.update(design.attrs())
        from bayesmoe.diagnostics.convergence import check_random_k

        check_random_k(trace)
        return trace
    seeds = np.random.SeedSequence(random_seed).spawn(3)
    init_seed, step_seed, pm_seed = (int(s.generate_state(1)[0]) for s in seeds)
    t0 = time.perf_counter()
    initvals = start_points(
        info,
        chains=chains,
        start_experts=start_experts,
        init=init,
        random_seed=init_seed,
    )
    t_init = time.perf_counter() - t0
    from bayesmoe.inference.rjmcmc.gibbs import ConjugateGibbs, gibbs_eligible

    if continuous not in ("auto", "nuts", "gibbs"):
        raise ValueError(f"`continuous` must be 'auto', 'nuts' or 'gibbs'; got {continuous!r}.")
    use_gibbs = continuous == "gibbs" or (continuous == "auto" and gibbs_eligible(info))
    # NUTS keywords go to the NUTS step itself: with step=[...] given, pm.sample drops them
    sample_kwargs = dict(sample_kwargs)
    nuts_kwargs = dict(sample_kwargs.pop("nuts", None) or {})
    step_names = nuts_step_keywords()
    nuts_kwargs.update({k: sample_kwargs.pop(k) for k in list(sample_kwargs) if k in step_names})
    if use_gibbs and nuts_kwargs:
        warn_user(
            f"keyword(s) {sorted(nuts_kwargs)} apply to NUTS, but the continuous parameters are "
            "updated by the conjugate Gibbs sweep here; they are ignored (pass "
            "continuous='nuts' to use NUTS)."
        )
    with model:
        rj = ReversibleJump(info=info, rng=step_seed, **(step_kwargs or {}))
        if use_gibbs:
            nuts = ConjugateGibbs(info=info, rng=step_seed + 1)
        else:
            nuts = pm.NUTS([v for v in model.value_vars if v.name != K_VAR], **nuts_kwargs)
    t1 = time.perf_counter()
    trace = pm.sample(
        draws,
        tune=tune,
        chains=chains,
        cores=cores,
        step=[rj, nuts],
        initvals=initvals,
        random_seed=pm_seed,
        model=model,
        progressbar=progressbar,
        compute_convergence_checks=False,
        **sample_kwargs,
    )
    t_sample = time.perf_counter() - t1
    trace.attrs.update(
        provenance_attrs(
            info,
            random_seed=random_seed,
            sampler="reversible_jump+gibbs" if use_gibbs else "reversible_jump+nuts",
            init=init,
            draws=draws,
            tune=tune,
            chains=chains,
            seconds_init=t_init,
            seconds_sampling=t_sample,
        )
    )
    trace.attrs.update(
        {
            "max_experts": info.max_experts,
            "experts_prior": json.dumps(info.prior_pmf.tolist()),
            "prior_only": int(info.prior_only),
            "move_codes": json.dumps(MOVES),
            "start_experts": json.dumps([int(p[K_VAR]) + 1 for p in initvals]),
        }
    )
    if design is not None:
        trace.attrs.update(design.attrs())
    from bayesmoe.diagnostics.convergence import check_random_k

    check_random_k(trace)
    return trace


_OWN_PARAMETERS = set(inspect.signature(sample_random_k).parameters) - {"sample_kwargs"}


# ----- summaries ----------------------------------------------------------------------------------
def _posterior(trace) -> xr.Dataset:
    if isinstance(trace, xr.DataTree):
        if "posterior" not in trace.children:
            raise ValueError("The DataTree has no 'posterior' group; pass a sample_random_k trace.")
        return trace["posterior"].to_dataset()
    if isinstance(trace, xr.Dataset):
        return trace
    raise TypeError(f"`trace` must be an xarray.DataTree or Dataset; got {type(trace).__name__}.")


def k_posterior(
    trace, *, max_experts: int | None = None, by_chain: bool = False
) -> xr.DataArray | xr.Dataset:
    """Posterior probabilities p(K | y) over the number of experts, with their Monte Carlo error.

    Parameters
    ----------
    trace : xarray.DataTree or xarray.Dataset
        A :func:`sample_random_k` trace (or its posterior), with ``n_experts`` per draw.
    max_experts : int, optional
        Length of the support 1..K_max (default: from the trace attrs or the ``expert`` dim).
    by_chain : bool
        Return a Dataset with the per-chain estimates too (see Returns).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        By default a DataArray, dim ``n_experts`` (coords 1..K_max): the fraction of draws (all
        chains pooled) at each K, with the non-index coordinates ``mcse`` and ``ess`` along
        ``n_experts``: the Monte Carlo standard error sqrt(p (1 - p) / ESS) of each probability,
        where ESS is the effective sample size (ArviZ, ``method="mean"``) of the indicator
        1{K = k} over (chain, draw). Where the indicator is constant over all draws (p = 0 or 1)
        the ESS and MCSE cannot be estimated and are NaN. ``attrs["n_draws"]`` is the number of
        draws. With ``by_chain=True``: a Dataset with ``p_n_experts``, ``mcse``, ``ess``
        (n_experts) and ``p_chain`` (chain, n_experts), each chain's own estimate; chains that
        disagree by much more than ``mcse`` have not mixed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.inference.rjmcmc import k_posterior
    >>> post = xr.Dataset({"n_experts": (("chain", "draw"), [[1, 2, 2, 3]])})
    >>> k_posterior(post, max_experts=3).values
    array([0.25, 0.5 , 0.25])
    >>> k = np.array([[2, 3] * 50, [2, 2] * 50])
    >>> pk = k_posterior(xr.Dataset({"n_experts": (("chain", "draw"), k)}), by_chain=True)
    >>> pk["p_chain"].sel(n_experts=2).values.tolist()
    [0.5, 1.0]
    """
    post = _posterior(trace)
    if "n_experts" not in post:
        raise ValueError("The posterior has no `n_experts`; pass a sample_random_k trace.")
    if not isinstance(by_chain, (bool, np.bool_)):
        raise TypeError(f"`by_chain` must be True or False; got {by_chain!r}.")
    if max_experts is None:
        attrs = trace.attrs if isinstance(trace, xr.DataTree) else post.attrs
        max_experts = int(
            attrs.get("max_experts", post.sizes.get("expert", 0)) or int(post["n_experts"].max())
        )
    da = post["n_experts"]
    if "chain" not in da.dims:
        da = da.expand_dims(chain=[0])
    if "draw" not in da.dims:
        da = da.expand_dims(draw=[0])
    da = da.transpose("chain", "draw", ...)
    k = np.asarray(da.values, dtype=int).reshape(da.shape[0], -1)  # (chain, draws)
    ks = np.arange(1, max_experts + 1)
    ind = k[None, :, :] == ks[:, None, None]  # (K, chain, draw)
    p = ind.mean(axis=(1, 2)) if k.size else np.zeros(max_experts)
    ess = np.full(max_experts, np.nan)
    varying = ind.any(axis=(1, 2)) & ~ind.all(axis=(1, 2))
    if varying.any() and k.shape[1] >= 4:
        import arviz as az

        for j in np.flatnonzero(varying):
            ess[j] = float(az.ess(ind[j].astype(float), method="mean"))
    with np.errstate(invalid="ignore", divide="ignore"):
        mcse = np.sqrt(p * (1 - p) / ess)
    coords = {"n_experts": ks, "mcse": ("n_experts", mcse), "ess": ("n_experts", ess)}
    out = xr.DataArray(
        p,
        dims="n_experts",
        coords=coords,
        name="p_n_experts",
        attrs={"n_draws": int(k.size), "description": "posterior probability of K experts"},
    )
    if not by_chain:
        return out
    chain = da["chain"].values if "chain" in da.coords else np.arange(k.shape[0])
    p_chain = ind.mean(axis=2).T if k.size else np.zeros((k.shape[0], max_experts))
    return xr.Dataset(
        {
            "p_n_experts": out.reset_coords(drop=True),
            "mcse": ("n_experts", mcse, {"description": "Monte Carlo standard error"}),
            "ess": ("n_experts", ess, {"description": "ESS of the indicator 1{K = k}"}),
            "p_chain": (("chain", "n_experts"), p_chain, {"description": "per-chain p(K | y)"}),
        },
        coords={"n_experts": ks, "chain": chain},
        attrs=out.attrs,
    )


def acceptance_summary(trace) -> xr.Dataset:
    """Per-move proposals and acceptance of the reversible-jump step (draws after tuning).

    Returns
    -------
    xarray.Dataset
        dim ``move`` (birth, death, split, merge) with ``proposed`` and ``accepted`` (counts over
        all chains and draws) and ``acceptance_rate``; the overall trans-dimensional acceptance
        rate is in ``attrs["acceptance_rate"]``.

    Examples
    --------
    >>> import xarray as xr
    >>> from bayesmoe.inference.rjmcmc import acceptance_summary
    >>> counts = {f"{k}_{m}": (("chain", "draw"), [[2, 1]] if k == "proposed" else [[1, 0]])
    ...           for m in ("birth", "death", "split", "merge") for k in ("proposed", "accepted")}
    >>> out = acceptance_summary(xr.DataTree.from_dict({"sample_stats": xr.Dataset(counts)}))
    >>> out["acceptance_rate"].values.round(3)
    array([0.333, 0.333, 0.333, 0.333])
    """
    if not isinstance(trace, xr.DataTree) or "sample_stats" not in trace.children:
        raise ValueError(
            "`trace` must be a DataTree with a 'sample_stats' group (from sample_random_k)."
        )
    ss = trace["sample_stats"].to_dataset()
    names = list(MOVES)
    missing = [f"proposed_{m}" for m in names if f"proposed_{m}" not in ss]
    if missing:
        raise ValueError(f"sample_stats has no {missing}: not a reversible-jump trace.")
    proposed = np.array([int(ss[f"proposed_{m}"].sum()) for m in names])
    accepted = np.array([int(ss[f"accepted_{m}"].sum()) for m in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(proposed > 0, accepted / np.maximum(proposed, 1), np.nan)
    total = proposed.sum()
    return xr.Dataset(
        {
            "proposed": ("move", proposed),
            "accepted": ("move", accepted),
            "acceptance_rate": ("move", rate),
        },
        coords={"move": names},
        attrs={"acceptance_rate": float(accepted.sum() / total) if total else float("nan")},
    )


def relabel_at_k(trace, n_experts: int, *, method: str = "pivot", random_seed=None) -> xr.Dataset:
    """The draws with K = ``n_experts``, restricted to the active slots and relabelled.

    The permutation move shuffles expert labels on purpose and chains settle on different
    labelings, so per-expert summaries of a random-K trace need relabelling; this is done
    conditionally on K. Draws of all chains at that K are pooled into one chain (dims
    ``chain`` of length 1, ``draw`` the pooled index) and passed to
    :func:`bayesmoe.diagnostics.relabel.relabel`.

    Parameters
    ----------
    trace : xarray.DataTree or xarray.Dataset
        A :func:`sample_random_k` trace (or its posterior).
    n_experts : int
        The K to condition on; it must occur in the trace.
    method : {"pivot", "stephens"}
        Passed to ``relabel`` ("stephens" needs the data, so only "pivot" works on a Dataset).
    random_seed : int, optional

    Returns
    -------
    xarray.Dataset
        The posterior variables with an ``expert`` dim restricted to experts 0..K-1, relabelled,
        plus ``relabel_permutation``; attrs ``n_experts`` and ``n_draws``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.inference.rjmcmc import relabel_at_k
    >>> rng = np.random.default_rng(0)
    >>> b = np.array([-2.0, 3.0, 0.0]) + 0.1 * rng.standard_normal((1, 200, 3))
    >>> b[0, 100:, :2] = b[0, 100:, 1::-1]               # label switch half-way
    >>> k = np.full((1, 200), 2); k[0, :10] = 3
    >>> post = xr.Dataset({"b": (("chain", "draw", "expert"), b),
    ...                    "n_experts": (("chain", "draw"), k)})
    >>> out = relabel_at_k(post, 2)
    >>> out.sizes["draw"], bool(out["b"].std("draw").max() < 0.5)
    (190, True)
    """
    from bayesmoe.diagnostics.relabel import relabel

    post = _posterior(trace)
    K = check_int(n_experts, "n_experts")
    if "n_experts" not in post:
        raise ValueError("The posterior has no `n_experts`; pass a sample_random_k trace.")
    post = post[[v for v in post.data_vars if post[v].size > 0]]  # d = 0: empty slopes
    stacked = post.stack(sample=("chain", "draw"))
    keep = np.asarray(stacked["n_experts"].values) == K
    if not keep.any():
        found = sorted(np.unique(post["n_experts"].values).tolist())
        raise ValueError(f"No draw has n_experts = {K}; the trace visits K in {found}.")
    sub = stacked.isel(sample=np.flatnonzero(keep))
    names = [v for v in sub.data_vars if "expert" in sub[v].dims and v != "active"]
    sub = sub[names].isel(expert=slice(0, K))
    sub = sub.drop_vars(["sample", "chain", "draw"]).rename({"sample": "draw"})
    sub = sub.expand_dims(chain=[0]).assign_coords(draw=np.arange(sub.sizes["draw"]))
    sub = sub.transpose("chain", "draw", ...)
    out = relabel(sub, method=method, random_seed=random_seed) if K > 1 else sub
    out.attrs.update({"n_experts": K, "n_draws": int(keep.sum())})
    return out
