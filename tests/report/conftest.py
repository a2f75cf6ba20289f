"""Report fixtures: a synthetic posterior (no sampling) and a small MLE study run in-process."""

import pytest

from tests.helpers import synthetic_trace


@pytest.fixture(scope="session")
def fit_report(tmp_path_factory):
    """A fit folder with trace.nc and report.html written by write_report."""
    from bayesmoe.report import write_report

    folder = tmp_path_factory.mktemp("fit")
    synthetic_trace().to_netcdf(folder / "trace.nc", engine="h5netcdf")
    return write_report(folder)


@pytest.fixture(scope="session")
def study_report(tmp_path_factory):
    """A 2 n × 2 replicates × 2 K MLE study run in-process (run_task) and its report."""
    from bayesmoe.report import write_report
    from bayesmoe.study import StudyStore, parse_spec, run_task

    folder = tmp_path_factory.mktemp("study")
    spec = parse_spec(
        {
            "study": {"name": "mini", "seed": 4},
            "data": {"source": "simulate", "preset": "S-B"},
            "model": {},
            "inference": {"method": "mle", "n_starts": 3},
            "grid": {"n": [150, 600], "replicate": 2, "n_experts": [2, 3]},
        }
    )
    store = StudyStore(folder)
    store.write_spec(spec.to_dict())
    for t in spec.tasks():
        rec = run_task(t.to_dict(), str(folder))
        assert rec["status"] == "done", rec.get("error")
    # one task with a posterior: a fit page with plots is linked from the study page too
    tdir = store.task_dir("n150-rep0-K3")
    synthetic_trace().to_netcdf(tdir / "trace.nc", engine="h5netcdf")
    import json

    rec = json.loads((tdir / "metrics.json").read_text())
    rec["result_file"] = "trace.nc"
    (tdir / "metrics.json").write_text(json.dumps(rec))
    return write_report(folder)
