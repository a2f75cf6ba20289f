"""Gates: one module each, every backend derived from its declaration (docs/math.md §1.3).

>>> from bayesmoe.gates import GATES, get_gate
>>> sorted(GATES)
['sigmoid', 'softmax', 'tanh']
>>> get_gate("tanh").transform(np.array([0.0, 1.0])).round(3).tolist()
[0.0, 0.762]

The gate modules: :mod:`.softmax` (the standard gate, M = identity, and the modified gates on
``tanh``, ``sigmoid`` or a callable), :mod:`.constant` (constant mixing weights: no gate
covariates), :mod:`.stick_breaking` (the Dirichlet-process gate's weights). Each implements
:class:`~bayesmoe.gates.base.Gate`. Measures and traces store the gate's name; ``"identity"``,
the name earlier versions stored for the standard gate, still reads as ``"softmax"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from bayesmoe.gates.base import Gate
from bayesmoe.gates.constant import CONSTANT, ConstantGate
from bayesmoe.gates.softmax import SIGMOID, SOFTMAX, TANH, CustomGate, SoftmaxGate
from bayesmoe.gates.stick_breaking import STICK_BREAKING, StickBreakingGate

__all__ = [
    "CONSTANT",
    "CUSTOM",
    "GATES",
    "STICK_BREAKING",
    "ConstantGate",
    "CustomGate",
    "Gate",
    "SoftmaxGate",
    "StickBreakingGate",
    "canonical_name",
    "check_gate",
    "get_gate",
    "is_affine",
    "is_custom",
    "resolve_gate",
    "stored_gate",
    "stored_name",
    "transform_of",
]

#: the name a measure or trace stores for a user's gate callable (callables are not stored)
CUSTOM = CustomGate.name

#: the gates a user names (Python API, CLI ``--gate``, study spec): name -> gate
GATES: dict[str, Gate] = {g.name: g for g in (SOFTMAX, TANH, SIGMOID)}

#: every stored name that reads back as a gate (older versions stored "identity")
_STORED: dict[str, Gate] = {
    **GATES,
    "identity": SOFTMAX,
    CONSTANT.name: CONSTANT,
    STICK_BREAKING.name: STICK_BREAKING,
}


def canonical_name(name: str) -> str:
    """The current stored name of a stored gate name (``"identity"`` -> ``"softmax"``)."""
    gate = _STORED.get(name)
    return name if gate is None else gate.name


def check_gate(gate):
    """A gate option the samplers and the MM fitter all take, checked without PyTensor: a name
    of :data:`GATES` or a callable (returned as given; ``"identity"`` reads as ``"softmax"``).

    Examples
    --------
    >>> from bayesmoe.gates import check_gate
    >>> check_gate("tanh")
    'tanh'
    """
    if callable(gate):
        return gate
    if gate == "identity":  # the old name of the standard gate (earlier versions stored it)
        _warn_identity()
        return SOFTMAX.name
    if not isinstance(gate, str) or gate not in GATES:
        raise ValueError(f"`gate` must be one of {sorted(GATES)} or a callable; got {gate!r}.")
    return gate


def get_gate(gate, fn: Callable | None = None) -> Gate:
    """The :class:`Gate` of a gate option, a stored name or a callable.

    ``gate`` is a :class:`Gate`, a name (``"softmax"``, ``"tanh"``, ``"sigmoid"``, a stored
    name such as ``"constant"``), ``"custom"`` with the callable ``fn``, or a callable itself.
    """
    if isinstance(gate, Gate):
        return gate
    if callable(gate):
        return CustomGate(gate)
    if is_custom(gate):
        if fn is None:
            raise ValueError(
                "This measure uses a custom gate callable, which is not stored; pass the "
                "callable as `gate=`."
            )
        return CustomGate(fn)
    try:
        return _STORED[gate]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown gate {gate!r}; expected one of {sorted(GATES)} or a callable. For a "
            "measure with gate='custom' pass the callable as `gate=`."
        ) from None


def is_affine(fn: Callable, *, random_seed: int = 0) -> bool:
    """True when ``fn`` (elementwise, on tensors) is affine on random points (midpoint test)."""
    import pytensor.tensor as pt

    rng = np.random.default_rng(random_seed)
    u, v = rng.normal(size=(2, 16))
    f = lambda t: np.asarray(  # noqa: E731
        (lambda r: r.eval() if hasattr(r, "eval") else r)(fn(pt.as_tensor(t))), dtype=float
    )
    fu, fv, fm = f(u), f(v), f(0.5 * (u + v))
    return bool(np.allclose(fm, 0.5 * (fu + fv), rtol=1e-9, atol=1e-12))


def resolve_gate(gate: str | Callable) -> tuple[str, Callable]:
    """Return (stored gate name, tensor transform) for a gate option.

    ``gate`` is "softmax" (standard softmax, M = identity), "tanh" or "sigmoid" (modified softmax),
    or a callable applied elementwise to tensors. A callable must be non-affine: an affine M gives
    the standard softmax gate again, not a modified one. ``"identity"``, the old name of the
    standard gate, still works with a DeprecationWarning.
    """
    if callable(gate):
        try:
            affine = is_affine(gate)
        except Exception as err:
            raise TypeError(
                f"The gate callable failed on a PyTensor tensor ({err}); it must map tensors to "
                "tensors elementwise, e.g. `pytensor.tensor.arctan`."
            ) from err
        if affine:
            raise ValueError(
                "The gate callable is affine; an affine M(x) is the standard softmax gate. "
                "Use gate='softmax', or a bounded non-affine map such as tanh."
            )
        return CUSTOM, gate
    if gate == "identity":
        _warn_identity()
        gate = SOFTMAX.name
    if not isinstance(gate, str) or gate not in GATES:
        raise ValueError(f"`gate` must be one of {sorted(GATES)} or a callable; got {gate!r}.")
    g = GATES[gate]
    return g.name, _tensor_transform(g)


def _warn_identity() -> None:
    warnings.warn(
        "gate='identity' is the old name of the standard gate; use gate='softmax'.",
        DeprecationWarning,
        stacklevel=4,
    )


def _tensor_transform(gate: Gate) -> Callable:
    def transform(Z):
        from bayesmoe.families import pytensor_ops

        return gate.transform(Z, pytensor_ops())

    return transform


# ----- stored gates: what a measure or trace records, and how to evaluate it again -------------
def stored_name(gate: str | Callable) -> str:
    """The name a measure stores for a gate option: the gate's name, or ``"custom"``."""
    if callable(gate):
        return CUSTOM
    return canonical_name(gate) if isinstance(gate, str) else gate


def is_custom(name) -> bool:
    """Whether a stored gate name stands for a callable the measure could not store."""
    return isinstance(name, str) and name == CUSTOM


def transform_of(name: str, fn: Callable | None):
    """What numpy evaluates the gate input with: the stored name, or the callable ``fn`` of a
    custom gate.
    """
    return fn if is_custom(name) else name


def stored_gate(name, given=None, *, what: str = "This measure", fix: str | None = None):
    """The gate transform to evaluate a stored measure with: ``given`` when passed, else the
    stored name; a custom gate without ``given`` raises one line that says what to do.

    Examples
    --------
    >>> from bayesmoe.gates import stored_gate
    >>> stored_gate("tanh")
    'tanh'
    >>> try:
    ...     stored_gate("custom", what="This posterior")
    ... except ValueError as err:
    ...     print(err)
    This posterior uses a custom gate callable, which is not stored; pass the callable as `gate=`.
    """
    if given is not None:
        return given
    name = name or SOFTMAX.name
    if is_custom(name):
        raise ValueError(
            f"{what} uses a custom gate callable, which is not stored; "
            f"{fix or 'pass the callable as `gate=`'}."
        )
    return name
