"""Expert families: one module each, every backend derived from its declaration.

>>> from bayesmoe.families import get_family, FAMILIES
>>> FAMILIES
('gaussian', 'categorical', 'poisson', 'binomial')
>>> get_family("poisson").canonical_dims
{'a': ('feature', 'expert'), 'b': ('expert',)}
"""

from __future__ import annotations

from bayesmoe.families._ops import NUMPY, Ops, jax_ops, pytensor_ops
from bayesmoe.families.base import Family, Param, Transform
from bayesmoe.families.binomial import BINOMIAL
from bayesmoe.families.categorical import CATEGORICAL
from bayesmoe.families.gaussian import GAUSSIAN
from bayesmoe.families.poisson import POISSON

__all__ = [
    "FAMILIES",
    "NUMPY",
    "Family",
    "Ops",
    "Param",
    "Transform",
    "get_family",
    "jax_ops",
    "pytensor_ops",
]

_REGISTRY: dict[str, Family] = {f.name: f for f in (GAUSSIAN, CATEGORICAL, POISSON, BINOMIAL)}
#: names of the built-in families (the Python API, the CLI's --family and the study spec)
FAMILIES = tuple(_REGISTRY)


def get_family(family: str | Family, name: str = "family") -> Family:
    """The :class:`Family` of a name (a Family passes through); a clear error otherwise."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family in _REGISTRY:
        return _REGISTRY[family]
    raise ValueError(f"`{name}` must be one of {FAMILIES}; got {family!r}.")
