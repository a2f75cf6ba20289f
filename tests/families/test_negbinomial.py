"""Negative binomial experts through every entry point: simulate, fit_mle (monotone), NUTS (the
compiled path), prediction, reversible jump, compare_experts, the study spec and the CLI; recovery
with an offset and its must-fail twin (the dispersion forced to zero: Poisson experts); the nested
check NB >= Poisson at the same K."""

import json

import numpy as np
import pytest

import bayesmoe as bm
from bayesmoe.inference.mle.mm import tuning
from bayesmoe.measure import log_likelihood, measure_from_arrays

#: truth: a gate switching on x0, two log-linear experts with overdispersion 0.5 and 0.1
TRUTH = measure_from_arrays(
    [0.0, 0.0],
    [[3.0, -3.0], [0.0, 0.0]],
    {"a": [[0.1, -0.2], [0.5, -0.4]], "b": [1.5, 0.8], "alpha": [0.5, 0.1]},
    family="negbinomial",
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


def test_simulate_draws_overdispersed_counts():
    """Sample mean within 4 standard errors of E[y | x]; within the expert of larger alpha the
    variance exceeds the Poisson's (the Pearson ratio is about 1 + alpha mu, here > 2)."""
    X, y, offset = _data(4000, 0)
    assert y.dtype.kind == "i" and y.min() >= 0
    mean = bm.measure.conditional_mean(TRUTH, X, offset=offset)
    z = (y - mean).mean() / (y.std() / np.sqrt(len(y)))
    assert abs(z) < 4
    first = X[:, 0] > 1.5  # gate weight of expert 0 above 0.9999
    pearson = np.mean((y[first] - mean[first]) ** 2 / mean[first])
    assert pearson > 2.0


def test_mle_recovers_the_truth_and_poisson_experts_fail():
    """n = 4000: the expert coefficients' standard errors are about 0.02-0.03 and log alpha's
    about 0.08 (expert 0) and 0.17 (expert 1), measured as the spread over 4 seeds. The MLE must
    be within 0.1 of the truth's coefficients, alpha within a factor 1.6, its log-likelihood at
    least the truth's, and its trace monotone. Poisson experts on the same data (alpha forced to
    0) must miss the truth's log-likelihood by far (it is about 1500 lower here)."""
    X, y, offset = _data(4000, 1)
    res = bm.fit_mle(X, y, 2, family="negbinomial", offset=offset, random_seed=0)
    assert res.measure_.attrs["family"] == "negbinomial"
    assert len(bm.inference.monotone_violations(res.loglik_trace_)) == 0
    truth_ll = float(log_likelihood(TRUTH, X, y, offset=offset))
    assert res.loglik_ >= truth_ll - 1e-6
    G = _aligned(res.measure_)
    for name in ("a", "b"):
        assert np.abs(G[name].values - TRUTH[name].values).max() < 0.1, name
    assert np.abs(np.log(G["alpha"].values / TRUTH["alpha"].values)).max() < np.log(1.6)
    pois = bm.fit_mle(X, y, 2, family="poisson", offset=offset, random_seed=0)
    assert pois.loglik_ < truth_ll - 100


def test_negbinomial_is_at_least_poisson_at_the_same_k():
    """Nested models: started also from the Poisson fit (alpha = 1e-12), the negative binomial
    MLE's log-likelihood is at least the Poisson's (here on Poisson data, where they nearly tie)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 1))
    y = rng.poisson(np.exp(np.where(X[:, 0] > 0, 1.5, 0.2)))
    pois = bm.fit_mle(X, y, 2, family="poisson", random_seed=0)
    G = pois.measure_.assign(alpha=("expert", np.full(2, 1e-12))).assign_attrs(family="negbinomial")
    nb = bm.fit_mle(X, y, 2, family="negbinomial", starts=[G], random_seed=0)
    assert nb.loglik_ >= pois.loglik_ - 1e-6
    assert nb.loglik_ - pois.loglik_ < 5.0  # Poisson data: nothing much to gain


@pytest.fixture(scope="module")
def nuts_fit():
    X, y, offset = _data(600, 2)
    model = bm.MoE(n_experts=2, family="negbinomial")
    trace = model.fit(X, y, offset=offset, draws=300, chains=2, random_seed=3, progressbar=False)
    return model, trace, X, y, offset


@pytest.mark.slow  # a NUTS fit (~55 s); the flat density equal to PyMC's guards it by default
def test_nuts_runs_the_compiled_path_and_covers_the_truth(nuts_fit):
    """Relabelled posterior means within 4.5 posterior sds of the truth per parameter (alpha on
    the log scale; n = 600: the posterior sd is the estimation error's scale)."""
    _, trace, *_ = nuts_fit
    assert trace.attrs["sampler"] == "jax" and trace.attrs["family"] == "negbinomial"
    post = trace.posterior
    order = np.argsort(-post["beta1"].sel(gate_feature="x0").mean(("chain", "draw")).values)
    for name in ("a", "b", "alpha"):
        da = post[name].isel(expert=order)
        truth = TRUTH[name].values
        if name == "alpha":
            da, truth = np.log(da), np.log(truth)
        z = (da.mean(("chain", "draw")).values - truth) / da.std(("chain", "draw")).values
        assert np.abs(z).max() < 4.5, name


@pytest.mark.slow  # a NUTS fit (~55 s); the flat density equal to PyMC's guards it by default
def test_prediction_with_exposures_and_report(nuts_fit, tmp_path):
    from bayesmoe.report import write_fit_report

    model, trace, X, _y, offset = nuts_fit
    assert write_fit_report(trace, tmp_path, title="overdispersed counts").exists()
    pred = model.predict(X[:4], offset=offset[:4], random_seed=0)
    assert set(pred.data_vars) >= {"mean", "lower", "upper"}
    assert np.all(pred["lower"].values == np.round(pred["lower"].values))  # counts
    dens = bm.conditional_density(trace, X[:3], np.arange(0, 400), offset=offset[:3])
    np.testing.assert_allclose(dens["density"].sum("y").values, 1.0, atol=1e-6)
    pp = bm.posterior_predictive(trace, X, offset=offset, extend=True, random_seed=0)
    assert pp["posterior_predictive"]["y"].dtype.kind == "i"


def test_cdf_and_quantile_bounds_match_scipy():
    from scipy import stats

    from bayesmoe.families import get_family

    fam = get_family("negbinomial")
    log_mu, alpha = np.log([0.5, 4.0, 30.0]), np.array([2.0, 0.3, 1e-6])
    size = 1.0 / alpha
    for y in (-1.0, 0.0, 3.0, 3.7, 40.0):
        want = stats.nbinom(size, size / (size + np.exp(log_mu))).cdf(y)
        np.testing.assert_allclose(fam.cdf(np.full(3, y), log_mu, alpha), want, rtol=1e-10)
    _, hi = fam.quantile_bounds(log_mu, alpha)
    assert np.all(stats.nbinom(size, size / (size + np.exp(log_mu))).sf(hi) < 1e-9)


def test_sample_random_k_runs_with_offsets():
    X, y, offset = _data(300, 4)
    from bayesmoe.inference.rjmcmc import sample_random_k

    tr = sample_random_k(
        X,
        y,
        max_experts=3,
        family="negbinomial",
        offset=offset,
        draws=60,
        tune=60,
        chains=1,
        random_seed=5,
        progressbar=False,
    )
    assert set(np.unique(tr.posterior["n_experts"].values)) <= {1, 2, 3}
    assert tr.posterior["active"].sum("expert").equals(tr.posterior["n_experts"])
    # the moves' correctness for these experts: tests/rjmcmc/test_prior_recovery.py


def test_compare_experts_mm_table():
    X, y, offset = _data(800, 6)
    table = bm.compare_experts(
        X, y, ks=[1, 2, 3], family="negbinomial", offset=offset, random_seed=0, progressbar=False
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
    args = ["fit", str(path), "--target", "count", "--family", "negbinomial"]
    args += ["--offset", "log_exposure", "--experts", "2", "--method", "mle", "--json"]
    assert main([*args, "--out", str(out), "--seed", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["family"] == "negbinomial" and res["features"] == ["x0", "x1"]
    for bad, what in ((-1, "counts >= 0"), (1.5, "whole counts")):
        df2 = df.astype({"count": float})
        df2.loc[3, "count"] = bad
        df2.to_csv(path, index=False)
        assert main([*args, "--out", str(tmp_path / "bad"), "--seed", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0]
        assert not (tmp_path / "bad").exists()


def test_study_spec_and_runner_fit_negbinomial_experts(tmp_path):
    import pandas as pd

    from bayesmoe.study import StudyStore, parse_spec, run_task

    X, y, _ = _data(200, 8)
    pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "count": y}).to_csv(tmp_path / "c.csv", index=False)
    raw = {
        "study": {"seed": 1},
        "data": {"source": "csv", "path": str(tmp_path / "c.csv"), "target": "count"},
        "model": {"family": "negbinomial", "n_experts": 2},
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
        parse_spec(raw)


def test_halving_keeps_even_an_overshooting_step_monotone():
    """The coefficient step scaled x3 overshoots, but the halving safeguard takes it back until
    Q_k does not decrease: plain MM stays monotone (over-fitted K = 4 with a ridge as well)."""
    X, y, offset = _data(400, 9)
    kw = dict(family="negbinomial", offset=offset, n_starts=1, random_seed=0, accelerate=False)
    with tuning(step_scale=3.0):
        stretched = bm.fit_mle(X, y, 2, max_iter=60, tol=1e-12, **kw)
    for res in (stretched, bm.fit_mle(X, y, 4, ridge=2.0, max_iter=150, tol=1e-12, **kw)):
        assert len(bm.inference.monotone_violations(res.loglik_trace_)) == 0
