"""Prior recovery under the Richardson–Green prior (d = 0): with the likelihood off, the
reversible-jump chain must reproduce k ~ Uniform{1..k_max}, and a broken move must not.

Same design as tests/rjmcmc/test_prior_recovery.py, with its helpers from tests/helpers.py (exact
Gibbs refresh from the prior between reversible-jump steps; chi-square on the chain thinned to
about one draw per effective sample, false-alarm rate ALPHA). The refresh draws the
hyperparameter beta from its prior first and then every slot given beta, which is an exact draw
of the joint prior. Under this prior the weights are Dirichlet(1, ..., 1), i.e. the gate
intercepts are log Gamma(1, 1) variables: the split/merge of a weight (w -> u w, (1 - u) w) and
the prior density of a birth are exercised on that parametrisation, with the means around xi and
the Gamma precisions given beta.
"""

import numpy as np

import bayesmoe.inference.rjmcmc.step as step_module
from bayesmoe.data import load_dataset
from bayesmoe.inference.rjmcmc.step import ReversibleJump
from bayesmoe.models.random_k import (
    K_VAR,
    build_random_k_model,
    hyper_prior_draw,
    slot_prior_draw,
)
from tests.helpers import ALPHA, N_DRAWS, N_TUNE, TWIN_DRAWS, chi_square_pvalue


def run_rg_prior_chain(*, max_experts=4, seed=0, p_birth_death=0.5, n_draws=N_DRAWS):
    X, y, _ = load_dataset("galaxy")
    model, info = build_random_k_model(
        X,
        y,
        max_experts=max_experts,
        experts_prior="uniform",
        priors="richardson-green",
        prior_only=True,
    )
    step = ReversibleJump(info=info, model=model, rng=seed + 1, p_birth_death=p_birth_death)
    step.setup_chain(np.random.default_rng(seed + 2), N_TUNE, n_draws)
    rng = np.random.default_rng(seed + 3)
    point = model.initial_point()
    ks, moves, accepted = [], [], []
    for i in range(N_TUNE + n_draws):
        if i == N_TUNE:
            step.stop_tuning()
        point = dict(point)
        point.update(hyper_prior_draw(info, rng))
        point.update(slot_prior_draw(info, rng, size=max_experts, point=point))
        point, stats_ = step.step(point)
        if i >= N_TUNE:
            ks.append(int(point[K_VAR]) + 1)
            moves.append(stats_[0]["move"])
            accepted.append(stats_[0]["accepted"])
    return np.array(ks), info.prior_pmf, np.array(moves), np.array(accepted)


def test_rg_prior_recovery_uniform_k():
    ks, pmf, moves, accepted = run_rg_prior_chain()
    assert np.allclose(pmf, 0.25)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600  # power against the broken moves below
    assert p > ALPHA, (np.bincount(ks, minlength=5)[1:] / ks.size, pmf)
    for code in range(4):
        assert accepted[moves == code].mean() > 0.02


def test_rg_dropped_split_jacobian_fails(monkeypatch):
    """Must-fail: split/merge without the Jacobian 1 / (u (1 - u)) of the weight split."""

    def drop(fn):
        def broken(*args, **kwargs):
            proposal, log_q, _ = fn(*args, **kwargs)
            return proposal, log_q, 0.0

        return broken

    monkeypatch.setattr(step_module, "propose_split", drop(step_module.propose_split))
    monkeypatch.setattr(step_module, "propose_merge", drop(step_module.propose_merge))
    ks, pmf, _, _ = run_rg_prior_chain(p_birth_death=0.0, n_draws=TWIN_DRAWS)
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_rg_birth_without_proposal_density_fails(monkeypatch):
    """Must-fail: birth/death ratios that forget the proposal density (log q ratio = 0), whose
    prior part is the Richardson–Green slot density (log Gamma weights, Gamma precisions)."""

    def no_q(fn):
        def broken(*args, **kwargs):
            proposal, _, log_jac = fn(*args, **kwargs)
            return proposal, 0.0, log_jac

        return broken

    monkeypatch.setattr(step_module, "propose_birth", no_q(step_module.propose_birth))
    monkeypatch.setattr(step_module, "propose_death", no_q(step_module.propose_death))
    ks, pmf, _, _ = run_rg_prior_chain(p_birth_death=1.0, n_draws=TWIN_DRAWS)
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA
