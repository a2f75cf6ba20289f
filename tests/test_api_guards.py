"""No silent wrong answers from the Python API (issue 19, items 3-6).

3. DataFrame columns are matched to the fit's feature names, not by position.
4. Unknown keyword arguments raise, naming the nearest valid one; a PyMC-only keyword that moves
   ``backend="auto"`` to PyMC says so.
5. Sampler sizes are validated (the table is in tests/test_validation.py).
6. Poor mixing gives a :class:`~bayesmoe.diagnostics.convergence.ConvergenceWarning`, and
   p(K | y) comes with its Monte Carlo standard error and per-chain values.

Everything runs on synthetic traces or measures except one short NUTS run (~15 s).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.data import simulate
from tests.helpers import synthetic_trace

X, Y, TRUTH = simulate("S-B", n=60, random_seed=3)
NAMES = ["glu", "bmi"]
MEASURE = TRUTH.assign_coords(feature=NAMES, gate_feature=NAMES)  # fitted on columns glu, bmi
DF = pd.DataFrame(X, columns=NAMES)


# ---- 3. columns by name ------------------------------------------------------------------------
def _prediction_calls():
    """Each prediction function as f(X_new) -> numpy values (fixed seeds)."""
    return {
        "predict": lambda Xn: bm.predict(MEASURE, Xn, random_seed=0)["upper"].values,
        "posterior_predictive": lambda Xn: (
            bm.posterior_predictive(MEASURE, Xn, random_seed=0)["expected_y"].values
        ),
        "gate_probabilities": lambda Xn: bm.gate_probabilities(MEASURE, Xn).values,
        "conditional_density": lambda Xn: (
            bm.conditional_density(MEASURE, Xn, [-1.0, 0.0, 1.0])["density"].values
        ),
    }


@pytest.mark.parametrize("name", list(_prediction_calls()))
def test_dataframe_columns_are_matched_by_name(name):
    """Reordered columns give the same answer as the fit's order; numpy stays positional."""
    f = _prediction_calls()[name]
    expected = f(X)
    np.testing.assert_allclose(f(DF[["bmi", "glu"]]), expected)
    np.testing.assert_allclose(f(DF), expected)
    # positional numpy input with the columns swapped is a different input (the check can fail)
    assert not np.allclose(f(X[:, ::-1]), expected)


@pytest.mark.parametrize(
    ("frame", "pattern"),
    [
        (DF[["glu"]], r"missing \['bmi'\]"),
        (DF.assign(age=1.0), r"extra \['age'\]"),
        (DF.rename(columns={"bmi": "BMI"}), r"missing \['bmi'\], extra \['BMI'\]"),
    ],
    ids=["missing", "extra", "renamed"],
)
def test_wrong_columns_raise_one_line(frame, pattern):
    for f in _prediction_calls().values():
        with pytest.raises(ValueError, match=r"`X_new` must have the fit's columns") as err:
            f(frame)
        assert "\n" not in str(err.value)
        assert err.match(pattern)


def test_array_fit_takes_a_dataframe_by_position_with_a_warning():
    """A fit on an array has names x0, x1, ...: a DataFrame is used by position, and said so."""
    with pytest.warns(UserWarning, match="fitted on an array") as rec:
        got = bm.gate_probabilities(TRUTH, DF).values
    assert rec[0].filename == __file__  # the warning points at the user's line
    np.testing.assert_allclose(got, bm.gate_probabilities(TRUTH, X).values)


def test_fit_records_dataframe_column_names():
    """The model spec (used by sample, MoE.fit, random K and DP) keeps a DataFrame's columns."""
    from bayesmoe.models.spec import fixed_k_spec

    info = fixed_k_spec(DF, Y, n_experts=2)
    assert list(info.feature_names) == NAMES
    info = fixed_k_spec(X, Y, n_experts=2)
    assert list(info.feature_names) == ["x0", "x1"]


# ---- 4. unknown keywords ---------------------------------------------------------------------
TINY = {"draws": 5, "tune": 5, "chains": 1, "progressbar": False}


def _rk(**kw):
    from bayesmoe.inference.rjmcmc import sample_random_k

    return sample_random_k(X, Y, max_experts=2, **{**TINY, **kw})


def _dp(**kw):
    from bayesmoe.inference import sample_dp

    return sample_dp(X, Y, max_experts=2, **{**TINY, **kw})


UNKNOWN = {
    # entry: (call with the bad keyword, its name in the message, bad keyword, suggestion)
    "MoE": (lambda: bm.MoE(2, famly="gaussian"), "MoE", "famly", "family"),
    "MoE.fit-n_draws": (
        lambda: bm.MoE(2).fit(X, Y, n_draws=5, **TINY),
        "fit",
        "n_draws",
        "draws",
    ),
    "MoE.fit-target_acept": (
        lambda: bm.MoE(2).fit(X, Y, target_acept=0.95, **TINY),
        "fit",
        "target_acept",
        "target_accept",
    ),
    "MoE.fit-gate_x": (
        lambda: bm.MoE(2).fit(X, Y, gate_x=X, **TINY),
        "fit",
        "gate_x",
        "gate_X",
    ),
    "sample": (
        lambda: bm.sample(X, Y, n_experts=2, n_draws=5, **TINY),
        "sample",
        "n_draws",
        "draws",
    ),
    "sample_random_k": (lambda: _rk(n_chains=1), "sample_random_k", "n_chains", "chains"),
    "sample_dp": (lambda: _dp(truncation_tl=0.1), "sample_dp", "truncation_tl", "truncation_tol"),
    "fit_mle": (lambda: bm.fit_mle(X, Y, 2, n_start=1, max_iter=2), "fit_mle", "n_start", None),
    "compare_experts": (
        lambda: bm.compare_experts(X, Y, ks=[1], n_start=1, progressbar=False),
        "compare_experts",
        "n_start",
        "n_starts",
    ),
    "predict": (lambda: bm.predict(MEASURE, X, ci=0.9), "predict", "ci", None),
    "posterior_predictive": (
        lambda: bm.posterior_predictive(MEASURE, X, seed=1),
        "posterior_predictive",
        "seed",
        None,
    ),
    "gate_probabilities": (
        lambda: bm.gate_probabilities(MEASURE, X, max_draw=10),
        "gate_probabilities",
        "max_draw",
        "max_draws",
    ),
    "conditional_density": (
        lambda: bm.conditional_density(MEASURE, X, [0.0], ci_prop=0.9),
        "conditional_density",
        "ci_prop",
        "ci_prob",
    ),
}


@pytest.mark.parametrize("entry", list(UNKNOWN))
def test_unknown_keyword_is_rejected_naming_the_nearest(entry):
    call, where, bad, near = UNKNOWN[entry]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match=f"unknown keyword argument '{bad}' to {where}") as err:
            call()
    if near is not None:
        assert err.match(f"did you mean '{near}'\\?")
    assert "\n" not in str(err.value)


def test_model_option_passed_to_fit_is_redirected():
    with pytest.raises(TypeError, match=r"`n_experts` is a model option: pass it to MoE"):
        bm.MoE(2).fit(X, Y, n_experts=3, **TINY)


def test_pymc_only_keyword_says_it_switches_to_pymc():
    """``discard_tuned_samples`` exists only in pm.sample: backend="auto" leaves the JAX sampler,
    with a warning (checked before the sizes, so draws=0 stops the call before any sampling).
    """
    pytest.importorskip("numpyro")
    with (
        pytest.warns(UserWarning, match=r"keyword 'discard_tuned_samples' is only supported by "),
        pytest.raises(ValueError, match="`draws` must be"),
    ):
        bm.sample(X, Y, n_experts=2, draws=0, discard_tuned_samples=True)


def test_keywords_set_by_bayesmoe_are_refused():
    with pytest.raises(TypeError, match=r"'initvals' to sample is not accepted"):
        bm.sample(X, Y, n_experts=2, initvals={}, **TINY)


# ---- 6. warnings on poor mixing ----------------------------------------------------------------
def _fixed_k_trace(**kw):
    """The synthetic S-B posterior: 4 chains x 300 iid draws (R-hat ~ 1, ESS ~ 1200)."""
    return synthetic_trace(chains=4, draws=300, **kw)


def _replace(tree, group, name, dims, values):
    ds = tree[group].to_dataset()
    ds[name] = (dims, values)
    tree[group] = xr.DataTree(ds)
    return tree


def _convergence_warnings(fn, trace):
    from bayesmoe.diagnostics.convergence import ConvergenceWarning

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fn(trace)
    return [str(w.message) for w in rec if issubclass(w.category, ConvergenceWarning)]


def test_a_well_mixed_fixed_k_trace_gives_no_warning():
    from bayesmoe.diagnostics.convergence import check_fixed_k

    assert _convergence_warnings(check_fixed_k, _fixed_k_trace()) == []


def test_a_shifted_chain_warns_with_rhat_naming_the_parameter():
    """Chain 3 of ``b[1]`` shifted by one posterior sd: R-hat ~ 1.1 (as in the trial's fit)."""
    from bayesmoe.diagnostics.convergence import check_fixed_k

    tr = _fixed_k_trace()
    b = tr["posterior"]["b"].values.copy()
    b[3, :, 1] += 0.05
    _replace(tr, "posterior", "b", ("chain", "draw", "expert"), b)
    msgs = _convergence_warnings(check_fixed_k, tr)
    assert msgs[0].startswith("R-hat > 1.01 for 1 parameter(s): b[1] (1.")
    assert all("b[1]" in m and "b[0]" not in m for m in msgs)


def test_rhat_is_checked_only_when_labels_are_aligned():
    """Unrelabelled draws of K > 1 experts: R-hat would only show label switching, so it is not
    checked, unless the fit was ``ordered`` (the ordering identifies the labels)."""
    from bayesmoe.diagnostics.convergence import convergence_problems

    tr = _fixed_k_trace()
    b = tr["posterior"]["b"].values.copy()
    b[3, :, 1] += 0.05
    _replace(tr, "posterior", "b", ("chain", "draw", "expert"), b)
    tr.attrs["relabelled"] = 0
    assert convergence_problems(tr) == []
    tr.attrs["model_options"] = '{"ordered": true}'
    assert convergence_problems(tr)[0].startswith("R-hat > 1.01 for 1 parameter(s): b[1]")


def test_sticky_draws_warn_with_low_ess():
    """``a`` replaced by a random walk per chain: bulk ESS far below 100 per chain."""
    from bayesmoe.diagnostics.convergence import check_fixed_k

    tr = _fixed_k_trace()
    a = tr["posterior"]["a"]
    walk = np.cumsum(np.random.default_rng(1).standard_normal(a.shape), axis=1) * 0.05
    _replace(tr, "posterior", "a", a.dims, a.values + walk)
    msgs = _convergence_warnings(check_fixed_k, tr)
    assert any(m.startswith("bulk ESS < 400 (100 per chain)") and "a[x" in m for m in msgs)


def test_divergences_warn_with_the_count_per_chain():
    from bayesmoe.diagnostics.convergence import check_fixed_k

    tr = _fixed_k_trace()
    div = np.zeros((4, 300), bool)
    div[2, [5, 50, 70]] = True
    _replace(tr, "sample_stats", "diverging", ("chain", "draw"), div)
    msgs = _convergence_warnings(check_fixed_k, tr)
    assert msgs == [m for m in msgs if m.startswith("3 divergent transition(s)")]
    assert "per chain: [0, 0, 3, 0]" in msgs[0] and "target_accept" in msgs[0]


def _random_k_trace(k):
    post = xr.Dataset(
        {"n_experts": (("chain", "draw"), np.asarray(k))},
        coords={"chain": np.arange(len(k)), "draw": np.arange(len(k[0]))},
    )
    return xr.DataTree.from_dict({"posterior": post})


def test_a_chain_that_never_changes_k_is_named():
    """The acidity case: one chain at K = 4 for all its draws while the others move."""
    from bayesmoe.diagnostics.convergence import check_random_k

    rng = np.random.default_rng(2)
    k = rng.choice([2, 3], size=(4, 1000))
    k[1] = 4
    msgs = _convergence_warnings(check_random_k, _random_k_trace(k))
    assert len(msgs) == 1 and msgs[0].startswith("chain 1 stayed at K = 4 for all 1000 draws")
    # every chain at the same K (a concentrated posterior) is not a mixing problem by itself
    assert _convergence_warnings(check_random_k, _random_k_trace(np.full((4, 50), 3))) == []


def test_no_accepted_jump_warns():
    from bayesmoe.diagnostics.convergence import check_random_k

    tr = _random_k_trace(np.full((1, 50), 3))
    stats = {f"accepted_{m}": (("chain", "draw"), np.zeros((1, 50), int)) for m in ("birth",)}
    tr["sample_stats"] = xr.DataTree(xr.Dataset(stats))
    msgs = _convergence_warnings(check_random_k, tr)
    assert len(msgs) == 1 and msgs[0].startswith("no trans-dimensional move")


def _sticky_k(rho, p, shape, seed):
    """A Markov chain on K: keep the current K with probability rho, else draw it from p.

    The indicator 1{K = k} then has autocorrelation rho**t, so its integrated autocorrelation
    time is (1 + rho) / (1 - rho) and the MCSE of p_k is sqrt(p_k (1 - p_k) tau / N).
    """
    rng = np.random.default_rng(seed)
    ks = np.arange(1, len(p) + 1)
    out = np.empty(shape, int)
    out[:, 0] = rng.choice(ks, p=p, size=shape[0])
    for t in range(1, shape[1]):
        fresh = rng.choice(ks, p=p, size=shape[0])
        out[:, t] = np.where(rng.uniform(size=shape[0]) < rho, out[:, t - 1], fresh)
    return out


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_k_posterior_mcse_matches_the_autocorrelation(rho):
    """4 x 2000 draws; the ESS estimate of an AR-type indicator has a relative error of a few
    per cent at this length, so the MCSE must be within 20% of the exact value.
    """
    from bayesmoe.inference.rjmcmc import k_posterior

    p = np.array([0.1, 0.6, 0.3])
    k = _sticky_k(rho, p, (4, 2000), seed=int(rho * 10))
    pk = k_posterior(_random_k_trace(k), max_experts=3)
    tau = (1 + rho) / (1 - rho)
    exact = np.sqrt(p * (1 - p) * tau / k.size)
    np.testing.assert_allclose(pk["mcse"].values, exact, rtol=0.2)
    # and p itself is within 4 MCSE of the truth
    assert np.all(np.abs(pk.values - p) < 4 * exact)


def test_k_posterior_by_chain_shows_the_stuck_chain():
    from bayesmoe.inference.rjmcmc import k_posterior

    k = _sticky_k(0.5, np.array([0.2, 0.8]), (3, 400), seed=4)
    k[2] = 2
    ds = k_posterior(_random_k_trace(k), by_chain=True)
    assert set(ds.data_vars) == {"p_n_experts", "mcse", "ess", "p_chain"}
    assert ds["p_chain"].dims == ("chain", "n_experts")
    assert ds["p_chain"].sel(chain=2, n_experts=2).item() == 1.0
    np.testing.assert_allclose(ds["p_chain"].mean("chain"), ds["p_n_experts"])
    # a K never visited: MCSE cannot be estimated from the draws and is NaN, not 0
    assert np.isnan(k_posterior(_random_k_trace(k), max_experts=3)["mcse"].sel(n_experts=3))


# ---- one real run: DataFrame fit, named prediction, warnings at the user's line -----------------
def test_short_fit_records_names_aligns_and_warns():
    """30 draws of 2 chains cannot reach R-hat <= 1.01 / ESS >= 200 on S-B with K = 3: the fit
    must warn, from the user's line, and keep the DataFrame's column names for prediction.
    """
    Xs, ys, _ = simulate("S-B", n=200, random_seed=0)
    df = pd.DataFrame(Xs, columns=NAMES)
    model = bm.MoE(3)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        trace = model.fit(df, ys, draws=30, tune=30, chains=2, random_seed=1, progressbar=False)
    conv = [w for w in rec if w.category.__name__ == "ConvergenceWarning"]
    assert conv and all(w.filename == __file__ for w in conv)
    assert any("bulk ESS" in str(w.message) for w in conv)
    assert trace["posterior"]["feature"].values.tolist() == NAMES
    by_name = model.predict(df[["bmi", "glu"]], random_seed=0)["mean"].values
    np.testing.assert_allclose(by_name, model.predict(Xs, random_seed=0)["mean"].values)


def test_experts_keyword_is_a_deprecated_alias_of_family():
    """One word for the family (issue 20): `experts=` still works one release, with a
    FutureWarning that names the new keyword; both given and different is an error."""
    from bayesmoe.models import build_model

    X, y, _ = bm.data.simulate("S-B", n=60, random_seed=0)
    with pytest.warns(FutureWarning, match=r"family='gaussian'"):
        model = bm.MoE(2, experts="gaussian")
    assert model.family == "gaussian"
    with pytest.warns(FutureWarning, match="build_model"):
        _, info = build_model(X, y, n_experts=2, experts="gaussian")
    assert info.family == "gaussian"
    with pytest.raises(TypeError, match="both"), pytest.warns(FutureWarning):
        bm.MoE(2, family="categorical", experts="poisson")
