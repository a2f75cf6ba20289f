"""Prior recovery of the reversible jump for binomial experts (with per-row trials): with the
likelihood off the chain must reproduce p(K). The chain, the chi-square test on the thinned K
chain and its false-alarm rate ALPHA are in tests/helpers.py, as for the other families
(tests/rjmcmc/test_prior_recovery.py)."""

import numpy as np

from tests.helpers import ALPHA, chi_square_pvalue, run_prior_chain


def test_prior_recovery_binomial_experts():
    """The family's birth proposal (weighted logistic IRLS, reading the trials) and its density
    agree, and split/merge keep p(K)."""
    ks, pmf, moves, accepted = run_prior_chain("poisson:1.0", family="binomial", max_experts=3)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600
    assert p > ALPHA, (np.bincount(ks, minlength=4)[1:] / ks.size, pmf)
    for code in range(4):
        assert accepted[moves == code].mean() > 0.02
