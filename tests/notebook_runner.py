"""Shared helper for the notebook tests: execute a notebook with small draws, return its output."""

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, tmp_path, monkeypatch, draws: int = 100):
    """Execute notebooks/<name> with BAYESMOE_NB_DRAWS=draws; return (stream text, seconds).

    Fails the calling test if any cell produced an error output.
    """
    monkeypatch.setenv("BAYESMOE_NB_DRAWS", str(draws))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    seconds = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0]
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return text, seconds
