"""Study scaling: a 16-task study on 1 and 2 local dask workers, and the runner's overhead.

Usage: ``python benchmarks/study_scaling.py [--method nuts|mle] [--tasks 16]``

Tasks (default, ``--method nuts``): short NUTS fits, one per replicate of S-B at n = 200 (K = 3,
one chain, 100 tuning + 100 draws, pymc backend, MM start) — each a different data set and seed
from the study's grid. Steps:

1. **direct**: the same 16 fits called directly in this process, one after the other
   (``load_task_data`` + ``bayesmoe.inference.sample(..., cores=1)`` with the task's seeds), after
   one untimed warm-up fit so that PyTensor's on-disk compilation cache is warm for every run;
2. **1 worker** and **2 workers**: ``run_study`` on a fresh LocalCluster each; the cluster start-up
   is timed separately from the task phase (first submission to last result).

Reported: wall times, speed-up of 2 workers over 1 (task phase, and with start-up), and the
runner's per-task overhead against calling the fit directly, two ways:

- within the 1-worker run: ``(T_tasks − Σ fit calls timed on the worker) / n_tasks`` as a
  percentage of the mean fit call, split into worker-side extras (metrics and atomic writes, from
  each task's ``metrics.json``) and the rest (scheduling, worker start-up imports, data
  simulation). Both sides are measured in the same minutes, so load drift cancels;
- against the direct calls of step 1: ``(T_tasks − Σ direct) / n_tasks`` (drifts with the load).

Load averages are printed: on a shared machine the speed-up is depressed.
"""

from __future__ import annotations

import os

# dask's nanny starts every worker with one BLAS/OpenMP thread; give the direct calls the same
# setting (before numpy is imported), or the comparison measures thread oversubscription instead.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import logging
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def make_spec(method: str, n_tasks: int):
    from bayesmoe.study import parse_spec

    inference = (
        {"method": "nuts", "draws": 100, "tune": 100, "chains": 1}
        if method == "nuts"
        else {"method": "mle", "n_starts": 10}
    )
    n = 200 if method == "nuts" else 5000
    return parse_spec(
        {
            "study": {"name": f"scaling-{method}", "seed": 2026},
            "data": {"source": "simulate", "preset": "S-B", "n": n},
            "model": {"n_experts": 3},
            "inference": inference,
            "grid": {"replicate": n_tasks},
        }
    )


def direct_fit(task: dict) -> float:
    """The fit alone, as a user would call it; returns its wall time."""
    from bayesmoe.study.runner import load_task_data

    X, y, _, names, _ = load_task_data(task)
    inf, model = task["config"]["inference"], task["config"]["model"]
    t0 = time.perf_counter()
    if inf["method"] == "nuts":
        from bayesmoe.inference import sample

        sample(
            X,
            y,
            n_experts=model["n_experts"],
            feature_names=names,
            draws=inf["draws"],
            tune=inf["tune"],
            chains=inf["chains"],
            cores=1,
            random_seed=task["fit_seed"],
            target_accept=inf["target_accept"],
            progressbar=False,
        )
    else:
        from bayesmoe.inference.mle.mm import fit_mle

        fit_mle(X, y, model["n_experts"], n_starts=inf["n_starts"], random_seed=task["fit_seed"])
    return time.perf_counter() - t0


def run_with_workers(spec, n_workers: int, root: Path) -> dict:
    from dask.distributed import Client, LocalCluster

    from bayesmoe.study import run_study

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    t_start = time.perf_counter() - t0
    out = root / f"w{n_workers}"
    t1 = time.perf_counter()
    table = run_study(spec, out, client=client, progressbar=False)
    t_tasks = time.perf_counter() - t1
    client.close()
    cluster.close()
    assert (table["status"] == "done").all(), table[["task", "status"]]
    recs = [json.loads(p.read_text()) for p in sorted(out.glob("tasks/*/metrics.json"))]
    return {
        "workers": n_workers,
        "startup": t_start,
        "tasks": t_tasks,
        "total": t_start + t_tasks,
        "worker_fit": sum(r["seconds_fit"] for r in recs),
        "worker_extras": sum(r["seconds_metrics"] + r["seconds_write"] for r in recs),
        "worker_task": sum(r["seconds"] for r in recs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("nuts", "mle"), default="nuts")
    ap.add_argument("--tasks", type=int, default=16)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    spec = make_spec(args.method, args.tasks)  # imports bayesmoe (and pymc, which sets its level)
    for name in ("pymc", "pytensor"):
        logging.getLogger(name).setLevel(logging.ERROR)
    tasks = [t.to_dict() for t in spec.tasks()]
    print(
        f"{len(tasks)} {args.method} tasks; machine {platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {os.getloadavg()}"
    )
    t0 = time.perf_counter()
    direct_fit(tasks[0])  # warm-up (untimed): PyTensor's compile cache
    direct = [direct_fit(t) for t in tasks]
    print(
        f"direct: {sum(direct):.1f} s in total, {np.mean(direct):.2f} s per fit "
        f"(min {min(direct):.2f}, max {max(direct):.2f}); load {os.getloadavg()}"
    )
    root = Path(tempfile.mkdtemp(prefix="bayesmoe-scaling-"))
    try:
        runs = {}
        for w in (1, 2):
            runs[w] = r = run_with_workers(spec, w, root)
            busy = r["worker_task"] / (w * r["tasks"])
            print(
                f"{w} worker(s): start-up {r['startup']:.1f} s, tasks {r['tasks']:.1f} s, "
                f"total {r['total']:.1f} s; Σ fit on workers {r['worker_fit']:.1f} s, "
                f"Σ metrics+writes {r['worker_extras']:.1f} s, workers busy {100 * busy:.0f}% "
                f"of the task phase; load {os.getloadavg()}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = len(tasks)
    r1 = runs[1]
    mean_fit = r1["worker_fit"] / n
    over = (r1["tasks"] - r1["worker_fit"]) / n
    extras = r1["worker_extras"] / n
    print(
        f"speed-up 2 vs 1 workers: {r1['tasks'] / runs[2]['tasks']:.2f}x (task phase), "
        f"{r1['total'] / runs[2]['total']:.2f}x (with cluster start-up); a fit took "
        f"{runs[2]['worker_fit'] / r1['worker_fit']:.2f}x longer with 2 workers than with 1 "
        "(CPU contention: 1.0x on two free cores)"
    )
    print(
        f"runner overhead per task, same run (1 worker: task phase - Σ fit calls on the worker): "
        f"{over:.2f} s = {100 * over / mean_fit:.1f}% of the mean fit call ({mean_fit:.2f} s); "
        f"metrics+writes {extras:.2f} s ({100 * extras / mean_fit:.1f}%), scheduling and the "
        f"rest {over - extras:.2f} s ({100 * (over - extras) / mean_fit:.1f}%)"
    )
    d_over = (r1["tasks"] - sum(direct)) / n
    print(
        f"against the direct calls in this process (sensitive to load drift between phases): "
        f"{d_over:.2f} s per task = {100 * d_over / np.mean(direct):.1f}% of a direct fit"
    )
    print(f"wall time of this benchmark: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
