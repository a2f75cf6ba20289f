"""Expert families: one module each, every backend derived from its declaration.

>>> from bayesmoe.families import get_family, FAMILIES
>>> FAMILIES
('gaussian', 'categorical', 'poisson', 'binomial', 'negbinomial', 'student-t')
>>> get_family("poisson").canonical_dims
{'a': ('feature', 'expert'), 'b': ('expert',)}
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from bayesmoe.families._ops import NUMPY, Ops, jax_ops, pytensor_ops
from bayesmoe.families.base import Family, Param, Transform
from bayesmoe.families.binomial import BINOMIAL
from bayesmoe.families.categorical import CATEGORICAL
from bayesmoe.families.gaussian import GAUSSIAN
from bayesmoe.families.negbinomial import NEGBINOMIAL
from bayesmoe.families.poisson import POISSON
from bayesmoe.families.student_t import STUDENT_T, StudentT

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

_REGISTRY: dict[str, Family] = {
    f.name: f for f in (GAUSSIAN, CATEGORICAL, POISSON, BINOMIAL, NEGBINOMIAL, STUDENT_T)
}
#: names of the built-in families (the Python API, the CLI's --family and the study spec)
FAMILIES = tuple(_REGISTRY)


_FIXED_DF = re.compile(r"student-t\(df=([0-9.eE+-]+)\)")


@lru_cache(maxsize=64)
def _fixed_df(df: float) -> Family:
    return StudentT(df)


def get_family(family: str | Family, name: str = "family") -> Family:
    """The :class:`Family` of a name (a Family passes through); a clear error otherwise.

    Besides :data:`FAMILIES`, ``"student-t(df=NU)"`` names Student-t experts whose degrees of
    freedom are fixed at NU (> 0).

    >>> get_family("student-t(df=3)").name
    'student-t(df=3)'
    """
    if isinstance(family, Family):
        return family
    if isinstance(family, str) and family in _REGISTRY:
        return _REGISTRY[family]
    m = _FIXED_DF.fullmatch(family) if isinstance(family, str) else None
    if m:
        try:
            df = float(m.group(1))
        except ValueError:
            df = float("nan")
        if np.isfinite(df) and df > 0:
            return _fixed_df(df)
    raise ValueError(
        f"`{name}` must be one of {FAMILIES} or 'student-t(df=NU)' with NU > 0; got {family!r}."
    )
