"""Prior recovery: with the likelihood off, the reversible-jump chain must reproduce p(K).

The continuous update between reversible-jump steps is an exact Gibbs refresh of every slot from
its prior (the full conditional when the likelihood is off), so the test isolates the
trans-dimensional acceptance ratios. A chi-square goodness-of-fit test on the thinned K chain has
false-alarm rate ALPHA; the chain is thinned to about one draw per effective sample (ESS of the
worst K indicator, arviz.ess), so the draws entering the test are close to independent.
"""

import arviz as az
import numpy as np
import pytest
from scipy import stats

import bayesmoe.inference.rjmcmc.step as step_module
from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc.step import ReversibleJump
from bayesmoe.models.random_k import K_VAR, build_random_k_model, slot_prior_draw

ALPHA = 1e-3  # false-alarm rate of each chi-square test
N_TUNE, N_DRAWS = 1000, 12000


def run_prior_chain(experts_prior, *, max_experts=4, experts="gaussian", seed=0, p_birth_death=0.5):
    if experts == "categorical":
        X, y, _ = simulate("S-D", n=40, random_seed=seed)
    else:
        X, y, _ = simulate("S-B", n=40, random_seed=seed)
    if experts == "poisson":  # counts on the same inputs (the likelihood is off anyway)
        y = np.random.default_rng(seed).poisson(np.exp(0.5 + 0.5 * X[:, 0]))
    model, info = build_random_k_model(
        X, y, max_experts=max_experts, experts=experts, experts_prior=experts_prior, prior_only=True
    )
    step = ReversibleJump(info=info, model=model, rng=seed + 1, p_birth_death=p_birth_death)
    step.setup_chain(np.random.default_rng(seed + 2), N_TUNE, N_DRAWS)
    rng = np.random.default_rng(seed + 3)
    point = model.initial_point()
    ks, moves, accepted = [], [], []
    for i in range(N_TUNE + N_DRAWS):
        if i == N_TUNE:
            step.stop_tuning()
        point = dict(point)
        point.update(slot_prior_draw(info, rng, size=max_experts))
        point, stats_ = step.step(point)
        if i >= N_TUNE:
            ks.append(int(point[K_VAR]) + 1)
            moves.append(stats_[0]["move"])
            accepted.append(stats_[0]["accepted"])
    return np.array(ks), info.prior_pmf, np.array(moves), np.array(accepted)


def chi_square_pvalue(ks, pmf):
    """p-value of the chi-square test of the thinned K chain against pmf, and the thinning."""
    K_max = pmf.size
    visited = [k for k in range(1, K_max + 1) if 0 < np.mean(ks == k) < 1]
    if not visited:  # the chain never left one K: it cannot reproduce a pmf on several K
        return 0.0, ks.size
    ess = min(az.ess((ks == k).astype(float)[None, :]) for k in visited)
    thin = max(1, int(np.ceil(ks.size / ess)))
    kept = ks[::thin]
    counts = np.bincount(kept, minlength=K_max + 1)[1:]
    expected = pmf * kept.size
    support = expected > 0
    if np.any(counts[~support] > 0):
        return 0.0, thin
    return stats.chisquare(counts[support], expected[support]).pvalue, thin


@pytest.mark.parametrize(
    "experts_prior", ["poisson:1.0", [0.1, 0.2, 0.3, 0.4]], ids=["poisson1", "increasing"]
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
        "poisson:2.0", experts="categorical", max_experts=3, p_birth_death=1.0, seed=5
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
    ks, pmf, _, _ = run_prior_chain("poisson:1.0", p_birth_death=0.0)
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
    ks, pmf, _, _ = run_prior_chain("poisson:1.0", p_birth_death=1.0)
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_prior_recovery_poisson_experts():
    """Poisson experts: the family's birth proposal (weighted IRLS) and its density agree, and
    split/merge keep p(K) (same chi-square test and thinning as above)."""
    ks, pmf, moves, accepted = run_prior_chain("poisson:1.0", experts="poisson", max_experts=3)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600
    assert p > ALPHA, (np.bincount(ks, minlength=4)[1:] / ks.size, pmf)
    for code in range(4):
        assert accepted[moves == code].mean() > 0.02
