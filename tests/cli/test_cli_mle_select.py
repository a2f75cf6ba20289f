"""`bayesmoe select` and `bayesmoe fit --method mle`: JSON and text output, files, string labels.

Everything runs in-process through :func:`bayesmoe.cli.main`; every check compares the CLI's output
with the library called directly with the same seed (the CLI's default ``--seed 1``), so a CLI that
dropped, reordered or recomputed a number differently would fail.
"""

import json

import numpy as np
import pandas as pd
import pytest

from bayesmoe.cli import main
from bayesmoe.data import simulate
from bayesmoe.inference.mle.mm import count_parameters, fit_mle
from bayesmoe.measure import log_likelihood, make_measure
from bayesmoe.selection.criteria import select_experts


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mle_data")
    X, y, _ = simulate("S-B", n=300, random_seed=4)
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "resp": y}).to_csv(d / "reg.csv", index=False)
    # seed 6: every MM start of the K = 2 fit converges (~70 iterations), which keeps the
    # categorical tests fast; other seeds run 2000 iterations on a sharpening gate
    Xc, yc, _ = simulate("S-D", n=300, random_seed=6)
    labels = np.array(["red", "green", "blue"])[yc]
    pd.DataFrame({"u": Xc[:, 0], "v": Xc[:, 1], "colour": labels}).to_csv(
        d / "cls.csv", index=False
    )
    pd.DataFrame({"u": X[:8, 0], "resp": y[:8]}).to_csv(d / "tiny.csv", index=False)
    # compare with the library on the values as parsed back from the CSV (the text round trip
    # can move the last bit, and a K = 3 fit amplifies that to ~1e-3 nats)
    reg, cls = pd.read_csv(d / "reg.csv"), pd.read_csv(d / "cls.csv")
    return {
        "dir": d,
        "X": reg[["u", "v"]].to_numpy(),
        "y": reg["resp"].to_numpy(),
        "Xc": cls[["u", "v"]].to_numpy(),
        "labels": cls["colour"].to_numpy(),
    }


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_json_object(stdout: str) -> dict:
    """stdout must be exactly one JSON object (one line), strict JSON (no NaN/Infinity)."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line of JSON, got {len(lines)} lines"

    def _no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name} in the output")

    rec = json.loads(lines[0], parse_constant=_no_constants)
    assert isinstance(rec, dict)
    return rec


# ----- select ---------------------------------------------------------------------------------
def test_select_json_table_and_choices(data, capsys):
    rc, stdout, err = _run(
        ["select", data["dir"] / "reg.csv", "--target", "resp", "--max-experts", 3, "--json"],
        capsys,
    )
    assert rc == 0, err
    rec = _one_json_object(stdout)
    table = rec["table"]
    assert len(table) == 3
    # rows are K = 1, 2, 3 in order: identified by their parameter counts
    assert [r["n_params"] for r in table] == [count_parameters("gaussian", k, 2) for k in (1, 2, 3)]
    for crit in ("selected_aic", "selected_bic", "selected_icl", "selected_dsc"):
        assert rec[crit] in (1, 2, 3), crit
    for r in table:
        assert np.isclose(r["aic"], -2 * r["loglik"] + 2 * r["n_params"])
        assert np.isclose(r["bic"], -2 * r["loglik"] + r["n_params"] * np.log(300))
    assert rec["selected_bic"] == 1 + int(np.argmin([r["bic"] for r in table]))
    assert rec["n_obs"] == 300 and rec["family"] == "gaussian"

    # the same table as the library with the CLI's default seed (1)
    lib = select_experts(data["X"], data["y"], 3, random_seed=1)
    np.testing.assert_allclose([r["loglik"] for r in table], lib["loglik"].values, rtol=1e-10)
    assert rec["selected_dsc"] == lib.attrs["selected_dsc"]
    assert {int(k): v for k, v in rec["dsc"].items()} == pytest.approx(lib.attrs["dsc"])


def test_select_readable_output(data, capsys):
    rc, stdout, err = _run(
        ["select", data["dir"] / "reg.csv", "--target", "resp", "--max-experts", 2], capsys
    )
    assert rc == 0, err
    for word in ("loglik", "aic", "bic", "icl", "selected_bic:", "selected_dsc:"):
        assert word in stdout
    # the recommendation with its reason comes first, before the other attributes
    assert "recommendation: K = " in stdout and "BIC" in stdout
    assert stdout.index("recommendation: ") < stdout.index("selected_bic:")
    with pytest.raises(json.JSONDecodeError):  # readable, not JSON
        json.loads(stdout)


def test_select_categorical_string_labels(data, capsys):
    rc, stdout, err = _run(
        [
            "select",
            data["dir"] / "cls.csv",
            "--target",
            "colour",
            "--family",
            "categorical",
            "--max-experts",
            2,
            "--json",
        ],
        capsys,
    )
    assert rc == 0, err
    rec = _one_json_object(stdout)
    assert [r["n_params"] for r in rec["table"]] == [
        count_parameters("categorical", k, 2, 3) for k in (1, 2)
    ]
    assert rec["selected_dsc"] in (1, 2) and rec["family"] == "categorical"


def test_select_too_many_experts_is_one_line_error(data, capsys):
    # tiny.csv: 8 rows, 1 feature; K = 3 Gaussian experts need 2*2 + 3*3 = 13 parameters
    rc, stdout, err = _run(
        ["select", data["dir"] / "tiny.csv", "--target", "resp", "--max-experts", 3], capsys
    )
    assert rc == 2 and stdout == ""
    assert err.startswith("bayesmoe: error:") and err.count("\n") == 1
    assert "max_experts" in err


# ----- fit --method mle -----------------------------------------------------------------------
def test_fit_mle_readable_and_writes_json(data, tmp_path, capsys):
    out = tmp_path / "m"
    rc, stdout, err = _run(
        [
            "fit",
            data["dir"] / "reg.csv",
            "--target",
            "resp",
            "--experts",
            2,
            "--method",
            "mle",
            "--out",
            out,
        ],
        capsys,
    )
    assert rc == 0, err
    assert "MMResult(" in stdout and "loglik=" in stdout and "bic=" in stdout
    assert f"wrote {out}/mle.json" in stdout
    with pytest.raises(json.JSONDecodeError):  # readable, not JSON
        json.loads(stdout)
    rec = json.loads((out / "mle.json").read_text())
    assert rec["features"] == ["u", "v"] and rec["target"] == "resp"
    assert rec["n_params"] == count_parameters("gaussian", 2, 2)
    lib = fit_mle(data["X"], data["y"], 2, random_seed=1)  # the CLI's default seed
    assert rec["loglik"] == pytest.approx(lib.loglik_, rel=1e-10)
    assert rec["bic"] == pytest.approx(-2 * rec["loglik"] + rec["n_params"] * np.log(300))
    # the written parameters reproduce the reported log-likelihood
    p = rec["parameters"]
    G = make_measure(p["beta0"], p["beta1"], p["a"], p["b"], p["sigma2"], gate=rec["gate"])
    assert float(log_likelihood(G, data["X"], data["y"])) == pytest.approx(rec["loglik"], rel=1e-9)
    assert not list(tmp_path.glob(".bayesmoe-*"))  # staging folder removed


def test_fit_mle_categorical_string_labels(data, tmp_path, capsys):
    out = tmp_path / "c"
    rc, stdout, err = _run(
        [
            "fit",
            data["dir"] / "cls.csv",
            "--target",
            "colour",
            "--experts",
            2,
            "--family",
            "categorical",
            "--method",
            "mle",
            "--json",
            "--out",
            out,
        ],
        capsys,
    )
    assert rc == 0, err
    rec = _one_json_object(stdout)
    assert rec == json.loads((out / "mle.json").read_text())
    assert rec["classes"] == ["blue", "green", "red"]  # sorted labels -> codes 0, 1, 2
    assert rec["family"] == "categorical"
    assert rec["n_params"] == count_parameters("categorical", 2, 2, 3)
    codes = np.searchsorted(rec["classes"], data["labels"])
    p = rec["parameters"]
    G = make_measure(p["beta0"], p["beta1"], p["a"], p["b"], gate=rec["gate"])
    ll = float(log_likelihood(G, data["Xc"], codes))
    assert ll == pytest.approx(rec["loglik"], rel=1e-9)
    # a wrong label coding (reversed) gives a different likelihood: the check above can fail
    assert float(log_likelihood(G, data["Xc"], 2 - codes)) < ll - 1.0
    lib = fit_mle(data["Xc"], codes, 2, family="categorical", random_seed=1)
    assert rec["loglik"] == pytest.approx(lib.loglik_, rel=1e-10)
