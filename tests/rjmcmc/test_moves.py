"""Deterministic checks of the reversible-jump proposals (docs/math.md §3)."""

import numpy as np
import pytest

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc.moves import (
    birth_log_density,
    birth_proposal,
    merge_map,
    move_probabilities,
    propose_birth,
    propose_death,
    propose_merge,
    propose_permutation,
    propose_split,
    slot_prior_logpdf,
    split_map,
)
from bayesmoe.inference.rjmcmc.step import ReversibleJump
from bayesmoe.models.random_k import build_random_k_model, slot_prior_draw


def _split_vector(z, D):
    """(theta, u, delta) packed in one vector of length 2D -> (theta_1, theta_2) of length 2D."""
    t1, t2, _ = split_map(z[:D], z[D], z[D + 1 :])
    return np.concatenate([t1, t2])


@pytest.mark.parametrize("D", [2, 5, 8])
def test_split_jacobian_matches_finite_difference_determinant(D):
    rng = np.random.default_rng(D)
    theta = rng.normal(size=D)
    u = rng.uniform(0.1, 0.9)
    delta = rng.normal(size=D - 1)
    z = np.concatenate([theta, [u], delta])
    h = 1e-6
    J = np.empty((2 * D, 2 * D))
    for j in range(2 * D):
        e = np.zeros(2 * D)
        e[j] = h
        J[:, j] = (_split_vector(z + e, D) - _split_vector(z - e, D)) / (2 * h)
    _, logdet = np.linalg.slogdet(J)
    _, _, log_jac = split_map(theta, u, delta)
    # central differences of a smooth map: error O(h^2) ~ 1e-10 per entry, far below 1e-6
    assert log_jac == pytest.approx(logdet, abs=1e-6)
    # the merge Jacobian is the inverse: log|J_merge| = -log|J_split|
    t1, t2, _ = split_map(theta, u, delta)
    assert merge_map(t1, t2)[3] == pytest.approx(-logdet, abs=1e-6)


def test_a_wrong_jacobian_is_caught_by_the_finite_difference_check():
    # must-fail: the determinant of the map differs from 0 (what a dropped Jacobian claims)
    theta, u, delta = np.array([0.2, -1.0, 0.5]), 0.3, np.array([0.7, -0.4])
    assert abs(split_map(theta, u, delta)[2]) > 1.0


def test_split_merge_round_trips():
    rng = np.random.default_rng(1)
    for _ in range(50):
        D = int(rng.integers(2, 9))
        theta, u, delta = rng.normal(size=D), rng.uniform(0.01, 0.99), rng.normal(size=D - 1)
        t1, t2, lj = split_map(theta, u, delta)
        back, u2, d2, lj2 = merge_map(t1, t2)
        np.testing.assert_allclose(back, theta, atol=1e-12)
        assert u2 == pytest.approx(u, abs=1e-12)
        np.testing.assert_allclose(d2, delta, atol=1e-12)
        assert lj2 == pytest.approx(-lj)
        # merge then split
        a, b = rng.normal(size=D), rng.normal(size=D)
        m, um, dm, _ = merge_map(a, b)
        s1, s2, _ = split_map(m, um, dm)
        np.testing.assert_allclose(s1, a, atol=1e-12)
        np.testing.assert_allclose(s2, b, atol=1e-12)


def test_move_probabilities_boundaries():
    assert move_probabilities(1, 1) == {"birth": 0.0, "death": 0.0, "split": 0.0, "merge": 0.0}
    p = move_probabilities(3, 3, 0.3)
    assert p["birth"] == p["split"] == 0.0 and p["death"] == pytest.approx(0.3)
    mid = move_probabilities(2, 3)
    assert sum(mid.values()) == pytest.approx(1.0) and mid["birth"] == mid["death"]


@pytest.fixture(scope="module")
def gaussian_setup():
    X, y, _ = simulate("S-B", n=60, random_seed=3)
    model, info = build_random_k_model(X, y, max_experts=4)
    step = ReversibleJump(info=info, model=model, rng=0, tune=False)
    return model, info, step


def test_layout_pack_unpack_round_trip(gaussian_setup):
    _model, info, step = gaussian_setup
    point = slot_prior_draw(info, np.random.default_rng(0), size=4)
    theta = step.layout.pack(point)
    assert theta.shape == (4, step.layout.n_columns)
    back = step.layout.unpack(theta)
    for k, v in point.items():
        np.testing.assert_array_equal(back[k], v)


def test_numpy_slot_prior_matches_the_compiled_model_prior(gaussian_setup):
    model, info, step = gaussian_setup
    point = model.initial_point()
    point.update(slot_prior_draw(info, np.random.default_rng(1), size=4))
    slot_lp, _ = step._logp_fn(**{k: point[k] for k in step._inputs})
    ctx = step._context(1.0, 1.0)
    mine = [slot_prior_logpdf(r, ctx) for r in step.layout.pack(point)]
    # PyMC's Normal logp rounds the constant log(2 pi) / 2: ~1e-8 per coordinate, D <= 8 here
    np.testing.assert_allclose(mine, slot_lp, atol=1e-6)


def test_birth_density_is_the_density_of_the_birth_draws(gaussian_setup):
    """The birth ratio is -log q at the drawn row, and the reverse death evaluates the same q."""
    _model, info, step = gaussian_setup
    rng = np.random.default_rng(2)
    ctx = step._context(1.0, 1.0)
    theta = step.layout.pack(slot_prior_draw(info, rng, size=4))
    prior_row = step.layout.pack(slot_prior_draw(info, rng, size=1))[0]
    (new, K1), log_q_ratio, lj = propose_birth(theta, 2, rng, ctx, prior_row)
    assert K1 == 3 and lj == 0.0
    np.testing.assert_array_equal(new[:2], theta[:2])
    mean, sd = birth_proposal(theta[:2], ctx)
    assert -log_q_ratio == pytest.approx(birth_log_density(new[2], mean, sd, ctx))
    (back, K2), log_q_back, _ = propose_death(new, 3, rng, ctx, prior_row)
    assert K2 == 2 and log_q_back == pytest.approx(-log_q_ratio)
    np.testing.assert_array_equal(back[2], prior_row)


def test_split_and_merge_moves_are_mutual_inverses(gaussian_setup):
    _model, info, step = gaussian_setup
    rng = np.random.default_rng(4)
    ctx = step._context(1.0, 1.0)
    theta = step.layout.pack(slot_prior_draw(info, rng, size=4))
    (split, K1), lq, lj = propose_split(theta, 2, np.random.default_rng(5), ctx)
    j = int(np.random.default_rng(5).integers(2))  # the slot the split chose
    # a merge that picks the same j must restore theta[j] and give the opposite ratio and Jacobian
    for seed in range(40):
        (merged, K2), lq2, lj2 = propose_merge(split, 3, np.random.default_rng(seed), ctx, theta[2])
        if np.allclose(merged[j], theta[j]):
            break
    else:
        pytest.fail("no merge picked the split slot in 40 tries (probability 2^-40)")
    assert K1 == 3 and K2 == 2
    np.testing.assert_allclose(merged[:3], theta[:3], atol=1e-12)
    assert lq2 == pytest.approx(-lq) and lj2 == pytest.approx(-lj)


def test_permutation_keeps_the_multiset_of_active_slots(gaussian_setup):
    _model, info, step = gaussian_setup
    theta = step.layout.pack(slot_prior_draw(info, np.random.default_rng(6), size=4))
    (perm, K), lq, lj = propose_permutation(theta, 3, np.random.default_rng(7))
    assert K == 3 and lq == 0.0 and lj == 0.0
    np.testing.assert_array_equal(perm[3], theta[3])
    assert sorted(map(tuple, perm[:3])) == sorted(map(tuple, theta[:3]))


def test_categorical_layout_and_birth_proposal():
    X, y, _ = simulate("S-D", n=80, random_seed=0)
    model, info = build_random_k_model(X, y, max_experts=3, family="categorical")
    step = ReversibleJump(info=info, model=model, rng=0, tune=False)
    ctx = step._context(1.0, 1.0)
    theta = step.layout.pack(slot_prior_draw(info, np.random.default_rng(0), size=3))
    mean, sd = birth_proposal(theta[:1], ctx)
    assert mean.shape == sd.shape == (step.layout.n_columns,)
    assert np.all(np.isfinite(mean)) and np.all(sd > 0)
    point = model.initial_point()
    point.update(slot_prior_draw(info, np.random.default_rng(1), size=3))
    slot_lp, _ = step._logp_fn(**{k: point[k] for k in step._inputs})
    mine = [slot_prior_logpdf(r, ctx) for r in step.layout.pack(point)]
    np.testing.assert_allclose(mine, slot_lp, atol=1e-6)  # rounded constant, as above
