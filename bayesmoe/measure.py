"""The mixing measure: the one parameter representation every part of bayesmoe shares.

A mixing measure is an :class:`xarray.Dataset` with variables

- ``beta0[expert]`` gate intercepts,
- ``beta1[feature, expert]`` gate slopes (on ``M(x)`` when a modified gate is used),
- ``a[feature, expert]``, ``b[expert]``, ``sigma2[expert]`` (noise *variances*) for Gaussian
  experts,
  or ``a[feature, class, expert]``, ``b[class, expert]`` for multinomial-logistic experts
  (the last class is the reference, pinned to zero),
- optionally ``active[expert]`` (bool) when the number of experts is random,

expert axis last, in the user's units, with optional leading sample dims (``chain``, ``draw``).
``attrs`` hold ``family`` ("gaussian" or "categorical"), ``gate`` (name of the input transform
``M``) and ``temperature``.

The model it describes is (docs/math.md §1)::

    g_k(x)   = softmax_k((beta1_k . M(x) + beta0_k) / temperature)
    p(y | x) = sum_k g_k(x) N(y | a_k . x + b_k, sigma2_k)                     (gaussian)
    P(y=s|x) = sum_k g_k(x) softmax_s(a_ks . x + b_ks)                         (categorical)

The numpy functions here take arrays with arbitrary leading batch dims, so the same code evaluates
one fit, a truth, or every posterior draw at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr
from scipy.special import expit, log_softmax, logsumexp

__all__ = [
    "GATE_TRANSFORMS",
    "SAMPLE_DIMS",
    "conditional_mean",
    "expert_log_prob",
    "gate_input",
    "gate_logits",
    "gate_probabilities",
    "log_likelihood",
    "make_measure",
    "measure_arrays",
    "measure_family",
]

SAMPLE_DIMS = ("chain", "draw")

#: numpy versions of the named gate input transforms M (docs/math.md §1.3).
GATE_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "sigmoid": expit,
}


def _feature_coords(d: int, feature: Sequence | None) -> list:
    if feature is None:
        return [f"x{j}" for j in range(d)]
    feature = list(feature)
    if len(feature) != d:
        raise ValueError(f"`feature` has {len(feature)} names but the slopes have {d} features.")
    return feature


def make_measure(
    beta0,
    beta1,
    a,
    b,
    sigma2=None,
    *,
    gate: str = "identity",
    temperature: float = 1.0,
    feature: Sequence | None = None,
    classes: Sequence | None = None,
    active=None,
    sample_dims: Sequence[str] = (),
) -> xr.Dataset:
    """Build a mixing-measure Dataset from arrays.

    Parameters
    ----------
    beta0 : array_like, shape (*S, K)
    beta1 : array_like, shape (*S, d, K)
    a : array_like, shape (*S, d, K) (gaussian) or (*S, d, M, K) (categorical)
    b : array_like, shape (*S, K) (gaussian) or (*S, M, K) (categorical)
    sigma2 : array_like, shape (*S, K), optional
        Noise variances. Given means Gaussian experts; omitted means categorical experts.
    gate : str
        Name of the gate input transform ("identity", "tanh", "sigmoid" or "custom").
    temperature : float
        Gate temperature tau in softmax(eta / tau).
    feature, classes : sequence, optional
        Coordinate labels.
    active : array_like of bool, shape (*S, K), optional
        Active-expert mask for random-K models.
    sample_dims : sequence of str
        Names of the leading dims S (e.g. ``("chain", "draw")``).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure
    >>> G = make_measure([0.3, 0.0], [[1.0, 0.0]], [[1.5, -1.0]], [0.5, 0.0], [0.8, 1.0])
    >>> G.beta1.dims
    ('feature', 'expert')
    """
    sd = tuple(sample_dims)
    beta0 = np.asarray(beta0, dtype=float)
    beta1 = np.asarray(beta1, dtype=float)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    arrays = {"beta0": beta0, "beta1": beta1, "a": a, "b": b}
    if sigma2 is not None:
        arrays["sigma2"] = np.asarray(sigma2, dtype=float)
    for name, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` contains NaN or inf; every parameter must be finite.")
    if not (np.isscalar(temperature) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive number; got {temperature!r}.")
    ns = len(sd)
    if beta0.ndim != ns + 1:
        raise ValueError(f"`beta0` must have shape (*sample, K); got shape {beta0.shape}.")
    K = beta0.shape[-1]
    if beta1.ndim != ns + 2 or beta1.shape[-1] != K:
        raise ValueError(f"`beta1` must have shape (*sample, d, {K}); got shape {beta1.shape}.")
    d = beta1.shape[-2]
    feat = _feature_coords(d, feature)
    categorical = sigma2 is None
    data_vars = {
        "beta0": (sd + ("expert",), beta0),
        "beta1": (sd + ("feature", "expert"), beta1),
    }
    coords = {"expert": np.arange(K), "feature": feat}
    if categorical:
        if a.ndim != ns + 3 or a.shape[-1] != K or a.shape[-3] != d:
            raise ValueError(
                f"categorical `a` must have shape (*sample, {d}, M, {K}); got shape {a.shape}."
            )
        M = a.shape[-2]
        if b.shape[-2:] != (M, K):
            raise ValueError(f"categorical `b` must have shape (*sample, {M}, {K}); got {b.shape}.")
        data_vars["a"] = (sd + ("feature", "class", "expert"), a)
        data_vars["b"] = (sd + ("class", "expert"), b)
        coords["class"] = list(classes) if classes is not None else list(range(M))
    else:
        sigma2 = np.asarray(sigma2, dtype=float)
        if a.shape[-2:] != (d, K):
            raise ValueError(f"gaussian `a` must have shape (*sample, {d}, {K}); got {a.shape}.")
        if b.shape[-1] != K or sigma2.shape[-1] != K:
            raise ValueError("gaussian `b` and `sigma2` must have K entries on their last axis.")
        if np.any(sigma2 <= 0):
            raise ValueError("`sigma2` (noise variances) must be positive.")
        data_vars["a"] = (sd + ("feature", "expert"), a)
        data_vars["b"] = (sd + ("expert",), b)
        data_vars["sigma2"] = (sd + ("expert",), sigma2)
    if active is not None:
        data_vars["active"] = (sd + ("expert",), np.asarray(active, dtype=bool))
    if gate not in GATE_TRANSFORMS and gate != "custom":
        raise ValueError(
            f"`gate` must be one of {sorted(GATE_TRANSFORMS)} or 'custom'; got {gate!r}."
        )
    attrs = {
        "family": "categorical" if categorical else "gaussian",
        "gate": gate,
        "temperature": float(temperature),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def measure_family(measure: xr.Dataset) -> str:
    """Return "gaussian" or "categorical" for a mixing measure."""
    return "gaussian" if "sigma2" in measure else "categorical"


def measure_arrays(measure: xr.Dataset, sample_dims: Sequence[str] | None = None) -> dict:
    """Numpy arrays of a mixing measure, sample dims leading and expert axis last.

    Returns a dict with keys beta0, beta1, a, b, (sigma2), (active) and ``sample_shape``.
    """
    if sample_dims is None:
        sample_dims = [d for d in measure["beta0"].dims if d != "expert"]
    sample_dims = list(sample_dims)
    out = {"sample_shape": tuple(measure.sizes[d] for d in sample_dims)}
    cat = measure_family(measure) == "categorical"
    order = {
        "beta0": ["expert"],
        "beta1": ["feature", "expert"],
        "a": ["feature", "class", "expert"] if cat else ["feature", "expert"],
        "b": ["class", "expert"] if cat else ["expert"],
        "sigma2": ["expert"],
        "active": ["expert"],
    }
    for name, core in order.items():
        if name in measure:
            out[name] = np.asarray(measure[name].transpose(*sample_dims, *core).values)
    return out


def gate_input(X: np.ndarray, gate: str | Callable = "identity") -> np.ndarray:
    """Apply the gate input transform M elementwise to X (numpy)."""
    if callable(gate):
        out = gate(X)
        if hasattr(out, "eval"):  # a PyTensor expression from a tensor callable
            out = out.eval()
        return np.asarray(out, dtype=float)
    try:
        return GATE_TRANSFORMS[gate](np.asarray(X, dtype=float))
    except KeyError:
        raise ValueError(
            f"Unknown gate transform {gate!r}; expected one of {sorted(GATE_TRANSFORMS)} or a "
            "callable. For a measure with gate='custom' pass the callable as `gate=`."
        ) from None


def gate_logits(beta0, beta1, X, *, gate="identity", temperature=1.0) -> np.ndarray:
    """Gate logits (beta1 . M(x) + beta0) / temperature, shape (*S, n, K)."""
    Z = gate_input(X, gate)
    eta = np.einsum("nd,...dk->...nk", Z, beta1) + np.asarray(beta0)[..., None, :]
    return eta / temperature


def gate_probabilities(beta0, beta1, X, *, gate="identity", temperature=1.0, active=None):
    """Softmax gate probabilities g_k(x), shape (*S, n, K); inactive experts get 0."""
    return np.exp(_log_gate(beta0, beta1, X, gate=gate, temperature=temperature, active=active))


def _log_gate(beta0, beta1, X, *, gate, temperature, active):
    eta = gate_logits(beta0, beta1, X, gate=gate, temperature=temperature)
    if active is not None:
        eta = np.where(np.asarray(active, dtype=bool)[..., None, :], eta, -np.inf)
    return log_softmax(eta, axis=-1)


def expert_log_prob(params: dict, X, y) -> np.ndarray:
    """Log p_k(y_i | x_i) for each expert, shape (*S, n, K).

    ``params`` holds a, b and sigma2 (gaussian) or a, b (categorical; y are integer codes 0..M-1).
    """
    X = np.asarray(X, dtype=float)
    a, b = np.asarray(params["a"]), np.asarray(params["b"])
    if "sigma2" in params and params["sigma2"] is not None:
        mu = np.einsum("nd,...dk->...nk", X, a) + b[..., None, :]
        s2 = np.asarray(params["sigma2"])[..., None, :]
        r = np.asarray(y, dtype=float)[:, None] - mu
        return -0.5 * (np.log(2 * np.pi * s2) + r * r / s2)
    y_raw = np.asarray(y)
    n_classes = a.shape[-2]
    y = y_raw.astype(int)
    if np.any(y != y_raw) or np.any((y < 0) | (y >= n_classes)):
        raise ValueError(
            f"Categorical `y` must hold integer class codes 0..{n_classes - 1}; got values outside "
            "that range or non-integers. Encode labels first (e.g. with numpy.unique(..., "
            "return_inverse=True))."
        )
    logits = np.einsum("nd,...dmk->...nmk", X, a) + b[..., None, :, :]
    logp = log_softmax(logits, axis=-2)  # over classes
    idx = np.broadcast_to(y[:, None, None], logp.shape[:-3] + (y.shape[0], 1, logp.shape[-1]))
    return np.take_along_axis(logp, idx, axis=-2)[..., 0, :]


def log_likelihood(measure: xr.Dataset | dict, X, y, *, gate=None, pointwise=False):
    """Log-likelihood of (X, y) under a mixing measure, vectorised over its sample dims.

    Parameters
    ----------
    measure : xarray.Dataset or dict
        A mixing measure (Dataset) or the dict returned by :func:`measure_arrays` plus ``gate``
        and ``temperature`` keys.
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
        Real responses (gaussian) or integer class codes 0..M-1 (categorical).
    gate : str or callable, optional
        Overrides the gate transform stored in the measure (needed for gate="custom").
    pointwise : bool
        If True return shape (*S, n); else the sum over observations, shape S.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure, log_likelihood
    >>> G = make_measure([0.0], [[0.0]], [[0.0]], [0.0], [1.0])
    >>> round(float(log_likelihood(G, np.zeros((1, 1)), np.zeros(1))), 6)
    -0.918939
    """
    p = _as_arrays(measure)
    g = gate if gate is not None else p["gate"]
    log_g = _log_gate(
        p["beta0"], p["beta1"], X, gate=g, temperature=p["temperature"], active=p.get("active")
    )
    lp = logsumexp(log_g + expert_log_prob(p, X, y), axis=-1)
    return lp if pointwise else lp.sum(axis=-1)


def conditional_mean(measure: xr.Dataset | dict, X, *, gate=None) -> np.ndarray:
    """E[y | x] (gaussian) shape (*S, n), or P(y = s | x) (categorical) shape (*S, n, M)."""
    p = _as_arrays(measure)
    g = gate if gate is not None else p["gate"]
    w = gate_probabilities(
        p["beta0"], p["beta1"], X, gate=g, temperature=p["temperature"], active=p.get("active")
    )
    X = np.asarray(X, dtype=float)
    if "sigma2" in p:
        mu = np.einsum("nd,...dk->...nk", X, p["a"]) + p["b"][..., None, :]
        return (w * mu).sum(-1)
    logits = np.einsum("nd,...dmk->...nmk", X, p["a"]) + p["b"][..., None, :, :]
    probs = np.exp(log_softmax(logits, axis=-2))
    return np.einsum("...nk,...nmk->...nm", w, probs)


def _as_arrays(measure) -> dict:
    if isinstance(measure, xr.Dataset):
        p = measure_arrays(measure)
        p["gate"] = measure.attrs.get("gate", "identity")
        p["temperature"] = measure.attrs.get("temperature", 1.0)
        return p
    p = dict(measure)
    p.setdefault("gate", "identity")
    p.setdefault("temperature", 1.0)
    return p
