"""Notebook 04 (diagnostics) runs top to bottom with ~100 NUTS draws per chain."""

import pytest

from tests.helpers import run_notebook


@pytest.mark.slow  # ~45 s; benchmarks/notebooks.py runs it, its functions are tested by default
def test_notebook_04_executes(tmp_path, monkeypatch):
    text = run_notebook("04_diagnostics.ipynb", tmp_path, monkeypatch)
    # the notebook's own checks print these; a broken diagnostic would change or drop them
    assert "posterior mean D1" in text and "MTM pmf" in text and ">= D(R)" in text
    assert "MTM on an MM point: merge_truncate_merge got a single mixing measure" in text
