"""Reversible jump for multinomial-logistic experts: the anchor birth kernel and split/merge on
class logits, tested like the Gaussian moves (density checks, prior recovery, must-fail twins).
"""

import dataclasses

import numpy as np
import pytest

import bayesmoe.inference.rjmcmc.step as step_module
from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc.categorical import AnchorBirth, kmeans_anchors
from bayesmoe.inference.rjmcmc.moves import merge_map, slot_prior_logpdf, split_map
from bayesmoe.inference.rjmcmc.step import ReversibleJump
from bayesmoe.models.random_k import build_random_k_model, slot_prior_draw
from tests.helpers import ALPHA, TWIN_DRAWS, chi_square_pvalue, run_prior_chain


@pytest.fixture(scope="module")
def step_sd():
    X, y, _ = simulate("S-D", n=200, random_seed=2)
    model, info = build_random_k_model(X, y, max_experts=4, family="categorical")
    step = ReversibleJump(info=info, model=model, rng=0)
    return step, info


def _theta(step, info, K, seed):
    rng = np.random.default_rng(seed)
    return step.layout.pack(slot_prior_draw(info, rng, size=info.max_experts))[:K]


def _is_ratio(step, info, K, n_draws, seed, draw_scale=1.0):
    """Draw u ~ q(. | theta) and return the importance ratios prior(u)/q(u) and q0(u)/q(u),
    q0 the anchor mixture alone (prior_mix 0). Both have mean 1 under q when draw and density
    agree, and both lie in [0, 1/prior_mix] = [0, 2]: the Monte Carlo error is bounded."""
    theta = _theta(step, info, K, seed)
    ctx = step._context(1.0, 1.0)
    ctx0 = dataclasses.replace(ctx, prior_mix=0.0)
    kernel = step.birth_kernel
    rng = np.random.default_rng(seed + 1)
    r_prior, r_mix = [], []
    for _ in range(n_draws):
        prior_row = step.layout.pack(slot_prior_draw(info, rng, size=1))[0]
        if rng.uniform() < ctx.prior_mix:
            u = prior_row
        else:
            w, means, sds = kernel.components(theta, ctx)
            c = int(rng.choice(w.size, p=w))
            u = means[c] + draw_scale * sds[c] * rng.standard_normal(means.shape[1])
        log_q = kernel.log_density(u, theta, ctx)
        r_prior.append(np.exp(slot_prior_logpdf(u, ctx) - log_q))
        r_mix.append(np.exp(kernel.log_density(u, theta, ctx0) - log_q))
    return np.array(r_prior), np.array(r_mix)


def test_anchor_kernel_is_the_one_selected_and_its_cells_cover_the_data(step_sd):
    step, info = step_sd
    assert step.birth == "anchors" and isinstance(step.birth_kernel, AnchorBirth)
    k = step.birth_kernel
    assert 2 <= k.n_anchors <= 8 and np.bincount(k.labels).min() >= 1
    # each anchor's intercepts are the class log-odds of its cell, refined by a short
    # ridge-penalised fit: within the prior scale of them (sd_b = 2 on the logit scale)
    ys = info.ys
    d = info.n_features
    for c in range(k.n_anchors):
        counts = np.bincount(ys[k.labels == c], minlength=info.n_classes) + 0.5
        log_odds = np.log(counts[:-1] / counts[-1])
        b = k.expert_mean[c, -(info.n_classes - 1) :]
        assert np.all(np.abs(b - log_odds) < 2.0 * info.priors.expert_intercept), (c, b, log_odds)
    assert k.expert_mean.shape == (k.n_anchors, d * (info.n_classes - 1) + info.n_classes - 1)


def test_birth_density_matches_its_draws(step_sd):
    step, info = step_sd
    for K, seed in ((1, 0), (3, 5)):
        r_prior, r_mix = _is_ratio(step, info, K, 3000, seed)
        for r in (r_prior, r_mix):
            se = r.std() / np.sqrt(r.size)
            # ratios bounded in [0, 2]: the mean is ~normal; 4.5 se is a 1e-5 false alarm
            assert abs(r.mean() - 1.0) < 4.5 * se + 1e-3, (K, r.mean(), se)


def test_a_density_that_disagrees_with_the_draws_is_caught(step_sd):
    """Must-fail twin: draws 1.5x wider than the density says move the anchor ratio off 1."""
    step, info = step_sd
    _, r_mix = _is_ratio(step, info, 2, 3000, 11, draw_scale=1.5)
    se = r_mix.std() / np.sqrt(r_mix.size)
    assert abs(r_mix.mean() - 1.0) > 4.5 * se


def test_split_merge_on_class_logits_preserve_the_weighted_logits_and_invert(step_sd):
    step, info = step_sd
    rng = np.random.default_rng(3)
    theta = _theta(step, info, 1, 7)[0]
    D = theta.size
    u, delta = 0.3, rng.normal(size=D - 1)
    t1, t2, log_jac = split_map(theta, u, delta)
    # gate weights add; every logit (gate slope, class slopes, class intercepts) is preserved in
    # the weight-share average
    assert np.exp(t1[0]) + np.exp(t2[0]) == pytest.approx(np.exp(theta[0]))
    np.testing.assert_allclose(u * t1[1:] + (1 - u) * t2[1:], theta[1:], atol=1e-12)
    back, u2, _d2, lj2 = merge_map(t1, t2)
    np.testing.assert_allclose(back, theta, atol=1e-12)
    assert u2 == pytest.approx(u) and lj2 == pytest.approx(-log_jac)
    # the Jacobian on this layout, by central differences (error O(h^2) ~ 1e-10)
    z = np.concatenate([theta, [u], delta])

    def f(v):
        a, b, _ = split_map(v[:D], v[D], v[D + 1 :])
        return np.concatenate([a, b])

    h, J = 1e-6, np.empty((2 * D, 2 * D))
    for j in range(2 * D):
        e = np.zeros(2 * D)
        e[j] = h
        J[:, j] = (f(z + e) - f(z - e)) / (2 * h)
    assert np.linalg.slogdet(J)[1] == pytest.approx(log_jac, abs=1e-6)


@pytest.mark.parametrize(
    "experts_prior",
    [
        "poisson:1.0",
        pytest.param(
            [0.1, 0.2, 0.3, 0.4], marks=pytest.mark.slow
        ),  # ~1 min more; passed 2026-12-02
    ],
    ids=["poisson1", "increasing"],
)
def test_categorical_prior_recovery(experts_prior):
    ks, pmf, moves, accepted = run_prior_chain(experts_prior, family="categorical", seed=2)
    p, thin = chi_square_pvalue(ks, pmf)
    assert ks[::thin].size > 600  # enough near-independent draws to have power
    assert p > ALPHA, (np.bincount(ks, minlength=5)[1:] / ks.size, pmf)
    for code in range(4):  # births, deaths, splits and merges all get accepted
        assert accepted[moves == code].mean() > 0.02


def _drop(fn, which):
    def broken(*args, **kwargs):
        proposal, log_q, log_jac = fn(*args, **kwargs)
        return proposal, (0.0 if which == "q" else log_q), (0.0 if which == "jac" else log_jac)

    return broken


def test_categorical_dropped_jacobian_fails(monkeypatch):
    monkeypatch.setattr(step_module, "propose_split", _drop(step_module.propose_split, "jac"))
    monkeypatch.setattr(step_module, "propose_merge", _drop(step_module.propose_merge, "jac"))
    ks, pmf, _, _ = run_prior_chain(
        "poisson:1.0", family="categorical", p_birth_death=0.0, seed=2, n_draws=TWIN_DRAWS
    )
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_categorical_anchor_birth_without_its_density_fails(monkeypatch):
    monkeypatch.setattr(step_module, "propose_birth", _drop(step_module.propose_birth, "q"))
    monkeypatch.setattr(step_module, "propose_death", _drop(step_module.propose_death, "q"))
    ks, pmf, _, _ = run_prior_chain(
        "poisson:1.0", family="categorical", p_birth_death=1.0, seed=2, n_draws=TWIN_DRAWS
    )
    p, _ = chi_square_pvalue(ks, pmf)
    assert p < ALPHA


def test_options_and_errors():
    X, y, _ = simulate("S-B", n=40, random_seed=0)
    model, info = build_random_k_model(X, y, max_experts=3)
    assert ReversibleJump(info=info, model=model, rng=0).birth == "normal"
    with pytest.raises(ValueError, match="categorical"):
        ReversibleJump(info=info, model=model, birth="anchors")
    with pytest.raises(ValueError, match="birth"):
        ReversibleJump(info=info, model=model, birth="wide")
    Xc, yc, _ = simulate("S-D", n=40, random_seed=0)
    mc, ic = build_random_k_model(Xc, yc, max_experts=3, family="categorical")
    with pytest.raises(ValueError, match="n_anchors"):
        ReversibleJump(info=ic, model=mc, n_anchors=0)
    assert ReversibleJump(info=ic, model=mc, birth="normal").birth_kernel is None
    c, lab = kmeans_anchors(np.zeros((10, 0)), 4)  # no gate input: one cell
    assert c.shape == (1, 0) and lab.tolist() == [0] * 10
