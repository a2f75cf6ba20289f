"""The mixing measure: the one parameter representation every part of bayesmoe shares.

A mixing measure is an :class:`xarray.Dataset` with variables

- ``beta0[expert]`` gate intercepts,
- ``beta1[gate_feature, expert]`` gate slopes on the gate's covariates z (on ``M(z)`` when a
  modified gate is used); the gate's covariates are the experts' (``gate_feature`` labels equal to
  ``feature`` labels) unless the model was given its own (``gate_X``), and may be none (constant
  mixing weights),
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

    g_k(z)   = softmax_k((beta1_k . M(z) + beta0_k) / temperature)     (z = x by default)
    p(y | x) = sum_k g_k(x) N(y | a_k . x + b_k, sigma2_k)                     (gaussian)
    P(y=s|x) = sum_k g_k(x) softmax_s(a_ks . x + b_ks)                         (categorical)
    p(y | x) = sum_k g_k(x) Poisson(y | exp(a_k . x + b_k + offset))            (poisson)

Every expert density comes from its family's one definition (``Family.log_prob``).

The numpy functions here take arrays with arbitrary leading batch dims, so the same code evaluates
one fit, a truth, or every posterior draw at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from bayesmoe.families import get_family
from bayesmoe.gates import GATES, canonical_name, get_gate, is_custom

__all__ = [
    "GATE_TRANSFORMS",
    "SAMPLE_DIMS",
    "conditional_mean",
    "expert_log_prob",
    "gate_covariates",
    "gate_input",
    "gate_logits",
    "gate_probabilities",
    "log_gate_probabilities",
    "log_likelihood",
    "make_measure",
    "measure_arrays",
    "measure_family",
    "measure_from_arrays",
    "measure_parts",
]

SAMPLE_DIMS = ("chain", "draw")

#: the stored gate names and their numpy input transforms M (docs/math.md §1.3; the gates
#: are the modules of :mod:`bayesmoe.gates`: this map is read off them, kept for old imports)
GATE_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: get_gate(name).transform for name in (*GATES, "identity")
}


def _feature_coords(d: int, feature: Sequence | None) -> list:
    if feature is None:
        return [f"x{j}" for j in range(d)]
    feature = list(feature)
    if len(feature) != d:
        raise ValueError(f"`feature` has {len(feature)} names but the slopes have {d} features.")
    return feature


def _gate_feature_coords(d_gate: int, gate_feature: Sequence | None, feature: list) -> list:
    if gate_feature is not None:
        gate_feature = list(gate_feature)
        if len(gate_feature) != d_gate:
            raise ValueError(
                f"`gate_feature` has {len(gate_feature)} names but the gate slopes have {d_gate}."
            )
        return gate_feature
    return list(feature) if d_gate == len(feature) else [f"z{j}" for j in range(d_gate)]


def _expert_d(fam, arrays: dict, ns: int, default: int) -> int:
    """The experts' number of covariates: the ``feature`` axis of the family's variables."""
    for name, dims in fam.canonical_dims.items():
        if "feature" in dims and name in arrays and arrays[name].ndim == ns + len(dims):
            return arrays[name].shape[ns + dims.index("feature")]
    return default


def make_measure(
    beta0,
    beta1,
    a,
    b,
    sigma2=None,
    *,
    family: str | None = None,
    gate: str = "softmax",
    temperature: float = 1.0,
    feature: Sequence | None = None,
    classes: Sequence | None = None,
    active=None,
    sample_dims: Sequence[str] = (),
    gate_feature: Sequence | None = None,
) -> xr.Dataset:
    """Build a mixing-measure Dataset from arrays.

    Parameters
    ----------
    beta0 : array_like, shape (*S, K)
    beta1 : array_like, shape (*S, d_gate, K)
        Gate slopes; ``d_gate`` is the number of gate covariates (by default the experts' d).
    a : array_like, shape (*S, d, K) (gaussian, poisson) or (*S, d, M, K) (categorical)
    b : array_like, shape (*S, K) (gaussian, poisson) or (*S, M, K) (categorical)
    sigma2 : array_like, shape (*S, K), optional
        Noise variances of Gaussian experts.
    family : str, optional
        The expert family (:data:`bayesmoe.families.FAMILIES`). Default: "gaussian" when
        ``sigma2`` is given, else "categorical" (pass ``family="poisson"`` for Poisson experts).
    gate : str
        The gate's stored name ("softmax", "tanh", "sigmoid" or "custom"; "identity", the old name
        of "softmax", is read as it).
    temperature : float
        Gate temperature tau in softmax(eta / tau).
    feature, classes : sequence, optional
        Coordinate labels.
    active : array_like of bool, shape (*S, K), optional
        Active-expert mask for random-K models.
    sample_dims : sequence of str
        Names of the leading dims S (e.g. ``("chain", "draw")``).
    gate_feature : sequence, optional
        Labels of the gate covariates. Default: the expert ``feature`` labels when the gate has as
        many covariates as the experts (the gate sees the experts' covariates), else ``z0, z1, …``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure
    >>> G = make_measure([0.3, 0.0], [[1.0, 0.0]], [[1.5, -1.0]], [0.5, 0.0], [0.8, 1.0])
    >>> G.beta1.dims, G.attrs["family"]
    (('gate_feature', 'expert'), 'gaussian')
    >>> G = make_measure([0.3, 0.0], np.zeros((0, 2)), [[1.5, -1.0]], [0.5, 0.0], [0.8, 1.0])
    >>> G.sizes["gate_feature"]  # constant mixing weights: the gate has no covariates
    0
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
        gate_feature=gate_feature,
    )


def measure_from_arrays(
    beta0,
    beta1,
    params: dict,
    *,
    family: str,
    gate: str = "softmax",
    temperature: float = 1.0,
    feature: Sequence | None = None,
    classes: Sequence | None = None,
    active=None,
    sample_dims: Sequence[str] = (),
    gate_feature: Sequence | None = None,
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
    return measure_parts(
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
        gate_feature=gate_feature,
    ).dataset()


@dataclass
class MeasureParts:
    """A checked mixing measure not yet made into a Dataset: what :func:`measure_from_arrays`
    passes to ``xarray.Dataset`` (``data_vars`` as ``(dims, array)``, ``coords``, ``attrs``).

    For a caller that may never need the Dataset (:func:`bayesmoe.fit_mle` builds its result's
    ``measure_`` on first access): a process's first xarray object costs ~0.3 s when dask is
    installed (xarray imports ``dask.array`` to recognise dask arrays), ten times a small fit.

    Examples
    --------
    >>> from bayesmoe.measure import measure_parts
    >>> P = measure_parts([0.0, 0.0], [[1.0, -1.0]], {"a": [[0.5, 0.1]], "b": [1.0, 2.0]},
    ...                   family="poisson")
    >>> P.sizes["expert"], P.attrs["family"], P.dataset().sizes["expert"]
    (2, 'poisson', 2)
    """

    data_vars: dict
    coords: dict
    attrs: dict
    sizes: dict

    def dataset(self) -> xr.Dataset:
        """The mixing-measure Dataset (a new one at every call)."""
        return xr.Dataset(self.data_vars, coords=self.coords, attrs=dict(self.attrs))


def measure_parts(
    beta0,
    beta1,
    params: dict,
    *,
    family: str,
    gate: str = "softmax",
    temperature: float = 1.0,
    feature: Sequence | None = None,
    classes: Sequence | None = None,
    active=None,
    sample_dims: Sequence[str] = (),
    gate_feature: Sequence | None = None,
) -> MeasureParts:
    """The checks and parts of :func:`measure_from_arrays` without the Dataset (same arguments,
    same errors); :meth:`MeasureParts.dataset` makes it.
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
        raise ValueError(
            f"`beta1` must have shape (*sample, d_gate, {K}); got shape {beta1.shape}."
        )
    d_gate = beta1.shape[-2]
    d = _expert_d(fam, arrays, ns, d_gate)
    sizes = {"feature": d, "gate_feature": d_gate, "expert": K}
    if fam.has_classes:
        sizes["class"] = arrays["a"].shape[-2] if arrays["a"].ndim >= 2 else 0
    data_vars = {
        "beta0": (sd + ("expert",), beta0),
        "beta1": (sd + ("gate_feature", "expert"), beta1),
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
    coords["gate_feature"] = _gate_feature_coords(d_gate, gate_feature, coords["feature"])
    if fam.has_classes:
        coords["class"] = list(classes) if classes is not None else list(range(sizes["class"]))
    if active is not None:
        data_vars["active"] = (sd + ("expert",), np.asarray(active, dtype=bool))
    if gate not in GATE_TRANSFORMS and not is_custom(gate):
        raise ValueError(f"`gate` must be one of {sorted(GATES)} or 'custom'; got {gate!r}.")
    attrs = {"family": fam.name, "gate": canonical_name(gate), "temperature": float(temperature)}
    sizes = {**dict(zip(sd, beta0.shape[:ns], strict=True)), **sizes}
    return MeasureParts(data_vars, coords, attrs, sizes)


def measure_family(measure: xr.Dataset) -> str:
    """The expert family's name of a mixing measure (its ``family`` attr)."""
    if "family" in measure.attrs:
        return get_family(measure.attrs["family"]).name
    return "gaussian" if "sigma2" in measure else "categorical"  # measures of older versions


def measure_arrays(measure: xr.Dataset, sample_dims: Sequence[str] | None = None) -> dict:
    """Numpy arrays of a mixing measure, sample dims leading and expert axis last.

    Returns a dict with keys beta0, beta1, the family's canonical variables, (active),
    ``sample_shape``, ``family``, ``gate_feature`` (labels) and ``gate_shared`` (whether the gate
    sees the experts' covariates).
    """
    measure = upgrade_measure(measure)
    if sample_dims is None:
        sample_dims = [d for d in measure["beta0"].dims if d != "expert"]
    sample_dims = list(sample_dims)
    fam = get_family(measure_family(measure))
    out = {"sample_shape": tuple(measure.sizes[d] for d in sample_dims), "family": fam.name}
    out["gate_shared"] = gate_is_shared(measure)
    out["gate_feature"] = measure["gate_feature"].values.tolist()
    order = {"beta0": ("expert",), "beta1": ("gate_feature", "expert"), **fam.canonical_dims}
    order["active"] = ("expert",)
    for name, core in order.items():
        if name in measure:
            out[name] = np.asarray(measure[name].transpose(*sample_dims, *core).values)
    return out


def upgrade_measure(measure: xr.Dataset) -> xr.Dataset:
    """A measure (or posterior) written before the gate had covariates of its own, whose
    ``beta1`` has dims ``(..., feature, expert)``, with ``beta1`` on ``gate_feature`` instead (the
    gate then sees the experts' covariates); anything else unchanged.
    """
    if "beta1" not in measure or "gate_feature" in measure["beta1"].dims:
        return measure
    b1 = measure["beta1"].rename(feature="gate_feature")
    b1 = b1.assign_coords(gate_feature=measure["feature"].values)
    return measure.drop_vars("beta1").assign(beta1=b1)


def gate_is_shared(measure: xr.Dataset) -> bool:
    """Whether the measure's gate sees the experts' covariates (same labels, same order)."""
    g = measure["gate_feature"].values.tolist()
    f = measure["feature"].values.tolist() if "feature" in measure.coords else []
    return g == f


def gate_covariates(p, X, gate_X=None, *, name: str = "gate_X") -> np.ndarray:
    """The gate's covariates for the rows of ``X``: ``gate_X`` when given; else ``X`` when the gate
    sees the experts' covariates; else the gate's columns of a DataFrame ``X``, by name; an empty
    matrix for a gate without covariates (constant mixing weights).

    ``p`` is a mixing measure (Dataset) or :func:`measure_arrays`' dict. One-line errors when the
    gate's covariates cannot be found or have the wrong number of columns.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure, gate_covariates
    >>> G = make_measure([0.0, 0.0], np.zeros((0, 2)), [[1.0, -1.0]], [0.0, 0.0], [1.0, 1.0])
    >>> gate_covariates(G, np.ones((3, 1))).shape  # constant weights: no gate covariates
    (3, 0)
    """
    from bayesmoe._validation import align_columns, check_X

    if isinstance(p, xr.Dataset):
        p = {"gate_feature": p["gate_feature"].values.tolist(), "gate_shared": gate_is_shared(p)}
    names = p.get("gate_feature")  # None: an arrays dict that does not say (taken as given)
    shared = p.get("gate_shared", True)
    n = np.shape(X)[0]
    if gate_X is None:
        if shared:
            return np.asarray(X, dtype=float)
        if not names:
            return np.zeros((n, 0))
        if hasattr(X, "columns") and set(names) <= {str(c) for c in X.columns}:
            return np.asarray(X[[c for c in X.columns if str(c) in names]][names], dtype=float)
        raise ValueError(
            f"`{name}` is needed: this model's gate has its own covariates {names}; pass them as "
            f"`{name}=` (n rows, {len(names)} columns)."
        )
    Z = check_X(align_columns(gate_X, names, name), name)
    names = [f"z{j}" for j in range(Z.shape[1])] if names is None else list(names)
    if Z.shape[0] != n or Z.shape[1] != len(names):
        raise ValueError(
            f"`{name}` must have shape ({n}, {len(names)}) (the gate's covariates {names}); "
            f"got {Z.shape}."
        )
    return Z


def gate_input(X: np.ndarray, gate: str | Callable = "softmax") -> np.ndarray:
    """Apply the gate input transform M elementwise to X (numpy): the gate module's
    :meth:`~bayesmoe.gates.base.Gate.transform` of a gate name or callable.
    """
    if callable(gate):
        return get_gate(gate).transform(X)
    return get_gate(gate).transform(np.asarray(X, dtype=float))


def gate_logits(beta0, beta1, Z, *, gate="softmax", temperature=1.0) -> np.ndarray:
    """Gate logits (beta1 . M(z) + beta0) / temperature, shape (*S, n, K); ``Z`` holds the
    gate's covariates (:func:`gate_covariates`).
    """
    MZ = gate_input(Z, gate)
    eta = np.einsum("nd,...dk->...nk", MZ, beta1) + np.asarray(beta0)[..., None, :]
    return eta / temperature


def gate_probabilities(beta0, beta1, Z, *, gate="softmax", temperature=1.0, active=None):
    """Softmax gate probabilities g_k(z), shape (*S, n, K); inactive experts get 0."""
    return np.exp(_log_gate(beta0, beta1, Z, gate=gate, temperature=temperature, active=active))


def log_gate_probabilities(beta0, beta1, Z, *, gate="softmax", temperature=1.0, active=None):
    """Log gate probabilities log g_k(z), shape (*S, n, K) (the gate module's log weights);
    inactive experts get -inf.
    """
    return _log_gate(beta0, beta1, Z, gate=gate, temperature=temperature, active=active)


def _log_gate(beta0, beta1, Z, *, gate, temperature, active):
    eta = gate_logits(beta0, beta1, Z, gate=gate, temperature=temperature)
    if active is not None:
        eta = np.where(np.asarray(active, dtype=bool)[..., None, :], eta, -np.inf)
    return get_gate(gate).log_weights(eta)


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


def _trials(trials, n: int):
    if trials is None:
        return None
    t = np.asarray(trials, dtype=float).reshape(-1)
    if t.shape[0] != n or not np.all(np.isfinite(t) & (t >= 1)):
        raise ValueError(
            f"`trials` must be {n} whole numbers >= 1 (one per row); got shape {t.shape}."
        )
    return t


def row_data(n: int, offset=None, trials=None) -> dict:
    """The per-row data dict the families' densities read (``Family.row_data``), checked."""
    return {"offset": _offset(offset, n), "trials": _trials(trials, n)}


def expert_log_prob(params: dict, X, y, *, offset=None, trials=None) -> np.ndarray:
    """Log p_k(y_i | x_i) for each expert, shape (*S, n, K).

    ``params`` holds the family's canonical variables in the user's units (and ``family``; without
    it: Gaussian when ``sigma2`` is present, else categorical). ``y`` as the family codes it
    (categorical: integer class codes 0..M-1).
    """
    fam = _family_of(params)
    X = np.asarray(X, dtype=float)
    canon = {k: np.asarray(params[k]) for k in fam.canonical_dims}
    y = _coded_response(fam, canon, y)
    return fam.log_prob(canon, X, y, data=row_data(X.shape[0], offset, trials))


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


def log_likelihood(
    measure: xr.Dataset | dict,
    X,
    y,
    *,
    gate=None,
    pointwise=False,
    offset=None,
    gate_X=None,
    trials=None,
):
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
    gate_X : array_like, shape (n, d_gate), optional
        The gate's covariates, when the model's gate has its own (see :func:`gate_covariates`).
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of binomial experts (default 1: Bernoulli rows).

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
    Z = gate_covariates(p, X, gate_X)
    log_g = _log_gate(
        p["beta0"], p["beta1"], Z, gate=g, temperature=p["temperature"], active=p.get("active")
    )
    lp = logsumexp(log_g + expert_log_prob(p, X, y, offset=offset, trials=trials), axis=-1)
    return lp if pointwise else lp.sum(axis=-1)


def conditional_mean(
    measure: xr.Dataset | dict, X, *, gate=None, offset=None, gate_X=None, trials=None
) -> np.ndarray:
    """E[y | x], shape (*S, n); for families with classes P(y = s | x), shape (*S, n, M)."""
    p = _as_arrays(measure)
    fam = _family_of(p)
    g = gate if gate is not None else p["gate"]
    Z = gate_covariates(p, X, gate_X)
    w = gate_probabilities(
        p["beta0"], p["beta1"], Z, gate=g, temperature=p["temperature"], active=p.get("active")
    )
    X = np.asarray(X, dtype=float)
    canon = {k: np.asarray(p[k]) for k in fam.canonical_dims}
    means = fam.mean(*fam.user_predictors(canon, X, row_data(X.shape[0], offset, trials)))
    if fam.has_classes:
        return np.einsum("...nk,...nmk->...nm", w, means)
    return (w * means).sum(-1)


def _as_arrays(measure) -> dict:
    if isinstance(measure, xr.Dataset):
        p = measure_arrays(measure)  # upgrades a measure of an older version
        p["gate"] = canonical_name(measure.attrs.get("gate", "softmax"))
        p["temperature"] = measure.attrs.get("temperature", 1.0)
        return p
    p = dict(measure)
    p.setdefault("gate", "softmax")
    p.setdefault("temperature", 1.0)
    return p
