"""The numpy R-hat and bulk ESS equal ArviZ's (the estimators the report and users read)."""

import arviz as az
import numpy as np
import pytest

from bayesmoe.diagnostics.mcmc_stats import ess_bulk, rhat


def _ar1(rng, chains, draws, phi, shift=None):
    x = np.zeros((chains, draws))
    e = rng.standard_normal((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x + (0.0 if shift is None else np.asarray(shift)[:, None])


CASES = {
    "iid": lambda rng: rng.standard_normal((4, 400)),
    "ar1-0.9": lambda rng: _ar1(rng, 4, 500, 0.9),
    "odd-draws": lambda rng: _ar1(rng, 3, 301, 0.5),
    "shifted-chain": lambda rng: _ar1(rng, 4, 300, 0.3, shift=[0, 0, 0, 1.5]),
    "ties": lambda rng: rng.integers(0, 4, size=(2, 200)).astype(float),
    "heavy-tail": lambda rng: rng.standard_cauchy((4, 250)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rhat_and_ess_equal_arviz(case):
    x = CASES[case](np.random.default_rng(7))
    np.testing.assert_allclose(rhat(x), az.rhat(x), rtol=1e-10)
    np.testing.assert_allclose(ess_bulk(x), az.ess(x, method="bulk"), rtol=1e-10)


def test_trailing_dims_are_evaluated_per_parameter():
    rng = np.random.default_rng(3)
    x = np.stack([_ar1(rng, 4, 200, phi) for phi in (0.0, 0.5, 0.95)], axis=-1)
    got_r, got_e = rhat(x), ess_bulk(x)
    assert got_r.shape == got_e.shape == (3,)
    for j in range(3):
        assert got_r[j] == pytest.approx(float(rhat(x[..., j])), rel=1e-12)
        assert got_e[j] == pytest.approx(float(ess_bulk(x[..., j])), rel=1e-12)
    assert got_e[0] > got_e[1] > got_e[2]  # more autocorrelation, fewer effective draws


def test_empty_parameters_give_empty_results():
    """Gate slopes of a model without covariates have shape (chain, draw, 0, K)."""
    x = np.zeros((2, 50, 0, 3))
    assert rhat(x).shape == ess_bulk(x).shape == (0, 3)
