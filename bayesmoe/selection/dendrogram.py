"""Dendrogram of mixing measures and the dendrogram selection criterion DSC (docs/math.md §7).

From one over-fitted measure with K̄ atoms, the closest pair of atoms is merged repeatedly::

    d(i, j) = p_i p_j / (p_i + p_j) · ( ‖(Δβ1, Δb)‖² + ‖(Δa, Δσ²)‖ )      (Gaussian experts)
    d(i, j) = p_i p_j / (p_i + p_j) · ‖(Δβ1, Δa, Δb)‖²                    (categorical experts)

(Poisson experts: the categorical form, ‖(Δβ1, Δa, Δb)‖², a [choice]; ``Family.dendrogram_linear``
names the plain-norm block of each family.)

with p = softmax(β0). The merged atom has weight p_i + p_j (β0 = log of it) and the p-weighted
average of the other parameters. The height h^(κ) is the merge distance going from κ to κ-1
atoms and

    DSC(κ) = -( h^(κ) + log(n) · ℓ̄_n(G^(κ)) ),      κ̂ = argmin over κ in {2, ..., K̄},

ℓ̄_n the average log-likelihood of the merged measure G^(κ), plugged in without refitting.

Distances are computed on the parameters exactly as stored in the measure (the user's units); the
weights p = softmax(β0) are meaningful for roughly centred inputs (docs/math.md, notation).

Three layers as elsewhere: :func:`merge_atoms` (numpy core), :func:`dendrogram` (xarray, any sample
dims), :func:`select_dsc` and :func:`plot_dendrogram`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr

from bayesmoe.families import get_family
from bayesmoe.gates import stored_gate
from bayesmoe.measure import (
    gate_covariates,
    log_likelihood,
    measure_arrays,
    measure_family,
    upgrade_measure,
)

__all__ = ["dendrogram", "merge_atoms", "plot_dendrogram", "select_dsc"]

#: observations x experts x levels x draws evaluated per chunk of the log-likelihood
_CHUNK_CELLS = 4_000_000


def merge_atoms(weights, atoms, *, linear: Sequence[int] | np.ndarray | None = None) -> dict:
    """Merge the closest pair of atoms repeatedly (numpy core of the dendrogram).

    Parameters
    ----------
    weights : array_like, shape (K,)
        Positive atom weights p_i.
    atoms : array_like, shape (K,) or (K, q)
        Atom locations θ_i.
    linear : sequence of int or bool mask, optional
        Columns of ``atoms`` that enter through a plain norm ‖Δθ_L‖; the others enter squared.
        The distance is p_i p_j/(p_i+p_j)·(‖Δθ_S‖² + ‖Δθ_L‖).

    Returns
    -------
    dict
        ``heights`` (K-1,) merge distances in merge order (from K to K-1 atoms first);
        ``linkage`` (K-1, 4) in scipy's format (cluster ids; new clusters numbered K, K+1, ...);
        ``levels`` a list, from K atoms down to 1, of ``(weights, atoms, members)`` with
        ``members`` the list of original atom indices in each merged atom.

    Examples
    --------
    The unit-test vector of docs/math.md §7:

    >>> import numpy as np
    >>> out = merge_atoms([.05, .30, .05, .30, .15, .15], [-2.1, -1.9, .05, -.05, 3.0, 3.2])
    >>> np.round(out["heights"], 10).tolist()
    [0.0004285714, 0.0017142857, 0.003, 0.6270089286, 3.4994169643]
    """
    p = np.asarray(weights, dtype=float).copy()
    th = np.asarray(atoms, dtype=float)
    th = th[:, None].copy() if th.ndim == 1 else th.copy()
    K = p.shape[0]
    if th.ndim != 2 or th.shape[0] != K:
        raise ValueError(f"`atoms` must have shape ({K},) or ({K}, q); got {np.shape(atoms)}.")
    if np.any(~np.isfinite(p)) or np.any(p <= 0) or np.any(~np.isfinite(th)):
        raise ValueError("`weights` must be finite and positive and `atoms` finite.")
    lin = np.zeros(th.shape[1], dtype=bool)
    if linear is not None:
        lin[np.asarray(linear)] = True
    ids = list(range(K))
    members = [[i] for i in range(K)]
    levels = [(p.copy(), th.copy(), [m[:] for m in members])]
    heights, linkage = [], []
    next_id = K
    while p.size > 1:
        diff = th[:, None, :] - th[None, :, :]
        sq = (diff[..., ~lin] ** 2).sum(-1)
        ln = np.sqrt((diff[..., lin] ** 2).sum(-1))
        D = p[:, None] * p[None, :] / (p[:, None] + p[None, :]) * (sq + ln)
        D[np.diag_indices_from(D)] = np.inf
        i, j = np.unravel_index(np.argmin(D), D.shape)
        i, j = min(i, j), max(i, j)
        h = float(D[i, j])
        pm = p[i] + p[j]
        th[i] = (p[i] * th[i] + p[j] * th[j]) / pm
        p[i] = pm
        members[i] = members[i] + members[j]
        linkage.append([ids[i], ids[j], h, len(members[i])])
        ids[i] = next_id
        next_id += 1
        p, th = np.delete(p, j), np.delete(th, j, axis=0)
        del ids[j], members[j]
        heights.append(h)
        levels.append((p.copy(), th.copy(), [m[:] for m in members]))
    return {
        "heights": np.asarray(heights),
        "linkage": np.asarray(linkage, float).reshape(-1, 4),
        "levels": levels,
    }


# ----- measure <-> atom vectors ---------------------------------------------------------------
def _atom_matrix(arr: dict, s: int, fam):
    """Atom vectors (K, q) of draw s — the gate slopes, then the family's canonical variables —
    and the mask of columns in the plain-norm block (``Family.dendrogram_linear``).
    """
    b1 = arr["beta1"][s]  # (d_gate, K)
    K = b1.shape[-1]
    cols, lin = [b1], [np.zeros(b1.shape[0], bool)]
    for name in fam.canonical_dims:
        v = arr[name][s].reshape(-1, K)
        cols.append(v)
        lin.append(np.full(v.shape[0], name in fam.dendrogram_linear))
    return np.vstack(cols).T, np.concatenate(lin)


def _unpack_atoms(th: np.ndarray, arr: dict, fam) -> dict:
    """Inverse of :func:`_atom_matrix` for K' atoms ``th`` (K', q): the canonical shapes of draw 0
    of ``arr`` with K' experts.
    """
    K = th.shape[0]
    d = arr["beta1"].shape[-2]
    out, i = {"beta1": th[:, :d].T}, d
    for name in fam.canonical_dims:
        event = arr[name].shape[1:-1]
        size = int(np.prod(event, dtype=int))
        out[name] = th[:, i : i + size].T.reshape((*event, K))
        i += size
    return out


def _validate_data(X, y, d):
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"`X` must have shape (n, {d}) to match the measure; got {X.shape}.")
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"`y` must have shape ({X.shape[0]},); got {y.shape}.")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y.astype(float)))):
        raise ValueError("`X` and `y` must be finite.")
    return X, y


def dendrogram(
    measure: xr.Dataset,
    X=None,
    y=None,
    *,
    gate: str | Callable | None = None,
    offset=None,
    gate_X=None,
    trials=None,
) -> xr.Dataset:
    """Dendrogram of a mixing measure, with the merged measures and DSC at every level.

    Parameters
    ----------
    measure : xarray.Dataset
        A mixing measure with K̄ experts, optionally with sample dims (e.g. chain, draw): each draw
        gets its own dendrogram. Inactive experts (``active`` False) are dropped per draw.
    X, y : array_like, optional
        Data for the average log-likelihood ℓ̄_n of each merged measure and for DSC.
    gate : str or callable, optional
        Gate transform, needed when the measure's gate is "custom".
    offset : array_like, shape (n,), optional
        Per-row log-exposures of families with a log link (for ℓ̄_n).
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of binomial experts (for ℓ̄_n).

    Returns
    -------
    xarray.Dataset
        Dim ``level`` with coords κ = K̄, ..., 1 (number of atoms). Variables: ``height`` (the
        merge distance from κ to κ-1 atoms; NaN at κ = 1), ``merge_left``/``merge_right`` (scipy
        cluster ids merged at that step; -1 at κ = 1), ``leaf_expert`` (the input expert index of
        each leaf id; -1 for padding), the merged measures ``beta0, beta1, a, b,
        (sigma2), active`` stacked along ``level`` (expert axis padded to K̄, ``active`` marks the κ
        live atoms), and when data are given ``mean_loglik`` and ``dsc`` (NaN at κ = 1) and
        ``selected`` (the DSC choice κ̂, per draw when there are sample dims;
        ``attrs["n_experts_selected"]`` too when there are none).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.selection.dendrogram import dendrogram
    >>> X, y, truth = simulate("S-B", n=500, random_seed=0)
    >>> dend = dendrogram(truth, X, y)
    >>> dend.sizes["level"], int(dend["selected"])
    (3, 3)
    """
    if not isinstance(measure, xr.Dataset) or "beta0" not in measure:
        raise TypeError("`measure` must be a mixing-measure Dataset (see bayesmoe.measure).")
    measure = upgrade_measure(measure)
    fam = get_family(measure_family(measure))
    sdims = [dm for dm in measure["beta0"].dims if dm != "expert"]
    arr = measure_arrays(measure, sdims)
    sshape = arr["sample_shape"]
    S = int(np.prod(sshape))
    d, Kbar = measure.sizes["feature"], measure.sizes["expert"]
    dg = measure.sizes["gate_feature"]
    M = measure.sizes.get("class", 0)
    flat = {
        k: v.reshape((S,) + v.shape[len(sshape) :])
        for k, v in arr.items()
        if isinstance(v, np.ndarray)
    }
    act_in = flat.get("active", np.ones((S, Kbar), bool))
    L = Kbar
    height = np.full((S, L), np.nan)
    left = np.full((S, L), -1, dtype=int)
    right = np.full((S, L), -1, dtype=int)
    leaf = np.full((S, Kbar), -1, dtype=int)
    out = {"beta0": np.zeros((S, L, Kbar)), "beta1": np.zeros((S, L, dg, Kbar))}
    for name in fam.canonical_dims:  # padding: 1 for positive variables (variances), else 0
        fill = 1.0 if name in fam.positive_canonical else 0.0
        out[name] = np.full((S, L, *flat[name].shape[1:]), fill)
    out["active"] = np.zeros((S, L, Kbar), bool)
    for s in range(S):
        keep = np.flatnonzero(act_in[s])
        if keep.size == 0:
            raise ValueError(f"draw {s} of `measure` has no active expert.")
        b0 = flat["beta0"][s][keep]
        # an atom whose intercept is ~745+ below the largest has weight 0 in floating point (a
        # near-step gate of an MM fit): floor it at the smallest normal double, so it merges
        # first, at height ~0, as a negligible atom should
        p = np.maximum(np.exp(b0 - b0.max()), np.finfo(float).tiny)
        p /= p.sum()
        th, lin = _atom_matrix(flat, s, fam)
        res = merge_atoms(p, th[keep], linear=lin)
        k0 = keep.size
        leaf[s, :k0] = keep
        for step, (pw, tw, _) in enumerate(res["levels"]):
            li = Kbar - k0 + step  # level index: κ = Kbar - li
            kk = pw.size
            out["beta0"][s, li, :kk] = np.log(pw)
            out["active"][s, li, :kk] = True
            for name, val in _unpack_atoms(tw, flat, fam).items():
                out[name][s, li, ..., :kk] = val
            if step < k0 - 1:
                height[s, li] = res["heights"][step]
                left[s, li], right[s, li] = res["linkage"][step, :2].astype(int)

    level = np.arange(Kbar, 0, -1)
    dims_of = {
        "beta0": ("level", "expert"),
        "beta1": ("level", "gate_feature", "expert"),
        **{k: ("level", *dims) for k, dims in fam.canonical_dims.items()},
        "active": ("level", "expert"),
    }
    sd = tuple(sdims)

    def _v(x, core):
        return (sd + core, x.reshape(sshape + x.shape[1:]))

    data_vars = {k: _v(v, dims_of[k]) for k, v in out.items()}
    data_vars["height"] = _v(height, ("level",))
    data_vars["merge_left"] = _v(left, ("level",))
    data_vars["merge_right"] = _v(right, ("level",))
    data_vars["leaf_expert"] = _v(leaf, ("expert",))
    coords = {
        "level": level,
        "expert": np.arange(Kbar),
        "feature": measure["feature"].values,
        "gate_feature": measure["gate_feature"].values,
    }
    if fam.has_classes:
        coords["class"] = measure["class"].values
    attrs = {k: measure.attrs[k] for k in ("family", "gate", "temperature") if k in measure.attrs}
    attrs["description"] = "dendrogram of mixing measures (docs/math.md §7)"

    if X is not None or y is not None:
        if X is None or y is None:
            raise ValueError("Give both `X` and `y` (or neither) to compute mean_loglik and DSC.")
        X, y = _validate_data(X, y, d)
        Z = gate_covariates(measure, X, gate_X)
        n = X.shape[0]
        g = stored_gate(measure.attrs.get("gate"), gate)
        mll = np.full((S, L), np.nan)
        chunk = max(1, _CHUNK_CELLS // max(1, n * Kbar * L * max(M, 1)))
        for c0 in range(0, S, chunk):
            sl = slice(c0, c0 + chunk)
            pd = {k: v[sl] for k, v in out.items()}
            pd["temperature"] = measure.attrs.get("temperature", 1.0)
            pd["family"] = fam.name
            with np.errstate(all="ignore"):
                mll[sl] = (
                    log_likelihood(pd, X, y, gate=g, offset=offset, gate_X=Z, trials=trials) / n
                )
        valid = out["active"].any(-1)
        mll = np.where(valid, mll, np.nan)
        dsc = -(height + np.log(n) * mll)
        dsc[:, level < 2] = np.nan
        with np.errstate(invalid="ignore"):
            allnan = np.all(np.isnan(dsc), axis=1)
        pick = np.argmin(np.where(np.isnan(dsc), np.inf, dsc), axis=1)
        selected = np.where(allnan, 1, level[pick])
        data_vars["mean_loglik"] = _v(mll, ("level",))
        data_vars["dsc"] = _v(dsc, ("level",))
        data_vars["selected"] = (sd, selected.reshape(sshape))
        attrs["n_obs"] = int(n)
        if not sd:
            attrs["n_experts_selected"] = int(selected[0])
    for dm in sd:
        coords[dm] = measure[dm].values
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def select_dsc(
    measure: xr.Dataset, X, y, *, gate: str | Callable | None = None, offset=None, gate_X=None
):
    """Number of experts chosen by DSC: an int, or a DataArray over the sample dims.
    ``offset`` and ``gate_X`` as in :func:`dendrogram`.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.selection.dendrogram import select_dsc
    >>> X, y, truth = simulate("S-B", n=500, random_seed=0)
    >>> select_dsc(truth, X, y)
    3
    """
    dend = dendrogram(measure, X, y, gate=gate, offset=offset, gate_X=gate_X)
    sel = dend["selected"]
    if sel.ndim == 0:
        return int(sel)
    sel.name = "n_experts_dsc"
    return sel


def plot_dendrogram(dend, X=None, y=None, *, ax=None, gate=None, **kwargs):
    """Plot a dendrogram (a :func:`dendrogram` Dataset without sample dims, or a measure).

    The selected level (when DSC was computed) is drawn as a dashed horizontal line between the
    heights of the levels κ̂ and κ̂+1. Extra keyword arguments go to
    :func:`scipy.cluster.hierarchy.dendrogram`. Returns the matplotlib Axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayesmoe.data import simulate
    >>> X, y, truth = simulate("S-B", n=300, random_seed=0)
    >>> ax = plot_dendrogram(truth, X, y)
    """
    import matplotlib.pyplot as plt
    from scipy.cluster import hierarchy

    if "height" not in dend:
        dend = dendrogram(dend, X, y, gate=gate)
    if dend["height"].ndim != 1:
        raise ValueError(
            "plot_dendrogram needs one dendrogram; select a draw first "
            "(e.g. dend.isel(chain=0, draw=0))."
        )
    if ax is None:
        _, ax = plt.subplots()
    ok = dend["merge_left"].values >= 0
    h = dend["height"].values[ok]
    Z = np.column_stack(
        [dend["merge_left"].values[ok], dend["merge_right"].values[ok], h, np.zeros(ok.sum())]
    )
    K = Z.shape[0] + 1
    size = {i: 1 for i in range(K)}
    for r, row in enumerate(Z):
        size[K + r] = size[int(row[0])] + size[int(row[1])]
        row[3] = size[K + r]
    # scipy draws merges at their heights; a non-monotone sequence would cross, so plot the
    # running maximum and keep the true heights in the returned Dataset.
    Z[:, 2] = np.maximum.accumulate(Z[:, 2])
    kwargs.setdefault("labels", [str(e) for e in dend["leaf_expert"].values[:K]])
    hierarchy.dendrogram(Z, ax=ax, **kwargs)
    if "selected" in dend:
        k = int(dend["selected"])
        levels = dend["level"].values[ok]
        hi = Z[levels == k, 2]
        lo = Z[levels == k + 1, 2]
        if hi.size:
            cut = 0.5 * (hi[0] + (lo[0] if lo.size else 0.0))
            ax.axhline(cut, ls="--", color="0.5", label=f"DSC: K = {k}")
            ax.legend()
    ax.set_xlabel("expert (atoms of the over-fitted measure)")
    ax.set_ylabel("merge height")
    return ax
