"""Binomial experts through every entry point: simulate, fit_mle, NUTS (the compiled path),
prediction, reversible jump, compare_experts, the study spec and the CLI; recovery with per-row
trials and its must-fail twin (the trials replaced by their maximum); Bernoulli rows from 0/1 and
two-level responses."""

import json

import numpy as np
import pytest

import bayesmoe as bm
from bayesmoe.measure import log_likelihood, measure_from_arrays

#: truth: a gate switching on x0, two logit-linear experts (success probabilities 0.82 and 0.38
#: at x = 0)
TRUTH = measure_from_arrays(
    [0.0, 0.0],
    [[3.0, -3.0], [0.0, 0.0]],
    {"a": [[0.4, -0.2], [0.8, -0.6]], "b": [1.5, -0.5]},
    family="binomial",
)


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    trials = rng.integers(1, 15, size=n)
    _, y, _ = bm.data.simulate(TRUTH, X=X, trials=trials, random_seed=seed)
    return X, y, trials


def _aligned(G):
    """Experts ordered as the truth's (by the sign of the x0 gate slope)."""
    order = np.argsort(-G["beta1"].sel(gate_feature="x0").values)
    return G.isel(expert=order)


def test_simulate_draws_successes_of_the_trials():
    X, y, trials = _data(4000, 0)
    assert y.dtype.kind == "i" and y.min() >= 0 and np.all(y <= trials)
    # E[y | x] = trials * sum_k g_k expit(a_k x + b_k): the sample mean within 4 standard errors
    mean = bm.measure.conditional_mean(TRUTH, X, trials=trials)
    z = (y - mean).mean() / ((y - mean).std() / np.sqrt(len(y)))
    assert abs(z) < 4


def test_mle_recovers_the_truth_and_wrong_trials_fail():
    """At n = 4000 with 1..14 trials the standard errors of the expert coefficients are about
    0.02-0.04; the MLE must be within 0.15 (about 4 SE) of the truth and its log-likelihood at
    least the truth's. With every row given the largest number of trials the success
    probabilities shrink (intercepts down by more than 1): the same check must fail."""
    X, y, trials = _data(4000, 1)
    res = bm.fit_mle(X, y, 2, family="binomial", trials=trials, random_seed=0)
    assert res.measure_.attrs["family"] == "binomial"
    assert len(bm.inference.monotone_violations(res.loglik_trace_)) == 0
    assert res.loglik_ >= float(log_likelihood(TRUTH, X, y, trials=trials)) - 1e-6
    G = _aligned(res.measure_)
    err = max(
        np.abs(G["a"].values - TRUTH["a"].values).max(),
        np.abs(G["b"].values - TRUTH["b"].values).max(),
    )
    assert err < 0.15
    wrong = np.full_like(trials, trials.max())
    broken = _aligned(bm.fit_mle(X, y, 2, family="binomial", trials=wrong, random_seed=0).measure_)
    assert np.abs(broken["b"].values - TRUTH["b"].values).max() > 0.5


def test_bernoulli_rows_from_zero_one_and_two_level_responses():
    """Without trials every row is one trial: 0/1 successes, booleans and two labels (the second
    in sorted order is the success) give the same fit; counts above 1 are refused."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 2))
    _, y, _ = bm.data.simulate(TRUTH, X=X, random_seed=2)
    assert set(np.unique(y)) <= {0, 1}
    fits = [
        bm.fit_mle(X, v, 2, family="binomial", n_starts=3, random_seed=0)
        for v in (y, y.astype(bool), np.where(y == 1, "yes", "no"))
    ]
    for f in fits[1:]:
        np.testing.assert_allclose(f.loglik_, fits[0].loglik_, rtol=1e-10)
    with pytest.raises(ValueError, match="no `trials` were given"):
        bm.fit_mle(X, y + 1, 2, family="binomial", n_starts=1)
    with pytest.raises(ValueError, match="3 levels"):
        bm.fit_mle(X, np.array(["a", "b", "c"] * 166 + ["a", "b"]), 2, family="binomial")


def test_trials_are_checked():
    X, y, trials = _data(50, 3)
    for bad, what in ((0, ">= 1"), (2.5, "whole numbers"), (np.nan, ">= 1")):
        t = trials.astype(float)
        t[4] = bad
        with pytest.raises(ValueError, match=what):
            bm.fit_mle(X, y, 2, family="binomial", trials=t)
    t = trials.copy()
    assert y.max() >= 2
    t[np.argmax(y)] = y.max() - 1
    with pytest.raises(ValueError, match="must not exceed `trials`"):
        bm.fit_mle(X, y, 2, family="binomial", trials=t)
    with pytest.raises(ValueError, match="applies to binomial"):
        bm.fit_mle(X, y.astype(float), 2, trials=trials)


@pytest.fixture(scope="module")
def nuts_fit():
    X, y, trials = _data(600, 4)
    model = bm.MoE(n_experts=2, family="binomial")
    trace = model.fit(X, y, trials=trials, draws=300, chains=2, random_seed=3, progressbar=False)
    return model, trace, X, y, trials


def test_nuts_runs_the_compiled_path_and_covers_the_truth(nuts_fit):
    """Relabelled posterior means within 4.5 posterior sds of the truth per parameter
    (n = 600: the posterior sd is the estimation error's scale)."""
    _, trace, *_ = nuts_fit
    assert trace.attrs["sampler"] == "jax" and trace.attrs["family"] == "binomial"
    assert "trials" in trace["constant_data"]
    post = trace.posterior
    order = np.argsort(-post["beta1"].sel(gate_feature="x0").mean(("chain", "draw")).values)
    for name in ("a", "b"):
        da = post[name].isel(expert=order)
        z = (da.mean(("chain", "draw")).values - TRUTH[name].values) / da.std(
            ("chain", "draw")
        ).values
        assert np.abs(z).max() < 4.5, name


def test_prediction_with_trials(nuts_fit, tmp_path):
    model, trace, X, _y, trials = nuts_fit
    pred = model.predict(X[:4], trials=trials[:4], random_seed=0)
    assert set(pred.data_vars) >= {"mean", "lower", "upper"}
    assert np.all(pred["upper"].values <= trials[:4]) and np.all(pred["mean"].values <= trials[:4])
    t = trials[:3]
    dens = bm.conditional_density(trace, X[:3], np.arange(0, 15), trials=t)
    np.testing.assert_allclose(dens["density"].sum("y").values, 1.0, atol=1e-6)
    pp = bm.posterior_predictive(trace, X, trials=trials, extend=True, random_seed=0)
    draws = pp["posterior_predictive"]["y"]
    assert draws.dtype.kind == "i" and int((draws > trials).sum()) == 0
    from bayesmoe.report import write_fit_report

    assert write_fit_report(trace, tmp_path, title="successes").exists()


def test_relabel_stephens_and_mtm_occupied_use_the_trials(nuts_fit):
    """Stephens' relabelling reads constant_data.trials: its classification probabilities equal
    the ones computed by hand with the trials; the "occupied" count of K takes them too."""
    from bayesmoe.diagnostics.relabel import _classification_probs
    from bayesmoe.measure import expert_log_prob, gate_probabilities, measure_arrays
    from bayesmoe.selection.mtm import num_experts_posterior

    _, trace, X, y, trials = nuts_fit
    post = trace.posterior.to_dataset().isel(draw=slice(0, 3))
    probs = _classification_probs(trace, post, None, None)  # (chain * 3, n, K)
    G = bm.diagnostics.mixing_measure(post.assign_attrs(trace.attrs))
    arr = measure_arrays(G, ["chain", "draw"])
    w = gate_probabilities(arr["beta0"], arr["beta1"], X)
    joint = np.log(w) + expert_log_prob(arr, X, y, trials=trials)
    want = np.exp(joint - np.logaddexp.reduce(joint, axis=-1, keepdims=True))
    np.testing.assert_allclose(probs, want.reshape(probs.shape), rtol=1e-10)
    pmf = num_experts_posterior(G, method="occupied", X=X, y=y, trials=trials, random_seed=0)
    assert float(pmf.sel(n_experts=2)) > 0.9  # two well-separated experts, each with many rows


def test_sample_random_k_runs_with_trials():
    X, y, trials = _data(300, 5)
    from bayesmoe.inference.rjmcmc import sample_random_k

    tr = sample_random_k(
        X,
        y,
        max_experts=3,
        family="binomial",
        trials=trials,
        draws=60,
        tune=60,
        chains=1,
        random_seed=5,
        progressbar=False,
    )
    assert set(np.unique(tr.posterior["n_experts"].values)) <= {1, 2, 3}
    assert tr.posterior["active"].sum("expert").equals(tr.posterior["n_experts"])


def test_compare_experts_mm_table():
    X, y, trials = _data(500, 6)
    table = bm.compare_experts(
        X, y, ks=[1, 2, 3], family="binomial", trials=trials, random_seed=0, progressbar=False
    )
    assert table.attrs["selected_bic"] == 2


def test_cli_fit_mle_and_bad_input(tmp_path, capsys):
    import pandas as pd

    from bayesmoe.cli import main

    X, y, trials = _data(300, 7)
    df = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "n": trials, "successes": y})
    path = tmp_path / "props.csv"
    df.to_csv(path, index=False)
    base = ["fit", str(path), "--target", "successes", "--family", "binomial", "--experts", "2"]
    args = base + ["--trials", "n", "--method", "mle", "--json", "--seed", "1"]
    assert main(args + ["--out", str(tmp_path / "fit")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["family"] == "binomial" and res["features"] == ["x0", "x1"]  # trials no feature
    bad_cases = (
        ("successes", -1, "counts >= 0"),
        ("successes", 1.5, "whole counts"),
        ("successes", 99, "must not exceed `trials`"),
        ("n", 0, ">= 1"),
        ("n", 2.5, "whole numbers"),
    )
    for col, bad, what in bad_cases:
        df2 = df.astype({col: float})
        df2.loc[3, col] = bad
        df2.to_csv(path, index=False)
        assert main(args + ["--out", str(tmp_path / "bad")]) == 2, (col, bad)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0], (col, bad, err)
        assert not (tmp_path / "bad").exists()
    # a two-level response needs no trials; --trials on another family is refused
    pd.DataFrame({"x0": X[:, 0], "won": np.where(y > trials / 2, "yes", "no")}).to_csv(
        path, index=False
    )
    won = base[:3] + ["won"] + base[4:] + ["--method", "mle", "--out", str(tmp_path / "b")]
    assert main(won) == 0
    capsys.readouterr()
    df.to_csv(path, index=False)
    gaussian = ["fit", str(path), "--target", "successes", "--experts", "2", "--trials", "n"]
    assert main(gaussian + ["--method", "mle", "--out", str(tmp_path / "g")]) == 2
    assert "--trials applies to binomial" in capsys.readouterr().err
    # select: the MM table with the trials (the trials column is not a feature)
    sel = ["select", str(path), "--target", "successes", "--family", "binomial"]
    assert main(sel + ["--trials", "n", "--max-experts", "3", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert len(rec["table"]) == 3 and rec["selected_bic"] == 2
    assert main(sel + ["--max-experts", "2"]) == 2  # successes above 1 without --trials
    assert "no `trials` were given" in capsys.readouterr().err


def test_study_spec_and_runner_fit_binomial_experts(tmp_path):
    """A study on a CSV of successes with a trials column validates and runs (MLE)."""
    import pandas as pd

    from bayesmoe.study import StudyStore, parse_spec, run_task

    X, y, trials = _data(200, 8)
    df = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "n": trials, "s": y})
    df.to_csv(tmp_path / "c.csv", index=False)
    raw = {
        "study": {"seed": 1},
        "data": {"source": "csv", "path": str(tmp_path / "c.csv"), "target": "s", "trials": "n"},
        "model": {"family": "binomial", "n_experts": 2},
        "inference": {"method": "mle", "n_starts": 3},
    }
    task = parse_spec(raw).tasks()[0].to_dict()
    StudyStore(tmp_path / "out")
    out = run_task(task, str(tmp_path / "out"))
    assert out["status"] == "done", out.get("error")
    want = bm.fit_mle(X, y, 2, family="binomial", trials=trials, n_starts=3, random_seed=0)
    assert out["metrics"]["loglik"] == pytest.approx(want.loglik_, abs=1e-3)
    df.assign(n=1).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(Exception, match="trials"):
        parse_spec(raw)  # the spec's data check: successes above the trials
