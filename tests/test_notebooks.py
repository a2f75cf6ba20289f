"""The quickstart notebook runs top to bottom with small draws."""

from tests.helpers import run_notebook


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    text = run_notebook("01_quickstart.ipynb", tmp_path, monkeypatch)
    assert "posterior mean D1 =" in text and "draws whose labels were permuted" in text
