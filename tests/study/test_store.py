"""The result store: atomic writes, a manifest tolerant of a torn line, refusal to mix specs."""

import json
import os

import pytest

from bayesmoe.study.spec import parse_spec
from bayesmoe.study.store import TMP_MARK, StudyStore, atomic_write_text, atomic_write_with


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    p = tmp_path / "metrics.json"
    atomic_write_text(p, "old")

    def broken(tmp):
        tmp.write_text("half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(p, broken)
    assert p.read_text() == "old"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["metrics.json"]  # no temporary left


def test_manifest_skips_a_torn_last_line(tmp_path):
    store = StudyStore(tmp_path / "s")
    store.record({"event": "queued", "task": "a", "attempt": 1})
    store.record({"event": "done", "task": "a", "attempt": 1})
    with open(store.manifest_path, "a") as f:
        f.write('{"event": "queued", "task": "b", "att')  # a write cut short by a kill
    events = store.read_manifest()
    assert [e["event"] for e in events] == ["queued", "done"]
    assert store.latest()["a"]["event"] == "done"


def test_clean_partial_removes_only_temporaries(tmp_path):
    store = StudyStore(tmp_path / "s")
    d = store.task_dir("t1")
    d.mkdir()
    (d / "trace.nc").write_text("complete")
    (d / f".trace.nc{TMP_MARK}123-abc").write_text("partial")
    (store.root / f".results.csv{TMP_MARK}9-x").write_text("partial")
    removed = store.clean_partial()
    assert len(removed) == 2
    assert [f.name for f in d.iterdir()] == ["trace.nc"]


def test_is_done_refuses_a_result_of_another_spec(tmp_path):
    raw = {
        "study": {"seed": 1},
        "data": {"source": "simulate", "preset": "S-B", "n": 50},
        "model": {"n_experts": 2},
        "inference": {"method": "mle"},
    }
    task = parse_spec(raw).tasks()[0]
    store = StudyStore(tmp_path / "s")
    assert not store.is_done(task)
    store.task_dir(task.id).mkdir()
    atomic_write_text(store.metrics_path(task.id), json.dumps({"fingerprint": task.fingerprint}))
    assert store.is_done(task)
    raw["inference"]["n_starts"] = 3
    changed = parse_spec(raw).tasks()[0]
    with pytest.raises(ValueError, match="different spec"):
        store.is_done(changed)


def test_store_needs_an_existing_parent(tmp_path):
    with pytest.raises(ValueError, match="parent folder"):
        StudyStore(tmp_path / "no" / "such")
    with pytest.raises(ValueError, match="does not exist"):
        StudyStore(tmp_path / "absent", create=False)
    assert not os.path.exists(tmp_path / "no")
