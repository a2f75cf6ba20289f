"""sample_random_k end to end (reversible jump + NUTS) with the likelihood off."""

import json

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, sample_random_k
from bayesmoe.inference.rjmcmc.sampling import start_points
from bayesmoe.models.random_k import build_random_k_model
from tests.helpers import ALPHA, chi_square_pvalue

PMF = [0.2, 0.3, 0.5]


@pytest.fixture(scope="module")
def prior_trace():
    X, y, _ = simulate("S-B", n=30, random_seed=0)
    return sample_random_k(
        X,
        y,
        max_experts=3,
        experts_prior=PMF,
        prior_only=True,
        init="prior",
        draws=1000,
        tune=200,
        chains=2,
        cores=1,
        random_seed=4,
        step_kwargs={"moves_per_step": 3},
        sampler="step",  # this module tests PyMC's sampler with the step methods
    )


def test_trace_layout(prior_trace):
    post = prior_trace["posterior"]
    assert post["n_experts"].dims == ("chain", "draw")
    assert post["active"].dims == ("chain", "draw", "expert")
    np.testing.assert_array_equal(post["active"].sum("expert").values, post["n_experts"].values)
    for name in ("beta0", "beta1", "a", "b", "sigma"):
        assert name in post
    ss = prior_trace["sample_stats"]
    for name in (
        "move",
        "current_n_experts",
        "proposed_n_experts",
        "accepted",
        "accept",
        "log_accept_ratio",
        "proposed_birth",
        "accepted_merge",
    ):
        assert name in ss
    assert prior_trace.attrs["prior_only"] == 1
    assert json.loads(prior_trace.attrs["experts_prior"]) == pytest.approx(PMF)


def test_prior_recovery_through_pymc_sample_with_nuts(prior_trace):
    """The same steps as a posterior run (NUTS for the continuous parameters) reproduce p(K)
    with the likelihood off (chi-square on the ESS-thinned chain, false-alarm rate ALPHA per
    chain, 2 chains)."""
    k = prior_trace["posterior"]["n_experts"].values
    for chain in k:
        p, thin = chi_square_pvalue(chain, np.array(PMF))
        assert p > ALPHA / 2, (np.bincount(chain, minlength=4)[1:] / chain.size, thin)
    pk = k_posterior(prior_trace)
    assert pk.dims == ("n_experts",) and pk.sum() == pytest.approx(1.0)
    acc = acceptance_summary(prior_trace)
    assert acc.attrs["acceptance_rate"] > 0.05
    assert set(acc["move"].values) == {"birth", "death", "split", "merge"}


def test_k_posterior_and_summary_errors():
    with pytest.raises(ValueError, match="n_experts"):
        k_posterior(xr.Dataset({"x": ("draw", [1])}))
    with pytest.raises(ValueError, match="sample_stats"):
        acceptance_summary(xr.DataTree())


def test_start_points_from_mm_fits():
    X, y, _ = simulate("S-B", n=200, random_seed=0)
    _model, info = build_random_k_model(X, y, max_experts=4)
    pts = start_points(info, chains=3, random_seed=0)
    assert [int(p["n_experts_index"]) + 1 for p in pts] == [1, 3, 4]  # spread over 1..K_max
    with pytest.raises(ValueError, match="start_experts"):
        start_points(info, chains=2, start_experts=[1, 5])


def test_relabel_at_k_selects_active_slots_and_aligns_labels(prior_trace):
    from bayesmoe.inference.rjmcmc import relabel_at_k

    k = prior_trace["posterior"]["n_experts"].values
    out = relabel_at_k(prior_trace, 2)
    assert out.sizes["expert"] == 2 and out.sizes["draw"] == int((k == 2).sum())
    assert "relabel_permutation" in out and out.attrs["n_experts"] == 2
    with pytest.raises(ValueError, match="No draw has n_experts = 7"):
        relabel_at_k(prior_trace, 7)
    # a synthetic label switch is undone (must-fail without relabelling: the pooled sd is large)
    rng = np.random.default_rng(0)
    b = np.array([-2.0, 3.0]) + 0.1 * rng.standard_normal((2, 150, 2))
    b[1] = b[1][:, ::-1]
    post = xr.Dataset(
        {
            "b": (("chain", "draw", "expert"), b),
            "n_experts": (("chain", "draw"), np.full((2, 150), 2)),
        }
    )
    assert float(post["b"].std(("chain", "draw")).max()) > 2.0
    assert float(relabel_at_k(post, 2)["b"].std("draw").max()) < 0.5
