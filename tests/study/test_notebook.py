"""notebooks/05_study.ipynb runs top to bottom (4 MLE + 2 tiny NUTS tasks on 2 local workers)."""

import pytest

from tests.helpers import run_notebook


@pytest.mark.slow  # ~45 s (a dask cluster); the study runner tests guard the same calls
def test_study_notebook_executes(tmp_path, monkeypatch):
    text = run_notebook("05_study.ipynb", tmp_path, monkeypatch, draws=None, timeout=300)
    assert "pending at the rerun: 0" in text
    assert text.count("report.html") >= 2
