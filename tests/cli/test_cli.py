"""The `bayesmoe` command: happy paths write reloadable outputs; bad input gives one clear line."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmoe.cli import main
from bayesmoe.data import simulate


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    X, y, _ = simulate("S-B", n=300, random_seed=2)
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "resp": y}).to_csv(d / "reg.csv", index=False)
    Xc, yc, _ = simulate("S-D", n=300, random_seed=2)
    labels = np.array(["red", "green", "blue"])[yc]
    pd.DataFrame({"u": Xc[:, 0], "v": Xc[:, 1], "colour": labels}).to_csv(
        d / "cls.csv", index=False
    )
    bad = pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "resp": y, "const": 1.0, "word": ["w"] * 300})
    bad.loc[5, "v"] = np.nan
    bad.to_csv(d / "bad.csv", index=False)
    pd.DataFrame({"u": X[:8, 0], "resp": y[:8]}).to_csv(d / "tiny.csv", index=False)
    return d


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


SMALL = ["--draws", "60", "--tune", "60", "--chains", "2", "--quiet"]


def test_fit_gaussian_writes_reloadable_trace(csv_files, tmp_path, capsys):
    out = tmp_path / "fit"
    rc, stdout, _ = _run(
        [
            "fit",
            str(csv_files / "reg.csv"),
            "--target",
            "resp",
            "--experts",
            "2",
            "--out",
            str(out),
            "--seed",
            "3",
            *SMALL,
        ],
        capsys,
    )
    assert rc == 0
    tree = xr.open_datatree(out / "trace.nc", engine="h5netcdf")
    assert list(tree.posterior["feature"].values) == ["u", "v"]
    assert tree.attrs["target"] == "resp"
    table = pd.read_csv(out / "summary.csv", index_col=0)
    assert "loglik" in table.index and "r_hat" in table.columns
    assert "wall time" in stdout
    assert not list(tmp_path.glob(".bayesmoe-*"))  # staging folder removed


def test_fit_categorical_with_string_labels(csv_files, tmp_path, capsys):
    out = tmp_path / "cls"
    rc, _, err = _run(
        [
            "fit",
            str(csv_files / "cls.csv"),
            "--target",
            "colour",
            "--experts",
            "2",
            "--family",
            "categorical",
            "--gate",
            "tanh",
            "--out",
            str(out),
            *SMALL,
        ],
        capsys,
    )
    assert rc == 0, err
    tree = xr.open_datatree(out / "trace.nc", engine="h5netcdf")
    assert list(tree.posterior["class"].values) == ["blue", "green", "red"]
    assert tree.attrs["gate"] == "tanh"
    rows = pd.read_csv(out / "summary.csv", index_col=0).index
    # the reference class's pinned zeros are left out, once (not a second class as well)
    assert any("green" in r for r in rows) and not any("red" in r for r in rows)


def test_run_default_job(tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, _ = _run(["run", "--out", str(out), *SMALL], capsys)
    assert rc == 0
    assert (out / "trace.nc").is_file() and (out / "summary.csv").is_file()
    assert (out / "report.html").stat().st_size > 10_000  # inline PNG plots
    assert "a[x0, 0]" in stdout
    (out / "report.html").unlink()
    rc, stdout, _ = _run(["report", str(out), "--quiet"], capsys)  # rewrite it from the trace
    assert rc == 0 and (out / "report.html").is_file()


def test_fit_mle_json(csv_files, tmp_path, capsys):
    rc, stdout, _ = _run(
        [
            "fit",
            str(csv_files / "reg.csv"),
            "--target",
            "resp",
            "--experts",
            "3",
            "--method",
            "mle",
            "--json",
            "--out",
            str(tmp_path / "m"),
        ],
        capsys,
    )
    assert rc == 0
    rec = json.loads(stdout)
    for key in ("loglik", "n_params", "aic", "bic", "converged", "iterations", "seconds"):
        assert key in rec
    assert rec["n_params"] == 2 * 3 + 3 * 4
    assert np.isclose(rec["aic"], -2 * rec["loglik"] + 2 * rec["n_params"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "{d}/nope.csv", "--target", "resp", "--experts", "2"], "does not exist"),
        (["fit", "{d}/reg.csv", "--target", "yy", "--experts", "2"], "column 'yy' not in"),
        (
            ["fit", "{d}/reg.csv", "--target", "resp", "--features", "u,w", "--experts", "2"],
            "feature column(s) ['w']",
        ),
        (
            ["fit", "{d}/bad.csv", "--target", "resp", "--features", "u,v", "--experts", "2"],
            "missing or infinite value at row 7",
        ),
        (
            ["fit", "{d}/bad.csv", "--target", "resp", "--features", "u,const", "--experts", "2"],
            "'const' is constant",
        ),
        (
            ["fit", "{d}/bad.csv", "--target", "resp", "--features", "u,word", "--experts", "2"],
            "'word' is not numeric",
        ),
        (["fit", "{d}/tiny.csv", "--target", "resp", "--experts", "3"], "parameters but the data"),
        (["fit", "{d}/reg.csv", "--target", "resp", "--experts", "0"], "positive integer"),
        (
            ["fit", "{d}/reg.csv", "--target", "resp", "--experts", "2", "--gate", "relu"],
            "invalid choice",
        ),
        (
            ["fit", "{d}/reg.csv", "--target", "resp", "--experts", "2", "--bogus"],
            "unrecognized arguments",
        ),
        (["fit", "{d}/cls.csv", "--target", "colour", "--experts", "2"], "not numeric"),
        (["sample"], "invalid choice"),
    ],
)
def test_bad_input_one_line_and_nothing_written(csv_files, tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    argv = [a.format(d=csv_files) for a in argv] + ["--out", str(out)]
    rc, _stdout, err = _run(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesmoe: error:"), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".bayesmoe-*"))


def test_console_script_is_installed():
    res = subprocess.run(
        [sys.executable, "-m", "bayesmoe.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0 and "run" in res.stdout and "fit" in res.stdout


def test_mle_json_prints_nothing_when_output_cannot_be_written(csv_files, tmp_path, capsys):
    rc, stdout, err = _run(
        [
            "fit",
            str(csv_files / "reg.csv"),
            "--target",
            "resp",
            "--experts",
            "2",
            "--method",
            "mle",
            "--json",
            "--out",
            str(tmp_path / "no" / "such" / "dir"),
        ],
        capsys,
    )
    assert rc == 2 and stdout == "" and "does not exist" in err


def test_select_json_rows_carry_the_number_of_experts(csv_files, capsys):
    rc, stdout, _ = _run(
        ["select", str(csv_files / "reg.csv"), "--target", "resp", "--max-experts", "2", "--json"],
        capsys,
    )
    assert rc == 0
    assert [row["n_experts"] for row in json.loads(stdout)["table"]] == [1, 2]
