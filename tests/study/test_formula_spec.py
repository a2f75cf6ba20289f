"""Formulas in a study spec (bayesmoe.study.formulas): a CSV described by ``data.formula`` and
``data.gate_formula`` gives the tasks of the matrix form, and every bad formula is one line.

Equalities are between two MM fits with the same seed on the same numbers; rtol 1e-9 (not
round-off tight) because the task's MM engine (numpy while the compiled kernels load, then
compiled: mm_warmup.steady_backend) and the design's memory layout change the last bits (measured
gaps ~1e-12 relative). The must-fail twin: the task without its offset term is not the fit with
the offset.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayesmoe as bm
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.study import StudyStore, run_task
from bayesmoe.study.spec import parse_spec

RTOL = 1e-9


def _frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], size=n)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0.5, 3.0, size=n)
    z = rng.normal(size=n)
    hours = rng.uniform(1.0, 4.0, size=n)
    k = (z + 0.3 * rng.normal(size=n)) > 0
    y = np.where(k, 2 + x1, -1 - x1) + 0.5 * (g == "c") + 0.3 * rng.normal(size=n)
    counts = rng.poisson(hours * np.exp(np.where(k, 1.0 + 0.5 * x1, 0.2 - 0.4 * x1)))
    return pd.DataFrame({"y": y, "n": counts, "x1": x1, "x2": x2, "g": g, "z": z, "hours": hours})


def _hand(df: pd.DataFrame) -> pd.DataFrame:
    """The columns of "~ x1 + C(g) + np.log(x2)" written out (treatment contrasts, base "a")."""
    return pd.DataFrame(
        {
            "x1": df["x1"],
            "gb": (df["g"] == "b").astype(float),
            "gc": (df["g"] == "c").astype(float),
            "logx2": np.log(df["x2"]),
            "y": df["y"],
        }
    )


def _spec(data: dict, family: str = "gaussian", grid=None):
    raw = {
        "study": {"name": "formula", "seed": 5},
        "data": {"source": "csv", **data},
        "model": {"family": family, "n_experts": 2},
        "inference": {"method": "mle", "n_starts": 3},
    }
    if grid:
        raw["grid"] = grid
    return parse_spec(raw)


def _run(spec, out):
    StudyStore(out)
    recs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for task in spec.tasks():
            rec = run_task(task.to_dict(), str(out))
            assert rec["status"] == "done", rec.get("error")
            recs.append(rec)
    return recs


def test_formula_tasks_equal_the_matrix_tasks(tmp_path):
    df = _frame(3, 240)
    df.to_csv(tmp_path / "raw.csv", index=False)
    _hand(df).to_csv(tmp_path / "hand.csv", index=False)
    grid = {"n": [150, 240]}  # the subsample takes the same rows in both forms
    formula = _spec(
        {"path": str(tmp_path / "raw.csv"), "formula": "y ~ x1 + C(g) + np.log(x2)"}, grid=grid
    )
    matrix = _spec({"path": str(tmp_path / "hand.csv"), "target": "y"}, grid=grid)
    got, want = _run(formula, tmp_path / "f"), _run(matrix, tmp_path / "m")
    assert [r["task"] for r in got] == [r["task"] for r in want]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a["metrics"]["loglik"], b["metrics"]["loglik"], rtol=RTOL)
        assert a["data_seed"] == b["data_seed"] and a["fit_seed"] == b["fit_seed"]
    fit = xr.open_dataset(tmp_path / "f" / "tasks" / "n150" / "fit.nc", engine="h5netcdf")
    assert fit.attrs["formula"] == "y ~ x1 + C(g) + np.log(x2)"
    assert list(fit["feature"].values) == ["x1", "C(g)[T.b]", "C(g)[T.c]", "np.log(x2)"]


def test_formula_task_with_gate_and_offset_equals_fit_mle(tmp_path):
    df = _frame(4, 200)
    df.to_csv(tmp_path / "raw.csv", index=False)
    f = "n ~ x1 + C(g) + offset(np.log(hours))"
    spec = _spec(
        {"path": str(tmp_path / "raw.csv"), "formula": f, "gate_formula": "~ z"}, "poisson"
    )
    (rec,) = _run(spec, tmp_path / "out")
    X = np.column_stack(
        [df["x1"], (df["g"] == "b").to_numpy(float), (df["g"] == "c").to_numpy(float)]
    )
    kw = dict(family="poisson", n_starts=3, random_seed=rec["fit_seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        off = np.log(df["hours"].to_numpy())
        twin = fit_mle(X, df["n"].to_numpy(), 2, offset=off, gate_X=df[["z"]].to_numpy(), **kw)
        no_offset = fit_mle(X, df["n"].to_numpy(), 2, gate_X=df[["z"]].to_numpy(), **kw)
    np.testing.assert_allclose(rec["metrics"]["loglik"], twin.loglik_, rtol=RTOL)
    assert abs(rec["metrics"]["loglik"] - no_offset.loglik_) > 1.0  # must-fail twin
    fit = xr.open_dataset(tmp_path / "out" / "tasks" / "fit" / "fit.nc", engine="h5netcdf")
    fit = fit.load()
    assert fit.attrs["gate_formula"] == "~ z" and list(fit["gate_feature"].values) == ["z"]
    new = _frame(9, 5).drop(columns="n")
    np.testing.assert_allclose(  # the stored design applies to new rows
        bm.predict(fit, new)["mean"].values,
        bm.predict(
            twin,
            np.column_stack(
                [new["x1"], (new["g"] == "b").to_numpy(float), (new["g"] == "c").to_numpy(float)]
            ),
            offset=np.log(new["hours"].to_numpy()),
            gate_X=new[["z"]].to_numpy(),
        )["mean"].values,
        rtol=1e-6,  # two fits of the same optimum (RTOL on the log-likelihood)
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"formula": "y ~ x1 + nope"}, "`data.formula`: `formula` names 'nope', which is not"),
        ({"formula": "~ x1"}, "`data.formula`: `formula` '~ x1' has no response"),
        ({"formula": "y ~ x1", "gate_formula": "y ~ z"}, "`data.gate_formula`: `gate_formula`"),
        ({"formula": "y ~ x1 + I(x1 * 0)"}, "'I(x1 * 0)' is constant"),
        ({"formula": "y ~ x1", "target": "y"}, "`data.target` and `data.formula` are both"),
        ({"formula": 3}, "`data.formula` must be a formula string"),
        ({"gate_formula": "~ z", "target": "y"}, "`data.gate_formula` needs `data.formula`"),
        ({"formula": "y ~ x1", "gate_formula": "z"}, "`data.gate_formula` must be a formula"),
    ],
)
def test_bad_formula_specs_are_one_line(tmp_path, data, message):
    _frame(3, 60).to_csv(tmp_path / "raw.csv", index=False)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        _spec({"path": str(tmp_path / "raw.csv"), **data})
    assert "\n" not in str(err.value) and str(err.value).startswith("study spec:")


def test_the_example_formula_study_is_valid():
    from pathlib import Path

    from bayesmoe.study.spec import load_spec

    root = Path(__file__).parents[2] / "examples"
    spec = load_spec(root / "patent_formula_study.toml")
    assert spec.data["formula"] == "Patents ~ lgRD" and spec.data["gate_formula"] == "~ RDS"
    assert [t.id for t in spec.tasks()] == ["K1", "K2", "K3", "K4"]


def test_formula_keys_apply_to_csv_only():
    raw = {
        "study": {"seed": 1},
        "data": {"source": "simulate", "preset": "S-B", "n": 50, "formula": "y ~ x"},
        "model": {"n_experts": 2},
        "inference": {"method": "mle"},
    }
    with pytest.raises(ValueError, match=r"`data.formula` applies to source = 'csv' only"):
        parse_spec(raw)


@pytest.mark.filterwarnings("ignore::bayesmoe.ConvergenceWarning")  # a few draws
def test_rjmcmc_formula_task_gives_the_gate_its_own_covariates(tmp_path):
    """The runner passes a formula's gate design to the sampler (reversible jump, step method):
    the trace's gate slopes are on the gate formula's column, the formulas in its attrs.
    """
    _frame(6, 80).to_csv(tmp_path / "raw.csv", index=False)
    raw = {
        "study": {"name": "rj-formula", "seed": 3},
        "data": {"source": "csv", "path": str(tmp_path / "raw.csv")},
        "model": {"k_max": 2, "k_prior": {"kind": "poisson", "rate": 1.0}},
        "inference": {"method": "rjmcmc", "draws": 10, "tune": 10, "chains": 1},
    }
    raw["data"].update(formula="y ~ x1 + C(g)", gate_formula="~ z")
    _run(parse_spec(raw), tmp_path / "out")  # asserts the task is done
    tree = xr.open_datatree(tmp_path / "out" / "tasks" / "fit" / "trace.nc", engine="h5netcdf")
    assert list(tree.posterior["gate_feature"].values) == ["z"]
    assert list(tree.posterior["feature"].values) == ["x1", "C(g)[T.b]", "C(g)[T.c]"]
    assert tree.attrs["formula"] == "y ~ x1 + C(g)" and tree.attrs["gate_formula"] == "~ z"
