"""Studies: grids of fits run on dask.distributed with a resumable result store.

Examples
--------
>>> from bayesmoe.study import load_spec, run_study        # doctest: +SKIP
>>> spec = load_spec("examples/contraction_study.toml")  # doctest: +SKIP
>>> table = run_study(spec, "out", workers=2)  # doctest: +SKIP
"""

from bayesmoe.study.metrics import mle_metrics, trace_metrics, truth_distances
from bayesmoe.study.runner import collect_results, load_task_data, run_study, run_task
from bayesmoe.study.spec import StudySpec, Task, derive_seed, load_spec, parse_spec
from bayesmoe.study.store import StudyStore

__all__ = [
    "StudySpec",
    "Task",
    "StudyStore",
    "load_spec",
    "parse_spec",
    "derive_seed",
    "run_study",
    "run_task",
    "load_task_data",
    "collect_results",
    "trace_metrics",
    "mle_metrics",
    "truth_distances",
]
