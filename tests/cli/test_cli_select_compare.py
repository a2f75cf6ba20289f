"""`bayesmoe select --rjmcmc`: the table gains p(K | y), the old JSON keys stay."""

import json

import numpy as np
import pandas as pd

from bayesmoe.cli import main
from bayesmoe.data import simulate
from bayesmoe.selection.compare import compare_experts


def test_select_rjmcmc_json_extends_the_table(tmp_path, capsys, monkeypatch):
    from bayesmoe.inference.rjmcmc import compiled_sampling

    samplers = []  # which reversible jump ran: the compiled one is the default here
    original = compiled_sampling.sample_compiled

    def spy(*args, **kwargs):
        trace = original(*args, **kwargs)
        samplers.append(trace.attrs["rj_sampler"])
        return trace

    monkeypatch.setattr(compiled_sampling, "sample_compiled", spy)
    # seed 3: with seed 2 the MM K = 2 fit hits a singular matrix (the row would be NaN)
    X, y, _ = simulate("S-A", n=120, random_seed=3)
    pd.DataFrame({"u": X[:, 0], "resp": y}).to_csv(tmp_path / "d.csv", index=False)
    argv = [
        "select",
        str(tmp_path / "d.csv"),
        "--target",
        "resp",
        "--max-experts",
        "2",
        "--rjmcmc",
        "--draws",
        "40",
        "--tune",
        "30",
        "--chains",
        "1",
        "--cores",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    assert samplers == ["compiled"]
    out, _err = capsys.readouterr()
    rec = json.loads(out, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    for key in (
        "table",
        "selected_aic",
        "selected_bic",
        "selected_icl",
        "selected_dsc",
        "dsc",
        "n_obs",
        "family",
        "selected",
        "methods",
    ):
        assert key in rec, key
    assert rec["methods"] == ["mm", "dsc", "rjmcmc"]
    p = [r["p_rjmcmc"] for r in rec["table"]]
    assert sum(p) == np.float64(1.0) or abs(sum(p) - 1) < 1e-12
    assert all(r["elpd_loo"] is None for r in rec["table"])  # NUTS not requested: null, not NaN
    # the library with the CLI's seed gives the same table
    lib = compare_experts(
        pd.read_csv(tmp_path / "d.csv")[["u"]].to_numpy(),
        pd.read_csv(tmp_path / "d.csv")["resp"].to_numpy(),
        ks=range(1, 3),
        random_seed=1,
        rjmcmc=True,
        progressbar=False,
        rjmcmc_kwargs={"draws": 40, "tune": 30, "chains": 1, "cores": 1},
    )
    assert samplers == ["compiled", "compiled"]
    np.testing.assert_allclose(p, lib["p_rjmcmc"].values)
    np.testing.assert_allclose([r["bic"] for r in rec["table"]], lib["bic"].values, rtol=1e-10)


def test_select_min_above_max_is_one_line_error(tmp_path, capsys):
    X, y, _ = simulate("S-A", n=50, random_seed=2)
    pd.DataFrame({"u": X[:, 0], "resp": y}).to_csv(tmp_path / "d.csv", index=False)
    rc = main(
        [
            "select",
            str(tmp_path / "d.csv"),
            "--target",
            "resp",
            "--max-experts",
            "2",
            "--min-experts",
            "3",
        ]
    )
    _, err = capsys.readouterr()
    assert rc == 2 and "--min-experts" in err and err.count("\n") == 1
