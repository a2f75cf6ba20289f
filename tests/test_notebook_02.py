"""notebooks/02_classification_mm_dendrogram.ipynb runs top to bottom with 100 NUTS draws per chain.

Besides "no error", the test reads the printed results back, so a notebook whose MM fit, dendrogram
or NUTS cells silently did something else would fail.
"""

import re
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_classification_mm_dendrogram.ipynb"


def _stream_text(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_notebook_02_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESMOE_NB_DRAWS", "100")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors[0] if errors else None
    text = _stream_text(nb)

    # MM: monotone ascent and a log-likelihood at least that of the true measure (the MLE
    # maximises it; the truth is one candidate point, so the fit can only be above it)
    assert "ascent violations: 0" in text
    ll_fit, ll_truth = map(float, re.search(r"MM fit (-?[\d.]+), true measure (-?[\d.]+)",
                                            text).groups())
    assert ll_fit >= ll_truth - 1e-6
    # DSC picks a K in 2..4 (K̄ = 4), and the criteria table prints four choices in 1..3
    k_dsc = int(re.search(r"DSC choice: K = (\d)", text).group(1))
    assert 2 <= k_dsc <= 4
    sel = re.search(r"\{'selected_aic': (\d), 'selected_bic': (\d), 'selected_icl': (\d), "
                    r"'selected_dsc': (\d)\}", text)
    assert sel and all(1 <= int(k) <= 3 for k in sel.groups())
    # NUTS started from the MM fit
    assert "chains started from: mm" in text
    print(f"notebook 02 executed in {seconds:.0f} s")
