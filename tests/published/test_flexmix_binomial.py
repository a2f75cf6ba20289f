"""Binomial experts reach flexmix's optima on two of its real data sets (tests/published/).

flexmix prints its binomial mixtures of betablocker and Mehta with membership shared by a centre
(``| Center``), which bayesmoe does not model; the numbers used here are:

- betablocker, K = 1: the logistic regression ``cbind(Deaths, Total - Deaths) ~ Treatment``
  whose coefficients flexmix's vignette prints (-2.1971, -0.2574; regression-examples.pdf p. 8);
- betablocker, K = 3, rows independent, constant weights: log-likelihood -168.3885 computed here
  with flexmix 2.3-18 (``stepFlexmix(..., k = 3, nrep = 20)``; not printed anywhere);
- tribolium, K = 2, both expert coefficients varying and the gate on ``Replicate == 3``:
  -79.7828 computed here with flexmix 2.3-18 (the vignette prints only the refit coefficients of
  the model whose Species effect is shared, whose optimum -79.8254 this one must exceed).

"Reaches" as in test_flexmix.py: at least the reference minus half a unit of its fourth decimal,
at most 0.01 above it. The must-fail twins drop one thing the model has (the treatment, the
gate's covariate) and must land below.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesmoe.inference.mle.mm import fit_mle

HERE = Path(__file__).parent
HALF_DIGIT = 5e-5
ABOVE = 0.01


def _reaches(loglik: float, ref: float) -> bool:
    return ref - HALF_DIGIT <= loglik <= ref + ABOVE


def _betablocker():
    b = pd.read_csv(HERE / "betablocker.csv")
    X = pd.DataFrame({"Treated": (b["Treatment"] == "Treated").astype(float)})
    return X, b["Deaths"].to_numpy(), b["Total"].to_numpy()


def _tribolium():
    t = pd.read_csv(HERE / "tribolium.csv")
    X = pd.DataFrame({"Confusum": (t["Species"] == "Confusum").astype(float)})
    Z = pd.DataFrame({"Replicate3": (t["Replicate"].astype(str) == "3").astype(float)})
    return X, t["Remaining"].to_numpy(), t["Total"].to_numpy(), Z


def _fit(X, y, K, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit_mle(X, y, K, family="binomial", n_starts=20, random_seed=0, **kw)


def test_betablocker_one_expert_is_the_printed_logistic_regression():
    X, y, trials = _betablocker()
    res = _fit(X, y, 1, trials=trials)
    G = res.measure_
    np.testing.assert_allclose(G["b"].values, [-2.1971], atol=5e-5)  # printed to 4 decimals
    np.testing.assert_allclose(G["a"].values.ravel(), [-0.2574], atol=5e-5)
    assert _reaches(res.loglik_, -261.5956), res.loglik_  # glm's logLik (computed here)


def test_betablocker_three_experts_row_level_reaches_flexmix():
    X, y, trials = _betablocker()
    const = np.zeros((len(y), 0))
    res = _fit(X, y, 3, trials=trials, gate_X=const)
    assert res.n_params_ == 8  # flexmix's df
    assert _reaches(res.loglik_, -168.3885), res.loglik_
    twin = _fit(X.iloc[:, :0], y, 3, trials=trials, gate_X=const)  # the treatment dropped
    assert not _reaches(twin.loglik_, -168.3885), twin.loglik_


def test_betablocker_without_trials_is_refused():
    X, y, _ = _betablocker()
    with pytest.raises(ValueError, match="no `trials` were given"):
        fit_mle(X, y, 2, family="binomial", n_starts=1)


def test_tribolium_binomial_with_a_gate_of_its_own():
    X, y, trials, Z = _tribolium()
    res = _fit(X, y, 2, trials=trials, gate_X=Z)
    assert res.n_params_ == 6  # flexmix's df (both coefficients varying)
    assert _reaches(res.loglik_, -79.7828), res.loglik_
    assert res.loglik_ > -79.8254  # the shared-Species model flexmix's vignette fits is nested
    twin = _fit(X, y, 2, trials=trials, gate_X=np.zeros((len(y), 0)))  # constant weights
    assert not _reaches(twin.loglik_, -79.7828), twin.loglik_
