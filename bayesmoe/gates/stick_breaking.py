"""The Dirichlet-process gate's stick-breaking weights (docs/math.md §4).

Truncated at K slots: ``v_k ~ Beta(1, alpha)`` for k < K, ``w_k = v_k prod_{j<k} (1 - v_j)`` and
``w_K = prod_{j<K} (1 - v_j)``; the gate is the softmax of ``(beta1 . M(z) + log w) /
temperature``: the stick-breaking weights are the gate's intercepts, the slopes stay those of a
softmax gate on M(z) (Ishwaran & James 2001 truncation; the covariate slopes after Xu et al.).
"""

from __future__ import annotations

from bayesmoe.families._ops import NUMPY, Ops
from bayesmoe.gates.softmax import SoftmaxGate

__all__ = ["STICK_BREAKING", "StickBreakingGate"]


class StickBreakingGate(SoftmaxGate):
    """Softmax gate whose intercepts are the log stick-breaking weights."""

    name = "stick-breaking"
    description = "Dirichlet-process (stick-breaking) mixing weights, softmax on the covariates"

    def log_intercepts(self, v, ops: Ops = NUMPY):
        """``log w`` of the K slots from the K - 1 sticks ``v`` (last axis), summing to 1.

        Examples
        --------
        >>> import numpy as np
        >>> from bayesmoe.gates.stick_breaking import STICK_BREAKING
        >>> np.exp(STICK_BREAKING.log_intercepts(np.array([0.5, 0.5]))).round(3).tolist()
        [0.5, 0.25, 0.25]
        """
        xp = ops.xp
        lead = v[..., :1] * 0.0
        log_rest = xp.concatenate([lead, xp.cumsum(xp.log1p(-v), axis=-1)], axis=-1)
        return xp.concatenate([xp.log(v), lead], axis=-1) + log_rest


STICK_BREAKING = StickBreakingGate()
