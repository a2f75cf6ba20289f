"""Tests of the dendrogram of mixing measures and DSC (docs/math.md §7)."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.measure import log_likelihood, make_measure, measure_arrays
from bayesmoe.selection.dendrogram import dendrogram, merge_atoms, plot_dendrogram, select_dsc

matplotlib.use("Agg")

MATH_P = [0.05, 0.30, 0.05, 0.30, 0.15, 0.15]
MATH_THETA = [-2.1, -1.9, 0.05, -0.05, 3.0, 3.2]
MATH_HEIGHTS = [0.0004285714, 0.0017142857, 0.003, 0.6270089286, 3.4994169643]


def test_merge_atoms_reproduces_math_unit_vector():
    out = merge_atoms(MATH_P, MATH_THETA)
    # docs/math.md §7 gives 10 decimals, so agreement is to 1e-10 of rounding (checked at 1e-9).
    np.testing.assert_allclose(out["heights"], MATH_HEIGHTS, atol=1e-9, rtol=0)
    assert len(out["levels"]) == 6 and out["levels"][-1][0] == pytest.approx([1.0])
    # the root atom is the weighted mean of all atoms
    assert out["levels"][-1][1][0, 0] == pytest.approx(np.dot(MATH_P, MATH_THETA))


def test_merge_atoms_wrong_distance_breaks_the_unit_vector():
    """A distance without the p_i p_j/(p_i+p_j) factor must not pass the same check."""
    th = np.asarray(MATH_THETA)
    out = merge_atoms(np.ones(6), th)  # equal weights: factor 1/2 for every pair, other order
    assert not np.allclose(out["heights"], MATH_HEIGHTS, atol=1e-9)


def test_merge_atoms_linear_block():
    p = np.array([0.2, 0.6])
    th = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    out = merge_atoms(p, th, linear=[1, 2])
    expect = 0.2 * 0.6 / 0.8 * (1.0**2 + np.sqrt(2.0**2 + 2.0**2))
    assert out["heights"][0] == pytest.approx(expect)


def _gaussian_measure(rng, K=5, d=2):
    return make_measure(
        rng.normal(size=K),
        rng.normal(size=(d, K)),
        rng.normal(size=(d, K)),
        rng.normal(size=K),
        rng.uniform(0.2, 2.0, size=K),
    )


def test_gaussian_distance_formula_two_atoms():
    G = make_measure([0.0, np.log(3.0)], [[0.0, 1.0]], [[1.0, 3.0]], [0.0, 0.5], [1.0, 2.0])
    p = np.array([0.25, 0.75])
    expect = p.prod() / p.sum() * ((1.0**2 + 0.5**2) + np.hypot(2.0, 1.0))
    dend = dendrogram(G)
    assert float(dend.height.sel(level=2)) == pytest.approx(expect)
    merged = dend.sel(level=1)
    assert float(merged.a.sel(expert=0).squeeze()) == pytest.approx(0.25 * 1 + 0.75 * 3)
    assert float(merged.sigma2.sel(expert=0)) == pytest.approx(0.25 * 1 + 0.75 * 2)
    assert merged.active.values.tolist() == [True, False]


@pytest.mark.parametrize("family", ["gaussian", "categorical"])
def test_heights_invariant_to_expert_permutation(family):
    rng = np.random.default_rng(0)
    if family == "gaussian":
        G = _gaussian_measure(rng)
    else:
        K, d, M = 4, 2, 3
        a = rng.normal(size=(d, M, K))
        b = rng.normal(size=(M, K))
        a[:, -1], b[-1] = 0, 0
        G = make_measure(rng.normal(size=K), rng.normal(size=(d, K)), a, b)
    perm = rng.permutation(G.sizes["expert"])
    Gp = G.isel(expert=perm).assign_coords(expert=np.arange(G.sizes["expert"]))
    np.testing.assert_allclose(dendrogram(Gp).height, dendrogram(G).height, rtol=1e-12)
    # and under a common gate translation (beta0 + t0, beta1 + t1)
    Gt = G.copy()
    Gt["beta0"] = G.beta0 + 2.0
    Gt["beta1"] = G.beta1 + 0.7
    np.testing.assert_allclose(dendrogram(Gt).height, dendrogram(G).height, rtol=1e-10)


def test_mean_loglik_and_dsc_definition():
    X, y, truth = simulate("S-B", n=400, random_seed=0)
    dend = dendrogram(truth, X, y)
    n = 400
    # level K̄ is the measure itself
    assert float(dend.mean_loglik.sel(level=3)) == pytest.approx(
        float(log_likelihood(truth, X, y)) / n, rel=1e-12
    )
    # every merged measure's mean log-likelihood is the plug-in of that level's measure
    lvl2 = dend.sel(level=2)
    G2 = make_measure(
        lvl2.beta0.values[:2],
        lvl2.beta1.values[:, :2],
        lvl2.a.values[:, :2],
        lvl2.b.values[:2],
        lvl2.sigma2.values[:2],
    )
    assert float(lvl2.mean_loglik) == pytest.approx(float(log_likelihood(G2, X, y)) / n)
    dsc = -(dend.height + np.log(n) * dend.mean_loglik)
    np.testing.assert_allclose(dend.dsc.sel(level=[3, 2]), dsc.sel(level=[3, 2]))
    assert np.isnan(float(dend.dsc.sel(level=1)))
    assert dend.attrs["n_experts_selected"] == int(dend.selected) == select_dsc(truth, X, y) == 3


def test_per_draw_posterior_of_K():
    X, y, truth = simulate("S-B", n=300, random_seed=1)
    rng = np.random.default_rng(0)
    p = measure_arrays(truth)
    noisy = {
        v: p[v] + 0.01 * rng.normal(size=(2, 3) + p[v].shape) for v in ("beta0", "beta1", "a", "b")
    }
    post = make_measure(
        noisy["beta0"],
        noisy["beta1"],
        noisy["a"],
        noisy["b"],
        np.broadcast_to(p["sigma2"], (2, 3, 3)),
        sample_dims=("chain", "draw"),
    )
    sel = select_dsc(post, X, y)
    assert sel.dims == ("chain", "draw") and sel.shape == (2, 3)
    # each draw agrees with its own one-draw computation
    one = post.isel(chain=1, draw=2)
    assert int(sel.isel(chain=1, draw=2)) == select_dsc(one, X, y)
    # an inactive expert is dropped from that draw only
    post["active"] = xr.ones_like(post.beta0, dtype=bool)
    post["active"][0, 0, 2] = False
    dend = dendrogram(post, X, y)
    assert np.isnan(float(dend.height.isel(chain=0, draw=0).sel(level=3)))
    assert int(dend.selected.isel(chain=0, draw=0)) == 2


def test_plot_and_errors():
    X, y, truth = simulate("S-B", n=200, random_seed=0)
    ax = plot_dendrogram(truth, X, y)
    assert ax.get_ylabel() == "merge height"
    with pytest.raises(ValueError, match="both"):
        dendrogram(truth, X)
    with pytest.raises(ValueError, match="shape"):
        dendrogram(truth, X[:, :1], y)
    with pytest.raises(TypeError, match="mixing-measure"):
        dendrogram(X)
    with pytest.raises(ValueError, match="positive"):
        merge_atoms([0.5, -0.5], [0.0, 1.0])


def _dsc_on_SB(seed):
    X, y, _ = simulate("S-B", n=5000, random_seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # over-fitted K: convergence is slow
        res = fit_mle(X, y, 5, n_starts=6, random_seed=seed, max_iter=500)
    return select_dsc(res.measure_, X, y)


def test_dsc_selects_three_on_SB_fast_seed():
    """One seed of the study below (seed 2; ~8 s)."""
    assert _dsc_on_SB(2) == 3


@pytest.mark.slow
def test_dsc_selects_three_on_SB_most_seeds():
    """S-B (K*=3), n=5000, MM fit with K̄=5 (6 starts, 500 SQUAREM cycles), DSC choice.

    Measured at development: seeds 0..4 gave K̂ = 4, 3, 3, 3, 3 (4 of 5 correct).
    Require at least 3 of 5 ("most seeds")."""
    picks = [_dsc_on_SB(s) for s in range(5)]
    assert sum(k == 3 for k in picks) >= 3, picks


def test_an_atom_of_underflowing_weight_merges_first():
    """A near-step gate of an MM fit can put an intercept ~1000 below the others: its weight
    softmax(beta0) is 0 in floating point. The dendrogram still runs, that atom merges first at
    height ~0, and the remaining levels equal the dendrogram without it."""
    X, y, truth = simulate("S-B", n=300, random_seed=0)
    K = truth.sizes["expert"]
    extra = truth.isel(expert=[0]).assign_coords(expert=[K])
    extra["beta0"] = extra["beta0"] - 1000.0
    G = xr.concat([truth, extra], dim="expert")
    dend = dendrogram(G, X, y)
    assert float(dend.height.sel(level=K + 1)) < 1e-300
    ref = dendrogram(truth, X, y)
    np.testing.assert_allclose(
        dend.height.sel(level=list(range(K, 1, -1))),
        ref.height.sel(level=list(range(K, 1, -1))),
        rtol=1e-9,
    )
