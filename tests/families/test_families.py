"""The family protocol: one log density per family, equal to scipy's, on numpy, JAX and PyTensor;
exact user-unit maps; draws with the family's mean; the weighted M-step does not decrease Q."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import log_softmax

from bayesmoe.families import FAMILIES, NUMPY, Transform, get_family, jax_ops, pytensor_ops
from bayesmoe.inference.mle import mm_updates as mu

N, D, K, M = 9, 2, 3, 4


def _case(name, rng):
    """(canonical parameters, X, y, data) of a small random problem of a family."""
    X = rng.normal(size=(N, D))
    if name == "gaussian":
        canon = {
            "a": rng.normal(size=(D, K)),
            "b": rng.normal(size=K),
            "sigma2": rng.uniform(0.3, 2, K),
        }
        return canon, X, rng.normal(size=N), {}
    if name == "categorical":
        canon = {"a": rng.normal(size=(D, M, K)), "b": rng.normal(size=(M, K))}
        return canon, X, rng.integers(M, size=N), {}
    if name == "binomial":
        canon = {"a": rng.normal(size=(D, K)), "b": rng.normal(size=K)}
        trials = rng.integers(1, 12, size=N).astype(float)
        return canon, X, rng.binomial(trials.astype(int), 0.4), {"trials": trials}
    if name == "student-t":  # nu across the Stirling switch (20) and near the Gaussian limit
        canon = {
            "a": rng.normal(size=(D, K)),
            "b": rng.normal(size=K),
            "sigma2": rng.uniform(0.3, 2, K),
            "nu": np.array([0.8, 7.0, 300.0]),
        }
        return canon, X, 2.0 * rng.standard_t(2.0, size=N), {}
    canon = {"a": 0.3 * rng.normal(size=(D, K)), "b": rng.normal(size=K)}
    if name == "negbinomial":  # sizes 1/alpha across the Stirling switch (10)
        canon["alpha"] = np.array([2.5, 0.3, 0.004])
        y = rng.negative_binomial(2.0, 0.3, size=N)
        return canon, X, y, {"offset": 0.2 * rng.normal(size=N)}
    return canon, X, rng.poisson(3.0, size=N), {"offset": 0.2 * rng.normal(size=N)}


def _scipy_log_prob(name, canon, X, y, data):
    out = np.empty((N, K))
    for i in range(N):
        for k in range(K):
            if name == "gaussian":
                m = X[i] @ canon["a"][:, k] + canon["b"][k]
                out[i, k] = stats.norm(m, np.sqrt(canon["sigma2"][k])).logpdf(y[i])
            elif name == "categorical":
                logits = X[i] @ canon["a"][:, :, k] + canon["b"][:, k]
                out[i, k] = log_softmax(logits)[y[i]]
            elif name == "binomial":
                p = 1.0 / (1.0 + np.exp(-(X[i] @ canon["a"][:, k] + canon["b"][k])))
                out[i, k] = stats.binom(int(data["trials"][i]), p).logpmf(y[i])
            elif name == "student-t":
                m = X[i] @ canon["a"][:, k] + canon["b"][k]
                t = stats.t(canon["nu"][k], m, np.sqrt(canon["sigma2"][k]))
                out[i, k] = t.logpdf(y[i])
            elif name == "negbinomial":
                mu = np.exp(X[i] @ canon["a"][:, k] + canon["b"][k] + data["offset"][i])
                size = 1.0 / canon["alpha"][k]
                out[i, k] = stats.nbinom(size, size / (size + mu)).logpmf(y[i])
            else:
                rate = np.exp(X[i] @ canon["a"][:, k] + canon["b"][k] + data["offset"][i])
                out[i, k] = stats.poisson(rate).logpmf(y[i])
    return out


@pytest.mark.parametrize("name", FAMILIES)
def test_log_density_equals_scipy_on_every_backend(name):
    """The family's one definition, evaluated with numpy, jax.numpy and PyTensor, equals a
    plain loop over scipy's densities (rtol 1e-12: the same formulas, other rounding)."""
    import jax
    import pytensor.tensor as pt

    fam = get_family(name)
    canon, X, y, data = _case(name, np.random.default_rng(1))
    want = _scipy_log_prob(name, canon, X, y, data)
    np.testing.assert_allclose(fam.log_prob(canon, X, y, data=data), want, rtol=1e-12)
    with jax.enable_x64(True):
        got = fam.log_prob(canon, X, y, ops=jax_ops(), data=data)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    tens = {k: pt.as_tensor(v) for k, v in canon.items()}
    got = fam.log_prob(tens, X, pt.as_tensor(y), ops=pytensor_ops(), data=data).eval()
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_user_unit_map_is_exact(name):
    """The standardised density with the transform equals the user-unit density of the mapped
    parameters, and to_standard inverts to_user."""
    rng = np.random.default_rng(2)
    fam = get_family(name)
    canon, X, y, data = _case(name, rng)
    tr = Transform(
        rng.normal(size=D), rng.uniform(0.5, 2, D), 1.3, 2.5 if fam.standardizes_response else 1.0
    )
    if not fam.transforms_response:
        tr = Transform(tr.x_center, tr.x_scale)
    Xs = (X - tr.x_center) / tr.x_scale
    user = fam.to_user(np, canon, tr)
    std_side = fam.log_prob(canon, Xs, y, tr=tr, data=data)
    user_side = fam.log_prob(user, X, y, data=data)
    np.testing.assert_allclose(std_side, user_side, rtol=1e-12, atol=1e-12)
    back = fam.to_standard(user, tr)
    for k in canon:
        np.testing.assert_allclose(back[k], canon[k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", FAMILIES)
def test_free_parameters_round_trip(name):
    fam = get_family(name)
    canon, *_ = _case(name, np.random.default_rng(3))
    if fam.has_classes:  # the reference class's zeros are the canonical gauge
        canon = {k: v - v[..., -1:, :] for k, v in canon.items()}
    free = fam.free_from_canonical(canon)
    again = fam.canonical_from_free(NUMPY, free)
    for k in canon:
        np.testing.assert_allclose(again[k], canon[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert fam.n_params(D, M) == sum(np.size(v) for v in free.values()) // K


@pytest.mark.parametrize("name", ["gaussian", "poisson", "binomial", "negbinomial", "student-t"])
def test_draws_have_the_family_mean(name):
    """Mean of 20000 draws per (obs, expert) within 4.5 Monte Carlo standard errors of the
    family's mean (sd from the draws; Bonferroni over the N*K cells keeps the false-alarm
    rate below 1e-4)."""
    fam = get_family(name)
    canon, X, _, data = _case(name, np.random.default_rng(4))
    if name == "student-t":  # the mean exists (and the sd for the z-score) where nu > 2
        canon["nu"] = np.array([2.5, 7.0, 300.0])
    preds = fam.predictors(NUMPY, canon, X, Transform.identity(D), data)
    rng = np.random.default_rng(5)
    R = 20000
    mean = fam.mean(*preds)  # (N, K)
    z = np.empty((N, K))
    for j in range(K):  # draws of expert j at every observation
        k = np.full((R, N), j)
        draws = fam.draw(rng, k, *[np.broadcast_to(p, (R, N, K)) for p in preds])
        z[:, j] = (draws.mean(0) - mean[:, j]) / (draws.std(0, ddof=1) / np.sqrt(R))
    assert np.abs(z).max() < 4.5


def test_categorical_draws_have_the_class_probabilities():
    fam = get_family("categorical")
    canon, X, _, _ = _case("categorical", np.random.default_rng(6))
    (logits,) = fam.predictors(NUMPY, canon, X, Transform.identity(D))
    rng = np.random.default_rng(7)
    R = 20000
    k = np.zeros((R, N), dtype=int)
    draws = fam.draw(rng, k, np.broadcast_to(logits, (R, N, M, K)))
    p = fam.mean(logits)[:, :, 0]  # (N, M) of expert 0
    freq = (draws[..., None] == np.arange(M)).mean(0)
    se = np.sqrt(p * (1 - p) / R)
    assert np.abs((freq - p) / se).max() < 4.5


@pytest.mark.parametrize("name", FAMILIES)
def test_m_step_does_not_decrease_the_expected_complete_data_loglik(name):
    """Q(θ' | τ) >= Q(θ | τ) for the family's M-step (MM/generalised EM: monotone ascent)."""
    rng = np.random.default_rng(8)
    fam = get_family(name)
    n = 200
    X = rng.normal(size=(n, D))
    Xt = np.column_stack([np.ones(n), X])
    if name == "gaussian":
        y = rng.normal(size=n)
    elif name == "student-t":
        y = rng.standard_t(2.0, size=n)
    elif name == "categorical":
        y = rng.integers(M, size=n)
    elif name == "binomial":
        trials = rng.integers(1, 8, size=n)
        y = rng.binomial(trials, 1.0 / (1.0 + np.exp(-X[:, 0])))
    elif name == "negbinomial":
        y = rng.poisson(np.exp(0.5 + X[:, 0]) * rng.gamma(1.0, 1.0, size=n))
    else:
        y = rng.poisson(np.exp(0.5 + X[:, 0]))
    kw = {"trials": trials} if name == "binomial" else {}
    prob = mu.make_problem(name, Xt, Xt.copy(), y, K, M=M if fam.has_classes else 0, **kw)
    lay = prob.layout
    S = 4
    theta = 0.3 * rng.normal(size=(S, lay.size))
    tau = rng.dirichlet(np.ones(K), size=(S, n))
    for newton in (0, 2):
        p = lay.unpack(theta)
        q0 = (tau * mu.log_joint(prob, p)).sum((1, 2))
        p.update(fam.mm_step(prob, lay.experts(p), tau, newton))
        q1 = (tau * mu.log_joint(prob, p)).sum((1, 2))
        if newton == 0 or name != "categorical":  # MM, ECME and halved Newton steps ascend
            assert np.all(q1 >= q0 - 1e-9 * np.abs(q0)), (q0, q1)
        assert np.all(np.isfinite(q1))
