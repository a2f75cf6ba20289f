"""Starts of the MM fitter (docs/math.md §8.3): k-means-like and random partitions of (x, y)
fitted by a few M-steps, and the maps between a mixing measure and the packed parameter vector.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmoe.inference.mle import mm_updates as mu
from bayesmoe.measure import MeasureParts, measure_family, measure_parts, upgrade_measure
from bayesmoe.scaling import Standardizer


def _sq_dist(F: np.ndarray, Ft: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared distances (S, K, n) of the rows of F (n, q; ``Ft`` its contiguous transpose) to
    the centres ``C`` (S, K, q): the floats of ``((F - c) ** 2).sum(-1)``. Below 8 columns numpy
    sums them one after another, so they are summed column by column here, without the
    (S, K, n, q) temporary; from 8 on, numpy's blocked summation order is kept by calling it.
    """
    if Ft.shape[0] >= 8:
        return ((F[None, None] - C[:, :, None, :]) ** 2).sum(-1)
    out = Ft[0][None, None] - C[:, :, 0:1]
    np.square(out, out=out)
    for j in range(1, Ft.shape[0]):
        t = Ft[j][None, None] - C[:, :, j : j + 1]
        out += np.square(t, out=t)
    return out


def _kmeans_labels(F: np.ndarray, K: int, S: int, rng, n_lloyd: int = 5) -> np.ndarray:
    """k-means++ seeding plus a few Lloyd steps, vectorised over S starts; labels (S, n)."""
    n = F.shape[0]
    Ft = np.ascontiguousarray(F.T)
    idx = rng.integers(n, size=S)
    C = F[idx][:, None, :]  # (S, 1, q)
    d2 = _sq_dist(F, Ft, C)[:, 0]  # (S, n)
    for _ in range(1, K):
        cum = np.cumsum(d2, axis=1)
        u = rng.uniform(size=(S, 1)) * cum[:, -1:]
        pick = np.minimum((cum < u).sum(1), n - 1)
        newc = F[pick][:, None, :]
        C = np.concatenate([C, newc], axis=1)
        d2 = np.minimum(d2, _sq_dist(F, Ft, newc)[:, 0])
    ks, base, z_old = np.arange(K), K * np.arange(S)[:, None], None
    for _ in range(n_lloyd):
        z = _sq_dist(F, Ft, C).argmin(1)  # (S, n): the nearest centre, first on ties
        if z_old is not None and np.array_equal(z, z_old):
            return z  # the same labels give the same centres: every later step repeats this one
        oh = (z[..., None] == ks).astype(float)  # (S, n, K) one-hot
        cnt = np.bincount((z + base).ravel(), minlength=S * K).reshape(S, K).astype(float)
        newC = np.einsum("snk,nq->skq", oh, F) / np.maximum(cnt, 1)[..., None]
        C = np.where(cnt[..., None] > 0, newC, C)
        z_old = z
    return _sq_dist(F, Ft, C).argmin(1)


def _initial_theta(prob: mu.Problem, S: int, rng, n_inner: int = 5, engine=None) -> np.ndarray:
    """Random starts: 2/3 from k-means-like partitions of (x, y), the rest random partitions."""
    lay = prob.layout
    n, K = prob.Xt.shape[0], lay.K
    if K == 1 or S == 0:
        z = np.zeros((S, n), dtype=int)
    else:
        F = np.column_stack([prob.Xt[:, 1:], lay.fam.mm_init_columns(prob)])
        n_km = int(np.ceil(2 * S / 3))
        z = np.concatenate(
            [_kmeans_labels(F, K, n_km, rng), rng.integers(K, size=(S - n_km, n))], axis=0
        )
    eps = 0.2  # smoothing of the hard partitions so that no expert starts empty
    tau = (1 - eps) * np.eye(K)[z] + eps / K
    theta = np.zeros((S, lay.size))
    if engine is not None:  # M-steps at fixed responsibilities: fit the partition
        return engine.init_fit(theta, tau, n_inner)
    for _ in range(n_inner):
        theta = mu.mstep(prob, theta, tau, newton=0)
    return theta


def _theta_from_measure(G: xr.Dataset, st: Standardizer, lay: mu.Layout, K: int, d: int):
    if not isinstance(G, xr.Dataset):
        raise TypeError(
            f"each of `starts` must be a mixing-measure Dataset; got {type(G).__name__}."
        )
    G = upgrade_measure(G)
    dg = lay.gate_D - 1
    sizes = (G.sizes.get("expert"), G.sizes.get("feature"), G.sizes.get("gate_feature"))
    if measure_family(G) != lay.family or sizes != (K, d, dg):
        raise ValueError(
            f"each of `starts` must be a {lay.family} measure with {K} experts, {d} features and "
            f"{dg} gate features; got {measure_family(G)} with sizes {dict(G.sizes)}."
        )
    if G["beta0"].ndim != 1:
        raise ValueError("`starts` measures must not have sample dims; select one draw first.")
    Gs = st.to_standard(G)
    W = np.vstack([Gs.beta0.values[None], Gs.beta1.transpose("gate_feature", "expert").values])
    p = {"W": (W - W[:, -1:])[None]}
    fam = lay.fam
    canon = {k: Gs[k].transpose(*dims).values[None] for k, dims in fam.canonical_dims.items()}
    p.update(fam.mm_pack(canon))
    return lay.pack(p)


def _measure_from_theta(theta_row, lay, st, gate_name, feature, gate_feature) -> xr.Dataset:
    """The fitted measure in the user's units (the Dataset of :func:`_parts_from_theta`)."""
    return _parts_from_theta(theta_row, lay, st, gate_name, feature, gate_feature).dataset()


def _parts_from_theta(theta_row, lay, st, gate_name, feature, gate_feature) -> MeasureParts:
    """The fitted measure in the user's units: :meth:`Standardizer.to_user`'s affine map done on
    the numpy arrays (the xarray arithmetic of ``to_user`` cost ~10 ms per fit, more than the
    whole iteration at n = 200), gate in sum-to-zero form; checked, but not yet a Dataset
    (:class:`~bayesmoe.measure.MeasureParts`: ``MMResult.measure_`` makes it on first access).
    """
    p = lay.unpack(theta_row[None])
    W = p["W"][0]
    sz, cz = st.z_scale[:, None], st.z_center[:, None]
    beta1 = W[1:] / sz
    beta0 = W[0] - (W[1:] * cz / sz).sum(0)
    beta0 = beta0 - beta0.mean()
    beta1 = beta1 - beta1.mean(-1, keepdims=True)
    fam = lay.fam
    canon = {k: v[0] for k, v in fam.mm_unpack(lay.experts(p)).items()}
    user = fam.to_user(np, canon, st.transform)
    return measure_parts(
        beta0,
        beta1,
        user,
        family=fam.name,
        gate=gate_name,
        feature=feature,
        gate_feature=gate_feature,
    )
