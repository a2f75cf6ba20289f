"""`bayesmoe fit --method rjmcmc --formula` and `bayesmoe select --formula`: the formulas reach
the random-K trace (with the design, for predictions on new DataFrames) and the selection JSON.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmoe.cli import main
from bayesmoe.data import load_dataset

PATENT = str(Path(__file__).parents[1] / "published" / "patent.csv")


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow  # ~22 s (its own compiled program); test_formula_entry_points covers the API path
def test_fit_rjmcmc_from_a_formula_keeps_the_design(tmp_path, capsys):
    _, Y, _ = load_dataset("galaxy")
    pd.DataFrame({"v": Y}).to_csv(tmp_path / "galaxy.csv", index=False)
    argv = ["fit", tmp_path / "galaxy.csv", "--formula", "v ~ 1", "--method", "rjmcmc"]
    argv += ["--max-experts", "30", "--experts-prior", "uniform", "--priors", "richardson-green"]
    argv += ["--draws", "50", "--tune", "20", "--chains", "1", "--seed", "2", "--quiet"]
    rc, _, err = _run([*argv, "--out", tmp_path / "rj"], capsys)
    assert rc == 0, err
    tree = xr.open_datatree(tmp_path / "rj" / "trace.nc", engine="h5netcdf")
    assert tree.attrs["formula"] == "v ~ 1" and "formula_design" in tree.attrs
    np.testing.assert_allclose(tree["observed_data"]["y"].values, Y)
    k = tree.posterior["n_experts"].values
    assert k.shape == (1, 50) and 1 <= k.min() and k.max() <= 30


def test_select_json_names_the_formulas(capsys):
    argv = ["select", PATENT, "--formula", "Patents ~ lgRD", "--gate-formula", "~ RDS"]
    argv += ["--family", "poisson", "--min-experts", "2", "--max-experts", "2", "--json"]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    res = json.loads(out)
    assert res["formula"] == "Patents ~ lgRD" and res["gate_formula"] == "~ RDS"
    assert "formula_design" not in res  # the JSON design belongs to fits, not to the table
