"""Notebook 04 (diagnostics) runs top to bottom with ~100 NUTS draws per chain."""

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_diagnostics.ipynb"


def test_notebook_04_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESMOE_NB_DRAWS", "100")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    # the notebook's own checks print these; a broken diagnostic would change or drop them
    assert "posterior mean D1" in text and "MTM pmf" in text and ">= D(R)" in text
    print(f"notebook 04 executed in {seconds:.0f} s")
