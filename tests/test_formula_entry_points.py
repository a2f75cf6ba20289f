"""Formulas at the entry points beyond ``MoE.fit``/``fit_mle``: ``sample``, ``sample_random_k``,
``compare_experts`` and the module-level prediction functions.

Each formula call is compared with its matrix twin under the same seed: the same sampler or fitter
on the same numbers, so draws, log-likelihoods and criteria agree to round-off (rtol 1e-12; the
matrix twins are built by hand, so a formula that built other columns would fail — the must-fail
twin of that equality is tests/test_formula.py::test_a_changed_column_is_caught_by_the_equality,
and here the prediction test checks that dropping the offset changes the answer). Predictions on a
held-out DataFrame read the design from the fit's ``attrs`` (also after a round trip through
trace.nc) and equal the predictions on hand-built columns.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.data import load_dataset
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.inference.rjmcmc import sample_random_k

RTOL = 1e-12  # same program, same seed, same numbers: round-off only
FORMULA = "y ~ x1 + C(g)"


def _frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], size=n)
    x1 = rng.normal(size=n)
    z = rng.normal(size=n)
    hours = rng.uniform(1.0, 4.0, size=n)
    k = (z + 0.3 * rng.normal(size=n)) > 0
    y = np.where(k, 2 + x1, -1 - x1) + 0.5 * (g == "c") + 0.3 * rng.normal(size=n)
    counts = rng.poisson(hours * np.exp(np.where(k, 1.0 + 0.5 * x1, 0.2 - 0.4 * x1)))
    return pd.DataFrame({"y": y, "n": counts, "x1": x1, "g": g, "z": z, "hours": hours})


def _hand(df: pd.DataFrame) -> np.ndarray:
    """The columns of "~ x1 + C(g)" written out (treatment contrasts, base "a")."""
    return np.column_stack(
        [df["x1"], (df["g"] == "b").to_numpy(float), (df["g"] == "c").to_numpy(float)]
    )


@pytest.fixture(scope="module")
def frame():
    return _frame(3, 200)


@pytest.fixture(scope="module")
def held_out():
    """New rows (another seed), without the response; level "a" absent on purpose."""
    new = _frame(11, 12).drop(columns=["y", "n"])
    return new[new["g"] != "a"].reset_index(drop=True)


def _nuts(**kwargs):
    """A short JAX NUTS run (tune 50: with 20 the step size stayed at ~3 and every draw was
    rejected, so equal draws would have proven little).
    """
    opts = dict(n_experts=2, draws=20, tune=50, chains=1, random_seed=1, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short run: ESS/R-hat warnings
        return bm.sample(backend="jax", **opts, **kwargs)


@pytest.fixture(scope="module")
def formula_trace(frame):
    return _nuts(data=frame, formula=FORMULA, gate_formula="~ z")


def test_sample_formula_equals_the_matrix_sample(frame, formula_trace):
    twin = _nuts(X=_hand(frame), y=frame["y"].to_numpy(), gate_X=frame[["z"]].to_numpy())
    for v in ("beta0", "beta1", "a", "b", "sigma"):
        np.testing.assert_allclose(
            formula_trace.posterior[v].values, twin.posterior[v].values, rtol=RTOL
        )
    np.testing.assert_allclose(
        formula_trace.log_likelihood["y"].values, twin.log_likelihood["y"].values, rtol=RTOL
    )
    assert list(formula_trace.posterior["feature"].values) == ["x1", "C(g)[T.b]", "C(g)[T.c]"]
    assert list(formula_trace.posterior["gate_feature"].values) == ["z"]
    assert formula_trace.attrs["formula"] == FORMULA
    assert formula_trace.attrs["gate_formula"] == "~ z"
    assert "formula_design" in formula_trace.attrs and "formula" not in twin.attrs


def test_module_predictions_apply_the_stored_design(formula_trace, held_out, tmp_path):
    X_hand, Z_hand = _hand(held_out), held_out[["z"]].to_numpy()
    got = bm.predict(formula_trace, held_out, random_seed=0)
    want = bm.predict(formula_trace, X_hand, gate_X=Z_hand, random_seed=0)
    for v in want.data_vars:
        np.testing.assert_allclose(got[v].values, want[v].values, rtol=RTOL)
    pp = bm.posterior_predictive(formula_trace, held_out, random_seed=2)
    pp_hand = bm.posterior_predictive(formula_trace, X_hand, gate_X=Z_hand, random_seed=2)
    np.testing.assert_allclose(pp["y"].values, pp_hand["y"].values, rtol=RTOL)
    gate = bm.gate_probabilities(formula_trace, held_out)
    np.testing.assert_allclose(
        gate.values, bm.gate_probabilities(formula_trace, X_hand, gate_X=Z_hand).values, rtol=RTOL
    )
    dens = bm.conditional_density(formula_trace, held_out, [0.0, 1.0])["density"].values
    dens_hand = bm.conditional_density(formula_trace, X_hand, [0.0, 1.0], gate_X=Z_hand)
    np.testing.assert_allclose(dens, dens_hand["density"].values, rtol=RTOL)
    formula_trace.to_netcdf(tmp_path / "trace.nc", engine="h5netcdf")  # the design survives
    reloaded = xr.open_datatree(tmp_path / "trace.nc", engine="h5netcdf").load()
    np.testing.assert_allclose(
        bm.gate_probabilities(reloaded, held_out).values, gate.values, rtol=RTOL
    )


def test_predictions_of_an_mm_fit_apply_its_offset(frame, held_out):
    """The design of an MM result (``measure_.attrs``): offsets included; without the offset
    the predictions differ (the must-fail twin of the equality).
    """
    f = "n ~ x1 + C(g) + offset(np.log(hours))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = fit_mle(data=frame, formula=f, n_experts=2, family="poisson", n_starts=3)
    X_hand, off = _hand(held_out), np.log(held_out["hours"].to_numpy())
    got = bm.predict(res, held_out)["mean"].values
    np.testing.assert_allclose(got, bm.predict(res, X_hand, offset=off)["mean"].values, rtol=RTOL)
    assert not np.allclose(got, bm.predict(res, X_hand)["mean"].values)


@pytest.mark.parametrize(
    "call",
    [bm.predict, bm.posterior_predictive, bm.gate_probabilities],
    ids=["predict", "posterior_predictive", "gate_probabilities"],
)
def test_unseen_level_is_one_line_naming_column_and_level(formula_trace, held_out, call):
    with pytest.raises(ValueError, match="column 'g' has level 'zz', not seen in the fit") as err:
        call(formula_trace, held_out.assign(g=["zz"] + held_out["g"].tolist()[1:]))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="`X_new` has no column 'z'") as err:
        call(formula_trace, held_out.drop(columns="z"))
    assert "\n" not in str(err.value)


def test_matrix_inputs_of_a_formula_trace_are_unchanged(formula_trace, held_out):
    """Arrays (e.g. the report's constant_data) skip the design: the matrix path as before."""
    X_hand, Z_hand = _hand(held_out), held_out[["z"]].to_numpy()
    g = bm.gate_probabilities(formula_trace, X_hand, gate_X=Z_hand)
    assert g.sizes["obs"] == len(held_out)
    design = bm.formula.Design.from_attrs(formula_trace.attrs)
    rows = design.transform(held_out)  # a frame of the design's columns is the matrix form
    again = bm.gate_probabilities(formula_trace, rows["X"], gate_X=rows["gate_X"])
    np.testing.assert_allclose(again.values, g.values, rtol=RTOL)


def test_compare_experts_formula_equals_the_matrix_table(frame):
    f = "n ~ x1 + C(g) + offset(np.log(hours))"
    opts = dict(ks=range(1, 4), n_starts=2, random_seed=0, progressbar=False, family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = bm.compare_experts(data=frame, formula=f, gate_formula="~ z", **opts)
        twin = bm.compare_experts(
            _hand(frame),
            frame["n"].to_numpy(),
            offset=np.log(frame["hours"].to_numpy()),
            gate_X=frame[["z"]].to_numpy(),
            **opts,
        )
    # rtol 1e-9, not RTOL: the two tables may run different MM engines (numpy while the
    # compiled kernels load, mm_warmup), which agree to ~1e-12 relative (measured 1.7e-12)
    for col in ("loglik", "n_params", "bic", "icl"):
        np.testing.assert_allclose(table[col].to_numpy(), twin[col].to_numpy(), rtol=1e-9)
    assert table.attrs["selected"] == twin.attrs["selected"]
    assert table.attrs["formula"] == f and table.attrs["gate_formula"] == "~ z"


def test_sample_random_k_formula_equals_the_matrix_sample():
    """The compiled reversible jump (d = 0: "v ~ 1", Richardson–Green priors) on the galaxies."""
    _, Y, _ = load_dataset("galaxy")
    df = pd.DataFrame({"v": Y})
    opts = dict(
        max_experts=30,
        experts_prior="uniform",
        priors="richardson-green",
        chains=1,
        draws=50,
        tune=20,
        random_seed=4,
        sampler="compiled",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short run
        trace = sample_random_k(data=df, formula="v ~ 1", **opts)
        twin = sample_random_k(np.zeros((len(Y), 0)), Y, **opts)
    for v in ("n_experts", "beta0", "b", "sigma"):
        np.testing.assert_allclose(trace.posterior[v].values, twin.posterior[v].values, rtol=RTOL)
    assert trace.attrs["formula"] == "v ~ 1" and "formula_design" in trace.attrs


BAD = [
    ("y ~ x1 + nope", None, "names 'nope', which is not a column"),
    ("~ x1", None, "has no response"),
    ("y ~ x1", "y ~ z", "`gate_formula` 'y ~ z' has a response"),
    ("y ~ x1 + I(x1 * 0)", None, "'I(x1 * 0)' is constant"),
]
ENTRY_POINTS = {
    "sample": lambda df, **kw: bm.sample(data=df, n_experts=2, **kw),
    "sample_random_k": lambda df, **kw: sample_random_k(data=df, max_experts=3, **kw),
    "compare_experts": lambda df, **kw: bm.compare_experts(data=df, ks=[1, 2], **kw),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("formula, gate_formula, message", BAD)
def test_bad_formulas_are_one_line_at_every_entry_point(
    frame, entry, formula, gate_formula, message
):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        ENTRY_POINTS[entry](frame, formula=formula, gate_formula=gate_formula)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_formula_and_matrix_keywords_do_not_mix(frame, entry):
    with pytest.raises(TypeError, match="`gate_X` comes from the formulas"):
        ENTRY_POINTS[entry](frame, formula="y ~ x1", gate_X=frame[["z"]].to_numpy())
    with pytest.raises(TypeError, match="without `data`"):
        ENTRY_POINTS[entry](None, formula="y ~ x1")


def test_factor_response_at_sample_and_compare_experts(frame):
    """A label response: ``sample`` gets the labels with the design's classes, ``compare_experts``
    the codes 0..M-1 in that order; both equal their matrix twins.
    """
    df = frame.assign(cls=np.where(frame["x1"] + frame["z"] > 0, "hi", "lo"))
    labels = df["cls"].to_numpy()
    trace = _nuts(data=df, formula="cls ~ x1", gate_formula="~ z", family="categorical")
    twin = _nuts(
        X=df[["x1"]].to_numpy(), y=labels, gate_X=df[["z"]].to_numpy(), family="categorical"
    )
    np.testing.assert_allclose(trace.posterior["a"].values, twin.posterior["a"].values, rtol=RTOL)
    assert list(trace.posterior["class"].values) == ["hi", "lo"]
    probs = bm.posterior_predictive(trace, df.iloc[:4].drop(columns="cls"), random_seed=0)
    assert probs["probs"].sizes["class"] == 2
    opts = dict(ks=[1, 2], n_starts=2, random_seed=0, progressbar=False, family="categorical")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = bm.compare_experts(data=df, formula="cls ~ x1", **opts)
        matrix = bm.compare_experts(df[["x1"]].to_numpy(), (labels == "lo").astype(int), **opts)
    # rtol 1e-9: the MM engines may differ between the two tables (see above)
    np.testing.assert_allclose(table["loglik"], matrix["loglik"], rtol=1e-9)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayesmoe.ConvergenceWarning")  # a few draws
def test_sample_random_k_step_method_formula_equals_the_matrix_sample(frame):
    """PyMC's reversible-jump step method with covariates and a gate formula: same draws.

    Slow tier (two PyMC compiles, 40 s at load 19): the default tier's
    test_sample_random_k_formula_equals_the_matrix_sample guards the same formula routing
    (shared by both samplers), and tests/study/test_formula_spec.py's rjmcmc task the gate's
    covariates through the step method.
    """
    df = frame.iloc[:120]
    opts = dict(max_experts=2, draws=5, tune=5, chains=1, cores=1, random_seed=3, sampler="step")
    trace = sample_random_k(data=df, formula=FORMULA, gate_formula="~ z", **opts)
    twin = sample_random_k(_hand(df), df["y"].to_numpy(), gate_X=df[["z"]].to_numpy(), **opts)
    for v in ("n_experts", "beta0", "beta1", "a", "b"):
        np.testing.assert_allclose(trace.posterior[v].values, twin.posterior[v].values, rtol=RTOL)
    assert list(trace.posterior["gate_feature"].values) == ["z"]
    assert trace.attrs["gate_formula"] == "~ z"
