"""Run time of each notebook with the test suite's draws (the budget the tests no longer assert).

Usage::

    python benchmarks/notebooks.py [--draws 100] [--only 03_random_k.ipynb ...]

Executes every ``notebooks/*.ipynb`` (or those named) in a fresh kernel in a temporary
directory, with ``BAYESMOE_NB_DRAWS`` as the tests set it (05_study does not read it), and prints
one table row per notebook: wall seconds of the execution and CPU seconds of the kernel process
(``time.process_time()`` read by an extra last cell, added to the in-memory copy only: the
notebooks in the repository are not changed). The 1-minute load average before and after is
printed too: on a shared machine, quote only rows measured at low load. The budget that
tests/rjmcmc/test_notebook.py used to assert is notebook 03 < 240 CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NO_DRAWS = {"05_study.ipynb"}  # notebooks that do not read BAYESMOE_NB_DRAWS
BUDGET_CPU = {"03_random_k.ipynb": 240.0}  # CPU-second budgets (formerly asserted by tests)
CPU_CELL = "import time as _t\nprint('__cpu_seconds__', _t.process_time())"


def run(path: Path, draws: int) -> tuple[float, float]:
    """Execute one notebook; return (wall seconds, kernel CPU seconds)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
    env_before = os.environ.get("BAYESMOE_NB_DRAWS")
    if path.name not in NO_DRAWS:
        os.environ["BAYESMOE_NB_DRAWS"] = str(draws)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            NotebookClient(
                nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": tmp}}
            ).execute()
            wall = time.perf_counter() - t0
    finally:
        if env_before is None:
            os.environ.pop("BAYESMOE_NB_DRAWS", None)
        else:
            os.environ["BAYESMOE_NB_DRAWS"] = env_before
    text = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    cpu = float(re.search(r"__cpu_seconds__ ([0-9.]+)", text).group(1))
    return wall, cpu


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=100, help="BAYESMOE_NB_DRAWS (the tests' value)")
    p.add_argument("--only", nargs="*", help="notebook file names (default: all)")
    args = p.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.only:
        paths = [NOTEBOOKS / n for n in args.only]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.processor() or '?'}"
        f", {os.cpu_count()} cores; load before {os.getloadavg()[0]:.1f}; draws {args.draws}"
    )
    print("| notebook | wall s | CPU s | budget (CPU s) | load after |")
    print("|---|---|---|---|---|")
    for path in paths:
        wall, cpu = run(path, args.draws)
        budget = BUDGET_CPU.get(path.name)
        verdict = "" if budget is None else f"{budget:.0f} ({'met' if cpu < budget else 'MISSED'})"
        print(f"| {path.name} | {wall:.0f} | {cpu:.0f} | {verdict} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
