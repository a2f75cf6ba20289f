"""The on-disk result store of a study: one folder per task, atomic files, a JSON-lines manifest.

Layout of a study folder::

    OUT/
      study.json            the normalised spec (rewritten atomically at every run)
      manifest.jsonl        append-only events, one JSON object per line (the client is the only
                            writer): run_start, queued, done, error, retry, recovered, interrupted
      tasks/<task id>/
        trace.nc            the posterior (nuts, rjmcmc) as a DataTree, or
        fit.nc              the fitted mixing measure (mle)
        metrics.json        written last: its presence means the task is finished
      results.csv, results.nc   the tidy table of every finished task's metrics

Every file is written to a temporary name in the same folder and moved into place with
:func:`os.replace` (atomic on POSIX), after an ``fsync``: a reader sees the old file or the new one,
never half of one. A task is finished exactly when its ``metrics.json`` exists (the worker writes it
after the result file), so a killed client or worker loses no finished result; stray temporary
files of an interrupted write are removed by :meth:`StudyStore.clean_partial` when a run starts
and when its last task has ended (a worker killed mid-write leaves one behind).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_FILE",
    "METRICS_FILE",
    "TMP_MARK",
    "StudyStore",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
]

TMP_MARK = ".tmp-"
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "manifest.jsonl"
SPEC_FILE = "study.json"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_with(path: str | Path, writer) -> Path:
    """Call ``writer(tmp_path)`` to write a temporary file, then move it to `path` atomically.

    The temporary file is in the same folder (so that :func:`os.replace` is a rename) and is
    removed if `writer` raises.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayesmoe.study.store import atomic_write_with
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = atomic_write_with(p, lambda tmp: tmp.write_text("hi"))
    >>> p.read_text(), [f.name for f in p.parent.iterdir()]
    ('hi', ['a.txt'])
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        writer(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file + fsync + :func:`os.replace`)."""
    return atomic_write_with(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode())


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


class StudyStore:
    """A study folder: task folders, the manifest, atomic writes, resume bookkeeping.

    Parameters
    ----------
    root : str or pathlib.Path
        The study folder (created with its parents' existence checked).

    Examples
    --------
    >>> import tempfile
    >>> from bayesmoe.study.store import StudyStore
    >>> store = StudyStore(tempfile.mkdtemp())
    >>> store.record({"event": "queued", "task": "n100-rep0", "attempt": 1})
    >>> store.latest()["n100-rep0"]["event"]
    'queued'
    """

    def __init__(self, root: str | Path, *, create: bool = True):
        self.root = Path(root)
        if create:
            if not self.root.resolve().parent.is_dir():
                raise ValueError(
                    f"the parent folder of the study output {str(self.root)!r} "
                    "does not exist; create it or choose another --out."
                )
            self.root.mkdir(exist_ok=True)
            self.tasks_dir.mkdir(exist_ok=True)
        elif not self.root.is_dir():
            raise ValueError(f"study folder {str(self.root)!r} does not exist.")

    # ---- paths --------------------------------------------------------------------------------
    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def task_dir(self, task_id: str) -> Path:
        return self.tasks_dir / task_id

    def metrics_path(self, task_id: str) -> Path:
        return self.task_dir(task_id) / METRICS_FILE

    # ---- manifest -----------------------------------------------------------------------------
    def record(self, event: dict) -> None:
        """Append one event (a JSON object on one line, with a UTC time stamp) and fsync.

        A line is written with a single ``write`` on a file opened in append mode; a reader
        skips a torn last line (see :meth:`read_manifest`).
        """
        event = {"time": time.time(), **event}
        line = json.dumps(event, default=_jsonable, separators=(",", ":")) + "\n"
        fd = os.open(self.manifest_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_manifest(self) -> list[dict]:
        """Every complete event of the manifest, in order (a torn last line is skipped)."""
        if not self.manifest_path.is_file():
            return []
        out = []
        for line in self.manifest_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def latest(self) -> dict[str, dict]:
        """The last event of every task, by task id."""
        out: dict[str, dict] = {}
        for ev in self.read_manifest():
            if "task" in ev:
                out[ev["task"]] = ev
        return out

    # ---- task state ---------------------------------------------------------------------------
    def read_metrics(self, task_id: str) -> dict | None:
        """The task's metrics record, or None when the task is not finished."""
        p = self.metrics_path(task_id)
        if not p.is_file():
            return None
        return json.loads(p.read_text())

    def is_done(self, task) -> bool:
        """True when the task's metrics exist (written last) for this very task configuration.

        Raises
        ------
        ValueError
            When the folder holds a finished result of a *different* configuration under the same
            task id (the spec changed): results are never silently mixed or overwritten.
        """
        rec = self.read_metrics(task.id)
        if rec is None:
            return False
        if rec.get("fingerprint") != task.fingerprint:
            raise ValueError(
                f"{self.task_dir(task.id)} holds a finished result of a different spec "
                "(the data, model, inference or seed options changed); write the new study to "
                "another --out folder, or delete that task folder to recompute it."
            )
        return True

    def clean_partial(self) -> list[Path]:
        """Remove temporary files left by interrupted writes; return what was removed."""
        removed = []
        for folder in (self.root, *(p for p in self.tasks_dir.glob("*") if p.is_dir())):
            for f in folder.glob(f".*{TMP_MARK}*"):
                f.unlink(missing_ok=True)
                removed.append(f)
        return removed

    def write_json(self, path: Path, obj: Any) -> Path:
        """Write JSON atomically."""
        return atomic_write_text(path, json.dumps(obj, indent=1, default=_jsonable))

    def write_spec(self, spec_dict: dict) -> Path:
        """Write the normalised spec to ``study.json``."""
        return self.write_json(self.root / SPEC_FILE, spec_dict)

    def read_spec(self) -> dict | None:
        p = self.root / SPEC_FILE
        return json.loads(p.read_text()) if p.is_file() else None

    def finished_ids(self) -> list[str]:
        """Ids of the task folders holding a metrics record."""
        return sorted(p.parent.name for p in self.tasks_dir.glob(f"*/{METRICS_FILE}"))
