"""The worker side of a study: load one task's data, fit it, compute its metrics and write its
results atomically (:func:`run_task`, run on a dask worker by :func:`bayesmoe.study.run_study`).

Each task loads its data (deterministic data seed), fits (``fit_mle`` or ``sample(...,
cores=1)``: worker processes are daemonic and cannot fork), computes its metrics
(:mod:`bayesmoe.study.metrics`) and writes ``trace.nc``/``fit.nc`` and then ``metrics.json`` into
its task folder, each atomically (:mod:`bayesmoe.study.store`). Exceptions inside a task are
caught and returned as an error record.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmoe.study.store import atomic_write_with

__all__ = ["RESULT_FILES", "load_task_data", "run_task"]

#: Result file of a task by inference method.
RESULT_FILES = {"mle": "fit.nc", "nuts": "trace.nc", "rjmcmc": "trace.nc", "sbc": "ranks.nc"}


def _read_frame(data: dict):
    p = Path(data["path"])
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} is not visible on worker {socket.gethostname()}.")
    return pd.read_csv(p)


def _read_csv_data(data: dict, family: str):
    p = Path(data["path"])
    df = _read_frame(data)
    target = data["target"]
    if target not in df.columns:
        raise ValueError(
            f"column {target!r} (data.target) not in {p.name}; columns: {list(df.columns)}."
        )
    tcol = data.get("trials")
    names = data.get("features") or [c for c in df.columns if c not in (target, tcol)]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"feature columns {missing} (data.features) not in {p.name}.")
    X = df[names].to_numpy(dtype=float)
    y = df[target].to_numpy()  # coded by the family's check where it is fitted
    trials = None if tcol is None else df[tcol].to_numpy(dtype=float)
    return X, y, names, trials


def load_task_data(task: dict, with_trials: bool = False, with_rows: bool = False):
    """The data set of a task: ``(X, y, truth or None, feature names, description)``, and the
    per-row numbers of trials (``data.trials``, binomial; None without) last if ``with_trials``,
    or a dict of the per-row data (``trials``; with ``data.formula`` also ``offset``, ``gate_X``,
    ``gate_feature_names`` and the ``formulas`` for the result's attrs) if ``with_rows``.

    Simulated data are drawn with the task's data seed; a CSV is read whole, or subsampled to
    ``n`` rows without replacement with the data seed when the grid sets ``n``.

    Examples
    --------
    >>> from bayesmoe.study.spec import parse_spec
    >>> from bayesmoe.study.runner import load_task_data
    >>> spec = parse_spec({"study": {"seed": 3}, "data": {"source": "simulate", "preset": "S-B"},
    ...                    "model": {"n_experts": 3}, "inference": {"method": "mle"},
    ...                    "grid": {"n": [50, 80]}})
    >>> [load_task_data(t.to_dict())[0].shape for t in spec.tasks()]
    [(50, 2), (80, 2)]
    """
    data = task["config"]["data"]
    family = task["config"]["model"]["family"]
    seed = task["data_seed"]
    if data["source"] == "prior":  # SBC: fixed X; the responses come from the prior (in _fit)
        X = np.random.default_rng(data["x_seed"]).standard_normal((data["n"], data["d"]))
        desc = (
            f"X ~ N(0, 1) of shape ({data['n']}, {data['d']}) with seed {data['x_seed']}; "
            "y from the model's prior predictive"
        )
        out = X, None, None, [f"x{j}" for j in range(data["d"])], desc
        return (*out, {"trials": None}) if with_rows else (*out, None) if with_trials else out
    if data["source"] == "simulate":
        from bayesmoe.data.simulate import simulate

        X, y, truth = simulate(data["preset"], data["n"], random_seed=seed, **data["options"])
        desc = (
            f"simulate({data['preset']!r}, n={data['n']}, random_seed={seed}"
            + "".join(f", {k}={v!r}" for k, v in data["options"].items())
            + ")"
        )
        out = X, y, truth, [str(f) for f in truth["feature"].values], desc
        return (*out, {"trials": None}) if with_rows else (*out, None) if with_trials else out
    if data.get("formula") is not None:  # the design is built on the task's rows
        from bayesmoe.study.formulas import formula_task_data

        *out, extra = formula_task_data(_read_frame(data), data, family, seed)
        return (
            (*out, extra) if with_rows else (*out, extra["trials"]) if with_trials else tuple(out)
        )
    X, y, names, trials = _read_csv_data(data, family)
    n = data.get("n")
    desc = str(data["path"])
    if n is not None:
        if n > X.shape[0]:
            raise ValueError(
                f"n={n} exceeds the {X.shape[0]} rows of {Path(data['path']).name};"
                " use smaller values in grid.n."
            )
        rows = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=n, replace=False))
        X, y = X[rows], y[rows]
        trials = None if trials is None else trials[rows]
        desc += f" (subsample of n={n} rows, seed {seed})"
    out = X, y, None, names, desc
    return (*out, {"trials": trials}) if with_rows else (*out, trials) if with_trials else out


def _fit(
    task: dict, X, y, truth, names, desc, out_dir: Path, trials=None, rows=None
) -> tuple[dict, str, dict]:
    """Fit, compute the metrics, write the result file; return (metrics, file name, timings).

    ``rows``: the per-row data of :func:`load_task_data` (``with_rows``): offsets, the gate's
    covariates and the formulas of a formula data set.
    """
    rows = rows or {}
    formulas = rows.get("formulas") or {}
    gate_kw = {
        k: rows[k] for k in ("offset", "gate_X", "gate_feature_names") if rows.get(k) is not None
    }
    from bayesmoe._validation import check_y
    from bayesmoe.study import metrics as M

    model, inf = task["config"]["model"], task["config"]["inference"]
    method, family = inf["method"], model["family"]
    result_path = out_dir / RESULT_FILES[method]
    if method == "sbc":
        return _fit_sbc(task, X, desc, result_path)
    y_codes, classes = check_y(y, family, X.shape[0], rows.get("classes"))
    if method == "mle":
        from bayesmoe.inference.mle.mm import fit_mle

        t0 = time.perf_counter()
        from bayesmoe.inference.mle import mm_warmup

        # one engine whatever the worker had loaded: a task's result never depends on timing
        # (the engines agree only to round-off)
        res = fit_mle(
            pd.DataFrame(X, columns=names) if formulas else X,  # a formula's column names
            y_codes,
            model["n_experts"],
            family=family,
            gate=model["gate"],
            n_starts=inf["n_starts"],
            random_seed=task["fit_seed"],
            trials=trials,
            engine=mm_warmup.steady_engine(family),
            **gate_kw,
        )
        t1 = time.perf_counter()
        metrics = M.mle_metrics(res, truth=truth, X=X)
        t2 = time.perf_counter()
        measure = res.measure_.copy()
        measure.attrs.update(
            {
                "task": task["id"],
                "data": desc,
                "loglik": float(res.loglik_),
                "random_seed": int(task["fit_seed"]),
                **formulas,
            }
        )
        atomic_write_with(result_path, lambda tmp: measure.to_netcdf(tmp, engine="h5netcdf"))
        return metrics, result_path.name, _timings(t0, t1, t2)
    common = dict(
        family=family,
        gate=model["gate"],
        feature_names=names,
        classes=classes,
        draws=inf["draws"],
        tune=inf["tune"],
        chains=inf["chains"],
        cores=1,
        random_seed=task["fit_seed"],
        progressbar=False,
        target_accept=inf["target_accept"],
        trials=trials,
        **gate_kw,
    )
    y_fit = y if classes is None else np.asarray(classes, dtype=object)[y_codes]
    t0 = time.perf_counter()
    if method == "nuts":
        from bayesmoe.inference.nuts.sampling import sample

        trace = sample(
            X,
            y_fit,
            n_experts=model["n_experts"],
            backend=inf["backend"],
            init=inf["init"],
            **common,
        )
    else:  # rjmcmc: reversible jump for K plus NUTS for the continuous parameters
        from bayesmoe.inference.rjmcmc import sample_random_k
        from bayesmoe.study.spec import k_prior_argument

        common.pop("target_accept")  # the compound step builds its own NUTS
        trace = sample_random_k(
            X,
            y_fit,
            max_experts=model["k_max"],
            experts_prior=k_prior_argument(model["k_prior"], model["k_max"]),
            **common,
        )
    t1 = time.perf_counter()
    trace.attrs.update({"data": desc, "task": task["id"], **formulas})
    metrics = M.trace_metrics(trace, truth=truth, X=X, max_draws=inf["max_draws"])
    t2 = time.perf_counter()
    atomic_write_with(result_path, lambda tmp: trace.to_netcdf(tmp, engine="h5netcdf"))
    return metrics, result_path.name, _timings(t0, t1, t2)


def _fit_sbc(task: dict, X, desc: str, result_path: Path) -> tuple[dict, str, dict]:
    """One SBC replicate: prior draw (data seed), NUTS fit (fit seed), ranks as flat metrics."""
    import xarray as xr

    from bayesmoe.study.sbc import sbc_replicate

    model, inf = task["config"]["model"], task["config"]["inference"]
    t0 = time.perf_counter()
    res = sbc_replicate(
        X,
        n_experts=model["n_experts"],
        family=model["family"],
        gate=model["gate"],
        n_classes=model.get("n_classes", 2),
        priors=model["priors"] or None,
        fit_priors=model["fit_priors"],
        likelihood_power=model["likelihood_power"],
        draws=inf["draws"],
        tune=inf["tune"],
        chains=inf["chains"],
        n_ranked=inf["n_ranked"],
        target_accept=inf["target_accept"],
        random_seed=[task["data_seed"], task["fit_seed"]],
    )
    t1 = time.perf_counter()
    metrics = {k: v for k, v in res.items() if k != "ranks"}
    for name, ranks in res["ranks"].items():
        for i, r in enumerate(ranks):
            metrics[f"rank__{name}__{i}"] = int(r)
    ds = xr.Dataset(
        {name: (f"{name}_dim", np.asarray(r)) for name, r in res["ranks"].items()},
        attrs={"task": task["id"], "data": desc, "n_ranked": res["n_ranked"]},
    )
    t2 = time.perf_counter()
    atomic_write_with(result_path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    return metrics, result_path.name, _timings(t0, t1, t2)


def _timings(t0: float, t1: float, t2: float) -> dict:
    return {
        "seconds_fit": t1 - t0,
        "seconds_metrics": t2 - t1,
        "seconds_write": time.perf_counter() - t2,
    }


def _finished_record(path: Path, fingerprint: str) -> dict | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("fingerprint") == fingerprint and rec.get("status") == "done" else None


def run_task(task: dict, out_dir: str, attempt: int = 1) -> dict:
    """Run one task on a worker and write its files; never raises (errors are returned).

    Parameters
    ----------
    task : dict
        :meth:`bayesmoe.study.spec.Task.to_dict`.
    out_dir : str
        The study folder (must be visible to the worker).
    attempt : int
        1 for the first attempt; recorded in the metrics.

    Returns
    -------
    dict
        ``status`` ("done" or "error"), ``task``, ``attempt``, ``host``, ``pid``, ``t_start``,
        ``t_end``, ``seconds`` (the whole task); when done also ``seconds_fit`` (the fit call
        alone), ``seconds_metrics``, ``seconds_write`` and ``metrics``; on error ``error`` and
        ``traceback``. A task already finished in `out_dir` (same fingerprint) is not run again:
        its record is returned with ``reused=True``.
    """
    t_start = time.time()
    info = {
        "task": task["id"],
        "attempt": attempt,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "t_start": t_start,
    }
    folder = Path(out_dir) / "tasks" / task["id"]
    for name in ("pymc", "pymc.sampling.mcmc", "pymc.stats.convergence", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        previous = _finished_record(folder / "metrics.json", task["fingerprint"])
        if previous is not None:  # e.g. a resubmission after a lost result: never redo the work
            return {**previous, "reused": True}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X, y, truth, names, desc, rows = load_task_data(task, with_rows=True)
            metrics, result_file, timings = _fit(
                task, X, y, truth, names, desc, folder, rows["trials"], rows
            )
        messages = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        t_end = time.time()
        record = {
            **info,
            "status": "done",
            "fingerprint": task["fingerprint"],
            "coords": task["coords"],
            "data_seed": task["data_seed"],
            "fit_seed": task["fit_seed"],
            "method": task["config"]["inference"]["method"],
            "n": int(X.shape[0]),
            "n_experts": task["config"]["model"].get("n_experts"),
            "data": desc,
            "result_file": result_file,
            "t_end": t_end,
            "seconds": t_end - t_start,
            **timings,
            "warnings": messages[:10],
            "metrics": metrics,
        }
        atomic_write_with(
            folder / "metrics.json", lambda tmp: Path(tmp).write_text(json.dumps(record, indent=1))
        )
        return record
    except Exception as err:
        t_end = time.time()
        return {
            **info,
            "status": "error",
            "t_end": t_end,
            "seconds": t_end - t_start,
            "error": f"{type(err).__name__}: {err}".splitlines()[0],
            "traceback": "".join(traceback.format_exc()).splitlines()[-12:],
        }
