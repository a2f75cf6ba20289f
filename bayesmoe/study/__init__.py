"""Studies: grids of fits run on dask.distributed with a resumable result store.

Examples
--------
A spec (usually a TOML file read by ``load_spec``, e.g. ``examples/contraction_study.toml``)
expands into one task per grid point:

>>> from bayesmoe.study import parse_spec, run_study
>>> spec = parse_spec({"study": {"seed": 1},
...                    "data": {"source": "simulate", "preset": "S-B"},
...                    "model": {"n_experts": 3}, "inference": {"method": "mle"},
...                    "grid": {"n": [200, 400], "replicate": 2}})
>>> [t.id for t in spec.tasks()]
['n200-rep0', 'n200-rep1', 'n400-rep0', 'n400-rep1']

Running it starts a dask cluster (about 10 s here), so that line is not run as a doctest:

>>> table = run_study(spec, "out", workers=2)  # doctest: +SKIP
"""

from bayesmoe._lazy import lazy_exports  # names are imported on first use

_ATTRS = {
    "mle_metrics": "bayesmoe.study.metrics",
    "trace_metrics": "bayesmoe.study.metrics",
    "truth_distances": "bayesmoe.study.metrics",
    "collect_results": "bayesmoe.study.runner",
    "load_task_data": "bayesmoe.study.runner",
    "run_study": "bayesmoe.study.runner",
    "run_task": "bayesmoe.study.runner",
    "StudySpec": "bayesmoe.study.spec",
    "Task": "bayesmoe.study.spec",
    "derive_seed": "bayesmoe.study.spec",
    "load_spec": "bayesmoe.study.spec",
    "parse_spec": "bayesmoe.study.spec",
    "StudyStore": "bayesmoe.study.store",
    "sbc_ranks": "bayesmoe.study.sbc",
    "sbc_replicate": "bayesmoe.study.sbc",
}


__getattr__, __dir__ = lazy_exports(__name__, _ATTRS)


__all__ = [
    "StudySpec",
    "StudyStore",
    "Task",
    "collect_results",
    "derive_seed",
    "load_spec",
    "load_task_data",
    "mle_metrics",
    "parse_spec",
    "run_study",
    "run_task",
    "sbc_ranks",
    "sbc_replicate",
    "trace_metrics",
    "truth_distances",
]
