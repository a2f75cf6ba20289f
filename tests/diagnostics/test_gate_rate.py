"""Gate information rate and Blahut–Arimoto distortion–rate (docs/math.md §9)."""

import numpy as np
import pytest
from scipy.special import expit

from bayesmoe.data import simulate
from bayesmoe.diagnostics.gate_rate import (
    distortion_rate,
    gate_information_rate,
    plugin_rate,
    quantize_logits,
    routing_distortion,
)
from bayesmoe.measure import make_measure


def _two_expert(slope, beta0=(0.0, 0.0)):
    return make_measure(list(beta0), [[slope, -slope]], [[0.0, 0.0]], [0.0, 0.0], [1.0, 1.0])


def _hb(p):
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_constant_gate_has_zero_rate():
    X = np.random.default_rng(0).normal(size=(50, 1))
    G = _two_expert(0.0, beta0=(1.3, -0.4))
    assert float(gate_information_rate(G, X)) == pytest.approx(0.0, abs=1e-15)


def test_deterministic_balanced_gate_has_rate_log_k():
    # K = 2: slopes ±60 on x = ±1: the wrong expert has weight 1/(1+e^120), entropy ~1e-50.
    X = np.array([[-1.0], [1.0], [-1.0], [1.0]])
    assert float(gate_information_rate(_two_expert(60.0), X)) == pytest.approx(np.log(2), abs=1e-12)
    # K = 4 sector gate (S-E truth, slopes scaled x50) at the four sector centres.
    _, _, se = simulate("S-E", n=5, random_seed=0, n_experts=4)
    se = se.assign(beta1=se.beta1 * 50)
    ang = 2 * np.pi * (np.arange(4) + 0.5) / 4
    Xc = np.c_[np.cos(ang), np.sin(ang)]
    assert float(gate_information_rate(se, Xc)) == pytest.approx(np.log(4), abs=1e-12)


def test_rate_decreases_with_temperature():
    X, _, se = simulate("S-E", n=400, random_seed=1, n_experts=4)
    temps = np.logspace(-2, 2, 17)
    rates = np.array([float(gate_information_rate(se, X, temperature=t)) for t in temps])
    assert np.all(np.diff(rates) < 0)
    assert rates[0] <= np.log(4) and rates[-1] < 1e-3
    # same as the measure's own temperature attribute
    hot = se.copy()
    hot.attrs["temperature"] = 3.0
    assert float(gate_information_rate(hot, X)) == pytest.approx(
        float(gate_information_rate(se, X, temperature=3.0)), rel=1e-12
    )


def test_quantised_rate_hand_computed():
    # logits (x, -x) centred are (x, -x); L = 0.6, 2 bits -> levels {-0.6, -0.2, 0.2, 0.6}.
    # x = ±1 -> ±0.6 (clipped); x = ±0.3 -> ±0.2. Gate of expert 1 = expit(2 * level).
    X = np.array([[1.0], [-1.0], [0.3], [-0.3]])
    G = _two_expert(1.0)
    g1 = expit(2 * np.array([0.6, -0.6, 0.2, -0.2]))
    want = np.log(2) - _hb(g1).mean()
    got = gate_information_rate(G, X, bits=2, logit_range=0.6)
    assert float(got) == pytest.approx(want, abs=1e-14)
    # the quantiser sees the gauge-invariant centred logits: translating the gate changes nothing
    Gt = G.assign(beta0=G.beta0 + 5.0, beta1=G.beta1 + 2.0)
    assert float(gate_information_rate(Gt, X, bits=2, logit_range=0.6)) == pytest.approx(want)
    # many bits: the unquantised rate (quantisation error 2L / 2^30)
    assert float(gate_information_rate(G, X, bits=30)) == pytest.approx(
        float(gate_information_rate(G, X)), abs=1e-8
    )
    # fewer bits never more information here: 1 bit maps every input to ±L (a harder gate
    # with default L = 1) -> rate equals the x = ±1 gate's rate
    one_bit = float(gate_information_rate(G, X, bits=1))
    assert one_bit == pytest.approx(np.log(2) - _hb(expit(2.0)), abs=1e-14)


def test_quantiser_levels_and_top_k():
    q = quantize_logits(np.array([[[2.0, 0.0, -2.0]]]), bits=1)
    np.testing.assert_allclose(q, [[[2.0, -2.0, -2.0]]])  # centred (2, 0, -2); 0 rounds down
    X, _, se = simulate("S-E", n=200, random_seed=2, n_experts=4)
    top1 = float(gate_information_rate(se, X, top_k=1))
    full = float(gate_information_rate(se, X))
    assert top1 >= full  # hard routing carries the most information about x's sector
    assert top1 <= np.log(4) + 1e-12


def test_per_draw():
    X = np.random.default_rng(3).normal(size=(30, 1))
    slopes = np.array([0.0, 1.0, 5.0])
    G = make_measure(
        np.zeros((3, 2)),
        np.stack([[[s, -s]] for s in slopes]),
        np.zeros((3, 1, 2)),
        np.zeros((3, 2)),
        np.ones((3, 2)),
        sample_dims=("draw",),
    )
    r = gate_information_rate(G, X)
    assert r.dims == ("draw",) and r.name == "rate"
    for i, s in enumerate(slopes):
        assert float(r[i]) == pytest.approx(float(gate_information_rate(_two_expert(s), X)))
    assert np.all(np.diff(r.values) > 0)


def test_blahut_arimoto_binary_hamming():
    # Uniform binary source, Hamming distortion: R(D) = log 2 - H_b(D) for D <= 1/2, and at
    # slope s the optimal channel flips with probability D = 1 / (1 + e^s).
    d = np.array([[0.0, 1.0], [1.0, 0.0]])
    s = np.linspace(0.0, 8.0, 33)
    rd = distortion_rate(d, s)
    assert rd.attrs["converged"]
    np.testing.assert_allclose(rd.D.values, 1 / (1 + np.exp(s)), atol=1e-10)
    np.testing.assert_allclose(rd.R.values, np.log(2) - _hb(rd.D.values), atol=1e-10)
    # D(R) non-increasing and convex (slopes of the chords increase)
    R, D = rd.R.values, rd.D.values
    assert np.all(np.diff(R) > 0) and np.all(np.diff(D) < 0)
    chord = np.diff(D) / np.diff(R)
    assert np.all(np.diff(chord) > -1e-9)


def test_blahut_arimoto_nonuniform_source_known_answer():
    # Binary source P(x=1) = 0.2, Hamming distortion: R(D) = H_b(0.2) - H_b(D) for D <= 0.2.
    d = np.array([[0.0, 1.0], [1.0, 0.0]])
    rd = distortion_rate(d, [1.5, 3.0, 6.0], weights=[0.8, 0.2])
    D = rd.D.values
    assert np.all(D < 0.2)
    np.testing.assert_allclose(rd.R.values, _hb(0.2) - _hb(D), atol=1e-9)


def test_routing_distortion_feeds_blahut_arimoto():
    X, y, se = simulate("S-E", n=100, random_seed=4, n_experts=2)
    dist = routing_distortion(se, X, y, loss="squared")
    assert dist.shape == (100, 2)
    mu = X @ se.a.transpose("feature", "expert").values + se.b.values
    np.testing.assert_allclose(dist.values, (y[:, None] - mu) ** 2)
    rd = distortion_rate(dist, [0.0, 10.0, 1000.0])
    assert rd.R.values[0] == pytest.approx(0.0, abs=1e-12)
    assert rd.D.values[-1] == pytest.approx(dist.values.min(axis=1).mean(), rel=1e-3)
    nll = routing_distortion(se, X, y)
    assert np.all(np.isfinite(nll.values))


def test_plugin_rate_core():
    g = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert plugin_rate(g) == pytest.approx(np.log(2))
    assert plugin_rate(np.full((5, 3), 1 / 3)) == pytest.approx(0.0, abs=1e-15)


def test_bad_inputs():
    X = np.zeros((3, 1))
    G = _two_expert(1.0)
    with pytest.raises(ValueError, match="temperature"):
        gate_information_rate(G, X, temperature=0.0)
    with pytest.raises(ValueError, match="bits"):
        gate_information_rate(G, X, bits=0)
    with pytest.raises(ValueError, match="top_k"):
        gate_information_rate(G, X, top_k=3)
    with pytest.raises(ValueError, match="logit_range"):
        gate_information_rate(G, X, bits=2, logit_range=-1.0)
    with pytest.raises(ValueError, match="shape"):
        gate_information_rate(G, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-d"):
        distortion_rate(np.zeros(3), [1.0])
    with pytest.raises(ValueError, match="slopes"):
        distortion_rate(np.zeros((3, 2)), [-1.0])
    with pytest.raises(ValueError, match="NaN"):
        distortion_rate(np.full((3, 2), np.nan), [1.0])
    with pytest.raises(ValueError, match="weights"):
        distortion_rate(np.zeros((3, 2)), [1.0], weights=[0.5, 0.5])
    with pytest.raises(ValueError, match="loss"):
        routing_distortion(G, X, np.zeros(3), loss="hinge")


def test_plot_rate_distortion():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesmoe.diagnostics.plots import plot_rate_distortion

    rd = distortion_rate(np.array([[0.0, 1.0], [1.0, 0.0]]), np.linspace(6, 0, 13))
    ax = plot_rate_distortion(rd, rate=np.array([0.2, 0.3, 0.25]))
    line = ax.lines[0]
    order = np.argsort(rd.R.values)
    np.testing.assert_allclose(line.get_xdata(), rd.R.values[order])
    np.testing.assert_allclose(line.get_ydata(), rd.D.values[order])
    plt.close("all")
    with pytest.raises(ValueError, match="R and D"):
        plot_rate_distortion(rd.drop_vars("R"))
