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
import importlib.util
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayesmoe.families import FAMILIES, get_family
from bayesmoe.study.formulas import FORMULA_KEYS, check_formula_csv, formula_keys

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


def _rjmcmc_unavailable() -> str:
    """Why the random-K sampler cannot be used ('' when it can).

    The runner calls ``bayesmoe.inference.rjmcmc.sample(X, y, k_max=, k_prior=, family=, gate=,
    feature_names=, classes=, draws=, tune=, chains=, cores=, random_seed=, progressbar=,
    target_accept=)`` and expects a DataTree whose posterior has ``n_experts``.
    """
    if importlib.util.find_spec("bayesmoe.inference.rjmcmc") is None:
        return "the module bayesmoe.inference.rjmcmc is not in this installation"
    try:
        module = importlib.import_module("bayesmoe.inference.rjmcmc")
    except Exception as err:
        return f"bayesmoe.inference.rjmcmc failed to import: {type(err).__name__}: {err}"
    if not callable(getattr(module, "sample_random_k", None)):
        return "bayesmoe.inference.rjmcmc has no `sample_random_k` entry point"
    return ""


def k_prior_argument(kp: Mapping, k_max: int):
    """The `experts_prior` argument of ``sample_random_k`` for a spec's `model.k_prior` table.

    ``{}`` (default) is Poisson(1) on K - 1; ``{kind = "poisson", rate = R}``,
    ``{kind = "geometric", p = P}``, ``{kind = "uniform"}``, or ``{pmf = [p1, ..., pKmax]}``.
    """
    from bayesmoe.models.random_k import experts_prior_pmf

    if "pmf" in kp:
        extra = sorted(set(kp) - {"pmf"})
        if extra:
            raise SpecError(
                f"study spec: `model.k_prior` with `pmf` takes no other keys; got {extra}."
            )
        arg = list(kp["pmf"])
    else:
        kind = kp.get("kind", "poisson")
        params = {"poisson": "rate", "geometric": "p", "uniform": None}
        if kind not in params:
            raise _err("model.k_prior.kind", f"one of {sorted(params)}", kind)
        allowed = {"kind"} | ({params[kind]} if params[kind] else set())
        extra = sorted(set(kp) - allowed)
        if extra:
            raise SpecError(
                f"study spec: `model.k_prior` of kind {kind!r} takes keys "
                f"{sorted(allowed)}; got also {extra}."
            )
        arg = kind if kind == "uniform" else f"{kind}:{kp.get(params[kind], 1.0)}"
    try:
        experts_prior_pmf(arg, k_max)
    except (TypeError, ValueError) as err:
        raise SpecError(f"study spec: `model.k_prior`: {err}") from None
    return arg


def _prior_table(key: str, v: Any) -> dict:
    from bayesmoe.models.priors import resolve_priors

    if not isinstance(v, Mapping):
        raise _err(key, "a table of prior scales, e.g. {gate_slope = 3.0}", v)
    try:
        resolve_priors(dict(v))
    except (TypeError, ValueError) as err:
        raise SpecError(f"study spec: `{key}`: {err}") from None
    return {k: float(x) for k, x in v.items()}


def _check_csv_data(d: dict, m: dict, g: dict) -> None:
    """Validate a CSV data set now (bayesmoe._validation, as every Python entry point does),
    not in a worker after the cluster has started.
    """
    import pandas as pd

    from bayesmoe._validation import check_enough_rows, check_X, check_y, n_parameters
    from bayesmoe.scaling import Standardizer

    try:
        df = pd.read_csv(d["path"])
    except (OSError, ValueError) as err:
        raise SpecError(
            f"study spec: `data.path` {d['path']!r} cannot be read as CSV: {err}".splitlines()[0]
        ) from None
    target = d["target"]
    if target is not None and target not in df.columns:
        raise _err("data.target", f"a column of {Path(d['path']).name} {list(df.columns)}", target)
    tcol = d.get("trials")
    if tcol is not None and tcol not in df.columns:
        raise _err("data.trials", f"a column of {Path(d['path']).name} {list(df.columns)}", tcol)
    if "formula" in d:
        return check_formula_csv(df, d, m, g)
    names = d["features"] or [c for c in df.columns if c not in (target, tcol)]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise _err("data.features", f"columns of {Path(d['path']).name}", missing)
    family = m["family"]
    where = f"study spec: data in {Path(d['path']).name}"
    try:
        X = check_X(df[names], "X (the feature columns)")
        y, classes = check_y(df[target].to_numpy(), family, X.shape[0])
        from bayesmoe.models.spec import check_trials

        check_trials(None if tcol is None else df[tcol].to_numpy(), y, family, X.shape[0])
        Standardizer.from_data(X, y, family=family)
        n = min(g["n"]) if "n" in g else (d.get("n") or X.shape[0])
        K = max(g.get("n_experts", [m.get("n_experts") or m.get("k_max") or 1]))
        check_enough_rows(n, n_parameters(K, X.shape[1], family, len(classes or [])))
    except (TypeError, ValueError) as err:
        raise SpecError(f"{where}: {err}") from None


def _sbc_model(model: Mapping, family: str) -> dict:
    """The SBC options of [model]: classes, data-generating and fitted priors, tempering."""
    out: dict[str, Any] = {}
    if get_family(family).has_classes:
        out["n_classes"] = _int("model.n_classes", model.get("n_classes", 2), 2)
    elif "n_classes" in model:
        raise SpecError("study spec: `model.n_classes` applies to family = 'categorical' only.")
    out["priors"] = _prior_table("model.priors", model.get("priors", {}))
    out["fit_priors"] = (
        _prior_table("model.fit_priors", model["fit_priors"]) if "fit_priors" in model else None
    )
    lp = model.get("likelihood_power", 1.0)
    if isinstance(lp, bool) or not isinstance(lp, (int, float)) or not lp > 0:
        raise _err("model.likelihood_power", "a positive number (1 = the correct likelihood)", lp)
    out["likelihood_power"] = float(lp)
    return out


def _section(raw: Mapping, name: str, required: bool) -> dict:
    if name not in raw:
        if required:
            raise SpecError(
                f"study spec: the table `[{name}]` is missing; add it "
                f"(keys: {', '.join(_KEYS[name])})."
            )
        return {}
    sec = raw[name]
    if not isinstance(sec, Mapping):
        raise _err(name, "a table", sec, f"write it as `[{name}]` followed by its keys")
    unknown = [k for k in sec if k not in _KEYS[name]]
    if unknown:
        allowed = ", ".join(_KEYS[name])
        raise SpecError(
            f"study spec: unknown key `{name}.{unknown[0]}`; allowed keys of [{name}]: {allowed}."
        )
    return {**_DEFAULTS.get(name, {}), **sec}


def parse_spec(
    raw: Mapping, *, base_dir: str | Path | None = None, source_path: str | None = None
) -> StudySpec:
    """Validate a spec given as nested mappings (the parsed TOML) into a :class:`StudySpec`.

    Parameters
    ----------
    raw : mapping
        Tables ``study``, ``data``, ``model``, ``inference`` and optionally ``grid``.
    base_dir : path, optional
        Folder that relative CSV paths are resolved against (the spec file's folder).
    source_path : str, optional
        Recorded as where the spec came from.

    Raises
    ------
    ValueError
        With a one-line message naming the offending key, e.g. ``study spec: `inference.draws`
        must be an integer >= 1; got 0.``

    Examples
    --------
    >>> from bayesmoe.study.spec import parse_spec
    >>> parse_spec({"study": {"seed": 1}, "data": {"source": "simulate", "preset": "S-B",
    ...             "n": 200}, "model": {"n_experts": 3}, "inference": {"method": "nuts",
    ...             "draws": 0}})
    Traceback (most recent call last):
    ...
    bayesmoe.study.spec.SpecError: study spec: `inference.draws` must be an integer >= 1; got 0.
    """
    if not isinstance(raw, Mapping):
        raise TypeError(f"`raw` must be a mapping of tables; got {type(raw).__name__}.")
    unknown = [k for k in raw if k not in _SECTIONS]
    if unknown:
        raise SpecError(
            f"study spec: unknown table `[{unknown[0]}]`; allowed tables: {', '.join(_SECTIONS)}."
        )
    study = _section(raw, "study", True)
    data = _section(raw, "data", True)
    model = _section(raw, "model", True)
    inference = _section(raw, "inference", True)
    grid = _section(raw, "grid", False)

    if "seed" not in study:
        raise SpecError("study spec: `study.seed` is missing; add a base seed, e.g. `seed = 1`.")
    seed = _int("study.seed", study["seed"], 0)
    retries = _int("study.retries", study["retries"], 0, 10)
    name = study.get("name", Path(source_path).stem if source_path else "study")
    if not isinstance(name, str) or not name.strip():
        raise _err("study.name", "a non-empty string", name)
    if not isinstance(study["description"], str):
        raise _err("study.description", "a string", study["description"])

    # ---- grid ---------------------------------------------------------------------------------
    g: dict[str, list[int]] = {}
    if "n" in grid:
        g["n"] = _int_list("grid.n", grid["n"], 2)
    if "replicate" in grid:
        r = grid["replicate"]
        if isinstance(r, int) and not isinstance(r, bool):
            g["replicate"] = list(range(_int("grid.replicate", r, 1)))
        else:
            g["replicate"] = _int_list("grid.replicate", r, 0)
    if "n_experts" in grid:
        g["n_experts"] = _int_list("grid.n_experts", grid["n_experts"], 1)

    # ---- data ---------------------------------------------------------------------------------
    if "source" not in data:
        raise SpecError("study spec: `data.source` is missing; use 'simulate' or 'csv'.")
    source = _choice("data.source", data["source"], ("simulate", "csv", "prior"))
    d: dict[str, Any] = {"source": source}
    raw_data = raw["data"] if isinstance(raw["data"], Mapping) else {}
    if source != "prior":
        for k in ("d", "x_seed"):
            if k in raw_data:
                raise SpecError(f"study spec: `data.{k}` applies to source = 'prior' only.")
    if source == "prior":
        for k in ("preset", "path", "target", "features", *FORMULA_KEYS):
            if data.get(k) is not None:
                raise SpecError(
                    f"study spec: `data.{k}` does not apply to source = 'prior' "
                    "(the responses are drawn from the model's prior); remove it."
                )
        if data.get("options"):
            raise SpecError("study spec: `data.options` applies to source = 'simulate' only.")
        d.update(d=_int("data.d", data["d"], 1), x_seed=_int("data.x_seed", data["x_seed"], 0))
    elif source == "simulate":
        from bayesmoe.data.simulate import _OPTION_DEFAULTS, PRESETS, _check_preset_options

        for k in ("path", "target", "features", *FORMULA_KEYS):
            if data.get(k) is not None:
                raise SpecError(
                    f"study spec: `data.{k}` applies to source = 'csv' only; "
                    "remove it or set source = 'csv'."
                )
        if "preset" not in data:
            raise SpecError(f"study spec: `data.preset` is missing; choose one of {PRESETS}.")
        preset = _choice("data.preset", data["preset"], PRESETS)
        options = data["options"]
        if not isinstance(options, Mapping):
            raise _err("data.options", "a table of preset options", options)
        bad = [k for k in options if k not in _OPTION_DEFAULTS]
        if bad:
            raise SpecError(
                f"study spec: unknown key `data.options.{bad[0]}`; preset options are "
                f"{', '.join(_OPTION_DEFAULTS)}."
            )
        try:
            _check_preset_options(preset, **{**_OPTION_DEFAULTS, **options})
        except ValueError as err:
            raise SpecError(f"study spec: `data.options`: {err}") from None
        d.update(preset=preset, options=dict(options))
    else:
        for k in ("preset",):
            if k in data:
                raise SpecError(f"study spec: `data.{k}` applies to source = 'simulate' only.")
        if data.get("options"):
            raise SpecError("study spec: `data.options` applies to source = 'simulate' only.")
        formulas = formula_keys(data)  # formula (and gate_formula) instead of target/features
        for k in ("path",) if formulas else ("path", "target"):
            if not isinstance(data.get(k), str) or not data.get(k):
                raise _err(
                    f"data.{k}",
                    "a non-empty string",
                    data.get(k),
                    "source = 'csv' needs `path` and `target` (or `formula`)",
                )
        path = Path(data["path"])
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise _err("data.path", "an existing CSV file", str(path))
        feats = data["features"]
        if feats is not None and (
            not isinstance(feats, list) or not feats or not all(isinstance(f, str) for f in feats)
        ):
            raise _err("data.features", "a non-empty list of column names", feats)
        d.update(path=str(path.resolve()), target=data.get("target"), features=feats)
        d.update(formulas)  # only when given: other specs keep their fingerprints
        if data.get("trials") is not None:  # only when given: other specs keep their fingerprints
            if not isinstance(data["trials"], str) or not data["trials"]:
                raise _err("data.trials", "a column name", data["trials"])
            d["trials"] = data["trials"]
    if "n" in data:
        if "n" in g:
            raise SpecError("study spec: `data.n` and `grid.n` are both given; keep one.")
        d["n"] = _int("data.n", data["n"], 2)
    elif "n" not in g:
        if source in ("simulate", "prior"):
            raise SpecError("study spec: the sample size is missing; set `data.n` or `grid.n`.")
        d["n"] = None  # csv: every row

    # ---- model --------------------------------------------------------------------------------
    m: dict[str, Any] = {
        "family": _family(model["family"]),
        "gate": _choice("model.gate", model["gate"], ("softmax", "tanh", "sigmoid")),
    }
    raw_model = raw["model"] if isinstance(raw["model"], Mapping) else {}
    # ---- inference ----------------------------------------------------------------------------
    if "method" not in inference:
        raise SpecError(f"study spec: `inference.method` is missing; choose one of {METHODS}.")
    method = _choice("inference.method", inference["method"], METHODS)
    if (method == "sbc") != (source == "prior"):
        raise SpecError(
            "study spec: `inference.method` = 'sbc' and `data.source` = 'prior' go "
            f"together (SBC draws its data from the prior); got method {method!r} "
            f"with source {source!r}."
        )
    sbc_keys = ("n_classes", "priors", "fit_priors", "likelihood_power")
    if method == "sbc":
        m.update(_sbc_model(raw_model, m["family"]))
    else:
        for k in sbc_keys:
            if k in raw_model:
                raise SpecError(
                    f"study spec: `model.{k}` applies to method = 'sbc' only; remove it."
                )
    if method == "rjmcmc":
        why = _rjmcmc_unavailable()
        if why:
            raise SpecError(
                f"study spec: `inference.method` = 'rjmcmc' is not available yet "
                f"({why}); use 'nuts' or 'mle' with a grid over `n_experts`."
            )
    if method == "rjmcmc":
        if "n_experts" in model or "n_experts" in g:
            raise SpecError(
                "study spec: `model.n_experts` / `grid.n_experts` fix K; with "
                "method = 'rjmcmc' K is random: give `model.k_max` instead."
            )
        if "k_max" not in model:
            raise SpecError("study spec: `model.k_max` is missing; rjmcmc needs the largest K.")
        m["k_max"] = _int("model.k_max", model["k_max"], 1)
        kp = model.get("k_prior", {})
        if not isinstance(kp, Mapping):
            raise _err("model.k_prior", "a table, e.g. {kind = 'poisson', rate = 1.0}", kp)
        m["k_prior"] = dict(kp)
        k_prior_argument(m["k_prior"], m["k_max"])  # validated now, not in a worker
    else:
        for k in ("k_max", "k_prior"):
            if k in model:
                raise SpecError(
                    f"study spec: `model.{k}` applies to method = 'rjmcmc' only; remove it."
                )
        if "n_experts" in model:
            if "n_experts" in g:
                raise SpecError(
                    "study spec: `model.n_experts` and `grid.n_experts` are both given; keep one."
                )
            m["n_experts"] = _int("model.n_experts", model["n_experts"], 1)
        elif "n_experts" not in g:
            raise SpecError(
                "study spec: the number of experts is missing; set "
                "`model.n_experts` or `grid.n_experts`."
            )
    if source == "csv":
        _check_csv_data(d, m, g)
    inf: dict[str, Any] = {"method": method}
    if method in ("nuts", "rjmcmc", "sbc"):
        inf["draws"] = _int("inference.draws", inference["draws"], 1)
        inf["tune"] = _int("inference.tune", inference["tune"], 0)
        inf["chains"] = _int("inference.chains", inference["chains"], 1)
        if method == "sbc":
            inf["n_ranked"] = _int("inference.n_ranked", inference["n_ranked"], 1)
            if inf["n_ranked"] > inf["draws"] * inf["chains"]:
                raise _err(
                    "inference.n_ranked",
                    f"<= draws * chains = {inf['draws'] * inf['chains']}",
                    inf["n_ranked"],
                    "lower it or draw more",
                )
        else:
            inf["max_draws"] = _int("inference.max_draws", inference["max_draws"], 1)
        ta = inference["target_accept"]
        if isinstance(ta, bool) or not isinstance(ta, (int, float)) or not 0 < ta < 1:
            raise _err("inference.target_accept", "a number in (0, 1)", ta)
        inf["target_accept"] = float(ta)
    if method == "nuts":
        from bayesmoe.inference.nuts.sampling import BACKENDS, INITS

        inf["backend"] = _choice("inference.backend", inference["backend"], BACKENDS)
        inf["init"] = _choice("inference.init", inference["init"], INITS)
    raw_inf = raw["inference"] if isinstance(raw["inference"], Mapping) else {}
    if method != "sbc" and "n_ranked" in raw_inf:
        raise SpecError("study spec: `inference.n_ranked` applies to method = 'sbc' only.")
    if method == "sbc":
        for k in ("backend", "init", "max_draws", "n_starts"):
            if k in raw_inf:
                raise SpecError(
                    f"study spec: `inference.{k}` does not apply to method = 'sbc' "
                    "(PyMC's NUTS from its jittered default start); remove it."
                )
    if method == "mle":
        for k in ("draws", "tune", "chains", "backend", "init", "target_accept", "max_draws"):
            if k in (raw["inference"] if isinstance(raw["inference"], Mapping) else {}):
                raise SpecError(
                    f"study spec: `inference.{k}` applies to sampling methods only "
                    "(nuts, rjmcmc); remove it for method = 'mle'."
                )
        inf["n_starts"] = _int("inference.n_starts", inference["n_starts"], 1)
    return StudySpec(
        name=name.strip(),
        seed=seed,
        retries=retries,
        data=d,
        model=m,
        inference=inf,
        grid=g,
        description=study["description"],
        source_path=source_path,
    )


def load_spec(path: str | Path) -> StudySpec:
    r"""Read and validate a study spec TOML file.

    Parameters
    ----------
    path : str or pathlib.Path
        The TOML file; relative CSV paths in it are resolved against its folder.

    Returns
    -------
    StudySpec

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayesmoe.study.spec import load_spec
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = p.write_text('[study]\nseed = 1\n[data]\nsource = "simulate"\npreset = "S-B"\n'
    ...                  'n = 100\n[model]\nn_experts = 2\n[inference]\nmethod = "mle"\n')
    >>> [t.id for t in load_spec(p).tasks()]
    ['fit']
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(
            f"study spec file {str(p)!r} does not exist; give the path of a .toml file."
        )
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"study spec {str(p)!r} is not valid TOML: {err}") from None
    return parse_spec(raw, base_dir=p.parent, source_path=str(p))
