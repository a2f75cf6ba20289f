"""compare_experts: one table of K against MM criteria, DSC, MTM, p(K | y) and LOO.

Every column is checked against the tool it comes from, called directly on the same data with the
seed compare_experts gives it, so a table that dropped, shifted (wrong K row) or recomputed a
number would fail.
"""

import arviz as az
import matplotlib
import numpy as np
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import k_posterior
from bayesmoe.selection.compare import compare_experts, plot_compare_experts
from bayesmoe.selection.criteria import select_experts
from bayesmoe.selection.mtm import num_experts_posterior

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def sa():
    X, y, _ = simulate("S-A", n=400, random_seed=3)
    return X, y


def test_mm_columns_equal_select_experts_and_rows_follow_ks(sa):
    X, y = sa
    table = compare_experts(X, y, ks=[3, 1, 2], n_starts=3, random_seed=5, progressbar=False)
    ref = select_experts(X, y, 3, n_starts=3, random_seed=5)
    assert list(table.index) == [1, 2, 3] and table.index.name == "n_experts"
    for col in ("loglik", "n_params", "aic", "bic", "icl"):
        np.testing.assert_allclose(table[col].values, ref[col].values, rtol=1e-12)
    assert table.attrs["selected_dsc"] == ref.attrs["selected_dsc"]
    assert table.loc[1, "dsc"] != table.loc[1, "dsc"]  # NaN: DSC has no level 1
    for k, v in ref.attrs["dsc"].items():
        assert table.loc[k, "dsc"] == pytest.approx(v)
    # S-A has two well-separated experts at n = 400: every MM criterion must find K = 2
    assert table.attrs["selected"]["bic"] == 2
    assert table.attrs["selected"]["mtm"] is None and table.attrs["selected"]["loo"] is None
    assert table[["p_mtm", "p_rjmcmc", "elpd_loo"]].isna().all().all()
    assert table.attrs["methods"] == ["mm", "dsc"]

    # a subset of K: rows only for those, criteria chosen among them
    sub = compare_experts(X, y, ks=[1, 3], n_starts=3, random_seed=5, progressbar=False)
    assert list(sub.index) == [1, 3]
    np.testing.assert_allclose(sub["bic"].values, ref.loc[[1, 3], "bic"].values, rtol=1e-12)
    assert sub.attrs["selected"]["bic"] == int(ref.loc[[1, 3], "bic"].idxmin())


def test_nuts_mtm_and_rjmcmc_columns_match_their_tools():
    X, y, _ = simulate("S-A", n=150, random_seed=1)
    table, fits = compare_experts(
        X,
        y,
        ks=[1, 2],
        n_starts=2,
        random_seed=0,
        nuts=True,
        nuts_kwargs={"draws": 60, "tune": 60, "chains": 2, "cores": 1},
        rjmcmc=True,
        rjmcmc_kwargs={
            "draws": 60,
            "tune": 40,
            "chains": 1,
            "cores": 1,
            "step_kwargs": {"moves_per_step": 2},
        },
        progressbar=False,
        return_fits=True,
    )
    assert sorted(fits["nuts"]) == [1, 2]
    assert table.attrs["methods"] == ["mm", "dsc", "loo", "mtm", "rjmcmc"]
    cmp = az.compare({str(k): v for k, v in fits["nuts"].items()}, round_to="none")
    for k in (1, 2):
        assert table.loc[k, "elpd_loo"] == pytest.approx(float(cmp.loc[str(k), "elpd"]))
        assert table.loc[k, "se_loo"] == pytest.approx(float(cmp.loc[str(k), "se"]))
    assert table["loo_weight"].sum() == pytest.approx(1.0)
    assert table.attrs["selected"]["loo"] == int(cmp["elpd"].astype(float).idxmax())
    # MTM on the K = 2 fit with the child seed compare_experts used (the third spawned stream)
    seed = int(np.random.SeedSequence(0).spawn(3)[2].generate_state(1)[0])
    pmf = num_experts_posterior(fits["nuts"][2], method="mtm", random_seed=seed)
    np.testing.assert_allclose(table["p_mtm"].values, pmf.values)
    # the p(K | y) column comes from the compiled reversible jump (the "auto" default for
    # Gaussian experts with covariates; benchmarks/README.md "Reference p(K | y) on S-B n = 40")
    assert fits["rjmcmc"].attrs["rj_sampler"] == "compiled"
    pk = k_posterior(fits["rjmcmc"], max_experts=2)
    np.testing.assert_allclose(table["p_rjmcmc"].values, pk.values)
    assert table["p_rjmcmc"].sum() == pytest.approx(1.0)
    assert table.attrs["selected"]["rjmcmc"] == int(pk.idxmax())
    axes = plot_compare_experts(table)
    assert len(axes) == 3 and len(axes[1].patches) == 4  # 2 methods x 2 K bars
    # an existing reversible-jump trace is reused, not resampled
    again = compare_experts(
        X, y, ks=[1, 2], n_starts=2, random_seed=0, rjmcmc=fits["rjmcmc"], progressbar=False
    )
    np.testing.assert_allclose(again["p_rjmcmc"].values, table["p_rjmcmc"].values)
    with pytest.raises(ValueError, match="max_experts"):
        compare_experts(X, y, ks=[1, 2, 3], rjmcmc=fits["rjmcmc"], progressbar=False)


def test_plot_says_which_methods_did_not_run(sa):
    X, y = sa
    table = compare_experts(X, y, ks=[1, 2], n_starts=2, random_seed=0, progressbar=False)
    axes = plot_compare_experts(table)
    texts = [t.get_text() for ax in axes for t in ax.texts]
    assert any("nuts=False" in t for t in texts) and any("no MTM" in t for t in texts)
    assert len(axes[0].lines) >= 3  # AIC, BIC, ICL (+ the DSC marker)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ks": []}, "empty"),
        ({"ks": [0, 1]}, "integers >= 1"),
        ({"ks": [1, 1]}, "twice"),
        ({"ks": 3}, "iterable"),
        ({"ks": [1, 2], "nuts": [3]}, "not in ks"),
        ({"ks": [1, 2], "mtm": "yes"}, "mtm"),
        ({"ks": [1, 2], "rjmcmc": 1}, "rjmcmc"),
        ({"ks": [1, 2], "rjmcmc": xr.DataTree()}, "sample_random_k"),
        ({"ks": [1, 2], "nuts_kwargs": [1]}, "nuts_kwargs"),
        ({"ks": [1, 2], "gate": "relu"}, "gate"),
        ({"ks": [1, 2], "family": "weibull"}, "family"),
    ],
)
def test_bad_arguments_name_the_argument(sa, kwargs, match):
    X, y = sa
    with pytest.raises((ValueError, TypeError), match=match):
        compare_experts(X, y, progressbar=False, **kwargs)


def test_public_name():
    assert bm.compare_experts is compare_experts
