"""The padded random-K model: prior pmf, masking of inactive slots, likelihood against numpy."""

import numpy as np
import pytest
from scipy import stats

from bayesmoe.data import simulate
from bayesmoe.measure import log_likelihood, make_measure
from bayesmoe.models.random_k import (
    K_VAR,
    build_random_k_model,
    experts_prior_pmf,
    parse_experts_prior,
    slot_prior_draw,
)


def test_poisson_prior_is_truncated_poisson_on_k_minus_1():
    pmf = experts_prior_pmf("poisson:1.5", 5)
    expected = stats.poisson.pmf(np.arange(5), 1.5)
    np.testing.assert_allclose(pmf, expected / expected.sum())
    np.testing.assert_allclose(experts_prior_pmf("uniform", 4), 0.25)
    # Richardson & Green's k ~ U{1..KMAX}, padded with zeros up to max_experts
    np.testing.assert_allclose(experts_prior_pmf("uniform:3", 5), [1 / 3] * 3 + [0, 0])
    assert parse_experts_prior("uniform:30") == ("uniform", 30.0)
    with pytest.raises(ValueError, match="max_experts >= 6"):
        experts_prior_pmf("uniform:6", 5)
    np.testing.assert_allclose(experts_prior_pmf([1, 1, 2], 3), [0.25, 0.25, 0.5])


@pytest.mark.parametrize(
    "spec",
    [
        "poisson",
        "poisson:-1",
        "poisson:abc",
        "dirichlet:1",
        "uniform:2.5",
        "uniform:0",
        "geometric:1.5",
    ],
)
def test_bad_experts_prior_specs_raise(spec):
    with pytest.raises(ValueError, match=r"poisson|uniform|geometric|parameter|number"):
        parse_experts_prior(spec)


def test_bad_experts_prior_arrays_raise():
    with pytest.raises(ValueError, match="max_experts = 3"):
        experts_prior_pmf([0.5, 0.5], 3)
    with pytest.raises(ValueError, match="non-negative"):
        experts_prior_pmf([0.5, -0.5, 1.0], 3)
    with pytest.raises(TypeError):
        experts_prior_pmf(object(), 3)


def _user_measure(model, point):
    names = ["beta0", "beta1", "a", "b", "sigma", "active"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    vals = dict(zip(names, fn(**{v.name: point[v.name] for v in model.value_vars}), strict=True))
    return make_measure(
        vals["beta0"],
        vals["beta1"],
        vals["a"],
        vals["b"],
        vals["sigma"] ** 2,
        active=vals["active"],
    )


@pytest.mark.parametrize("K", [1, 2, 4])
def test_gaussian_loglik_matches_numpy_with_active_mask(K):
    X, y, _ = simulate("S-B", n=80, random_seed=1)
    model, info = build_random_k_model(X, y, max_experts=4)
    point = model.initial_point()
    point.update(slot_prior_draw(info, np.random.default_rng(K), size=4))
    point[K_VAR] = np.asarray(K - 1)
    G = _user_measure(model, point)
    assert G["active"].values.tolist() == [k < K for k in range(4)]
    expected = float(log_likelihood(G, X, y))
    got = float(model.compile_logp(vars=[model["y"]])(point))
    assert got == pytest.approx(expected, rel=1e-9)
    # inactive slots do not enter the likelihood
    changed = dict(point)
    changed["b_std"] = point["b_std"].copy()
    changed["b_std"][K:] += 5.0
    assert float(model.compile_logp(vars=[model["y"]])(changed)) == pytest.approx(got, rel=1e-12)
    # and the gradient stays finite with -inf logits
    dlogp = model.compile_dlogp(vars=[v for v in model.free_RVs if v.name != K_VAR])(point)
    assert np.all(np.isfinite(dlogp))


def test_categorical_loglik_matches_numpy():
    X, y, _ = simulate("S-D", n=70, random_seed=2)
    model, info = build_random_k_model(X, y, max_experts=3, family="categorical")
    point = model.initial_point()
    point.update(slot_prior_draw(info, np.random.default_rng(3), size=3))
    point[K_VAR] = np.asarray(1)
    names = ["beta0", "beta1", "a", "b", "active"]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    v = dict(zip(names, fn(**{w.name: point[w.name] for w in model.value_vars}), strict=True))
    G = make_measure(v["beta0"], v["beta1"], v["a"], v["b"], active=v["active"])
    got = float(model.compile_logp(vars=[model["y"]])(point))
    assert got == pytest.approx(float(log_likelihood(G, X, y)), rel=1e-9)


def test_prior_only_fixed_experts_and_deterministics():
    X, y, _ = simulate("S-B", n=40, random_seed=0)
    model, info = build_random_k_model(X, y, max_experts=3, prior_only=True)
    assert "y" not in model.named_vars and info.prior_only
    assert {"n_experts", "active", "beta0", "beta1", "a", "b", "sigma"} <= set(model.named_vars)
    fixed, finfo = build_random_k_model(X, y, max_experts=3, fixed_experts=2)
    assert K_VAR not in fixed.named_vars and finfo.prior_pmf is None
    assert fixed.initial_point()["b_std"].shape == (2,)


def test_k_prior_in_the_model_is_the_pmf():
    X, y, _ = simulate("S-B", n=40, random_seed=0)
    model, _info = build_random_k_model(X, y, max_experts=3, experts_prior=[0.2, 0.3, 0.5])
    logp_k = model.compile_logp(vars=[model[K_VAR]])
    point = model.initial_point()
    for k in range(3):
        point[K_VAR] = np.asarray(k)
        assert np.exp(float(logp_k(point))) == pytest.approx([0.2, 0.3, 0.5][k])


def test_bad_inputs_raise():
    X, y, _ = simulate("S-B", n=40, random_seed=0)
    with pytest.raises(ValueError, match="max_experts"):
        build_random_k_model(X, y, max_experts=0)
    with pytest.raises(TypeError, match="prior_only"):
        build_random_k_model(X, y, max_experts=2, prior_only="yes")
    with pytest.raises(ValueError, match="family"):
        build_random_k_model(X, y, max_experts=2, family="weibull")
