"""Cross-K relabelling: every draw's experts land on the reference row of the expert they are.

Synthetic random-K posteriors with known identities: four true experts, the draws hold the modal
three (K = 3), all four (K = 4, the extra expert) or two of them (K = 2, expert 2 missing), in
shuffled slots, with prior noise in the inactive slots (as in a sample_random_k trace).
"""

import numpy as np
import pytest
import xarray as xr

from bayesmoe.diagnostics.relabel_cross_k import (
    cross_k_assignments,
    cross_k_summary,
    relabel_cross_k,
)

# true experts: gate slope, expert slope, intercept, log sigma; mass weights
B1 = np.array([1.0, -1.0, 0.0, 2.0])
A = np.array([2.0, -2.0, 0.5, 0.0])
B = np.array([-3.0, 0.0, 3.0, 8.0])
SIG = np.array([0.5, 1.0, 0.7, 0.3])
W = np.array([0.4, 0.3, 0.2, 0.1])
SETS = {3: [0, 1, 2], 4: [0, 1, 2, 3], 2: [0, 1]}
P_K = {3: 0.6, 4: 0.25, 2: 0.15}
NOISE = 0.05


def synthetic(S=600, seed=0, categorical=False):
    rng = np.random.default_rng(seed)
    k = rng.choice([3, 4, 2], size=S, p=[P_K[3], P_K[4], P_K[2]])
    Km = 4
    beta0 = rng.normal(0, 3, (S, Km))
    beta1 = rng.normal(0, 3, (S, Km))
    a = rng.normal(0, 3, (S, Km))
    b = rng.normal(0, 3, (S, Km))
    sig = np.abs(rng.normal(0, 1, (S, Km))) + 0.05
    who = np.full((S, Km), -1)
    shift = rng.normal(0, 2, S)  # gate translation per draw: not identified, must not matter
    for s in range(S):
        ids = np.array(SETS[k[s]])[rng.permutation(k[s])]
        who[s, : k[s]] = ids
        e = NOISE * rng.standard_normal((4, k[s]))
        beta0[s, : k[s]] = np.log(W[ids] / W[ids].sum()) + shift[s] + e[0]
        beta1[s, : k[s]] = B1[ids] + shift[s] + e[1]
        a[s, : k[s]] = A[ids] + e[2]
        b[s, : k[s]] = B[ids] + e[3]
        sig[s, : k[s]] = SIG[ids] * np.exp(0.1 * e[0])
    active = np.arange(Km)[None, :] < k[:, None]
    dims = ("chain", "draw", "expert")
    fdims = ("chain", "draw", "feature", "expert")
    data = {
        "beta0": (dims, beta0[None]),
        "beta1": (fdims, beta1[None, :, None, :]),
        "active": (dims, active[None]),
        "n_experts": (("chain", "draw"), k[None]),
    }
    coords = {"feature": ["x"]}
    if categorical:  # class 1 logits carry (a, b); class 2 is the pinned reference
        aa = np.stack([a, np.zeros_like(a)], axis=1)  # (S, class, expert)
        bb = np.stack([b, np.zeros_like(b)], axis=1)
        data["a"] = (("chain", "draw", "feature", "class", "expert"), aa[None, :, None])
        data["b"] = (("chain", "draw", "class", "expert"), bb[None])
        coords["class"] = ["c1", "c2"]
    else:
        data["a"] = (fdims, a[None, :, None, :])
        data["b"] = (dims, b[None])
        data["sigma"] = (dims, sig[None])
    post = xr.Dataset(data, coords=coords)
    return post.assign_coords(chain=[0], draw=np.arange(S), expert=np.arange(Km)), who, k


def _row_of_truth(out, who):
    """For each reference row: the true expert id of the atom mapped to it, per draw (-1 absent)."""
    slot = out["slot"].values[0]
    return np.where(slot >= 0, np.take_along_axis(who, np.maximum(slot, 0), axis=1), -1)


@pytest.mark.parametrize("categorical", [False, True], ids=["gaussian", "categorical"])
def test_every_draw_maps_each_expert_to_its_own_row(categorical):
    post, who, k = synthetic(categorical=categorical)
    out = relabel_cross_k(post)
    assert out.attrs["reference_k"] == 3 and out.sizes["expert"] == 4
    truth = _row_of_truth(out, who)
    # each row holds one true expert in every draw where it is present (no mixing of identities)
    for r in range(4):
        ids = np.unique(truth[:, r][truth[:, r] >= 0])
        assert ids.size == 1, (r, ids)
    # rows by decreasing presence (ties by mass 0.4 > 0.3): experts 0, 1, 2, then the extra one
    assert [int(np.unique(truth[:, r][truth[:, r] >= 0])[0]) for r in range(4)] == [0, 1, 2, 3]
    table = cross_k_summary(out)
    # presence is exact: expert 0, 1 in every draw, 2 when K >= 3, 3 when K = 4
    expected = 100 * np.array([1.0, 1.0, np.mean(k >= 3), np.mean(k == 4)])
    np.testing.assert_allclose(table["present_pct"].values, expected)
    mean_k = [np.mean(k), np.mean(k), np.mean(k[k >= 3]), 4.0]
    np.testing.assert_allclose(table["mean_k_when_present"].values, mean_k)
    b_col = "b[c1]_mean" if categorical else "b_mean"
    # the intercept noise is N(0, NOISE^2) per draw: the mean of >= 150 draws is within
    # 5 standard errors (5 * 0.05 / sqrt(150) = 0.02) of the truth
    np.testing.assert_allclose(table[b_col].values, B, atol=5 * NOISE / np.sqrt(150))


def test_slot_summaries_without_relabelling_would_fail():
    """Must-fail contrast: the same summary by input slot mixes the experts."""
    post, _who, _k = synthetic()
    slot_means = np.nanmean(np.where(post["active"].values[0], post["b"].values[0], np.nan), 0)
    assert np.max(np.abs(slot_means - B)) > 1.0
    identity = xr.Dataset({"present": post["active"]})
    identity["b"] = post["b"].where(post["active"])
    naive = cross_k_summary(identity)
    assert np.max(np.abs(naive["b_mean"].values - B)) > 1.0


def test_invariant_to_permuting_the_slots_of_each_draw():
    post, _who, _k = synthetic(S=300, seed=3)
    out = relabel_cross_k(post)
    rng = np.random.default_rng(9)
    perm = np.stack([rng.permutation(4) for _ in range(300)])  # any permutation, inactive too
    shuffled = post.copy()
    for v in ("beta0", "beta1", "a", "b", "sigma", "active"):
        da = post[v].transpose("chain", "draw", ..., "expert")
        vals = np.take_along_axis(
            da.values, perm.reshape((1, 300) + (1,) * (da.ndim - 3) + (4,)), axis=-1
        )
        shuffled[v] = (da.dims, vals)
    out2 = relabel_cross_k(shuffled)
    for v in ("b", "a", "sigma", "weight", "present"):
        xr.testing.assert_allclose(out[v], out2[v])


def test_reference_k_option_and_errors():
    post, _who, _k = synthetic(S=200, seed=4)
    out = relabel_cross_k(post, reference_k=4)
    assert out.attrs["reference_k"] == 4 and out.sizes["expert"] == 4
    assert cross_k_summary(out)["present_pct"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="reference_k"):
        relabel_cross_k(post, reference_k=1)
    with pytest.raises(TypeError, match="relabel_cross_k"):
        cross_k_summary(post)
    with pytest.raises(ValueError, match="var_names"):
        cross_k_summary(out, var_names=["nope"])


def test_numpy_core_on_a_k_only_below_the_reference():
    # draws at K = 1 only take one row; rows never present in a draw are -1
    theta = np.array([[[0.0], [5.0]], [[5.1], [0.1]], [[4.9], [99.0]]])
    active = np.array([[True, True], [True, True], [True, False]])
    slot, ref = cross_k_assignments(theta, active)
    assert slot.tolist() == [[0, 1], [1, 0], [-1, 0]]
    np.testing.assert_allclose(ref.ravel(), [0.05, 5.0])
