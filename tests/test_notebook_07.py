"""Notebook 07 (from a CSV: fit → plots → choose K → predict, on the bundled mcycle data) runs top
to bottom with ~100 draws per chain."""

from tests.helpers import run_notebook


def test_notebook_07_executes(tmp_path, monkeypatch):
    text = run_notebook("07_from_csv.ipynb", tmp_path, monkeypatch)
    # the notebook's own prints: the data read from the CSV, the recommendation with its reason,
    # the legend of the summary, the predictions at new times
    assert "(133, 2)" in text
    assert "recommendation: K = " in text and "BIC" in text
    assert "sigma: expert noise sd" in text
    assert "observations inside their 94% predictive interval" in text
