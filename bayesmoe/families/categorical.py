"""Multinomial-logistic (classification) experts: ``P(y = s | x, k) = softmax_s(a_ks . x + b_ks)``
(docs/math.md §1.2).

Free parameters (standardised scale): ``a_std[feature, class_free, expert]`` ~ N(0, expert_slope)
and ``b_std[class_free, expert]`` ~ N(0, expert_intercept); the last class is the reference, its
slopes and intercept pinned to 0. Canonical (measure) variables: ``a[feature, class, expert]``,
``b[class, expert]`` with the reference class's zeros. ``y`` holds class codes 0..M-1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bayesmoe._validation import check_class_response
from bayesmoe.families._ops import Ops
from bayesmoe.families.base import (
    Family,
    Param,
    Transform,
    linear_eta,
    linear_to_standard,
    linear_to_user,
)

__all__ = ["CATEGORICAL", "Categorical"]


def _pad_reference(xp, v, axis: int):
    """Append the reference class's zeros along ``axis`` (negative, the class axis)."""
    index = [slice(None)] * v.ndim
    index[axis] = slice(0, 1)
    return xp.concatenate([v, xp.zeros_like(v[tuple(index)])], axis=axis)


def sample_classes(logits: np.ndarray, rng: np.random.Generator, axis: int = -1) -> np.ndarray:
    """One categorical draw per row of softmax(logits) along ``axis`` (inverse CDF)."""
    logits = np.moveaxis(np.asarray(logits, dtype=float), axis, -1)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    u = rng.uniform(size=p.shape[:-1] + (1,))
    return np.minimum((u > np.cumsum(p, -1)).sum(-1), p.shape[-1] - 1)


class Categorical(Family):
    """Multinomial-logistic experts (see the module docstring)."""

    name = "categorical"
    description = "multinomial-logistic experts (class labels)"
    params = (
        Param("a", ("feature", "class_free"), "expert_slope"),
        Param("b", ("class_free",), "expert_intercept", intercept=True),
    )
    canonical_dims: ClassVar[dict] = {"a": ("feature", "class", "expert"), "b": ("class", "expert")}
    trace_dims: ClassVar[dict] = canonical_dims
    trace_descriptions: ClassVar[dict] = {
        "a": "expert slope: change in the log-odds of the class against the reference (last) "
        "class per unit of the feature, within the expert",
        "b": "expert intercept: log-odds of the class against the reference (last) class at "
        "x = 0, within the expert",
    }
    reference_index: ClassVar[dict] = {"class": -1}
    has_classes = True
    n_event = 1
    signature = "(k),(m,k)->()"
    y_dtype = "int64"
    numba_kernel = "categorical"

    def check_response(self, y, n_obs, classes=None):
        return check_class_response(y, n_obs, classes)

    def example_response(self, n, n_classes=0):
        return np.arange(n) % n_classes

    # ----- parameters -----------------------------------------------------------------------
    def canonical_from_free(self, ops: Ops, free):
        xp = ops.xp
        return {
            "a": _pad_reference(xp, free["a_std"], -2),
            "b": _pad_reference(xp, free["b_std"], -2),
        }

    def free_from_canonical(self, canon):
        a, b = np.asarray(canon["a"], float), np.asarray(canon["b"], float)
        # softmax over classes is invariant to subtracting the reference class's logits
        return {
            "a_std": (a - a[..., -1:, :])[..., :-1, :],
            "b_std": (b - b[..., -1:, :])[..., :-1, :],
        }

    def to_user(self, xp, canon, tr: Transform):
        a, b = linear_to_user(xp, canon["a"], canon["b"], tr, 1)
        return {"a": a, "b": b}

    def to_standard(self, canon, tr: Transform):
        a, b = linear_to_standard(canon["a"], canon["b"], tr, 1)
        return {"a": a, "b": b}

    def atom_blocks(self, canon, S, K):
        """Slopes and intercepts less the reference class's (the softmax gauge), that class
        dropped.
        """
        reduced = self.free_from_canonical(canon)
        return super().atom_blocks({"a": reduced["a_std"], "b": reduced["b_std"]}, S, K)

    def atom_labels(self, feature, classes=None):
        cls = list(classes)[:-1]
        return {
            "a": [f"a[{f},{c}]" for f in feature for c in cls],
            "b": [f"b[{c}]" for c in cls],
        }

    # ----- density --------------------------------------------------------------------------
    def predictors(self, ops: Ops, canon, X, tr: Transform, data=None):
        """(logits (..., n, M, K),)."""
        return (linear_eta(ops.xp, X, canon["a"], canon["b"], 1),)

    def component_log_prob(self, ops: Ops, y, logits):
        n_classes = logits.shape[-2]
        onehot = ops.one_hot(y, n_classes)  # (n, M)
        return (ops.log_softmax(logits, -2) * onehot[..., None]).sum(-2)

    def draw(self, rng, k, logits):
        logits = np.broadcast_to(logits, k.shape + np.shape(logits)[-2:])
        chosen = np.take_along_axis(logits, k[..., None, None], -1)[..., 0]  # (..., n, M)
        return sample_classes(chosen, rng)

    def mean(self, logits):
        z = logits - logits.max(-2, keepdims=True)
        p = np.exp(z)
        return p / p.sum(-2, keepdims=True)

    # ----- reversible jump ----------------------------------------------------------------------
    rj_births = ("anchors", "normal")

    def rj_birth_experts(self, Xs, y, w, data, n_classes=0):
        """Five weighted Böhning steps of a multinomial logit; sd twice the standard error."""
        n, d = Xs.shape
        M = n_classes
        A = np.column_stack([Xs, np.ones(n)])  # columns: a (d), b
        Y = np.eye(M)[np.asarray(y, dtype=int)]
        V = np.zeros((d + 1, M - 1))  # rows: a (d), b; reference class pinned
        H = A.T @ (A * w[:, None]) + 1e-6 * np.eye(d + 1)
        H_inv = np.linalg.inv(H)
        B = 2.0 * (np.eye(M - 1) + np.ones((M - 1, M - 1)))  # Böhning (I - 11'/M)^-1 scaled
        for _ in range(5):
            logits = np.column_stack([A @ V, np.zeros(n)])
            z = logits - logits.max(1, keepdims=True)
            P = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            V = V + H_inv @ (A.T @ (w[:, None] * (Y - P)[:, : M - 1])) @ B
        se = np.sqrt(np.diag(H_inv) * np.sum(w * w))
        mean = np.r_[V[:d].reshape(-1), V[d]]
        sd = np.r_[np.repeat(2.0 * se[:d], M - 1), np.full(M - 1, 2.0 * se[d])]
        return mean, sd

    # ----- MM ---------------------------------------------------------------------------------
    def mm_blocks(self, D, K, M):
        return {"V": (D, M - 1, K)}

    def mm_unpack(self, blocks):
        V = _pad_reference(np, blocks["V"], -2)  # (S, D, M, K)
        return {"a": V[:, 1:], "b": V[:, 0]}

    def mm_pack(self, canon):
        V = np.concatenate([np.asarray(canon["b"])[:, None], np.asarray(canon["a"])], axis=1)
        return {"V": (V - V[:, :, -1:, :])[:, :, :-1, :]}

    def mm_prepare(self, prob, M: int) -> None:
        """The constant pieces of the Böhning steps (one-hot y, eigen-decomposition of
        I - 11ᵀ/M).
        """
        from bayesmoe.inference.mle.mm_updates import boehning_eig

        prob.Y1 = np.eye(M)[prob.y]
        prob.cls_mu, prob.cls_U = boehning_eig(M)

    def mm_init_features(self, y, n_classes):
        return np.eye(n_classes)[np.asarray(y, dtype=int)]

    def mm_step(self, prob, blocks, tau, newton):
        from bayesmoe.inference.mle import mm_updates as mu

        V = _pad_reference(np, blocks["V"], -2)
        step = mu.newton_categorical_step if newton >= 2 else mu.categorical_step
        return {"V": step(prob, V, tau)[:, :, :-1, :]}


CATEGORICAL = Categorical()
