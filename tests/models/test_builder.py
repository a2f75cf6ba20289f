"""The PyMC model's log-likelihood equals an independent scipy computation; options validate."""

import numpy as np
import pymc as pm
import pytest
from scipy import special, stats

from bayesmoe.data import simulate
from bayesmoe.models import build_model

GATE_FNS = {"softmax": lambda x: x, "tanh": np.tanh, "sigmoid": special.expit}


def _random_point(model, rng):
    """Initial point with every free value replaced by N(0, 0.7^2) noise (unconstrained space)."""
    return {k: rng.normal(0.0, 0.7, size=np.shape(v)) for k, v in model.initial_point().items()}


def _eval(model, point):
    """Pointwise log-likelihood of y and the user-unit parameters, compiled without optimisation."""
    names = [n for n in ("beta0", "beta1", "a", "b", "sigma") if n in model.named_vars]
    fn = model.compile_fn(
        [pm.logp(model["y"], model.rvs_to_values[model["y"]])] + [model[n] for n in names],
        inputs=model.value_vars,
        mode="FAST_COMPILE",
        on_unused_input="ignore",
    )
    out = fn(point)
    return out[0], dict(zip(names, out[1:], strict=True))


def _scipy_gaussian(X, y, p, M, tau):
    n, K = len(y), p["beta0"].shape[0]
    ll = np.empty(n)
    for i in range(n):  # deliberately a plain loop: independent of the vectorised code
        g = special.softmax((M(X[i]) @ p["beta1"] + p["beta0"]) / tau)
        log_dens = [
            stats.norm.logpdf(y[i], X[i] @ p["a"][:, k] + p["b"][k], p["sigma"][k])
            for k in range(K)
        ]
        # in logs: a row far from every expert (log density -1444) underflowed pdf to 0 (-inf)
        ll[i] = special.logsumexp(log_dens, b=g)
    return ll


def _scipy_categorical(X, y, p, M, tau):
    n, K = len(y), p["beta0"].shape[0]
    ll = np.empty(n)
    for i in range(n):
        g = special.softmax((M(X[i]) @ p["beta1"] + p["beta0"]) / tau)
        probs = [special.softmax(X[i] @ p["a"][:, :, k] + p["b"][:, k])[y[i]] for k in range(K)]
        ll[i] = np.log(np.dot(g, probs))
    return ll


@pytest.mark.parametrize("gate", ["softmax", "tanh", "sigmoid"])
@pytest.mark.parametrize("identifiability", ["zerosum", "reference"])
def test_gaussian_loglik_matches_scipy(gate, identifiability):
    rng = np.random.default_rng(3)
    X, y, _ = simulate("S-B", n=40, random_seed=5)
    X = 2.0 * X + 1.0  # non-standard units exercise the standardisation
    y = 10.0 * y - 3.0
    model, _ = build_model(
        X, y, n_experts=3, gate=gate, temperature=0.7, identifiability=identifiability
    )
    ll, p = _eval(model, _random_point(model, rng))
    np.testing.assert_allclose(ll, _scipy_gaussian(X, y, p, GATE_FNS[gate], 0.7), rtol=1e-10)


@pytest.mark.parametrize("gate", ["softmax", "tanh", "sigmoid"])
def test_categorical_loglik_matches_scipy(gate):
    rng = np.random.default_rng(4)
    X, y, _ = simulate("S-D", n=40, random_seed=6)
    labels = np.array(["ant", "bee", "cat"])[y]  # string labels are coded in sorted order
    model, info = build_model(
        X, labels, n_experts=2, family="categorical", gate=gate, temperature=1.3
    )
    assert info.classes == ["ant", "bee", "cat"]
    ll, p = _eval(model, _random_point(model, rng))
    # the reference class is pinned: its slopes and intercepts are exactly zero
    assert np.all(p["a"][:, -1, :] == 0) and np.all(p["b"][-1] == 0)
    np.testing.assert_allclose(ll, _scipy_categorical(X, y, p, GATE_FNS[gate], 1.3), rtol=1e-10)


def test_zerosum_gate_sums_to_zero_and_matches_measure_module():
    from bayesmoe.measure import log_likelihood, make_measure

    rng = np.random.default_rng(7)
    X, y, _ = simulate("S-B", n=30, random_seed=2)
    model, _ = build_model(X, y, n_experts=4)
    ll, p = _eval(model, _random_point(model, rng))
    np.testing.assert_allclose(p["beta0"].sum(), 0.0, atol=1e-12)
    np.testing.assert_allclose(p["beta1"].sum(-1), 0.0, atol=1e-12)
    G = make_measure(p["beta0"], p["beta1"], p["a"], p["b"], p["sigma"] ** 2)
    np.testing.assert_allclose(ll, log_likelihood(G, X, y, pointwise=True), rtol=1e-10)


def test_one_expert_is_linear_regression():
    rng = np.random.default_rng(8)
    X, y, _ = simulate("S-B", n=25, random_seed=3)
    model, _ = build_model(X, y, n_experts=1)
    ll, p = _eval(model, _random_point(model, rng))
    expected = stats.norm.logpdf(y, X @ p["a"][:, 0] + p["b"][0], p["sigma"][0])
    np.testing.assert_allclose(ll, expected, rtol=1e-10)


def test_ordered_option_orders_intercepts():
    X, y, _ = simulate("S-B", n=50, random_seed=1)
    model, _ = build_model(X, y, n_experts=3, ordered=True)
    # every point of the unconstrained space maps to increasing intercepts
    (b_std,) = model.replace_rvs_by_values([model["b_std"]])
    fn = model.compile_fn(
        b_std, inputs=model.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert np.all(np.diff(fn(_random_point(model, rng))) > 0)
    unordered, _ = build_model(X, y, n_experts=3)
    (b_free,) = unordered.replace_rvs_by_values([unordered["b_std"]])
    fn = unordered.compile_fn(
        b_free, inputs=unordered.value_vars, mode="FAST_COMPILE", on_unused_input="ignore"
    )
    assert not all(np.all(np.diff(fn(_random_point(unordered, rng))) > 0) for _ in range(20))


def test_coords_and_observed_variable():
    X, y, _ = simulate("S-D", n=60, random_seed=1)
    model, _ = build_model(X, y, n_experts=2, family="categorical")
    assert set(model.coords) == {"obs", "feature", "gate_feature", "expert", "class", "class_free"}
    assert model["y"] in model.observed_RVs
    assert model.named_vars_to_dims["a"] == ("feature", "class", "expert")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_experts": 0}, "n_experts"),
        ({"n_experts": 2.5}, "n_experts"),
        ({"n_experts": 2, "family": "weibull"}, "family"),
        ({"n_experts": 2, "gate": "relu"}, "gate"),
        ({"n_experts": 2, "gate": lambda x: 2 * x + 1}, "affine"),
        ({"n_experts": 2, "identifiability": "ordered"}, "identifiability"),
        ({"n_experts": 2, "temperature": 0}, "temperature"),
        ({"n_experts": 2, "priors": {"gate_slope": -1}}, "gate_slope"),
        ({"n_experts": 2, "priors": {"slab": 1}}, "Unknown prior"),
        ({"n_experts": 40}, "parameters but the data have only"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, match):
    X, y, _ = simulate("S-B", n=50, random_seed=1)
    with pytest.raises(ValueError, match=match):
        build_model(X, y, **kwargs)


def test_bad_data_raise_clear_errors():
    X, y, _ = simulate("S-B", n=50, random_seed=1)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        build_model(Xn, y, n_experts=2)
    with pytest.raises(ValueError, match="1-D with 50"):
        build_model(X, y[:-1], n_experts=2)
    Xc = X.copy()
    Xc[:, 0] = 4.0
    with pytest.raises(ValueError, match="constant"):
        build_model(Xc, y, n_experts=2)
    with pytest.raises(TypeError, match="categorical"):
        build_model(X, np.array(["a", "b"] * 25), n_experts=2)
    with pytest.raises(ValueError, match="single class"):
        build_model(X, np.zeros(50, int), n_experts=2, family="categorical")
    with pytest.raises(ValueError, match="not among the classes"):
        build_model(X, np.arange(50) % 3, n_experts=2, family="categorical", classes=[0, 1])
