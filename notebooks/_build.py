"""Shared tail of the notebook builders: make, execute (unless --no-execute), write a notebook."""

import subprocess
import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent


def build(cells, filename: str, *, timeout: int = 1800) -> None:
    nb = nbf.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if "--no-execute" not in sys.argv:
        from nbclient import NotebookClient

        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    path = HERE / filename
    nbf.write(nb, path)
    # The committed notebooks are ruff-formatted (CI checks `ruff format --check`): format the
    # cells the builder wrote, as the pre-commit hook would.
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)
    print(f"wrote {path}")
