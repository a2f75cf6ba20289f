"""Poisson experts through every entry point: simulate, fit_mle, NUTS (the compiled path),
prediction, relabelling, reversible jump, compare_experts and the CLI; recovery with an offset
and its must-fail twin (the offset dropped)."""

import json

import numpy as np
import pytest

import bayesmoe as bm
from bayesmoe.measure import log_likelihood, measure_from_arrays

#: truth: a gate switching on x0, two log-linear experts (rates e^1.5 and e^0.2 at x = 0)
TRUTH = measure_from_arrays(
    [0.0, 0.0],
    [[3.0, -3.0], [0.0, 0.0]],
    {"a": [[0.1, -0.2], [0.5, -0.4]], "b": [1.5, 0.2]},
    family="poisson",
)


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    offset = 0.8 * X[:, 1] + 0.3 * rng.normal(size=n)  # log-exposure, correlated with x1
    _, y, _ = bm.data.simulate(TRUTH, X=X, offset=offset, random_seed=seed)
    return X, y, offset


def _aligned(G):
    """Experts ordered as the truth's (by the sign of the x0 gate slope)."""
    order = np.argsort(-G["beta1"].sel(gate_feature="x0").values)
    return G.isel(expert=order)


def test_simulate_draws_counts_with_the_exposure():
    X, y, offset = _data(4000, 0)
    assert y.dtype.kind == "i" and y.min() >= 0
    # E[y | x] = sum_k g_k exp(a_k x + b_k + offset): the sample mean within 4 standard errors
    mean = bm.measure.conditional_mean(TRUTH, X, offset=offset)
    z = (y - mean).mean() / (y.std() / np.sqrt(len(y)))
    assert abs(z) < 4


def test_mle_recovers_the_truth_and_dropping_the_offset_fails():
    """At n = 4000 the standard errors of the expert coefficients are about 0.02; the MLE must be
    within 0.1 (5 SE) of the truth and its log-likelihood at least the truth's. Without the offset
    the x1 slopes absorb it (+0.8): the same check must fail."""
    X, y, offset = _data(4000, 1)
    res = bm.fit_mle(X, y, 2, family="poisson", offset=offset, random_seed=0)
    assert res.measure_.attrs["family"] == "poisson"
    assert len(bm.inference.monotone_violations(res.loglik_trace_)) == 0
    assert res.loglik_ >= float(log_likelihood(TRUTH, X, y, offset=offset)) - 1e-6
    G = _aligned(res.measure_)
    err = max(
        np.abs(G["a"].values - TRUTH["a"].values).max(),
        np.abs(G["b"].values - TRUTH["b"].values).max(),
    )
    assert err < 0.1
    broken = _aligned(bm.fit_mle(X, y, 2, family="poisson", random_seed=0).measure_)
    assert np.abs(broken["a"].values - TRUTH["a"].values).max() > 0.3


@pytest.fixture(scope="module")
def nuts_fit():
    X, y, offset = _data(600, 2)
    model = bm.MoE(n_experts=2, family="poisson")
    trace = model.fit(X, y, offset=offset, draws=300, chains=2, random_seed=3, progressbar=False)
    return model, trace, X, y, offset


def test_nuts_runs_the_compiled_path_and_covers_the_truth(nuts_fit):
    """Relabelled posterior means within 4.5 posterior sds of the truth per parameter
    (n = 600: the posterior sd is the estimation error's scale)."""
    _, trace, *_ = nuts_fit
    assert trace.attrs["sampler"] == "jax" and trace.attrs["family"] == "poisson"
    post = trace.posterior
    order = np.argsort(-post["beta1"].sel(gate_feature="x0").mean(("chain", "draw")).values)
    for name in ("a", "b"):
        da = post[name].isel(expert=order)
        z = (da.mean(("chain", "draw")).values - TRUTH[name].values) / da.std(
            ("chain", "draw")
        ).values
        assert np.abs(z).max() < 4.5, name


def test_prediction_with_exposures(nuts_fit):
    model, trace, X, _y, offset = nuts_fit
    pred = model.predict(X[:4], offset=offset[:4], random_seed=0)
    assert set(pred.data_vars) >= {"mean", "lower", "upper"}
    assert np.all(pred["lower"].values == np.round(pred["lower"].values))  # counts
    dens = bm.conditional_density(trace, X[:3], np.arange(0, 200), offset=offset[:3])
    np.testing.assert_allclose(dens["density"].sum("y").values, 1.0, atol=1e-6)
    pp = bm.posterior_predictive(trace, X, offset=offset, extend=True, random_seed=0)
    assert pp["posterior_predictive"]["y"].dtype.kind == "i"


def test_sample_random_k_runs_with_offsets():
    X, y, offset = _data(300, 4)
    from bayesmoe.inference.rjmcmc import sample_random_k

    tr = sample_random_k(
        X,
        y,
        max_experts=3,
        family="poisson",
        offset=offset,
        draws=60,
        tune=60,
        chains=1,
        random_seed=5,
        progressbar=False,
    )
    assert set(np.unique(tr.posterior["n_experts"].values)) <= {1, 2, 3}
    assert tr.posterior["active"].sum("expert").equals(tr.posterior["n_experts"])
    # the moves' correctness for Poisson experts: tests/rjmcmc/test_prior_recovery.py


def test_compare_experts_mm_table():
    X, y, offset = _data(500, 6)
    table = bm.compare_experts(
        X, y, ks=[1, 2, 3], family="poisson", offset=offset, random_seed=0, progressbar=False
    )
    assert table.attrs["selected_bic"] == 2


def test_cli_fit_mle_and_bad_counts(tmp_path, capsys):
    import pandas as pd

    from bayesmoe.cli import main

    X, y, offset = _data(300, 7)
    df = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "log_exposure": offset, "count": y})
    path = tmp_path / "counts.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "fit"
    args = [
        "fit",
        str(path),
        "--target",
        "count",
        "--family",
        "poisson",
        "--offset",
        "log_exposure",
        "--experts",
        "2",
        "--method",
        "mle",
        "--json",
        "--out",
        str(out),
        "--seed",
        "1",
    ]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["family"] == "poisson" and res["features"] == ["x0", "x1"]
    for bad, what in ((-1, "counts >= 0"), (1.5, "whole counts")):
        df2 = df.astype({"count": float})
        df2.loc[3, "count"] = bad
        df2.to_csv(path, index=False)
        assert main(args[:-4] + ["--out", str(tmp_path / "bad"), "--seed", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0]
        assert not (tmp_path / "bad").exists()


def test_relabel_stephens_and_report_use_the_exposures(nuts_fit, tmp_path):
    """Stephens' relabelling and the report's predictive check read constant_data.offset: with
    the exposures the classification probabilities equal the ones computed by hand."""
    from bayesmoe.diagnostics.relabel import _classification_probs
    from bayesmoe.measure import expert_log_prob, gate_probabilities, measure_arrays
    from bayesmoe.report import write_fit_report

    _, trace, X, y, offset = nuts_fit
    post = trace.posterior.to_dataset().isel(draw=slice(0, 3))
    probs = _classification_probs(trace, post, None, None)  # (chain * 3, n, K)
    G = bm.diagnostics.mixing_measure(post.assign_attrs(trace.attrs))
    arr = measure_arrays(G, ["chain", "draw"])
    w = gate_probabilities(arr["beta0"], arr["beta1"], X)
    joint = np.log(w) + expert_log_prob(arr, X, y, offset=offset)
    want = np.exp(joint - np.logaddexp.reduce(joint, axis=-1, keepdims=True))
    np.testing.assert_allclose(probs, want.reshape(probs.shape), rtol=1e-10)
    assert write_fit_report(trace, tmp_path, title="counts").exists()


def test_study_spec_and_runner_fit_poisson_experts(tmp_path):
    """A study on a CSV of counts with `model.family = "poisson"` validates and runs (MLE)."""
    import pandas as pd

    from bayesmoe.study import StudyStore, parse_spec, run_task

    X, y, _ = _data(200, 8)
    pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "count": y}).to_csv(tmp_path / "c.csv", index=False)
    raw = {
        "study": {"seed": 1},
        "data": {"source": "csv", "path": str(tmp_path / "c.csv"), "target": "count"},
        "model": {"family": "poisson", "n_experts": 2},
        "inference": {"method": "mle", "n_starts": 3},
    }
    task = parse_spec(raw).tasks()[0].to_dict()
    StudyStore(tmp_path / "out")
    out = run_task(task, str(tmp_path / "out"))
    assert out["status"] == "done", out.get("error")
    assert np.isfinite(out["metrics"]["loglik"])
    bad = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "count": y - 1.5})
    bad.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(Exception, match="count"):
        parse_spec(raw)  # the spec's data check: non-integer, negative counts
