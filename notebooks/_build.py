"""Shared tail of the notebook builders: make the notebook, execute it unless --no-execute, write it."""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent


def build(cells, filename: str, *, timeout: int = 1800) -> None:
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    if "--no-execute" not in sys.argv:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    path = HERE / filename
    nbf.write(nb, path)
    print(f"wrote {path}")
