"""Formulas in a study spec: a CSV data set described by ``formula`` (and ``gate_formula``).

Instead of ``target`` and ``features``, ``[data]`` of ``source = "csv"`` may name the response
and the experts' covariates by a formula, and the gate's covariates by a second one, as
:func:`bayesmoe.formula.design_matrices` reads them (formulaic, R conventions)::

    [data]
    source = "csv"
    path = "patent.csv"
    formula = "Claims ~ np.log(Patents) + offset(np.log(RDS))"   # offset(...): log-exposures
    gate_formula = "~ RDS"                                       # optional; "~ 1": constant
    [model]
    family = "poisson"

The spec is checked when it is read (every problem one line naming ``data.formula`` or
``data.gate_formula``); each task builds its design on its own rows (the whole file, or its
subsample of ``n`` rows), and its result file keeps the formulas and the design in its
``attrs``, so the prediction functions take new DataFrames.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMULA_KEYS",
    "check_formula_csv",
    "formula_keys",
    "formula_task_data",
    "read_formula_csv",
]

#: The ``[data]`` keys of a formula data set (csv only).
FORMULA_KEYS = {
    "formula": "the response and the experts' covariates, e.g. 'y ~ x1 + C(g)' (csv; instead "
    "of target and features)",
    "gate_formula": "the gate's covariates, e.g. '~ z' or '~ 1' (csv, with formula)",
}


def formula_keys(data: Mapping) -> dict[str, Any]:
    """The validated ``formula``/``gate_formula`` of a csv ``[data]`` table ({} without them).

    Examples
    --------
    >>> from bayesmoe.study.formulas import formula_keys
    >>> formula_keys({"formula": "y ~ x", "gate_formula": "~ 1"})
    {'formula': 'y ~ x', 'gate_formula': '~ 1'}
    >>> formula_keys({"path": "d.csv", "target": "y"})
    {}
    """
    from bayesmoe.study.spec import SpecError, _err

    formula, gate_formula = data.get("formula"), data.get("gate_formula")
    if formula is None:
        if gate_formula is not None:
            raise SpecError(
                "study spec: `data.gate_formula` needs `data.formula` (the experts' formula); "
                "add it, or remove gate_formula."
            )
        return {}
    if not isinstance(formula, str) or "~" not in formula:
        raise _err("data.formula", "a formula string such as 'y ~ x1 + C(g)'", formula)
    for k in ("target", "features"):
        if data.get(k) is not None:
            raise SpecError(
                f"study spec: `data.{k}` and `data.formula` are both given; the formula names "
                "the response and the covariates: keep one."
            )
    out = {"formula": formula}
    if gate_formula is not None:
        if not isinstance(gate_formula, str) or "~" not in gate_formula:
            raise _err("data.gate_formula", "a formula string such as '~ z'", gate_formula)
        out["gate_formula"] = gate_formula
    return out


def _design(df, d: dict, family: str):
    from bayesmoe.formula import design_matrices

    return design_matrices(df, d["formula"], d.get("gate_formula"), family=family)


def check_formula_csv(df, d: dict, m: dict, g: dict) -> None:
    """Build the design of a formula data set now (one line on any problem), not in a worker.

    ``df`` is the CSV; ``d``, ``m``, ``g`` the validated ``[data]``, ``[model]`` and ``[grid]``.
    """
    from bayesmoe._validation import check_enough_rows, check_y, n_parameters
    from bayesmoe.models.spec import check_trials
    from bayesmoe.scaling import Standardizer
    from bayesmoe.study.spec import SpecError

    family = m["family"]
    key = "data.formula"
    try:
        dm = _design(df, d, family)
        key = f"data in {Path(d['path']).name}"
        X = dm.X.to_numpy(dtype=float)
        y, classes = check_y(dm.y, family, X.shape[0], dm.design.classes)
        tcol = d.get("trials")
        check_trials(None if tcol is None else df[tcol].to_numpy(), y, family, X.shape[0])
        Standardizer.from_data(X, y, family=family)
        n = min(g["n"]) if "n" in g else (d.get("n") or X.shape[0])
        K = max(g.get("n_experts", [m.get("n_experts") or m.get("k_max") or 1]))
        d_gate = None if dm.gate_X is None else dm.gate_X.shape[1]
        check_enough_rows(n, n_parameters(K, X.shape[1], family, len(classes or []), d_gate))
    except (TypeError, ValueError) as err:
        msg = str(err).splitlines()[0]
        if msg.startswith("`gate_formula`"):
            key = "data.gate_formula"
        raise SpecError(f"study spec: `{key}`: {msg}") from None


def formula_task_data(df, data: dict, family: str, seed):
    """``(X, y, None, feature names, description, row data)`` of a task of a formula data set
    (:func:`bayesmoe.study.runner.load_task_data`): the subsample of the matrix form (the same
    rows for the same data seed), then the design of those rows.
    """
    n, rows, desc = data.get("n"), None, str(data["path"])
    if n is not None:
        if n > len(df):
            raise ValueError(
                f"n={n} exceeds the {len(df)} rows of {Path(data['path']).name};"
                " use smaller values in grid.n."
            )
        rows = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
        desc += f" (subsample of n={n} rows, seed {seed})"
    X, y, names, extra = read_formula_csv(df, data, family, rows)
    return X, y, None, names, desc, extra


def read_formula_csv(df, data: dict, family: str, rows=None):
    """The arrays of a task of a formula data set: ``(X, y, feature names, row data)``.

    ``rows``: the task's row indices (a subsample; None: every row), taken before the design is
    built. The row data hold ``trials``, ``offset``, ``gate_X``, ``gate_feature_names``,
    ``formulas`` (:meth:`bayesmoe.formula.Design.attrs`, for the result file's ``attrs``) and
    ``classes`` (a factor response's levels in the factor's order, else None).
    """
    if rows is not None:
        df = df.iloc[rows].reset_index(drop=True)
    dm = _design(df, data, family)
    tcol = data.get("trials")
    extra = {
        "trials": None if tcol is None else df[tcol].to_numpy(dtype=float),
        "offset": dm.offset,
        "gate_X": None if dm.gate_X is None else np.ascontiguousarray(dm.gate_X, dtype=float),
        "gate_feature_names": dm.design.gate_feature_names,
        "formulas": dm.design.attrs(),
        "classes": dm.design.classes,  # a factor response's level order
    }
    X = np.ascontiguousarray(dm.X.to_numpy(dtype=float))
    return X, np.asarray(dm.y), list(dm.design.feature_names), extra
