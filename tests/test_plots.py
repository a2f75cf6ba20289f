"""Plots of a fitted model (bayesmoe.plots): for Gaussian, categorical and Poisson fits from
fit_mle and for a posterior trace, each figure has the axes, labels and lines it promises, and the
curves are the prediction module's numbers (not a re-derivation)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.measure import measure_from_arrays
from bayesmoe.plots import (
    plot_experts,
    plot_fit,
    plot_gate,
    plot_k_choice,
    plot_k_posterior,
    plot_predictive_density,
    responsibilities,
)
from tests.helpers import synthetic_trace

POISSON_TRUTH = measure_from_arrays(
    [0.0, 0.0],
    [[3.0, -3.0], [0.0, 0.0]],
    {"a": [[0.1, -0.2], [0.5, -0.4]], "b": [1.5, 0.2]},
    family="poisson",
)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def gaussian_fit():
    X, y, _ = bm.data.simulate("S-B", n=150, random_seed=0)
    return bm.fit_mle(X, y, n_experts=2, n_starts=2, random_seed=0), X, y


@pytest.fixture(scope="module")
def categorical_fit():
    X, y, _ = bm.data.simulate("S-D", n=200, random_seed=0)
    return bm.fit_mle(X, y, 2, family="categorical", n_starts=2, random_seed=0), X, y


@pytest.fixture(scope="module")
def poisson_fit():
    X = np.random.default_rng(0).normal(size=(150, 2))
    _, y, _ = bm.data.simulate(POISSON_TRUTH, X=X, random_seed=0)
    return bm.fit_mle(X, y, 2, family="poisson", n_starts=2, random_seed=0), X, y


def test_gaussian_experts_plot_draws_the_expert_means_of_prediction(gaussian_fit):
    res, X, y = gaussian_fit
    ax = plot_experts(res, X, y, feature=1, y_label="velocity", min_gate=0)[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "velocity")
    lines = ax.get_lines()
    assert len(lines) == 2  # one mean curve per expert, no band for an MLE
    # the curve of expert 0 is a_0 . x + b_0 at the grid (x0 at its median): linear experts
    G = res.measure_
    xs, ys = lines[0].get_data()
    want = G["a"].values[0, 0] * np.median(X[:, 0]) + G["a"].values[1, 0] * xs + G["b"].values[0]
    np.testing.assert_allclose(ys, want, rtol=1e-10, atol=1e-10)
    # every observation is drawn once, coloured by its most probable expert
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(y)


def test_expert_curves_are_drawn_where_the_gate_gives_them_weight():
    """Local experts (mcycle-like): each line only where its gate probability is >= min_gate."""
    truth = measure_from_arrays(
        [0.0, 0.0],
        [[6.0, -6.0]],
        {"a": [[10.0, -10.0]], "b": [0.0, 0.0], "sigma2": [1.0, 1.0]},
        family="gaussian",
    )
    X = np.linspace(-2, 2, 200)[:, None]
    _, y, _ = bm.data.simulate(truth, X=X, random_seed=0)
    ax = plot_experts(truth, X, y)[0]
    xs, ys = ax.get_lines()[0].get_data()
    g = bm.gate_probabilities(truth, xs[:, None]).values[:, 0]
    np.testing.assert_array_equal(np.isfinite(ys), g >= 0.05)
    assert 0 < np.isfinite(ys).sum() < len(xs)  # drawn on part of the range only
    # the twin: min_gate=0 draws the whole line
    full = plot_experts(truth, X, y, min_gate=0)[0].get_lines()[0].get_data()[1]
    assert np.isfinite(full).all()


def test_gaussian_posterior_gets_bands_and_uses_the_stored_data():
    trace = synthetic_trace("S-B")
    ax = plot_experts(trace)[0]
    assert len(ax.get_lines()) == 3
    bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert len(bands) == 3
    fig = plot_fit(trace, feature="x0")
    assert [a.get_xlabel() for a in fig.axes] == ["x0", "x0"]


def test_categorical_experts_plot_has_one_axis_per_class(categorical_fit):
    res, X, y = categorical_fit
    axes = plot_experts(res, X, y, feature=0)
    classes = res.measure_["class"].values.tolist()
    assert len(axes) == len(classes) == 3
    for c, ax in zip(classes, axes, strict=True):
        assert len(ax.get_lines()) == 2 + 1  # each expert's P(y = c | x, k) and the mixture's
        assert ax.get_ylabel() == f"P(y = {c} | x)"
    # the mixture curve is predict()'s class probability on the same grid
    xs, mix = axes[1].get_lines()[-1].get_data()
    grid = np.column_stack([xs, np.full_like(xs, np.median(X[:, 1]))])
    probs = bm.predict(res.measure_, grid)["probs"].values[:, 1]
    np.testing.assert_allclose(mix, probs, atol=1e-12)


def test_poisson_experts_and_predictive_pmf(poisson_fit):
    res, X, y = poisson_fit
    ax = plot_experts(res, X, y, y_label="count")[0]
    assert len(ax.get_lines()) == 2 and ax.get_ylabel() == "count"
    rates = ax.get_lines()[0].get_data()[1]
    assert np.all(rates[np.isfinite(rates)] > 0)
    ax = plot_predictive_density(res, {"x0": 0.0, "x1": 0.0})
    heights = np.array([p.get_height() for p in ax.patches])
    grid = np.array([p.get_x() + p.get_width() / 2 for p in ax.patches])
    assert np.allclose(grid, np.round(grid))  # bars at counts
    want = bm.conditional_density(res.measure_, [[0.0, 0.0]], grid)["density"].values[0]
    np.testing.assert_allclose(heights, want, atol=1e-12)
    assert heights.sum() > 0.99  # the default grid covers the 0.1%..99.9% range


def test_gate_plot_lines_sum_to_one(gaussian_fit):
    res, X, _ = gaussian_fit
    ax = plot_gate(res, X, feature="x0", at=[0.0, 0.5])
    curves = np.array([line.get_data()[1] for line in ax.get_lines()])
    assert curves.shape[0] == 2 and ax.get_xlabel() == "x0"
    np.testing.assert_allclose(curves.sum(0), 1.0, atol=1e-12)


def test_gaussian_predictive_density_integrates_to_one():
    trace = synthetic_trace("S-B")
    ax = plot_predictive_density(trace, [0.2, -0.3])
    xs, ys = ax.get_lines()[0].get_data()
    assert ax.get_xlabel() == "y" and len(ax.collections) == 1  # the band
    assert abs(np.trapezoid(ys, xs) - 1) < 0.01


def test_responsibilities_rows_sum_to_one_and_follow_the_mle(gaussian_fit):
    res, X, y = gaussian_fit
    r = responsibilities(res, X, y)
    np.testing.assert_allclose(r, res.responsibilities_, atol=1e-6)


def test_k_posterior_plot_shows_prior_and_mcse():
    trace = synthetic_trace("S-B", random_k=True)
    trace.attrs["experts_prior"] = "[0.4, 0.3, 0.3]"
    ax = plot_k_posterior(trace)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["prior p(K)", "p(K | y) ± 2 MCSE"]
    assert len(ax.patches) == 6  # K = 1..3: 3 prior bars, 3 posterior bars
    with pytest.raises(ValueError, match="random-K"):
        plot_experts(trace)


def test_k_choice_figure_has_panels_table_and_recommendation():
    X, y, _ = bm.data.simulate("S-B", n=200, random_seed=0)
    table = bm.compare_experts(X, y, ks=range(1, 4), n_starts=2, random_seed=0, progressbar=False)
    fig = plot_k_choice(table)
    assert len(fig.axes) == 4
    assert fig._suptitle.get_text() == table.attrs["recommendation"]
    # LOO for some K only: the tie column shows "tie" or nothing, never <NA>
    table.loc[[2, 3], ["elpd_loo", "elpd_diff", "se_diff"]] = [[-10.0, 0.2, 1.0], [-9.8, 0, 0]]
    from bayesmoe.selection.recommend import loo_ties

    table["loo_tie"] = loo_ties(table)
    cells = plot_k_choice(table).axes[-1].tables[0].get_celld().values()
    texts = {cell.get_text().get_text() for cell in cells}
    assert "tie" in texts and "<NA>" not in texts


def test_bad_arguments_are_named(gaussian_fit):
    res, X, _ = gaussian_fit
    with pytest.raises(ValueError, match="`feature`"):
        plot_gate(res, X, feature="z")
    with pytest.raises(ValueError, match="Pass the data"):
        plot_experts(res)
    with pytest.raises(TypeError, match="`fit`"):
        plot_gate(xr.DataArray([1.0]), X)
    with pytest.raises(ValueError, match="`at`"):
        plot_gate(res, X, at=[1.0])


def test_a_posterior_dataset_without_attrs_plots_with_bands():
    """What relabel_at_k returns for one K of a random-K trace: a posterior Dataset with
    (chain, draw) and no family attrs; the family is read from its variables."""
    trace = synthetic_trace("S-B")
    post = trace["posterior"].to_dataset()
    X = trace["constant_data"]["X"].values
    y = trace["observed_data"]["y"].values
    ax = plot_experts(post, X, y)[0]
    bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert len(ax.get_lines()) == 3 and len(bands) == 3


@pytest.fixture(scope="module")
def own_gate_fit():
    """A gate on its own covariate w (not an expert feature): the experts see x only."""
    import pandas as pd

    rng = np.random.default_rng(0)
    x, w = rng.normal(size=200), rng.normal(size=200)
    y = np.where(w > 0, 2 + x, -2 - x) + 0.3 * rng.normal(size=200)
    X, Z = pd.DataFrame({"x": x}), pd.DataFrame({"w": w})
    return bm.fit_mle(X, y, n_experts=2, gate_X=Z, random_seed=0), X, Z, y


def test_plots_run_along_the_gates_own_covariate(own_gate_fit):
    from bayesmoe.prediction import gate_probabilities

    res, X, Z, y = own_gate_fit
    ax = plot_gate(res, X, gate_X=Z, feature="w", at={"x": 0.0})
    w_grid, g0 = ax.get_lines()[0].get_data()
    assert ax.get_xlabel() == "w"
    expected = gate_probabilities(res, np.zeros((w_grid.size, 1)), gate_X=w_grid[:, None])
    np.testing.assert_allclose(g0, expected.isel(expert=0).values, atol=1e-12)
    assert g0[0] < 0.05 < 0.95 < g0[-1] or g0[-1] < 0.05 < 0.95 < g0[0]  # the gate follows w
    axes = plot_experts(res, X, y, gate_X=Z, feature="w", min_gate=0)
    means = [line.get_data()[1] for line in axes[0].get_lines()]
    assert all(np.ptp(m) < 1e-12 for m in means)  # experts do not read w: flat along it


def test_plots_take_the_gates_covariates_from_a_dataframe_or_the_trace(own_gate_fit):
    import pandas as pd

    res, X, Z, y = own_gate_fit
    both = pd.concat([Z, X], axis=1)  # gate column first: picked by name
    fig = plot_fit(res, both, y, feature="w")
    assert [a.get_xlabel() for a in fig.axes] == ["w", "w"]
    np.testing.assert_allclose(
        responsibilities(res, X, y, gate_X=Z), res.responsibilities_, atol=1e-6
    )
    post = res.measure_.expand_dims(chain=[0], draw=np.arange(2))
    trace = xr.DataTree.from_dict(
        {
            "posterior": post,
            "constant_data": xr.Dataset(
                {"X": (("obs", "feature"), X.values), "gate_X": (("obs", "gate_feature"), Z.values)}
            ),
            "observed_data": xr.Dataset({"y": ("obs", y)}),
        }
    )
    ax = plot_gate(trace, feature="w")
    assert ax.get_xlabel() == "w" and len(ax.get_lines()) == 2
    ax = plot_predictive_density(res, {"x": 0.5, "w": 1.0})
    xs, ys = ax.get_lines()[0].get_data()
    assert "w=1" in ax.get_title() and abs(np.trapezoid(ys, xs) - 1) < 0.01
    with pytest.raises(ValueError, match="gate_X"):
        plot_fit(res, X, y)
