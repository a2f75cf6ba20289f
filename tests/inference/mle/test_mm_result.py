"""MMResult.measure_ is built on first access: a fit does not pay for xarray's first Dataset."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.inference.mle.mm import _parts_from_theta, fit_mle
from bayesmoe.measure import MeasureParts, make_measure, measure_parts

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sb():
    return simulate("S-B", n=200, random_seed=0)[:2]


def _stored(r):
    return r.__dict__["_measure_"]


def test_measure_is_built_on_first_access_and_equals_the_eager_one(sb):
    X, y = sb
    r = fit_mle(X, y, 2, n_starts=2, random_seed=0, engine="numpy")
    assert isinstance(_stored(r), MeasureParts)
    text, summary = repr(r), r.to_dict()  # neither builds the Dataset
    assert isinstance(_stored(r), MeasureParts)
    assert "family='gaussian'" in text and "n_experts=2" in text
    G = r.measure_
    assert isinstance(G, xr.Dataset) and r.measure_ is G  # built once, then kept
    assert isinstance(_stored(r), xr.Dataset)
    assert repr(r) == text and r.to_dict() == summary  # same answers from the Dataset
    # the lazily built measure is the eager one: measure_parts(...).dataset() of the same arrays
    eager = make_measure(
        G.beta0.values,
        G.beta1.values,
        G.a.values,
        G.b.values,
        G.sigma2.values,
        feature=list(G.feature.values),
    )
    xr.testing.assert_identical(G, eager)


def test_unbuilt_result_pickles_and_compares(sb):
    X, y = sb
    a = fit_mle(X, y, 2, n_starts=2, random_seed=0, engine="numpy")
    b = pickle.loads(pickle.dumps(a))
    assert isinstance(_stored(b), MeasureParts)
    xr.testing.assert_identical(a.measure_, b.measure_)
    c = fit_mle(X, y, 2, n_starts=2, random_seed=1, engine="numpy")
    assert not a.measure_.equals(c.measure_)  # twin: another fit, another measure


def test_measure_parts_check_like_measure_from_arrays():
    with pytest.raises(ValueError, match="`beta0` contains NaN"):
        measure_parts(
            [np.nan, 0.0], [[1.0, -1.0]], {"a": [[0.5, 0.1]], "b": [1.0, 2.0]}, family="poisson"
        )
    P = measure_parts(
        [0.0, 0.0], [[1.0, -1.0]], {"a": [[0.5, 0.1]], "b": [1.0, 2.0]}, family="poisson"
    )
    assert P.sizes == dict(P.dataset().sizes)


def test_parts_from_theta_is_checked_at_fit_time():
    """A fitted point with a non-finite parameter fails in the fit, not at first access."""
    from bayesmoe.inference.mle import mm_updates as mu
    from bayesmoe.scaling import Standardizer

    X, y, _ = simulate("S-B", n=100, random_seed=0)
    st = Standardizer.from_data(X, y)
    n = X.shape[0]
    Xt = np.column_stack([np.ones(n), st.transform_X(X)])
    prob = mu.make_problem("gaussian", Xt, Xt.copy(), y, 2)  # only its layout is used
    theta = np.zeros(prob.layout.size)
    assert isinstance(
        _parts_from_theta(theta, prob.layout, st, "softmax", None, None), MeasureParts
    )
    theta[0] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        _parts_from_theta(theta, prob.layout, st, "softmax", None, None)


FRESH = r"""
import json, sys, warnings
import numpy as np
from bayesmoe.inference.mle.mm import fit_mle
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (200, 1))
y = np.where(X[:, 0] > 0, 2 * X[:, 0], -X[:, 0]) + 0.1 * rng.standard_normal(200)
r = fit_mle(X, y, 2, n_starts=2, random_seed=0, engine="numpy")
before = "dask" in sys.modules
r.measure_
print(json.dumps(dict(before=before, after="dask" in sys.modules)))
"""


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="dask not installed")
def test_fresh_process_fit_does_not_import_dask():
    """xarray imports dask (~0.3 s) for its first Dataset when dask is installed: the fit must not
    build one; the first access of ``measure_`` does (the twin: the import happens there)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"before": False, "after": True}
