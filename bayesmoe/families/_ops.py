"""Array namespaces the families' densities are written against: numpy, jax.numpy, PyTensor.

A family writes its log density once, as a function of an :class:`Ops`; every backend passes its
own: the MM fitter, prediction and diagnostics numpy (:data:`NUMPY`), the compiled sampler
:func:`jax_ops`, the PyMC model :func:`pytensor_ops`. Only operations the three share are used:
``xp.einsum``, ``xp.exp``/``log``/``log1p``/``sqrt``, ``xp.maximum``/``minimum``/``where``,
``xp.concatenate``, ``xp.zeros_like``, indexing with ``None`` and ``...``, plus the special
functions of :class:`Ops` and the two log-gamma differences below (written over ``xp``), which stay
accurate where a difference of two ``gammaln`` loses every digit (shape parameters near infinity:
the Poisson and Gaussian limits of the negative binomial and Student-t experts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = [
    "NUMPY",
    "Ops",
    "jax_ops",
    "log_gamma_ratio",
    "log_rising_scaled",
    "materialized",
    "pytensor_ops",
]


@dataclass(frozen=True)
class Ops:
    """An array namespace and the special functions the densities need."""

    name: str
    xp: Any
    logsumexp: Any  # logsumexp(x, axis)
    log_softmax: Any  # log_softmax(x, axis)
    gammaln: Any
    one_hot: Any  # one_hot(codes, n_classes) -> float array (..., n_classes)
    expit: Any = special.expit  # the logistic sigmoid, elementwise


def _np_one_hot(codes, n_classes):
    return (np.asarray(codes)[..., None] == np.arange(n_classes)).astype(float)


NUMPY = Ops("numpy", np, special.logsumexp, special.log_softmax, special.gammaln, _np_one_hot)


def jax_ops() -> Ops:
    """The JAX namespace (imported on first use); its ``gammaln`` is :func:`gammaln_positive`."""
    import jax
    import jax.numpy as jnp

    return Ops(
        "jax",
        jnp,
        jax.scipy.special.logsumexp,
        jax.nn.log_softmax,
        lambda z: gammaln_positive(jnp, z),
        lambda codes, m: (codes[..., None] == jnp.arange(m)).astype(jnp.float64),
        jax.nn.sigmoid,
    )


def pytensor_ops() -> Ops:
    """The PyTensor namespace (imported on first use)."""
    import pytensor.tensor as pt
    from pytensor.tensor.special import log_softmax

    return Ops(
        "pytensor",
        pt,
        lambda x, axis: pt.logsumexp(x, axis=axis),
        lambda x, axis: log_softmax(x, axis=axis),
        pt.gammaln,
        lambda codes, m: pt.eq(codes[..., None], pt.arange(m)),
        pt.sigmoid,
    )


def materialized(ops: Ops, x):
    """``x`` itself; under JAX behind ``jax.lax.optimization_barrier``, so that XLA computes it
    once instead of fusing it into (and so recomputing it for) every element of a consumer it is
    broadcast into.

    For a per-expert term of a per-row density, e.g. the Student-t constant
    :func:`log_gamma_ratio` of nu, added to an (n, K) array. XLA's fusion treats elementwise ops
    as cheap and duplicates them into the consumer; in the compiled sampler's cached programs
    (``jax.export``), ``lgamma``/``digamma`` arrive expanded into ~100 elementwise ops each, so a
    fused K-sized constant costs n times its own work in every gradient (benchmarks/README.md,
    Student-t NUTS speed: ~1 ms instead of 0.08 ms per gradient at n = 1000).

    >>> import numpy as np
    >>> from bayesmoe.families._ops import NUMPY, materialized
    >>> x = np.arange(3.0)
    >>> materialized(NUMPY, x) is x
    True
    """
    if ops.name != "jax":
        return x
    import jax

    return jax.lax.optimization_barrier(x)


#: below this argument the log-gamma differences use ``gammaln`` itself; above it Stirling's
#: series (the correction's terms to z^-11 leave an error below 1/(156 z^13) < 1e-15)
_STIRLING_FROM = 10.0


def _stirling_correction(xp, z):
    """``gammaln(z) - ((z - 1/2) log z - z + log(2 pi) / 2)`` for z >= 10 (asymptotic series)."""
    r = 1.0 / z
    r2 = r * r
    return r * (
        1 / 12
        + r2 * (-1 / 360 + r2 * (1 / 1260 + r2 * (-1 / 1680 + r2 * (1 / 1188 - r2 * 691 / 360360))))
    )


def gammaln_positive(xp, z):
    """``gammaln(z)`` for z > 0 from elementary ops: Stirling's series at z >= 10, below it at
    ``z + 10`` less ``log(z (z + 1) ... (z + 9))``. Error below 1e-14, relative (absolute where
    ``|gammaln| < 1``), against scipy over 1e-8..1e8; its gradient against ``digamma`` likewise
    (tests/families/test_ops.py).

    The JAX densities use it instead of ``jax.scipy.special.gammaln``: in the stored programs
    (``jax.export``) ``lgamma``/``digamma`` arrive expanded into elementwise code that costs ~7x
    this per element (benchmarks/README.md, negative binomial NUTS speed), and counts' densities
    take it of every row.

    >>> import numpy as np
    >>> from scipy.special import gammaln
    >>> from bayesmoe.families._ops import gammaln_positive
    >>> z = np.array([1e-6, 0.5, 3.0, 9.99, 10.0, 250.0, 1e7])
    >>> bool(np.allclose(gammaln_positive(np, z), gammaln(z), rtol=1e-14, atol=0))
    True
    """
    big = z >= _STIRLING_FROM
    zb = xp.maximum(z, _STIRLING_FROM)
    zs = xp.minimum(z, _STIRLING_FROM)
    rising = zs
    for i in range(1, int(_STIRLING_FROM)):
        rising = rising * (zs + i)  # <= 20!/10! ~ 6.7e11 for zs <= 10: no overflow
    return xp.where(big, _stirling(xp, zb), _stirling(xp, zs + _STIRLING_FROM) - xp.log(rising))


def _stirling(xp, z):
    """``gammaln(z)`` for z >= 10 (Stirling's series with :func:`_stirling_correction`)."""
    return (
        (z - 0.5) * xp.log(z) - z + 0.5 * float(np.log(2.0 * np.pi)) + _stirling_correction(xp, z)
    )


def log_rising_scaled(ops: Ops, y, phi):
    """``gammaln(y + phi) - gammaln(phi) - y log(phi)`` for counts y >= 0 and phi > 0.

    Tends to 0 as phi -> inf (``sum_j log(1 + j / phi)``); the plain difference of gammaln loses
    its digits there (the negative binomial's Poisson limit), so phi >= 10 uses Stirling's series:
    ``(y + phi - 1/2) log1p(y / phi) - y + c(y + phi) - c(phi)``.

    >>> import numpy as np
    >>> from scipy.special import gammaln
    >>> from bayesmoe.families._ops import NUMPY, log_rising_scaled
    >>> y, phi = np.array([0.0, 3.0, 7.0]), np.array([0.5, 40.0, 1e12])
    >>> got = log_rising_scaled(NUMPY, y, phi)
    >>> want = gammaln(y + phi) - gammaln(phi) - y * np.log(phi)
    >>> bool(np.allclose(got[:2], want[:2], rtol=1e-13))
    True
    >>> bool(np.isclose(got[2], 21 / 1e12, rtol=1e-6))  # sum_j j / phi
    True
    """
    xp = ops.xp
    big = phi >= _STIRLING_FROM
    pb = xp.maximum(phi, _STIRLING_FROM)
    ps = xp.minimum(phi, _STIRLING_FROM)
    stirling = (
        (y + pb - 0.5) * xp.log1p(y / pb)
        - y
        + _stirling_correction(xp, y + pb)
        - _stirling_correction(xp, pb)
    )
    plain = ops.gammaln(y + ps) - ops.gammaln(ps) - y * xp.log(ps)
    return xp.where(big, stirling, plain)


def log_gamma_ratio(ops: Ops, nu):
    """``gammaln((nu + 1) / 2) - gammaln(nu / 2) - log(nu pi) / 2``: the Student-t density's
    constant, accurate as nu -> inf (where it tends to ``-log(2 pi) / 2``, the Gaussian's).

    >>> import numpy as np
    >>> from scipy.special import gammaln
    >>> from bayesmoe.families._ops import NUMPY, log_gamma_ratio
    >>> nu = np.array([0.7, 4.0, 60.0])
    >>> want = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
    >>> bool(np.allclose(log_gamma_ratio(NUMPY, nu), want, rtol=1e-13))
    True
    >>> float(log_gamma_ratio(NUMPY, np.array(1e300)) + 0.5 * np.log(2 * np.pi))
    0.0
    """
    xp = ops.xp
    x = 0.5 * nu
    big = x >= _STIRLING_FROM
    xb = xp.maximum(x, _STIRLING_FROM)
    xs = xp.minimum(x, _STIRLING_FROM)
    # gammaln(x + 1/2) - gammaln(x) = x log1p(1 / (2x)) + log(x) / 2 - 1/2 + c(x + 1/2) - c(x)
    stirling = (
        xb * xp.log1p(0.5 / xb)
        - 0.5
        + _stirling_correction(xp, xb + 0.5)
        - _stirling_correction(xp, xb)
        - 0.5 * float(np.log(2.0 * np.pi))
    )
    plain = ops.gammaln(xs + 0.5) - ops.gammaln(xs) - 0.5 * xp.log(2.0 * xs * np.pi)
    return xp.where(big, stirling, plain)
