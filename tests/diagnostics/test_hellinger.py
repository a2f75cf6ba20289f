"""Expected Hellinger / total-variation distances (docs/math.md §5) against closed forms."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesmoe.data import simulate
from bayesmoe.diagnostics.hellinger import (
    expected_hellinger,
    expected_total_variation,
    gaussian_mixture_distance,
)
from bayesmoe.measure import make_measure
from tests.helpers import jittered_measure


def _single(mu, s2):
    """A one-expert Gaussian measure with constant mean mu and variance s2 (d = 1)."""
    return make_measure([0.0], [[0.0]], [[0.0]], [mu], [s2])


def _h2_closed(m1, s1, m2, s2):
    v = s1**2 + s2**2
    return 1 - np.sqrt(2 * s1 * s2 / v) * np.exp(-((m1 - m2) ** 2) / (4 * v))


def test_two_gaussians_closed_form_grid():
    # Tolerance 1e-7: the module docstring's stated accuracy (measured max error 5e-9).
    dm, ratio = np.meshgrid(np.linspace(0, 12, 25), np.geomspace(0.25, 4, 9))
    one = np.ones(dm.shape + (1,))
    got = gaussian_mixture_distance(one, 0 * one, one, one, dm[..., None], ratio[..., None])
    np.testing.assert_allclose(got, _h2_closed(0, 1, dm, ratio), atol=1e-7)
    # Total variation of equal-variance Gaussians: 2 Phi(|Δμ| / (2σ)) - 1.
    tv = gaussian_mixture_distance(one, 0 * one, one, one, dm[..., None], one, kind="tv")
    np.testing.assert_allclose(tv, 2 * stats.norm.cdf(dm / 2) - 1, atol=1e-7)


def test_expected_hellinger_measure_closed_form():
    X = np.linspace(-1, 1, 7)[:, None]
    G, R = _single(0.3, 0.5**2), _single(-0.4, 1.3**2)
    want = np.sqrt(_h2_closed(0.3, 0.5, -0.4, 1.3))
    assert float(expected_hellinger(G, R, X)) == pytest.approx(want, abs=1e-7)
    yy = np.linspace(-15, 15, 300_001)
    want_tv = 0.5 * np.trapezoid(
        np.abs(stats.norm.pdf(yy, 0.3, 0.5) - stats.norm.pdf(yy, -0.4, 1.3)), yy
    )
    # trapezoid error on this smooth-but-kinked integrand at step 1e-4 is below 1e-7
    assert float(expected_total_variation(G, R, X)) == pytest.approx(want_tv, abs=1e-7)


def test_identical_is_zero_far_apart_is_one():
    X, _, truth = simulate("S-B", n=40, random_seed=0)
    assert float(expected_hellinger(truth, truth, X)) == pytest.approx(0.0, abs=1e-7)
    assert float(expected_total_variation(truth, truth, X)) == pytest.approx(0.0, abs=1e-12)
    far = truth.assign(b=truth.b + 60.0)  # 60 / max sd 1.2 = 50 sd apart: h² = 1 - O(e^-300)
    assert float(expected_hellinger(far, truth, X)) == pytest.approx(1.0, abs=1e-10)
    assert float(expected_total_variation(far, truth, X)) == pytest.approx(1.0, abs=1e-10)
    mid = expected_hellinger(truth.assign(b=truth.b + 0.5), truth, X)
    assert 0.0 < float(mid) < 1.0


def test_multinomial_exact():
    # K = 1, M = 2, a = 0: P = softmax((b, 0)) constant in x.
    X = np.zeros((3, 1))
    G = make_measure([0.0], [[0.0]], np.zeros((1, 2, 1)), [[1.0], [0.0]])
    R = make_measure([0.0], [[0.0]], np.zeros((1, 2, 1)), [[-0.5], [0.0]])
    p, q = 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(0.5))
    h = np.sqrt(1 - np.sqrt(p * q) - np.sqrt((1 - p) * (1 - q)))
    assert float(expected_hellinger(G, R, X)) == pytest.approx(h, abs=1e-14)
    assert float(expected_total_variation(G, R, X)) == pytest.approx(abs(p - q), abs=1e-14)
    Xd, _, truth = simulate("S-D", n=30, random_seed=1)
    assert float(expected_hellinger(truth, truth, Xd)) == pytest.approx(0.0, abs=1e-7)


def test_per_draw_and_paired_reference_and_invariances():
    X, _, truth = simulate("S-B", n=25, random_seed=2)
    G = jittered_measure(truth, (2, 3), 0.3, seed=3)  # 2 chains x 3 draws around the truth
    h = expected_hellinger(G, truth, X)
    assert h.dims == ("chain", "draw") and h.name == "hellinger"
    for c in range(2):
        for d in range(3):
            one = float(expected_hellinger(G.isel(chain=c, draw=d), truth, X))
            assert one == pytest.approx(float(h[c, d]), rel=1e-10)
    # paired: each draw against itself is 0
    np.testing.assert_allclose(expected_total_variation(G, G, X).values, 0.0, atol=1e-12)
    # symmetric, and invariant to permuting experts and translating the gate
    Gp = G.isel(expert=[1, 2, 0]).assign_coords(expert=[0, 1, 2])
    Gp = Gp.assign(beta0=Gp.beta0 - 2.0, beta1=Gp.beta1 + 1.5)
    np.testing.assert_allclose(expected_hellinger(Gp, truth, X).values, h.values, atol=1e-12)
    tv_ab = expected_total_variation(G.isel(chain=0, draw=0), truth, X)
    tv_ba = expected_total_variation(truth, G.isel(chain=0, draw=0), X)
    assert float(tv_ab) == pytest.approx(float(tv_ba), abs=1e-12)


def test_bad_inputs():
    X, _, truth = simulate("S-B", n=10, random_seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        expected_hellinger(truth, truth, X[:, :1])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        expected_hellinger(truth, truth, bad)
    _, _, cat = simulate("S-D", n=10, random_seed=0, d=2)
    with pytest.raises(ValueError, match="experts"):
        expected_hellinger(cat, truth, X)
    G = xr.concat([truth] * 2, dim="draw")
    with pytest.raises(ValueError, match="sample dims"):
        expected_hellinger(truth, G, X)
    with pytest.raises(ValueError, match="n_grid"):
        expected_hellinger(truth, truth, X, n_grid=1)
    with pytest.raises(ValueError, match="kind"):
        gaussian_mixture_distance([1.0], [0.0], [1.0], [1.0], [0.0], [1.0], kind="kl")
