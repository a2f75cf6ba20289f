"""Evidence agreement: p(K | y) from reversible jump vs p(K) Z_K normalised, Z_K from SMC.

Small data (n = 20, d = 1, K_max = 3) so that `pm.sample_smc` estimates each fixed-K marginal
likelihood Z_K precisely; the fixed-K models are the padded model's conditionals given K
(``build_random_k_model(..., fixed_experts=K)``: the same i.i.d. atom prior).

Monte Carlo error. RJ: sqrt(p (1 - p) / ESS) with ESS the arviz ESS of the indicator of K.
SMC: Z_K is averaged over chains (each chain's estimator is unbiased for Z_K), its relative
standard error is sd/mean/sqrt(chains) of the chains' Z estimates, propagated to the normalised
p by the delta method. Each |p_RJ − p_SMC| must be below z · sqrt(se_RJ² + se_SMC²) with
z = Φ⁻¹(1 − 0.001 / 6): false-alarm rate 0.1 % over the three K (Bonferroni).
"""

import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytest
from scipy.special import logsumexp

from bayesmoe.inference.rjmcmc import k_posterior, sample_random_k
from bayesmoe.models.random_k import build_random_k_model
from tests.helpers import ALPHA, bonferroni_z

PMF = np.array([0.9, 0.06, 0.04])  # puts p(K | y) mass on every K (no rare state)
Z_CRIT = bonferroni_z(3, ALPHA)  # Phi^-1(1 - 0.001 / 6)


def small_data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, 1))
    gate = 1 / (1 + np.exp(-3 * X[:, 0]))
    z = rng.uniform(size=n) < gate
    y = np.where(z, 0.6 + 0.8 * X[:, 0], -0.3 - 0.4 * X[:, 0]) + 0.5 * rng.normal(size=n)
    return X, y


def smc_log_evidence(X, y, K, *, draws=3000, chains=4, seed=0):
    model, _ = build_random_k_model(X, y, max_experts=3, fixed_experts=K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with model:
            # threshold 0.9 (PyMC default 0.5): more tempering stages, less bias in log Z
            tr = pm.sample_smc(
                draws=draws,
                chains=chains,
                cores=2,
                random_seed=seed + K,
                progressbar=False,
                compute_convergence_checks=False,
                threshold=0.9,
            )
    raw = tr["sample_stats"]["log_marginal_likelihood"].values
    per_chain = []
    for c in raw:  # per chain: the per-stage list (NaN-padded) whose last finite entry is log Z
        arr = np.asarray(c, dtype=float).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size:
            per_chain.append(arr[-1])
    assert len(per_chain) >= 2, f"SMC returned no finite log evidence for K={K}: {raw}"
    return np.array(per_chain)


def normalised_with_errors(log_z_chains, prior):
    """p(K) Z_K normalised, and its delta-method standard errors from the chain spread."""
    K = len(log_z_chains)
    log_z = np.array([logsumexp(v) - np.log(v.size) for v in log_z_chains])
    rel_se = np.array(
        [
            np.std(np.exp(v - v.max()), ddof=1) / np.mean(np.exp(v - v.max())) / np.sqrt(v.size)
            for v in log_z_chains
        ]
    )
    lw = np.log(prior) + log_z
    p = np.exp(lw - logsumexp(lw))
    # d p_k / d log Z_j = p_k (delta_kj - p_j); var(log Z_j) ~ rel_se_j^2
    J = p[:, None] * (np.eye(K) - p[None, :])
    se = np.sqrt((J**2 * rel_se[None, :] ** 2).sum(1))
    return p, se


@pytest.mark.slow
def test_rj_posterior_of_k_matches_smc_evidence():
    X, y = small_data()
    log_z = [smc_log_evidence(X, y, K) for K in (1, 2, 3)]
    p_smc, se_smc = normalised_with_errors(log_z, PMF)
    trace = sample_random_k(
        X,
        y,
        max_experts=3,
        experts_prior=PMF,
        draws=2500,
        tune=500,
        chains=4,
        cores=2,
        random_seed=0,
        step_kwargs={"moves_per_step": 5},
        sampler="step",  # the compiled sampler is checked against it in test_compiled_covariates
    )
    p_rj = k_posterior(trace).values
    k = trace["posterior"]["n_experts"].values
    ess = np.array(
        [az.ess((k == K).astype(float)) if 0 < p_rj[K - 1] < 1 else k.size for K in (1, 2, 3)]
    )
    se_rj = np.sqrt(p_rj * (1 - p_rj) / ess)
    z = np.abs(p_rj - p_smc) / np.sqrt(se_rj**2 + se_smc**2 + 1e-12)
    print("log Z per chain", [v.round(3).tolist() for v in log_z])
    print("p_smc", p_smc.round(4), "se", se_smc.round(4))
    print("p_rj ", p_rj.round(4), "se", se_rj.round(4), "ess", ess.round(0), "z", z.round(2))
    assert np.all(z < Z_CRIT)
    # must-fail: the same comparison without the prior factor p(K) is rejected, so the test
    # has the power to see an error of that size (a factor 1.7-2.5 in the odds)
    p_wrong, se_wrong = normalised_with_errors(log_z, np.ones(3) / 3)
    z_wrong = np.abs(p_rj - p_wrong) / np.sqrt(se_rj**2 + se_wrong**2 + 1e-12)
    assert np.any(z_wrong > Z_CRIT), z_wrong
