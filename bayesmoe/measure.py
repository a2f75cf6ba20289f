"""The mixing measure: the one parameter representation every part of bayesmoe shares.

A mixing measure is an :class:`xarray.Dataset` with variables

- ``beta0[expert]`` gate intercepts,
- ``beta1[feature, expert]`` gate slopes (on ``M(x)`` when a modified gate is used),
- the expert family's canonical variables (:mod:`bayesmoe.families`): ``a[feature, expert]``,
  ``b[expert]``, ``sigma2[expert]`` (noise *variances*) for Gaussian experts;
  ``a[feature, class, expert]``, ``b[class, expert]`` for multinomial-logistic experts (the last
  class is the reference, pinned to zero); ``a[feature, expert]``, ``b[expert]`` (log link) for
  Poisson experts,
- optionally ``active[expert]`` (bool) when the number of experts is random,

expert axis last, in the user's units, with optional leading sample dims (``chain``, ``draw``).
``attrs`` hold ``family`` (a name of :data:`bayesmoe.families.FAMILIES`), ``gate`` (name of the
input transform ``M``) and ``temperature``.

The model it describes is (docs/math.md §1)::

    g_k(x)   = softmax_k((beta1_k . M(x) + beta0_k) / temperature)
    p(y | x) = sum_k g_k(x) N(y | a_k . x + b_k, sigma2_k)                     (gaussian)
    P(y=s|x) = sum_k g_k(x) softmax_s(a_ks . x + b_ks)                         (categorical)
    p(y | x) = sum_k g_k(x) Poisson(y | exp(a_k . x + b_k + offset))            (poisson)

Every expert density comes from its family's one definition (``Family.log_prob``).

The numpy functions here take arrays with arbitrary leading batch dims, so the same code evaluates
one fit, a truth, or every posterior draw at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr
from scipy.special import expit, log_softmax, logsumexp

from bayesmoe.families import get_family
from bayesmoe.models.gates import is_custom

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
    "measure_from_arrays",
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
    family: str | None = None,
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
    a : array_like, shape (*S, d, K) (gaussian, poisson) or (*S, d, M, K) (categorical)
    b : array_like, shape (*S, K) (gaussian, poisson) or (*S, M, K) (categorical)
    sigma2 : array_like, shape (*S, K), optional
        Noise variances of Gaussian experts.
    family : str, optional
        The expert family (:data:`bayesmoe.families.FAMILIES`). Default: "gaussian" when
        ``sigma2`` is given, else "categorical" (pass ``family="poisson"`` for Poisson experts).
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
    >>> G.beta1.dims, G.attrs["family"]
    (('feature', 'expert'), 'gaussian')
    """
    if family is None:
        family = "gaussian" if sigma2 is not None else "categorical"
    params = {"a": a, "b": b} if sigma2 is None else {"a": a, "b": b, "sigma2": sigma2}
    return measure_from_arrays(
        beta0,
        beta1,
        params,
        family=family,
        gate=gate,
        temperature=temperature,
        feature=feature,
        classes=classes,
        active=active,
        sample_dims=sample_dims,
    )


def measure_from_arrays(
    beta0,
    beta1,
    params: dict,
    *,
    family: str,
    gate: str = "identity",
    temperature: float = 1.0,
    feature: Sequence | None = None,
    classes: Sequence | None = None,
    active=None,
    sample_dims: Sequence[str] = (),
) -> xr.Dataset:
    """A mixing-measure Dataset from the gate arrays and the family's canonical variables
    ``params`` (see :func:`make_measure`; any family).

    Examples
    --------
    >>> from bayesmoe.measure import measure_from_arrays
    >>> G = measure_from_arrays([0.0, 0.0], [[1.0, -1.0]], {"a": [[0.5, 0.1]], "b": [1.0, 2.0]},
    ...                         family="poisson")
    >>> G.attrs["family"], sorted(G.data_vars)
    ('poisson', ['a', 'b', 'beta0', 'beta1'])
    """
    sd = tuple(sample_dims)
    fam = get_family(family)
    arrays = {"beta0": beta0, "beta1": beta1, **params}
    arrays = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    for name, arr in arrays.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` contains NaN or inf; every parameter must be finite.")
    if not (np.isscalar(temperature) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive number; got {temperature!r}.")
    ns = len(sd)
    beta0, beta1 = arrays["beta0"], arrays["beta1"]
    if beta0.ndim != ns + 1:
        raise ValueError(f"`beta0` must have shape (*sample, K); got shape {beta0.shape}.")
    K = beta0.shape[-1]
    if beta1.ndim != ns + 2 or beta1.shape[-1] != K:
        raise ValueError(f"`beta1` must have shape (*sample, d, {K}); got shape {beta1.shape}.")
    d = beta1.shape[-2]
    sizes = {"feature": d, "expert": K}
    if fam.has_classes:
        sizes["class"] = arrays["a"].shape[-2] if arrays["a"].ndim >= 2 else 0
    data_vars = {
        "beta0": (sd + ("expert",), beta0),
        "beta1": (sd + ("feature", "expert"), beta1),
    }
    for name, dims in fam.canonical_dims.items():
        if name not in arrays:
            raise ValueError(f"{fam.name} experts need `{name}`; got none.")
        arr = arrays[name]
        want = tuple(sizes[x] for x in dims)
        if arr.ndim != ns + len(dims) or arr.shape[ns:] != want:
            raise ValueError(
                f"{fam.name} `{name}` must have shape (*sample, {', '.join(map(str, want))}) "
                f"for dims {dims}; got shape {arr.shape}."
            )
        data_vars[name] = (sd + dims, arr)
    extra = sorted(set(arrays) - {"beta0", "beta1"} - set(fam.canonical_dims))
    if extra:
        raise ValueError(f"{fam.name} experts have no parameter(s) {extra}.")
    if "sigma2" in arrays and np.any(arrays["sigma2"] <= 0):
        raise ValueError("`sigma2` (noise variances) must be positive.")
    coords = {"expert": np.arange(K), "feature": _feature_coords(d, feature)}
    if fam.has_classes:
        coords["class"] = list(classes) if classes is not None else list(range(sizes["class"]))
    if active is not None:
        data_vars["active"] = (sd + ("expert",), np.asarray(active, dtype=bool))
    if gate not in GATE_TRANSFORMS and not is_custom(gate):
        raise ValueError(
            f"`gate` must be one of {sorted(GATE_TRANSFORMS)} or 'custom'; got {gate!r}."
        )
    attrs = {"family": fam.name, "gate": gate, "temperature": float(temperature)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def measure_family(measure: xr.Dataset) -> str:
    """The expert family's name of a mixing measure (its ``family`` attr)."""
    if "family" in measure.attrs:
        return get_family(measure.attrs["family"]).name
    return "gaussian" if "sigma2" in measure else "categorical"  # measures of older versions


def measure_arrays(measure: xr.Dataset, sample_dims: Sequence[str] | None = None) -> dict:
    """Numpy arrays of a mixing measure, sample dims leading and expert axis last.

    Returns a dict with keys beta0, beta1, the family's canonical variables, (active),
    ``sample_shape`` and ``family``.
    """
    if sample_dims is None:
        sample_dims = [d for d in measure["beta0"].dims if d != "expert"]
    sample_dims = list(sample_dims)
    fam = get_family(measure_family(measure))
    out = {"sample_shape": tuple(measure.sizes[d] for d in sample_dims), "family": fam.name}
    order = {"beta0": ("expert",), "beta1": ("feature", "expert"), **fam.canonical_dims}
    order["active"] = ("expert",)
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


def _family_of(params: dict):
    if "family" in params:
        return get_family(params["family"])
    return get_family("gaussian" if params.get("sigma2") is not None else "categorical")


def _offset(offset, n: int):
    if offset is None:
        return None
    off = np.asarray(offset, dtype=float).reshape(-1)
    if off.shape[0] != n or not np.all(np.isfinite(off)):
        raise ValueError(
            f"`offset` must be {n} finite numbers (one per row); got shape {off.shape}."
        )
    return off


def expert_log_prob(params: dict, X, y, *, offset=None) -> np.ndarray:
    """Log p_k(y_i | x_i) for each expert, shape (*S, n, K).

    ``params`` holds the family's canonical variables in the user's units (and ``family``; without
    it: Gaussian when ``sigma2`` is present, else categorical). ``y`` as the family codes it
    (categorical: integer class codes 0..M-1).
    """
    fam = _family_of(params)
    X = np.asarray(X, dtype=float)
    canon = {k: np.asarray(params[k]) for k in fam.canonical_dims}
    y = _coded_response(fam, canon, y)
    return fam.log_prob(canon, X, y, data={"offset": _offset(offset, X.shape[0])})


def _coded_response(fam, canon, y):
    if not fam.has_classes:
        return np.asarray(y, dtype=float)
    y_raw = np.asarray(y)
    n_classes = canon["a"].shape[-2]
    codes = y_raw.astype(int)
    if np.any(codes != y_raw) or np.any((codes < 0) | (codes >= n_classes)):
        raise ValueError(
            f"Categorical `y` must hold integer class codes 0..{n_classes - 1}; got values outside "
            "that range or non-integers. Encode labels first (e.g. with numpy.unique(..., "
            "return_inverse=True))."
        )
    return codes


def log_likelihood(measure: xr.Dataset | dict, X, y, *, gate=None, pointwise=False, offset=None):
    """Log-likelihood of (X, y) under a mixing measure, vectorised over its sample dims.

    Parameters
    ----------
    measure : xarray.Dataset or dict
        A mixing measure (Dataset) or the dict returned by :func:`measure_arrays` plus ``gate``
        and ``temperature`` keys.
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
        Responses as the family codes them (categorical: integer class codes 0..M-1).
    gate : str or callable, optional
        Overrides the gate transform stored in the measure (needed for gate="custom").
    pointwise : bool
        If True return shape (*S, n); else the sum over observations, shape S.
    offset : array_like, shape (n,), optional
        Per-row log-exposure of families that take one (Poisson).

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
    lp = logsumexp(log_g + expert_log_prob(p, X, y, offset=offset), axis=-1)
    return lp if pointwise else lp.sum(axis=-1)


def conditional_mean(measure: xr.Dataset | dict, X, *, gate=None, offset=None) -> np.ndarray:
    """E[y | x], shape (*S, n); for families with classes P(y = s | x), shape (*S, n, M)."""
    p = _as_arrays(measure)
    fam = _family_of(p)
    g = gate if gate is not None else p["gate"]
    w = gate_probabilities(
        p["beta0"], p["beta1"], X, gate=g, temperature=p["temperature"], active=p.get("active")
    )
    X = np.asarray(X, dtype=float)
    canon = {k: np.asarray(p[k]) for k in fam.canonical_dims}
    means = fam.mean(*fam.user_predictors(canon, X, {"offset": _offset(offset, X.shape[0])}))
    if fam.has_classes:
        return np.einsum("...nk,...nmk->...nm", w, means)
    return (w * means).sum(-1)


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
