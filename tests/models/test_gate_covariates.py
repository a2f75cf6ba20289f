"""A gate with covariates of its own (``gate_X``), and the constant-weights gate (none).

The data: experts linear in x, a gate that depends on z only (logit 3 z), n = 400, seed 0. The
fits must find the gate on z (a slope near 3, far from 0: its standard error is ~0.4 at this n,
so the bound 1.5 is ~4 standard errors below the truth), and every later step (likelihood,
prediction, relabelling, the CLI) must take the gate's covariates from where they are.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.cli import main
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.measure import log_likelihood, make_measure


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x, z = rng.normal(size=n), rng.normal(size=n)
    first = rng.uniform(size=n) < 1 / (1 + np.exp(-3 * z))
    y = np.where(first, 2 + 1.5 * x, -2 - x) + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": z, "y": y})


def _fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit_mle(df[["x"]], df["y"].to_numpy(), 2, random_seed=0, **kw)


def _gate_slope(G) -> float:
    b1 = G["beta1"].sel(gate_feature="z").values
    return float(np.abs(b1[0] - b1[1]))


def test_mle_finds_the_gate_on_its_own_covariate_and_beats_the_shared_gate():
    df = _data()
    own, shared = _fit(df, gate_X=df[["z"]]), _fit(df)
    assert list(own.measure_["gate_feature"].values) == ["z"]
    assert list(own.measure_["feature"].values) == ["x"]
    assert _gate_slope(own.measure_) > 1.5
    assert own.loglik_ > shared.loglik_ + 50  # the gate on x explains nothing of z's switch


def test_constant_weights_keep_the_experts_covariates():
    df = _data()
    res = _fit(df, gate_X=np.zeros((len(df), 0)))
    G = res.measure_
    assert G.sizes["gate_feature"] == 0 and G.sizes["feature"] == 1
    assert res.n_params_ == 7  # 1 weight + 2 experts x (slope, intercept, variance)


def test_the_likelihood_and_predictions_take_the_gate_covariates_from_where_they_are():
    df = _data()
    G = _fit(df, gate_X=df[["z"]]).measure_
    y = df["y"].to_numpy()
    ll = log_likelihood(G, df[["x"]], y, gate_X=df[["z"]])
    with pytest.raises(ValueError, match=r"`gate_X` is needed: .*\['z'\]"):
        log_likelihood(G, df[["x"]].to_numpy(), y)
    # a DataFrame X_new may carry the gate's column: picked by name
    a = bm.inference.gate_probabilities(G, df[["x", "z"]].iloc[:5])
    b = bm.inference.gate_probabilities(G, df[["x"]].iloc[:5], gate_X=df[["z"]].iloc[:5])
    np.testing.assert_allclose(a.values, b.values, rtol=1e-14)
    pred = bm.predict(G, df[["x"]].iloc[:5], gate_X=df[["z"]].iloc[:5])
    assert np.all(pred["lower"] < pred["upper"])
    grid = np.linspace(-8, 8, 4001)
    dens = bm.inference.conditional_density(G, df[["x", "z"]].iloc[:3], grid)["density"]
    np.testing.assert_allclose(dens.sum("y") * (grid[1] - grid[0]), 1.0, atol=1e-6)
    assert np.isfinite(float(ll))
    with pytest.raises(ValueError, match=r"`gate_X` must have shape \(5, 1\)"):
        bm.predict(G, df[["x"]].iloc[:5], gate_X=df[["z"]].iloc[:4])


def test_bad_gate_covariates_get_one_line():
    df = _data()
    with pytest.raises(ValueError, match="`gate_X` must have 400 rows"):
        bm.inference.sample(
            df[["x"]], df["y"], n_experts=2, gate_X=df[["z"]].iloc[:10], draws=10, chains=1
        )
    with pytest.raises(ValueError, match="experts' feature names but other values"):
        fit_mle(df[["x"]], df["y"].to_numpy(), 2, gate_X=df[["z"]].rename(columns={"z": "x"}))


def test_a_measure_of_an_older_version_reads_as_a_shared_gate():
    G = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.0, -1.0]], [0.0, 0.0], [1.0, 1.0])
    old = G.drop_vars("beta1").assign(beta1=(("feature", "expert"), G["beta1"].values))
    old = old.drop_vars("gate_feature")
    X, y = np.linspace(-2, 2, 7)[:, None], np.linspace(-1, 1, 7)
    np.testing.assert_allclose(log_likelihood(old, X, y), log_likelihood(G, X, y), rtol=1e-14)


def test_nuts_samples_the_gate_on_its_own_covariate(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESMOE_JAX_CACHE", str(tmp_path / "jax"))
    df = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = bm.MoE(n_experts=2).fit(
            df[["x"]],
            df["y"],
            gate_X=df[["z"]],
            draws=200,
            tune=200,
            chains=2,
            random_seed=1,
            progressbar=False,
        )
    assert tr.attrs["sampler"] == "jax"
    assert tr.posterior["beta1"].dims == ("chain", "draw", "gate_feature", "expert")
    assert tr.constant_data["gate_X"].dims == ("obs", "gate_feature")
    assert json.loads(tr.attrs["gate_features"]) == ["z"]
    assert _gate_slope(bm.mixing_measure(tr).mean(("chain", "draw"))) > 1.5
    relabelled = bm.relabel(tr, method="stephens")  # reads constant_data.gate_X
    assert isinstance(relabelled, xr.DataTree)


def test_cli_gate_features(tmp_path, capsys):
    df = _data()
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    common = [str(path), "--target", "y", "--features", "x", "--experts", "2"]
    out = {}
    for gate in ("z", "none"):
        rc = main(["fit", *common, "--gate-features", gate, "--method", "mle", "--json",
                   "--out", str(tmp_path / gate)])  # fmt: skip
        assert rc == 0
        out[gate] = json.loads(capsys.readouterr().out)
    assert out["z"]["gate_features"] == ["z"] and out["none"]["gate_features"] == []
    assert out["z"]["loglik"] > out["none"]["loglik"] + 50
    rc = main(["fit", *common, "--gate-features", "q", "--method", "mle"])
    err = capsys.readouterr().err
    assert rc == 2 and "gate feature column(s) ['q'] not in" in err and err.count("\n") == 1
