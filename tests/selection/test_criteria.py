"""Tests of K selection by information criteria and DSC."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmoe.data import simulate
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.selection.criteria import select_experts

pytestmark = pytest.mark.filterwarnings("ignore:No start of the MM fit")


def test_table_columns_and_criteria_consistent():
    X, y, _ = simulate("S-B", n=1500, random_seed=4)
    t = select_experts(X, y, 4, n_starts=3, random_seed=0, max_iter=300)
    assert list(t.index) == [1, 2, 3, 4]
    assert {"loglik", "n_params", "aic", "bic", "icl", "converged"} <= set(t.columns)
    assert t.n_params.tolist() == [4, 11, 18, 25]  # (K-1)(d+1) + K(d+2), d=2
    np.testing.assert_allclose(t.aic, -2 * t.loglik + 2 * t.n_params)
    np.testing.assert_allclose(t.bic, -2 * t.loglik + np.log(1500) * t.n_params)
    assert np.all(t.icl >= t.bic - 1e-9)  # the entropy penalty is >= 0
    assert np.all(np.diff(t.loglik) > -1.0)  # nested models: more experts fit at least as well
    # (up to local optima of a multi-start fit; 1 nat of slack)
    assert t.attrs["selected_bic"] == int(t.bic.idxmin())
    # On S-B (K* = 3) at n=1500, BIC's penalty log(n)/2*7 = 25.6 nats per extra expert; it picks 3.
    assert t.attrs["selected_bic"] == 3
    assert t.attrs["selected_dsc"] in (2, 3, 4)
    assert set(t.attrs["dsc"]) == {2, 3, 4}


def test_rows_match_single_fits_and_reproducible():
    X, y, _ = simulate("S-D", n=400, random_seed=1, regime="A")
    t1 = select_experts(X, y, 2, family="categorical", n_starts=2, random_seed=3, max_iter=100)
    t2 = select_experts(X, y, 2, family="categorical", n_starts=2, random_seed=3, max_iter=100)
    assert t1.equals(t2.assign(seconds=t1.seconds))
    seed = int(np.random.default_rng(3).integers(0, 2**63 - 1, size=2)[0])
    one = fit_mle(X, y, 1, family="categorical", n_starts=2, random_seed=seed, max_iter=100)
    assert t1.loc[1, "loglik"] == pytest.approx(one.loglik_)
    assert t1.loc[1, "n_params"] == 1 * 2 * 3  # K(M-1)(d+1)


def test_bad_input():
    X, y, _ = simulate("S-B", n=30, random_seed=0)
    with pytest.raises(ValueError, match="max_experts"):
        select_experts(X, y, 0)
    with pytest.raises(ValueError, match="rows"):
        select_experts(X, y, 8)
    with pytest.raises(ValueError, match="2-D"):
        select_experts(X[:, 0], y, 2)
