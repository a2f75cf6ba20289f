"""Dirichlet-process (truncated stick-breaking) gate."""

import warnings

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import parse_gate_prior
from bayesmoe.models.dp import (
    TruncationWarning,
    build_dp_model,
    check_truncation,
    occupied_experts,
    sample_dp,
)


def test_weights_are_stick_breaking_and_the_gate_intercepts_their_logs():
    X, y, _ = simulate("S-B", n=50, random_seed=0)
    model, info = build_dp_model(X, y, max_experts=4, alpha=2.0)
    point = model.initial_point()
    v = np.array([0.5, 0.2, 0.9])
    point["sticks_logodds__"] = np.log(v / (1 - v))
    outs = model.replace_rvs_by_values([model["weights"], model["beta0"], model["beta1"]])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    w, beta0, beta1 = fn(**{k.name: point[k.name] for k in model.value_vars})
    expected = [0.5, 0.5 * 0.2, 0.5 * 0.8 * 0.9, 0.5 * 0.8 * 0.1]
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    # user-units intercepts: log w at the standardised origin, shifted by the gate centre
    st = info.standardizer
    np.testing.assert_allclose(beta0 + st.z_center @ beta1, np.log(expected), rtol=1e-10)


def test_alpha_options_and_errors():
    X, y, _ = simulate("S-B", n=40, random_seed=0)
    model, info = build_dp_model(X, y, max_experts=3, alpha=None, alpha_prior=(2.0, 1.0))
    assert "alpha" in model.named_vars and info.alpha is None
    with pytest.raises(ValueError, match="alpha"):
        build_dp_model(X, y, max_experts=3, alpha=-1.0)
    with pytest.raises(ValueError, match="alpha_prior"):
        build_dp_model(X, y, max_experts=3, alpha_prior=(0.0, 1.0))
    with pytest.raises(ValueError, match="max_experts"):
        build_dp_model(X, y, max_experts=1)


def test_parse_gate_prior():
    assert parse_gate_prior("dp:2") == {"alpha": 2.0}
    assert parse_gate_prior("DP:gamma:1,0.5") == {"alpha": None, "alpha_prior": (1.0, 0.5)}
    for bad in ["dp", "dp:-1", "dirichlet:1", "dp:gamma:1", "dp:1,2"]:
        with pytest.raises(ValueError, match=r"dp:ALPHA|two positive|one positive"):
            parse_gate_prior(bad)


def _fake_trace(beta0, X):
    """A one-draw posterior with well separated Gaussian experts (y = k, sd 0.01)."""
    K = beta0.shape[-1]
    post = xr.Dataset(
        {
            "beta0": (("chain", "draw", "expert"), beta0),
            "beta1": (("chain", "draw", "feature", "expert"), np.zeros(beta0.shape[:2] + (1, K))),
            "a": (("chain", "draw", "feature", "expert"), np.zeros(beta0.shape[:2] + (1, K))),
            "b": (
                ("chain", "draw", "expert"),
                np.broadcast_to(np.arange(K, dtype=float), beta0.shape).copy(),
            ),
            "sigma": (("chain", "draw", "expert"), np.full(beta0.shape, 0.01)),
        },
        coords={"feature": ["x0"]},
    )
    return xr.DataTree.from_dict({"posterior": post})


def test_occupied_experts_counts_allocated_experts():
    X = np.zeros((30, 1))
    y = np.repeat([0.0, 1.0, 3.0], 10)  # data at experts 0, 1, 3 of 5; experts 2 and 4 empty
    trace = _fake_trace(np.zeros((2, 3, 5)), X)
    occ = occupied_experts(trace, X, y, random_seed=0)
    assert occ.dims == ("chain", "draw") and np.all(occ.values == 3)
    assert np.all(occupied_experts(trace, X, y, min_count=11, random_seed=0).values == 0)


def test_truncation_warning():
    post = xr.Dataset({"weights": (("chain", "draw", "expert"), [[[0.6, 0.3, 0.1]]])})
    tree = xr.DataTree.from_dict({"posterior": post})
    with pytest.warns(TruncationWarning, match="max_experts=3"):
        assert check_truncation(tree, tol=0.01) == pytest.approx(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_truncation(tree, tol=0.2)


@pytest.mark.slow
def test_dp_gate_recovers_sb_occupied_experts_near_three():
    """S-B (K* = 3), n = 1000, K_max = 8, alpha = 1: the occupied experts concentrate near 3.

    Bounds: the three true experts must all be occupied in (almost) every draw, and — the
    Miller–Harrison inconsistency allows a few extra tiny experts — the posterior median of the
    occupied count is at most 5; experts holding >= 2% of the data number 3 in most draws."""
    X, y, _ = simulate("S-B", n=1000, random_seed=11)
    trace = sample_dp(
        X,
        y,
        max_experts=8,
        alpha=1.0,
        draws=500,
        tune=1000,
        chains=2,
        cores=2,
        random_seed=11,
        target_accept=0.9,
    )
    occ = trace["posterior"]["n_occupied"].values.ravel()
    big = occupied_experts(trace, X, y, min_count=20, random_seed=1).values.ravel()
    print(
        "occupied counts",
        np.bincount(occ),
        "with >= 20 obs",
        np.bincount(big),
        "last stick",
        trace.attrs["last_stick_weight"],
    )
    assert np.mean(occ >= 3) > 0.95
    assert np.median(occ) <= 5
    assert np.mean(big == 3) > 0.5
