"""Tests of the relabelled summary table (bayesmoe/diagnostics/summary.py).

Synthetic traces (no sampling): 4 chains x 300 iid draws of N(0, 0.05^2) jitter around the S-B
truth, each chain in a different expert labelling, one chain also switching within itself.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmoe.data import preset
from bayesmoe.diagnostics import mixing_measure
from bayesmoe.diagnostics.relabel import relabel
from bayesmoe.diagnostics.summary import summary, total_log_likelihood
from bayesmoe.measure import conditional_mean, log_likelihood
from tests.helpers import permute_last_axis

CHAINS, DRAWS, N_OBS, JITTER = 4, 300, 30, 0.05
# R-hat of correctly relabelled iid draws: 8 split chains of 150, R-hat - 1 ~ (F(7, 1192) - 1)/300;
# > 1.01 has probability ~ 1e-4 per quantity (see tests/diagnostics/test_relabel.py).
RHAT_OK = 1.01
# Raw R-hat with a different labelling per chain (K = 3) is ~ 2 for separated experts; rank
# normalisation caps it near 1.66 for two equal modes, so 1.5 separates "switched" from "fine".
RHAT_MIXED = 1.5


def make_trace(seed: int = 0) -> tuple[xr.DataTree, np.ndarray, np.ndarray]:
    """A label-switched S-B trace with posterior, log_likelihood, observed/constant data."""
    truth, _ = preset("S-B")
    rng = np.random.default_rng(seed)
    K = truth.sizes["expert"]
    dims = ("chain", "draw")
    vals = {
        v: (
            truth[v].dims,
            truth[v].values + JITTER * rng.standard_normal((CHAINS, DRAWS) + truth[v].shape),
        )
        for v in ("beta0", "beta1", "a", "b")
    }
    vals["sigma"] = (
        ("expert",),
        np.sqrt(truth["sigma2"].values) + JITTER * rng.standard_normal((CHAINS, DRAWS, K)),
    )
    perms = np.array(list(itertools.permutations(range(K))))
    q = np.repeat(perms[rng.choice(len(perms), CHAINS, replace=False)][:, None], DRAWS, axis=1)
    q[1, 150:] = rng.permutation(K)  # a within-chain switch
    q[1, rng.choice(DRAWS, 10, replace=False)] = rng.permutation(K)
    post = xr.Dataset(
        {
            v: (
                dims + d,
                permute_last_axis(x, q),
            )
            for v, (d, x) in vals.items()
        },
        coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), **truth.coords},
    )
    X = rng.standard_normal((N_OBS, truth.sizes["feature"]))
    y = rng.standard_normal(N_OBS)
    measure = mixing_measure(post)
    post["beta0_std"] = 2.0 * post["beta0"]  # expert dim, not matched on
    post["mu"] = (dims + ("obs",), conditional_mean(measure, X))  # per-observation deterministic
    post["mu_bar"] = post["mu"].mean("obs")  # label-invariant scalar
    ll = log_likelihood(measure, X, y, pointwise=True)
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "log_likelihood": xr.Dataset({"y": (dims + ("obs",), ll)}),
            "observed_data": xr.Dataset({"y": (("obs",), y)}),
            "constant_data": xr.Dataset({"X": (("obs", "feature"), X)}),
        }
    )
    return tree, X, y


@pytest.fixture(scope="module")
def trace():
    return make_trace(seed=11)[0]


@pytest.fixture(scope="module")
def tables(trace):
    return {"relabelled": summary(trace), "raw": summary(trace, relabel=False)}


def _expected_rows(post: xr.Dataset, names) -> int:
    return sum(
        int(np.prod([post.sizes[d] for d in post[n].dims if d not in ("chain", "draw")]))
        for n in names
    )


def test_rows_and_columns(trace, tables):
    df = tables["relabelled"]
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [
        "mean",
        "sd",
        "eti94_lb",
        "eti94_ub",
        "ess_bulk",
        "ess_tail",
        "r_hat",
        "mcse_mean",
        "mcse_sd",
    ]
    post = trace["posterior"].to_dataset()
    names = ["beta0", "beta1", "a", "b", "sigma", "mu_bar"]  # 'mu' has an obs dim
    assert len(df) == _expected_rows(post, names) + 1
    assert {"a[x0, 0]", "sigma[2]", "mu_bar", "loglik"} <= set(df.index)
    assert "beta0_std[1]" not in df.index  # the standardised scale only when asked for
    assert not any(i.startswith("mu[") for i in df.index)
    assert df.attrs["relabelled"] is True and tables["raw"].attrs["relabelled"] is False
    assert np.issubdtype(df["mean"].dtype, np.floating)


def test_relabelled_table_has_rhat_one_and_raw_table_does_not(tables):
    assert tables["relabelled"]["r_hat"].max() < RHAT_OK
    # must-fail: the same table without relabelling flags the switched parameters
    raw = tables["raw"]
    assert raw.loc[[i for i in raw.index if i.startswith("a[")], "r_hat"].max() > RHAT_MIXED


def test_loglik_row_is_label_invariant_and_correct(trace, tables):
    rel, raw = tables["relabelled"], tables["raw"]
    pd.testing.assert_series_equal(rel.loc["loglik"], raw.loc["loglik"])
    total = trace["log_likelihood"]["y"].sum("obs")
    np.testing.assert_allclose(rel.loc["loglik", "mean"], float(total.mean()), rtol=1e-12)
    np.testing.assert_allclose(rel.loc["loglik", "sd"], float(total.std(ddof=1)), rtol=1e-6)
    # the label-invariant deterministic is unchanged by relabelling too
    pd.testing.assert_series_equal(rel.loc["mu_bar"], raw.loc["mu_bar"])


def test_rows_carry_the_right_labels(trace, tables):
    """Each row's numbers belong to the coordinates in its label (multi-dim variables included).

    Must-fail: a single arviz.summary call over the whole posterior (ArviZ 1.3) mislabels
    a[feature, expert] next to beta0[expert]; this test caught that.
    """
    post = relabel(trace)["posterior"]
    table = summary(trace, standardized=True)
    for name in ("beta1", "a", "beta0_std"):
        means = post[name].mean(("chain", "draw"))
        for idx in np.ndindex(means.shape):
            coords = [means[d].values[i] for d, i in zip(means.dims, idx, strict=True)]
            label = f"{name}[{', '.join(str(c) for c in coords)}]"
            np.testing.assert_allclose(
                table.loc[label, "mean"], float(means.values[idx]), rtol=1e-12
            )


def test_total_log_likelihood_sums_all_observed_variables():
    ll = xr.Dataset(
        {
            "y": (("chain", "draw", "obs"), np.ones((2, 3, 4))),
            "z": (("chain", "draw", "obs2"), np.full((2, 3, 2), 0.5)),
        }
    )
    tree = xr.DataTree.from_dict({"log_likelihood": ll})
    np.testing.assert_array_equal(total_log_likelihood(tree).values, np.full((2, 3), 5.0))
    assert total_log_likelihood(xr.DataTree()) is None
    bad = xr.DataTree.from_dict({"log_likelihood": xr.Dataset({"y": (("obs",), [1.0])})})
    with pytest.raises(ValueError, match=r"expected \(chain, draw, \.\.\.\)"):
        total_log_likelihood(bad)


def test_options(trace):
    df = summary(trace, var_names=["sigma", "loglik"], ci_prob=0.9, ci_kind="hdi")
    assert list(df.index) == ["sigma[0]", "sigma[1]", "sigma[2]", "loglik"]
    assert {"hdi90_lb", "hdi90_ub"} <= set(df.columns)
    assert len(summary(trace, var_names="mu")) == N_OBS  # an obs variable when asked for
    rounded = summary(trace, var_names=["b"], round_to=2)
    np.testing.assert_array_equal(rounded["mean"], rounded["mean"].round(2))
    diag = summary(trace, var_names=["b"], kind="diagnostics")
    assert "mean" not in diag.columns and "r_hat" in diag.columns


def test_dataset_input_and_name_clash(trace):
    post = trace["posterior"].to_dataset()
    df = summary(post)
    assert "loglik" not in df.index and df["r_hat"].max() < RHAT_OK
    clash = trace.copy()
    clash["posterior"] = xr.DataTree(post.assign(loglik=post["mu_bar"] - 1.0))
    df = summary(clash, var_names=["loglik", "loglik_total"])
    assert list(df.index) == ["loglik", "loglik_total"]
    np.testing.assert_allclose(df.loc["loglik", "mean"], float(post["mu_bar"].mean()) - 1.0)
    np.testing.assert_allclose(
        df.loc["loglik_total", "mean"], float(trace["log_likelihood"]["y"].sum("obs").mean())
    )


def test_no_expert_dim_is_summarised_without_relabelling(trace):
    post = trace["posterior"].to_dataset()[["mu_bar"]]
    tree = xr.DataTree.from_dict(
        {"posterior": post, "log_likelihood": trace["log_likelihood"].to_dataset()}
    )
    df = summary(tree)
    assert list(df.index) == ["mu_bar", "loglik"] and df.attrs["relabelled"] is False


def test_bad_input(trace):
    with pytest.raises(ValueError, match="no 'posterior' group"):
        summary(xr.DataTree.from_dict({"log_likelihood": trace["log_likelihood"].to_dataset()}))
    with pytest.raises(ValueError, match=r"`var_names`.*nope"):
        summary(trace, var_names=["a", "nope"])
    with pytest.raises(ValueError, match="`ci_prob`"):
        summary(trace, ci_prob=94)
    with pytest.raises(TypeError, match="`round_to`"):
        summary(trace, round_to="auto")
    with pytest.raises(TypeError, match="`relabel`"):
        summary(trace, relabel="yes")
    with pytest.raises(TypeError, match="`trace` must be"):
        summary(np.zeros((4, 100)))


def test_user_units_lead_and_standardised_rows_are_behind_an_option(trace):
    df = summary(trace, relabel=False)
    stems = list(dict.fromkeys(i.split("[")[0] for i in df.index))
    assert stems == ["beta0", "beta1", "a", "b", "sigma", "mu_bar", "loglik"]
    std = summary(trace, relabel=False, standardized=True)
    stems = list(dict.fromkeys(i.split("[")[0] for i in std.index))
    assert stems == ["beta0", "beta1", "a", "b", "sigma", "mu_bar", "beta0_std", "loglik"]
    with pytest.raises(TypeError, match="`standardized`"):
        summary(trace, standardized="yes")


def test_legend_says_what_every_parameter_means(trace):
    from bayesmoe.diagnostics.summary import describe

    trace = trace.copy()
    trace.attrs["family"] = "gaussian"
    df = summary(trace, relabel=False, standardized=True)
    legend = df.attrs["legend"]
    assert set(legend) == {"beta0", "beta1", "a", "b", "sigma", "beta0_std", "loglik"}
    assert legend["beta1"].startswith("gate slope") and legend["b"].startswith("expert intercept")
    assert legend["sigma"].startswith("expert noise sd")
    assert "standardised scale" in legend["beta0_std"]
    assert describe(df).splitlines()[0].startswith("beta0: gate intercept")


def test_every_family_describes_every_trace_variable():
    from bayesmoe.families import FAMILIES, get_family

    for name in FAMILIES:
        fam = get_family(name)
        assert set(fam.trace_descriptions) == set(fam.trace_dims), name


def test_categorical_reference_class_zeros_are_left_out():
    from tests.helpers import synthetic_trace

    trace = synthetic_trace("S-D")
    post = trace["posterior"]
    classes = post["class"].values.tolist()
    df = summary(trace, relabel=False)
    ref = str(classes[-1])
    rows = [i for i in df.index if i.startswith(("a[", "b["))]
    assert rows and not any(f"{ref}," in i.split("[")[1] or i.endswith(f"[{ref}, 0]") for i in rows)
    n_feat, n_exp = post.sizes["feature"], post.sizes["expert"]
    assert len(rows) == (n_feat + 1) * (len(classes) - 1) * n_exp
    # the twin: without the family (no attrs) nothing says which entries are fixed
    bare = trace.copy()
    bare.attrs.pop("family")
    rows = [i for i in summary(bare, relabel=False).index if i.startswith(("a[", "b["))]
    assert len(rows) == (n_feat + 1) * len(classes) * n_exp
