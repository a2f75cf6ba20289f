"""`bayesmoe fit/select --formula`: flexmix's seizure and patent optima from the command line,
and every bad formula as one line with exit status 2 and nothing written."""

import json
from pathlib import Path

import pytest

from bayesmoe.cli import main

PUBLISHED = Path(__file__).parents[1] / "published"
SEIZURE = str(PUBLISHED / "seizure.csv")
PATENT = str(PUBLISHED / "patent.csv")
HALF_DIGIT = 5e-5  # flexmix prints four decimals (tests/published/test_flexmix.py)


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_mle_from_the_seizure_formula(tmp_path, capsys):
    formula = "Seizures ~ Treatment * log(Day) + offset(log(Hours))"
    argv = ["fit", SEIZURE, "--formula", formula, "--gate-formula", "~ 1", "--family", "poisson"]
    argv += ["--experts", "2", "--method", "mle", "--json", "--out", tmp_path / "fit"]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    res = json.loads(out)
    assert res["target"] == "Seizures" and res["formula"] == formula
    assert res["features"] == ["Treatment[T.Yes]", "log(Day)", "Treatment[T.Yes]:log(Day)"]
    assert -376.1762 - HALF_DIGIT <= res["loglik"] <= -376.1762 + 0.01, res["loglik"]
    assert json.loads((tmp_path / "fit" / "mle.json").read_text())["gate_formula"] == "~ 1"


def test_select_from_the_patent_formulas(capsys):
    argv = ["select", PATENT, "--formula", "Patents ~ lgRD", "--gate-formula", "~ RDS"]
    argv += ["--family", "poisson", "--min-experts", "3", "--max-experts", "3", "--json"]
    rc, out, err = _run(argv, capsys)
    assert rc == 0, err
    (row,) = json.loads(out)["table"]
    assert row["n_experts"] == 3
    assert -197.6753 - HALF_DIGIT <= row["loglik"] <= -197.6753 + 0.01, row["loglik"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--formula", "Seizures ~ Nope"], "names 'Nope', which is not a column"),
        (["--formula", "~ Day"], "has no response"),
        (["--formula", "Seizures ~ Day", "--gate-formula", "y ~ Day"], "has a response"),
        (["--formula", "Seizures ~ Day + I(Day * 0)"], "is constant on the data"),
        (["--formula", "Seizures ~ 0 + Day"], "removes the intercept"),
        (["--formula", "Seizures ~ Day", "--target", "Seizures"], "--target cannot be combined"),
        (["--gate-formula", "~ Day", "--target", "Seizures"], "--gate-formula needs --formula"),
        ([], "give --target COLUMN (or --formula"),
    ],
)
def test_bad_formula_is_one_line_exit_2(tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    argv = ["fit", SEIZURE, *extra, "--family", "poisson", "--experts", "2", "--method", "mle"]
    rc, _, err = _run([*argv, "--out", out], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bayesmoe: error:"), err
    assert message in lines[0], lines[0]
    assert not out.exists()
