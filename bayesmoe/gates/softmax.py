"""Softmax gates: the standard gate on z and the modified gate on M(z) (docs/math.md §1.3).

``g_k(z) = softmax_k((beta1 . M(z) + beta0) / temperature)`` with M the identity (the standard
softmax gate), ``tanh``, the logistic ``sigmoid``, or a user's elementwise callable on PyTensor
tensors (a non-affine M; Nguyen et al.'s modified softmax gate). The callable is not stored: a
measure records ``"custom"`` and the user passes the callable again to evaluate it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bayesmoe.families._ops import NUMPY, Ops
from bayesmoe.gates.base import Gate

__all__ = ["SIGMOID", "SOFTMAX", "TANH", "CustomGate", "ModifiedSoftmaxGate", "SoftmaxGate"]


class SoftmaxGate(Gate):
    """The standard softmax gate: M is the identity."""

    name = "softmax"
    description = "softmax gate on the covariates"

    def transform(self, Z, ops: Ops = NUMPY):
        return Z


class ModifiedSoftmaxGate(SoftmaxGate):
    """A softmax gate on M(z) with a named elementwise M (``tanh``, ``sigmoid``)."""

    def __init__(self, name: str, fn: Callable):
        self.name, self._fn = name, fn
        self.description = f"softmax gate on {name}(covariates)"

    def transform(self, Z, ops: Ops = NUMPY):
        return self._fn(ops, Z)


class CustomGate(SoftmaxGate):
    """A softmax gate on M(z) for a user's elementwise callable on PyTensor tensors.

    On numpy arrays the callable is applied as it is; a PyTensor expression it returns is
    evaluated. JAX never sees it: the compiled density reads the transformed data.
    """

    name = "custom"
    description = "softmax gate on a user transform of the covariates"

    def __init__(self, fn: Callable):
        self.fn = fn

    def transform(self, Z, ops: Ops = NUMPY):
        out = self.fn(Z)
        if ops is NUMPY or ops.name == "numpy":
            if hasattr(out, "eval"):  # a PyTensor expression from a tensor callable
                out = out.eval()
            return np.asarray(out, dtype=float)
        return out


SOFTMAX = SoftmaxGate()
TANH = ModifiedSoftmaxGate("tanh", lambda ops, z: ops.xp.tanh(z))
SIGMOID = ModifiedSoftmaxGate("sigmoid", lambda ops, z: ops.expit(z))
