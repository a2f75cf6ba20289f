"""Study specifications: a TOML file describing a grid of fits, validated into tasks.

A study is a grid of independent fits (data set × model × seed). The spec names the data source, the
model, the inference method and the grid; :func:`load_spec` validates it (every error names the key,
what was expected, what was got, and the fix) and :meth:`StudySpec.tasks` expands the grid into
tasks, each with deterministic seeds derived from the base seed and the task's grid coordinates.

Example spec (``examples/contraction_study.toml``)::

    [study]
    name = "contraction-S-B"
    seed = 2026                # base seed of every task
    retries = 1                # extra attempts after a failed attempt

    [data]
    source = "simulate"        # or "csv" (keys path, target, features; or path, formula,
                               # gate_formula: bayesmoe.study.formulas)
    preset = "S-B"
    options = {}               # preset options (regime, gate, n_experts, d)

    [model]
    family = "gaussian"
    gate = "softmax"
    n_experts = 3

    [inference]
    method = "mle"             # "mle" | "nuts" | "rjmcmc"

    [grid]
    n = [200, 400, 800, 1600]
    replicate = 4              # an int r means replicates 0..r-1

Simulation-based calibration (:mod:`bayesmoe.study.sbc`) is a study too: ``data.source =
"prior"`` (a fixed standard-normal X of ``n`` rows and ``d`` features from ``x_seed``; the responses
are drawn from the model's prior in each task) with ``inference.method = "sbc"``, and a grid over
``replicate``::

    [data]
    source = "prior"
    n = 150
    [model]
    family = "gaussian"
    n_experts = 2
    fit_priors = {gate_slope = 0.3}   # optional: a deliberately wrong fit (must fail)
    [inference]
    method = "sbc"
    draws = 150                # per chain; `n_ranked` thinned draws are ranked
    n_ranked = 49
    [grid]
    replicate = 40

Seeds
-----
Each task gets two seeds from ``numpy.random.SeedSequence(seed, spawn_key=...)`` where the spawn key
is a SHA-256 digest of the coordinates (never Python's salted ``hash``):

- the **data seed** depends on the data coordinates only (``n``, ``replicate``), so every model of
  a selection study (every K) sees the same data set;
- the **fit seed** depends on all coordinates.

A task's seeds do not depend on the other values of the grid: growing the grid later keeps the seeds
(and the finished results) of the tasks already run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayesmoe.families import FAMILIES, get_family
from bayesmoe.study.formulas import FORMULA_KEYS

__all__ = [
    "GRID_KEYS",
    "METHODS",
    "StudySpec",
    "Task",
    "derive_seed",
    "load_spec",
    "parse_spec",
]

METHODS = ("mle", "nuts", "rjmcmc", "sbc")
#: Keys that may vary over the grid, in the order used for task ids.
GRID_KEYS = ("n", "replicate", "n_experts")
_DATA_COORDS = ("n", "replicate")
_ID_PREFIX = {"n": "n", "replicate": "rep", "n_experts": "K"}

_SECTIONS = ("study", "data", "model", "inference", "grid")
_KEYS: dict[str, dict[str, str]] = {
    "study": {
        "name": "a short name",
        "seed": "the base seed (integer >= 0)",
        "retries": "extra attempts after a failed attempt (0..10)",
        "description": "free text",
    },
    "data": {
        "source": "'simulate', 'csv' or 'prior' (sbc)",
        "preset": "a simulator preset (simulate)",
        "options": "a table of preset options (simulate)",
        "n": "sample size",
        "path": "CSV file (csv)",
        "target": "response column (csv)",
        "features": "list of feature columns (csv)",
        "trials": "column of per-row numbers of trials (csv, family = 'binomial')",
        **FORMULA_KEYS,
        "d": "number of features of the fixed standard-normal X (prior)",
        "x_seed": "seed of the fixed X (prior); the same X for every replicate",
    },
    "model": {
        "family": f"one of {FAMILIES}",
        "gate": "'softmax', 'tanh' or 'sigmoid'",
        "n_experts": "number of experts K",
        "k_max": "largest K (rjmcmc)",
        "k_prior": "prior on K (rjmcmc), a table",
        "n_classes": "number of classes of categorical experts (sbc)",
        "priors": "prior scales, a table of bayesmoe.models.Priors fields (sbc)",
        "fit_priors": "prior scales of the fit if they differ (sbc must-fail check)",
        "likelihood_power": "power of the fit's likelihood, 1 = correct (sbc)",
    },
    "inference": {
        "method": f"one of {METHODS}",
        "draws": "draws per chain (nuts, rjmcmc)",
        "tune": "tuning steps per chain",
        "chains": "number of chains",
        "backend": "'pymc', 'nutpie' or 'numpyro'",
        "init": "'mm', 'map' or 'prior'",
        "target_accept": "NUTS target acceptance in (0, 1)",
        "n_starts": "MM random starts (mle)",
        "max_draws": "draws used for the distances to the truth (<= 200 recommended)",
        "n_ranked": "thinned posterior draws the truth is ranked among (sbc)",
    },
    "grid": {
        "n": "list of sample sizes",
        "replicate": "an int r (replicates 0..r-1) or a list",
        "n_experts": "list of numbers of experts",
    },
}
_DEFAULTS = {
    "study": {"retries": 1, "description": ""},
    "data": {"options": {}, "features": None, "d": 1, "x_seed": 0},
    "model": {"family": "gaussian", "gate": "softmax"},
    "inference": {
        "draws": 500,
        "tune": 500,
        "chains": 2,
        "backend": "pymc",
        "init": "mm",
        "target_accept": 0.8,
        "n_starts": 10,
        "max_draws": 200,
        "n_ranked": 99,
    },
}


class SpecError(ValueError):
    """A study spec is invalid (a ValueError with a one-line message naming the key)."""


def _err(key: str, expected: str, got: Any, fix: str = "") -> SpecError:
    msg = f"study spec: `{key}` must be {expected}; got {got!r}."
    return SpecError(msg + (f" {fix}" if fix else ""))


def _int(key: str, v: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise _err(key, rng, v)
    return int(v)


def _family(v: Any) -> str:
    """model.family: a name of FAMILIES, or 'student-t(df=NU)'."""
    try:
        return get_family(v).name
    except (TypeError, ValueError):
        raise _err("model.family", f"one of {FAMILIES} or 'student-t(df=NU)'", v) from None


def _choice(key: str, v: Any, choices) -> str:
    if v not in choices:
        raise _err(key, f"one of {tuple(choices)}", v)
    return v


def _int_list(key: str, v: Any, lo: int) -> list[int]:
    if isinstance(v, bool) or not isinstance(v, list) or not v:
        raise _err(key, f"a non-empty list of integers >= {lo}", v, f"e.g. {key} = [200, 400]")
    out = [_int(f"{key}[{i}]", x, lo) for i, x in enumerate(v)]
    if len(set(out)) != len(out):
        raise _err(key, "a list without repeated values", v)
    return out


def derive_seed(base_seed: int, tag: str, coords: Mapping[str, Any]) -> int:
    """Deterministic 63-bit seed from a base seed, a purpose tag and grid coordinates.

    The spawn key of :class:`numpy.random.SeedSequence` is the SHA-256 digest of the canonical JSON
    of ``[tag, sorted coordinates]``, so the seed is the same in every process and Python session
    (unlike the salted built-in ``hash``) and does not depend on the order of the coordinates.

    Parameters
    ----------
    base_seed : int
        The study's base seed (``study.seed``).
    tag : str
        What the seed is for, e.g. ``"data"`` or ``"fit"``.
    coords : mapping
        Grid coordinates of the task (JSON-serialisable values).

    Returns
    -------
    int
        A seed in [0, 2**63).

    Examples
    --------
    >>> from bayesmoe.study.spec import derive_seed
    >>> derive_seed(1, "fit", {"n": 200, "replicate": 0}) == derive_seed(
    ...     1, "fit", {"replicate": 0, "n": 200})
    True
    >>> derive_seed(1, "fit", {"n": 200}) == derive_seed(2, "fit", {"n": 200})
    False
    """
    text = json.dumps([tag, sorted((str(k), v) for k, v in coords.items())], separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).digest()
    key = tuple(int(w) for w in np.frombuffer(digest[:16], dtype="<u4"))
    state = np.random.SeedSequence(int(base_seed), spawn_key=key).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


@dataclass(frozen=True)
class Task:
    """One fit of a study: its id, grid coordinates, seeds and the full configuration."""

    id: str
    coords: dict
    data_seed: int
    fit_seed: int
    config: dict = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of everything that determines the result (config, coordinates, seeds)."""
        payload = {
            "config": self.config,
            "coords": self.coords,
            "data_seed": self.data_seed,
            "fit_seed": self.fit_seed,
        }
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        """Plain-dict form (sent to the workers; JSON-ready)."""
        return {
            "id": self.id,
            "coords": dict(self.coords),
            "data_seed": self.data_seed,
            "fit_seed": self.fit_seed,
            "config": self.config,
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec. Build one with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    seed: int
    retries: int
    data: dict
    model: dict
    inference: dict
    grid: dict
    description: str = ""
    source_path: str | None = None

    def to_dict(self) -> dict:
        """The normalised spec (defaults filled in) as plain data."""
        return {
            "study": {
                "name": self.name,
                "seed": self.seed,
                "retries": self.retries,
                "description": self.description,
            },
            "data": self.data,
            "model": self.model,
            "inference": self.inference,
            "grid": self.grid,
        }

    def tasks(self) -> list[Task]:
        """Expand the grid into tasks (row-major over ``n``, ``replicate``, ``n_experts``).

        Examples
        --------
        >>> from bayesmoe.study.spec import parse_spec
        >>> spec = parse_spec({"study": {"seed": 1},
        ...                    "data": {"source": "simulate", "preset": "S-B"},
        ...                    "model": {"n_experts": 3}, "inference": {"method": "mle"},
        ...                    "grid": {"n": [100, 200], "replicate": 2}})
        >>> [t.id for t in spec.tasks()]
        ['n100-rep0', 'n100-rep1', 'n200-rep0', 'n200-rep1']
        """
        keys = [k for k in GRID_KEYS if k in self.grid]
        values = [self.grid[k] for k in keys]
        combos = [dict(zip(keys, c, strict=True)) for c in _product(values)] if keys else [{}]
        out = []
        for coords in combos:
            data_coords = {k: v for k, v in coords.items() if k in _DATA_COORDS}
            tid = "-".join(f"{_ID_PREFIX[k]}{coords[k]}" for k in keys) or "fit"
            config = {
                "data": {**self.data, "n": coords.get("n", self.data.get("n"))},
                "model": {
                    **self.model,
                    "n_experts": coords.get("n_experts", self.model.get("n_experts")),
                },
                "inference": dict(self.inference),
            }
            out.append(
                Task(
                    id=tid,
                    coords=coords,
                    data_seed=derive_seed(self.seed, "data", data_coords),
                    fit_seed=derive_seed(self.seed, "fit", coords),
                    config=config,
                )
            )
        return out


def _product(values: list[list]) -> list[tuple]:
    out: list[tuple] = [()]
    for vs in values:
        out = [(*p, v) for p in out for v in vs]
    return out


# The validation lives in bayesmoe.study.parse (imported last: it reads the names above).
from bayesmoe.study.parse import k_prior_argument, load_spec, parse_spec  # noqa: E402, F401
