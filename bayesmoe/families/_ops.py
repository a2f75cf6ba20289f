"""Array namespaces the families' densities are written against: numpy, jax.numpy, PyTensor.

A family writes its log density once, as a function of an :class:`Ops`; every backend passes its
own: the MM fitter, prediction and diagnostics numpy (:data:`NUMPY`), the compiled sampler
:func:`jax_ops`, the PyMC model :func:`pytensor_ops`. Only operations the three share are used:
``xp.einsum``, ``xp.exp``/``log``, ``xp.concatenate``, ``xp.zeros_like``, indexing with ``None``
and ``...``, plus the three special functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["NUMPY", "Ops", "jax_ops", "pytensor_ops"]


@dataclass(frozen=True)
class Ops:
    """An array namespace and the special functions the densities need."""

    name: str
    xp: Any
    logsumexp: Any  # logsumexp(x, axis)
    log_softmax: Any  # log_softmax(x, axis)
    gammaln: Any
    one_hot: Any  # one_hot(codes, n_classes) -> float array (..., n_classes)


def _np_one_hot(codes, n_classes):
    return (np.asarray(codes)[..., None] == np.arange(n_classes)).astype(float)


NUMPY = Ops("numpy", np, special.logsumexp, special.log_softmax, special.gammaln, _np_one_hot)


def jax_ops() -> Ops:
    """The JAX namespace (imported on first use)."""
    import jax
    import jax.numpy as jnp

    return Ops(
        "jax",
        jnp,
        jax.scipy.special.logsumexp,
        jax.nn.log_softmax,
        jax.scipy.special.gammaln,
        lambda codes, m: (codes[..., None] == jnp.arange(m)).astype(jnp.float64),
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
    )
