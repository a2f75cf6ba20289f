"""The K recommendation of compare_experts: a clear case, a LOO tie, disagreements with reasons,
and the end-to-end line on a well-separated simulation."""

import numpy as np
import pandas as pd

from bayesmoe.data import simulate
from bayesmoe.selection.compare import compare_experts
from bayesmoe.selection.recommend import loo_ties, recommend_k


def _table(**cols):
    t = pd.DataFrame(cols, index=pd.Index([1, 2, 3, 4], name="n_experts"))
    return t


def test_clear_answer_bic_and_p_k_agree():
    t = _table(p_rjmcmc=[0.0, 0.05, 0.9, 0.05])
    t.attrs = {"selected": {"aic": 3, "bic": 3, "icl": 3, "dsc": 3, "rjmcmc": 3}, "n_obs": 500}
    k, why = recommend_k(t)
    assert k == 3
    assert why == ("K = 3: p(K | y) is highest at 3 (0.90) and BIC agrees; ICL, DSC and AIC agree.")


def test_loo_within_two_standard_errors_is_a_tie_and_said_so():
    # tone-like: elpd difference 0.49 with a standard error of 22 between K = 3 and 4
    t = _table(
        elpd_loo=[-300.0, -160.0, -120.49, -120.0],
        elpd_diff=[180.0, 40.0, 0.49, 0.0],
        se_diff=[15.0, 10.0, 22.0, 0.0],
    )
    t.attrs = {"selected": {"aic": 4, "bic": 3, "icl": 3, "loo": 4, "mtm": 1}, "n_obs": 150}
    ties = loo_ties(t)
    assert ties.tolist() == [False, False, True, True]
    k, why = recommend_k(t)
    assert k == 3
    assert "LOO ties K = 3 and 4 (elpd differences within 2 standard errors)" in why
    assert "AIC prefers 4 (AIC under-penalises" in why
    assert "MTM gives 1: it merges experts the posterior cannot yet separate" in why
    assert "at n = 150" in why


def test_loo_clear_winner_is_not_a_tie():
    # the twin of the tie: the same difference with a standard error of 0.1 separates K = 3, 4
    t = _table(
        elpd_loo=[-300.0, -160.0, -120.49, -120.0],
        elpd_diff=[180.0, 40.0, 0.49, 0.0],
        se_diff=[15.0, 10.0, 0.1, 0.0],
    )
    t.attrs = {"selected": {"bic": 3, "loo": 4}, "n_obs": 150}
    assert loo_ties(t).tolist() == [False, False, False, True]
    _, why = recommend_k(t)
    assert "LOO prefers 4 by more than 2 standard errors" in why


def test_no_loo_leaves_ties_missing_and_nothing_run_says_so():
    t = _table(bic=[4.0, 3.0, 2.0, 1.0])
    assert loo_ties(t).isna().all()
    t.attrs = {"selected": {}}
    assert recommend_k(t) == (None, "no criterion ran: nothing to recommend.")


def test_compare_experts_reports_the_recommendation():
    X, y, _ = simulate("S-A", n=400, random_seed=3)  # two well-separated experts
    table = compare_experts(X, y, ks=range(1, 4), n_starts=3, random_seed=5, progressbar=False)
    assert table.attrs["recommended"] == 2
    assert table.attrs["recommendation"].startswith("K = 2: BIC (consistent for K) is lowest at 2")
    assert table["loo_tie"].isna().all() and np.isnan(table["se_diff"]).all()
