"""Slow: reversible jump on the galaxy data under the Richardson–Green prior reproduces their
Table 1 (posterior of k, k ~ U{1..30}).

Tolerance, derived: both numbers are Monte Carlo estimates. For each k = 1..14,

    |p_k - p_RG,k| <= z * sqrt(se_k^2 + se_RG,k^2) + 0.0005

with se_k the MC standard error of our p_k, sqrt(p_k (1 - p_k) / ESS_k), ESS_k the effective
sample size of the indicator 1{k = j} (arviz.ess, all chains), and 0.0005 the rounding of RG's
three decimals. RG's run length is not used here; we set se_RG,k = se_k, i.e. we treat their
estimate as no more precise than ours: with this short chain (ESS of k in the low hundreds) their
long run is certainly at least as precise, so this can only widen the band, never make the test
reject a correct sampler more often than stated. z = Phi^-1(1 - 0.01 / (2 * 14)) = 3.19: a
Bonferroni family-wise false-alarm rate of 1% over the 14 values of k. The posterior mean of k given
k <= 14 is checked the same way (its se from the ESS of k itself; 0.01 for the rounding).
"""

import arviz as az
import numpy as np
import pytest

from bayesmoe.data import load_dataset
from bayesmoe.inference.rjmcmc import sample_random_k
from tests.helpers import ALPHA_RECOVERY, bonferroni_z

RG_TABLE1 = np.array(
    [
        0.000,
        0.000,
        0.061,
        0.128,
        0.182,
        0.199,
        0.160,
        0.109,
        0.071,
        0.040,
        0.023,
        0.013,
        0.006,
        0.003,
    ]
)
Z = bonferroni_z(RG_TABLE1.size, ALPHA_RECOVERY)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["compiled", "step"])
def test_galaxy_k_posterior_matches_richardson_green(sampler):
    X, y, _ = load_dataset("galaxy")
    trace = sample_random_k(
        X,
        y,
        max_experts=30,
        experts_prior="uniform",
        priors="richardson-green",
        draws=12000,
        tune=1000,
        chains=2,
        cores=1,
        start_experts=[2, 12],
        random_seed=20,
        step_kwargs={"moves_per_step": 5},
        sampler=sampler,
    )
    k = np.asarray(trace["posterior"]["n_experts"].values, dtype=int)
    assert az.ess(k.astype(float)) > 100  # else the band below is too wide to mean anything
    for j, p_rg in enumerate(RG_TABLE1, start=1):
        ind = (k == j).astype(float)
        p = ind.mean()
        ess = float(az.ess(ind)) if 0 < p < 1 else float(ind.size)
        se = np.sqrt(max(p * (1 - p), 1.0 / ind.size) / ess)
        assert abs(p - p_rg) <= Z * np.sqrt(2) * se + 0.0005, (j, p, p_rg, se)
    # posterior mean of k given k <= 14 (RG leave ~0.005 unreported on k >= 15)
    mean_rg = float(np.sum(np.arange(1, 15) * RG_TABLE1) / RG_TABLE1.sum())
    k14 = np.where(k <= 14, k, np.nan)
    ours = float(np.nanmean(k14))
    se_mean = float(np.nanstd(k14) / np.sqrt(az.ess(k.astype(float))))
    assert abs(ours - mean_rg) <= Z * np.sqrt(2) * se_mean + 0.01, (ours, mean_rg)
