"""The gates' old import path: the gate modules live in :mod:`bayesmoe.gates`."""

from bayesmoe.gates import (
    CUSTOM,
    GATES,
    get_gate,
    is_affine,
    is_custom,
    resolve_gate,
    stored_gate,
    stored_name,
    transform_of,
)

__all__ = [
    "CUSTOM",
    "GATES",
    "get_gate",
    "is_affine",
    "is_custom",
    "resolve_gate",
    "stored_gate",
    "stored_name",
    "transform_of",
]
