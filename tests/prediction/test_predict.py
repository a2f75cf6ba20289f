"""Prediction: shapes, labels and the user's units."""

import numpy as np
import pytest
import xarray as xr

from bayesmoe import MoE
from bayesmoe.data import simulate
from bayesmoe.inference import (
    conditional_density,
    gate_probabilities,
    posterior_predictive,
    predict,
)
from bayesmoe.measure import conditional_mean


@pytest.fixture(scope="module")
def scaled_fit():
    """S-B in other units: X' = 3 X + 10, y' = 50 y + 100 (2 chains x 400 draws, seed 5)."""
    X, y, truth = simulate("S-B", n=1000, random_seed=5)
    model = MoE(n_experts=3)
    model.fit(
        3 * X + 10, 50 * y + 100, draws=400, tune=400, chains=2, random_seed=5, progressbar=False
    )
    return model, truth


def test_predictions_are_in_user_units(scaled_fit):
    """E[y'|x'] = 100 + 50 E[y|x]; the posterior mean must be within 5 posterior sds of it.

    5 sds: a per-point normal deviation beyond 5 has probability 6e-7, so over 30 points the
    false-alarm rate is < 2e-5, while a units error (factor 50 or shift 100) is caught at once.
    """
    model, truth = scaled_fit
    X_new = np.random.default_rng(0).standard_normal((30, 2))
    pp = model.posterior_predictive(3 * X_new + 10, random_seed=1)
    ey = pp["expected_y"]
    target = 100 + 50 * conditional_mean(truth, X_new)
    z = np.abs(ey.mean(("chain", "draw")).values - target) / ey.std(("chain", "draw")).values
    assert z.max() < 5, z.max()


def test_predict_shapes_and_intervals(scaled_fit):
    model, _ = scaled_fit
    X_new = 3 * np.random.default_rng(1).standard_normal((7, 2)) + 10
    out = model.predict(X_new, random_seed=0)
    assert set(out.data_vars) == {"mean", "mean_lower", "mean_upper", "lower", "upper"}
    assert all(out[v].dims == ("obs",) and out[v].size == 7 for v in out.data_vars)
    lo, mlo, m, mhi, hi = (out[v] for v in ("lower", "mean_lower", "mean", "mean_upper", "upper"))
    assert bool((lo < mlo).all() and (mlo <= m).all() and (m <= mhi).all() and (mhi < hi).all())
    g = model.gate_probabilities(X_new)
    assert g.dims == ("chain", "draw", "obs", "expert") and g.shape[2:] == (7, 3)
    np.testing.assert_allclose(g.sum("expert"), 1.0, rtol=1e-12)
    dens = model.conditional_density(X_new[:2], np.linspace(-400, 600, 2001))
    assert dens["density"].dims == ("obs", "y")
    # a density on a grid covering the mass integrates to ~1 (trapezoid error << 1e-2 here)
    np.testing.assert_allclose(dens["density"].integrate("y"), 1.0, atol=1e-2)


def test_single_measure_predictive_interval_is_exact():
    """For one measure, lower/upper are exact mixture quantiles: check by Monte Carlo.

    With 200k draws the empirical CDF at a quantile has sd sqrt(0.03 * 0.97 / 2e5) = 4e-4;
    the tolerance 2e-3 is 5 sds.
    """
    _, _, truth = simulate("S-B", n=10, random_seed=0)
    x = np.array([[0.3, -0.2]])
    out = predict(truth, x, ci_prob=0.94)
    Xrep = np.repeat(x, 200_000, 0)
    _, ydraw, _ = simulate(truth, X=Xrep, random_seed=3)
    np.testing.assert_allclose((ydraw < float(out.lower[0])).mean(), 0.03, atol=2e-3)
    np.testing.assert_allclose((ydraw < float(out.upper[0])).mean(), 0.97, atol=2e-3)


def test_classification_predictions_have_labels():
    _, _, truth = simulate("S-D", n=10, random_seed=0)
    truth = truth.assign_coords({"class": ["no", "maybe", "yes"]})
    X_new = np.random.default_rng(2).uniform(-1, 1, (5, 2))
    out = predict(truth, X_new)
    assert out["probs"].dims == ("obs", "class")
    np.testing.assert_allclose(out["probs"].sum("class"), 1.0, rtol=1e-12)
    assert set(out["label"].values) <= {"no", "maybe", "yes"}
    pp = posterior_predictive(truth, X_new, random_seed=0)
    assert set(pp["y"].values) <= {"no", "maybe", "yes"}
    pmf = conditional_density(truth, X_new, ["no", "maybe", "yes"])
    np.testing.assert_allclose(pmf["density"].sum("y"), 1.0, rtol=1e-12)


def test_bad_new_inputs():
    _, _, truth = simulate("S-B", n=10, random_seed=0)
    with pytest.raises(ValueError, match="2 feature columns"):
        predict(truth, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN or inf"):
        predict(truth, np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="ci_prob"):
        predict(truth, np.zeros((1, 2)), ci_prob=1.5)
    with pytest.raises(RuntimeError, match="not fitted"):
        MoE(2).predict(np.zeros((1, 2)))
    assert isinstance(gate_probabilities(truth, np.zeros((2, 2))), xr.DataArray)


def test_count_prediction_intervals_are_counts():
    """predict's lower/upper for count experts from posterior draws are counts drawn, not values
    interpolated between two counts (xarray's default 'linear' quantile gave e.g. 9.97)."""
    from bayesmoe.measure import measure_from_arrays

    G = measure_from_arrays(
        [0.0, 0.0],
        [[2.0, -2.0]],
        {"a": [[0.3, -0.2]], "b": [1.5, 2.5]},
        family="poisson",
    )
    rng = np.random.default_rng(0)
    post = G.expand_dims(chain=[0, 1], draw=np.arange(25)).copy(deep=True)
    post["b"] = post["b"] + 0.05 * rng.standard_normal(post["b"].shape)
    trace = xr.DataTree.from_dict({"posterior": post})
    X = np.linspace(-1, 1, 7)[:, None]
    pred = predict(trace, X, ci_prob=0.83, random_seed=0)
    for bound in ("lower", "upper"):
        v = pred[bound].values
        np.testing.assert_array_equal(v, np.round(v))
