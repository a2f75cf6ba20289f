"""The MM fitter's k-means starts: the column-by-column distances give the labels of the
broadcast formula bit for bit (so that the fits of a seed did not change when it was sped up)."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmoe.inference.mle.mm_starts import _kmeans_labels, _sq_dist


def _broadcast_kmeans(F, K, S, rng, n_lloyd=5):
    """The k-means of the fitter before it was sped up (one (S, n, K, q) temporary per step)."""
    n = F.shape[0]
    idx = rng.integers(n, size=S)
    C = F[idx][:, None, :]
    d2 = ((F[None] - C[:, 0:1]) ** 2).sum(-1)
    for _ in range(1, K):
        cum = np.cumsum(d2, axis=1)
        u = rng.uniform(size=(S, 1)) * cum[:, -1:]
        pick = np.minimum((cum < u).sum(1), n - 1)
        newc = F[pick][:, None, :]
        C = np.concatenate([C, newc], axis=1)
        d2 = np.minimum(d2, ((F[None] - newc) ** 2).sum(-1))
    for _ in range(n_lloyd):
        z = ((F[None, :, None, :] - C[:, None]) ** 2).sum(-1).argmin(-1)
        oh = np.eye(K)[z]
        cnt = oh.sum(1)
        newC = np.einsum("snk,nq->skq", oh, F) / np.maximum(cnt, 1)[..., None]
        C = np.where(cnt[..., None] > 0, newC, C)
    return ((F[None, :, None, :] - C[:, None]) ** 2).sum(-1).argmin(-1)


@pytest.mark.parametrize("q", [1, 3, 7, 8, 11])
def test_kmeans_labels_equal_the_broadcast_formula(q):
    gen = np.random.default_rng(q)
    for trial in range(40):
        n, K, S = int(gen.integers(5, 300)), int(gen.integers(2, 6)), int(gen.integers(1, 10))
        F = gen.standard_normal((n, q)) * gen.uniform(0.1, 10, q)
        if trial % 2:
            F = np.round(F, 1)  # ties between distances
        a, b = np.random.default_rng(trial), np.random.default_rng(trial)
        np.testing.assert_array_equal(_kmeans_labels(F, K, S, a), _broadcast_kmeans(F, K, S, b))
        assert a.random() == b.random()  # the same draws were taken


def test_distances_are_the_floats_of_numpys_sum():
    gen = np.random.default_rng(0)
    for q in (2, 7, 9):
        F = gen.standard_normal((500, q)) * 1e3
        C = gen.standard_normal((4, 3, q))  # 4 starts, 3 centres
        ref = ((F[None, None] - C[:, :, None, :]) ** 2).sum(-1)
        np.testing.assert_array_equal(_sq_dist(F, np.ascontiguousarray(F.T), C), ref)
    # twin: from 8 columns on, numpy's blocked sum orders the terms otherwise; a plain
    # column-by-column sum gives other floats (the reason _sq_dist calls numpy there)
    F = gen.standard_normal((500, 9)) * 1e3
    c = gen.standard_normal((4, 9))
    plain = sum((F[None, :, j] - c[:, j : j + 1]) ** 2 for j in range(9))
    assert not np.array_equal(plain, ((F[None] - c[:, None, :]) ** 2).sum(-1))
