"""Prior recovery: with the likelihood off, the reversible-jump chain must reproduce p(K).

The continuous update between reversible-jump steps is an exact Gibbs refresh of every slot from
its prior (the full conditional when the likelihood is off), so the test isolates the
trans-dimensional acceptance ratios. A chi-square goodness-of-fit test on the thinned K chain has
false-alarm rate ALPHA; the chain is thinned to about one draw per effective sample (ESS of the
worst K indicator, arviz.ess), so the draws entering the test are close to independent. The chain,
the test and ALPHA are in tests/helpers.py (shared with the other reversible-jump tests).
"""

import numpy as np
import pytest

import bayesmoe.inference.rjmcmc.step as step_module
from tests.helpers import ALPHA, TWIN_DRAWS, chi_square_pvalue, run_prior_chain


@pytest.mark.parametrize(
    "experts_prior",
    # the second pmf is in the slow tier: by default the same moves are guarded by "poisson1"
    # and a non-Poisson pmf by tests/rjmcmc/test_prior_recovery_rg.py (K uniform on 1..4)
    ["poisson:1.0", pytest.param([0.1, 0.2, 0.3, 0.4], marks=pytest.mark.slow)],
    ids=["poisson1", "increasing"],
)
def test_prior_recovery_two_priors(experts_prior):
    ks, pmf, moves, accepted = run_prior_chain(experts_prior)
    p, thin = chi_square_pvalue(ks, pmf)
    # at least ~600 near-independent draws: the test has power against the broken move below
    assert ks[::thin].size > 600
    assert p > ALPHA, (np.bincount(ks, minlength=5)[1:] / ks.size, pmf)
    for code in range(4):  # every move is proposed and accepted now and then
        assert accepted[moves == code].mean() > 0.02


def test_prior_recovery_birth_death_only_and_categorical():
    ks, pmf, _, _ = run_prior_chain(
        "poisson:2.0", family="categorical", max_experts=3, p_birth_death=1.0, seed=5
    )
    p, _ = chi_square_pvalue(ks, pmf)
    assert p > ALPHA


def _drop_jacobian(fn):
    def broken(*args, **kwargs):
        proposal, log_q, _ = fn(*args, **kwargs)
        return proposal, log_q, 0.0

    return broken


def test_dropped_jacobian_fails_prior_recovery(monkeypatch):
    """Must-fail: the same chain with the split/merge Jacobian dropped misses p(K)."""
    monkeypatch.setattr(step_module, "propose_split", _drop_jacobian(step_module.propose_split))
    monkeypatch.setattr(step_module, "propose_merge", _drop_jacobian(step_module.propose_merge))
    ks, pmf, _, _ = run_prior_chain("poisson:1.0", p_birth_death=0.0, n_draws=TWIN_DRAWS)
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_wrong_birth_density_fails_prior_recovery(monkeypatch):
    """Must-fail: a birth ratio that forgets the proposal density (log q ratio = 0)."""

    def no_q(fn):
        def broken(*args, **kwargs):
            proposal, _, log_jac = fn(*args, **kwargs)
            return proposal, 0.0, log_jac

        return broken

    monkeypatch.setattr(step_module, "propose_birth", no_q(step_module.propose_birth))
    monkeypatch.setattr(step_module, "propose_death", no_q(step_module.propose_death))
    ks, pmf, _, _ = run_prior_chain("poisson:1.0", p_birth_death=1.0, n_draws=TWIN_DRAWS)
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_prior_recovery_poisson_experts():
    """Poisson experts: the family's birth proposal (weighted IRLS) and its density agree, and
    split/merge keep p(K) (same chi-square test and thinning as above)."""
    ks, pmf, moves, accepted = run_prior_chain("poisson:1.0", family="poisson", max_experts=3)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600
    assert p > ALPHA, (np.bincount(ks, minlength=4)[1:] / ks.size, pmf)
    for code in range(4):
        assert accepted[moves == code].mean() > 0.02


@pytest.mark.parametrize("family", ["negbinomial", "student-t"])
def test_prior_recovery_negbinomial_and_student_t_experts(family):
    """Negative binomial and Student-t experts: the births (weighted fits plus the moment
    estimates of the dispersion / tail) and their densities agree, and split/merge of the
    log-scale dispersion / tail columns keep p(K) (same chi-square test and thinning as above)."""
    ks, pmf, moves, accepted = run_prior_chain("poisson:1.0", family=family, max_experts=3)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600
    assert p > ALPHA, (np.bincount(ks, minlength=4)[1:] / ks.size, pmf)
    for code in range(4):
        assert accepted[moves == code].mean() > 0.02
