"""Mixtures without covariates (X of shape (n, 0)) through every entry point.

The gate reduces to mixing weights softmax(beta0) and the experts to means b and sds sigma.
Short chains: these check shapes, names and the d = 0 algebra (constant gate, predictive mean
= sum_j w_j b_j), not posterior accuracy (that is tests/rjmcmc/test_galaxy_rg.py, slow).
"""

import numpy as np
import pytest

import bayesmoe as bm
from bayesmoe.data import load_dataset
from bayesmoe.inference import (
    conditional_density,
    fit_mle,
    gate_probabilities,
    posterior_predictive,
    predict,
    sample,
    sample_dp,
)
from bayesmoe.inference.rjmcmc import k_posterior, relabel_at_k, sample_random_k

X, Y, _ = load_dataset("galaxy")
X_NEW = np.zeros((3, 0))


@pytest.fixture(scope="module")
def trace():
    return sample(X, Y, n_experts=3, draws=150, tune=150, chains=2, random_seed=3)


def test_fit_mle_d0_is_a_normal_mixture():
    res = fit_mle(X, Y, 3, random_seed=0)
    G = res.measure_
    assert G.sizes["feature"] == 0
    w = np.exp(G["beta0"].values - np.logaddexp.reduce(G["beta0"].values))
    # the MLE of a normal mixture reproduces the sample mean: sum_j w_j b_j = mean(y)
    assert abs(float(np.sum(w * G["b"].values)) - Y.mean()) < 1e-3


def test_sample_d0_gate_is_constant_and_prediction_is_the_mixture_mean(trace):
    post = trace["posterior"]
    assert post["beta1"].sizes["gate_feature"] == 0 and post["a"].sizes["feature"] == 0
    g = gate_probabilities(trace, X_NEW)
    assert np.allclose(g.isel(obs=0), g.isel(obs=2))  # no input: one gate for every row
    w = np.exp(post["beta0"] - np.log(np.exp(post["beta0"]).sum("expert")))
    np.testing.assert_allclose(
        g.isel(obs=0).values, w.transpose(*g.isel(obs=0).dims).values, rtol=1e-10
    )
    pred = predict(trace, X_NEW)
    mix_mean = float((w * post["b"]).sum("expert").mean())
    assert abs(float(pred["mean"].isel(obs=0)) - mix_mean) < 1e-8 * abs(mix_mean) + 1e-8
    pp = posterior_predictive(trace, X_NEW, max_draws=20, random_seed=0)
    assert pp["y"].sizes["obs"] == 3
    dens = conditional_density(trace, X_NEW, np.linspace(5, 40, 400))
    area = dens["density"].isel(obs=0).integrate("y")  # posterior mean density over the grid
    assert abs(float(area) - 1.0) < 0.02  # a proper density over y (grid covers the data)


def test_moe_estimator_d0():
    m = bm.MoE(n_experts=2)
    m.fit(X, Y, draws=100, tune=100, chains=1, random_seed=0)
    assert m.predict(X_NEW)["mean"].sizes["obs"] == 3


def test_relabel_d0(trace):
    out = bm.diagnostics.relabel(trace)
    b = out["posterior"]["b"]
    assert b.sizes["expert"] == 3
    # after relabelling the chains agree on which expert is which (means differ by > 5 sds)
    chain_means = b.mean("draw").values
    assert (
        np.allclose(np.sort(chain_means, axis=-1), chain_means, atol=0)
        or np.abs(chain_means[0] - chain_means[1]).max() < 3.0
    )


def test_rg_prior_in_fixed_k_model():
    from bayesmoe.models import build_model

    model, info = build_model(X, Y, n_experts=3, priors="richardson-green")
    names = {v.name for v in model.free_RVs}
    assert {"beta0_std", "b_std", "sigma_std", "noise_rate_std"} <= names
    assert info.priors.scheme == "richardson-green"
    with pytest.raises(ValueError, match="Gaussian experts"):
        build_model(
            X, (Y > 20).astype(int), n_experts=2, family="categorical", priors="richardson-green"
        )


@pytest.mark.parametrize("continuous", ["gibbs", "nuts"])
def test_sample_random_k_d0(continuous):
    n_draws = 60 if continuous == "nuts" else 300
    trace = sample_random_k(
        X,
        Y,
        max_experts=6,
        experts_prior="uniform",
        priors="richardson-green",
        draws=n_draws,
        tune=50,
        chains=1,
        random_seed=1,
        continuous=continuous,
        start_experts=3,
        sampler="step",  # the compiled sampler (auto here) has tests/rjmcmc/test_compiled.py
    )
    assert trace.attrs["sampler"] == f"reversible_jump+{continuous}"
    pk = k_posterior(trace)
    assert pk.sizes["n_experts"] == 6 and abs(float(pk.sum()) - 1) < 1e-12
    assert float(pk.sel(n_experts=1)) == 0.0  # galaxy: one normal is far from the data
    K = int(pk.idxmax())
    sub = relabel_at_k(trace, K)
    assert sub["b"].sizes["expert"] == K


def test_sample_random_k_default_prior_d0():
    trace = sample_random_k(X, Y, max_experts=4, draws=40, tune=40, chains=1, random_seed=2)
    assert trace.attrs["sampler"] == "reversible_jump+nuts"  # Gibbs only for the RG prior
    assert trace["posterior"]["beta1"].sizes["gate_feature"] == 0


def test_sample_dp_d0():
    trace = sample_dp(X, Y, max_experts=5, draws=80, tune=80, chains=1, random_seed=0)
    post = trace["posterior"]
    assert post["beta1"].sizes["gate_feature"] == 0
    np.testing.assert_allclose(post["weights"].sum("expert"), 1.0, rtol=1e-10)
    assert int(post["n_occupied"].min()) >= 1


def test_sample_dp_public_paths():
    from bayesmoe.models import sample_dp as from_models
    from bayesmoe.models.dp import sample_dp as from_models_dp

    assert from_models is sample_dp and from_models_dp is sample_dp


def test_diagnostics_d0(trace):
    from bayesmoe import diagnostics as D

    table = bm.summary(trace)
    assert "b[0]" in table.index and not any(i.startswith("beta1") for i in table.index)
    G = D.mixing_measure(trace)
    assert G.sizes["feature"] == 0
    ref = fit_mle(X, Y, 3, random_seed=0).measure_
    h = D.expected_hellinger(G, ref, X)
    assert h.dims == ("chain", "draw") and float(h.max()) < 1.0
    assert float(D.voronoi_loss(G, ref).min()) >= 0.0
    pk = D.num_experts_posterior(G, n=X.shape[0])
    assert abs(float(pk.sum()) - 1.0) < 1e-9
    assert D.dendrogram(ref, X, Y).sizes  # the merge path of the MM fit
