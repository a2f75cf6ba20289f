"""Constant mixing weights: a gate without covariates (a mixture of regressions).

With a gate design of zero columns the logits are ``beta0 / temperature`` for every row, so the
weights ``softmax(beta0)`` do not depend on the covariates: flexmix's default (no concomitant
variables), MoEClust's ``gating = ~ 1``, brms' ``theta`` without predictors. The experts keep
their own covariates. Asked for by ``gate_X`` with zero columns (CLI ``--gate-features none``).
"""

from __future__ import annotations

from bayesmoe.families._ops import NUMPY, Ops
from bayesmoe.gates.softmax import SoftmaxGate

__all__ = ["CONSTANT", "ConstantGate"]


class ConstantGate(SoftmaxGate):
    """Mixing weights ``softmax(beta0)``, the same for every row."""

    name = "constant"
    covariates = False
    description = "constant mixing weights (no gate covariates)"

    def transform(self, Z, ops: Ops = NUMPY):
        return Z[..., :0]  # no columns whatever the input: the weights read none


CONSTANT = ConstantGate()
