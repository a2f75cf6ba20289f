"""Run a study's tasks on dask.distributed with a resumable, crash-safe result store.

:func:`run_study` expands a spec into tasks (:mod:`bayesmoe.study.spec`), skips the tasks already
finished in the output folder, runs the rest on a dask.distributed cluster — a LocalCluster of
process workers by default, an existing cluster given its scheduler address, or a ``Client`` you
pass — and writes the tidy table of all tasks (:func:`collect_results`).

Each task runs :func:`run_task` on a worker: it loads its data (deterministic data seed), fits
(``fit_mle`` or ``sample(..., cores=1)``: worker processes are daemonic and cannot fork), computes
its metrics (:mod:`bayesmoe.study.metrics`) and writes ``trace.nc``/``fit.nc`` and then
``metrics.json`` into its task folder, each atomically (:mod:`bayesmoe.study.store`). The workers
must therefore see the output folder (always true for a LocalCluster; a remote cluster needs a
shared filesystem, which is checked before any task is submitted). Exceptions inside a task are
caught and returned as an error record; the client (the only writer of the manifest) records every
attempt and resubmits a failed task up to ``study.retries`` more times, and the other tasks go on.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmoe.study.spec import GRID_KEYS, StudySpec, Task, load_spec
from bayesmoe.study.store import StudyStore, atomic_write_with
from bayesmoe.study.worker import RESULT_FILES, load_task_data, run_task

__all__ = ["RESULT_FILES", "collect_results", "load_task_data", "run_study", "run_task"]


def _probe(out_dir: str) -> str:
    """Run on every worker: check that it can write into the study folder."""
    p = Path(out_dir) / "tasks"
    if not p.is_dir():
        return f"{out_dir} is not visible on {socket.gethostname()}"
    test = p / f".probe.tmp-{uuid.uuid4().hex[:8]}"
    try:
        test.write_text("ok")
        test.unlink()
    except OSError as err:
        return f"{out_dir} is not writable on {socket.gethostname()}: {err}"
    return "ok"


# ------------------------------------------------------------------------------------------------
# Client side
# ------------------------------------------------------------------------------------------------
def _open_client(workers: int | None, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as err:
            raise ValueError(
                f"could not connect to the dask scheduler at {scheduler!r} "
                f"(--scheduler): {err}".splitlines()[0]
            ) from None
    n = workers or os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def _as_spec(spec) -> StudySpec:
    if isinstance(spec, StudySpec):
        return spec
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    raise TypeError(
        f"`spec` must be a StudySpec or the path of a TOML spec; got {type(spec).__name__}."
    )


def run_study(
    spec: StudySpec | str | Path,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    progressbar: bool = True,
    tasks: list[str] | None = None,
) -> pd.DataFrame:
    """Run (or resume) a study on dask.distributed and return its tidy results table.

    Parameters
    ----------
    spec : StudySpec or path
        A validated spec or a TOML file (:func:`bayesmoe.study.spec.load_spec`).
    out : str or pathlib.Path
        Study folder (created; its parent must exist). Finished tasks found there are skipped.
    workers : int, optional
        Process workers of the LocalCluster (default: the number of CPUs).
    scheduler : str, optional
        Address of an existing dask scheduler (e.g. ``"tcp://10.0.0.5:8786"``); the workers
        must see `out` (shared filesystem).
    client : dask.distributed.Client, optional
        Use this client (and its cluster) instead; it is left open.
    progressbar : bool
        tqdm bar with counts and ETA.
    tasks : list of str, optional
        Run only these task ids (the others stay pending).

    Returns
    -------
    pandas.DataFrame
        One row per task (:func:`collect_results`), also written to ``results.csv`` and
        ``results.nc``.

    Examples
    --------
    >>> from bayesmoe.study import parse_spec, run_study
    >>> spec = parse_spec({"study": {"seed": 1}, "data": {"source": "simulate",
    ...     "preset": "S-B"}, "model": {"n_experts": 3}, "inference": {"method": "mle"},
    ...     "grid": {"n": [200, 400]}})
    >>> [t.id for t in spec.tasks()]
    ['n200', 'n400']

    Running it starts a dask cluster (about 10 s here), so it is not run as a doctest:

    >>> table = run_study(spec, "my-study", workers=2)  # doctest: +SKIP
    >>> table[["task", "status", "voronoi_loss"]]  # doctest: +SKIP
    """
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    spec = _as_spec(spec)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"`workers` must be a positive integer; got {workers!r}.")
    if sum(x is not None for x in (workers, scheduler, client)) > 1:
        raise ValueError("give at most one of `workers`, `scheduler` and `client`.")
    all_tasks = spec.tasks()
    if tasks is not None:
        known = {t.id for t in all_tasks}
        bad = [t for t in tasks if t not in known]
        if bad:
            raise ValueError(f"`tasks` {bad} are not tasks of this spec; ids: {sorted(known)}.")
        all_tasks = [t for t in all_tasks if t.id in set(tasks)]
    store = StudyStore(out)
    store.clean_partial()
    store.write_spec(spec.to_dict())
    latest = store.latest()
    done = [t for t in all_tasks if store.is_done(t)]
    for t in done:
        if latest.get(t.id, {}).get("event") != "done":  # finished, but the client died first
            store.record(
                {
                    "event": "recovered",
                    "task": t.id,
                    "note": "metrics.json found; the task is finished",
                }
            )
    pending = [t for t in all_tasks if t not in done]
    store.record(
        {
            "event": "run_start",
            "n_tasks": len(all_tasks),
            "n_pending": len(pending),
            "workers": workers,
            "scheduler": scheduler,
            "argv": sys.argv[1:],
        }
    )
    if pending:
        _run_pending(
            spec,
            store,
            pending,
            len(all_tasks),
            len(done),
            workers,
            scheduler,
            client,
            progressbar,
            as_completed,
            tqdm,
        )
    store.record({"event": "run_end"})
    return collect_results(store.root, spec=spec)


def _run_pending(
    spec,
    store,
    pending,
    n_total,
    n_done,
    workers,
    scheduler,
    client,
    progressbar,
    as_completed,
    tqdm,
) -> None:
    own = client is None
    cluster = None
    if own:
        client, cluster = _open_client(workers, scheduler)
    futures: dict = {}
    by_id: dict[str, Task] = {t.id: t for t in pending}
    try:
        bad = {w: r for w, r in client.run(_probe, str(store.root.resolve())).items() if r != "ok"}
        if bad:
            raise ValueError(
                f"the workers cannot write to the study folder: "
                f"{next(iter(bad.values()))}; use a shared filesystem for --out."
            )

        def submit(task: Task, attempt: int):
            fut = client.submit(
                run_task,
                task.to_dict(),
                str(store.root.resolve()),
                attempt,
                key=f"bayesmoe-{task.id}-{attempt}-{uuid.uuid4().hex[:8]}",
                pure=False,
            )
            futures[fut.key] = (task.id, attempt, fut)
            store.record(
                {
                    "event": "queued",
                    "task": task.id,
                    "attempt": attempt,
                    "data_seed": task.data_seed,
                    "fit_seed": task.fit_seed,
                }
            )
            return fut

        ac = as_completed([submit(t, 1) for t in pending])
        n_err = 0
        with tqdm(
            total=n_total,
            initial=n_done,
            unit="task",
            desc=spec.name,
            disable=not progressbar,
            dynamic_ncols=True,
        ) as bar:
            for fut in ac:
                tid, attempt, _ = futures.pop(fut.key)
                try:
                    res = fut.result()
                except Exception as err:
                    res = {
                        "status": "error",
                        "task": tid,
                        "attempt": attempt,
                        "error": f"{type(err).__name__}: {err}".splitlines()[0],
                    }
                if res["status"] == "done":
                    store.record(
                        {
                            "event": "done",
                            **{
                                k: res[k]
                                for k in (
                                    "task",
                                    "attempt",
                                    "host",
                                    "pid",
                                    "t_start",
                                    "t_end",
                                    "seconds",
                                    "seconds_fit",
                                    "fit_seed",
                                    "data_seed",
                                )
                            },
                        }
                    )
                    bar.update(1)
                    continue
                retry = attempt <= spec.retries
                store.record(
                    {
                        "event": "error",
                        "will_retry": retry,
                        **{k: v for k, v in res.items() if k != "status"},
                    }
                )
                if retry:
                    ac.add(submit(by_id[tid], attempt + 1))
                else:
                    n_err += 1
                    bar.update(1)
                    bar.set_postfix(errors=n_err)
        # every task has ended: a temporary file left now was being written by a killed worker
        store.clean_partial()
    except KeyboardInterrupt:
        for _, _, fut in futures.values():
            fut.cancel()
        store.record(
            {"event": "interrupted", "unfinished": sorted({tid for tid, _, _ in futures.values()})}
        )
        raise
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def _flatten(rec: dict) -> dict:
    row = {"task": rec["task"], "status": "done", **rec.get("coords", {})}
    row.update(
        {
            k: rec.get(k)
            for k in (
                "method",
                "n",
                "n_experts",
                "data_seed",
                "fit_seed",
                "attempt",
                "seconds",
                "seconds_fit",
                "seconds_metrics",
                "seconds_write",
                "host",
            )
        }
    )
    row.update(rec.get("metrics", {}))
    row["n_warnings"] = len(rec.get("warnings", []))
    row["result_file"] = f"tasks/{rec['task']}/{rec.get('result_file', '')}"
    return row


def collect_results(
    out: str | Path, *, spec: StudySpec | None = None, write: bool = True
) -> pd.DataFrame:
    """The tidy table of a study folder: one row per task, finished or not.

    Finished tasks contribute their metrics record; failed and pending tasks (from the manifest
    and, when given, the spec) get a row with ``status`` "error" (with the error text) or
    "pending". Written to ``results.csv`` and ``results.nc`` (dimension ``task``) atomically.

    Parameters
    ----------
    out : str or pathlib.Path
        The study folder.
    spec : StudySpec, optional
        Adds rows for tasks of the spec that never ran.
    write : bool
        Write the CSV and netCDF files.

    Returns
    -------
    pandas.DataFrame
    """
    store = StudyStore(out, create=False)
    rows: dict[str, dict] = {}
    for tid in store.finished_ids():
        rows[tid] = _flatten(store.read_metrics(tid))
    latest = store.latest()
    attempts: dict[str, int] = {}
    for ev in store.read_manifest():
        if ev.get("event") == "queued":
            attempts[ev["task"]] = max(attempts.get(ev["task"], 0), ev.get("attempt", 1))
    expected = spec.tasks() if spec is not None else []
    coords = {t.id: t for t in expected}
    for tid in list(latest) + [t.id for t in expected]:
        if tid in rows:
            continue
        ev = latest.get(tid, {})
        row = {"task": tid, "status": "error" if ev.get("event") == "error" else "pending"}
        if tid in coords:
            row.update(coords[tid].coords)
            row.update(data_seed=coords[tid].data_seed, fit_seed=coords[tid].fit_seed)
        if row["status"] == "error":
            row.update(error=ev.get("error"), host=ev.get("host"), attempt=ev.get("attempt"))
        rows[tid] = row
    df = pd.DataFrame(list(rows.values()))
    if df.empty:
        df = pd.DataFrame(columns=["task", "status"])
    df["attempts"] = df["task"].map(attempts).fillna(0).astype(int)
    order = [k for k in GRID_KEYS if k in df.columns]
    if order:
        df = df.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    if write:
        atomic_write_with(store.root / "results.csv", lambda tmp: df.to_csv(tmp, index=False))
        ds = _to_dataset(df)
        atomic_write_with(
            store.root / "results.nc", lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf")
        )
    return df


def _to_dataset(df: pd.DataFrame):
    """The table as an xarray Dataset over dim ``task`` (netCDF-safe dtypes)."""
    import xarray as xr

    cols = {}
    for c in df.columns:
        if c == "task":
            continue
        s = df[c]
        if s.dtype == object:
            non_null = s.dropna()
            if len(non_null) and all(isinstance(v, (bool, np.bool_)) for v in non_null):
                s = s.map({True: 1.0, False: 0.0}).astype(float)
            elif len(non_null) and all(isinstance(v, (int, float, np.number)) for v in non_null):
                s = s.astype(float)
            else:
                s = s.map(
                    lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                ).astype(str)
        elif s.dtype == bool:
            s = s.astype(int)
        cols[c] = ("task", s.to_numpy())
    return xr.Dataset(
        cols,
        coords={"task": df["task"].astype(str).to_numpy()},
        attrs={"description": "one row per study task (bayesmoe.study)"},
    )
