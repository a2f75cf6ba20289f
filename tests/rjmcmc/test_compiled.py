"""The compiled reversible jump (JAX) for d = 0 Gaussian mixtures under Richardson–Green.

- Schema: ``sample_random_k(sampler="compiled")`` returns the variables, dims and sample stats of
  the step method's trace (``sampler="step"``), so ``k_posterior``, ``acceptance_summary`` and
  ``relabel_at_k`` work unchanged; the same seed gives the same draws.
- Prior recovery (docs/math.md §3.5): with the likelihood off, the whole compiled chain (Gibbs
  sweeps, which then draw from the prior, and the moves) must reproduce k ~ U{1..30}: chi-square
  on the chain thinned to about one draw per effective sample (tests/helpers.py), false-alarm
  rate ALPHA. Must-fail twin: split/merge only, with the Jacobian 1 / (u (1 - u)) dropped
  (measured p-value 0: the chain collapses onto k = 1, 2, against ALPHA = 1e-3; the passing
  chains gave p = 0.20 and 0.053 at thinning 2 and 3).
  These runs share one program shape with the galaxy runs (n = 82, k_max = 30, 2 chains),
  so the suite compiles it once (and reuses it from the persistent cache afterwards).
"""

import numpy as np
import pytest

from bayesmoe.data import load_dataset
from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, relabel_at_k, sample_random_k
from bayesmoe.inference.rjmcmc.compiled import CompiledSettings, run_compiled
from bayesmoe.inference.rjmcmc.sampling import start_points
from bayesmoe.models.random_k import build_random_k_model
from tests.helpers import ALPHA, chi_square_pvalue

X, Y, _ = load_dataset("galaxy")
K_MAX = 30
PRIOR_DRAWS = 2000


def _rg(**kwargs):
    return sample_random_k(
        X,
        Y,
        max_experts=K_MAX,
        experts_prior="uniform",
        priors="richardson-green",
        chains=2,
        **kwargs,
    )


@pytest.mark.filterwarnings("ignore::bayesmoe.ConvergenceWarning")  # the 4-draw step run
def test_compiled_trace_has_the_step_method_schema():
    compiled = _rg(draws=200, tune=100, random_seed=1, sampler="compiled")
    step = _rg(draws=4, tune=2, random_seed=1, sampler="step", cores=1, init="prior")
    assert compiled.attrs["rj_sampler"] == "compiled" and "rj_sampler" not in step.attrs
    assert compiled.attrs["sampler"] == step.attrs["sampler"] == "reversible_jump+gibbs"
    for group in ("posterior", "sample_stats", "observed_data", "constant_data"):
        a, b = compiled[group].to_dataset(), step[group].to_dataset()
        assert set(a.data_vars) == set(b.data_vars), group
        for name in b.data_vars:
            assert a[name].dims == b[name].dims, (group, name)
            assert a[name].dtype.kind == b[name].dtype.kind, (group, name)
            if group in ("observed_data", "constant_data"):
                np.testing.assert_allclose(a[name].values, b[name].values)
    assert set(step.attrs) <= set(compiled.attrs)
    post = compiled["posterior"]
    k = post["n_experts"].values
    assert np.array_equal(k, post["n_experts_index"].values + 1)
    assert np.array_equal(post["active"].values, np.arange(K_MAX) < k[..., None])
    # user units: the model's Deterministics, computed from the draws
    scale = float(compiled["constant_data"]["y_scale"])
    np.testing.assert_allclose(post["sigma"].values, post["sigma_std"].values * scale)
    # the summaries work unchanged
    pk = k_posterior(compiled)
    assert abs(float(pk.sum()) - 1) < 1e-12 and float(pk.sel(n_experts=1)) == 0.0
    acc = acceptance_summary(compiled)
    assert (acc["proposed"] > 0).all() and (acc["accepted"] > 0).all()
    K = int(pk.idxmax())
    assert relabel_at_k(compiled, K)["b"].sizes["expert"] == K
    # fixed seeds reproduce the draws
    again = _rg(draws=200, tune=100, random_seed=1, sampler="compiled")
    np.testing.assert_array_equal(again["posterior"]["b"].values, post["b"].values)


def test_auto_takes_compiled_only_where_it_applies():
    _, info = build_random_k_model(
        X, Y, max_experts=4, experts_prior="uniform", priors="richardson-green"
    )
    from bayesmoe.inference.rjmcmc.compiled_sampling import use_compiled

    assert use_compiled("auto", info, "auto", None, {})
    assert not use_compiled("auto", info, "nuts", None, {})
    assert not use_compiled("auto", info, "auto", {"birth_prior_mix": 0.2}, {})
    assert not use_compiled("step", info, "auto", None, {})
    with pytest.raises(ValueError, match="birth_prior_mix"):
        use_compiled("compiled", info, "auto", {"birth_prior_mix": 0.2}, {})
    with pytest.raises(ValueError, match="`sampler` must be"):
        use_compiled("fast", info, "auto", None, {})
    _, default = build_random_k_model(X, Y, max_experts=4, experts_prior="uniform")
    assert not use_compiled("auto", default, "auto", None, {})
    with pytest.raises(ValueError, match="richardson-green"):
        use_compiled("compiled", default, "auto", None, {})


def _prior_chain(**settings):
    _, info = build_random_k_model(
        X,
        Y,
        max_experts=K_MAX,
        experts_prior="uniform",
        priors="richardson-green",
        prior_only=True,
    )
    starts = start_points(info, chains=2, init="prior", random_seed=0)
    values, stats = run_compiled(
        info,
        starts,
        draws=PRIOR_DRAWS,
        tune=200,
        seed=3,
        settings=CompiledSettings(k_max=K_MAX, **settings),
        prior_only=True,
    )
    return values["n_experts_index"] + 1, info.prior_pmf, stats


def test_compiled_prior_recovery_uniform_k():
    ks, pmf, stats = _prior_chain()
    for chain in ks:  # each chain on its own, ALPHA / 2 each
        p, thin = chi_square_pvalue(chain, pmf)
        assert chain[::thin].size > 600  # power against the broken move below
        assert p > ALPHA / 2, (np.bincount(chain, minlength=K_MAX + 1)[1:] / chain.size, p)
    for m in ("birth", "death", "split", "merge"):
        assert stats[f"accepted_{m}"].sum() > 0.02 * stats[f"proposed_{m}"].sum()


def test_compiled_dropped_split_jacobian_fails():
    """Must-fail: split/merge without the Jacobian 1 / (u (1 - u)) of the weight split."""
    ks, pmf, _ = _prior_chain(p_birth_death=0.0, drop_split_jacobian=True)
    p, _ = chi_square_pvalue(ks[0], pmf)
    assert p < ALPHA


RG_TABLE1_3_8 = {3: 0.061, 4: 0.128, 5: 0.182, 6: 0.199, 7: 0.160, 8: 0.109}


def test_compiled_galaxy_matches_richardson_green():
    """p(k | y) for k = 3..8 on the galaxy data within Monte Carlo error of Richardson & Green's
    Table 1 (k ~ U{1..30}). Tolerance as in tests/rjmcmc/test_galaxy_rg.py:
    |p_k - p_RG,k| <= z sqrt(2) se_k + 0.0005, se_k = sqrt(p_k (1 - p_k) / ESS_k) from the ESS of
    the indicator 1{k = j} (RG's error taken as large as ours, 0.0005 their rounding),
    z = Bonferroni over the 6 values at family-wise ALPHA_RECOVERY.
    """
    import arviz as az

    from tests.helpers import ALPHA_RECOVERY, bonferroni_z

    trace = _rg(draws=3000, tune=500, random_seed=4, start_experts=[2, 12])
    k = trace["posterior"]["n_experts"].values
    assert az.ess(k.astype(float)) > 200  # else the band below is too wide to mean anything
    z = bonferroni_z(len(RG_TABLE1_3_8), ALPHA_RECOVERY)
    for j, p_rg in RG_TABLE1_3_8.items():
        ind = (k == j).astype(float)
        p, ess = ind.mean(), float(az.ess(ind))
        se = np.sqrt(p * (1 - p) / ess)
        assert abs(p - p_rg) <= z * np.sqrt(2) * se + 0.0005, (j, p, p_rg, se)


def test_step_gibbs_ignores_the_data_when_prior_only():
    """The step method's Gibbs sweep with the likelihood off draws from the prior (it used the
    data before: with ``prior_only=True`` it sampled a posterior the RJ step did not target)."""
    from bayesmoe.inference.rjmcmc.gibbs import ConjugateGibbs

    model, info = build_random_k_model(
        X, Y, max_experts=5, experts_prior="uniform", priors="richardson-green", prior_only=True
    )
    step = ConjugateGibbs(info=info, model=model, rng=0)
    point, stats = step.step(model.initial_point())
    assert stats[0]["occupied"] == 0  # no observation allocated
    assert np.isfinite(point["b_std"]).all()
