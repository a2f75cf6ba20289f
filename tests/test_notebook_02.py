"""notebooks/02_classification_mm_dendrogram.ipynb runs top to bottom with 100 NUTS draws per chain.

Besides "no error", the test reads the printed results back, so a notebook whose MM fit, dendrogram
or NUTS cells silently did something else would fail.
"""

import re

from tests.helpers import run_notebook


def test_notebook_02_executes(tmp_path, monkeypatch):
    text = run_notebook("02_classification_mm_dendrogram.ipynb", tmp_path, monkeypatch)

    # MM: monotone ascent and a log-likelihood at least that of the true measure (the MLE
    # maximises it; the truth is one candidate point, so the fit can only be above it)
    assert "ascent violations: 0" in text
    ll_fit, ll_truth = map(
        float, re.search(r"MM fit (-?[\d.]+), true measure (-?[\d.]+)", text).groups()
    )
    assert ll_fit >= ll_truth - 1e-6
    # DSC picks a K in 2..4 (K̄ = 4), and the criteria table prints four choices in 1..3
    k_dsc = int(re.search(r"DSC choice: K = (\d)", text).group(1))
    assert 2 <= k_dsc <= 4
    sel = re.search(
        r"\{'selected_aic': (\d), 'selected_bic': (\d), 'selected_icl': (\d), "
        r"'selected_dsc': (\d)\}",
        text,
    )
    assert sel and all(1 <= int(k) <= 3 for k in sel.groups())
    # NUTS started from the MM fit
    assert "chains started from: mm" in text
