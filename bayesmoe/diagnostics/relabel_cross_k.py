"""Relabel experts *across* numbers of experts: stable expert rows for a random-K posterior.

:func:`bayesmoe.inference.rjmcmc.relabel_at_k` aligns the draws of one K. To follow "expert 2"
through draws with different K, every draw's active experts are mapped onto one common set of
*reference atoms*:

1. **Atoms** are the canonical atoms of docs/math.md §4 (:func:`~bayesmoe.diagnostics.voronoi.\
canonical_atoms`): masses ``p = softmax(beta0 / tau)`` over the active experts, gate slopes centred
   by their mass-weighted mean (stable when an atom splits into copies), expert parameters
   (``a, b``; multinomial: reference class subtracted), and ``log sigma2``. Features are scaled by
   their pooled sd over all active atoms (a label-invariant scale, as in
   :func:`~bayesmoe.diagnostics.relabel.relabel_permutations`).
2. **Reference atoms**: the draws at the modal K are pivot-relabelled and averaged (K̂ rows).
   Then for K̂+1, K̂+2, ... (each K that occurs): its draws are matched to the current references
   by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``, one atom per reference);
   the atoms left unmatched are pivot-relabelled among themselves and their mean becomes the new
   extra reference rows. Draws with fewer experts than the modal K just leave rows empty.
3. **Refinement**: every draw is matched to all references (one-to-one, minimum total scaled
   squared distance: a Voronoi assignment under the constraint that two atoms of one draw never
   share a row) and the references are re-estimated as the mean of their matched atoms, until no
   assignment changes (Lloyd iterations; the total cost cannot increase).

The result keeps ``R`` = max K rows, ordered by how often they are present; a row absent from a
draw is NaN there, ``present`` says where. :func:`cross_k_summary` tabulates each row: % of draws
where it is present, its mean mass, and posterior means / sds of its parameters given presence.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.diagnostics.relabel import relabel_permutations
from bayesmoe.diagnostics.voronoi import canonical_atoms
from bayesmoe.families import get_family
from bayesmoe.measure import measure_family

__all__ = ["cross_k_assignments", "cross_k_summary", "relabel_cross_k"]

_SAMPLE_DIMS = ("chain", "draw")


def _scaled_atoms(G: xr.Dataset):
    """(theta (S, K, D) scaled, p (S, K), active (S, K), column names) of a measure."""
    for d in _SAMPLE_DIMS:
        if d not in G["beta0"].dims:
            raise ValueError(
                f"The posterior needs sample dims {_SAMPLE_DIMS}; `beta0` has dims "
                f"{G['beta0'].dims}. Pass the DataTree from sample_random_k (or sample)."
            )
    at = canonical_atoms(G, list(_SAMPLE_DIMS))
    fam = get_family(measure_family(G))
    labels = fam.atom_labels(G["feature"].values, G["class"].values if "class" in G else None)
    blocks, names = [at["beta1"]], [f"beta1[{f}]" for f in G["feature"].values]
    for name in fam.canonical_dims:  # positive blocks (variances) on the log scale
        positive = name in fam.positive_canonical
        blocks.append(np.log(at[name]) if positive else at[name])
        names += [f"log_{lab}" if positive else lab for lab in labels[name]]
    theta = np.concatenate(blocks, axis=-1)
    act = at["active"]
    if not np.all(np.isfinite(theta[act])):
        raise ValueError("The active atoms contain NaN or inf; drop those draws first.")
    sd = theta[act].std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return theta / sd, at["p"], act, names, sd


def _packed(theta, active, rows):
    """Active atoms of the draws ``rows``, packed first: (len(rows), K, D) and slot indices."""
    slots = np.argsort(~active[rows], axis=1, kind="stable")
    return np.take_along_axis(theta[rows], slots[..., None], axis=1), slots


def _match(z: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, float]:
    """Hungarian matching of the atoms ``z`` (k, D) to reference rows ``ref`` (R, D).

    Returns ``row`` (k,) (the reference row of each atom, -1 when k > R and it is left over)
    and the total squared distance of the matched pairs.
    """
    cost = ((z[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    i, j = linear_sum_assignment(cost)
    row = np.full(z.shape[0], -1, dtype=np.intp)
    row[i] = j
    return row, float(cost[i, j].sum())


def cross_k_assignments(
    theta, active, *, reference_k: int | None = None, max_iter: int = 20, random_seed=None
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy core of :func:`relabel_cross_k`.

    Parameters
    ----------
    theta : numpy.ndarray, shape (S, K_max, D)
        Atoms per draw and slot (already scaled).
    active : numpy.ndarray of bool, shape (S, K_max)
    reference_k : int, optional
        The K whose draws give the first reference rows (default: the modal K).
    max_iter : int
        Maximum Lloyd refinements.
    random_seed : int, optional
        Seeds the medoid search of the pivot relabelling (None: deterministic).

    Returns
    -------
    slot : numpy.ndarray of int, shape (S, R)
        ``slot[s, r]`` is the slot of draw ``s`` mapped to reference row ``r`` (-1: absent).
    reference : numpy.ndarray, shape (R, D)
        The reference atoms (scaled), modal-K rows first.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.relabel_cross_k import cross_k_assignments
    >>> centres = np.array([[0.0], [5.0], [10.0]])
    >>> theta = np.stack([centres[[2, 0, 1]], centres[[1, 2, 0]], centres[[0, 1, 2]]])
    >>> active = np.array([[True, True, True], [True, True, False], [True, True, True]])
    >>> slot, ref = cross_k_assignments(theta, active)
    >>> ref.ravel().round(1).tolist(), slot.tolist()
    ([10.0, 0.0, 5.0], [[0, 1, 2], [1, -1, 0], [2, 0, 1]])
    """
    S, K_max, _D = theta.shape
    k_per = active.sum(axis=1)
    if reference_k is None:
        counts = np.bincount(k_per, minlength=K_max + 1)
        reference_k = int(np.argmax(counts))
    if not np.any(k_per == reference_k):
        raise ValueError(
            f"`reference_k` = {reference_k} occurs in no draw; the draws have K in "
            f"{sorted(np.unique(k_per).tolist())}."
        )
    rows = np.flatnonzero(k_per == reference_k)
    z, _ = _packed(theta, active, rows)
    z = z[:, :reference_k]
    if reference_k > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            perm = relabel_permutations(z, random_seed=random_seed)
        z = np.take_along_axis(z, perm[..., None], axis=1)
    ref = z.mean(axis=0)
    for K in range(reference_k + 1, int(k_per.max()) + 1):
        rows = np.flatnonzero(k_per == K)
        if rows.size == 0:
            continue
        z, _ = _packed(theta, active, rows)
        extra = K - ref.shape[0]
        if extra <= 0:
            continue
        left = []
        for zs in z[:, :K]:
            row, _ = _match(zs, ref)
            left.append(zs[row < 0])
        left = np.stack(left)  # (n_rows, extra, D)
        if extra > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                perm = relabel_permutations(left, random_seed=random_seed)
            left = np.take_along_axis(left, perm[..., None], axis=1)
        ref = np.concatenate([ref, left.mean(axis=0)])
    R = ref.shape[0]
    slot = None
    for _ in range(max_iter):
        new = np.full((S, R), -1, dtype=np.intp)
        for s in range(S):
            idx = np.flatnonzero(active[s])
            row, _ = _match(theta[s, idx], ref)
            new[s, row] = idx
        if slot is not None and np.array_equal(new, slot):
            break
        slot = new
        present = slot >= 0
        gathered = np.take_along_axis(theta, np.maximum(slot, 0)[..., None], axis=1)
        n = present.sum(axis=0)
        mean = (gathered * present[..., None]).sum(axis=0) / np.maximum(n, 1)[:, None]
        ref = np.where(n[:, None] > 0, mean, ref)
    return slot, ref


def relabel_cross_k(
    trace, *, reference_k: int | None = None, max_iter: int = 20, random_seed=None
) -> xr.Dataset:
    """Map the experts of every posterior draw onto common reference atoms (any K per draw).

    Parameters
    ----------
    trace : xarray.DataTree or xarray.Dataset
        A random-K trace (:func:`~bayesmoe.inference.rjmcmc.sample_random_k`) or its posterior;
        any trace with ``beta0, beta1, a, b`` (``sigma``) per expert works (no ``active``: all
        experts active).
    reference_k : int, optional
        The K whose draws define the first reference rows (default the modal K).
    max_iter : int
        Maximum refinement iterations (see the module docstring).
    random_seed : int, optional
        Seeds the medoid search of the pivot relabelling.

    Returns
    -------
    xarray.Dataset
        Dims (chain, draw, expert) with ``expert`` = the R reference rows, ordered by decreasing
        presence (ties: decreasing mean mass):
        ``present`` (bool), ``slot`` (the input slot, -1 absent), ``weight`` (mass
        ``softmax(beta0)`` among the active experts), ``beta1_centred`` (gate slopes centred by
        their mass-weighted mean, docs/math.md §4) and every posterior variable with an ``expert``
        dim in user units (``a``, ``b``, ``sigma``, ...), NaN where the row is absent; also
        ``n_experts`` per draw. ``attrs``: ``reference_k``, ``atom_columns``,
        ``reference_atoms`` (R × D, unscaled canonical coordinates, as nested lists).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.relabel_cross_k import relabel_cross_k, cross_k_summary
    >>> rng = np.random.default_rng(0)
    >>> S, b = 300, np.array([-3.0, 0.0, 3.0, 8.0])
    >>> k = np.where(rng.uniform(size=S) < 0.8, 3, 4)          # K = 3 (80 %) or 4
    >>> active = np.arange(4)[None, :] < k[:, None]
    >>> bb = rng.normal(0, 5, size=(S, 4))                      # inactive slots: prior draws
    >>> for s in range(S):  # experts b = -3, 0, 3 always, b = 8 when K = 4, in shuffled slots
    ...     bb[s, :k[s]] = b[rng.permutation(k[s])] + 0.05 * rng.standard_normal(k[s])
    >>> post = xr.Dataset({
    ...     "beta0": (("chain", "draw", "expert"), np.zeros((1, S, 4))),
    ...     "beta1": (("chain", "draw", "feature", "expert"), np.zeros((1, S, 1, 4))),
    ...     "a": (("chain", "draw", "feature", "expert"), np.zeros((1, S, 1, 4))),
    ...     "b": (("chain", "draw", "expert"), bb[None]),
    ...     "sigma": (("chain", "draw", "expert"), np.ones((1, S, 4))),
    ...     "active": (("chain", "draw", "expert"), active[None]),
    ...     "n_experts": (("chain", "draw"), k[None])},
    ...     coords={"feature": ["x"]})
    >>> out = relabel_cross_k(post)
    >>> table = cross_k_summary(out)
    >>> table["present_pct"].round(0).tolist(), round(100 * np.mean(k == 4))
    ([100.0, 100.0, 100.0, 26.0], 26)
    >>> b_mean = (table["b_mean"].round(1) + 0.0).tolist()  # most present first
    >>> sorted(b_mean[:3]), b_mean[3]
    ([-3.0, 0.0, 3.0], 8.0)
    """
    G = mixing_measure(trace)
    if "active" not in G:
        G = G.assign(active=xr.ones_like(G["beta0"], dtype=bool))
    z, p, active, names, sd = _scaled_atoms(G)
    slot, ref = cross_k_assignments(
        z, active, reference_k=reference_k, max_iter=max_iter, random_seed=random_seed
    )
    k_ref = (
        reference_k if reference_k is not None else int(np.argmax(np.bincount(active.sum(axis=1))))
    )
    # rows by decreasing presence, ties by decreasing mean mass: expert 0 is the expert most
    # often present (after the refinement, a row seeded by a larger K can be present more often
    # than a row seeded by the modal K, e.g. when the modal-K draws merge two experts)
    mass = np.where(slot >= 0, np.take_along_axis(p, np.maximum(slot, 0), axis=1), 0.0).mean(0)
    order = np.lexsort((-mass, -(slot >= 0).mean(axis=0)))
    slot, ref = slot[:, order], ref[order]
    chains, draws = G.sizes["chain"], G.sizes["draw"]
    R = slot.shape[1]
    present = slot >= 0
    safe = np.maximum(slot, 0)

    post = trace["posterior"].to_dataset() if isinstance(trace, xr.DataTree) else trace
    out = {}
    for name, da in post.data_vars.items():
        if "expert" not in da.dims or name == "active" or not {"chain", "draw"} <= set(da.dims):
            continue
        if np.issubdtype(da.dtype, np.bool_) or not np.issubdtype(da.dtype, np.number):
            continue
        t = da.transpose("chain", "draw", ..., "expert")
        vals = np.asarray(t.values, dtype=float).reshape(chains * draws, -1, t.shape[-1])
        got = np.take_along_axis(vals, safe[:, None, :], axis=2)
        got = np.where(present[:, None, :], got, np.nan)
        core = t.dims[2:-1]
        out[name] = (
            ("chain", "draw", *core, "expert"),
            got.reshape((chains, draws) + t.shape[2:-1] + (R,)),
        )
    w = np.where(present, np.take_along_axis(p, safe, axis=1), np.nan)
    out["weight"] = (("chain", "draw", "expert"), w.reshape(chains, draws, R))
    d = G.sizes["feature"]
    b1 = np.take_along_axis(z[..., :d] * sd[:d], safe[..., None], axis=1)
    b1 = np.where(present[..., None], b1, np.nan)
    out["beta1_centred"] = (("chain", "draw", "expert", "feature"), b1.reshape(chains, draws, R, d))
    out["present"] = (("chain", "draw", "expert"), present.reshape(chains, draws, R))
    out["slot"] = (("chain", "draw", "expert"), slot.reshape(chains, draws, R))
    out["n_experts"] = (("chain", "draw"), active.sum(axis=1).reshape(chains, draws))
    coords = {"chain": G["chain"].values, "draw": G["draw"].values, "expert": np.arange(R)}
    for c in post.coords:
        if c not in ("chain", "draw", "expert") and c in {
            dim for v in out.values() for dim in v[0]
        }:
            coords[c] = post[c].values
    coords["feature"] = G["feature"].values
    ds = xr.Dataset(out, coords=coords)
    ds.attrs = {
        "reference_k": int(k_ref),
        "atom_columns": names,
        "reference_atoms": (ref * sd).round(6).tolist(),
        "description": "experts mapped onto common reference atoms across K",
    }
    return ds


def cross_k_summary(relabelled: xr.Dataset, *, var_names=None) -> pd.DataFrame:
    """One row per reference expert: % of draws present, mean mass, parameter means and sds.

    Parameters
    ----------
    relabelled : xarray.Dataset
        The output of :func:`relabel_cross_k`.
    var_names : sequence of str, optional
        Per-expert variables to summarise (default ``weight``, ``beta1_centred``, ``a``, ``b``
        and ``sigma`` where present).

    Returns
    -------
    pandas.DataFrame
        Index ``expert`` (reference row). Columns ``present_pct`` (% of draws with this expert),
        ``mean_k_when_present`` (mean K of those draws), and ``<var>[<coords>]_mean`` /
        ``_sd`` over the draws where the expert is present.

    Examples
    --------
    See :func:`relabel_cross_k`.
    """
    if not isinstance(relabelled, xr.Dataset) or "present" not in relabelled:
        raise TypeError(
            "`relabelled` must be the Dataset returned by relabel_cross_k (with a "
            f"`present` variable); got {type(relabelled).__name__}."
        )
    if var_names is None:
        var_names = [v for v in ("weight", "beta1_centred", "a", "b", "sigma") if v in relabelled]
    present = relabelled["present"].transpose("chain", "draw", "expert").values
    R = present.shape[-1]
    pres = present.reshape(-1, R)
    k = relabelled["n_experts"].values.reshape(-1) if "n_experts" in relabelled else None
    data = {"present_pct": 100.0 * pres.mean(axis=0)}
    if k is not None:  # the mean K of the draws that hold this expert
        with np.errstate(invalid="ignore"):
            data["mean_k_when_present"] = (pres * k[:, None]).sum(0) / pres.sum(0)
    for name in var_names:
        if name not in relabelled:
            raise ValueError(
                f"`var_names` names {name!r}, which is not in the relabelled "
                f"Dataset; variables: {list(relabelled.data_vars)}."
            )
        da = relabelled[name]
        core = [dim for dim in da.dims if dim not in ("chain", "draw", "expert")]
        t = da.transpose("chain", "draw", "expert", *core)
        vals = np.asarray(t.values, dtype=float).reshape(pres.shape[0], R, -1)
        labels = [""]
        if core:
            grids = np.meshgrid(*[t[c].values for c in core], indexing="ij")
            labels = [
                "[" + ",".join(str(g.ravel()[i]) for g in grids) + "]" for i in range(grids[0].size)
            ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows never present: NaN
            mean = np.nanmean(vals, axis=0)
            sd = np.nanstd(vals, axis=0)
        for i, lab in enumerate(labels):
            data[f"{name}{lab}_mean"] = mean[:, i]
            data[f"{name}{lab}_sd"] = sd[:, i]
    return pd.DataFrame(data, index=pd.Index(np.arange(R), name="expert"))
