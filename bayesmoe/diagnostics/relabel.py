"""Undo label switching in posterior draws of a K-expert mixture of experts.

The likelihood of a K-expert MoE is invariant to the K! permutations of the expert labels
(docs/math.md §1.1), so chains settle on different labelings (raw R-hat of expert parameters near
2) and a chain may switch labels between draws. Diagnostics that look at one expert at a time
(means, R-hat, ESS) need the draws *relabelled*: each draw's experts permuted so that position k
means the same expert in every draw.

Three layers, as ArviZ does:

- :func:`relabel_permutations` — numpy core: iterated pivot matching of the per-draw "atoms"
  (S, K, P) with the Hungarian algorithm; returns the permutations (S, K).
- :func:`stephens_permutations` — numpy core: Stephens' (2000) Kullback-Leibler relabelling of
  per-observation expert probabilities (S, n, K); an alternative that uses the data.
- :func:`permute_experts` — applies permutations (chain, draw, expert) to an xarray object.
- :func:`relabel` — DataTree/Dataset in, same type out: builds the atoms from the posterior,
  matches (``method="pivot"`` or ``"stephens"``), permutes every variable with dims
  (chain, draw, expert) in every group, and records the permutations.

Permutation convention: ``perm[s, j] = k`` means that position ``j`` of the relabelled draw ``s``
holds the expert that was labelled ``k`` in the input, i.e.
``relabelled[s, ..., j] = original[s, ..., perm[s, j]]`` (``numpy.take_along_axis`` on the expert
axis).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment
from scipy.special import log_softmax, softmax

from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.gates import stored_gate
from bayesmoe.measure import expert_log_prob, gate_covariates, gate_logits, measure_arrays

__all__ = [
    "DEFAULT_ATOM_VARS",
    "PERMUTATION_VAR",
    "RELABEL_GROUP",
    "permute_experts",
    "relabel",
    "relabel_permutations",
    "stephens_permutations",
]

#: Variables whose per-expert values form the atoms that are matched (those present are used).
DEFAULT_ATOM_VARS = ("beta0", "beta1", "a", "b", "sigma")
#: DataTree group that records the permutations (variable :data:`PERMUTATION_VAR`).
RELABEL_GROUP = "relabel"
#: Name of the permutation variable, dims (chain, draw, expert).
PERMUTATION_VAR = "permutation"
#: Name of the permutation variable when a Dataset (not a DataTree) is relabelled.
_DATASET_PERMUTATION_VAR = "relabel_permutation"
_METHODS = ("pivot", "stephens")
# Number of candidate draws searched for the medoid pivot (pairwise cost ~ n^2 / 2 matchings).
_N_MEDOID_CANDIDATES = 64
# Draws per block when building the (S, K, K) cost tensor (bounds memory at ~block * K * K * P).
_BLOCK = 4096


# --------------------------------------------------------------------------------------------
# numpy core
# --------------------------------------------------------------------------------------------
def _check_atoms(atoms) -> np.ndarray:
    try:
        arr = np.asarray(atoms, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`atoms` must be a numeric array; converting to float failed: {err}."
        ) from None
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            "`atoms` must have shape (S, K, P): S draws, K experts, P parameter features per "
            f"expert; got shape {arr.shape}. Stack each expert's parameters on the last axis."
        )
    if not np.all(np.isfinite(arr)):
        s = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(
            f"`atoms` contains NaN or inf (first in draw {s}); drop divergent or failed draws "
            "before relabelling."
        )
    return arr


def _feature_scale(atoms: np.ndarray, weights) -> np.ndarray:
    """Multiplier per feature: sqrt(weight) / pooled sd (sd over all draws and experts).

    The pooled sd is label-invariant, so the scaled distance does not depend on the input
    labelling. Features that never vary (e.g. a pinned reference class) get sd 1.
    """
    P = atoms.shape[-1]
    sd = atoms.reshape(-1, P).std(axis=0)
    sd = np.where(sd > 1e-12 * (1.0 + np.abs(atoms).reshape(-1, P).max(axis=0)), sd, 1.0)
    if weights is None:
        w = np.ones(P)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != (P,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError(
                f"`weights` must be {P} finite non-negative numbers (one per atom feature), not "
                f"all zero; got {np.asarray(weights).ravel()[:8]!r} with shape {w.shape}."
            )
    return np.sqrt(w) / sd


def _cost(z: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared distances C[s, j, k] = ||z[s, k] - centre[j]||^2, shape (S, K, K)."""
    zz = np.einsum("skp,skp->sk", z, z)
    cc = np.einsum("jp,jp->j", centre, centre)
    cross = np.einsum("skp,jp->sjk", z, centre)
    return np.maximum(zz[:, None, :] + cc[None, :, None] - 2.0 * cross, 0.0)


def _assign_costs(cost: np.ndarray) -> np.ndarray:
    """Row-wise optimal assignments of a cost tensor C[s, j, k] (position j <- label k)."""
    perm = np.empty(cost.shape[:2], dtype=np.intp)
    for i, c in enumerate(cost):
        perm[i] = linear_sum_assignment(c)[1]
    return perm


def _assign(z: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Optimal permutation of each draw's experts onto the centre's positions, shape (S, K)."""
    return np.concatenate(
        [_assign_costs(_cost(z[i : i + _BLOCK], centre)) for i in range(0, z.shape[0], _BLOCK)]
    )


def _canonical(perm: np.ndarray) -> np.ndarray:
    """Apply the one global relabelling that keeps output labels closest to the input labels.

    counts[j, k] = number of draws with input label k at position j; h maximises
    sum_j counts[h[j], j], so draws that were already aligned get identity permutations.
    """
    K = perm.shape[1]
    counts = np.zeros((K, K))
    np.add.at(counts, (np.broadcast_to(np.arange(K), perm.shape), perm), 1.0)
    _, h = linear_sum_assignment(counts.T, maximize=True)
    return perm[:, h]


def _not_converged(method: str, max_iter: int) -> None:
    warnings.warn(
        f"{method} relabelling did not converge in max_iter={max_iter} iterations; the last "
        "permutations are returned. Increase `max_iter` or check for merged experts.",
        RuntimeWarning,
        stacklevel=3,
    )


def _medoid(z: np.ndarray, rng: np.random.Generator | None) -> int:
    """Index of the draw minimising the summed label-invariant distance to candidate draws."""
    S = z.shape[0]
    m = min(S, _N_MEDOID_CANDIDATES)
    if rng is None:
        cand = np.unique(np.linspace(0, S - 1, m).round().astype(int))
    else:
        cand = np.sort(rng.choice(S, size=m, replace=False))
    zc = z[cand]
    total = np.zeros(len(cand))
    for i in range(len(cand) - 1):
        cost = _cost(zc[i + 1 :], zc[i])  # (m - i - 1, K, K)
        d = np.array([c[linear_sum_assignment(c)].sum() for c in cost])
        total[i] += d.sum()
        total[i + 1 :] += d
    return int(cand[np.argmin(total)])


def relabel_permutations(
    atoms,
    *,
    weights=None,
    max_iter: int = 50,
    pivot=None,
    random_seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Permutations that align every draw's experts, by iterated pivot matching.

    Each feature is scaled by its pooled posterior sd (over draws and experts, a label-invariant
    scale) so units do not dominate. Starting from a pivot, each draw's K atoms are matched to the
    pivot's K positions by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on
    the scaled squared distance; the pivot is then replaced by the mean of the aligned draws and
    the matching repeated until no permutation changes. Finally one global permutation is applied
    so that the output labels agree with the input labels for as many draws as possible; hence
    draws that are already aligned get identity permutations and the function is idempotent.

    Parameters
    ----------
    atoms : array_like, shape (S, K, P)
        S draws (chains pooled), K experts, P parameter features per expert (e.g. beta0, beta1,
        a, b, log sigma of each expert). Must be finite.
    weights : array_like, shape (P,), optional
        Non-negative weight of each feature in the squared distance (default all 1).
    max_iter : int
        Maximum number of match/re-centre iterations; a RuntimeWarning is issued if the
        permutations still change after it.
    pivot : int or array_like of shape (K, P), optional
        Starting pivot: the index of a draw (e.g. the draw with the highest log posterior) or a
        (K, P) array of atoms. Default: the medoid (under the label-invariant matching distance)
        of up to 64 candidate draws.
    random_seed : int or numpy.random.Generator, optional
        Only used to pick the medoid candidates when ``pivot`` is None; None picks evenly spaced
        draws (deterministic).

    Returns
    -------
    numpy.ndarray of int, shape (S, K)
        ``perm[s, j]`` is the input label of the expert placed at position ``j`` of draw ``s``;
        aligned atoms are ``np.take_along_axis(atoms, perm[..., None], axis=1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.relabel import relabel_permutations
    >>> rng = np.random.default_rng(0)
    >>> centres = np.array([[0.0, 1.0], [5.0, -1.0], [10.0, 3.0]])      # K=3 experts, P=2
    >>> draws = centres + 0.1 * rng.standard_normal((200, 3, 2))
    >>> swapped = np.stack([d[rng.permutation(3)] for d in draws])      # label switching
    >>> perm = relabel_permutations(swapped)
    >>> aligned = np.take_along_axis(swapped, perm[..., None], axis=1)
    >>> np.sort(aligned.mean(0)[:, 0]).round(0).astype(int).tolist()   # one expert per position
    [0, 5, 10]
    >>> bool(aligned.std(0).max() < 0.2)                     # no switching left
    True
    """
    raw = _check_atoms(atoms)
    S, K, P = raw.shape
    max_iter = _check_max_iter(max_iter)
    scale = _feature_scale(raw, weights)
    z = raw * scale
    if K == 1:
        return np.zeros((S, 1), dtype=np.intp)
    if pivot is None:
        rng = None if random_seed is None else np.random.default_rng(random_seed)
        centre = z[_medoid(z, rng)]
    elif isinstance(pivot, (int, np.integer)) and not isinstance(pivot, bool):
        if not -S <= pivot < S:
            raise ValueError(f"`pivot` as a draw index must be in [0, {S}); got {pivot}.")
        centre = z[int(pivot)]
    else:
        centre = np.asarray(pivot, dtype=float)
        if centre.shape != (K, P) or not np.all(np.isfinite(centre)):
            raise ValueError(
                f"`pivot` must be a draw index or a finite ({K}, {P}) array of atoms; got "
                f"{type(pivot).__name__} with shape {np.shape(pivot)}."
            )
        centre = centre * scale
    perm = None
    for _ in range(max_iter):
        new = _assign(z, centre)
        if perm is not None and np.array_equal(new, perm):
            break
        perm = new
        centre = np.take_along_axis(z, perm[..., None], axis=1).mean(axis=0)
    else:
        _not_converged("Pivot", max_iter)
    return _canonical(perm)


def _check_max_iter(max_iter) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"`max_iter` must be an int >= 1; got {max_iter!r}.")
    return int(max_iter)


def stephens_permutations(probs, *, init=None, max_iter: int = 50) -> np.ndarray:
    """Permutations minimising the Kullback-Leibler loss of Stephens (2000, Algorithm 2).

    Works on classification probabilities instead of parameters: ``probs[s, i, k]`` is the
    probability, under draw ``s``, that observation ``i`` came from expert ``k``. Alternates
    (1) Q[i, j] = mean over draws of the aligned probabilities and (2) for each draw the
    assignment minimising sum_i sum_j p[s, i, perm[j]] log(p[s, i, perm[j]] / Q[i, j]) (the
    Hungarian algorithm), until no permutation changes; then applies the same global
    relabelling as :func:`relabel_permutations`.

    Parameters
    ----------
    probs : array_like, shape (S, n, K)
        Non-negative, each (s, i) row summing to 1.
    init : array_like of int, shape (S, K), optional
        Starting permutations (same convention as the output), e.g. from
        :func:`relabel_permutations`; default identity.
    max_iter : int
        Maximum number of iterations (RuntimeWarning if not converged).

    Returns
    -------
    numpy.ndarray of int, shape (S, K)
        ``perm[s, j]`` is the input label placed at position ``j`` of draw ``s``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.relabel import stephens_permutations
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=50)                  # n=50 observations, K=3
    >>> draws = np.stack([p[:, rng.permutation(3)] for _ in range(100)])
    >>> perm = stephens_permutations(draws)
    >>> aligned = np.take_along_axis(draws, perm[:, None, :], axis=2)
    >>> bool(np.allclose(aligned, aligned[0]))
    True
    """
    try:
        p = np.asarray(probs, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`probs` must be numeric; converting to float failed: {err}.") from None
    if p.ndim != 3 or 0 in p.shape:
        raise ValueError(
            f"`probs` must have shape (S draws, n observations, K experts); got {p.shape}."
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(-1), 1.0, atol=1e-6):
        raise ValueError(
            "`probs` must be finite, non-negative and sum to 1 over experts (last axis) for "
            "every draw and observation; normalise them (e.g. scipy.special.softmax)."
        )
    max_iter = _check_max_iter(max_iter)
    S, _, K = p.shape
    if init is None:
        perm = np.tile(np.arange(K), (S, 1))
    else:
        perm = np.asarray(init)
        if (
            perm.shape != (S, K)
            or not np.issubdtype(perm.dtype, np.integer)
            or not np.array_equal(np.sort(perm, axis=1), np.broadcast_to(np.arange(K), (S, K)))
        ):
            raise ValueError(
                f"`init` must be an integer array of shape ({S}, {K}) whose rows are "
                f"permutations of 0..{K - 1}; got shape {perm.shape}."
            )
    tiny = np.finfo(float).tiny
    for _ in range(max_iter):
        Q = np.take_along_axis(p, perm[:, None, :], axis=2).mean(axis=0)  # (n, K)
        log_q = np.log(np.maximum(Q, tiny))
        # C[s, j, k] = -sum_i p[s, i, k] log Q[i, j]; the entropy term is the same for every
        # assignment of draw s and is dropped.
        new = np.concatenate(
            [
                _assign_costs(-np.einsum("sik,ij->sjk", p[i : i + _BLOCK], log_q))
                for i in range(0, S, _BLOCK)
            ]
        )
        if np.array_equal(new, perm):
            break
        perm = new
    else:
        _not_converged("Stephens", max_iter)
    return _canonical(perm)


# --------------------------------------------------------------------------------------------
# xarray layer
# --------------------------------------------------------------------------------------------
def _permutation_array(permutation, chain: int, draw: int, K: int) -> np.ndarray:
    if isinstance(permutation, xr.DataArray):
        if set(permutation.dims) != {"chain", "draw", "expert"}:
            raise ValueError(
                f"`permutation` must have dims (chain, draw, expert); got {permutation.dims}."
            )
        permutation = permutation.transpose("chain", "draw", "expert").values
    perm = np.asarray(permutation)
    if perm.shape != (chain, draw, K):
        raise ValueError(
            f"`permutation` must have shape (chain={chain}, draw={draw}, expert={K}); got "
            f"{perm.shape}."
        )
    if not np.issubdtype(perm.dtype, np.integer) or not np.array_equal(
        np.sort(perm, axis=-1), np.broadcast_to(np.arange(K), perm.shape)
    ):
        raise ValueError(
            "`permutation` must hold, for every (chain, draw), a permutation of 0..K-1 as integers."
        )
    return perm


def permute_experts(data: xr.Dataset | xr.DataArray, permutation):
    """Permute the expert axis of every variable with dims (chain, draw, expert).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Variables without all of ``chain``, ``draw`` and ``expert`` dims are returned unchanged.
    permutation : array_like of int, shape (chain, draw, expert), or DataArray with those dims
        ``permutation[c, d, j]`` is the input label of the expert placed at position ``j``.

    Returns
    -------
    Same type as ``data``, a new object (the input is not modified).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.relabel import permute_experts
    >>> da = xr.DataArray([[[10.0, 20.0]]], dims=("chain", "draw", "expert"))
    >>> permute_experts(da, [[[1, 0]]]).values.tolist()
    [[[20.0, 10.0]]]
    """
    if isinstance(data, xr.DataArray):
        if not {"chain", "draw", "expert"} <= set(data.dims):
            return data.copy()
        perm = _permutation_array(
            permutation, data.sizes["chain"], data.sizes["draw"], data.sizes["expert"]
        )
        t = data.transpose("chain", "draw", ..., "expert")
        idx = perm.reshape(perm.shape[:2] + (1,) * (t.ndim - 3) + perm.shape[2:])
        return t.copy(data=np.take_along_axis(t.values, idx, axis=-1)).transpose(*data.dims)
    if isinstance(data, xr.Dataset):
        out = data.copy()
        for name, da in data.data_vars.items():
            if name != _DATASET_PERMUTATION_VAR:
                out[name] = permute_experts(da, permutation)
        return out
    raise TypeError(f"`data` must be an xarray Dataset or DataArray; got {type(data).__name__}.")


def _expert_vars(ds: xr.Dataset) -> list[str]:
    return [
        n
        for n, v in ds.data_vars.items()
        if {"chain", "draw", "expert"} <= set(v.dims) and n != _DATASET_PERMUTATION_VAR
    ]


def _atom_block(name: str, da: xr.DataArray) -> np.ndarray:
    """(S, K, p) block of atoms from one variable: gate slopes centred, scales on log scale."""
    t = da.transpose("chain", "draw", ..., "expert")
    vals = np.asarray(t.values, dtype=float)
    S = vals.shape[0] * vals.shape[1]
    K = vals.shape[-1]
    block = np.moveaxis(vals.reshape(S, -1, K), -1, 1)  # (S, K, p)
    stem = name.split("_")[0]
    if stem in ("sigma", "sigma2"):
        if np.any(block <= 0):
            raise ValueError(
                f"Variable {name!r} is a noise scale and must be positive in every draw; it has "
                "non-positive values. Pass `var_names` without it."
            )
        block = np.log(block)
    elif stem in ("beta0", "beta1"):
        # Softmax gating is invariant to a common shift of all experts (docs/math.md §1.1): match on
        # the shift-free, sum-to-zero version so reference- and sum-to-zero fits both work.
        block = block - block.mean(axis=1, keepdims=True)
    return block


def _posterior_of(trace) -> xr.Dataset:
    if isinstance(trace, xr.DataTree):
        if "posterior" not in trace.children:
            raise ValueError(
                "`trace` has no 'posterior' group; groups found: "
                f"{list(trace.children)}. Pass the DataTree returned by sampling."
            )
        return trace["posterior"].to_dataset()
    if isinstance(trace, xr.Dataset):
        return trace
    raise TypeError(
        "`trace` must be an xarray.DataTree (with a 'posterior' group) or a posterior "
        f"xarray.Dataset; got {type(trace).__name__}."
    )


def _atoms_from_posterior(post: xr.Dataset, var_names) -> tuple[np.ndarray, list[str]]:
    expert_vars = _expert_vars(post)
    if var_names is None:
        names = [v for v in DEFAULT_ATOM_VARS if v in expert_vars]
        if not names:
            names = [
                v
                for v in expert_vars
                if np.issubdtype(post[v].dtype, np.number)
                and not np.issubdtype(post[v].dtype, np.bool_)
            ]
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
        bad = [v for v in names if v not in expert_vars]
        if bad or not names:
            raise ValueError(
                f"`var_names` must name posterior variables with an 'expert' dim; {bad or names} "
                f"are not among them. Variables with an 'expert' dim: {expert_vars}."
            )
    if not names:
        raise ValueError(
            f"No numeric posterior variable with an 'expert' dim to match on; got {expert_vars}."
        )
    blocks = [_atom_block(n, post[n]) for n in names]
    return np.concatenate(blocks, axis=-1), names


def _pivot_from_lp(trace) -> int | None:
    """Index (pooled chain-major) of the draw with the highest log posterior, when recorded."""
    if not isinstance(trace, xr.DataTree) or "sample_stats" not in trace.children:
        return None
    stats = trace["sample_stats"]
    if "lp" not in stats.data_vars or set(stats["lp"].dims) != {"chain", "draw"}:
        return None
    lp = np.asarray(stats["lp"].transpose("chain", "draw").values, dtype=float).ravel()
    if not np.any(np.isfinite(lp)):
        return None
    return int(np.nanargmax(np.where(np.isfinite(lp), lp, -np.inf)))


def _data_from_trace(trace, X, y) -> tuple[np.ndarray, np.ndarray]:
    """X and y for Stephens' method: given, or from constant_data.X / observed_data.y."""
    tree = trace if isinstance(trace, xr.DataTree) else None
    if X is None and tree is not None and "constant_data" in tree.children:
        X = tree["constant_data"].to_dataset().get("X")
    if y is None and tree is not None and "observed_data" in tree.children:
        y = tree["observed_data"].to_dataset().get("y")
    if X is None or y is None:
        raise ValueError(
            "method='stephens' needs the data: pass `X=` and `y=`, or a DataTree with "
            "constant_data.X and observed_data.y (as bayesmoe.inference.sample writes). Or use "
            "method='pivot', which needs only the posterior."
        )
    if isinstance(X, xr.DataArray):
        X = X.transpose("obs", "feature").values if {"obs", "feature"} == set(X.dims) else X.values
    return np.asarray(X, dtype=float), np.asarray(y.values if isinstance(y, xr.DataArray) else y)


def _offset_from_trace(trace, n: int, name: str = "offset"):
    """The fit's per-row offsets (constant_data.offset, families with a log link; or another
    per-row datum of the family, ``name="trials"``) for data of the fit's n rows; None otherwise.
    """
    if isinstance(trace, xr.DataTree) and "constant_data" in trace.children:
        off = trace["constant_data"].to_dataset().get(name)
        if off is not None and off.size == n:
            return np.asarray(off.values, dtype=float)
    return None


def _gate_from_trace(trace, measure: xr.Dataset, X: np.ndarray) -> np.ndarray:
    """The gate's covariates of the fit's rows: constant_data.gate_X when the gate has its own,
    else what :func:`bayesmoe.measure.gate_covariates` finds from X.
    """
    if isinstance(trace, xr.DataTree) and "constant_data" in trace.children:
        Z = trace["constant_data"].to_dataset().get("gate_X")
        if Z is not None and Z.sizes.get("obs") == X.shape[0]:
            return np.asarray(Z.transpose("obs", "gate_feature").values, dtype=float)
    return gate_covariates(measure, X)


def _classification_probs(trace, post: xr.Dataset, X, y) -> np.ndarray:
    """P(expert k | x_i, y_i, draw s) for every draw, shape (chain * draw, n, K)."""
    X, y = _data_from_trace(trace, X, y)
    attrs = {**post.attrs, **(trace.attrs if isinstance(trace, xr.DataTree) else {})}
    stored_gate(attrs.get("gate"), what="method='stephens': this trace", fix="use method='pivot'")
    try:
        measure = mixing_measure(post.assign_attrs(attrs))
    except ValueError as err:
        raise ValueError(f"method='stephens' needs a bayesmoe posterior: {err}") from None
    arr = measure_arrays(measure, ["chain", "draw"])
    d = measure.sizes["feature"]
    if X.ndim != 2 or X.shape[1] != d or y.shape != (X.shape[0],):
        raise ValueError(
            f"`X` must have shape (n, {d}) and `y` shape (n,); got {X.shape} and {y.shape}."
        )
    Z = _gate_from_trace(trace, measure, X)
    out = []
    for c in range(arr["sample_shape"][0]):  # one chain at a time bounds peak memory
        pc = {k: v[c] if isinstance(v, np.ndarray) else v for k, v in arr.items()}
        eta = gate_logits(
            pc["beta0"],
            pc["beta1"],
            Z,
            gate=measure.attrs["gate"],
            temperature=measure.attrs["temperature"],
        )
        if "active" in pc:
            eta = np.where(pc["active"][:, None, :], eta, -np.inf)
        n = X.shape[0]
        lp = expert_log_prob(
            pc,
            X,
            y,
            offset=_offset_from_trace(trace, n),
            trials=_offset_from_trace(trace, n, "trials"),
        )
        out.append(softmax(log_softmax(eta, axis=-1) + lp, axis=-1))
    return np.concatenate(out, axis=0)


def relabel(
    trace: xr.DataTree | xr.Dataset,
    *,
    var_names: str | Sequence[str] | None = None,
    method: str = "pivot",
    random_seed: int | np.random.Generator | None = None,
    max_iter: int = 50,
    X=None,
    y=None,
) -> xr.DataTree | xr.Dataset:
    """Relabel the experts of every draw so that labels agree across draws and chains.

    Parameters
    ----------
    trace : xarray.DataTree or xarray.Dataset
        A trace with a ``posterior`` group (or the posterior Dataset itself) with dims
        (chain, draw) and variables with an ``expert`` dim.
    var_names : str or sequence of str, optional
        Posterior variables whose per-expert values are matched. Default: those of
        ``("beta0", "beta1", "a", "b", "sigma")`` present (gate parameters are centred over
        experts, ``sigma*`` are matched on the log scale); if none is present, every numeric
        variable with an ``expert`` dim. All variables with an ``expert`` dim are permuted,
        whether matched on or not.
    method : {"pivot", "stephens"}
        "pivot": iterated pivot matching of the parameters (:func:`relabel_permutations`),
        started at the draw with the highest ``sample_stats.lp`` when present, else at a medoid
        draw. "stephens": Stephens' (2000) Kullback-Leibler relabelling of the per-observation
        expert probabilities (:func:`stephens_permutations`), started from the pivot solution;
        it needs the data and memory for (chain * draw, n, K) floats.
    random_seed : int or numpy.random.Generator, optional
        Used only to choose medoid candidates when there is no ``lp`` (None: evenly spaced draws).
    max_iter : int
        Maximum number of iterations of each algorithm.
    X, y : array_like, optional
        Data for ``method="stephens"`` (user units, y as used in the fit); default
        ``constant_data.X`` and ``observed_data.y`` of the trace.

    Returns
    -------
    Same type as ``trace``, a new object (the input is not modified)
        Every variable with dims (chain, draw, expert) in every group is permuted. A DataTree
        gets a group ``relabel`` with ``permutation(chain, draw, expert)`` (relative to the
        labels of the raw sample: an already relabelled trace composes with its previous
        permutations) and root attrs ``relabelled=1``, ``relabel_method``; a Dataset gets the
        variable ``relabel_permutation`` and the same attrs.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.relabel import relabel
    >>> rng = np.random.default_rng(0)
    >>> b = np.array([-2.0, 0.0, 3.0]) + 0.1 * rng.standard_normal((2, 100, 3))
    >>> b[1] = b[1][:, [2, 0, 1]]                         # chain 1 uses other labels
    >>> post = xr.Dataset({"b": (("chain", "draw", "expert"), b)})
    >>> tree = relabel(xr.DataTree.from_dict({"posterior": post}))
    >>> chain_means = tree["posterior"]["b"].mean("draw")     # chains now agree on labels
    >>> bool(abs(chain_means[0] - chain_means[1]).max() < 0.1)
    True
    >>> tree.attrs["relabelled"], tree["relabel"]["permutation"].dims
    (1, ('chain', 'draw', 'expert'))
    """
    post = _posterior_of(trace)
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}; got {method!r}.")
    missing = [d for d in ("chain", "draw") if d not in post.dims]
    if missing:
        raise ValueError(
            f"The posterior must have sample dims (chain, draw); {missing} missing (dims: "
            f"{dict(post.sizes)}). Add a chain dim with `.expand_dims('chain')` for one chain."
        )
    if not _expert_vars(post):
        raise ValueError(
            "No posterior variable has an 'expert' dim, so there are no labels to switch "
            f"(variables: {list(post.data_vars)}). Relabelling applies to mixture-of-experts "
            "traces."
        )
    C, D, K = post.sizes["chain"], post.sizes["draw"], post.sizes["expert"]
    atoms, names = _atoms_from_posterior(post, var_names)
    pivot = _pivot_from_lp(trace) if K > 1 else None
    perm = relabel_permutations(atoms, max_iter=max_iter, pivot=pivot, random_seed=random_seed)
    if method == "stephens" and K > 1:
        probs = _classification_probs(trace, post, X, y)
        perm = stephens_permutations(probs, init=perm, max_iter=max_iter)
    perm = perm.reshape(C, D, K)

    previous = None
    if isinstance(trace, xr.DataTree) and RELABEL_GROUP in trace.children:
        previous = trace[RELABEL_GROUP].to_dataset().get(PERMUTATION_VAR)
    elif isinstance(trace, xr.Dataset):
        previous = trace.get(_DATASET_PERMUTATION_VAR)
    total = perm
    if previous is not None:
        total = np.take_along_axis(_permutation_array(previous, C, D, K), perm, axis=-1)
    coords = {d: post[d] for d in ("chain", "draw", "expert") if d in post.coords}
    perm_da = xr.DataArray(
        total,
        dims=("chain", "draw", "expert"),
        coords=coords,
        attrs={
            "description": "input label of the expert at each relabelled position",
            "matched_on": ",".join(names),
        },
    )
    attrs = {"relabelled": 1, "relabel_method": method}

    if isinstance(trace, xr.Dataset):
        out = permute_experts(trace, perm)
        out[_DATASET_PERMUTATION_VAR] = perm_da
        out.attrs = {**trace.attrs, **attrs}
        return out

    out = trace.copy()
    for node in trace.subtree:
        if node is trace or node.name == RELABEL_GROUP:
            continue
        ds = node.to_dataset(inherit=False)
        targets = [n for n, v in ds.data_vars.items() if {"chain", "draw", "expert"} <= set(v.dims)]
        if not targets:
            continue
        if (ds.sizes["chain"], ds.sizes["draw"]) != (C, D) or ds.sizes["expert"] != K:
            raise ValueError(
                f"Group {node.path!r} has (chain, draw, expert) sizes "
                f"({ds.sizes['chain']}, {ds.sizes['draw']}, {ds.sizes['expert']}) but the "
                f"posterior has ({C}, {D}, {K}); its expert labels cannot be aligned. Drop or "
                "subset that group first."
            )
        out[node.path].dataset = ds.assign({n: permute_experts(ds[n], perm) for n in targets})
    out[RELABEL_GROUP] = xr.DataTree(xr.Dataset({PERMUTATION_VAR: perm_da}))
    out.attrs = {**trace.attrs, **attrs}
    return out
