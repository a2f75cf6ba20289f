"""The JAX densities' log-gamma (bayesmoe.families._ops.gammaln_positive) against scipy: values
and gradients over 1e-8..1e8, where every family's arguments live (z > 0)."""

import numpy as np
import pytest
from scipy.special import digamma, gammaln

from bayesmoe.families._ops import gammaln_positive, jax_ops

Z = np.concatenate([np.logspace(-8, 0, 400), np.linspace(1, 30, 3000), np.logspace(1.5, 8, 400)])


def _err(got, want):
    """Relative error, absolute where |want| < 1 (gammaln and digamma have zeros)."""
    return np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0))


def test_gammaln_positive_matches_scipy_in_value_and_gradient():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    ops = jax_ops()
    with jax.enable_x64(True):  # the samplers run in float64
        z = jnp.asarray(Z)
        value = np.asarray(jax.jit(ops.gammaln)(z))
        grad = np.asarray(jax.jit(jax.vmap(jax.grad(ops.gammaln)))(z))
    # float64 round-off of ~10 products and a log: a few ulp; 1e-14 is ~50 ulp
    assert _err(value, gammaln(Z)) < 1e-14
    assert _err(grad, digamma(Z)) < 1e-12  # derivative of the series and the product's log


def test_gammaln_positive_fails_without_the_shift():
    """Must-fail twin: Stirling's series alone (no shift below 10) is off by ~1e-3 near z = 1."""
    from bayesmoe.families import _ops

    unshifted = _ops._stirling(np, Z)
    assert _err(unshifted, gammaln(Z)) > 1e-4
    assert _err(gammaln_positive(np, Z), gammaln(Z)) < 1e-14
