"""Merge–truncate–merge and the posterior of the number of experts (docs/math.md §6)."""

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.diagnostics.voronoi import voronoi_loss
from bayesmoe.measure import make_measure
from bayesmoe.selection.mtm import merge_truncate_merge, mtm_omega, num_experts_posterior
from tests.helpers import jittered_measure, split_expert

_, _, TRUTH = simulate("S-B", n=5, random_seed=0)


def split_posterior(truth, j, frac=0.5, noise=0.02, shape=(2, 100), seed=0):
    """Jittered over-fitted copies of `truth`: expert j split in two (masses frac, 1 - frac)."""
    return jittered_measure(split_expert(truth, j, frac), shape, noise, seed)


@pytest.mark.parametrize("j", [0, 2])
def test_recovers_true_k_from_split_posterior(j):
    # 200 draws; split copies are ~0.02 * sqrt(2 * 6) ≈ 0.07 apart, far inside omega_1000 ≈ 0.54,
    # while distinct S-B atoms are > 1 apart: every draw must give K̃ = 3.
    G = split_posterior(TRUTH, j, frac=0.5)
    res = merge_truncate_merge(G, n=1000, random_seed=1)
    assert res.n_experts.dims == ("chain", "draw")
    assert np.all(res.n_experts.values == 3)
    pmf = num_experts_posterior(G, n=1000, random_seed=1)
    assert pmf.attrs["method"] == "mtm" and int(pmf.idxmax()) == 3
    assert float(pmf.sel(n_experts=3)) == 1.0
    # merged measure: its exact-fitted loss to the truth is of the order of the jitter. D1 adds
    # p-weighted norms of 4 blocks of N(0, 0.02²) errors plus mass errors; measured 0.085 here.
    assert float(voronoi_loss(res.measure, TRUTH).mean()) < 0.2
    np.testing.assert_array_equal(res.measure.active.sum("expert").values, res.n_experts.values)
    # The test can fail: without merging (tiny radius and truncation) the split survives.
    no_merge = merge_truncate_merge(G, omega=1e-9, c=1.0, random_seed=1)
    assert np.all(no_merge.n_experts.values == 4)


def test_truncates_a_light_far_atom():
    # A spurious atom of weight 1% far from everything: above no threshold (c omega)^4 ≈ 0.083.
    K = TRUTH.sizes["expert"]
    w = np.append(0.99 * np.exp(TRUTH.beta0.values) / np.exp(TRUTH.beta0.values).sum(), 0.01)
    G = make_measure(
        np.log(w),
        np.c_[TRUTH.beta1.values, [5.0, 5.0]],
        np.c_[TRUTH.a.values, [-4.0, 4.0]],
        np.append(TRUTH.b.values, 6.0),
        np.append(TRUTH.sigma2.values, 3.0),
    )
    res = merge_truncate_merge(G, omega=mtm_omega(1000, 4.0), random_seed=0)
    assert int(res.n_experts) == K
    assert float(res.measure.beta0.where(res.measure.active).pipe(np.exp).sum()) == pytest.approx(1)


@pytest.mark.parametrize("delta,expected", [(0.5, 1), (1.0, 2)])
def test_step3_hand_case(delta, expected):
    # r = 2, omega = 0.1, c = 5: threshold (c omega)^r = 0.25.  Step 1 merges nothing (delta >
    # omega); both weights (0.6, 0.4) exceed 0.25; step 3 drops the lighter atom iff
    # 0.4 * delta^2 <= 0.25: true for delta = 0.5 (0.1), false for delta = 1 (0.4).
    G = make_measure(np.log([0.6, 0.4]), [[0.0, 0.0]], [[1.0, 1.0]], [0.0, delta], [1.0, 1.0])
    res = merge_truncate_merge(G, omega=0.1, c=5.0, r=2.0, random_seed=0)
    assert int(res.n_experts) == expected
    assert float(res.measure.b[0]) == 0.0  # the heavier atom is kept with its own parameters


def _chain_posterior(n_draws=50, seed=5):
    """Three equal-weight atoms on a chain b = (0, 0.4, 0.8) (+ jitter): with omega = 0.5 the
    neighbours are within omega but the ends are not, so the random order of step 1 matters."""
    rng = np.random.default_rng(seed)
    S = (1, n_draws)
    jit = lambda *shape: rng.normal(0, 0.02, S + shape)  # noqa: E731
    return make_measure(
        jit(3),
        [[1.0, 1.0, 1.0]] + jit(1, 3),
        [[0.5, 0.5, 0.5]] + jit(1, 3),
        np.array([0.0, 0.4, 0.8]) + jit(3),
        np.exp(jit(3)),
        sample_dims=("chain", "draw"),
    )


def test_invariant_to_permutation_and_gate_translation():
    G = _chain_posterior()
    kw = dict(omega=0.5, c=0.01)
    base = merge_truncate_merge(G, random_seed=7, **kw)
    # the order matters on this posterior (K̃ is 1 or 2 depending on which atom comes first) ...
    assert set(np.unique(base.n_experts.values)) == {1, 2}
    other = merge_truncate_merge(G, random_seed=8, **kw)
    assert np.any(other.n_experts.values != base.n_experts.values)
    # ... yet permuting the experts never changes the result for a given seed
    Gp = G.isel(expert=[2, 0, 1]).assign_coords(expert=np.arange(3))
    perm = merge_truncate_merge(Gp, random_seed=7, **kw)
    xr.testing.assert_allclose(perm.measure, base.measure)
    np.testing.assert_array_equal(perm.n_experts.values, base.n_experts.values)
    t1 = xr.DataArray([-3.0], dims="gate_feature", coords={"gate_feature": G.gate_feature})
    Gt = G.assign(beta0=G.beta0 + 2.5, beta1=G.beta1 + t1)
    tr = merge_truncate_merge(Gt, random_seed=7, **kw)
    np.testing.assert_array_equal(tr.n_experts.values, base.n_experts.values)
    for v in ("a", "b", "sigma2", "active"):
        np.testing.assert_array_equal(tr.measure[v].values, base.measure[v].values)
    w_tr = np.exp(tr.measure.beta0.where(tr.measure.active, -np.inf))
    w_b = np.exp(base.measure.beta0.where(base.measure.active, -np.inf))
    np.testing.assert_allclose(w_tr.values, w_b.values, atol=1e-12)
    again = merge_truncate_merge(G, random_seed=7, **kw)
    xr.testing.assert_identical(again.measure, base.measure)


def test_n_from_trace_and_multinomial_default_r():
    G = split_posterior(TRUTH, 0, shape=(1, 20))
    post = G.drop_vars("sigma2").assign(sigma=np.sqrt(G.sigma2))
    tree = xr.DataTree.from_dict(
        {"posterior": post, "observed_data": xr.Dataset({"y": ("obs", np.zeros(1000))})}
    )
    res = merge_truncate_merge(tree, random_seed=0)
    assert res.measure.attrs["mtm_omega"] == pytest.approx(mtm_omega(1000, 4.0))
    assert np.all(res.n_experts.values == 3)
    _, _, cat = simulate("S-D", n=5, random_seed=0)
    res_c = merge_truncate_merge(cat.expand_dims(draw=[0]), n=1000, random_seed=0)
    assert res_c.measure.attrs["mtm_r"] == 2.0 and int(res_c.n_experts[0]) == 2


def test_num_experts_active_and_occupied():
    act = np.array([[[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 0]]], bool)
    S = act.shape[:2]
    G = make_measure(
        np.zeros(S + (3,)),
        np.zeros(S + (1, 3)),
        np.zeros(S + (1, 3)),
        np.zeros(S + (3,)),
        np.ones(S + (3,)),
        active=act,
        sample_dims=("chain", "draw"),
    )
    pmf = num_experts_posterior(G)
    assert pmf.attrs["method"] == "active"
    np.testing.assert_allclose(pmf.values, [0.25, 0.5, 0.25])
    # deterministic gate (slope ±50) on X = (-1, 1, 1): both experts occupied in every draw
    sharp = make_measure(
        [[0.0, 0.0]] * 3,
        [[[50.0, -50.0]]] * 3,
        [[[0.0, 0.0]]] * 3,
        [[-10.0, 10.0]] * 3,
        [[1.0, 1.0]] * 3,
        sample_dims=("draw",),
    )
    occ = num_experts_posterior(sharp, method="occupied", X=[[-1.0], [1.0], [1.0]], random_seed=0)
    np.testing.assert_allclose(occ.values, [0.0, 1.0])
    occ1 = num_experts_posterior(sharp, method="occupied", X=[[1.0], [1.0]], random_seed=0)
    np.testing.assert_allclose(occ1.values, [1.0, 0.0])
    # flat gate, responsibilities from y: both y near expert 2's mean 10 -> one expert occupied
    flat = sharp.assign(beta1=sharp.beta1 * 0)
    occ_y = num_experts_posterior(
        flat, method="occupied", X=[[0.0], [0.0]], y=[10.0, 9.5], random_seed=0
    )
    np.testing.assert_allclose(occ_y.values, [1.0, 0.0])


def test_bad_inputs():
    G = split_posterior(TRUTH, 0, shape=(1, 3))
    with pytest.raises(ValueError, match="omega"):
        merge_truncate_merge(G)
    with pytest.raises(ValueError, match="omega"):
        merge_truncate_merge(G, omega=-1.0)
    with pytest.raises(ValueError, match="`c`"):
        merge_truncate_merge(G, omega=0.1, c=0.0)
    with pytest.raises(ValueError, match="`r`"):
        merge_truncate_merge(G, omega=0.1, r=-2)
    with pytest.raises(ValueError, match="`n`"):
        merge_truncate_merge(G, n=1)
    with pytest.raises(ValueError, match="method"):
        num_experts_posterior(G, method="dp")
    with pytest.raises(ValueError, match="active"):
        num_experts_posterior(G, method="active")
    with pytest.raises(ValueError, match="X"):
        num_experts_posterior(G, method="occupied")
    with pytest.raises(TypeError, match="measure_or_trace"):
        merge_truncate_merge([1, 2, 3], omega=0.1)


def test_plot_num_experts():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesmoe.diagnostics.plots import plot_num_experts

    pmf = num_experts_posterior(split_posterior(TRUTH, 0, shape=(1, 20)), n=1000, random_seed=0)
    ax = plot_num_experts(pmf, true_k=3)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], pmf.values)
    assert "mtm" in ax.get_xlabel()
    plt.close("all")
    with pytest.raises(ValueError, match="n_experts"):
        plot_num_experts(pmf.values)


def test_point_estimate_without_omega_is_refused():
    # A single measure (e.g. an MM fit) with the default radius: refused with the reason and the
    # alternatives; with an explicit omega it runs. On the old code this returned a K̃.
    G = split_posterior(TRUTH, 0, shape=(1, 1)).isel(chain=0, draw=0, drop=True)
    with pytest.raises(ValueError, match=r"point estimate.*explicitly"):
        merge_truncate_merge(G, n=1000, random_seed=0)
    with pytest.raises(ValueError, match="select_experts"):
        num_experts_posterior(G, method="mtm", n=1000)
    assert int(merge_truncate_merge(G, omega=mtm_omega(1000, 4.0), random_seed=0).n_experts) == 3
