"""The fixed-K MoE's log density on PyMC's unconstrained scale, written once for numpy and JAX.

The compiled-sampler path (:mod:`bayesmoe.inference.nuts.jax_nuts`) samples this density instead of
compiling the PyMC graph. It is the same density, term by term (docs/math.md §1–2 and the
transforms PyMC puts on the free variables):

- ``ZeroSumNormal`` gate parameters: value ``*_zerosum__`` of length K - 1 mapped to K values
  summing to zero by PyMC's ``ZeroSumTransform.extend_axis`` (orthonormal, log-Jacobian 0);
  log density ``-0.5 sum(v^2) / s^2 - (K - 1)(log sqrt(2 pi) + log s)`` per event.
- reference-expert gate: ``Normal`` on the K - 1 free experts, the last pinned at 0.
- the expert family's free parameters as it declares them (:class:`bayesmoe.families.Param`):
  ``Normal``, or ``HalfNormal`` with the log transform (log-Jacobian ``sum(log sigma)``), or
  ``ordered`` intercepts: ``cumsum([x_0, exp(x_1), ...])``, log-Jacobian ``sum(x_1:)``;
- the Richardson–Green prior set (docs/math.md §2.2) and ``dirichlet_weights``: gate intercepts
  ``log Gamma(delta, 1)`` on the real line (K of them whatever the identifiability), intercepts
  ``N(xi, 1/sqrt(kappa))`` with xi and kappa data (the model's ``prior_*`` constants), the noise
  sd ``sigma = tau^(-1/2)``, ``tau ~ Gamma(alpha, beta)`` with the log transform and the shared
  rate ``beta ~ Gamma(g, h)`` (``noise_rate_std``, log transform) just before it;
- the observed mixture likelihood of y in the user's units: the family's one log density
  (:meth:`bayesmoe.families.Family.component_log_prob`) on numpy or jax.numpy.

tests/inference/nuts/test_flat_model.py checks that :meth:`FlatModel.logp` equals PyMC's
``model.compile_logp()`` at random points (rtol 1e-10) for every supported model option, and that
the Deterministics and the pointwise log-likelihood equal PyMC's. :func:`flat_model` returns None
when a model has a variable it does not know (then the caller falls back to PyMC's sampler).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bayesmoe.families import NUMPY, get_family, jax_ops

__all__ = ["FlatModel", "flat_model", "flat_model_from_spec"]

_LOG_SQRT_2PI = 0.5 * float(np.log(2 * np.pi))


@dataclass
class _Block:
    name: str  # PyMC value-variable name
    rv: str  # free random variable name (constrained)
    shape: tuple
    kind: str  # see _DISTS; a "_log" / "_ordered" suffix names the transform
    scale: float  # sd, or the shape (log_gamma: delta; gamma_log, inv_sqrt_gamma_log: alpha)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=int))


def _np_ops():
    return NUMPY


def _jax_ops():
    return jax_ops()


def _extend_zerosum(xp, v):
    """PyMC's ZeroSumTransform.extend_axis on the last axis (K - 1 values -> K summing to 0)."""
    n = v.shape[-1] + 1
    s = v.sum(-1, keepdims=True)
    norm = s / (np.sqrt(n) + n)
    fill = norm - s / np.sqrt(n)
    return xp.concatenate([v, fill], axis=-1) - norm


def _reduce_zerosum(v):
    """Inverse of :func:`_extend_zerosum` (PyMC's extend_axis_rev), numpy."""
    n = v.shape[-1]
    last = v[..., -1:]
    norm = -last * np.sqrt(n) / (np.sqrt(n) + n)
    return v[..., :-1] + norm


@dataclass
class FlatModel:
    """The model's density as a function of one flat vector of unconstrained parameters.

    Built by :func:`flat_model` from a PyMC model of :func:`bayesmoe.models.build_model`; the
    block order is the model's ``value_vars`` order.
    """

    info: object
    blocks: list
    Xs: np.ndarray
    Zs: np.ndarray
    y: np.ndarray  # y as the family codes it, in the user's units
    offset: np.ndarray | None = None  # per-row log-exposure (families that take one)
    prior: dict = field(default_factory=dict)  # the model's prior_* constants (RG set)
    trials: np.ndarray | None = None  # per-row numbers of trials (binomial)

    @property
    def family(self):
        return get_family(self.info.family)

    @property
    def ndim(self) -> int:
        return sum(b.size for b in self.blocks)

    def signature(self) -> dict:
        """JSON-ready description of everything the density's program bakes in (options, prior
        scales, blocks, data shapes): a key for compiled-program caches.
        """
        return {
            "options": self.info.options(),
            "n_classes": len(self.info.classes or ()),
            "blocks": [[b.name, b.kind, list(b.shape), float(b.scale)] for b in self.blocks],
            "data": {k: list(np.shape(v)) for k, v in self.data().items()},
        }

    # ----- flat vector <-> named values ----------------------------------------------------------
    def unflatten(self, flat, xp=np) -> dict:
        """Named unconstrained values from flat vectors (leading batch dims allowed)."""
        out, i = {}, 0
        lead = flat.shape[:-1]
        for b in self.blocks:
            out[b.name] = xp.reshape(flat[..., i : i + b.size], lead + b.shape)
            i += b.size
        return out

    def flatten(self, values: dict) -> np.ndarray:
        """Flat unconstrained vector from named unconstrained values (one point)."""
        return np.concatenate([np.asarray(values[b.name], float).ravel() for b in self.blocks])

    def unconstrain(self, point: dict) -> np.ndarray:
        """Flat unconstrained vector of a point of free variables (constrained, ``*_std``)."""
        vals = {}
        for b in self.blocks:
            v = np.asarray(point[b.rv], dtype=float)
            if b.kind == "zerosum":
                v = _reduce_zerosum(v - v.mean(-1, keepdims=True))
            elif b.kind.endswith("_log"):
                v = np.log(v)
            elif b.kind.endswith("_ordered"):
                v = np.concatenate([v[..., :1], np.log(np.diff(v, axis=-1))], axis=-1)
            vals[b.name] = v
        return self.flatten(vals)

    def constrain(self, flat, xp=np) -> tuple[dict, object]:
        """Free variables (``*_std``, constrained) and the summed log-Jacobian from flat vectors."""
        vals = self.unflatten(flat, xp)
        out, log_jac = {}, 0.0
        for b in self.blocks:
            v = vals[b.name]
            if b.kind == "zerosum":
                v = _extend_zerosum(xp, v)
            elif b.kind.endswith("_log"):
                log_jac = log_jac + v.sum(axis=tuple(range(-len(b.shape), 0)))
                v = xp.exp(v)
            elif b.kind.endswith("_ordered"):
                log_jac = log_jac + v[..., 1:].sum(axis=tuple(range(-len(b.shape), 0)))
                v = xp.cumsum(xp.concatenate([v[..., :1], xp.exp(v[..., 1:])], axis=-1), axis=-1)
            out[b.rv] = v
        return out, log_jac

    # ----- density -------------------------------------------------------------------------------
    def _log_prior(self, xp, free: dict, data: dict):
        total = 0.0
        for b in self.blocks:
            v, s = free[b.rv], b.scale
            axes = tuple(range(-len(b.shape), 0))
            if b.kind in _RG_KINDS:
                total = total + _rg_log_prior(xp, b, v, free, data).sum(axis=axes)
            elif b.kind == "zerosum":
                K = b.shape[-1] + 1
                n_events = b.size // b.shape[-1]
                total = total + (
                    -0.5 * (v * v).sum(axis=axes) / s**2
                    - n_events * (K - 1) * (_LOG_SQRT_2PI + np.log(s))
                )
            else:
                lp = -0.5 * (v * v).sum(axis=axes) / s**2 - b.size * (_LOG_SQRT_2PI + np.log(s))
                if b.kind == "halfnormal_log":
                    lp = lp + b.size * np.log(2.0)
                total = total + lp
        return total

    def _gate_params(self, xp, free: dict):
        info = self.info
        K = info.n_experts
        if K == 1:
            return None, None
        b0, b1 = free["beta0_std"], free["beta1_std"]
        if info.identifiability == "reference":
            if not info.priors.dirichlet_weights:  # (Dirichlet weights: K intercepts)
                b0 = xp.concatenate([b0, xp.zeros(b0.shape[:-1] + (1,))], axis=-1)
            b1 = xp.concatenate([b1, xp.zeros(b1.shape[:-1] + (1,))], axis=-1)
        return b0, b1

    def transform(self):
        """The family's :class:`~bayesmoe.families.Transform` (x already standardised in
        ``Xs``: only the response part is used by the predictors).
        """
        from bayesmoe.families import Transform

        st = self.info.standardizer
        return Transform(st.x_center, st.x_scale, st.y_center, st.y_scale)

    def data(self) -> dict:
        """The data arrays the density reads (graph inputs of the JAX program, so one compiled
        program serves every data set of the same shape).
        """
        st = self.info.standardizer
        out = {"Xs": self.Xs, "Zs": self.Zs, "y": self.y.astype(float)}
        if self.family.transforms_response:
            out["y_center"] = np.asarray(st.y_center, dtype=float)
            out["y_scale"] = np.asarray(st.y_scale, dtype=float)
        if self.family.takes_offset:
            out["offset"] = np.zeros(len(self.y)) if self.offset is None else self.offset
        out.update({f"prior_{k}": np.asarray(v, dtype=float) for k, v in self.prior.items()})
        if "trials" in self.family.row_data:
            out["trials"] = np.ones(len(self.y)) if self.trials is None else self.trials
        return out

    def pointwise(self, free: dict, ops=None, data: dict | None = None):
        """Per-observation log-likelihood of y (user units), shape (..., n_obs)."""
        from bayesmoe.families import Transform

        ops = ops or _np_ops()
        xp = ops.xp
        data = self.data() if data is None else data
        info, fam = self.info, self.family
        K = info.n_experts
        st = info.standardizer
        tr = Transform(st.x_center, st.x_scale, data.get("y_center", 0.0), data.get("y_scale", 1.0))
        y = data["y"]
        if fam.has_classes or fam.y_dtype == "int64":
            y = y.astype(int) if ops is NUMPY else y
        canon = fam.canonical_from_free(
            ops, {f"{p.name}_std": free[f"{p.name}_std"] for p in fam.params}
        )
        comp = fam.component_log_prob(ops, y, *fam.predictors(ops, canon, data["Xs"], tr, data))
        if K == 1:
            return comp[..., 0]
        b0, b1 = self._gate_params(xp, free)
        eta = (xp.einsum("nd,...dk->...nk", data["Zs"], b1) + b0[..., None, :]) / info.temperature
        return ops.logsumexp(info.gate_module.log_weights(eta, ops) + comp, -1)

    def logp(self, flat, ops=None, data: dict | None = None):
        """Log density of the unconstrained parameters (PyMC's ``model.logp()``), jacobians in."""
        xp = (ops or _np_ops()).xp
        data = self.data() if data is None else data
        free, log_jac = self.constrain(flat, xp)
        return self._log_prior(xp, free, data) + log_jac + self.pointwise(free, ops, data).sum(-1)

    def jax_logp(self):
        """``logp(flat, data)`` as a JAX function (float64 under ``jax.enable_x64``); ``data``
        is :meth:`data` (passed as an argument, not baked into the compiled program).
        """
        ops = _jax_ops()
        return lambda flat, data: self.logp(flat, ops, data)

    # ----- Deterministics (user units) -----------------------------------------------------------
    def deterministics(self, free: dict) -> dict:
        """The model's Deterministics (``beta0, beta1``, the family's trace variables and, under
        the Richardson–Green set, ``noise_rate`` in units of y^2).
        """
        info, st, fam = self.info, self.info.standardizer, self.family
        K = info.n_experts
        first = fam.params[0]
        lead = free[f"{first.name}_std"].shape[: -1 - len(first.dims)]
        d_gate = self.Zs.shape[1]
        out = {}
        b0, b1 = self._gate_params(np, free)
        if K == 1:
            b0, b1 = np.zeros(lead + (1,)), np.zeros(lead + (d_gate, 1))
        beta1 = b1 / st.z_scale[:, None]
        out["beta1"] = beta1
        out["beta0"] = b0 - np.einsum("d,...dk->...k", st.z_center, beta1)
        canon = fam.canonical_from_free(
            NUMPY, {f"{p.name}_std": free[f"{p.name}_std"] for p in fam.params}
        )
        out.update(fam.trace_from_canonical(np, fam.to_user(np, canon, self.transform())))
        if "noise_rate_std" in free:
            out["noise_rate"] = free["noise_rate_std"] * st.y_scale**2
        return out


def _expected_blocks(info, d: int, d_gate: int) -> list[_Block]:
    """The free variables of the built model, in its creation order (gate slopes, gate
    intercepts, the family's parameters in their declared order); ``d`` covariates for the
    experts and ``d_gate`` for the gate.
    """
    K, pri = info.n_experts, info.priors
    fam = get_family(info.family)
    blocks = []
    if K > 1:
        if pri.dirichlet_weights:  # K log-Gamma intercepts whatever the identifiability
            b0 = _Block("beta0_std", "beta0_std", (K,), "log_gamma", pri.weights_concentration)
        if info.identifiability == "zerosum":
            if d_gate == 0:  # an empty plain Normal (ZeroSumNormal does not take an empty axis)
                blocks.append(_Block("beta1_std", "beta1_std", (0, K), "normal", pri.gate_slope))
            else:
                blocks.append(
                    _Block(
                        "beta1_std_zerosum__",
                        "beta1_std",
                        (d_gate, K - 1),
                        "zerosum",
                        pri.gate_slope,
                    )
                )
            if not pri.dirichlet_weights:
                b0 = _Block(
                    "beta0_std_zerosum__", "beta0_std", (K - 1,), "zerosum", pri.gate_intercept
                )
        else:
            blocks.append(
                _Block("beta1_std", "beta1_std", (d_gate, K - 1), "normal", pri.gate_slope)
            )
            if not pri.dirichlet_weights:
                b0 = _Block("beta0_std", "beta0_std", (K - 1,), "normal", pri.gate_intercept)
        blocks.append(b0)
    sizes = fam.dim_sizes(d, len(info.classes or ()))
    for p in fam.params:
        rv = f"{p.name}_std"
        shape = (*(sizes[x] for x in p.dims), K)
        scale = getattr(pri, p.prior)
        normal = "normal"
        if pri.hierarchical and p.intercept:  # N(xi, R / sqrt(factor)): xi, R are prior_* data
            normal, scale = "normal_centered", pri.mean_precision_factor
        if pri.hierarchical and p.positive:  # the shared rate is created just before
            a = pri.rate_shape
            blocks.append(_Block("noise_rate_std_log__", "noise_rate_std", (), "gamma_log", a))
            blocks.append(
                _Block(f"{rv}_log__", rv, shape, "inv_sqrt_gamma_log", pri.precision_shape)
            )
        elif p.positive:
            blocks.append(_Block(f"{rv}_log__", rv, shape, "halfnormal_log", scale))
        elif p.intercept and info.ordered and K > 1:
            blocks.append(_Block(f"{rv}_ordered__", rv, shape, f"{normal}_ordered", scale))
        else:
            blocks.append(_Block(rv, rv, shape, normal, scale))
    return blocks


#: block kinds of the Richardson–Green set and dirichlet_weights (see :func:`_rg_log_prior`)
_RG_KINDS = (
    "log_gamma",
    "normal_centered",
    "normal_centered_ordered",
    "gamma_log",
    "inv_sqrt_gamma_log",
)


def _rg_log_prior(xp, b: _Block, v, free: dict, data: dict):
    """Elementwise log density of a Richardson–Green block at its constrained values ``v``
    (PyMC's Normal and Gamma logp, the builder's CustomDist logps).
    """
    if b.kind == "log_gamma":  # log g, g ~ Gamma(delta, 1)
        return b.scale * v - xp.exp(v) - math.lgamma(b.scale)
    if b.kind.startswith("normal_centered"):
        mu, sd = data["prior_mean_center"], data["prior_mean_sd"]
        z = (v - mu) / sd
        return -0.5 * z * z - xp.log(sd) - _LOG_SQRT_2PI
    if b.kind == "gamma_log":  # beta ~ Gamma(g, rate h)
        alpha, rate = b.scale, data["prior_rate_rate"]
        return alpha * xp.log(rate) - math.lgamma(alpha) + (alpha - 1.0) * xp.log(v) - rate * v
    # inv_sqrt_gamma_log: sigma = tau^(-1/2), tau ~ Gamma(alpha, beta), beta the shared rate
    alpha = b.scale
    rate = xp.reshape(free["noise_rate_std"], free["noise_rate_std"].shape + (1,) * len(b.shape))
    tau = v**-2
    return (
        alpha * xp.log(rate)
        - math.lgamma(alpha)
        + (alpha - 1.0) * xp.log(tau)
        - rate * tau
        + np.log(2.0)
        - 3.0 * xp.log(v)
    )


#: the PyMC op of each block kind's random variable
_DISTS = {
    "zerosum": "ZeroSumNormalRV",
    "normal": "NormalRV",
    "normal_ordered": "NormalRV",
    "halfnormal_log": "HalfNormalRV",
    "log_gamma": "CustomDist_{rv}",
    "normal_centered": "NormalRV",
    "normal_centered_ordered": "NormalRV",
    "gamma_log": "GammaRV",
    "inv_sqrt_gamma_log": "CustomDist_{rv}",
}


def _supported(info, d: int) -> bool:
    pri = info.priors
    if pri.scheme not in ("default", "richardson-green"):
        return False
    return not (pri.hierarchical and not get_family(info.family).hierarchical_prior)


def _build(info, blocks, X, y, offset=None, Z=None, prior=None, trials=None) -> FlatModel:
    st = info.standardizer
    Zs = (info.gate_module.transform(X if Z is None else Z) - st.z_center) / st.z_scale
    fam = get_family(info.family)
    y = np.asarray(y, dtype=np.int64 if fam.y_dtype == "int64" else float)
    return FlatModel(info, blocks, st.transform_X(X), Zs, y, offset, dict(prior or {}), trials)


def flat_model_from_spec(s) -> FlatModel | None:
    """The :class:`FlatModel` of the model :func:`bayesmoe.models.build_model` would build from
    the :class:`~bayesmoe.models.spec.ModelSpec` ``s = fixed_k_spec(...)``, without building it
    (no PyMC import),
    or None where :func:`flat_model` would give None. Blocks are in the built model's
    ``value_vars`` order (gate slopes, gate intercepts, experts; tested against it).
    """
    X, Z = np.asarray(s.X, dtype=float), np.asarray(s.Z, dtype=float)
    if not _supported(s, X.shape[1]):
        return None
    blocks = _expected_blocks(s, X.shape[1], Z.shape[1])
    return _build(s, blocks, X, np.asarray(s.y), s.offset, Z, s.prior_constants, s.trials)


def flat_model(model, info) -> FlatModel | None:
    """The :class:`FlatModel` of a fixed-K model, or None if the model has anything it does not
    know (other variables, distributions, shapes, potentials): the caller then uses PyMC.
    """
    try:
        X = np.asarray(model["X"].get_value(), dtype=float)
    except (KeyError, AttributeError):
        return None
    Z = model["gate_X"].get_value() if "gate_X" in model.named_vars else X
    Z = np.asarray(Z, dtype=float)
    d = X.shape[1]
    if not _supported(info, d):
        return None
    expected = {b.name: b for b in _expected_blocks(info, d, Z.shape[1])}
    value_vars = [v.name for v in model.value_vars]
    if sorted(value_vars) != sorted(expected) or model.potentials:
        return None
    blocks = [expected[name] for name in value_vars]  # the model's own order
    for b in blocks:  # shapes from the dims' coords: no graph compilation on this path
        op_name = type(model[b.rv].owner.op).__name__
        dims = model.named_vars_to_dims.get(b.rv, () if b.shape == () else None)
        if dims is None or op_name != _DISTS[b.kind].format(rv=b.rv):
            return None
        shape = tuple(len(model.coords[dim]) for dim in dims)
        if b.kind == "zerosum":
            shape = shape[:-1] + (shape[-1] - 1,)
        if shape != b.shape:
            return None
    if [v.name for v in model.observed_RVs] != ["y"]:
        return None
    expected_det = {"beta0", "beta1"} | set(get_family(info.family).trace_dims)
    if info.priors.hierarchical:
        expected_det.add("noise_rate")
    if {v.name for v in model.deterministics} != expected_det:
        return None
    offset = model["offset"].get_value() if "offset" in model.named_vars else None
    prior = {
        v.name.removeprefix("prior_"): float(v.get_value())
        for v in model.data_vars
        if v.name.startswith("prior_")
    }
    trials = model["trials"].get_value() if "trials" in model.named_vars else None
    y = np.asarray(model["y_obs"].get_value())
    return _build(info, blocks, X, y, offset, Z, prior, trials)
