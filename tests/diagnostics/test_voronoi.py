"""Voronoi cells and losses (docs/math.md §4): hand-computed values, invariances, errors."""

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.diagnostics.voronoi import voronoi_cells, voronoi_loss
from bayesmoe.measure import make_measure
from tests.helpers import jittered_measure, split_expert

# Two-expert Gaussian truth, d = 1: p* = (1/2, 1/2), canonical beta1* = (1, -1) (weighted mean 0).
TRUTH2 = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.0, 2.0]], [0.0, 1.0], [1.0, 1.0])


def test_exact_loss_hand_computed_with_gauge():
    # p = (3/4, 1/4); beta1 = (1, -1) has weighted mean 1/2, canonical (1/2, -3/2): |Δbeta1| = 1/2.
    # Atom 1: Δa = 0.2 -> 0.75 * (0.5 + 0.2); atom 2: Δb = 0.5 -> 0.25 * (0.5 + 0.5).
    # Mass term |0.75 - 0.5| + |0.25 - 0.5| = 0.5.  D1 = 0.5 + 0.525 + 0.25 = 1.275.
    fit = make_measure([np.log(3.0), 0.0], [[1.0, -1.0]], [[1.2, 2.0]], [0.0, 1.5], [1.0, 1.0])
    assert float(voronoi_loss(fit, TRUTH2)) == pytest.approx(1.275, abs=1e-12)
    cells = voronoi_cells(fit, TRUTH2)
    np.testing.assert_allclose(cells.error_beta1.values, [0.5, 0.5])
    np.testing.assert_allclose(cells.mass_error.values, [0.25, -0.25])


def test_overfitted_cell_hand_computed():
    # Truth atom 1 split into 1a (p=.25, beta1 1.1, a 1.2) and 1b (p=.25, beta1 .9, b .3, s2 1.4);
    # weighted mean of beta1 stays 0 so |Δbeta1| = 0.1 for both.  Cell size 2 -> r̄ = 4:
    # 1a: |(0.1, 0)|^4 + |(0.2, 0)|^2 = 1e-4 + 0.04;
    # 1b: |(0.1, 0.3)|^4 + |(0, 0.4)|^2 = 0.01 + 0.16.
    # D2 = 0.25 * 0.0401 + 0.25 * 0.17 = 0.052525.  D1 = .25*(.1+.2) + .25*(.1+.3+.4) = 0.275.
    fit = make_measure(
        np.log([0.25, 0.25, 0.5]),
        [[1.1, 0.9, -1.0]],
        [[1.2, 1.0, 2.0]],
        [0.0, 0.3, 1.0],
        [1.0, 1.4, 1.0],
    )
    assert float(voronoi_loss(fit, TRUTH2, kind="overfitted")) == pytest.approx(0.052525, abs=1e-12)
    assert float(voronoi_loss(fit, TRUTH2, kind="exact")) == pytest.approx(0.275, abs=1e-12)
    assert voronoi_cells(fit, TRUTH2).cell_size.values.tolist() == [2, 1]


def test_empty_cell_contributes_its_true_mass():
    # Truth with 3 equal masses; the fit copies atoms 1 and 2 with masses (1/2, 1/2) and misses 3.
    # Mass term |1/2 - 1/3| * 2 + |0 - 1/3| = 2/3; parameters exact (beta1 means are 0 in both).
    truth = make_measure(
        [0.0] * 3, [[1.0, -1.0, 0.0]], [[1.0, 2.0, 3.0]], [0.0, 1.0, 2.0], [1.0] * 3
    )
    fit = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.0, 2.0]], [0.0, 1.0], [1.0, 1.0])
    for kind in ("exact", "overfitted"):
        assert float(voronoi_loss(fit, truth, kind=kind)) == pytest.approx(2 / 3, abs=1e-12)
    cells = voronoi_cells(fit, truth)
    assert cells.cell_size.values.tolist() == [1, 1, 0]
    assert np.isnan(cells.cell_error_a.values[2])


def test_split_truth_has_zero_loss_and_plain_centring_would_not():
    _, _, truth = simulate("S-B", n=5, random_seed=0)
    split = split_expert(truth, 2, frac=0.3)
    assert float(voronoi_loss(split, truth, kind="overfitted")) == pytest.approx(0.0, abs=1e-12)
    # The deliberately wrong gauge (unweighted mean over experts) moves the split measure's
    # slopes, so a test of the zero loss above does detect it.
    b1, b1s = truth.beta1.values, split.beta1.values
    shift = b1.mean(-1) - b1s.mean(-1)
    assert np.abs(shift).max() > 0.05


def test_multinomial_exact_and_class_gauge():
    # d = 1, M = 2 (class 1 is the reference): one free class.  Δa = 0.3 on expert 1 (p = 1/2).
    a = np.zeros((1, 2, 2))
    a[0, 0] = [1.0, -1.0]
    b = np.array([[0.5, -0.5], [0.0, 0.0]])
    truth = make_measure([0.0, 0.0], [[1.0, -1.0]], a, b)
    a_fit = a.copy()
    a_fit[0, 0, 0] += 0.3
    fit = make_measure([0.0, 0.0], [[1.0, -1.0]], a_fit, b)
    assert float(voronoi_loss(fit, truth)) == pytest.approx(0.15, abs=1e-12)
    # Adding one constant to every class of an expert leaves its class probabilities unchanged.
    fit_shift = make_measure([0.0, 0.0], [[1.0, -1.0]], a_fit + 0.7, b - 2.0)
    assert float(voronoi_loss(fit_shift, truth)) == pytest.approx(0.15, abs=1e-12)
    # Over-fitted multinomial cells use squared norms: split expert 1 with Δa = 0.3 in one copy.
    a3 = np.concatenate([a_fit, a[..., :1]], axis=-1)
    b3 = np.concatenate([b, b[:, :1]], axis=-1)
    fit3 = make_measure(np.log([0.25, 0.5, 0.25]), [[1.0, -1.0, 1.0]], a3, b3)
    assert float(voronoi_loss(fit3, truth, kind="overfitted")) == pytest.approx(0.25 * 0.09)


def test_vectorised_over_draws_matches_single_draws():
    _, _, truth = simulate("S-B", n=5, random_seed=0)
    G = jittered_measure(truth, (2, 4), 0.2, seed=1)
    loss = voronoi_loss(G, truth, kind="overfitted")
    assert loss.dims == ("chain", "draw") and loss.name == "loss"
    for c in range(2):
        for d in range(4):
            one = G.isel(chain=c, draw=d)
            assert float(voronoi_loss(one, truth, kind="overfitted")) == pytest.approx(
                float(loss[c, d]), rel=1e-12
            )


@pytest.mark.parametrize("kind", ["exact", "overfitted"])
def test_invariant_to_permutation_and_gate_translation(kind):
    _, _, truth = simulate("S-B", n=5, random_seed=0)
    G = jittered_measure(truth, (1, 6), 0.1, seed=2)
    base = voronoi_loss(G, truth, kind=kind).values
    perm = [2, 0, 1]
    Gp = G.isel(expert=perm).assign_coords(expert=[0, 1, 2])
    np.testing.assert_allclose(voronoi_loss(Gp, truth, kind=kind).values, base, rtol=1e-12)
    t0, t1 = (
        3.7,
        xr.DataArray([-2.0, 5.0], dims="gate_feature", coords={"gate_feature": G.gate_feature}),
    )
    Gt = G.assign(beta0=G.beta0 + t0, beta1=G.beta1 + t1)
    Tt = truth.assign(beta0=truth.beta0 - 1.0, beta1=truth.beta1 - 0.5)
    np.testing.assert_allclose(voronoi_loss(Gt, Tt, kind=kind).values, base, rtol=1e-9)
    # temperature: (beta / tau) is what the gate sees
    Gtau = G.assign(beta0=2 * G.beta0, beta1=2 * G.beta1)
    Gtau.attrs["temperature"] = 2.0
    np.testing.assert_allclose(voronoi_loss(Gtau, truth, kind=kind).values, base, rtol=1e-9)


def test_cell_of_size_four_needs_r_bar():
    K = 2
    fit = make_measure(
        np.log([0.125] * 4 + [0.5]),
        [[1.0] * 4 + [-1.0]],
        [[1.0, 1.1, 0.9, 1.0, 2.0]],
        [0.0] * 4 + [1.0],
        [1.0] * 4 + [1.0],
    )
    assert TRUTH2.sizes["expert"] == K
    with pytest.raises(ValueError, match="r_bar"):
        voronoi_loss(fit, TRUTH2, kind="overfitted")
    # r̄(4) = 8: two atoms with |Δa| = 0.1 contribute 0.125 * 0.1^4 each.
    got = float(voronoi_loss(fit, TRUTH2, kind="overfitted", r_bar={4: 8.0}))
    assert got == pytest.approx(2 * 0.125 * 0.1**4, rel=1e-9)
    got_c = float(voronoi_loss(fit, TRUTH2, kind="overfitted", r_bar=lambda m: 2.0 * m))
    assert got_c == pytest.approx(got, rel=1e-12)
    # exact D1 does not need r̄
    assert float(voronoi_loss(fit, TRUTH2)) == pytest.approx(2 * 0.125 * 0.1)


def test_posterior_datatree_input():
    _, _, truth = simulate("S-B", n=5, random_seed=0)
    G = jittered_measure(truth, (1, 3), 0.1, seed=3)
    post = G.drop_vars("sigma2").assign(sigma=np.sqrt(G.sigma2))
    tree = xr.DataTree.from_dict({"posterior": post})
    np.testing.assert_allclose(voronoi_loss(tree, truth).values, voronoi_loss(G, truth).values)


def test_bad_inputs():
    _, _, truth = simulate("S-B", n=5, random_seed=0)
    G = jittered_measure(truth, (1, 2), 0.1, seed=4)
    with pytest.raises(ValueError, match="kind"):
        voronoi_loss(G, truth, kind="exactly")
    with pytest.raises(ValueError, match="sample dims"):
        voronoi_loss(truth, G)
    with pytest.raises(TypeError, match="measure"):
        voronoi_loss(np.zeros(3), truth)
    _, _, cat = simulate("S-D", n=5, random_seed=0, d=2)
    with pytest.raises(ValueError, match=r"family|gaussian"):
        voronoi_loss(cat, truth)
    with pytest.raises(ValueError, match="Gaussian experts only"):
        voronoi_loss(cat, cat, kind="overfitted", r_bar={4: 8.0})
    with pytest.raises(TypeError, match="r_bar"):
        voronoi_loss(G, truth, kind="overfitted", r_bar=8.0)
    bad = G.copy(deep=True)
    bad["b"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        voronoi_loss(bad, truth)
    _, _, sa = simulate("S-A", n=5, random_seed=0)
    with pytest.raises(ValueError, match="features"):
        voronoi_loss(sa, truth)


def test_plot_loss_posterior():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesmoe.diagnostics.plots import plot_loss_posterior

    _, _, truth = simulate("S-B", n=5, random_seed=0)
    loss = voronoi_loss(jittered_measure(truth, (2, 50), 0.1, seed=5), truth)
    ax = plot_loss_posterior(loss)
    assert ax.get_xlabel() == "D1"
    assert ax.lines[0].get_xdata()[0] == pytest.approx(float(loss.mean()))
    plt.close("all")
    with pytest.raises(TypeError, match="DataArray"):
        plot_loss_posterior(loss.values)
