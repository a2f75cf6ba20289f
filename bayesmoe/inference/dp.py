"""Sampling the Dirichlet-process-gated MoE with NUTS (model: :mod:`bayesmoe.models.dp`)."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable

import numpy as np
import pymc as pm
import xarray as xr

from bayesmoe._validation import (
    check_pymc_sampler_call,
    family_keyword,
)
from bayesmoe.gates import is_custom, transform_of
from bayesmoe.models.dp import build_dp_model, check_truncation, occupied_experts

__all__ = ["sample_dp"]


def sample_dp(
    X,
    y,
    *,
    max_experts: int = 8,
    alpha: float | None = 1.0,
    alpha_prior: tuple[float, float] | None = None,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    temperature: float = 1.0,
    priors=None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    random_seed: int | None = None,
    truncation_tol: float = 0.01,
    progressbar: bool = False,
    feature_names=None,
    classes=None,
    experts: str | None = None,
    **sample_kwargs,
) -> xr.DataTree:
    """Sample the DP-gated MoE with NUTS and report the occupied experts per draw.

    Parameters
    ----------
    X, y, max_experts, alpha, alpha_prior, experts, gate, temperature, priors
        Model options, see :func:`build_dp_model`.
    draws, tune, chains, cores, random_seed, progressbar, **sample_kwargs
        Passed to :func:`pymc.sample`.
    truncation_tol : float
        Warn (:class:`TruncationWarning`) when the posterior mean of the last stick's weight
        ``w_{K_max}`` exceeds this: the truncation level is then too small.
    feature_names, classes : sequence, optional

    Returns
    -------
    xarray.DataTree
        Posterior with ``weights``, the measure in user units and ``n_occupied`` (chain, draw):
        the occupied experts per draw (Miller–Harrison caution: inconsistent for K*, see the
        module docstring). ``attrs["last_stick_weight"]`` holds the posterior mean of w_{K_max}.

    Examples
    --------
    Not run as a doctest (skipped): it compiles and runs a PyMC sampler, 5-15 s even
    with 20 draws.

    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference.dp import sample_dp
    >>> X, y, _ = simulate("S-B", n=200, random_seed=0)
    >>> trace = sample_dp(X, y, max_experts=6, draws=200, tune=200, chains=2,
    ...                   random_seed=0)  # doctest: +SKIP
    >>> float(trace.posterior["n_occupied"].mean())  # doctest: +SKIP
    """
    family = family_keyword(family, experts, "sample_dp")
    from bayesmoe import __version__

    _, tune, chains, _ = check_pymc_sampler_call(
        "sample_dp",
        sample_kwargs,
        _OWN_PARAMETERS,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
    )
    if not (truncation_tol > 0):
        raise ValueError(f"`truncation_tol` must be positive; got {truncation_tol!r}.")
    model, info = build_dp_model(
        X,
        y,
        max_experts=max_experts,
        alpha=alpha,
        alpha_prior=alpha_prior,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
    )
    X_arr, y_arr = info.X, info.y  # validated once, by the builder
    seeds = np.random.SeedSequence(random_seed).spawn(2)
    pm_seed, occ_seed = (int(s.generate_state(1)[0]) for s in seeds)
    t0 = time.perf_counter()
    trace = pm.sample(
        draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=pm_seed,
        model=model,
        progressbar=progressbar,
        compute_convergence_checks=False,
        **sample_kwargs,
    )
    seconds = time.perf_counter() - t0
    trace.attrs.update(
        {
            "bayesmoe_version": __version__,
            "family": info.family,
            "gate": info.gate,
            "temperature": info.temperature,
            "max_experts": info.max_experts,
            "alpha": "gamma" if info.alpha is None else info.alpha,
            "alpha_prior": json.dumps(info.alpha_prior),
            "sampler": "nuts",
            "random_seed": "none" if random_seed is None else int(random_seed),
            "data_transform": json.dumps(info.standardizer.to_dict()),
            "seconds_sampling": seconds,
        }
    )
    occ = occupied_experts(
        trace,
        X_arr,
        y_arr,
        random_seed=occ_seed,
        gate=transform_of(info.gate, info.gate_fn) if is_custom(info.gate) else None,
    )
    trace["posterior"]["n_occupied"] = occ
    trace.attrs["last_stick_weight"] = check_truncation(trace, tol=truncation_tol)
    return trace


_OWN_PARAMETERS = set(inspect.signature(sample_dp).parameters) - {"sample_kwargs"}
