"""Finite-rate gating diagnostics: the gate's information rate and the distortion–rate curve.

docs/math.md §9: the gate is a channel X -> T with P(T = k | x) = g_k(x). On inputs x_1..x_n the
plug-in rate is ``Î(X;T) = H(mean_j g(x_j)) - mean_j H(g(x_j))`` (nats, at most log K), and the
distortion–rate curve D(R) of a distortion d(x, t) is traced by Blahut–Arimoto.

Rate limiters [choice]
----------------------
- ``temperature`` multiplies the measure's own temperature: ``g = softmax(eta / (tau_G * t))``.
- ``bits = b`` quantises the logits uniformly: for each input the logits (after temperature) are
  centred over the active experts (the gate translation does not change the quantised gate),
  clipped to ``[-L, L]`` and rounded to the nearest of the ``2**b`` equally spaced levels
  ``-L + 2L i / (2**b - 1)``, i = 0..2**b - 1. ``L = logit_range``, by default the largest
  centred |logit| of the draw over all inputs and experts (nothing is clipped).
- ``top_k = k`` keeps the k largest logits per input (others get zero gate weight).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy.special import softmax, xlogy

from bayesmoe.diagnostics.hellinger import _check_X
from bayesmoe.diagnostics.voronoi import as_measure, sample_dims_of, wrap
from bayesmoe.families import get_family
from bayesmoe.gates import stored_gate
from bayesmoe.measure import (
    expert_log_prob,
    gate_covariates,
    gate_logits,
    measure_arrays,
    measure_family,
)

__all__ = [
    "distortion_rate",
    "gate_information_rate",
    "plugin_rate",
    "quantize_logits",
    "routing_distortion",
]


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -xlogy(p, p).sum(axis=axis)


def plugin_rate(g: np.ndarray) -> np.ndarray:
    """Plug-in I(X;T) of gate probabilities g (..., n, K): H(mean g) - mean H(g), in nats."""
    g = np.asarray(g, dtype=float)
    return np.maximum(_entropy(g.mean(axis=-2)) - _entropy(g).mean(axis=-1), 0.0)


def quantize_logits(eta, bits: int, logit_range=None, active=None) -> np.ndarray:
    """Uniform b-bit quantiser of gate logits eta (..., n, K) (see the module docstring).

    ``logit_range`` may be a scalar or an array broadcasting against eta's leading dims; None
    uses the largest centred |logit| over inputs and experts of each leading index.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.gate_rate import quantize_logits
    >>> q = quantize_logits(np.array([[1.0, -1.0], [0.3, -0.3]]), bits=2, logit_range=0.6)
    >>> np.round(q, 12).tolist()
    [[0.6, -0.6], [0.2, -0.2]]
    """
    eta = np.asarray(eta, dtype=float)
    act = np.ones(eta.shape[-1], bool) if active is None else np.asarray(active, bool)
    act = np.broadcast_to(act[..., None, :] if act.ndim > 1 else act, eta.shape)
    n_act = act.sum(axis=-1, keepdims=True)
    centred = eta - np.where(act, eta, 0.0).sum(axis=-1, keepdims=True) / n_act
    centred = np.where(act, centred, 0.0)
    if logit_range is None:
        L = np.abs(centred).max(axis=(-2, -1), keepdims=True)
    else:
        L = np.asarray(logit_range, dtype=float)
        if np.any(~np.isfinite(L)) or np.any(L <= 0):
            raise ValueError(f"`logit_range` must be finite and > 0; got {logit_range!r}.")
        L = L.reshape(L.shape + (1, 1))
    L = np.where(L > 0, L, 1.0)  # all logits equal: any range gives the same quantised gate
    step = 2 * L / (2 ** int(bits) - 1)
    q = -L + step * np.round((np.clip(centred, -L, L) + L) / step)
    return np.where(act, q, -np.inf)


def gate_information_rate(
    measure,
    X,
    temperature: float = 1.0,
    bits: int | None = None,
    *,
    logit_range: float | None = None,
    top_k: int | None = None,
    gate: str | Callable | None = None,
    gate_X=None,
) -> xr.DataArray:
    """Plug-in information rate I(X;T) of the gate, per posterior draw (nats).

    Parameters
    ----------
    measure : xarray.Dataset or xarray.DataTree
        Mixing measure with or without sample dims, or a posterior trace.
    X : array_like, shape (n, d)
        Inputs x_j of the plug-in estimate.
    temperature : float
        Extra gate temperature (> 0), multiplying the measure's own.
    bits : int, optional
        Quantise the logits to ``2**bits`` levels (see the module docstring).
    logit_range : float, optional
        Range L of the quantiser; default: the largest centred |logit| of each draw.
    top_k : int, optional
        Route each input only to its k largest logits.
    gate : str or callable, optional
        Gate transform overriding the measure's ``gate`` attribute (needed for "custom").
    gate_X : array_like, shape (n, d_gate), optional
        The gate's covariates at the rows of ``X``, for a measure whose gate has its own.

    Returns
    -------
    xarray.DataArray
        Named "rate", in nats, in [0, log K], over the sample dims of `measure`.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure
    >>> from bayesmoe.diagnostics.gate_rate import gate_information_rate
    >>> G = make_measure([0.0, 0.0], [[60.0, -60.0]], [[0.0, 0.0]], [0.0, 0.0], [1.0, 1.0])
    >>> X = np.array([[-1.0], [1.0]])
    >>> round(float(gate_information_rate(G, X)), 6), round(float(np.log(2)), 6)
    (0.693147, 0.693147)
    """
    G = as_measure(measure, "measure")
    if not np.isfinite(temperature) or not temperature > 0:
        raise ValueError(f"`temperature` must be a finite number > 0; got {temperature!r}.")
    if bits is not None and (not isinstance(bits, (int, np.integer)) or bits < 1):
        raise ValueError(
            f"`bits` must be a positive integer (or None for no quantisation); got {bits!r}."
        )
    K = G.sizes["expert"]
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= K):
        raise ValueError(f"`top_k` must be an integer in 1..{K}; got {top_k!r}.")
    X = _check_X(X, G.sizes["feature"])
    sd = sample_dims_of(G)
    arr = measure_arrays(G, sd)
    g_name = stored_gate(G.attrs.get("gate"), gate)
    tau = float(G.attrs.get("temperature", 1.0)) * float(temperature)
    Z = gate_covariates(arr, X, gate_X)
    eta = gate_logits(arr["beta0"], arr["beta1"], Z, gate=g_name, temperature=tau)
    active = arr.get("active")
    if bits is not None:
        eta = quantize_logits(eta, bits, logit_range, active)
    elif active is not None:
        eta = np.where(active[..., None, :], eta, -np.inf)
    if top_k is not None and top_k < K:
        kth = np.sort(eta, axis=-1)[..., K - top_k][..., None]
        eta = np.where(eta >= kth, eta, -np.inf)
    rate = plugin_rate(softmax(eta, axis=-1))
    out = wrap(rate.reshape(-1), G, sd, name="rate")
    out.attrs = {
        "units": "nats",
        "temperature": float(temperature),
        "bits": -1 if bits is None else int(bits),
        "n_inputs": X.shape[0],
    }
    return out


def distortion_rate(
    distortion,
    slopes,
    *,
    weights=None,
    max_iter: int = 10_000,
    tol: float = 1e-12,
) -> xr.Dataset:
    """Distortion–rate curve by Blahut–Arimoto (docs/math.md §9), one point per slope s >= 0.

    For each s: ``q <- uniform``; repeat ``P(t|x) ∝ q_t exp(-s d(x, t))``, ``q <- E_x P(.|x)``
    until ``max |Δq| < tol``; then ``R = E_x KL(P(.|x) || q)`` (nats) and
    ``D = E_x sum_t P(t|x) d(x, t)``. Larger slopes give larger R and smaller D.

    Parameters
    ----------
    distortion : array_like or xarray.DataArray, shape (n, K)
        d(x_i, t): rows are inputs, columns are routes (experts).
    slopes : array_like, shape (L,)
        Non-negative slopes s.
    weights : array_like, shape (n,), optional
        Probabilities of the inputs (default uniform: the empirical distribution).
    max_iter, tol : int, float
        Iteration cap and convergence tolerance on q.

    Returns
    -------
    xarray.Dataset
        Over ``slope``: ``R``, ``D``, ``n_iter`` and ``q[slope, expert]``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.gate_rate import distortion_rate
    >>> rd = distortion_rate(np.array([[0.0, 1.0], [1.0, 0.0]]), [0.0, 2.0])
    >>> np.round(rd.D.values, 4).tolist(), np.round(rd.R.values, 4).tolist()
    ([0.5, 0.1192], [0.0, 0.3278])
    """
    dims = ("obs", "expert")
    if isinstance(distortion, xr.DataArray):
        dims = distortion.dims
        distortion = distortion.values
    d = np.asarray(distortion, dtype=float)
    if d.ndim != 2 or min(d.shape) < 1:
        raise ValueError(f"`distortion` must be a 2-d array (inputs, routes); got shape {d.shape}.")
    if not np.all(np.isfinite(d)):
        raise ValueError("`distortion` contains NaN or inf; every d(x, t) must be finite.")
    s = np.atleast_1d(np.asarray(slopes, dtype=float))
    if s.ndim != 1 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"`slopes` must be a 1-d array of finite numbers >= 0; got {slopes!r}.")
    n, K = d.shape
    if weights is None:
        px = np.full(n, 1.0 / n)
    else:
        px = np.asarray(weights, dtype=float)
        if px.shape != (n,) or np.any(px < 0) or not np.isclose(px.sum(), 1.0):
            raise ValueError(f"`weights` must be {n} non-negative numbers summing to 1.")
    d0 = d - d.min(axis=1, keepdims=True)  # per-row shift: same P(t|x), no underflow
    q = np.full((len(s), K), 1.0 / K)
    n_iter = np.zeros(len(s), int)
    done = np.zeros(len(s), bool)
    logk = -s[:, None, None] * d0[None]
    for it in range(1, max_iter + 1):
        with np.errstate(divide="ignore"):
            P = softmax(np.log(q)[:, None, :] + logk, axis=-1)
        q_new = np.einsum("i,lik->lk", px, P)
        delta = np.abs(q_new - q).max(axis=1)
        q = np.where(done[:, None], q, q_new)
        n_iter = np.where(done, n_iter, it)
        done |= delta < tol
        if done.all():
            break
    with np.errstate(divide="ignore"):
        P = softmax(np.log(q)[:, None, :] + logk, axis=-1)
    kl = (xlogy(P, P) - xlogy(P, q[:, None, :])).sum(axis=-1)  # KL(P(.|x) || q), 0 log 0 = 0
    R = kl @ px
    D = np.einsum("i,lik,ik->l", px, P, d)
    coords = {"slope": s, dims[1]: np.arange(K)}
    return xr.Dataset(
        {
            "R": ("slope", np.maximum(R, 0.0), {"units": "nats"}),
            "D": ("slope", D),
            "n_iter": ("slope", n_iter),
            "q": (("slope", dims[1]), q),
        },
        coords=coords,
        attrs={"converged": bool(done.all()), "tol": tol},
    )


def routing_distortion(measure, X, y, *, loss: str = "log") -> xr.DataArray:
    """Distortion d(x_i, t) of routing observation i to expert t under a single measure.

    ``loss="log"``: ``-log p_t(y_i | x_i)``; ``loss="squared"`` (Gaussian experts):
    ``(y_i - a_t . x_i - b_t)²``. The result feeds :func:`distortion_rate`.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.diagnostics.gate_rate import routing_distortion
    >>> X, y, truth = simulate("S-E", n=20, random_seed=0)
    >>> routing_distortion(truth, X, y).dims
    ('obs', 'expert')
    """
    G = as_measure(measure, "measure")
    if sample_dims_of(G):
        raise ValueError(
            f"`measure` must be a single measure (no sample dims); got {sample_dims_of(G)}. "
            "Select one draw or a point estimate first."
        )
    if loss not in ("log", "squared"):
        raise ValueError(f"`loss` must be 'log' or 'squared'; got {loss!r}.")
    X = _check_X(X, G.sizes["feature"])
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"`y` must have shape ({X.shape[0]},); got {y.shape}.")
    arr = measure_arrays(G, [])
    if loss == "squared":
        fam = get_family(measure_family(G))
        if fam.has_classes:
            raise ValueError("loss='squared' needs a real or count response; use loss='log'.")
        canon = {k: arr[k] for k in fam.canonical_dims}
        mean = fam.mean(*fam.user_predictors(canon, X))
        d = (y[:, None] - mean) ** 2
    else:
        d = -expert_log_prob(arr, X, y)
    return xr.DataArray(
        d, dims=("obs", "expert"), coords={"expert": G["expert"].values}, name="distortion"
    )
