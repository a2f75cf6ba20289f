"""The mixing measure of a posterior trace, a fit result, or a truth."""

from __future__ import annotations

import xarray as xr

from bayesmoe.families import get_family
from bayesmoe.measure import SAMPLE_DIMS, upgrade_measure

__all__ = ["mixing_measure"]

_GATE_ATTRS = ("family", "gate", "temperature")


def mixing_measure(source, *, group: str = "posterior") -> xr.Dataset:
    """Return the mixing measure (docs/design.md) of a trace, a fit result or a truth.

    Parameters
    ----------
    source : xarray.DataTree, xarray.Dataset or object with a ``measure_`` attribute
        A DataTree from :func:`bayesmoe.inference.sample` (its ``posterior`` group holds
        ``beta0, beta1, a, b`` and ``sigma`` (noise sd) for Gaussian experts), a posterior Dataset,
        an MM fit result, or a mixing measure already (its variables returned as they are; of
        its attrs only ``family``, ``gate`` and ``temperature`` are kept).
    group : str
        DataTree group to read.

    Returns
    -------
    xarray.Dataset
        ``beta0[expert]``, ``beta1[gate_feature, expert]``, the family's canonical variables
        (Gaussian: ``a``, ``b``, ``sigma2[expert]`` variances), ``active[expert]`` when present,
        with sample dims (chain, draw) leading.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.diagnostics import mixing_measure
    >>> _, _, truth = simulate("S-B", n=10, random_seed=0)
    >>> mixing_measure(truth).equals(truth)  # a measure comes back with the same variables
    True
    """
    if hasattr(source, "measure_"):
        return source.measure_
    if isinstance(source, xr.DataTree):
        if group not in source.children:
            raise ValueError(
                f"The DataTree has no {group!r} group; groups: {list(source.children)}."
            )
        attrs = {**source.attrs, **source[group].attrs}
        ds = source[group].to_dataset()
        ds.attrs = attrs
    elif isinstance(source, xr.Dataset):
        ds = source
    else:
        raise TypeError(
            "`source` must be an xarray.DataTree, an xarray.Dataset or a fit result; "
            f"got {type(source).__name__}."
        )
    family = ds.attrs.get("family")
    if family is None:  # traces and measures of older versions name no family
        family = "categorical" if "a" in ds and "class" in ds["a"].dims else "gaussian"
    fam = get_family(family)
    if all(v in ds for v in fam.canonical_dims):  # a measure already
        canon = {v: ds[v] for v in fam.canonical_dims}
    else:
        missing = [v for v in ("beta0", "beta1", *fam.trace_dims) if v not in ds]
        if missing:
            raise ValueError(f"Not a bayesmoe posterior: variables {missing} are missing.")
        canon = fam.canonical_from_trace({v: ds[v] for v in fam.trace_dims})
    out = ds[["beta0", "beta1"]].assign(canon)
    if "active" in ds:
        out["active"] = ds["active"]
    sample = [d for d in SAMPLE_DIMS if d in out.dims]
    out = out.transpose(*sample, ...)
    out.attrs = {k: ds.attrs[k] for k in _GATE_ATTRS if k in ds.attrs}
    out.attrs["family"] = fam.name
    out.attrs.setdefault("gate", "softmax")
    out.attrs.setdefault("temperature", 1.0)
    return upgrade_measure(out)
