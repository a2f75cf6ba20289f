"""Standardisation of inputs and responses, and the exact map of mixing measures between scales.

Fitting happens on standardised data: experts see x_s = (x - cx) / sx, the gate sees
z_s = (M(z) - cz) / sz (M the gate input transform applied to the gate's raw covariates z, which
are the experts' x unless the model was given its own ``gate_X``); the expert family
says what the response's centre and scale are (Gaussian: y_s = (y - cy) / sy; Poisson: the log
link centred at the overall log rate cy). Because every map is affine in the parameters, a measure
on the standardised scale converts exactly to the user's units and back
(:meth:`Standardizer.to_user`, :meth:`Standardizer.to_standard`, through the family's own maps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from bayesmoe.families import Transform, get_family
from bayesmoe.measure import gate_input, measure_family, upgrade_measure

__all__ = ["Standardizer"]


def _center_scale(A: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    c = A.mean(axis=0)
    s = A.std(axis=0)
    if np.any(s <= 1e-12 * np.maximum(1.0, np.abs(c))):
        bad = np.flatnonzero(s <= 1e-12 * np.maximum(1.0, np.abs(c))).tolist()
        raise ValueError(
            f"{what} column(s) {bad} are constant; a constant feature carries no information and "
            "makes the model unidentifiable. Remove it (the intercepts already model a constant)."
        )
    return c, s


@dataclass(frozen=True)
class Standardizer:
    """Centre and scale of X, of the gate input M(X), and of the response (as its family says).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.scaling import Standardizer
    >>> X = np.array([[0.0], [2.0], [4.0]]); y = np.array([1.0, 2.0, 6.0])
    >>> st = Standardizer.from_data(X, y)
    >>> st.x_center, st.y_center
    (array([2.]), 3.0)
    """

    x_center: np.ndarray
    x_scale: np.ndarray
    z_center: np.ndarray
    z_scale: np.ndarray
    y_center: float = 0.0
    y_scale: float = 1.0
    gate: str | Callable = "softmax"

    @classmethod
    def from_data(
        cls,
        X,
        y=None,
        *,
        gate: str | Callable = "softmax",
        family=None,
        offset=None,
        gate_X=None,
    ) -> Standardizer:
        """Estimate centres and scales from data. The response's centre and scale come from the
        expert ``family`` (without one: a real ``y`` is standardised, ``y=None`` is left alone);
        the gate's from ``gate_X`` (default: ``X``).
        """
        X = np.asarray(X, dtype=float)
        Z = X if gate_X is None else np.asarray(gate_X, dtype=float)
        cx, sx = _center_scale(X, "Feature")
        cz, sz = _center_scale(gate_input(Z, gate), "Gate-input (M(z))")
        if family is None:
            if y is None:
                return cls(cx, sx, cz, sz, 0.0, 1.0, gate)
            family = "gaussian"
        cy, sy = get_family(family).response_center_scale(y, offset)
        return cls(cx, sx, cz, sz, cy, sy, gate)

    @property
    def transform(self) -> Transform:
        """The experts' part of the transform (for the families' maps)."""
        return Transform(self.x_center, self.x_scale, self.y_center, self.y_scale)

    def transform_X(self, X) -> np.ndarray:
        """Standardised expert input x_s."""
        return (np.asarray(X, dtype=float) - self.x_center) / self.x_scale

    def transform_gate(self, Z) -> np.ndarray:
        """Standardised gate input z_s = (M(z) - cz) / sz of the gate's covariates ``Z``."""
        return (gate_input(Z, self.gate) - self.z_center) / self.z_scale

    def transform_y(self, y) -> np.ndarray:
        return (np.asarray(y, dtype=float) - self.y_center) / self.y_scale

    def to_dict(self) -> dict:
        """JSON/netCDF-friendly record of the transform (for attrs)."""
        return {
            "x_center": self.x_center.tolist(),
            "x_scale": self.x_scale.tolist(),
            "gate_input_center": self.z_center.tolist(),
            "gate_input_scale": self.z_scale.tolist(),
            "y_center": self.y_center,
            "y_scale": self.y_scale,
        }

    # ----- measures -----------------------------------------------------------------------
    def _vec(self, v: np.ndarray, feature) -> xr.DataArray:
        return xr.DataArray(
            np.asarray(v, dtype=float), dims=("gate_feature",), coords={"gate_feature": feature}
        )

    def _map(self, measure: xr.Dataset, to_user: bool) -> xr.Dataset:
        measure = upgrade_measure(measure)
        f = measure["gate_feature"].values
        sz, cz = self._vec(self.z_scale, f), self._vec(self.z_center, f)
        out = measure.copy()
        if to_user:
            out["beta1"] = measure["beta1"] / sz
            out["beta0"] = measure["beta0"] - (measure["beta1"] * cz / sz).sum("gate_feature")
        else:
            out["beta1"] = measure["beta1"] * sz
            out["beta0"] = measure["beta0"] + (measure["beta1"] * cz).sum("gate_feature")
        fam = get_family(measure_family(measure))
        sample = [d for d in measure["beta0"].dims if d != "expert"]
        canon = {
            k: measure[k].transpose(*sample, *dims).values for k, dims in fam.canonical_dims.items()
        }
        tr = self.transform
        new = fam.to_user(np, canon, tr) if to_user else fam.to_standard(canon, tr)
        for k, dims in fam.canonical_dims.items():
            out[k] = (tuple(sample) + dims, np.asarray(new[k], dtype=float))
        return out.transpose(*measure["beta1"].dims[:-2], ...)

    def to_user(self, measure: xr.Dataset) -> xr.Dataset:
        """Map a measure fitted on the standardised scale to the user's units (exact)."""
        return self._map(measure, True)

    def to_standard(self, measure: xr.Dataset) -> xr.Dataset:
        """Inverse of :meth:`to_user`."""
        return self._map(measure, False)
