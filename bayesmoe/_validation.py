"""Validation of user input, with one message shape: what was expected, what was got, the fix."""

from __future__ import annotations

import numbers

import numpy as np

FAMILIES = ("gaussian", "categorical")


def check_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    return int(value)


def check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"`experts` must be one of {FAMILIES}; got {family!r}.")
    return family


def check_X(X, name: str = "X") -> np.ndarray:
    """A finite 2-D float array (a 1-D input is read as one feature)."""
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be numeric; converting it to float failed: {err}.") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (n_obs, n_features); got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty (shape {arr.shape}).")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"`{name}` contains NaN or inf (first at row {bad[0]}, column {bad[1]}); drop or "
            "impute those rows first."
        )
    return arr


def check_y(y, family: str, n_obs: int, classes=None) -> tuple[np.ndarray, list | None]:
    """Return (y as float or int codes, class labels or None)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n_obs:
        raise ValueError(f"`y` must be 1-D with {n_obs} entries (one per row of X); got shape {y.shape}.")
    if family == "gaussian":
        try:
            yf = y.astype(float)
        except (TypeError, ValueError):
            raise TypeError(
                "`y` must be numeric for Gaussian experts; for labels use experts='categorical'."
            ) from None
        if not np.all(np.isfinite(yf)):
            i = int(np.flatnonzero(~np.isfinite(yf))[0])
            raise ValueError(f"`y` contains NaN or inf (first at row {i}); drop those rows first.")
        return yf, None
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("`y` contains NaN or inf; drop those rows first.")
    if classes is None:
        classes = sorted(np.unique(y).tolist())
        if len(classes) < 2:
            raise ValueError(f"`y` has a single class {classes}; classification needs at least 2.")
    else:
        classes = list(classes)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        codes = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"`y` has label {err.args[0]!r} not among the classes {classes}.") from None
    return codes, classes


def check_enough_rows(n_obs: int, n_params: int) -> None:
    if n_obs < n_params:
        raise ValueError(
            f"The model has {n_params} parameters but the data have only {n_obs} rows; use fewer "
            "experts or features, or more data."
        )


def n_parameters(n_experts: int, d: int, family: str, n_classes: int = 0) -> int:
    """Free parameters of a fixed-K MoE (gate identified by one constraint)."""
    gate = (n_experts - 1) * (d + 1)
    if family == "gaussian":
        return gate + n_experts * (d + 2)
    return gate + n_experts * (n_classes - 1) * (d + 1)
