"""Tests of label-switching relabelling (bayesmoe/diagnostics/relabel.py).

The traces are synthetic (no sampling): 4 chains x 300 iid draws of Gaussian jitter around a known
truth (a literature preset), with a different expert labelling per chain and random within-chain
switches in one chain. Because the jitter is iid and the permutations are known, a correct
relabelling is checkable exactly (the applied permutations are undone up to one global
permutation) and statistically (means within MCSE-derived bounds of the truth, R-hat ~ 1).
"""

from __future__ import annotations

import importlib
import itertools
import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesmoe.data import preset
from bayesmoe.diagnostics import mixing_measure
from bayesmoe.measure import log_likelihood
from tests.helpers import ALPHA_RECOVERY, assert_mcse_z, permute_last_axis

relabel_mod = importlib.import_module("bayesmoe.diagnostics.relabel")
relabel = relabel_mod.relabel
relabel_permutations = relabel_mod.relabel_permutations
permute_experts = relabel_mod.permute_experts

CHAINS, DRAWS = 4, 300
# R-hat threshold for correctly relabelled iid draws. With m = 8 split chains of n = 150 draws,
# R-hat^2 ~ (n - 1)/n + F/n with F ~ F(7, 1192), so R-hat - 1 ~ (F - 1)/(2n); R-hat > 1.01 needs
# F > 4, probability ~ 1e-4 per quantity (chi2_7 / 7 > 4). Over < 100 quantities (bulk and
# folded) the chance of a false failure is < 1 %, and the seeds are fixed.
RHAT_OK = 1.01
# Raw R-hat of a label-switched trace. Rank normalisation bounds it: two equally populated,
# well-separated modes give rank z-scores split at 0, so (half-normal moments) between-chain
# variance ~ 0.637 and within ~ 0.363, R-hat ~ sqrt(1 + 0.637 / 0.363) ~ 1.66; with K = 3 and four
# different labellings it is ~ 2. A chain switching within itself lowers it. We require > 1.5 for
# K = 3 (the brief's "large") and > 1.3 for K = 2; both are far above RHAT_OK.
RHAT_MIXED = 1.5
RHAT_MIXED_K2 = 1.3


# --------------------------------------------------------------------------------------------
# helper: synthetic traces with known label switching
# --------------------------------------------------------------------------------------------
def make_trace(
    name: str = "S-B",
    *,
    jitter: float = 0.05,
    seed: int = 0,
    switch_chain: int | None = 2,
    n_switches: int = 6,
    with_lp: bool = True,
    n_obs: int = 40,
    **preset_kwargs,
):
    """A DataTree whose draws are truth + iid N(0, jitter^2), with label switching applied.

    Returns (tree, truth, q, X, y): ``q[c, d, j]`` is the clean label shown at position j of the
    stored draw (stored[..., j] = clean[..., q[c, d, j]]).
    """
    truth, _x_dist = preset(name, **preset_kwargs)
    rng = np.random.default_rng(seed)
    K = truth.sizes["expert"]
    cat = "sigma2" not in truth
    clean = {}
    for var in ("beta0", "beta1", "a", "b"):
        t = truth[var]
        clean[var] = (t.dims, t.values + jitter * rng.standard_normal((CHAINS, DRAWS) + t.shape))
    if cat:  # the reference class stays pinned at zero
        clean["a"][1][..., -1, :] = 0.0
        clean["b"][1][..., -1, :] = 0.0
    else:
        sig = np.sqrt(truth["sigma2"].values)
        clean["sigma"] = (("expert",), sig + jitter * rng.standard_normal((CHAINS, DRAWS, K)))

    # a different labelling per chain, plus switches within one chain
    perms = list(itertools.permutations(range(K)))
    if len(perms) >= CHAINS:
        chain_perm = [perms[i] for i in rng.choice(len(perms), size=CHAINS, replace=False)]
    else:  # K = 2: alternate the two labellings over the chains
        chain_perm = [perms[i % len(perms)] for i in range(CHAINS)]
    q = np.broadcast_to(np.array(chain_perm)[:, None, :], (CHAINS, DRAWS, K)).copy()
    if switch_chain is not None:
        cuts = np.sort(rng.choice(np.arange(1, DRAWS), size=n_switches, replace=False))
        for lo, hi in zip(cuts, np.append(cuts[1:], DRAWS), strict=True):
            q[switch_chain, lo:hi] = rng.permutation(K)
        single = rng.choice(DRAWS, size=10, replace=False)  # isolated one-draw switches
        q[switch_chain, single] = [rng.permutation(K) for _ in single]

    dims = ("chain", "draw")
    post = xr.Dataset(
        {v: (dims + d, permute_last_axis(vals, q)) for v, (d, vals) in clean.items()},
        coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), **truth.coords},
    )
    # an unmatched expert variable (standardised-scale copy) and label-invariant deterministics
    post["beta0_std"] = 2.0 * post["beta0"] + 1.0
    post["b_sum"] = post["b"].sum("expert")

    measure = mixing_measure(post.assign_attrs(truth.attrs))
    X = rng.standard_normal((n_obs, truth.sizes["feature"]))
    y = rng.integers(0, truth.sizes["class"], n_obs) if cat else rng.standard_normal(n_obs)
    ll = log_likelihood(measure, X, y, pointwise=True)  # (chain, draw, obs), label-invariant
    a_vals = post["a"].transpose(*dims, "feature", ..., "expert").values
    a_vals = a_vals[..., 0, :] if cat else a_vals  # class-0 slopes for categorical experts
    mu = np.einsum("nd,cwdk->cwnk", X, a_vals)
    groups = {
        "posterior": post,
        "log_likelihood": xr.Dataset({"y": (dims + ("obs",), ll)}),
        "observed_data": xr.Dataset({"y": (("obs",), y)}),
        "constant_data": xr.Dataset({"X": (("obs", "feature"), X)}),
        # per-expert linear predictors: a non-posterior group with an expert dim
        "posterior_predictive": xr.Dataset({"mu_expert": (dims + ("obs", "expert"), mu)}),
    }
    if with_lp:  # a label-invariant stand-in for the log posterior
        z2 = sum(
            ((vals - np.mean(vals, axis=(0, 1))) ** 2).reshape(CHAINS, DRAWS, -1).sum(-1)
            for _, vals in clean.values()
        )
        groups["sample_stats"] = xr.Dataset({"lp": (dims, -0.5 * z2 / jitter**2)})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(truth.attrs)
    return tree, truth, q, X, y


def max_rhat(tree_or_ds: xr.Dataset, var_names=None) -> float:
    ds = tree_or_ds if var_names is None else tree_or_ds[list(var_names)]
    with warnings.catch_warnings():  # pinned (constant) entries give NaN R-hat, skipped below
        warnings.simplefilter("ignore", RuntimeWarning)
        r = az.rhat(ds)
    return float(max(float(np.nanmax(v.values)) for v in r.data_vars.values()))


@pytest.fixture(scope="module")
def gaussian():
    tree, truth, q, X, y = make_trace("S-B", seed=1)
    return {"raw": tree, "truth": truth, "q": q, "X": X, "y": y, "out": relabel(tree)}


@pytest.fixture(scope="module")
def categorical():
    tree, truth, q, X, y = make_trace("S-D", seed=2, regime="A")
    return {"raw": tree, "truth": truth, "q": q, "X": X, "y": y, "out": relabel(tree)}


def _recovered_exactly(q: np.ndarray, perm: np.ndarray) -> bool:
    """perm undoes q up to one global permutation: q o perm is the same for every draw."""
    comp = np.take_along_axis(q.reshape(-1, q.shape[-1]), perm.reshape(-1, q.shape[-1]), axis=1)
    return bool(np.all(comp == comp[0]))


# --------------------------------------------------------------------------------------------
# numpy core
# --------------------------------------------------------------------------------------------
def test_core_recovers_applied_permutations_exactly():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=2.0, size=(4, 5))  # K = 4 experts, P = 5 features
    draws = centres + 0.1 * rng.standard_normal((800, 4, 5))
    q = np.stack([rng.permutation(4) for _ in range(800)])
    switched = np.take_along_axis(draws, q[..., None], axis=1)
    perm = relabel_permutations(switched)
    assert perm.shape == (800, 4) and np.issubdtype(perm.dtype, np.integer)
    assert _recovered_exactly(q, perm)
    # the same with a draw-index pivot and with a (K, P) pivot array
    assert _recovered_exactly(q, relabel_permutations(switched, pivot=17))
    assert _recovered_exactly(q, relabel_permutations(switched, pivot=centres))
    # a seeded medoid search is reproducible
    a = relabel_permutations(switched, random_seed=5)
    assert np.array_equal(a, relabel_permutations(switched, random_seed=5))


def test_core_aligned_input_gives_identity_and_is_idempotent():
    rng = np.random.default_rng(4)
    draws = rng.normal(size=(3, 2)) * 3 + 0.1 * rng.standard_normal((300, 3, 2))
    assert np.array_equal(relabel_permutations(draws), np.tile(np.arange(3), (300, 1)))
    q = np.stack([rng.permutation(3) for _ in range(300)])
    switched = np.take_along_axis(draws, q[..., None], axis=1)
    once = np.take_along_axis(switched, relabel_permutations(switched)[..., None], axis=1)
    again = relabel_permutations(once)
    assert np.array_equal(again, np.tile(np.arange(3), (300, 1)))


def test_core_standardises_features():
    """Feature units must not matter; a raw (unscaled) distance is fooled by a noisy big feature."""
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])  # feature 1: uninformative, sd 50
    draws = centres + np.array([0.05, 50.0]) * rng.standard_normal((600, 3, 2))
    q = np.stack([rng.permutation(3) for _ in range(600)])
    switched = np.take_along_axis(draws, q[..., None], axis=1)
    perm = relabel_permutations(switched)
    assert _recovered_exactly(q, perm)
    assert np.array_equal(perm, relabel_permutations(switched * np.array([1e3, 1e-3])))
    # must-fail: weights = sd^2 undo the standardisation, i.e. a raw squared distance
    sd = switched.reshape(-1, 2).std(axis=0)
    assert not _recovered_exactly(q, relabel_permutations(switched, weights=sd**2))


def test_core_single_expert_and_bad_input():
    assert np.array_equal(relabel_permutations(np.ones((5, 1, 2))), np.zeros((5, 1), int))
    with pytest.raises(ValueError, match=r"shape \(S, K, P\)"):
        relabel_permutations(np.ones((5, 2)))
    bad = np.ones((5, 2, 2))
    bad[3, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf.*draw 3"):
        relabel_permutations(bad)
    with pytest.raises(ValueError, match="`weights` must be 2"):
        relabel_permutations(np.ones((5, 2, 2)), weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="`pivot`"):
        relabel_permutations(np.ones((5, 2, 2)), pivot=9)
    with pytest.raises(ValueError, match="`pivot`"):
        relabel_permutations(np.ones((5, 2, 2)), pivot=np.ones((3, 2)))
    with pytest.raises(ValueError, match="`max_iter`"):
        relabel_permutations(np.ones((5, 2, 2)), max_iter=0)
    with pytest.raises(TypeError, match="`atoms`"):
        relabel_permutations([["a", "b"]])


def test_core_warns_when_not_converged():
    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((50, 3, 2))  # no structure: the pivot keeps moving
    with pytest.warns(RuntimeWarning, match="did not converge"):
        relabel_permutations(atoms, max_iter=1)


def test_permute_experts_matches_numpy():
    rng = np.random.default_rng(0)
    vals = rng.standard_normal((2, 3, 4, 3))
    q = np.stack([[rng.permutation(3) for _ in range(3)] for _ in range(2)])
    da = xr.DataArray(vals, dims=("chain", "draw", "feature", "expert"))
    out = permute_experts(da.transpose("expert", "feature", "chain", "draw"), q)
    assert out.dims == ("expert", "feature", "chain", "draw")
    np.testing.assert_array_equal(out.transpose(*da.dims).values, permute_last_axis(vals, q))
    no_expert = xr.DataArray(vals[..., 0], dims=("chain", "draw", "feature"))
    xr.testing.assert_identical(permute_experts(no_expert, q), no_expert)
    with pytest.raises(ValueError, match=r"permutation of 0..K-1"):
        permute_experts(da, np.zeros((2, 3, 3), int))
    with pytest.raises(ValueError, match="shape"):
        permute_experts(da, np.zeros((2, 3, 2), int))


# --------------------------------------------------------------------------------------------
# relabel on DataTrees: Gaussian experts (S-B)
# --------------------------------------------------------------------------------------------
def test_raw_trace_is_label_switched(gaussian):
    post = gaussian["raw"]["posterior"].to_dataset()
    assert max_rhat(post, ["a"]) > RHAT_MIXED
    assert max_rhat(post, ["sigma"]) > RHAT_MIXED


def test_relabelled_rhat_is_one_for_every_variable(gaussian):
    out = gaussian["out"]
    assert max_rhat(out["posterior"].to_dataset()) < RHAT_OK
    assert max_rhat(out["posterior_predictive"].to_dataset()) < RHAT_OK


def test_relabel_undoes_switching_exactly(gaussian):
    perm = gaussian["out"]["relabel"]["permutation"]
    assert perm.dims == ("chain", "draw", "expert")
    assert _recovered_exactly(gaussian["q"], perm.values)


def test_relabelled_means_match_truth_within_mcse(gaussian):
    truth, post = gaussian["truth"], gaussian["out"]["posterior"].to_dataset()
    true = truth.assign(sigma=np.sqrt(truth["sigma2"]))  # the trace stores the noise sd
    names = ["beta0", "beta1", "a", "b", "sigma"]
    mean = post[names].mean(("chain", "draw"))
    mcse = az.mcse(post[names])

    # one global permutation separates the relabelled positions from the truth's labels
    def feats(ds):
        return np.concatenate(
            [ds[v].transpose(..., "expert").values.reshape(-1, ds.sizes["expert"]) for v in names]
        ).T

    cost = ((feats(mean)[:, None, :] - feats(true)[None, :, :]) ** 2).sum(-1)
    _rows, g = linear_sum_assignment(cost)
    # iid draws: |mean - truth| / mcse ~ |N(0, 1)|; Bonferroni over all scalars at 1 % overall.
    assert_mcse_z(feats(mean) - feats(true)[g], feats(mcse), alpha=ALPHA_RECOVERY, what="means")


def test_all_expert_variables_are_permuted_consistently(gaussian):
    raw, out = gaussian["raw"], gaussian["out"]
    post = out["posterior"].to_dataset()
    # the unmatched standardised copy is still 2 * beta0 + 1 after relabelling
    xr.testing.assert_allclose(post["beta0_std"], 2.0 * post["beta0"] + 1.0)
    # label-invariant variables and groups without an expert dim are untouched
    xr.testing.assert_identical(post["b_sum"], raw["posterior"]["b_sum"])
    xr.testing.assert_identical(out["log_likelihood"], raw["log_likelihood"])
    # the likelihood recomputed from the relabelled parameters equals the stored one
    measure = mixing_measure(out["posterior"].to_dataset().assign_attrs(gaussian["truth"].attrs))
    ll = log_likelihood(measure, gaussian["X"], gaussian["y"])
    np.testing.assert_allclose(ll, raw["log_likelihood"]["y"].sum("obs").values, rtol=1e-12)
    # must-fail: leaving one variable (a) in its raw labels breaks the likelihood
    broken = measure.assign(a=raw["posterior"]["a"])
    assert not np.allclose(log_likelihood(broken, gaussian["X"], gaussian["y"]), ll)
    # the predictive group with an expert dim follows the posterior
    a = post["a"].transpose("chain", "draw", "feature", "expert").values
    expected = np.einsum("nd,cwdk->cwnk", gaussian["X"], a)
    np.testing.assert_allclose(out["posterior_predictive"]["mu_expert"].values, expected)


def test_relabel_records_attrs_and_leaves_input_untouched():
    tree = make_trace("S-B", seed=5)[0]
    before = tree.copy(deep=True)
    out = relabel(tree)
    xr.testing.assert_identical(tree, before)
    assert "relabel" not in tree.children and "relabelled" not in tree.attrs
    assert out.attrs["relabelled"] == 1 and out.attrs["relabel_method"] == "pivot"
    assert out.attrs["family"] == tree.attrs["family"]
    assert not out["posterior"]["a"].equals(tree["posterior"]["a"])


def test_relabel_is_idempotent(gaussian):
    once = gaussian["out"]
    twice = relabel(once)
    xr.testing.assert_identical(twice["posterior"], once["posterior"])
    xr.testing.assert_identical(twice["relabel"], once["relabel"])


def test_relabel_without_lp_uses_medoid_pivot():
    tree, _, q, _, _ = make_trace("S-B", seed=6, with_lp=False)
    out = relabel(tree)
    assert _recovered_exactly(q, out["relabel"]["permutation"].values)
    assert max_rhat(out["posterior"].to_dataset()) < RHAT_OK
    seeded = relabel(tree, random_seed=3)
    assert _recovered_exactly(q, seeded["relabel"]["permutation"].values)


def test_broken_matcher_fails_the_rhat_check(gaussian, monkeypatch):
    """Must-fail: identity permutations leave the switching in, and the R-hat check catches it."""

    def identity(atoms, **kwargs):
        return np.tile(np.arange(atoms.shape[1]), (atoms.shape[0], 1))

    monkeypatch.setattr(relabel_mod, "relabel_permutations", identity)
    broken = relabel(gaussian["raw"])
    assert not max_rhat(broken["posterior"].to_dataset()) < RHAT_OK
    assert max_rhat(broken["posterior"].to_dataset(), ["a"]) > RHAT_MIXED


def test_dataset_in_dataset_out(gaussian):
    post = gaussian["raw"]["posterior"].to_dataset()
    before = post.copy(deep=True)
    out = relabel(post)
    xr.testing.assert_identical(post, before)  # input untouched
    assert isinstance(out, xr.Dataset)
    assert out.attrs["relabelled"] == 1
    assert _recovered_exactly(gaussian["q"], out["relabel_permutation"].values)
    assert max_rhat(out.drop_vars("relabel_permutation")) < RHAT_OK
    again = relabel(out)
    xr.testing.assert_identical(again, out)


def test_var_names_selects_the_matched_variables(gaussian):
    out = relabel(gaussian["raw"], var_names=["a", "sigma"])
    assert _recovered_exactly(gaussian["q"], out["relabel"]["permutation"].values)
    assert out["relabel"]["permutation"].attrs["matched_on"] == "a,sigma"
    with pytest.raises(ValueError, match=r"`var_names`.*'expert' dim"):
        relabel(gaussian["raw"], var_names=["b_sum"])


# --------------------------------------------------------------------------------------------
# categorical experts (S-D, K = 2, M = 3)
# --------------------------------------------------------------------------------------------
def test_categorical_relabelling(categorical):
    raw, out = categorical["raw"], categorical["out"]
    assert max_rhat(raw["posterior"].to_dataset(), ["a"]) > RHAT_MIXED_K2
    assert max_rhat(out["posterior"].to_dataset()) < RHAT_OK
    assert _recovered_exactly(categorical["q"], out["relabel"]["permutation"].values)
    post = out["posterior"]
    assert post["a"].dims == ("chain", "draw", "feature", "class", "expert")
    assert float(abs(post["a"].isel({"class": -1})).max()) == 0.0  # reference class stays pinned
    measure = mixing_measure(post.to_dataset().assign_attrs(categorical["truth"].attrs))
    np.testing.assert_allclose(
        log_likelihood(measure, categorical["X"], categorical["y"]),
        raw["log_likelihood"]["y"].sum("obs").values,
        rtol=1e-12,
    )


# --------------------------------------------------------------------------------------------
# bad input and pass-through
# --------------------------------------------------------------------------------------------
def test_bad_input_errors(gaussian):
    post = gaussian["raw"]["posterior"].to_dataset()
    with pytest.raises(ValueError, match="no 'posterior' group"):
        relabel(xr.DataTree.from_dict({"sample_stats": xr.Dataset({"lp": ("draw", [0.0])})}))
    with pytest.raises(ValueError, match="No posterior variable has an 'expert' dim"):
        relabel(post[["b_sum"]])
    with pytest.raises(ValueError, match="sample dims"):
        relabel(post.isel(chain=0))
    with pytest.raises(ValueError, match="`method`"):
        relabel(post, method="ecr")
    with pytest.raises(TypeError, match="`trace` must be"):
        relabel(post["a"])
    negative = post.assign(sigma=-post["sigma"])
    with pytest.raises(ValueError, match=r"'sigma'.*positive"):
        relabel(negative)
    mismatched = gaussian["raw"].copy()
    mismatched["posterior_predictive"] = xr.DataTree(
        gaussian["raw"]["posterior_predictive"].to_dataset().isel(draw=slice(0, 10))
    )
    with pytest.raises(ValueError, match=r"posterior_predictive.*cannot be aligned"):
        relabel(mismatched)


def test_single_expert_passes_through(gaussian):
    tree = gaussian["raw"]
    one = xr.DataTree.from_dict(
        {
            "posterior": tree["posterior"].to_dataset().isel(expert=[0]),
            "log_likelihood": tree["log_likelihood"].to_dataset(),
        }
    )
    out = relabel(one)
    xr.testing.assert_identical(out["posterior"], one["posterior"])
    assert np.all(out["relabel"]["permutation"].values == 0)


# --------------------------------------------------------------------------------------------
# Stephens' KL relabelling
# --------------------------------------------------------------------------------------------
stephens_permutations = relabel_mod.stephens_permutations


def test_stephens_core_recovers_permutations_from_identity_start():
    rng = np.random.default_rng(7)
    base = rng.dirichlet(np.full(4, 0.5), size=60)  # n = 60 observations, K = 4
    draws = np.clip(base + 0.02 * rng.standard_normal((400, 60, 4)), 1e-6, None)
    draws /= draws.sum(-1, keepdims=True)
    q = np.stack([rng.permutation(4) for _ in range(400)])
    switched = np.take_along_axis(draws, q[:, None, :], axis=2)
    perm = stephens_permutations(switched)
    assert _recovered_exactly(q, perm)
    aligned = np.take_along_axis(switched, perm[:, None, :], axis=2)
    assert np.array_equal(stephens_permutations(aligned), np.tile(np.arange(4), (400, 1)))


@pytest.mark.parametrize("which", ["gaussian", "categorical"])
def test_stephens_relabel_matches_pivot_and_repairs_a_bad_start(which, request):
    case = request.getfixturevalue(which)
    raw, q = case["raw"], case["q"]
    out = relabel(raw, method="stephens")
    assert out.attrs["relabel_method"] == "stephens"
    assert _recovered_exactly(q, out["relabel"]["permutation"].values)
    assert max_rhat(out["posterior"].to_dataset()) < RHAT_OK
    # data passed explicitly give the same result as data read from the trace
    explicit = relabel(
        raw["posterior"].to_dataset().assign_attrs(raw.attrs),
        method="stephens",
        X=case["X"],
        y=case["y"],
    )
    np.testing.assert_array_equal(
        explicit["relabel_permutation"].values, out["relabel"]["permutation"].values
    )
    # Stephens does work of its own: a start with 60 corrupted draws is repaired
    K = q.shape[-1]
    probs = relabel_mod._classification_probs(raw, raw["posterior"].to_dataset(), None, None)
    start = out["relabel"]["permutation"].values.reshape(-1, K).copy()
    rng = np.random.default_rng(0)
    bad = rng.choice(len(start), 60, replace=False)
    start[bad] = [rng.permutation(K) for _ in bad]
    assert not _recovered_exactly(q, start)  # the corrupted start is wrong...
    assert _recovered_exactly(q, stephens_permutations(probs, init=start))  # ...and repaired


def test_stephens_bad_input(gaussian):
    post = gaussian["raw"]["posterior"].to_dataset()
    with pytest.raises(ValueError, match="needs the data"):
        relabel(post, method="stephens")
    with pytest.raises(ValueError, match=r"`X` must have shape \(n, 2\)"):
        relabel(post, method="stephens", X=gaussian["X"][:, :1], y=gaussian["y"])
    with pytest.raises(ValueError, match="custom gate"):
        relabel(
            post.assign_attrs(gate="custom"), method="stephens", X=gaussian["X"], y=gaussian["y"]
        )
    with pytest.raises(ValueError, match="sum to 1"):
        stephens_permutations(np.ones((3, 4, 2)))
    with pytest.raises(ValueError, match=r"shape \(S draws"):
        stephens_permutations(np.ones((3, 2)))
    with pytest.raises(ValueError, match="`init`"):
        stephens_permutations(np.full((3, 4, 2), 0.5), init=np.zeros((3, 2), int))
    rng = np.random.default_rng(0)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        stephens_permutations(rng.dirichlet(np.ones(3), size=(40, 5)), max_iter=1)
