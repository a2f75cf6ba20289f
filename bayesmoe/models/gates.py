"""Gate input transforms M (docs/math.md §1.3) on tensors and arrays."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "CUSTOM",
    "GATES",
    "is_affine",
    "is_custom",
    "resolve_gate",
    "stored_gate",
    "stored_name",
    "transform_of",
]

#: the name a measure or trace stores for a user's gate callable (callables are not stored)
CUSTOM = "custom"

#: CLI / constructor names of the gates and the measure's name of their input transform.
GATES = {"softmax": "identity", "identity": "identity", "tanh": "tanh", "sigmoid": "sigmoid"}


def _identity(x):
    return x


def _tanh(x):
    import pytensor.tensor as pt  # late: the gates are named without importing PyTensor

    return pt.tanh(x)


def _sigmoid(x):
    import pytensor.tensor as pt

    return pt.sigmoid(x)


_TENSOR_TRANSFORMS: dict[str, Callable] = {
    "identity": _identity,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
}


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
    """Return (measure gate name, tensor transform) for a gate option.

    ``gate`` is "softmax" (standard softmax, M = identity), "tanh" or "sigmoid" (modified softmax),
    or a callable applied elementwise to tensors. A callable must be non-affine: an affine M gives
    the standard softmax gate again, not a modified one.
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
        return "custom", gate
    if not isinstance(gate, str) or gate not in GATES:
        raise ValueError(
            f"`gate` must be one of {sorted(set(GATES) - {'identity'})} or a callable; "
            f"got {gate!r}."
        )
    name = GATES[gate]
    return name, _TENSOR_TRANSFORMS[name]


# ----- stored gates: what a measure or trace records, and how to evaluate it again -------------
def stored_name(gate: str | Callable) -> str:
    """The name a measure stores for a gate option: the transform's name, or ``"custom"``."""
    return CUSTOM if callable(gate) else GATES.get(gate, gate)


def is_custom(name) -> bool:
    """Whether a stored gate name stands for a callable the measure could not store."""
    return name == CUSTOM


def transform_of(name: str, fn: Callable | None):
    """What numpy evaluates the gate input with: the named transform, or the callable ``fn``
    of a custom gate.
    """
    return fn if is_custom(name) else name


def stored_gate(name, given=None, *, what: str = "This measure", fix: str | None = None):
    """The gate transform to evaluate a stored measure with: ``given`` when passed, else the
    stored name; a custom gate without ``given`` raises one line that says what to do.

    Examples
    --------
    >>> from bayesmoe.models.gates import stored_gate
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
    name = name or "identity"
    if is_custom(name):
        raise ValueError(
            f"{what} uses a custom gate callable, which is not stored; "
            f"{fix or 'pass the callable as `gate=`'}."
        )
    return name
