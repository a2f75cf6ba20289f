"""Formulas for the experts and for the gate on pandas DataFrames, through formulaic.

``design_matrices(data, "y ~ x1 + C(g) + log(x2) + offset(log(t))", "~ z1 + z2")`` turns a
DataFrame into the arrays every entry point takes: the experts' design ``X``, the response
``y``, the gate's design ``gate_X`` and the per-row ``offset``, with the design columns' names as
feature names. The parsing, contrasts, interactions and transforms are formulaic's (the formula
layer of the statsmodels-adjacent tools), in R's conventions: ``C(g)`` treatment contrasts,
``a * b`` and ``a:b`` interactions, ``np.log(x)`` (or ``log(x)``, ``exp``, ``sqrt``), ``I(x**2)``.

bayesmoe fits the intercepts itself (the experts' ``b`` and the gate's ``beta0``), so the
formulas keep R's intercept (factors get full-rank contrasts) and the intercept column is dropped
from the design; ``"~ 1"`` as the gate formula gives zero gate columns (constant mixing weights,
flexmix's mixture of regressions) and ``"y ~ 1"`` a mixture without covariates. ``offset(...)``
terms (summed, as in R) give the log-exposures of families with a log link. A factor response
(strings, or ``C(y)``) gives the classes of categorical experts, in the factor's level order,
and a two-level factor the 0/1 successes of binomial experts (R's convention: the second level
is the success; ``C(y, levels=[...])`` reorders).

The returned :class:`Design` keeps formulaic's model specs, so new DataFrames get the same
columns, contrasts and transforms (:meth:`Design.transform`); a factor level not seen in the fit
is an error rather than a row of zeros.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Design",
    "DesignMatrices",
    "design_matrices",
    "entry_inputs",
    "new_rows",
    "stored_design",
]


def _offset_term(x):
    """``offset(x)`` evaluates to x; the design takes its column out as the offset."""
    return x


CONTEXT = {
    "np": np,
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "offset": _offset_term,
}


def _parse(formula, what: str):
    from formulaic import Formula
    from formulaic.errors import FormulaicError

    if not isinstance(formula, str) or not formula.strip():
        raise TypeError(f"`{what}` must be a formula string such as 'y ~ x'; got {formula!r}.")
    try:
        return Formula(formula)
    except FormulaicError as err:
        first = str(err).splitlines()[0]
        raise ValueError(f"`{what}` {formula!r} is not a valid formula: {first}") from None


def _term_names(spec) -> list[str]:
    return [str(t) for t in spec.terms]


def _materialize(spec_or_formula, data, what: str, *, new: bool = False):
    """The model matrix by formulaic, with one-line errors.

    Unknown columns, missing values and unseen factor levels (formulaic only warns about those
    and codes them as NaN) are errors naming the formula.
    """
    from formulaic import model_matrix
    from formulaic.errors import DataMismatchWarning, FormulaicError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            if new:
                return spec_or_formula.get_model_matrix(data, context=CONTEXT, na_action="raise")
            return model_matrix(spec_or_formula, data, context=CONTEXT, na_action="raise")
    except DataMismatchWarning as err:
        owner = _unseen_level(spec_or_formula, data) if new else None
        if owner is not None:
            col, level, known = owner
            raise ValueError(
                f"`{what}` column {col!r} has level {level!r}, not seen in the fit (levels "
                f"{known}); the design only codes the levels of the data it was fitted on."
            ) from None
        levels = str(err).split(":", 1)[-1].split(". They")[0].strip()
        raise ValueError(
            f"`{what}` has factor level(s) {levels} not seen in the fit; the design only codes "
            "the levels of the data it was fitted on."
        ) from None
    except (FormulaicError, ValueError, TypeError, NameError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        cols = list(getattr(data, "columns", []))
        unknown = re.search(
            r"`([^`]+)` is not present in the dataset|NameError: name '([^']+)' is not defined", msg
        )
        nulls = re.search(r"`([^`]+)` contains null values", msg)
        if nulls:
            raise ValueError(
                f"`{what}` term {nulls.group(1)!r} has missing values on the data (NaN in a "
                "column, or a transform outside its domain such as log of a negative); drop or "
                "fix those rows."
            ) from None
        name = unknown and (unknown.group(1) or unknown.group(2))
        if unknown and new:
            raise ValueError(
                f"`{what}` has no column {name!r}, which the fit's formulas use (columns: {cols})."
            ) from None
        if unknown:
            raise ValueError(
                f"`{what}` names {name!r}, which is not a column of the data (columns: {cols})."
            ) from None
        raise ValueError(
            f"`{what}` could not be evaluated on the data: {msg} (columns: {cols})"
        ) from None


def _unseen_level(spec, data):
    """(column, level, fitted levels) of the first factor level of ``data`` that the spec's
    factors (``g`` or ``C(g, ...)`` of a column) did not see in the fit, or None.
    """
    for name, enc in spec.encoder_state.items():
        if enc[0].value != "categorical":
            continue
        m = re.fullmatch(r"C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(,.*)?\)", name)
        col = m.group(1) if m else name
        if col not in getattr(data, "columns", ()):
            continue
        known = list(enc[1]["categories"])
        for v in data[col].unique().tolist():
            if v not in known:
                return col, v, _plain(known)
    return None


@dataclass(frozen=True)
class Design:
    """The designs of a formula fit, re-applied to new DataFrames.

    Attributes
    ----------
    formula, gate_formula : str or None
        The formulas as given (``gate_formula`` None: the gate sees the experts' design).
    response : str
        The left-hand side (``"y"``, ``"C(y)"``).
    expert_spec, gate_spec : formulaic.ModelSpec
        formulaic's specs of the right-hand sides (contrasts, levels and transform states).
    feature_names, gate_feature_names : list of str
        The design columns (intercept dropped, offsets taken out).
    classes : list or None
        The response's classes (categorical experts).
    """

    formula: str
    gate_formula: str | None
    expert_spec: object = field(repr=False)
    gate_spec: object = field(repr=False)
    feature_names: list
    gate_feature_names: list | None
    offset_columns: list
    response: str = ""
    classes: list | None = None

    def transform(self, data) -> dict:
        """``X`` (a DataFrame named by the design columns), ``gate_X`` and ``offset`` of new rows.

        ``gate_X`` is None when the gate shares the experts' design, ``offset`` None without
        ``offset(...)`` terms. The response need not be in ``data``.
        """
        _check_frame(data, "X_new")
        data = data.reset_index(drop=True)  # formulaic's poly() indexes rows by position
        mm = _materialize(self.expert_spec, data, "X_new", new=True)
        X = mm[self.feature_names]
        off = _sum_offsets(mm, self.offset_columns)
        gate_X = None
        if self.gate_spec is not None:
            gm = _materialize(self.gate_spec, data, "X_new", new=True)
            gate_X = gm[self.gate_feature_names]
        return {"X": X, "gate_X": gate_X, "offset": off}

    def attrs(self) -> dict:
        """Strings for a trace's ``attrs``: the formulas and, as JSON in ``formula_design``,
        what :meth:`from_attrs` needs to rebuild the design (factor levels, transform states,
        design columns).
        """
        state = {
            "experts": _spec_state(self.expert_spec),
            "gate": None if self.gate_spec is None else _spec_state(self.gate_spec),
            "feature_names": self.feature_names,
            "gate_feature_names": self.gate_feature_names,
            "offset_columns": self.offset_columns,
            "response": self.response,
            "classes": None if self.classes is None else _plain(self.classes),
        }
        out = {"formula": self.formula, "formula_design": json.dumps(state)}
        if self.gate_formula is not None:
            out["gate_formula"] = self.gate_formula
        return out

    @classmethod
    def from_attrs(cls, attrs) -> Design:
        """The design stored by :meth:`attrs` (e.g. ``trace.attrs`` of a reloaded trace.nc).

        Examples
        --------
        >>> import pandas as pd
        >>> from bayesmoe.formula import Design, design_matrices
        >>> df = pd.DataFrame({"y": [1.0, 3, 2, 5], "g": list("abab"), "x": [1.0, 2, 4, 8]})
        >>> design = design_matrices(df, "y ~ C(g) + np.log(x)").design
        >>> again = Design.from_attrs(design.attrs())
        >>> again.transform(df.iloc[:2])["X"].to_numpy().round(3).tolist()
        [[0.0, 0.0], [1.0, 0.693]]
        """
        if "formula_design" not in attrs:
            raise ValueError(
                "These attrs hold no formula design (`formula_design`); the fit was not made "
                "from a formula."
            )
        state = json.loads(attrs["formula_design"])
        gate_formula = attrs.get("gate_formula")
        return cls(
            formula=attrs["formula"],
            gate_formula=gate_formula,
            expert_spec=_spec_from_state(_rhs_of(attrs["formula"]), state["experts"]),
            gate_spec=None
            if state["gate"] is None
            else _spec_from_state(gate_formula, state["gate"]),
            feature_names=state["feature_names"],
            gate_feature_names=state["gate_feature_names"],
            offset_columns=state["offset_columns"],
            response=state["response"],
            classes=state["classes"],
        )


def _plain(x):
    """JSON-ready copies of numpy scalars and arrays (recursively)."""
    if isinstance(x, dict):
        if all(isinstance(k, str) for k in x):
            return {k: _plain(v) for k, v in x.items()}
        return {"__items__": [[_plain(k), _plain(v)] for k, v in x.items()]}  # int keys (poly)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return {"__array__": x.tolist()}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _unplain(x):
    if isinstance(x, dict):
        if set(x) == {"__array__"}:
            return np.asarray(x["__array__"])
        if set(x) == {"__items__"}:
            return {k: _unplain(v) for k, v in x["__items__"]}
        return {k: _unplain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unplain(v) for v in x]
    return x


def _spec_state(spec) -> dict:
    """The levels of the factors and the transform states of a formulaic ModelSpec."""
    levels = {
        name: _plain(list(enc[1]["categories"]))
        for name, enc in spec.encoder_state.items()
        if enc[0].value == "categorical"
    }
    return {"levels": levels, "transform_state": _plain(dict(spec.transform_state))}


def _rhs_of(formula: str) -> str:
    return str(_parse(formula, "formula").rhs)


def _spec_from_state(formula: str, state: dict):
    from formulaic import Formula, ModelSpec
    from formulaic.parser.types import Factor

    kind = Factor.Kind.CATEGORICAL
    return ModelSpec(
        formula=Formula(formula),
        encoder_state={k: (kind, {"categories": v}) for k, v in state["levels"].items()},
        transform_state=_unplain(state["transform_state"]),
    )


@dataclass
class DesignMatrices:
    """What :func:`design_matrices` returns: the arrays of one fit and their :class:`Design`."""

    X: object  # pandas.DataFrame, columns = design.feature_names
    y: np.ndarray  # numbers, or class labels (categorical experts)
    gate_X: object | None
    offset: np.ndarray | None
    design: Design

    def codes(self) -> np.ndarray:
        """The response as class codes 0..M-1 in the order of ``design.classes``."""
        lookup = {c: i for i, c in enumerate(self.design.classes)}
        return np.array([lookup[v] for v in self.y.tolist()], dtype=np.int64)

    def fit_kwargs(self) -> dict:
        """``offset``/``gate_X`` keywords for the library's matrix entry points."""
        kw = {}
        if self.offset is not None:
            kw["offset"] = self.offset
        if self.gate_X is not None:
            kw["gate_X"] = self.gate_X
        return kw


def _check_frame(data, what: str) -> None:
    if not hasattr(data, "columns"):
        raise TypeError(
            f"`{what}` must be a pandas DataFrame for a formula fit; got {type(data).__name__}."
        )


def _sum_offsets(mm, columns: list) -> np.ndarray | None:
    if not columns:
        return None
    return mm[columns].to_numpy(dtype=float).sum(axis=1)


def _rhs_columns(spec, what: str) -> tuple[list, list]:
    """(design columns without the intercept and offsets, offset columns) of a right-hand side."""
    names = _term_names(spec)
    if "1" not in names:
        raise ValueError(
            f"`{what}` removes the intercept (`0 +` or `- 1`); bayesmoe fits the intercepts "
            "itself, keep them in the formula (its column is dropped from the design)."
        )
    offsets, cols = [], []
    for term in spec.terms:
        idx = [spec.column_names[i] for i in spec.term_indices[term]]
        if str(term) == "1":
            continue
        if str(term).startswith("offset(") and str(term).endswith(")"):
            offsets += idx
        else:
            cols += idx
    return cols, offsets


def _check_columns(frame, what: str) -> None:
    """Design columns must be finite and not constant (the intercept is the model's own)."""
    values = frame.to_numpy(dtype=float)
    for j, c in enumerate(frame.columns):
        if not np.all(np.isfinite(values[:, j])):
            raise ValueError(f"`{what}` column {c!r} has non-finite values (e.g. log of 0).")
        if values.shape[0] and np.ptp(values[:, j]) == 0:
            raise ValueError(
                f"`{what}` column {c!r} is constant on the data: it is collinear with the "
                "intercept bayesmoe fits; remove that term."
            )


def _response(mm, fam):
    """The response (numbers or labels) and the classes (categorical) from the left side."""
    lhs = mm.lhs
    spec = lhs.model_spec
    if len(spec.terms) != 1:
        raise ValueError(
            f"`formula` must have one response; got {_term_names(spec)} on the left of '~'."
        )
    name = str(spec.terms[0])
    kinds = {k: v[0].value for k, v in spec.encoder_state.items()}
    factor = any(v == "categorical" for v in kinds.values())
    if factor:
        (state,) = [v[1] for v in spec.encoder_state.values()]
        classes = list(state["categories"])
        onehot = lhs.to_numpy(dtype=float)
        labels = np.asarray(classes, dtype=object)[onehot.argmax(axis=1)]
        if fam.has_classes:
            return labels, classes
        try:  # a family that takes a two-level response (binomial: Bernoulli rows)
            fam.check_response(labels, labels.shape[0])
        except (TypeError, ValueError):
            raise ValueError(
                f"`formula` response {name!r} is a factor with {len(classes)} levels; "
                f"{fam.name} experts need numbers (use family='categorical' for labels)."
            ) from None
        # R's convention: the second level (in the factor's order) is the success
        return (onehot.argmax(axis=1) == 1).astype(np.int64), None
    if lhs.shape[1] != 1:
        raise ValueError(f"`formula` response {name!r} must be one column; got {lhs.shape[1]}.")
    y = lhs.iloc[:, 0].to_numpy()
    if fam.has_classes:
        classes = sorted(np.unique(y).tolist())
        return y, classes
    return y.astype(float), None


def design_matrices(data, formula: str, gate_formula: str | None = None, *, family="gaussian"):
    """The experts' and the gate's designs of a DataFrame from formulas.

    Parameters
    ----------
    data : pandas.DataFrame
    formula : str
        ``"y ~ terms"``: the response and the experts' covariates (formulaic syntax, R
        conventions; ``offset(expr)`` terms give the log-exposures).
    gate_formula : str, optional
        ``"~ terms"``: the gate's covariates, no response; ``"~ 1"`` for constant mixing
        weights. Default: the gate sees the experts' design.
    family : str
        The expert family (decides whether the response is numbers or classes and whether an
        offset is allowed).

    Returns
    -------
    DesignMatrices

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.formula import design_matrices
    >>> df = pd.DataFrame({"y": [1, 4, 2, 8, 5, 7], "x": [1.0, 2, 3, 4, 5, 6],
    ...                    "g": list("abcabc"), "t": [1.0, 2, 1, 2, 1, 2]})
    >>> dm = design_matrices(df, "y ~ x + C(g) + offset(log(t))", "~ 1", family="poisson")
    >>> dm.design.feature_names
    ['x', 'C(g)[T.b]', 'C(g)[T.c]']
    >>> dm.gate_X.shape, dm.offset.round(3)[:2]
    ((6, 0), array([0.   , 0.693]))
    """
    from bayesmoe.families import get_family

    fam = get_family(family, "family")
    _check_frame(data, "data")
    data = data.reset_index(drop=True)
    parsed = _parse(formula, "formula")
    if not hasattr(parsed, "lhs"):
        raise ValueError(
            f"`formula` {formula!r} has no response; write 'y ~ x1 + x2' (the gate's "
            "covariates go in `gate_formula`)."
        )
    mm = _materialize(formula, data, "formula")
    y, classes = _response(mm, fam)
    rhs = mm.rhs
    cols, offsets = _rhs_columns(rhs.model_spec, "formula")
    if offsets and not fam.takes_offset:
        raise ValueError(
            f"`formula` has offset terms; offsets apply to families with a log link and "
            f"{fam.name} takes none."
        )
    X = rhs[cols].astype(float)
    _check_columns(X, "formula")
    gate_X, gate_spec, gate_cols = None, None, None
    if gate_formula is not None:
        gparsed = _parse(gate_formula, "gate_formula")
        if hasattr(gparsed, "lhs"):
            raise ValueError(
                f"`gate_formula` {gate_formula!r} has a response; the gate has none: write "
                "'~ z1 + z2' (or '~ 1' for constant mixing weights)."
            )
        gm = _materialize(gate_formula, data, "gate_formula")
        gate_cols, goff = _rhs_columns(gm.model_spec, "gate_formula")
        if goff:
            raise ValueError("`gate_formula` has an offset term; offsets belong to the experts.")
        gate_X = gm[gate_cols].astype(float)
        _check_columns(gate_X, "gate_formula")
        gate_spec = gm.model_spec
    design = Design(
        formula=formula,
        gate_formula=gate_formula,
        expert_spec=rhs.model_spec,
        gate_spec=gate_spec,
        feature_names=cols,
        gate_feature_names=gate_cols,
        offset_columns=offsets,
        response=str(mm.lhs.model_spec.terms[0]),
        classes=classes,
    )
    return DesignMatrices(X, y, gate_X, _sum_offsets(rhs, offsets), design)


def formula_inputs(X, y, data, formula, gate_formula, family, **given):
    """The matrix inputs of a formula fit, for the entry points' ``data=``/``formula=``.

    ``given`` holds the matrix keywords the caller also received (``offset``, ``gate_X``...):
    with a formula they must be unset (one line names the clash). Returns the
    :class:`DesignMatrices`.
    """
    if formula is None:
        raise TypeError("`data` was given without `formula`; pass formula='y ~ ...' too.")
    if data is None:
        raise TypeError("`formula` was given without `data`; pass data=<DataFrame> too.")
    if X is not None or y is not None:
        raise TypeError("pass either (X, y) or data= with formula=, not both.")
    clash = [k for k, v in given.items() if v is not None]
    if clash:
        raise TypeError(
            f"`{clash[0]}` comes from the formulas in a formula fit (offset(...) terms, "
            "gate_formula=); do not pass it too."
        )
    return design_matrices(data, formula, gate_formula, family=family)


def entry_inputs(X, y, data, formula, gate_formula, family, *, codes=False, **given):
    """The matrix keywords of a sampler's formula form (``sample``, ``sample_random_k``).

    ``given`` holds the matrix keywords the caller also received (``offset``, ``gate_X``,
    ``feature_names``, ``gate_feature_names``, ``classes``): they come from the formulas, so
    they must be unset. Returns ``(X, y, keywords, design)`` with ``X`` and ``gate_X`` as arrays
    named by ``feature_names``/``gate_feature_names``, ``y`` as labels with ``classes`` (or as
    class codes 0..M-1 with ``codes=True``, ``n_classes`` then in the keywords). Without
    ``data`` and ``formula`` (a call with matrices) the arguments come back as given, with
    ``design`` None.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.formula import entry_inputs
    >>> df = pd.DataFrame({"y": [1.0, 3, 2, 5], "x": [1.0, 2, 4, 8], "z": [0.0, 1, 0, 2]})
    >>> X, y, kw, design = entry_inputs(None, None, df, "y ~ np.log(x)", "~ z", "gaussian")
    >>> X.shape, kw["feature_names"], kw["gate_feature_names"]
    ((4, 1), ['np.log(x)'], ['z'])
    """
    if formula is None and data is None:
        return X, y, dict(given), None
    dm = formula_inputs(X, y, data, formula, gate_formula, family, **given)
    design = dm.design
    kw = {
        "feature_names": list(design.feature_names),
        "offset": dm.offset,
        "gate_X": None if dm.gate_X is None else np.ascontiguousarray(dm.gate_X, dtype=float),
        "gate_feature_names": design.gate_feature_names,
    }
    y = dm.y
    if design.classes is not None:
        if codes:
            y = dm.codes()
            kw["n_classes"] = len(design.classes)
        else:
            kw["classes"] = list(design.classes)
    # C order, as hand-built matrices usually are: a fit's last bits depend on the layout
    return np.ascontiguousarray(dm.X.to_numpy(dtype=float)), y, kw, design


def stored_design(source) -> Design | None:
    """The :class:`Design` a formula fit stored in its ``attrs`` (a trace, a measure or an MM
    result), or None for a fit from matrices.
    """
    attrs = getattr(getattr(source, "measure_", source), "attrs", None) or {}
    return Design.from_attrs(attrs) if "formula_design" in attrs else None


def new_rows(source, X_new, offset=None, gate_X=None):
    """``(X_new, offset, gate_X)`` for prediction: a new DataFrame gets the designs a formula fit
    stored (its columns, contrasts, transforms and offsets; explicit ``offset``/``gate_X``
    win); matrices, the inputs of fits from matrices, and a DataFrame of the design's columns
    that the design cannot read (e.g. :meth:`Design.transform`'s ``X``) come back as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.formula import design_matrices, new_rows
    >>> df = pd.DataFrame({"y": [1.0, 3, 2, 5], "g": list("abab"), "x": [1.0, 2, 4, 8]})
    >>> class Fit:  # anything with the design in its attrs: a trace, a measure
    ...     attrs = design_matrices(df, "y ~ C(g) + x").design.attrs()
    >>> X, offset, gate_X = new_rows(Fit(), pd.DataFrame({"g": ["b"], "x": [3.0]}))
    >>> X.columns.tolist(), X.to_numpy().tolist(), offset, gate_X
    (['C(g)[T.b]', 'x'], [[1.0, 3.0]], None, None)
    """
    if not hasattr(X_new, "columns"):
        return X_new, offset, gate_X
    design = stored_design(source)
    if design is None:
        return X_new, offset, gate_X
    try:
        new = design.transform(X_new)
    except ValueError:
        if set(design.feature_names) <= {str(c) for c in X_new.columns}:
            return X_new, offset, gate_X  # the design's columns already (Design.transform's X)
        raise
    return (
        new["X"],
        new["offset"] if offset is None else offset,
        new["gate_X"] if gate_X is None else gate_X,
    )
