"""Validation of user input, with one message shape: what was expected, what was got, the fix.

Every public entry point (``MoE``, ``build_model``, ``sample``, ``fit_mle``, ``select_experts``,
``sample_random_k``, the DP sampler, the predictions, the study spec and the CLI) checks its data
with these helpers, so one bad input gets one message everywhere. The rules:

- ``X`` is a finite 2-D array (n_obs, n_features) with n_obs >= 1; n_features = 0 is a
  covariate-free model. A 1-D ``X`` is rejected everywhere (it is ambiguous: one feature or one
  row?); the message gives both reshapes.
- ``y`` has one entry per row of X; Gaussian ``y`` is finite and numeric; categorical ``y`` has
  at least 2 classes and fewer distinct values than half the rows (more means it is a
  continuous response, or the classes have too few rows to be learnt).
"""

from __future__ import annotations

import argparse
import numbers

import numpy as np


def check_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    return int(value)


def family_keyword(family, experts, where: str):
    """The family of a call that may still use the deprecated ``experts=`` keyword.

    ``family=`` is the one word for the expert family across the Python API, the CLI
    (``--family``), the study spec (``model.family``) and the trace attrs; ``experts=`` stays one
    release with a :class:`FutureWarning`.
    """
    if experts is None:
        return family
    import warnings

    warnings.warn(
        f"`experts=` of {where} is deprecated and will be removed; use `family={experts!r}` (the "
        "same word as fit_mle, the CLI's --family, the study spec and the trace attrs).",
        FutureWarning,
        stacklevel=3,
    )
    if family not in (None, "gaussian") and family != experts:
        raise TypeError(f"{where} got both `family={family!r}` and `experts={experts!r}`.")
    return experts


def check_family(family, name: str = "family") -> str:
    """The name of a valid expert family (see :mod:`bayesmoe.families`)."""
    from bayesmoe.families import get_family

    return get_family(family, name).name


def int_at_least(minimum: int):
    """Argparse type: an integer >= minimum, with a one-line message otherwise.

    Examples
    --------
    >>> from bayesmoe._validation import int_at_least
    >>> int_at_least(1)("3")
    3
    >>> int_at_least(1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a positive integer, got 0
    """
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {v}")
        return v

    parse.__name__ = "positive_int" if minimum == 1 else f"int_at_least_{minimum}"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def check_X(X, name: str = "X") -> np.ndarray:
    """A finite 2-D float array (n_obs >= 1 rows, any number of features including 0).

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe._validation import check_X
    >>> check_X([[1.0], [2.0]]).shape
    (2, 1)
    >>> try:
    ...     check_X(np.arange(3.0))
    ... except ValueError as err:
    ...     print(str(err).split(". ")[-1])
    For one feature use X.reshape(-1, 1); for one row use X.reshape(1, -1).
    """
    if isinstance(X, str) or X is None:
        raise TypeError(
            f"`{name}` must be a 2-D numeric array (n_obs, n_features); got {type(X).__name__}."
        )
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`{name}` must be numeric; converting it to float failed: {err}."
        ) from None
    if arr.ndim == 1:
        raise ValueError(
            f"`{name}` must be 2-D (n_obs, n_features); got a 1-D array of shape {arr.shape}. "
            f"For one feature use {name}.reshape(-1, 1); for one row use {name}.reshape(1, -1)."
        )
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


def _response_1d(y, n_obs: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n_obs:
        raise ValueError(
            f"`y` must be 1-D with {n_obs} entries (one per row of X); got shape {y.shape}."
        )
    return y


def check_y(y, family, n_obs: int, classes=None) -> tuple[np.ndarray, list | None]:
    """Return (y as the family codes it, class labels or None): the family's own check."""
    from bayesmoe.families import get_family

    return get_family(family, "family").check_response(y, n_obs, classes)


def check_real_response(y, n_obs: int, *, family: str = "gaussian") -> np.ndarray:
    """A finite real response (Gaussian experts)."""
    y = _response_1d(y, n_obs)
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise TypeError(
            f"`y` must be numeric for {family.capitalize()} experts; for labels use "
            "family='categorical'."
        ) from None
    if not np.all(np.isfinite(yf)):
        i = int(np.flatnonzero(~np.isfinite(yf))[0])
        raise ValueError(f"`y` contains NaN or inf (first at row {i}); drop those rows first.")
    return yf


def check_count_response(y, n_obs: int, *, family: str = "poisson") -> np.ndarray:
    """Non-negative integer counts (Poisson experts), as int64."""
    yf = check_real_response(y, n_obs, family=family)
    if np.any(yf < 0):
        i = int(np.flatnonzero(yf < 0)[0])
        raise ValueError(
            f"`y` must hold counts >= 0 for {family} experts; got {yf[i]:g} at row {i}."
        )
    if np.any(yf != np.round(yf)):
        i = int(np.flatnonzero(yf != np.round(yf))[0])
        raise ValueError(
            f"`y` must hold whole counts for {family} experts; got {yf[i]:g} at row {i}."
        )
    return yf.astype(np.int64)


def check_binomial_response(y, n_obs: int, *, family: str = "binomial") -> np.ndarray:
    """Successes of binomial experts as int64: counts >= 0, booleans, or a two-level response
    coded 0/1 in sorted order (the second level is the success; Bernoulli rows).
    """
    arr = _response_1d(y, n_obs)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        levels = sorted(set(arr.tolist()), key=str)
        if len(levels) != 2:
            raise ValueError(
                f"`y` of {family} experts must be counts or a two-level response; got "
                f"{len(levels)} levels {levels[:5]}."
            )
        return (arr == levels[1]).astype(np.int64)
    return check_count_response(arr, n_obs, family=family)


def check_trials(trials, y: np.ndarray, n_obs: int, *, family: str = "binomial") -> np.ndarray:
    """Per-row numbers of trials of binomial experts (whole numbers >= 1, at least ``y``)."""
    t = np.asarray(trials)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (n_obs,):
        raise ValueError(f"`trials` must have {n_obs} entries (one per row); got shape {t.shape}.")
    try:
        t = t.astype(float)
    except (TypeError, ValueError):
        raise TypeError(
            f"`trials` must be numeric (whole numbers >= 1); got dtype {t.dtype}."
        ) from None
    bad = ~np.isfinite(t) | (t < 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"`trials` must be whole numbers >= 1; got {t[i]:g} at row {i}.")
    if np.any(t != np.round(t)):
        i = int(np.flatnonzero(t != np.round(t))[0])
        raise ValueError(f"`trials` must be whole numbers >= 1; got {t[i]:g} at row {i}.")
    over = np.asarray(y, dtype=float) > t
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise ValueError(
            f"`y` must not exceed `trials` for {family} experts; got {float(y[i]):g} successes "
            f"of {t[i]:g} trials at row {i}."
        )
    return t


def check_class_response(y, n_obs: int, classes=None) -> tuple[np.ndarray, list]:
    """Class labels coded 0..M-1 in sorted order (or the order of ``classes``)."""
    y = _response_1d(y, n_obs)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("`y` contains NaN or inf; drop those rows first.")
    if y.dtype == object and any(
        v is None or (isinstance(v, float) and not np.isfinite(v)) for v in y.tolist()
    ):
        raise ValueError("`y` contains missing values (None/NaN); drop those rows first.")
    if classes is None:
        try:
            classes = sorted(np.unique(y).tolist())
        except TypeError:
            raise TypeError(
                "`y` mixes label types that cannot be sorted (e.g. str and int); "
                "use labels of one type or pass `classes`."
            ) from None
        check_not_continuous(len(classes), n_obs)
        if len(classes) < 2:
            raise ValueError(f"`y` has a single class {classes}; classification needs at least 2.")
    else:
        classes = list(classes)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        codes = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as err:
        raise ValueError(
            f"`y` has label {err.args[0]!r} not among the classes {classes}."
        ) from None
    return codes, classes


def check_not_continuous(n_distinct: int, n_obs: int) -> None:
    """Categorical y with more distinct values than half the rows is not a set of classes."""
    if n_distinct > max(2, n_obs // 2):
        what = (
            "as many distinct values as rows"
            if n_distinct == n_obs
            else f"{n_distinct} distinct values in {n_obs} rows"
        )
        raise ValueError(
            f"`y` has {what}: it looks like a continuous response, not class labels. For a real "
            "response use family='gaussian'; for classes, each class needs several rows "
            "(merge rare classes)."
        )


def check_class_codes(y, n_obs: int, n_classes=None) -> tuple[np.ndarray, int]:
    """Categorical ``y`` as integer codes 0..M-1 (the MM functions); returns (codes, M)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n_obs:
        raise ValueError(
            f"`y` must be 1-D with {n_obs} entries (one per row of X); got shape {y.shape}."
        )
    try:
        yf = y.astype(float)
    except (TypeError, ValueError):
        raise ValueError(
            "categorical `y` must hold integer class codes 0..M-1; got non-numeric labels. "
            "Encode them first, e.g. with pandas.factorize (or use bayesmoe.MoE, which takes "
            "labels)."
        ) from None
    if not np.all(np.isfinite(yf)):
        i = int(np.flatnonzero(~np.isfinite(yf))[0])
        raise ValueError(
            f"categorical `y` must hold integer class codes 0..M-1; it contains NaN "
            f"or inf (first at row {i}); drop those rows first."
        )
    check_not_continuous(len(np.unique(yf)), n_obs)
    if np.any(yf != np.round(yf)):
        raise ValueError(
            "categorical `y` must hold integer class codes 0..M-1; got non-integer values."
        )
    codes = yf.astype(np.int64)
    M = int(codes.max()) + 1 if n_classes is None else check_int(n_classes, "n_classes", minimum=2)
    if codes.min() < 0 or codes.max() >= M:
        raise ValueError(
            f"categorical `y` must lie in 0..{M - 1}; got values in {codes.min()}..{codes.max()}. "
            "Recode the labels or pass the right `n_classes`."
        )
    if M < 2:
        raise ValueError("categorical `y` has a single class; classification needs at least 2.")
    return codes, M


def check_enough_rows(n_obs: int, n_params: int) -> None:
    if n_obs < n_params:
        raise ValueError(
            f"The model has {n_params} parameters but the data have only {n_obs} rows; use fewer "
            "experts or features, or more data."
        )


def n_parameters(
    n_experts: int, d: int, family: str, n_classes: int = 0, d_gate: int | None = None
) -> int:
    """Free parameters of a fixed-K MoE (gate identified by one constraint); ``d_gate`` is the
    gate's number of covariates (default ``d``: the gate sees the experts' covariates).
    """
    from bayesmoe.families import get_family

    gate = (n_experts - 1) * ((d if d_gate is None else d_gate) + 1)
    return gate + n_experts * get_family(family).n_params(d, n_classes)


# ----- keyword arguments --------------------------------------------------------------------------
def check_keywords(
    where: str,
    kwargs,
    valid,
    *,
    passthrough=None,
    reserved: dict[str, str] | None = None,
) -> None:
    """Reject keyword arguments that ``where`` does not take, naming the nearest valid one.

    Parameters
    ----------
    where : str
        The function's name, as the user called it (``"fit"``, ``"sample_random_k"``).
    kwargs : iterable of str
        The keyword names the user passed (typically ``**sample_kwargs``).
    valid : iterable of str
        Names accepted without asking the backend (the function's own parameters, the JAX
        sampler's keywords).
    passthrough : callable, optional
        Returns the names legitimately passed on to a backend (e.g. ``pymc.sample``'s
        keywords); called only when some keyword is not in ``valid`` (it may import PyMC).
    reserved : dict, optional
        Names the backend takes but that bayesmoe sets itself, with the reason shown.

    Raises
    ------
    TypeError
        ``unknown keyword argument 'n_draws' to fit; did you mean 'draws'?``

    Examples
    --------
    >>> from bayesmoe._validation import check_keywords
    >>> try:
    ...     check_keywords("fit", ["n_draws"], ["draws", "tune", "chains"])
    ... except TypeError as err:
    ...     print(err)
    unknown keyword argument 'n_draws' to fit; did you mean 'draws'?
    """
    import difflib

    valid = set(valid)
    reserved = reserved or {}
    extra = [k for k in kwargs if k not in valid]
    if not extra:
        return
    for k in extra:
        if k in reserved:
            raise TypeError(f"keyword argument {k!r} to {where} is not accepted: {reserved[k]}.")
    names = valid | (set(passthrough()) if passthrough is not None else set())
    names -= set(reserved)
    for k in extra:
        if k not in names:
            close = difflib.get_close_matches(k, sorted(names), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; see help({where})."
            raise TypeError(f"unknown keyword argument {k!r} to {where}{hint}")


def keywords_checked(func):
    """Decorator: unknown keyword arguments to ``func`` raise :func:`check_keywords`'s message.

    For functions without ``**kwargs`` (Python's own error names no alternative); the signature
    and docstring are kept.
    """
    import functools
    import inspect

    params = inspect.signature(func).parameters
    names = {n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    where = func.__qualname__.replace(".__init__", "")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if kwargs.keys() - names:
            check_keywords(where, kwargs, names)
        return func(*args, **kwargs)

    return wrapper


#: pm.sample keywords that bayesmoe sets itself, with what to do instead
PYMC_RESERVED_KWARGS = {
    "model": "bayesmoe builds the model",
    "step": "bayesmoe chooses the step methods",
    "initvals": "bayesmoe sets the chains' starts (see the `init` argument)",
    "nuts_sampler": "use backend=",
    "compute_convergence_checks": "bayesmoe checks convergence itself (ConvergenceWarning)",
    "return_inferencedata": "bayesmoe returns an xarray.DataTree",
}


def pymc_sample_keywords() -> set[str]:
    """Keywords :func:`pymc.sample` takes, its own and those of its NUTS step (imports PyMC)."""
    import inspect

    import pymc as pm
    from pymc.step_methods.hmc.base_hmc import BaseHMC

    out = {"nuts"}  # pm.sample(nuts={...}): step-method keywords by step name
    for f in (pm.sample, pm.NUTS.__init__, BaseHMC.__init__):
        for n, p in inspect.signature(f).parameters.items():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in ("self", "vars"):
                out.add(n)
    return out


def nuts_step_keywords() -> set[str]:
    """Keywords of PyMC's NUTS step method (``target_accept``, ``max_treedepth``, ...)."""
    import inspect

    import pymc as pm
    from pymc.step_methods.hmc.base_hmc import BaseHMC

    out = set()
    for f in (pm.NUTS.__init__, BaseHMC.__init__):
        for n, p in inspect.signature(f).parameters.items():
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                out.add(n)
    return out - {"self", "vars", "model", "rng", "initial_point", "blocked"}


def check_pymc_sampler_call(where: str, sample_kwargs, own, *, draws, tune, chains, cores):
    """The checks of an entry point that runs ``pymc.sample``: its keywords (own, or
    ``pymc.sample``'s; reserved ones refused) and the sampler's sizes. Returns
    :func:`check_sampler_args`'s ``(draws, tune, chains, cores)``.
    """
    check_keywords(
        where, sample_kwargs, own, passthrough=pymc_sample_keywords, reserved=PYMC_RESERVED_KWARGS
    )
    return check_sampler_args(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        target_accept=sample_kwargs.get("target_accept"),
    )


# ----- sampler arguments --------------------------------------------------------------------------
def check_sampler_args(
    *, draws=1, tune=0, chains=1, cores=None, target_accept=None
) -> tuple[int, int | None, int, int | None]:
    """The CLI's rule for the sampler's sizes: draws >= 1, tune >= 0, chains >= 1, cores >= 1
    (or None), 0 < target_accept < 1 (or None). ``tune=None`` (a backend default) passes.

    Examples
    --------
    >>> from bayesmoe._validation import check_sampler_args
    >>> check_sampler_args(draws=10, tune=None, chains=2)
    (10, None, 2, None)
    >>> try:
    ...     check_sampler_args(draws=0)
    ... except ValueError as err:
    ...     print(err)
    `draws` must be an int >= 1; got 0.
    """
    draws = check_int(draws, "draws", minimum=1)
    tune = None if tune is None else check_int(tune, "tune", minimum=0)
    chains = check_int(chains, "chains", minimum=1)
    cores = None if cores is None else check_int(cores, "cores", minimum=1)
    if target_accept is not None and (
        isinstance(target_accept, bool)
        or not isinstance(target_accept, numbers.Real)
        or not 0 < target_accept < 1
    ):
        raise ValueError(
            f"`target_accept` must be a number in (0, 1), e.g. 0.9; got {target_accept!r}."
        )
    return draws, tune, chains, cores


# ----- warnings -----------------------------------------------------------------------------------
def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the user's line: frames inside bayesmoe are skipped."""
    import os
    import warnings

    warnings.warn(message, category, skip_file_prefixes=(os.path.dirname(__file__) + os.sep,))


# ----- prediction inputs --------------------------------------------------------------------------
def align_columns(X, feature_names, name: str = "X_new"):
    """The columns of a DataFrame ``X`` in the fit's order (by name); other inputs unchanged.

    A numpy array keeps its positional meaning. A DataFrame must have exactly the fit's columns
    (any order): missing or extra columns raise a one-line ValueError. A model fitted on an array
    (names ``x0, x1, ...``) takes a DataFrame of the right width by position, with a warning.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe._validation import align_columns
    >>> df = pd.DataFrame({"bmi": [30.0], "glu": [120.0]})
    >>> align_columns(df, ["glu", "bmi"]).tolist()
    [[120.0, 30.0]]
    """
    cols = getattr(X, "columns", None)
    if cols is None or feature_names is None or not hasattr(X, "to_numpy"):
        return X
    cols = [str(c) for c in cols]
    names = [str(f) for f in feature_names]
    if cols == names:
        return X.to_numpy()
    missing = [f for f in names if f not in cols]
    extra = [c for c in cols if c not in names]
    if not missing and not extra:
        if len(set(cols)) != len(cols):
            raise ValueError(f"`{name}` has duplicated column names: {cols}.")
        return X[names].to_numpy()
    if names == [f"x{j}" for j in range(len(names))] and len(cols) == len(names):
        warn_user(
            f"`{name}` is a DataFrame but the model was fitted on an array (no column names); "
            f"its columns {cols} are used by position as {names}."
        )
        return X.to_numpy()
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"extra {extra}")
    raise ValueError(
        f"`{name}` must have the fit's columns {names} (any order); got {cols}: "
        + ", ".join(parts)
        + "."
    )
