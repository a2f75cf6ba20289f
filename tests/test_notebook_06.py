"""Notebook 06 (galaxy, p(k | y) under the Richardson–Green prior) runs top to bottom with ~100
draws per chain."""

import pytest

from tests.helpers import run_notebook


@pytest.mark.slow  # ~45 s; tests/rjmcmc/test_galaxy*.py and test_compiled.py guard the galaxy fits
def test_notebook_06_executes(tmp_path, monkeypatch):
    text = run_notebook("06_galaxy.ipynb", tmp_path, monkeypatch)
    # the notebook's own prints: the sampler used, the table of p(k | y), the BIC choice
    assert "reversible_jump+gibbs" in text and "p(k | y):" in text and "RG 0.199" in text
    assert "mclust-style BIC, best K =" in text
    assert "density integrates to 0.9" in text or "density integrates to 1.0" in text
