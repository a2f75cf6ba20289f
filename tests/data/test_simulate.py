"""Simulators (bayesmoe/data/simulate.py) and numpy evaluation of measures (bayesmoe/measure.py).

Statistical checks compare a sample average with its expectation under the model, given X, and
accept |difference| < 4 standard errors (two-sided normal tail 6.3e-5 per check); the SE comes
from the sample (Gaussian moments), a binomial bound (class frequencies) or the Poisson-binomial
variance of the model (latent experts per input cell, with a Bonferroni bound over the cells).
Every statistical check is paired with a deliberately wrong model that the same check rejects.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm

from bayesmoe.data.simulate import PRESETS, preset, simulate
from bayesmoe.measure import (
    conditional_mean,
    gate_probabilities,
    log_likelihood,
    make_measure,
    measure_arrays,
)
from tests.helpers import bonferroni_z

Z_MAX = 4.0  # 4 standard errors: P(|N(0, 1)| > 4) = 6.3e-5 per check under a correct model.

CONFIGS = [
    ("S-A", {}),
    ("S-B", {}),
    ("S-D", {"regime": "A", "gate": "softmax"}),
    ("S-D", {"regime": "A", "gate": "tanh"}),
    ("S-D", {"regime": "B", "gate": "softmax"}),
    ("S-D", {"regime": "B", "gate": "tanh"}),
    ("S-E", {"n_experts": 2}),
    ("S-E", {"n_experts": 4}),
    ("S-E", {"n_experts": 8}),
]
CONFIG_IDS = [name + "".join(f"-{v}" for v in kw.values()) for name, kw in CONFIGS]


def _z(values: np.ndarray) -> float:
    """Mean of `values` in units of its estimated standard error."""
    return float(values.mean() / (values.std(ddof=1) / np.sqrt(values.size)))


def _swap_gate(G: xr.Dataset) -> xr.Dataset:
    """A deliberately wrong truth: the gate rows of the experts in reversed order."""
    W = G.copy(deep=True)
    W["beta0"] = G.beta0.copy(data=G.beta0.values[::-1])
    W["beta1"] = G.beta1.copy(data=G.beta1.transpose("gate_feature", "expert").values[:, ::-1])
    return W


# --------------------------------------------------------------------------------------------
# Reproducibility and shapes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=CONFIG_IDS)
def test_same_seed_same_data_different_seed_different_data(name, kw):
    X1, y1, G1 = simulate(name, n=300, random_seed=7, **kw)
    X2, y2, G2 = simulate(name, n=300, random_seed=7, **kw)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    xr.testing.assert_identical(G1, G2)
    X3, y3, _ = simulate(name, n=300, random_seed=8, **kw)
    assert not np.array_equal(X1, X3)
    assert not np.array_equal(y1, y3)
    # A Generator seeded the same way gives the same stream as the integer seed.
    X4, y4, _ = simulate(name, n=300, random_seed=np.random.default_rng(7), **kw)
    np.testing.assert_array_equal(X1, X4)
    np.testing.assert_array_equal(y1, y4)


def test_given_inputs_are_used_and_only_y_is_random():
    X = np.random.default_rng(0).standard_normal((50, 2))
    Xa, ya, _ = simulate("S-B", X=X, random_seed=1)
    Xb, yb, _ = simulate("S-B", X=X, random_seed=2)
    np.testing.assert_array_equal(Xa, X)
    np.testing.assert_array_equal(Xb, X)
    assert not np.array_equal(ya, yb)


def test_shapes_s_a():
    X, y, G = simulate("S-A", n=250, random_seed=0)
    assert X.shape == (250, 1) and y.shape == (250,) and y.dtype == np.float64
    assert (X >= 0).all() and (X <= 1).all()
    assert G.sizes["expert"] == 2 and G.sizes["feature"] == 1
    assert G.attrs["family"] == "gaussian" and G.attrs["preset"] == "S-A"
    # docs/math.md §10: gate (-8, 25), (0, 0); experts (15, -20), (-5, 20); noise sd (0.3, 0.4).
    np.testing.assert_array_equal(G.beta0, [-8.0, 0.0])
    np.testing.assert_array_equal(G.beta1.sel(gate_feature="x0"), [25.0, 0.0])
    np.testing.assert_array_equal(G.b, [15.0, -5.0])
    np.testing.assert_array_equal(G.a.sel(feature="x0"), [-20.0, 20.0])
    np.testing.assert_allclose(np.sqrt(G.sigma2), [0.3, 0.4])


def test_shapes_s_b():
    X, y, G = simulate("S-B", n=250, random_seed=0)
    assert X.shape == (250, 2) and y.shape == (250,) and y.dtype == np.float64
    assert G.sizes["expert"] == 3 and G.sizes["feature"] == 2
    assert G.attrs["family"] == "gaussian" and G.attrs["preset"] == "S-B"
    # docs/math.md §10: gate rows (0.3; 1, -1), (0.5; 1, 0.5), 0; noise sd (0.9, 0.5, 1.2).
    np.testing.assert_array_equal(G.beta0, [0.3, 0.5, 0.0])
    np.testing.assert_array_equal(
        G.beta1.transpose("expert", "gate_feature"), [[1, -1], [1, 0.5], [0, 0]]
    )
    np.testing.assert_allclose(np.sqrt(G.sigma2), [0.9, 0.5, 1.2])


@pytest.mark.parametrize("regime", ["A", "B"])
@pytest.mark.parametrize("gate", ["softmax", "tanh"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_shapes_s_d(regime, gate, d):
    X, y, G = simulate("S-D", n=400, random_seed=0, regime=regime, gate=gate, d=d)
    assert X.shape == (400, d) and y.shape == (400,)
    assert np.issubdtype(y.dtype, np.integer) and set(np.unique(y)) <= {0, 1, 2}
    assert (np.abs(X) <= 1).all()
    assert G.attrs["family"] == "categorical" and G.attrs["gate"] == gate
    assert G.sizes["expert"] == 2 and G.sizes["class"] == 3 and G.sizes["feature"] == d
    # The last class is the reference: its slopes and intercepts are zero.
    assert (G.a.isel({"class": -1}) == 0).all() and (G.b.isel({"class": -1}) == 0).all()
    slopes_2 = G.a.isel(expert=1).values
    if regime == "B":
        assert np.all(slopes_2 == 0)  # regime B: expert 2 has no slope
    else:
        assert np.all(slopes_2[:, :-1] != 0)  # regime A: every non-reference slope non-zero
    assert np.all(G.a.isel(expert=0).values[:, :-1] != 0)


@pytest.mark.parametrize("K", [2, 4, 8])
def test_shapes_s_e(K):
    X, y, G = simulate("S-E", n=300, random_seed=0, n_experts=K)
    assert X.shape == (300, 2) and y.shape == (300,)
    assert (np.abs(X) <= 1).all()
    assert G.sizes["expert"] == K and G.attrs["family"] == "gaussian"
    # [choice] in simulate.py: gate slopes of norm 4 at the sector centres, noise sd 0.1.
    np.testing.assert_allclose(
        np.linalg.norm(G.beta1.transpose("gate_feature", "expert"), axis=0), 4.0
    )
    np.testing.assert_allclose(G.sigma2, 0.01)


def test_measure_truth_without_x_draws_standard_normal_inputs():
    G, _ = preset("S-B")
    X, y, G2 = simulate(G, n=4000, random_seed=3)
    assert X.shape == (4000, 2) and y.shape == (4000,)
    xr.testing.assert_identical(G2, G)
    # Mean and sd of N(0, 1) inputs: |mean| < 4 / sqrt(n), |sd - 1| < 4 * sqrt(1 / (2 n)).
    assert np.all(np.abs(X.mean(0)) < Z_MAX / np.sqrt(4000))
    assert np.all(np.abs(X.std(0) - 1) < Z_MAX * np.sqrt(1 / (2 * 4000)))


def test_presets_constant():
    assert PRESETS == ("S-A", "S-B", "S-D", "S-E")


# --------------------------------------------------------------------------------------------
# The data follow the model
# --------------------------------------------------------------------------------------------


def _gaussian_moment_z(X, y, G) -> dict:
    """z-scores of E[y], E[y^2] and E[y x_1] against the model, given X.

    Given X the terms f(y_i) - E[f(y_i) | x_i] are independent with mean zero, so their average over
    its sample SE is approximately N(0, 1) under a correct simulator.
    """
    p = measure_arrays(G)
    w = gate_probabilities(
        p["beta0"], p["beta1"], X, gate=G.attrs["gate"], temperature=G.attrs["temperature"]
    )
    mu = X @ p["a"] + p["b"]
    m1 = conditional_mean(G, X)
    m2 = (w * (mu**2 + p["sigma2"])).sum(-1)
    return {
        "y": _z(y - m1),
        "y^2": _z(y**2 - m2),
        "y*x1": _z((y - m1) * X[:, 0]),
    }


def test_conditional_mean_is_the_gate_weighted_expert_mean():
    X, _, G = simulate("S-B", n=20, random_seed=0)
    p = measure_arrays(G)
    w = gate_probabilities(p["beta0"], p["beta1"], X)
    np.testing.assert_allclose(conditional_mean(G, X), (w * (X @ p["a"] + p["b"])).sum(1))


def test_s_b_mean_of_y_matches_mean_of_conditional_mean():
    X, y, G = simulate("S-B", n=20000, random_seed=11)
    diff = y - conditional_mean(G, X)
    assert abs(_z(diff)) < Z_MAX
    # The same check rejects a truth whose gate rows are swapped (z about -28 at this seed).
    assert abs(_z(y - conditional_mean(_swap_gate(G), X))) > Z_MAX


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("S-A", {}),
        ("S-B", {}),
        ("S-E", {"n_experts": 2}),
        ("S-E", {"n_experts": 4}),
        ("S-E", {"n_experts": 8}),
    ],
    ids=["S-A", "S-B", "S-E-2", "S-E-4", "S-E-8"],
)
def test_gaussian_presets_match_first_and_second_moments(name, kw):
    X, y, G = simulate(name, n=20000, random_seed=11, **kw)
    z = _gaussian_moment_z(X, y, G)
    assert all(abs(v) < Z_MAX for v in z.values()), z
    # Swapping the gate rows moves the mean by > 28 SE for each of these presets (measured:
    # S-A 164, S-B 28, S-E 116..124), so the check has power against a wrong expert choice.
    z_wrong = _gaussian_moment_z(X, y, _swap_gate(G))
    assert max(abs(v) for v in z_wrong.values()) > Z_MAX, z_wrong


def _class_frequency_z(X, y, G) -> np.ndarray:
    """(observed class frequency - mean_i P(y = s | x_i)) over the binomial SE sqrt(f(1-f)/n).

    Var(mean_i 1{y_i = s} | X) = mean_i p_is(1 - p_is) / n <= pbar(1 - pbar) / n, so the binomial SE
    is a conservative bound.
    """
    P = conditional_mean(G, X)
    n, M = P.shape
    freq = np.bincount(y, minlength=M) / n
    return (freq - P.mean(0)) / np.sqrt(freq * (1 - freq) / n)


@pytest.mark.parametrize("regime", ["A", "B"])
@pytest.mark.parametrize("gate", ["softmax", "tanh"])
def test_s_d_class_frequencies_match_the_model(regime, gate):
    X, y, G = simulate("S-D", n=20000, random_seed=5, regime=regime, gate=gate)
    z = _class_frequency_z(X, y, G)
    assert np.all(np.abs(z) < Z_MAX), z
    # Swapping the gate rows gives |z| of 43..60 for classes 0 and 1 at this seed.
    assert np.abs(_class_frequency_z(X, y, _swap_gate(G))).max() > Z_MAX


def _separated_truth(gate: str, temperature: float) -> xr.Dataset:
    """Three experts whose responses never overlap, so the latent expert is read off y."""
    return make_measure(
        beta0=[1.0, -0.5, 0.0],
        beta1=[[3.0, -2.0, 0.0], [1.0, 2.5, 0.0]],
        a=np.zeros((2, 3)),
        b=[-10.0, 0.0, 10.0],
        sigma2=[0.25, 0.25, 0.25],
        gate=gate,
        temperature=temperature,
    )


def _expert_frequency_max_z(z_hat: np.ndarray, X: np.ndarray, g: np.ndarray) -> tuple[float, int]:
    """Largest |observed - expected| count of each expert, in standard errors, over all x and over
    the 16 cells of a 4 x 4 grid on the inputs.

    Given X the expert indicators are independent Bernoulli(g_ik), so a cell's count has the
    Poisson-binomial variance sum_i g_ik (1 - g_ik). Only (cell, expert) pairs whose expected
    count and expected complement are both >= 10 are used, where the normal approximation holds.
    Returns the largest |z| and the number of (cell, expert) checks it is the maximum of.
    """
    edges = np.linspace(-2.5, 2.5, 5)[1:-1]
    cell_id = np.digitize(X[:, 0], edges) * 4 + np.digitize(X[:, 1], edges)
    cells = [np.ones(len(z_hat), bool)] + [cell_id == c for c in range(16)]
    worst, used = 0.0, 0
    for cell in cells:
        for k in range(g.shape[1]):
            p = g[cell, k]
            if p.sum() < 10 or (1 - p).sum() < 10:
                continue
            used += 1
            z = (np.sum(z_hat[cell] == k) - p.sum()) / np.sqrt(np.sum(p * (1 - p)))
            worst = max(worst, abs(z))
    assert used >= 20  # enough checks to have power
    return worst, used


@pytest.mark.parametrize("gate", ["softmax", "tanh", "sigmoid"])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_latent_expert_frequencies_follow_the_gate(gate, temperature):
    # Expert means -10, 0, 10 with sd 0.5: thresholds at +-5 misassign with probability
    # 2 * Phi(-10) < 1.6e-23, so the latent expert is known exactly.
    G = _separated_truth(gate, temperature)
    n = 20000
    X = np.random.default_rng(2).uniform(-2.5, 2.5, size=(n, 2))
    _, y, _ = simulate(G, X=X, random_seed=3)
    z_hat = np.digitize(y, [-5.0, 5.0])
    g = gate_probabilities(G.beta0.values, G.beta1.values, X, gate=gate, temperature=temperature)
    # Up to 51 checks: the bound is Bonferroni at family-wise error 1e-3 (about 4.3 SE).
    worst, used = _expert_frequency_max_z(z_hat, X, g)
    assert worst < bonferroni_z(used), (worst, used)
    # A simulator that ignored the gate transform or the temperature fails the same check.
    wrong = [
        ("softmax" if gate != "softmax" else "tanh", temperature),
        (gate, 1.0 if temperature != 1.0 else 0.5),
    ]
    for wgate, wtemp in wrong:
        gw = gate_probabilities(G.beta0.values, G.beta1.values, X, gate=wgate, temperature=wtemp)
        worst_w, used_w = _expert_frequency_max_z(z_hat, X, gw)
        assert worst_w > bonferroni_z(used_w), (wgate, wtemp, worst_w)  # measured 12..430


# --------------------------------------------------------------------------------------------
# log_likelihood against an independent, per-observation scipy computation
# --------------------------------------------------------------------------------------------

SCALAR_GATES = {
    "softmax": lambda t: t,
    "tanh": math.tanh,
    "sigmoid": lambda t: 1.0 / (1.0 + math.exp(-t)),
}


def _reference_loglik(par: dict, X, y, *, gate_fn, temperature, categorical) -> np.ndarray:
    """Pointwise log p(y_i | x_i) for ONE parameter set, with explicit loops (no vectorisation)."""
    n, d = X.shape
    K = len(par["beta0"])
    active = par.get("active")
    out = np.empty(n)
    for i in range(n):
        experts = [k for k in range(K) if active is None or active[k]]
        eta = {}
        for k in experts:
            s = par["beta0"][k]
            for j in range(d):
                s += par["beta1"][j][k] * gate_fn(X[i, j])
            eta[k] = s / temperature
        top = max(eta.values())
        norm_const = sum(math.exp(eta[k] - top) for k in experts)
        total = 0.0
        for k in experts:
            gate_k = math.exp(eta[k] - top) / norm_const
            if categorical:
                M = len(par["b"])
                u = [
                    par["b"][s][k] + sum(par["a"][j][s][k] * X[i, j] for j in range(d))
                    for s in range(M)
                ]
                p_k = math.exp(u[int(y[i])]) / sum(math.exp(v) for v in u)
            else:
                mean = par["b"][k] + sum(par["a"][j][k] * X[i, j] for j in range(d))
                p_k = math.exp(norm.logpdf(y[i], loc=mean, scale=math.sqrt(par["sigma2"][k])))
            total += gate_k * p_k
        out[i] = math.log(total)
    return out


def _random_measure(rng, *, family, gate, S=(2, 3), d=2, K=3, M=3, temperature=0.7, active=None):
    arrays = {
        "beta0": rng.normal(size=(*S, K)),
        "beta1": rng.normal(size=(*S, d, K)),
    }
    if family == "gaussian":
        arrays["a"] = rng.normal(size=(*S, d, K))
        arrays["b"] = rng.normal(size=(*S, K))
        arrays["sigma2"] = rng.uniform(0.3, 2.0, size=(*S, K))
    else:
        arrays["a"] = rng.normal(size=(*S, d, M, K))
        arrays["b"] = rng.normal(size=(*S, M, K))
        arrays["a"][..., -1, :] = 0.0  # reference class
        arrays["b"][..., -1, :] = 0.0
    if active is not None:
        arrays["active"] = np.broadcast_to(np.asarray(active, bool), (*S, K)).copy()
    sample_dims = {0: (), 1: ("draw",), 2: ("chain", "draw")}[len(S)]
    G = make_measure(
        arrays["beta0"],
        arrays["beta1"],
        arrays["a"],
        arrays["b"],
        arrays.get("sigma2"),
        gate=gate,
        temperature=temperature,
        active=arrays.get("active"),
        sample_dims=sample_dims,
    )
    return G, arrays


def _reference_over_samples(arrays, X, y, *, gate_fn, temperature, categorical):
    S = arrays["beta0"].shape[:-1]
    out = np.empty((*S, X.shape[0]))
    for idx in np.ndindex(*S):
        par = {k: v[idx] for k, v in arrays.items()}
        out[idx] = _reference_loglik(
            par, X, y, gate_fn=gate_fn, temperature=temperature, categorical=categorical
        )
    return out


def _data(rng, family, n=9, d=2, M=3):
    X = rng.normal(scale=1.5, size=(n, d))
    y = rng.normal(size=n) * 2 if family == "gaussian" else rng.integers(0, M, size=n)
    return X, y


@pytest.mark.parametrize("family", ["gaussian", "categorical"])
@pytest.mark.parametrize("gate", ["softmax", "tanh", "sigmoid"])
@pytest.mark.parametrize("S", [(), (4,), (2, 3)], ids=["no-sample-dims", "draw", "chain-draw"])
def test_log_likelihood_equals_scipy_loop(family, gate, S):
    rng = np.random.default_rng(zlib.crc32(f"{family}-{gate}-{S}".encode()))
    G, arrays = _random_measure(rng, family=family, gate=gate, S=S)
    X, y = _data(rng, family)
    ref = _reference_over_samples(
        arrays,
        X,
        y,
        gate_fn=SCALAR_GATES[gate],
        temperature=0.7,
        categorical=family == "categorical",
    )
    got = log_likelihood(G, X, y, pointwise=True)
    assert got.shape == (*S, X.shape[0])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_likelihood(G, X, y), ref.sum(-1), rtol=1e-10)
    # The dict form (measure_arrays + gate/temperature) gives the same numbers.
    as_dict = measure_arrays(G) | {"gate": gate, "temperature": 0.7}
    np.testing.assert_allclose(log_likelihood(as_dict, X, y, pointwise=True), ref, rtol=1e-10)


@pytest.mark.parametrize("family", ["gaussian", "categorical"])
def test_log_likelihood_with_inactive_experts_and_transposed_storage(family):
    rng = np.random.default_rng(20)
    G, arrays = _random_measure(rng, family=family, gate="tanh", active=[True, False, True])
    X, y = _data(rng, family)
    ref = _reference_over_samples(
        arrays, X, y, gate_fn=math.tanh, temperature=0.7, categorical=family == "categorical"
    )
    np.testing.assert_allclose(log_likelihood(G, X, y, pointwise=True), ref, rtol=1e-10)
    # Variables stored with the expert axis first and sample dims last are read by name.
    Gt = G.transpose("expert", "gate_feature", "feature", ...)
    assert Gt.beta1.dims == ("expert", "gate_feature", "chain", "draw")
    np.testing.assert_allclose(log_likelihood(Gt, X, y, pointwise=True), ref, rtol=1e-10)


def test_log_likelihood_custom_gate_callable():
    rng = np.random.default_rng(21)
    G, arrays = _random_measure(rng, family="gaussian", gate="custom")
    X, y = _data(rng, "gaussian")
    ref = _reference_over_samples(
        arrays, X, y, gate_fn=math.atan, temperature=0.7, categorical=False
    )
    np.testing.assert_allclose(
        log_likelihood(G, X, y, gate=np.arctan, pointwise=True), ref, rtol=1e-10
    )


def test_reference_comparison_catches_wrong_likelihoods():
    # Each deliberately wrong evaluation must disagree with the reference: sd used as variance,
    # temperature ignored, gate transform ignored.
    rng = np.random.default_rng(22)
    G, arrays = _random_measure(rng, family="gaussian", gate="sigmoid")
    X, y = _data(rng, "gaussian")
    ref = _reference_over_samples(
        arrays, X, y, gate_fn=SCALAR_GATES["sigmoid"], temperature=0.7, categorical=False
    )
    wrong_sd = G.assign(sigma2=np.sqrt(G.sigma2))
    wrong_temp = G.assign_attrs(temperature=1.0)
    wrong_gate = G.assign_attrs(gate="softmax")
    for W in (wrong_sd, wrong_temp, wrong_gate):
        assert not np.allclose(log_likelihood(W, X, y, pointwise=True), ref, rtol=1e-6)


@pytest.mark.parametrize("family", ["gaussian", "categorical"])
def test_conditional_mean_equals_loop(family):
    rng = np.random.default_rng(23)
    G, arrays = _random_measure(rng, family=family, gate="tanh", S=(2,))
    X, _ = _data(rng, family)
    got = conditional_mean(G, X)
    for s in range(2):
        par = {k: v[s] for k, v in arrays.items()}
        for i in range(X.shape[0]):
            eta = [
                (par["beta0"][k] + sum(par["beta1"][j][k] * math.tanh(X[i, j]) for j in range(2)))
                / 0.7
                for k in range(3)
            ]
            g = np.exp(eta) / np.sum(np.exp(eta))
            if family == "gaussian":
                mu = [
                    par["b"][k] + sum(par["a"][j][k] * X[i, j] for j in range(2)) for k in range(3)
                ]
                assert got[s, i] == pytest.approx(float(np.dot(g, mu)), rel=1e-10)
            else:
                for c in range(3):
                    probs = []
                    for k in range(3):
                        u = [
                            par["b"][m][k] + sum(par["a"][j][m][k] * X[i, j] for j in range(2))
                            for m in range(3)
                        ]
                        probs.append(math.exp(u[c]) / sum(math.exp(v) for v in u))
                    assert got[s, i, c] == pytest.approx(float(np.dot(g, probs)), rel=1e-10)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        (("S-Z",), {"n": 10}, ValueError, "Unknown preset"),
        (("S-A",), {"n": 0}, ValueError, "`n` must be a positive integer"),
        (("S-A",), {"n": -5}, ValueError, "`n` must be a positive integer"),
        (("S-A",), {"n": 2.5}, ValueError, "`n` must be a positive integer"),
        (("S-A",), {"n": "10"}, ValueError, "`n` must be a positive integer"),
        (("S-A",), {"X": np.zeros(5)}, ValueError, "`X` must have shape"),
        (("S-A",), {"X": np.zeros((5, 2))}, ValueError, "`X` must have shape"),
        (("S-D",), {"n": 10, "regime": "C"}, ValueError, "`regime` must be 'A' or 'B'"),
        (("S-E",), {"n": 10, "n_experts": 1}, ValueError, "`n_experts` must be >= 2"),
        (("S-A",), {"n": 10, "colour": "red"}, TypeError, "colour"),
        ((42,), {"n": 10}, TypeError, "`truth` must be a preset name"),
    ],
)
def test_simulate_rejects_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        simulate(*args, **kwargs)


def test_simulate_rejects_preset_options_with_a_measure():
    G, _ = preset("S-B")
    with pytest.raises(TypeError, match="only apply to a preset name"):
        simulate(G, n=10, regime="A")


GOOD = {
    "beta0": [0.0, 0.0],
    "beta1": [[1.0, 0.0]],
    "a": [[1.0, -1.0]],
    "b": [0.0, 1.0],
    "sigma2": [1.0, 2.0],
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"beta0": [[0.0, 0.0]]}, "`beta0` must have shape"),
        ({"beta1": [[1.0, 0.0, 0.0]]}, "`beta1` must have shape"),
        ({"beta1": [1.0, 0.0]}, "`beta1` must have shape"),
        ({"a": [[1.0, -1.0, 0.0]]}, "gaussian `a` must have shape"),  # three experts' slopes
        ({"b": [0.0, 1.0, 2.0]}, "gaussian `b` must have shape"),
        ({"sigma2": [1.0, 2.0, 3.0]}, "gaussian `sigma2` must have shape"),
        ({"sigma2": [1.0, 0.0]}, "must be positive"),
        ({"sigma2": [1.0, -2.0]}, "must be positive"),
        ({"a": np.zeros((1, 3, 3)), "sigma2": None}, "categorical `a` must have shape"),
        (
            {"a": np.zeros((1, 3, 2)), "b": np.zeros((2, 2)), "sigma2": None},
            "categorical `b` must have shape",
        ),
        ({"beta0": ["x", "y"]}, "could not convert"),
    ],
)
def test_make_measure_rejects_bad_arrays(change, match):
    with pytest.raises(ValueError, match=match):
        make_measure(**(GOOD | change))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gate": "relu"}, "`gate` must be one of"),
        ({"feature": ["only-one", "too-many"]}, "`feature` has 2 names"),
        ({"sample_dims": ("chain",)}, "`beta0` must have shape"),
    ],
)
def test_make_measure_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_measure(**GOOD, **kwargs)


# --------------------------------------------------------------------------------------------
# Defects found in review, fixed; these pin the fixes
# --------------------------------------------------------------------------------------------


def test_simulate_respects_inactive_experts():
    G = make_measure(
        [0.0, 0.0], [[0.0, 0.0]], [[0.0, 0.0]], [0.0, 100.0], [1.0, 1.0], active=[True, False]
    )
    _, y, _ = simulate(G, X=np.zeros((200, 1)), random_seed=0)
    assert np.all(y < 50)  # expert 1 (mean 100) is inactive and must never be drawn


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_simulate_rejects_non_finite_x(bad):
    with pytest.raises(ValueError, match="X"):
        simulate("S-A", X=np.array([[0.5], [bad]]), random_seed=0)


def test_simulate_rejects_options_of_other_presets():
    with pytest.raises((ValueError, TypeError), match="n_experts"):
        simulate("S-B", n=10, n_experts=8)


def test_s_e_rejects_non_integer_number_of_experts():
    with pytest.raises((ValueError, TypeError), match="n_experts"):
        preset("S-E", n_experts=2.5)


def test_s_d_rejects_zero_dimensions():
    with pytest.raises(ValueError, match="`d`"):
        preset("S-D", d=0)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_make_measure_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        make_measure(**GOOD, temperature=temperature)


@pytest.mark.parametrize("name", ["beta0", "sigma2"])
def test_make_measure_rejects_nan(name):
    bad = GOOD | {name: [np.nan, 1.0]}
    with pytest.raises(ValueError, match=name):
        make_measure(**bad)


@pytest.mark.parametrize("label", [-1, 0.7])
def test_log_likelihood_rejects_labels_out_of_range(label):
    G = make_measure([0.0], [[0.0]], [[[1.0], [0.0]]], [[0.0], [0.0]])
    with pytest.raises(ValueError, match="y"):
        log_likelihood(G, np.zeros((1, 1)), np.array([label]))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_s_d_regime_b_has_exactly_vanishing_expert_2_slopes(d):
    # Regime B is the case of the theory only if expert 2's slopes are 0 in every class and
    # feature (reference class included), while expert 1's and the gate's are not.
    for sep in (1.0, 2.5):
        G, _ = preset("S-D", regime="B", d=d, separation=sep)
        assert np.all(G.a.sel(expert=1).values == 0.0)
        assert np.all(np.abs(G.a.sel(expert=0, **{"class": [0, 1]}).values) > 0)
        assert np.all(np.abs(G.beta1.sel(expert=0).values) > 0)
        A, _ = preset("S-D", regime="A", d=d, separation=sep)
        assert np.all(np.abs(A.a.sel(expert=1, **{"class": [0, 1]}).values) > 0)


def test_s_d_separation_scales_gate_slopes_and_experts_only():
    G1, _ = preset("S-D", regime="A")
    G3, _ = preset("S-D", regime="A", separation=3.0)
    for v in ("beta1", "a", "b"):
        np.testing.assert_allclose(G3[v].values, 3.0 * G1[v].values)
    np.testing.assert_allclose(G3.beta0.values, G1.beta0.values)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, True, "2"])
def test_s_d_rejects_bad_separation(bad):
    with pytest.raises(ValueError, match="`separation`"):
        preset("S-D", separation=bad)


def test_separation_does_not_apply_to_other_presets():
    with pytest.raises(ValueError, match="separation"):
        preset("S-B", separation=2.0)
