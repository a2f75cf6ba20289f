"""`bayesmoe fit` with a random number of experts (reversible jump) or a DP gate."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmoe.cli import main
from bayesmoe.data import simulate


@pytest.fixture(scope="module")
def reg_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("rk")
    X, y, _ = simulate("S-B", n=120, random_seed=4)
    pd.DataFrame({"u": X[:, 0], "v": X[:, 1], "resp": y}).to_csv(d / "reg.csv", index=False)
    return d / "reg.csv"


TINY = ["--draws", "25", "--tune", "25", "--chains", "1", "--quiet", "--seed", "2"]


def test_random_k_fit_writes_k_posterior(reg_csv, tmp_path, capsys):
    out = tmp_path / "rj"
    rc = main(
        [
            "fit",
            str(reg_csv),
            "--target",
            "resp",
            "--experts-prior",
            "poisson:1.0",
            "--max-experts",
            "3",
            "--out",
            str(out),
            *TINY,
        ]
    )
    stdout = capsys.readouterr().out
    assert rc == 0 and "p(K | y)" in stdout
    table = pd.read_csv(out / "summary.csv", index_col=0)
    assert list(table.index) == [1, 2, 3]
    np.testing.assert_allclose(table["probability"].sum(), 1.0)
    assert "mcse" in table.columns  # p(K | y) with its Monte Carlo error (issue 19)
    assert (out / "acceptance.csv").is_file() and (out / "report.html").is_file()
    tree = xr.open_datatree(out / "trace.nc", engine="h5netcdf")
    assert "n_experts" in tree.posterior


def test_dp_gate_fit(reg_csv, tmp_path, capsys):
    out = tmp_path / "dp"
    rc = main(
        [
            "fit",
            str(reg_csv),
            "--target",
            "resp",
            "--gate-prior",
            "dp:1.0",
            "--max-experts",
            "4",
            "--out",
            str(out),
            *TINY,
        ]
    )
    stdout = capsys.readouterr().out
    assert rc == 0 and "occupied experts" in stdout
    assert list(pd.read_csv(out / "summary.csv", index_col=0).index) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--experts-prior", "poisson:1.0"], "needs --max-experts"),
        (
            ["--experts-prior", "poisson:1.0", "--max-experts", "3", "--experts", "2"],
            "--experts fixes K",
        ),
        (["--experts-prior", "poisson:-1", "--max-experts", "3"], "poisson"),
        (
            ["--experts-prior", "poisson:1", "--max-experts", "3", "--method", "mle"],
            "rjmcmc, not mle",
        ),
        (["--gate-prior", "dp:0", "--max-experts", "3"], "dp"),
        (
            ["--gate-prior", "dp:1", "--experts-prior", "uniform", "--max-experts", "3"],
            "cannot be combined",
        ),
        (["--experts", "2", "--prior-only"], "--prior-only applies"),
        ([], "give --experts K"),
    ],
)
def test_bad_random_k_options(reg_csv, tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    rc = main(["fit", str(reg_csv), "--target", "resp", "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()
