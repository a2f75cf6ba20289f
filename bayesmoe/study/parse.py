"""Validation of a study spec (:func:`load_spec`, :func:`parse_spec`): each table of the TOML
file checked by its own function, every error one line naming the key, what was expected and what
was got. The spec's format, its defaults and the tasks it expands into: :mod:`bayesmoe.study.spec`.
"""

from __future__ import annotations

import importlib
import importlib.util
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bayesmoe.families import get_family
from bayesmoe.study.formulas import FORMULA_KEYS, check_formula_csv, formula_keys
from bayesmoe.study.spec import (
    _DEFAULTS,
    _KEYS,
    _SECTIONS,
    METHODS,
    SpecError,
    StudySpec,
    _choice,
    _err,
    _family,
    _int,
    _int_list,
)

__all__ = ["k_prior_argument", "load_spec", "parse_spec"]


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

    g = _parse_grid(grid)
    d = _parse_data(data, _raw_table(raw, "data"), g, base_dir)
    m = {
        "family": _family(model["family"]),
        "gate": _choice("model.gate", model["gate"], ("softmax", "tanh", "sigmoid")),
    }
    method = _parse_method(inference, d["source"])
    m.update(_parse_model(model, _raw_table(raw, "model"), m["family"], g, method))
    if d["source"] == "csv":
        _check_csv_data(d, m, g)
    inf = _parse_inference(inference, _raw_table(raw, "inference"), method)
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


def _raw_table(raw: Mapping, name: str) -> Mapping:
    """The table as written (without defaults): which keys the user gave."""
    return raw[name] if isinstance(raw.get(name), Mapping) else {}


def _parse_grid(grid: Mapping) -> dict[str, list[int]]:
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
    return g


def _parse_data(data: Mapping, raw_data: Mapping, g: dict, base_dir) -> dict[str, Any]:
    if "source" not in data:
        raise SpecError("study spec: `data.source` is missing; use 'simulate' or 'csv'.")
    source = _choice("data.source", data["source"], ("simulate", "csv", "prior"))
    d: dict[str, Any] = {"source": source}
    if source != "prior":
        for k in ("d", "x_seed"):
            if k in raw_data:
                raise SpecError(f"study spec: `data.{k}` applies to source = 'prior' only.")
    parse = {"prior": _prior_data, "simulate": _simulate_data, "csv": _csv_data}[source]
    d.update(parse(data, base_dir))
    if "n" in data:
        if "n" in g:
            raise SpecError("study spec: `data.n` and `grid.n` are both given; keep one.")
        d["n"] = _int("data.n", data["n"], 2)
    elif "n" not in g:
        if source in ("simulate", "prior"):
            raise SpecError("study spec: the sample size is missing; set `data.n` or `grid.n`.")
        d["n"] = None  # csv: every row
    return d


def _prior_data(data: Mapping, base_dir) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k in ("preset", "path", "target", "features", *FORMULA_KEYS):
        if data.get(k) is not None:
            raise SpecError(
                f"study spec: `data.{k}` does not apply to source = 'prior' "
                "(the responses are drawn from the model's prior); remove it."
            )
    if data.get("options"):
        raise SpecError("study spec: `data.options` applies to source = 'simulate' only.")
    d.update(d=_int("data.d", data["d"], 1), x_seed=_int("data.x_seed", data["x_seed"], 0))
    return d


def _simulate_data(data: Mapping, base_dir) -> dict[str, Any]:
    from bayesmoe.data.simulate import _OPTION_DEFAULTS, PRESETS, _check_preset_options

    d: dict[str, Any] = {}
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
    return d


def _csv_data(data: Mapping, base_dir) -> dict[str, Any]:
    d: dict[str, Any] = {}
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
    return d


def _parse_method(inference: Mapping, source: str) -> str:
    if "method" not in inference:
        raise SpecError(f"study spec: `inference.method` is missing; choose one of {METHODS}.")
    method = _choice("inference.method", inference["method"], METHODS)
    if (method == "sbc") != (source == "prior"):
        raise SpecError(
            "study spec: `inference.method` = 'sbc' and `data.source` = 'prior' go "
            f"together (SBC draws its data from the prior); got method {method!r} "
            f"with source {source!r}."
        )
    return method


def _parse_model(model: Mapping, raw_model: Mapping, family: str, g: dict, method: str) -> dict:
    m: dict[str, Any] = {}
    sbc_keys = ("n_classes", "priors", "fit_priors", "likelihood_power")
    if method == "sbc":
        m.update(_sbc_model(raw_model, family))
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
    return m


def _parse_inference(inference: Mapping, raw_inf: Mapping, method: str) -> dict[str, Any]:
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
            if k in raw_inf:
                raise SpecError(
                    f"study spec: `inference.{k}` applies to sampling methods only "
                    "(nuts, rjmcmc); remove it for method = 'mle'."
                )
        inf["n_starts"] = _int("inference.n_starts", inference["n_starts"], 1)
    return inf


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
