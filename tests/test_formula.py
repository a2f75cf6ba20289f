"""Formulas (bayesmoe.formula): the designs equal hand-built columns, formula fits equal matrix
fits, predictions on new DataFrames equal predictions on hand-built columns, and every bad
formula is one line naming the problem.

Equalities between a formula fit and its matrix twin are to round-off (rtol 1e-10): both run the
same fitter with the same seed on the same numbers, so any larger gap means the formula built
other columns (the must-fail twin below shows a changed column is caught).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.formula import Design, design_matrices
from bayesmoe.inference.mle.mm import fit_mle

RTOL = 1e-10  # same fitter, same seed, same numbers: round-off only


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    n = 240
    g = rng.choice(["a", "b", "c"], size=n)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0.5, 3.0, size=n)
    z = rng.normal(size=n)
    hours = rng.uniform(1.0, 4.0, size=n)
    k = (z + 0.3 * rng.normal(size=n)) > 0
    eta = np.where(k, 1.0 + 0.5 * x1, 0.2 - 0.4 * x1) + 0.3 * (g == "b") + 0.2 * np.log(x2)
    counts = rng.poisson(hours * np.exp(eta))
    y = np.where(k, 2 + x1, -1 - x1) + 0.5 * (g == "c") + 0.3 * rng.normal(size=n)
    label = np.where(k ^ (x1 > 0), "hi", "lo")
    return pd.DataFrame(
        {"y": y, "n": counts, "x1": x1, "x2": x2, "g": g, "z": z, "hours": hours, "cls": label}
    )


def _hand(df):
    """The columns of "~ x1 * C(g) + np.log(x2)" written out (treatment contrasts, base "a")."""
    b, c = (df["g"] == "b").to_numpy(float), (df["g"] == "c").to_numpy(float)
    x1 = df["x1"].to_numpy()
    return np.column_stack([x1, b, c, np.log(df["x2"]), x1 * b, x1 * c])


FORMULA = "y ~ x1 * C(g) + np.log(x2)"


def _mle(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit_mle(*args, n_starts=4, random_seed=0, **kwargs)


def test_design_equals_hand_built_columns(frame):
    dm = design_matrices(frame, FORMULA, "~ z")
    assert dm.design.feature_names == [
        "x1",
        "C(g)[T.b]",
        "C(g)[T.c]",
        "np.log(x2)",
        "x1:C(g)[T.b]",
        "x1:C(g)[T.c]",
    ]
    np.testing.assert_array_equal(dm.X.to_numpy(), _hand(frame))
    np.testing.assert_array_equal(dm.gate_X.to_numpy(), frame[["z"]].to_numpy())
    assert dm.offset is None and dm.design.classes is None


def test_formula_fit_mle_equals_the_matrix_fit(frame):
    res = _mle(data=frame, formula=FORMULA, gate_formula="~ z", n_experts=2)
    twin = _mle(_hand(frame), frame["y"].to_numpy(), 2, gate_X=frame[["z"]].to_numpy())
    np.testing.assert_allclose(res.loglik_, twin.loglik_, rtol=RTOL)
    assert list(res.measure_["feature"].values)[1] == "C(g)[T.b]"
    assert list(res.measure_["gate_feature"].values) == ["z"]
    assert res.measure_.attrs["formula"] == FORMULA
    assert res.measure_.attrs["gate_formula"] == "~ z"


def test_a_changed_column_is_caught_by_the_equality(frame):
    """Must-fail twin: the same fit with log(x2) replaced by x2 is not the hand-built fit."""
    res = _mle(data=frame, formula="y ~ x1 * C(g) + x2", gate_formula="~ z", n_experts=2)
    twin = _mle(_hand(frame), frame["y"].to_numpy(), 2, gate_X=frame[["z"]].to_numpy())
    assert abs(res.loglik_ - twin.loglik_) > 1e-6


def test_poisson_offset_and_constant_gate(frame):
    f = "n ~ x1 + C(g) + np.log(x2) + offset(np.log(hours))"
    res = _mle(data=frame, formula=f, gate_formula="~ 1", n_experts=2, family="poisson")
    X = design_matrices(frame, f, family="poisson").X.to_numpy()
    twin = _mle(
        X,
        frame["n"].to_numpy(),
        2,
        family="poisson",
        offset=np.log(frame["hours"].to_numpy()),
        gate_X=np.zeros((len(frame), 0)),
    )
    np.testing.assert_allclose(res.loglik_, twin.loglik_, rtol=RTOL)
    assert res.measure_.sizes["gate_feature"] == 0


def test_factor_response_gives_the_classes(frame):
    dm = design_matrices(frame, "cls ~ x1 + z", family="categorical")
    assert dm.design.classes == ["hi", "lo"]
    np.testing.assert_array_equal(dm.codes(), (frame["cls"] == "lo").to_numpy(int))
    res = _mle(data=frame, formula="cls ~ x1 + z", n_experts=2, family="categorical")
    twin = _mle(frame[["x1", "z"]], dm.codes(), 2, family="categorical")
    np.testing.assert_allclose(res.loglik_, twin.loglik_, rtol=RTOL)


def test_two_level_factor_response_of_binomial_experts(frame):
    """R's convention: the factor's second level is the success (``C(y, levels=...)`` flips)."""
    X = frame[["x1", "z"]].to_numpy()
    for formula, success in (
        ("cls ~ x1 + z", "lo"),
        ("C(cls, levels=['lo', 'hi']) ~ x1 + z", "hi"),
    ):
        dm = design_matrices(frame, formula, family="binomial")
        np.testing.assert_array_equal(dm.y, (frame["cls"] == success).to_numpy(int))
        assert dm.design.classes is None
        res = _mle(data=frame, formula=formula, n_experts=2, family="binomial")
        twin = _mle(X, (frame["cls"] == success).to_numpy(int), 2, family="binomial")
        np.testing.assert_allclose(res.loglik_, twin.loglik_, rtol=RTOL)


def test_new_dataframe_gets_the_same_transforms_and_levels(frame):
    design = design_matrices(frame, FORMULA, "~ z").design
    new = frame.iloc[[5, 0, 7]].drop(columns="y")  # no response needed; one level absent
    new = new[new["g"] != "a"]
    out = design.transform(new)
    np.testing.assert_array_equal(out["X"].to_numpy(), _hand(new))
    with pytest.raises(ValueError, match=r"column 'g' has level 'd', not seen in the fit"):
        design.transform(new.assign(g="d"))
    with pytest.raises(ValueError, match="`X_new` has no column 'x2', which the fit's formulas"):
        design.transform(new.drop(columns="x2"))


@pytest.mark.parametrize(
    "formula, gate_formula, family, message",
    [
        ("y ~ x1 + nope", None, "gaussian", "names 'nope', which is not a column"),
        ("y ~ np.log(nope)", None, "gaussian", "names 'nope', which is not a column"),
        ("~ x1", None, "gaussian", "has no response"),
        ("y ~ x1", "y ~ z", "gaussian", "`gate_formula` 'y ~ z' has a response"),
        ("y ~ 0 + x1", None, "gaussian", "removes the intercept"),
        ("y ~ x1 + I(x1 * 0)", None, "gaussian", "'I(x1 * 0)' is constant"),
        ("y ~ x1 + offset(np.log(hours))", None, "gaussian", "gaussian takes none"),
        ("cls ~ x1", None, "poisson", "is a factor with 2 levels; poisson experts need"),
        ("g ~ x1", None, "binomial", "is a factor with 3 levels; binomial experts need"),
        ("y ~ x1 +", None, "gaussian", "is not a valid formula"),
        ("y ~ x1", "~ z + offset(hours)", "gaussian", "offsets belong to the experts"),
        ("n ~ np.log(x1)", None, "poisson", "term 'np.log(x1)' has missing values"),
        ("n ~ np.log(x2 - 1)", None, "poisson", "has missing values"),
        ("y ~ x1", "~ np.log(z)", "gaussian", "`gate_formula` term 'np.log(z)' has missing"),
    ],
)
def test_bad_formulas_are_one_line(frame, formula, gate_formula, family, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log of negatives
            design_matrices(frame, formula, gate_formula, family=family)
    assert "\n" not in str(err.value)


def test_formula_and_matrices_do_not_mix(frame):
    with pytest.raises(TypeError, match="either"):
        fit_mle(frame[["x1"]], frame["y"], 2, data=frame, formula="y ~ x1")
    with pytest.raises(TypeError, match="`offset` comes from the formulas"):
        fit_mle(data=frame, formula="n ~ x1", n_experts=2, family="poisson", offset=frame["x1"])
    with pytest.raises(TypeError, match="without `formula`"):
        bm.MoE(2).fit(data=frame)


def test_design_rebuilt_from_attrs_applies_stateful_transforms(frame):
    """The JSON in ``attrs`` keeps the levels and the transform states (poly, scale, splines)."""
    f = "n ~ poly(x1, 2) + scale(z) + C(g):x1 + offset(np.log(hours))"
    dm = design_matrices(frame, f, "~ C(g) + bs(z, df=4)", family="poisson")
    again = Design.from_attrs(dm.design.attrs())
    new = frame.iloc[10:20]
    for key in ("X", "gate_X", "offset"):
        got = np.asarray(again.transform(new)[key])
        np.testing.assert_array_equal(got, np.asarray(dm.__dict__[key])[10:20])
    with pytest.raises(ValueError, match="not seen in the fit"):
        again.transform(new.assign(g="zz"))


def test_moe_formula_fit_predicts_on_new_dataframes(frame, tmp_path):
    """A short NUTS fit: predictions of a new DataFrame equal those of its hand-built columns."""
    f = "n ~ x1 + C(g) + offset(np.log(hours))"
    model = bm.MoE(n_experts=2, family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short run: ESS warnings
        trace = model.fit(
            data=frame,
            formula=f,
            gate_formula="~ z",
            draws=30,
            tune=30,
            chains=1,
            random_seed=1,
            progressbar=False,
        )
    assert trace.attrs["formula"] == f and trace.attrs["gate_formula"] == "~ z"
    assert list(trace.posterior["feature"].values) == ["x1", "C(g)[T.b]", "C(g)[T.c]"]
    new = frame.iloc[:6].drop(columns="n")
    b, c = (new["g"] == "b").to_numpy(float), (new["g"] == "c").to_numpy(float)
    X_hand = np.column_stack([new["x1"], b, c])
    Z_hand = new[["z"]].to_numpy()
    off = np.log(new["hours"].to_numpy())
    got = model.predict(new)["mean"].values
    want = bm.predict(trace, X_hand, gate_X=Z_hand, offset=off)["mean"].values
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert not np.allclose(got, bm.predict(trace, X_hand, gate_X=Z_hand)["mean"].values)
    np.testing.assert_allclose(
        model.gate_probabilities(new).values,
        bm.gate_probabilities(trace, X_hand, gate_X=Z_hand).values,
        rtol=1e-12,
    )
    trace.to_netcdf(tmp_path / "trace.nc", engine="h5netcdf")  # the design survives the file
    reloaded = xr.open_datatree(tmp_path / "trace.nc", engine="h5netcdf").load()
    rows = Design.from_attrs(reloaded.attrs).transform(new)
    np.testing.assert_array_equal(rows["X"].to_numpy(), X_hand)
    np.testing.assert_allclose(rows["offset"], off, rtol=1e-15)
