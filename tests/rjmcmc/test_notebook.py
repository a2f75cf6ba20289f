"""notebooks/03_random_k.ipynb executes end to end with BAYESMOE_NB_DRAWS=100."""

import re

import pytest

pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from tests.helpers import run_notebook


@pytest.mark.slow  # ~60 s with empty caches; benchmarks/notebooks.py runs it, its steps are
# tested by default (test_compiled_covariates, test_compare, test_predict_random_k)
def test_random_k_notebook_executes(tmp_path, monkeypatch):
    text = run_notebook("03_random_k.ipynb", tmp_path, monkeypatch, draws=100)
    # the cross-K table and the comparison table print these; a broken step drops them
    assert re.search(r"reference K: \d \| rows: \d", text), text
    assert "choices: {'aic':" in text and "'rjmcmc':" in text
    # run time is measured by benchmarks/notebooks.py, not asserted here
