"""`bayesmoe fit` on a mixture without covariates: `--features none`, a CSV of the target alone,
the Richardson–Green priors (`--priors`) and `--experts-prior uniform:KMAX`."""

import json

import pandas as pd
import pytest

from bayesmoe.cli import main
from bayesmoe.data import load_dataset

TINY = ["--draws", "40", "--tune", "20", "--chains", "1", "--quiet", "--seed", "2"]


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("d0")
    _, y, _ = load_dataset("galaxy")
    pd.DataFrame({"velocity": y}).to_csv(d / "galaxy.csv", index=False)
    pd.DataFrame({"id": range(y.size), "velocity": y}).to_csv(d / "with_id.csv", index=False)
    return d


def test_target_only_csv_fits_a_plain_mixture(csvs, capsys):
    rc = main(
        [
            "fit",
            str(csvs / "galaxy.csv"),
            "--target",
            "velocity",
            "--experts",
            "3",
            "--method",
            "mle",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["features"] == [] and out["parameters"]["beta1"] == []
    assert len(out["parameters"]["b"]) == 3


def test_features_none_drops_the_other_columns(csvs, capsys):
    rc = main(
        [
            "fit",
            str(csvs / "with_id.csv"),
            "--target",
            "velocity",
            "--features",
            "none",
            "--experts",
            "2",
            "--method",
            "mle",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["features"] == []


@pytest.mark.slow  # ~22 s (its own compiled program); test_rg_priors_fixed_k_nuts runs by default
def test_rg_priors_uniform_kmax_sets_max_experts(csvs, tmp_path, capsys):
    out = tmp_path / "rj"
    rc = main(
        [
            "fit",
            str(csvs / "galaxy.csv"),
            "--target",
            "velocity",
            "--priors",
            "richardson-green",
            "--experts-prior",
            "uniform:5",
            "--out",
            str(out),
            *TINY,
        ]
    )
    stdout = capsys.readouterr().out
    assert rc == 0 and "p(K | y)" in stdout
    table = pd.read_csv(out / "summary.csv", index_col=0)
    assert list(table.index) == [1, 2, 3, 4, 5]


def test_rg_priors_fixed_k_nuts(csvs, tmp_path, capsys):
    rc = main(
        [
            "fit",
            str(csvs / "galaxy.csv"),
            "--target",
            "velocity",
            "--priors",
            "richardson-green",
            "--experts",
            "2",
            "--out",
            str(tmp_path / "k2"),
            *TINY,
        ]
    )
    assert rc == 0
    table = pd.read_csv(tmp_path / "k2" / "summary.csv", index_col=0)
    assert {"b[0]", "sigma[1]"} <= set(table.index)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--priors", "rgx", "--experts", "2"], "--priors: Unknown prior set 'rgx'"),
        (["--experts-prior", "uniform:8", "--max-experts", "4"], "puts mass up to K = 8"),
        (["--experts-prior", "uniform:0"], "--experts-prior: 'uniform:KMAX' needs an integer"),
    ],
)
def test_bad_prior_options_are_one_line_errors(csvs, tmp_path, capsys, argv, message):
    rc = main(
        [
            "fit",
            str(csvs / "galaxy.csv"),
            "--target",
            "velocity",
            "--out",
            str(tmp_path / "x"),
            *argv,
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
