"""Merge–truncate–merge (Guha, Ho & Nguyen 2021) and the posterior of the number of experts.

MTM post-processes every posterior draw of an over-fitted mixing measure into a measure with
K̃ <= K atoms (docs/math.md §6); the posterior of K̃ then estimates K* consistently, unlike the
number of occupied experts under Dirichlet-process priors (docs/math.md §2.4).

Atom vector and weights [choice]
--------------------------------
Weights are ``p = softmax(beta0 / tau)`` and distances are Euclidean between the atom vectors
``phi_k = (beta1_k / tau, a_k, b_k, sigma2_k)`` (multinomial: ``a``, ``b`` with the reference
class subtracted, no sigma2), as in :mod:`bayesmoe.diagnostics.voronoi`. Distances between atoms
do not depend on the gate translation, so no further canonicalisation is needed.

Point estimates [choice, measured]
----------------------------------
The default radius ``omega_n = C (log n / n)^(1/(2 r))`` is calibrated for posterior draws. On a
single measure (a point estimate such as an MM fit) :func:`merge_truncate_merge` refuses unless
``omega`` is given explicitly: the maximum-likelihood estimate of an over-fitted model keeps
surplus atoms 0.7-2 away from every other atom with masses 0.01-0.2 (S-B, K̄ = 5, n = 500-8000),
so no constant C makes K̃ consistent — C = 1 returns 4 in half the fits at n >= 2000 and C = 1.5
already truncates true atoms (benchmarks/README.md, "Selection", 2026-12-02). For point
estimates select K with BIC (:func:`bayesmoe.inference.select_experts`) or DSC.

Determinism [choice]
--------------------
Before the random order of step 1 is drawn, the atoms of each draw are sorted canonically
(decreasing weight, ties broken by the atom vector). The result is therefore an exact function of
the multiset of atoms and the seed: permuting the experts of the input never changes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from bayesmoe.diagnostics.voronoi import as_measure, canonical_atoms, sample_dims_of
from bayesmoe.families import get_family
from bayesmoe.measure import gate_covariates, gate_probabilities, measure_arrays, measure_family

__all__ = ["MTMResult", "merge_truncate_merge", "mtm_omega", "num_experts_posterior"]

#: Default order r of MTM by expert family (docs/math.md §6).
DEFAULT_R = {"gaussian": 4.0, "categorical": 2.0}


class MTMResult(NamedTuple):
    """Result of :func:`merge_truncate_merge`.

    Attributes
    ----------
    measure : xarray.Dataset
        The merged measure per draw: same variables and dims as the input, experts sorted by
        merged weight (largest first), ``active[expert]`` marking the K̃ kept atoms (inactive
        slots have ``beta0 = 0`` and zero gate weight).
    n_experts : xarray.DataArray
        K̃ per draw (int), over the sample dims.
    """

    measure: xr.Dataset
    n_experts: xr.DataArray


def mtm_omega(n: int, r: float, scale: float = 1.0) -> float:
    """Default MTM radius ``omega_n = scale * (log n / n) ** (1 / (2 r))`` (docs/math.md §6).

    Examples
    --------
    >>> from bayesmoe.selection.mtm import mtm_omega
    >>> round(mtm_omega(1000, 4.0), 4)
    0.5369
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"`n` (number of observations) must be an integer >= 2; got {n!r}.")
    if not r > 0 or not scale > 0:
        raise ValueError(f"`r` and the omega scale must be > 0; got r={r!r}, scale={scale!r}.")
    return float(scale * (np.log(n) / n) ** (1.0 / (2.0 * r)))


def _n_from_source(source) -> int | None:
    if isinstance(source, xr.DataTree) and "observed_data" in source.children:
        obs = source["observed_data"].to_dataset()
        for v in obs.data_vars:
            return int(obs[v].size)
    return None


def _gather(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """X (S, ..., K) reindexed along its last axis by idx (S, K)."""
    shape = (idx.shape[0],) + (1,) * (x.ndim - 2) + (idx.shape[1],)
    return np.take_along_axis(x, idx.reshape(shape), axis=-1)


def mtm_arrays(p, theta, active, omega, c, r, rng):
    """MTM on canonical atoms, vectorised over draws (numpy core).

    Parameters
    ----------
    p : ndarray (S, K)
        Atom weights (rows sum to 1; inactive atoms 0).
    theta : ndarray (S, K, D)
        Atom vectors phi.
    active : ndarray of bool (S, K)
    omega, c, r : float
    rng : numpy.random.Generator

    Returns
    -------
    order : ndarray (S, K) int
        Input atom index of each output slot (kept atoms first, by decreasing merged weight).
    weight : ndarray (S, K)
        Merged weight of each output slot (0 for atoms merged away).
    keep : ndarray of bool (S, K)
        Output slots in A (K̃ = keep.sum(1)).
    """
    S, K, _ = theta.shape
    rows = np.arange(S)
    # canonical order (decreasing weight, ties by the atom vector), then a random order
    keys = [theta[:, :, j] for j in range(theta.shape[2] - 1, -1, -1)] + [-p]
    idx = np.lexsort(keys, axis=-1)
    idx = np.take_along_axis(idx, rng.permuted(np.tile(np.arange(K), (S, 1)), axis=1), axis=1)
    w = np.take_along_axis(p, idx, axis=1).copy()
    th = np.take_along_axis(theta, idx[:, :, None], axis=1)
    act = np.take_along_axis(active, idx, axis=1)
    dist = np.linalg.norm(th[:, :, None, :] - th[:, None, :, :], axis=-1)
    # 1. merge each atom into the first earlier survivor within omega
    surv = np.zeros((S, K), bool)
    surv[:, 0] = act[:, 0]
    for t in range(1, K):
        cand = surv[:, :t] & (dist[:, t, :t] <= omega)
        merge = cand.any(axis=1) & act[:, t]
        j = np.argmax(cand, axis=1)
        np.add.at(w, (rows[merge], j[merge]), w[merge, t])
        w[merge, t] = 0.0
        surv[:, t] = act[:, t] & ~merge
    # 2. sort survivors by weight; A = weights above (c omega)^r
    o2 = np.argsort(np.where(surv, -w, np.inf), axis=1, kind="stable")
    idx, w, surv = (np.take_along_axis(v, o2, axis=1) for v in (idx, w, surv))
    th = np.take_along_axis(th, o2[:, :, None], axis=1)
    dist = np.linalg.norm(th[:, :, None, :] - th[:, None, :, :], axis=-1)
    thr = (c * omega) ** r
    inA = surv & (w > thr)
    inA[:, 0] |= ~inA.any(axis=1)  # [choice] never return an empty measure: keep the heaviest
    # 3. drop j in A if some earlier kept i has q_j |phi_j - phi_i|^r <= (c omega)^r
    for t in range(1, K):
        close = inA[:, :t] & (w[:, t, None] * dist[:, t, :t] ** r <= thr)
        inA[:, t] &= ~close.any(axis=1)
    # 4. add every other survivor to its nearest kept atom
    moved = surv & ~inA
    dA = np.where(inA[:, None, :], dist, np.inf)
    nearest = np.argmin(dA, axis=2)
    final = np.where(inA, w, 0.0)
    sr, sc = np.nonzero(moved)
    np.add.at(final, (sr, nearest[sr, sc]), w[sr, sc])
    o3 = np.argsort(np.where(inA, -final, np.inf), axis=1, kind="stable")
    return (
        np.take_along_axis(idx, o3, axis=1),
        np.take_along_axis(final, o3, axis=1),
        np.take_along_axis(inA, o3, axis=1),
    )


POINT_ESTIMATE_MESSAGE = (
    "merge_truncate_merge got a single mixing measure (a point estimate, e.g. an MM fit) and no "
    "`omega`. The default radius omega_n = omega_scale * (log n / n)^(1/(2r)) is calibrated for "
    "posterior draws; on maximum-likelihood points it is not sound: the MLE's surplus atoms stay "
    "0.7-2 away from every other atom with masses 0.01-0.2, and no omega_scale gives the true "
    "number of experts across n (benchmarks/README.md, Selection). Pass posterior draws "
    "(chain, draw), or select K of a point estimate with select_experts (BIC) or DSC; to run "
    "MTM on this point anyway, give the radius explicitly, e.g. omega=mtm_omega(n, r)."
)


def _resolve(source, omega, c, r, n, omega_scale):
    G = as_measure(source, "measure_or_trace")
    if omega is None and not sample_dims_of(G):
        raise ValueError(POINT_ESTIMATE_MESSAGE)
    fam = measure_family(G)
    r = DEFAULT_R[fam] if r is None else r
    if not isinstance(r, (int, float, np.integer, np.floating)) or not r > 0:
        raise ValueError(f"`r` must be a positive number (Gaussian 4, multinomial 2); got {r!r}.")
    if not isinstance(c, (int, float, np.integer, np.floating)) or not c > 0:
        raise ValueError(f"`c` must be a positive number; got {c!r}.")
    if omega is None:
        n = _n_from_source(source) if n is None else n
        if n is None:
            raise ValueError(
                "MTM needs its radius: pass `omega`, or `n` (the number of observations) to use "
                "omega_n = omega_scale * (log n / n)^(1/(2 r)); a DataTree with an "
                "`observed_data` group supplies n itself."
            )
        omega = mtm_omega(n, float(r), omega_scale)
    elif not np.isfinite(omega) or omega < 0:
        raise ValueError(f"`omega` must be a finite number >= 0; got {omega!r}.")
    return G, float(omega), float(c), float(r)


def merge_truncate_merge(
    measure_or_trace,
    omega: float | None = None,
    c: float = 1.0,
    r: float | None = None,
    n: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    *,
    omega_scale: float = 1.0,
) -> MTMResult:
    """Merge–truncate–merge every draw of a mixing measure (docs/math.md §6).

    Parameters
    ----------
    measure_or_trace : xarray.Dataset or xarray.DataTree
        Mixing measure with or without sample dims, or a posterior trace. Inactive experts
        (``active == False``) are ignored.
    omega : float, optional
        Merge radius. Default ``omega_scale * (log n / n) ** (1 / (2 r))`` — for posterior draws
        only: a single measure (point estimate) needs ``omega`` given explicitly, see the
        module docstring.
    c : float
        Truncation constant: atoms need weight above ``(c omega)^r`` to be kept.
    r : float, optional
        Order; default 4 for Gaussian experts (r̄(2)) and 2 for multinomial experts.
    n : int, optional
        Number of observations for the default omega (read from ``observed_data`` when a
        DataTree has it).
    random_seed : int or numpy.random.Generator, optional
        Seeds the random order of step 1.
    omega_scale : float
        The constant C of the default radius.

    Returns
    -------
    MTMResult
        ``(measure, n_experts)``: the merged measure per draw and K̃ per draw.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure
    >>> from bayesmoe.selection.mtm import merge_truncate_merge
    >>> G = make_measure(np.log([0.3, 0.3, 0.4]), [[1.0, 1.01, -1.0]], [[1.0, 1.0, 2.0]],
    ...                  [0.0, 0.0, 1.0], [1.0, 1.0, 1.0])
    >>> res = merge_truncate_merge(G, omega=0.1, random_seed=0)
    >>> int(res.n_experts), res.measure.active.values.tolist()
    (2, [True, True, False])
    """
    G, omega, c, r = _resolve(measure_or_trace, omega, c, r, n, omega_scale)
    sd = sample_dims_of(G)
    at = canonical_atoms(G, sd)
    rng = np.random.default_rng(random_seed)
    order, weight, keep = mtm_arrays(at["p"], at["theta"], at["active"], omega, c, r, rng)
    arr = measure_arrays(G, sd)
    shape = arr["sample_shape"]
    S, K = order.shape
    tau = float(G.attrs.get("temperature", 1.0))
    with np.errstate(divide="ignore"):
        beta0 = np.where(keep, tau * np.log(weight), 0.0)
    new = {"beta0": beta0, "active": keep}
    for v in ("beta1", *get_family(arr["family"]).canonical_dims):
        if v in arr:
            x = arr[v].reshape((S,) + arr[v].shape[len(shape) :])
            new[v] = _gather(x, order)
    out = G.copy()
    for v, val in new.items():
        core = [d for d in G[v].dims if d not in sd] if v in G else ["expert"]
        out[v] = (tuple(sd) + tuple(core), val.reshape(shape + val.shape[1:]))
    out = out.assign_coords(expert=np.arange(K))
    out.attrs = {**G.attrs, "mtm_omega": omega, "mtm_c": c, "mtm_r": r}
    k_tilde = keep.sum(axis=1).reshape(shape)
    coords = {d: G[d].values for d in sd if d in G.coords}
    n_exp = xr.DataArray(k_tilde, dims=tuple(sd), coords=coords, name="n_experts")
    return MTMResult(out, n_exp)


def _pmf(counts: np.ndarray, K: int, method: str, attrs=None) -> xr.DataArray:
    pmf = np.bincount(counts.ravel(), minlength=K + 1)[1 : K + 1] / counts.size
    out = xr.DataArray(
        pmf, dims=("n_experts",), coords={"n_experts": np.arange(1, K + 1)}, name="pmf"
    )
    out.attrs = {"method": method, "n_samples": int(counts.size), **(attrs or {})}
    return out


def num_experts_posterior(
    source,
    *,
    method: str = "auto",
    n: int | None = None,
    omega: float | None = None,
    c: float = 1.0,
    r: float | None = None,
    omega_scale: float = 1.0,
    X=None,
    y=None,
    random_seed: int | np.random.Generator | None = None,
    offset=None,
    trials=None,
) -> xr.DataArray:
    """Posterior pmf of the number of experts, pooled over all draws.

    Parameters
    ----------
    source : xarray.Dataset or xarray.DataTree
        Mixing measure with sample dims, or a posterior trace.
    method : {"auto", "active", "mtm", "occupied"}
        "active": K = sum(active) per draw (random-K models). "mtm": K̃ of
        :func:`merge_truncate_merge` (arguments n, omega, c, r, omega_scale, random_seed as
        there). "occupied": the number of distinct experts among allocations drawn per draw and
        observation from the gate weights g(x_i) at `X` (or from the responsibilities
        p(z_i = k | x_i, y_i) when `y` is given) — the DP-style count that docs/math.md §2.4
        warns is inconsistent for K*. "auto": "active" when the measure has ``active``, else "mtm".
    X, y : array_like, optional
        Inputs (and responses) for "occupied".
    offset : array_like, optional
        Per-row log-exposures at `X` for "occupied" with `y` (families with a log link).
    trials : array_like, optional
        Per-row numbers of trials at `X` for "occupied" with `y` (binomial experts).

    Returns
    -------
    xarray.DataArray
        Named "pmf" over ``n_experts`` = 1..K; ``attrs["method"]`` says which count it is.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure
    >>> from bayesmoe.selection.mtm import num_experts_posterior
    >>> act = np.array([[[True, True, False], [True, True, True]]])
    >>> G = make_measure(np.zeros((1, 2, 3)), np.zeros((1, 2, 1, 3)), np.zeros((1, 2, 1, 3)),
    ...                  np.zeros((1, 2, 3)), np.ones((1, 2, 3)), active=act,
    ...                  sample_dims=("chain", "draw"))
    >>> num_experts_posterior(G).values.tolist()
    [0.0, 0.5, 0.5]
    """
    methods = ("auto", "active", "mtm", "occupied")
    if method not in methods:
        raise ValueError(f"`method` must be one of {methods}; got {method!r}.")
    G = as_measure(source, "source")
    K = G.sizes["expert"]
    if method == "auto":
        method = "active" if "active" in G else "mtm"
    if method == "active":
        if "active" not in G:
            raise ValueError(
                "method='active' needs an `active[expert]` variable (random-K models); use "
                "method='mtm' for a fixed, over-fitted K."
            )
        return _pmf(G["active"].sum("expert").values.astype(int), K, "active")
    if method == "mtm":
        res = merge_truncate_merge(source, omega, c, r, n, random_seed, omega_scale=omega_scale)
        attrs = {k: res.measure.attrs[k] for k in ("mtm_omega", "mtm_c", "mtm_r")}
        return _pmf(res.n_experts.values, K, "mtm", attrs)
    if X is None:
        raise ValueError("method='occupied' needs the inputs `X` (and optionally `y`).")
    return _pmf(_occupied(G, X, y, random_seed, offset, trials), K, "occupied")


def _occupied(G: xr.Dataset, X, y, random_seed, offset=None, trials=None) -> np.ndarray:
    from bayesmoe.diagnostics.hellinger import _check_X
    from bayesmoe.measure import expert_log_prob

    X = _check_X(X, G.sizes["feature"])
    sd = sample_dims_of(G)
    arr = measure_arrays(G, sd)
    gate = G.attrs.get("gate", "softmax")
    w = gate_probabilities(
        arr["beta0"],
        arr["beta1"],
        gate_covariates(arr, X),
        gate=gate,
        temperature=G.attrs.get("temperature", 1.0),
        active=arr.get("active"),
    )
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"`y` must have shape ({X.shape[0]},) like X's rows; got {y.shape}.")
        with np.errstate(divide="ignore"):
            logr = np.log(w) + expert_log_prob(arr, X, y, offset=offset, trials=trials)
        logr -= logr.max(axis=-1, keepdims=True)
        w = np.exp(logr)
        w /= w.sum(axis=-1, keepdims=True)
    K = w.shape[-1]
    w = w.reshape(-1, X.shape[0], K)
    u = np.random.default_rng(random_seed).uniform(size=w.shape[:2] + (1,))
    z = np.minimum((u > np.cumsum(w, axis=-1)).sum(axis=-1), K - 1)
    return (z[:, :, None] == np.arange(K)).any(axis=1).sum(axis=1)
