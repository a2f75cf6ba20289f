"""The model specification, built once: validated data, options, labels and the data transform.

:class:`ModelSpec` is the one record every backend reads. :func:`prepare` (shared by the fixed-K,
random-K and DP builders) validates the data and options once; :func:`fixed_k_spec` adds the
fixed-K checks :func:`bayesmoe.models.build_model` would make, and :func:`trace_layout` gives the
coords, dims and constant data the built model would have. The
compiled-sampler path (:mod:`bayesmoe.inference.nuts.jax_nuts`) uses them to sample a model without
importing PyMC; tests/models/test_spec.py checks them against the built PyMC model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

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
from bayesmoe.gates import CONSTANT, Gate, get_gate, resolve_gate, transform_of
from bayesmoe.models.priors import Priors, resolve_priors
from bayesmoe.scaling import Standardizer

__all__ = [
    "IDENTIFIABILITY",
    "ModelInfo",
    "ModelSpec",
    "Prepared",
    "fixed_k_spec",
    "prepare",
    "trace_layout",
]

IDENTIFIABILITY = ("zerosum", "reference")


@dataclass(eq=False)
class ModelSpec:
    """One model, built once from (data, options) and read by every backend.

    The validated data (``X`` for the experts, ``Z`` for the gate, either may have zero columns;
    ``y`` as the family codes it; per-row ``offset`` and ``trials``), their fitted
    :class:`~bayesmoe.scaling.Standardizer`, the family, the gate, the priors and the number of
    experts: ``n_experts`` slots, with a prior on the number of active ones (``prior_pmf``) for a
    random-K model or a truncation for the Dirichlet-process gate (``kind``). MM, NUTS (JAX and
    PyMC), reversible jump, the DP gate and prediction read it; nothing downstream validates the
    data again. Built by :func:`fixed_k_spec` (fixed K), by
    :func:`bayesmoe.models.random_k.build_random_k_model` (``kind="slots"``) and
    :func:`bayesmoe.models.dp.build_dp_model` (``kind="dp"``).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.spec import fixed_k_spec
    >>> X, y, _ = simulate("S-B", n=100, random_seed=0)
    >>> spec = fixed_k_spec(X, y, n_experts=3)
    >>> spec.n, spec.d, spec.d_gate, spec.n_experts, spec.family, spec.gate
    (100, 2, 2, 3, 'gaussian', 'softmax')
    """

    X: np.ndarray
    y: np.ndarray  # the response as the family codes it, user units (reals, counts, class codes)
    family: str
    classes: list | None
    gate: str  # stored name: identity / tanh / sigmoid / custom
    gate_fn: Callable = field(repr=False)
    temperature: float
    priors: Priors
    feature_names: list
    standardizer: Standardizer
    offset: np.ndarray | None = None  # per-row log-exposure (families that take one)
    Z: np.ndarray | None = None  # the gate's covariates (None: the experts' X)
    gate_feature_names: list | None = None
    trials: np.ndarray | None = None  # per-row numbers of trials (binomial experts)
    #: expert slots: K for a fixed-K model, K_max under a prior on K or a DP truncation
    n_experts: int | None = None
    prior_pmf: np.ndarray | None = None  # p(K = 1..K_max) of a random-K model
    identifiability: str = "zerosum"
    ordered: bool = False
    prior_only: bool = False
    #: "fixed" (build_model), "slots" (i.i.d. slots, build_random_k_model), "dp" (stick-breaking)
    kind: str = "fixed"
    alpha: float | None = None  # DP concentration (None: a Gamma prior, ``alpha_prior``)
    alpha_prior: tuple | None = None
    #: value variables with one block per expert slot (reversible jump), and their prior groups
    slot_vars: list = field(default_factory=list)
    slot_groups: list = field(default_factory=list)

    def __post_init__(self):
        if self.Z is None:
            self.Z = self.X
        if self.gate_feature_names is None:
            self.gate_feature_names = list(self.feature_names)

    # ----- sizes and shared views -----
    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    n_features = d

    @property
    def d_gate(self) -> int:
        return self.Z.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes is not None else 0

    @property
    def max_experts(self) -> int:
        """The number of expert slots (K_max of a random-K or DP model)."""
        return self.n_experts

    @property
    def gate_name(self) -> str:
        return self.gate

    @property
    def gate_shared(self) -> bool:
        """Whether the gate sees the experts' covariates (no ``gate_X`` of its own)."""
        return list(self.gate_feature_names) == list(self.feature_names)

    @property
    def gate_module(self) -> Gate:
        """The gate (:mod:`bayesmoe.gates`): constant weights when the gate reads no covariates."""
        return CONSTANT if self.d_gate == 0 else get_gate(self.gate, self.gate_fn)

    @property
    def gate_X(self) -> np.ndarray | None:
        """The gate's own covariates, None when it shares the experts'."""
        return None if self.gate_shared else self.Z

    def trials_values(self) -> np.ndarray:
        """The numbers of trials, ones where none were given."""
        return np.ones(self.n) if self.trials is None else self.trials

    def offset_values(self) -> np.ndarray:
        """The offset, zeros where none was given."""
        return np.zeros(self.n) if self.offset is None else self.offset

    # ----- the standardised data every backend reads -----
    @cached_property
    def Xs(self) -> np.ndarray:
        """Standardised expert covariates."""
        return self.standardizer.transform_X(self.X)

    @cached_property
    def Zs(self) -> np.ndarray:
        """Standardised gate input M(z)."""
        return self.standardizer.transform_gate(self.Z)

    @cached_property
    def _standard(self) -> tuple:
        ys, data = get_family(self.family).standard_data(
            self.y, self.standardizer.transform, self.offset
        )
        data["trials"] = self.trials  # counts of trials are not rescaled
        return ys, data

    @property
    def ys(self) -> np.ndarray:
        """The response on the standardised scale (reals) or as coded (counts, classes)."""
        return self._standard[0]

    @property
    def data(self) -> dict:
        """Per-row data of the family's standardised density (offsets, trials)."""
        return self._standard[1]

    @cached_property
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

    # ----- what a built model records -----
    def coords(self, K: int | None = None) -> dict:
        """Model coords: ``obs``, ``feature`` and ``gate_feature`` (either may be empty),
        ``expert`` (and classes).
        """
        K = self.n_experts if K is None else K
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

    def initvals(self) -> dict:
        """Valid start values PyMC cannot find itself (ordered intercepts need distinct ones)."""
        if not (self.ordered and self.n_experts > 1):
            return {}
        fam = get_family(self.family)
        sizes = fam.dim_sizes(self.d, self.n_classes)
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
        out = {"family": self.family}
        if self.kind == "slots":
            out.update(
                max_experts=self.n_experts,
                experts_prior=None if self.prior_pmf is None else self.prior_pmf.tolist(),
            )
        else:
            out["n_experts"] = self.n_experts
        out.update(gate=self.gate, temperature=self.temperature)
        if self.kind == "fixed":
            out.update(identifiability=self.identifiability, ordered=self.ordered)
        out["priors"] = self.priors.to_dict()
        if self.kind == "slots":
            out["prior_only"] = self.prior_only
        out["gate_features"] = list(map(str, self.gate_feature_names))
        return out


#: the names of the three records this one replaced (kept: the public API exported them)
ModelInfo = Prepared = ModelSpec


# ----- the checks and transform shared by the fixed-K, random-K and DP builders ---------------
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
) -> ModelSpec:
    """Validate the inputs and options common to every builder and fit the Standardizer (the
    returned spec has no number of experts yet: the builders set it).

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
    return ModelSpec(
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
) -> ModelSpec:
    """The fixed-K model's :class:`ModelSpec`: every check of
    :func:`bayesmoe.models.build_model`, without building (or importing) the PyMC model.
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
    s.n_experts, s.identifiability, s.ordered = K, identifiability, bool(ordered)
    return s


def trace_layout(s: ModelSpec) -> tuple[dict, dict, dict]:
    """``(coords, dims, constant_data)`` of the built fixed-K model (either prior set): the
    model's coords, ``named_vars_to_dims`` and its ``pm.Data`` values other than ``y_obs``,
    derived from the family's declarations as the builder's variables are.
    """
    K, info = s.n_experts, s
    fam = get_family(s.family)
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
    const.update({f"prior_{k}": np.asarray(v) for k, v in s.prior_constants.items()})
    return coords, dims, {k: np.asarray(v) for k, v in const.items()}
