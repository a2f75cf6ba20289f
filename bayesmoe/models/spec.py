"""What a fixed-K model is, without PyMC: validated data, options, labels and the data transform.

:func:`prepare` (shared by the fixed-K, random-K and DP builders) and :func:`fixed_k_spec` do every
check :func:`bayesmoe.models.build_model` does before it builds the graph, and
:func:`trace_layout` gives the coords, dims and constant data the built model would have. The
compiled-sampler path (:mod:`bayesmoe.inference.nuts.jax_nuts`) uses them to sample a model without
importing PyMC; tests/models/test_spec.py checks them against the built PyMC model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bayesmoe._validation import (
    check_enough_rows,
    check_family,
    check_int,
    check_X,
    check_y,
    family_keyword,
    n_parameters,
)
from bayesmoe._validation import check_trials as _check_trials
from bayesmoe.families import get_family
from bayesmoe.models.gates import resolve_gate, transform_of
from bayesmoe.models.priors import Priors, resolve_priors
from bayesmoe.scaling import Standardizer

__all__ = ["IDENTIFIABILITY", "ModelInfo", "Prepared", "fixed_k_spec", "prepare", "trace_layout"]

IDENTIFIABILITY = ("zerosum", "reference")


@dataclass
class ModelInfo:
    """What a built model needs to be read back: options, labels and the data transform."""

    family: str
    n_experts: int
    gate: str  # measure name: identity / tanh / sigmoid / custom
    gate_fn: Callable = field(repr=False)
    temperature: float
    identifiability: str
    ordered: bool
    priors: Priors
    feature_names: list
    classes: list | None
    standardizer: Standardizer
    gate_feature_names: list = field(default_factory=list)

    def initvals(self) -> dict:
        """Valid start values PyMC cannot find itself (ordered intercepts need distinct ones)."""
        if not (self.ordered and self.n_experts > 1):
            return {}
        fam = get_family(self.family)
        sizes = fam.dim_sizes(self.standardizer.x_center.shape[0], len(self.classes or ()))
        out = {}
        for p in fam.params:
            if p.intercept:
                shape = tuple(sizes[d] for d in p.dims)
                out[f"{p.name}_std"] = np.broadcast_to(
                    np.linspace(-1.0, 1.0, self.n_experts), (*shape, self.n_experts)
                ).copy()
        return out

    def options(self) -> dict:
        """JSON-ready record of the model options (for provenance attrs)."""
        return {
            "family": self.family,
            "n_experts": self.n_experts,
            "gate": self.gate,
            "temperature": self.temperature,
            "identifiability": self.identifiability,
            "ordered": self.ordered,
            "priors": self.priors.to_dict(),
            "gate_features": list(map(str, self.gate_feature_names)),
        }


# ----- the checks and transform shared by the fixed-K, random-K and DP builders ---------------
@dataclass
class Prepared:
    """Validated data and options of a model build (see :func:`prepare`)."""

    X: np.ndarray
    y: np.ndarray  # floats (Gaussian) or class codes
    family: str
    classes: list | None
    gate_name: str
    gate_fn: Callable = field(repr=False)
    temperature: float
    priors: Priors
    feature_names: list
    standardizer: Standardizer
    offset: np.ndarray | None = None  # per-row log-exposure (families that take one)
    Z: np.ndarray | None = None  # the gate's covariates (None: the experts' X)
    gate_feature_names: list | None = None
    trials: np.ndarray | None = None  # per-row numbers of trials (binomial experts)

    def __post_init__(self):
        if self.Z is None:
            self.Z = self.X
        if self.gate_feature_names is None:
            self.gate_feature_names = list(self.feature_names)

    @property
    def d_gate(self) -> int:
        return self.Z.shape[1]

    @property
    def gate_shared(self) -> bool:
        """Whether the gate sees the experts' covariates (no ``gate_X`` of its own)."""
        return list(self.gate_feature_names) == list(self.feature_names)

    def trials_values(self) -> np.ndarray:
        """The numbers of trials, ones where none were given."""
        return np.ones(self.n) if self.trials is None else self.trials

    def offset_values(self) -> np.ndarray:
        """The offset, zeros where none was given."""
        return np.zeros(self.n) if self.offset is None else self.offset

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    def coords(self, K: int) -> dict:
        """Model coords: ``obs``, ``feature`` and ``gate_feature`` (either may be empty),
        ``expert`` (and classes).
        """
        coords = {
            "obs": np.arange(self.n),
            "feature": self.feature_names,
            "gate_feature": self.gate_feature_names,
            "expert": np.arange(K),
        }
        if get_family(self.family).has_classes:
            coords["class"] = self.classes
            coords["class_free"] = self.classes[:-1]
        return coords

    def prior_constants(self) -> dict:
        """Standardised-scale constants of the Richardson–Green prior (empty for the default
        set): ``mean_center`` xi (midpoint of y), ``mean_sd`` 1/sqrt(kappa), ``rate_rate`` h.
        """
        if not self.priors.hierarchical:
            return {}
        ys = self.standardizer.transform_y(self.y)
        lo, hi = float(ys.min()), float(ys.max())
        R = hi - lo
        pri = self.priors
        return {
            "mean_center": 0.5 * (lo + hi),
            "mean_sd": R / np.sqrt(pri.mean_precision_factor),
            "rate_rate": pri.rate_rate_factor / R**2,
        }


def check_offset(offset, family: str, n_obs: int) -> np.ndarray | None:
    """A per-row offset for a family that takes one (finite floats, one per row)."""
    if offset is None:
        return None
    fam = get_family(family)
    if not fam.takes_offset:
        raise ValueError(
            f"`offset` applies to families with a log link (e.g. 'poisson'); {fam.name} experts "
            "take none. Drop `offset`."
        )
    off = np.asarray(offset, dtype=float)
    if off.ndim == 2 and off.shape[1] == 1:
        off = off[:, 0]
    if off.shape != (n_obs,):
        raise ValueError(
            f"`offset` must have {n_obs} entries (one per row); got shape {off.shape}."
        )
    if not np.all(np.isfinite(off)):
        raise ValueError(
            "`offset` contains NaN or inf; it is log(exposure): exposures must be > 0."
        )
    return off


def check_trials(trials, y, family: str, n_obs: int) -> np.ndarray | None:
    """Per-row numbers of trials for a family that takes them (whole numbers >= 1, >= y);
    without them every row is one trial, so y must be 0 or 1.
    """
    fam = get_family(family)
    if trials is None:
        if "trials" in fam.row_data and np.any(np.asarray(y, dtype=float) > 1):
            i = int(np.flatnonzero(np.asarray(y, dtype=float) > 1)[0])
            raise ValueError(
                f"`y` holds {float(y[i]):g} successes at row {i} but no `trials` were given "
                f"(one trial per row); pass the numbers of trials as `trials=`."
            )
        return None
    if "trials" not in fam.row_data:
        raise ValueError(
            f"`trials` applies to binomial experts; {fam.name} experts take none. Drop `trials`."
        )
    return _check_trials(trials, np.asarray(y), n_obs, family=fam.name)


def prepare(
    X,
    y,
    *,
    family,
    gate,
    temperature,
    priors,
    feature_names,
    classes,
    offset=None,
    gate_X=None,
    gate_feature_names=None,
    trials=None,
) -> Prepared:
    """Validate the inputs and options common to every builder and fit the Standardizer.

    ``X`` may have zero columns (a mixture without covariates: the gate reduces to mixing
    weights, the experts to means and variances). ``gate_X`` (default: ``X``) holds the gate's
    own covariates; with zero columns the mixing weights are constant (a mixture of regressions).
    """
    family = check_family(family)
    fam = get_family(family)
    if feature_names is None and hasattr(X, "columns"):  # a DataFrame: keep its column names
        feature_names = [str(c) for c in X.columns]
    X = check_X(X)
    n, d = X.shape
    y_arr, class_labels = check_y(y, family, n, classes)
    if isinstance(temperature, bool) or not (
        isinstance(temperature, (int, float)) and temperature > 0
    ):
        raise ValueError(f"`temperature` must be a positive number; got {temperature!r}.")
    gate_name, gate_fn = resolve_gate(gate)
    pri = resolve_priors(priors)
    if pri.hierarchical and not fam.hierarchical_prior:
        raise ValueError(
            "The 'richardson-green' prior set is for Gaussian experts; got family="
            f"{family!r}. Use priors='default' (or dirichlet_weights=True alone)."
        )
    feature_names = (
        list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
    )
    if len(feature_names) != d:
        raise ValueError(f"`feature_names` has {len(feature_names)} names for {d} features.")
    Z, gate_feature_names = check_gate_X(gate_X, gate_feature_names, X, feature_names)
    # named gates: numpy's transform (a tensor callable would be compiled to be evaluated)
    off = check_offset(offset, family, n)
    tri = check_trials(trials, y_arr, family, n)
    st = Standardizer.from_data(
        X, y_arr, gate=transform_of(gate_name, gate_fn), family=fam, offset=off, gate_X=Z
    )
    return Prepared(
        X,
        y_arr,
        family,
        class_labels,
        gate_name,
        gate_fn,
        float(temperature),
        pri,
        feature_names,
        st,
        off,
        X if Z is None else Z,
        gate_feature_names,
        tri,
    )


def check_gate_X(gate_X, names, X: np.ndarray, feature_names: list):
    """The gate's own covariates (None: the experts') and their names, checked. Covariates
    named as the experts' must be the experts' (then the gate shares them: None is returned).
    """
    n = X.shape[0]
    if gate_X is None:
        if names is not None and list(names) != list(feature_names):
            raise ValueError("`gate_feature_names` needs `gate_X`; got names without covariates.")
        return None, list(feature_names)
    if names is None and hasattr(gate_X, "columns"):
        names = [str(c) for c in gate_X.columns]
    Z = check_X(gate_X, "gate_X")
    if Z.shape[0] != n:
        raise ValueError(f"`gate_X` must have {n} rows (one per row of X); got {Z.shape[0]}.")
    names = list(names) if names is not None else [f"z{j}" for j in range(Z.shape[1])]
    if len(names) != Z.shape[1]:
        raise ValueError(
            f"`gate_feature_names` has {len(names)} names for {Z.shape[1]} gate covariates."
        )
    if names == list(feature_names):
        if Z.shape != X.shape or not np.array_equal(Z, X):
            raise ValueError(
                "`gate_X` has the experts' feature names but other values; name the gate's "
                "covariates apart (`gate_feature_names=`) or pass the experts' columns."
            )
        return None, names
    return Z, names


def fixed_k_spec(
    X,
    y,
    *,
    n_experts,
    family="gaussian",
    gate="softmax",
    temperature=1.0,
    identifiability="zerosum",
    ordered=False,
    priors=None,
    feature_names=None,
    classes=None,
    offset=None,
    experts: str | None = None,
    gate_X=None,
    gate_feature_names=None,
    trials=None,
) -> tuple[Prepared, ModelInfo]:
    """Every check of :func:`bayesmoe.models.build_model`, and its ``ModelInfo``, without
    building (or importing) the PyMC model.
    """
    family = family_keyword(family, experts, "fixed_k_spec")
    K = check_int(n_experts, "n_experts")
    if identifiability not in IDENTIFIABILITY:
        raise ValueError(
            f"`identifiability` must be one of {IDENTIFIABILITY}; got {identifiability!r}."
        )
    s = prepare(
        X,
        y,
        family=family,
        gate=gate,
        temperature=temperature,
        priors=priors,
        feature_names=feature_names,
        classes=classes,
        offset=offset,
        gate_X=gate_X,
        gate_feature_names=gate_feature_names,
        trials=trials,
    )
    check_enough_rows(s.n, n_parameters(K, s.d, s.family, s.n_classes, s.d_gate))
    info = ModelInfo(
        s.family,
        K,
        s.gate_name,
        s.gate_fn,
        s.temperature,
        identifiability,
        bool(ordered),
        s.priors,
        s.feature_names,
        s.classes,
        s.standardizer,
        s.gate_feature_names,
    )
    return s, info


def trace_layout(s: Prepared, info: ModelInfo) -> tuple[dict, dict, dict]:
    """``(coords, dims, constant_data)`` of the built fixed-K model (either prior set): the
    model's coords, ``named_vars_to_dims`` and its ``pm.Data`` values other than ``y_obs``,
    derived from the family's declarations as the builder's variables are.
    """
    K = info.n_experts
    fam = get_family(info.family)
    coords = s.coords(K)
    free = "expert"
    if K > 1 and info.identifiability == "reference":
        coords["expert_free"] = np.arange(K - 1)
        free = "expert_free"
    dims = {
        "X": ("obs", "feature"),
        "gate_X": ("obs", "gate_feature"),
        "x_center": ("feature",),
        "x_scale": ("feature",),
        "gate_input_center": ("gate_feature",),
        "gate_input_scale": ("gate_feature",),
        "beta1": ("gate_feature", "expert"),
        "beta0": ("expert",),
        "y_obs": ("obs",),
        "y": ("obs",),
    }
    if K > 1:  # Dirichlet weights: K gate intercepts whatever the identifiability
        b0 = "expert" if info.priors.dirichlet_weights else free
        dims["beta1_std"], dims["beta0_std"] = ("gate_feature", free), (b0,)
    dims.update({f"{p.name}_std": (*p.dims, "expert") for p in fam.params})
    dims.update(fam.trace_dims)
    st = s.standardizer
    const = {
        "X": s.X,
        "x_center": st.x_center,
        "x_scale": st.x_scale,
        "gate_input_center": st.z_center,
        "gate_input_scale": st.z_scale,
    }
    if fam.transforms_response:
        const.update(y_scale=np.asarray(st.y_scale), y_center=np.asarray(st.y_center))
    if not s.gate_shared:  # the gate's own covariates (a shared gate reads X)
        const["gate_X"] = s.Z
    if fam.takes_offset:
        dims["offset"] = ("obs",)
        const["offset"] = s.offset_values()
    if "trials" in fam.row_data:
        dims["trials"] = ("obs",)
        const["trials"] = s.trials_values()
    const.update({f"prior_{k}": np.asarray(v) for k, v in s.prior_constants().items()})
    return coords, dims, {k: np.asarray(v) for k, v in const.items()}
