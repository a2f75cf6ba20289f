"""Reference p(K | y) for the random-K model on S-B (n = 40), independent of every sampler.

Usage::

    python benchmarks/rj_evidence.py [--ks 1 2 3 4] [--proposals 200000] [--samplers compiled]
                                     [--out benchmarks/results/rj_evidence.json]

The case of benchmarks/README.md ("Compiled reversible jump for experts with covariates"):
``simulate("S-B", n=40, random_seed=0)`` (two covariates), Gaussian experts, K_max = 4,
``experts_prior="poisson:1.0"`` (K − 1 ~ Poisson(1) truncated), the default prior set of the
random-K model (docs/math.md §2.3), which every slot atom follows i.i.d. on the standardised
scale::

    beta0_k ~ N(0, 3), beta1_k ~ N(0, 3² I)   (gate: i.i.d. per slot, no sum-to-zero,
                                               no reference expert, no ordering)
    a_k ~ N(0, 2² I), b_k ~ N(0, 2²), sigma_k ~ HalfNormal(1)

with x and y standardised by their mean and (population) sd. The padded target is
p(K) prod_k p(theta_k) L(y | theta_1..K) over *labelled* slots, so p(K | y) ∝ p(K) Z_K with
Z_K = ∫ prod_{k<=K} p(theta_k) L(y | theta) dtheta (no K! factor: the slots are labelled).

The log prior and the log-likelihood are written here with scipy.stats and numpy (and once in
jax.numpy for NUTS), not by calling the package; :func:`check_against_model` compares them with
the PyMC fixed-K model of the same atom prior (``build_random_k_model(fixed_experts=K)``) at a few
points: the difference must be the constant ``-n log sd(y)`` (the model's likelihood is in the
user's units of y, ours on the standardised scale).

Evidence per K:

- K = 1 (no gate): (a, b) integrated exactly (y_s ~ N(0, sigma² I + A Λ0⁻¹ Aᵀ)), sigma by
  adaptive quadrature on log sigma;
- K ≥ 2: importance sampling. Fixed-K posterior draws (``--source``: NUTS, i.e. numpyro on our
  own target from prior starts; the compiled sampler's within-K sweep at fixed K; or both, one
  mixture per source): NUTS chains stay in the fixed-K mode they start in at K ≥ 3, the compiled
  sweep moves between them, and an importance-sampling estimate is unbiased whatever its
  proposal (the source changes only its variance). A Gaussian mixture is fitted to the draws
  (value space: log sigma), each component turned into a multivariate t (df 5, covariance
  inflated 1.5x) and
  **symmetrised over the K! permutations of the experts** (the posterior is exactly symmetric),
  plus a defensive component, the prior itself (weight 0.1). Z_K is the mean importance weight;
  its standard error is the weights' sd / sqrt(N), and the ESS of the weights is reported. As a
  check, the bridge-sampling estimate (Meng & Wong's optimal bridge, iterated) from the same
  proposal and the symmetrised NUTS draws. The K = 1 importance-sampling estimate (a Gaussian
  fitted to NUTS draws of K = 1) checks the machinery against the exact value. A third
  estimator integrates every expert's (a, b, sigma) out exactly given the allocations
  (:func:`log_expert_evidence`) and samples (gate, allocations) from a kernel density of the
  draws' gates times their allocation probabilities (:class:`CollapsedProposal`).

Results and their reading: benchmarks/README.md, "Reference p(K | y) on S-B n = 40".
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time

import numpy as np
from scipy import integrate, stats
from scipy.special import logsumexp

K_MAX = 4
PRIOR_SD = {"beta0": 3.0, "beta1": 3.0, "a": 2.0, "b": 2.0, "sigma": 1.0}
N, D_X = 40, 2
P = 1 + D_X + D_X + 1 + 1  # per expert: beta0, beta1 (2), a (2), b, log sigma


def data():
    """S-B (n = 40, seed 0) standardised by mean and population sd (the model's standardiser,
    checked in :func:`check_against_model`).
    """
    from bayesmoe.data import simulate

    X, y, _ = simulate("S-B", n=N, random_seed=0)
    Xs = (X - X.mean(0)) / X.std(0)
    ys = (y - y.mean()) / y.std()
    return X, y, Xs, ys


def prior_pmf() -> np.ndarray:
    p = stats.poisson.pmf(np.arange(K_MAX), 1.0)
    return p / p.sum()


# ----- the target, written independently (numpy / scipy) ------------------------------------------
def unpack(theta):
    """theta (..., K, P) -> dict of blocks (..., K[, d])."""
    return {
        "beta0": theta[..., 0],
        "beta1": theta[..., 1 : 1 + D_X],
        "a": theta[..., 1 + D_X : 1 + 2 * D_X],
        "b": theta[..., 1 + 2 * D_X],
        "log_sigma": theta[..., 2 + 2 * D_X],
    }


def log_prior(theta):
    """Prior log density of theta (..., K, P) in value space (log sigma, with its Jacobian)."""
    p = unpack(theta)
    sig = np.exp(p["log_sigma"])
    lp = stats.norm.logpdf(p["beta0"], 0, PRIOR_SD["beta0"])
    lp = lp + stats.norm.logpdf(p["beta1"], 0, PRIOR_SD["beta1"]).sum(-1)
    lp = lp + stats.norm.logpdf(p["a"], 0, PRIOR_SD["a"]).sum(-1)
    lp = lp + stats.norm.logpdf(p["b"], 0, PRIOR_SD["b"])
    lp = lp + stats.halfnorm.logpdf(sig, scale=PRIOR_SD["sigma"]) + p["log_sigma"]
    return lp.sum(-1)


def log_lik(theta, Xs, ys):
    """Mixture log-likelihood on the standardised scale, theta (..., K, P) -> (...)."""
    p = unpack(theta)
    eta = np.einsum("nd,...kd->...nk", Xs, p["beta1"]) + p["beta0"][..., None, :]
    lw = eta - logsumexp(eta, axis=-1, keepdims=True)
    mu = np.einsum("nd,...kd->...nk", Xs, p["a"]) + p["b"][..., None, :]
    sig = np.exp(p["log_sigma"])[..., None, :]
    comp = stats.norm.logpdf(ys[:, None], mu, sig)
    return logsumexp(lw + comp, axis=-1).sum(-1)


def log_target(theta, Xs, ys):
    return log_prior(theta) + log_lik(theta, Xs, ys)


def prior_draw(rng, size, K):
    out = np.empty((size, K, P))
    out[..., 0] = rng.normal(0, PRIOR_SD["beta0"], (size, K))
    out[..., 1 : 1 + D_X] = rng.normal(0, PRIOR_SD["beta1"], (size, K, D_X))
    out[..., 1 + D_X : 1 + 2 * D_X] = rng.normal(0, PRIOR_SD["a"], (size, K, D_X))
    out[..., 1 + 2 * D_X] = rng.normal(0, PRIOR_SD["b"], (size, K))
    out[..., 2 + 2 * D_X] = np.log(np.abs(rng.normal(0, PRIOR_SD["sigma"], (size, K))))
    return out


def check_against_model(X, y, Xs, ys, rng, points=4) -> dict:
    """Our log target minus the PyMC fixed-K model's logp (value space) at prior draws, per K:
    must be the constant -n log sd(y) (user-units likelihood).
    """
    from bayesmoe.models.random_k import build_random_k_model

    out = {}
    for K in range(1, K_MAX + 1):
        model, spec = build_random_k_model(X, y, max_experts=K_MAX, fixed_experts=K)
        st = spec.standardizer
        assert np.allclose(st.x_center, X.mean(0)) and np.allclose(st.x_scale, X.std(0))
        assert np.isclose(st.y_center, y.mean()) and np.isclose(st.y_scale, y.std())
        logp = model.compile_logp()
        diffs = []
        for th in prior_draw(rng, points, K):
            p = unpack(th)
            pt = {
                "beta0_std": p["beta0"],
                "beta1_std": p["beta1"].T,
                "a_std": p["a"].T,
                "b_std": p["b"],
                "sigma_std_log__": p["log_sigma"],
            }
            diffs.append(float(log_target(th, Xs, ys)) - float(logp(pt)))
        out[K] = diffs
        want = -N * math.log(y.std())
        assert np.allclose(diffs, -want, atol=1e-8), (K, diffs, want)
    return out


# ----- K = 1 exactly ---------------------------------------------------------------------------
def log_z1(Xs, ys) -> float:
    """log Z_1: (a, b) integrated out, sigma by quadrature on log sigma."""
    A = np.column_stack([Xs, np.ones(N)])
    prior_cov = np.diag([PRIOR_SD["a"] ** 2] * D_X + [PRIOR_SD["b"] ** 2])
    AVA = A @ prior_cov @ A.T

    def log_integrand(ls):
        s2 = math.exp(2 * ls)
        marg = stats.multivariate_normal.logpdf(ys, np.zeros(N), s2 * np.eye(N) + AVA)
        return marg + stats.halfnorm.logpdf(math.exp(ls), scale=PRIOR_SD["sigma"]) + ls

    grid = np.linspace(-6, 3, 901)
    vals = np.array([log_integrand(v) for v in grid])
    peak = vals.max()
    assert vals[0] < peak - 60 and vals[-1] < peak - 60  # the ends hold nothing
    f = lambda ls: math.exp(log_integrand(ls) - peak)  # noqa: E731
    value, _err = integrate.quad(f, -6, 3, points=[grid[vals.argmax()]], limit=400, epsabs=0,
                                epsrel=1e-12)  # fmt: skip
    return peak + math.log(value)


# ----- NUTS on our own target (numpyro) --------------------------------------------------------
def nuts_draws(K, Xs, ys, chains, warmup, draws, seed):
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp as jlse
    from jax.scipy.stats import norm as jnorm
    from numpyro.infer import MCMC, NUTS

    Xj, yj = jnp.asarray(Xs), jnp.asarray(ys)

    def lt(flat):
        th = flat.reshape(K, P)
        p = unpack(th)
        sig = jnp.exp(p["log_sigma"])
        lp = jnorm.logpdf(p["beta0"], 0, PRIOR_SD["beta0"]).sum()
        lp += jnorm.logpdf(p["beta1"], 0, PRIOR_SD["beta1"]).sum()
        lp += (
            jnorm.logpdf(p["a"], 0, PRIOR_SD["a"]).sum()
            + jnorm.logpdf(p["b"], 0, PRIOR_SD["b"]).sum()
        )
        lp += (math.log(2.0) + jnorm.logpdf(sig, 0, PRIOR_SD["sigma"]) + p["log_sigma"]).sum()
        eta = Xj @ p["beta1"].T + p["beta0"]
        lw = eta - jlse(eta, axis=1, keepdims=True)
        mu = Xj @ p["a"].T + p["b"]
        comp = jnorm.logpdf(yj[:, None], mu, sig)
        return lp + jlse(lw + comp, axis=1).sum()

    rng = np.random.default_rng(seed)
    init = prior_draw(rng, chains, K).reshape(chains, K * P)
    # start the noise sds at 0.5 (prior draws near 0 start NUTS in a funnel)
    init.reshape(chains, K, P)[..., -1] = math.log(0.5)
    init.reshape(chains, K, P)[..., 0] *= 0.3
    init.reshape(chains, K, P)[..., 1 : 1 + D_X] *= 0.3
    check = np.array([float(lt(jnp.asarray(v))) for v in init[:2]])
    ours = log_target(init[:2].reshape(2, K, P), Xs, ys)
    assert np.allclose(check, ours, atol=1e-8), (check, ours)
    mcmc = MCMC(
        NUTS(potential_fn=lambda f: -lt(f), target_accept_prob=0.9),
        num_warmup=warmup,
        num_samples=draws,
        num_chains=chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.asarray(init))
    s = np.asarray(mcmc.get_samples(group_by_chain=True))  # (chains, draws, K P)
    return s.reshape(chains, draws, K, P)


def compiled_fixed_k_draws(K, X, y, chains, draws, seed):
    """Draws at fixed K from the compiled sampler's within-K sweep (the prior of K all on K, so
    every jump is rejected), as (chains, draws, K, P) in our layout: a second source of
    proposals (the importance weights use our own target, so the estimate stays independent
    of the sampler; only its efficiency depends on where the proposal came from).
    """
    from bayesmoe.inference.rjmcmc import sample_random_k

    pmf = np.zeros(K_MAX)
    pmf[K - 1] = 1.0
    tr = sample_random_k(X, y, max_experts=K_MAX, experts_prior=pmf, draws=draws, tune=500,
                         chains=chains, random_seed=seed, sampler="compiled")  # fmt: skip
    post = tr["posterior"]
    assert (post["n_experts"].values == K).all()
    sl = {"expert": slice(0, K)}
    out = np.empty((chains, draws, K, P))
    out[..., 0] = post["beta0_std"].isel(sl).values
    out[..., 1 : 1 + D_X] = post["beta1_std"].isel(sl).transpose(..., "gate_feature").values
    out[..., 1 + D_X : 1 + 2 * D_X] = post["a_std"].isel(sl).transpose(..., "feature").values
    out[..., 1 + 2 * D_X] = post["b_std"].isel(sl).values
    out[..., 2 + 2 * D_X] = np.log(post["sigma_std"].isel(sl).values)
    return out


# ----- importance sampling with a symmetrised t mixture + the prior -------------------------------
class Proposal:
    def __init__(self, sources, K, n_components, rng, df=5.0, inflate=1.5, prior_weight=0.1):
        from sklearn.mixture import GaussianMixture

        self.K, self.df, self.prior_weight = K, df, prior_weight
        self.perms = [np.array(p) for p in itertools.permutations(range(K))]
        means, chols, log_w = [], [], []
        for draws in sources:  # one Gaussian mixture per source of draws, mixed equally
            flat = draws.reshape(-1, K * P)
            seed = int(rng.integers(2**31))
            gm = GaussianMixture(
                n_components, covariance_type="full", reg_covar=1e-6, random_state=seed, n_init=2
            ).fit(flat)
            means.append(gm.means_)
            chols.append(np.linalg.cholesky(gm.covariances_ * inflate))
            log_w.append(np.log(gm.weights_) - math.log(len(sources)))
        self.means, self.chols = np.concatenate(means), np.concatenate(chols)
        self.log_w = np.concatenate(log_w) + math.log(1 - prior_weight) - math.log(len(self.perms))

    def _permute(self, flat, perm):
        return flat.reshape(-1, self.K, P)[:, perm].reshape(-1, self.K * P)

    def logpdf(self, theta):
        """log q of theta (m, K, P)."""
        flat = theta.reshape(-1, self.K * P)
        d = self.K * P
        terms = []
        for perm in self.perms:
            x = self._permute(flat, np.argsort(perm))  # component permuted by perm
            for m in range(self.means.shape[0]):
                L = self.chols[m]
                z = np.linalg.solve(L, (x - self.means[m]).T).T
                q = (z * z).sum(1)
                logdet = np.log(np.diag(L)).sum()
                lt = (math.lgamma((self.df + d) / 2) - math.lgamma(self.df / 2)
                      - 0.5 * d * math.log(self.df * math.pi) - logdet
                      - 0.5 * (self.df + d) * np.log1p(q / self.df))  # fmt: skip
                terms.append(self.log_w[m] + lt)
        terms.append(math.log(self.prior_weight) + log_prior(theta))
        return logsumexp(np.stack(terms), axis=0)

    def draw(self, rng, size):
        n_prior = rng.binomial(size, self.prior_weight)
        out = [prior_draw(rng, n_prior, self.K).reshape(n_prior, -1)]
        w = np.exp(self.log_w - logsumexp(self.log_w))
        counts = rng.multinomial(size - n_prior, w)
        d = self.K * P
        for m, c in enumerate(counts):
            if c == 0:
                continue
            g = rng.chisquare(self.df, c) / self.df
            z = rng.standard_normal((c, d)) @ self.chols[m].T / np.sqrt(g)[:, None]
            x = self.means[m] + z
            perm = self.perms[rng.integers(len(self.perms))]
            out.append(self._permute(x, perm))
        x = np.concatenate(out)
        return x[rng.permutation(len(x))].reshape(-1, self.K, P)


def importance(prop, Xs, ys, rng, n, chunk=20000):
    logw, lls = [], []
    for start in range(0, n, chunk):
        th = prop.draw(rng, min(chunk, n - start))
        ll = log_lik(th, Xs, ys)
        lls.append(ll)
        logw.append(log_prior(th) + ll - prop.logpdf(th))
    logw, lls = np.concatenate(logw), np.concatenate(lls)
    m = logw.max()
    w = np.exp(logw - m)
    snis = float((w * lls).sum() / w.sum())  # E[log L | y] under the target itself
    mean = w.mean()
    se_rel = w.std(ddof=1) / math.sqrt(n) / mean
    ess = w.sum() ** 2 / (w * w).sum()
    return {
        "log_z": float(m + math.log(mean)),
        "se": float(se_rel),  # se of log Z (delta method)
        "ess": float(ess),
        "n": n,
        "max_weight_share": float(w.max() / w.sum()),
        "posterior_mean_loglik": snis,
    }, logw


def bridge(prop, post, Xs, ys, logw_prop, rng):
    """Meng & Wong's optimal bridge from proposal draws (their log weights) and posterior draws
    (symmetrised by a random permutation each), iterated to a fixed point.
    """
    K = prop.K
    flat = post.reshape(-1, K, P)
    perms = rng.integers(len(prop.perms), size=len(flat))
    sym = np.stack([flat[i][prop.perms[j]] for i, j in enumerate(perms)])
    l2 = log_target(sym, Xs, ys) - prop.logpdf(sym)  # log p~/q at posterior draws
    l1 = logw_prop
    n1, n2 = len(l1), len(l2)
    s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
    log_z = float(logsumexp(l1) - math.log(n1))
    for _ in range(200):
        num = logsumexp(l1 - np.logaddexp(math.log(s1) + l1, math.log(s2) + log_z)) - math.log(n1)
        den = logsumexp(-np.logaddexp(math.log(s1) + l2, math.log(s2) + log_z)) - math.log(n2)
        new = float(num - den)
        if abs(new - log_z) < 1e-10:
            break
        log_z = new
    return log_z


# ----- importance sampling with the experts integrated out given the allocations -----------------
V_GRID = np.linspace(-12.0, 3.0, 301)  # log sigma quadrature grid of the collapsed expert evidence


def log_expert_evidence(onehot, Xs, ys):
    """log m_k(z) = log ∫ p(a_k, b_k, sigma_k) prod_{i: z_i = k} N(y_i | a_k x_i + b_k, sigma_k²)
    for every proposal and expert, onehot (N, n, K) -> (N, K): (a, b) exactly (their Normal prior
    is conjugate), sigma by the trapezoid rule on log sigma over V_GRID plus the analytic tail
    below it (an expert owning at most 3 rows fits them exactly, and its integrand falls like
    sigma = e^v there: the funnel the continuous parameterisation has).
    """
    A = np.column_stack([Xs, np.ones(N)])
    lam = np.array([PRIOR_SD["a"] ** -2] * D_X + [PRIOR_SD["b"] ** -2])
    B = A / np.sqrt(lam)  # A Λ0^(-1/2)
    BtB = np.einsum("snk,ni,nj->skij", onehot, B, B)
    Bty = np.einsum("snk,ni,n->ski", onehot, B, ys)
    yty = np.einsum("snk,n->sk", onehot, ys * ys)
    n_k = onehot.sum(1)
    e, U = np.linalg.eigh(BtB)
    w = np.einsum("skij,ski->skj", U, Bty)
    pos = e > 1e-10 * np.maximum(e.max(-1, keepdims=True), 1e-300)
    e_safe = np.where(pos, e, 1.0)
    w2 = np.where(pos, w * w, 0.0)
    y_perp = np.maximum(yty - (w2 / e_safe).sum(-1), 0.0)  # residual of the exact projection
    tau = np.exp(-2.0 * V_GRID)[:, None]  # (G, 1)
    ee, ww, pp = e_safe[..., None, :], w2[..., None, :], pos[..., None, :]  # (N, K, 1, 4)
    logdet = np.where(pp, np.log1p(tau * ee), 0.0).sum(-1)  # (N, K, G)
    quad = tau[:, 0] * y_perp[..., None] + np.where(pp, tau * ww / (ee * (1 + tau * ee)), 0).sum(-1)
    nk = n_k[..., None]
    ll = -0.5 * nk * math.log(2 * math.pi) - nk * V_GRID - 0.5 * logdet - 0.5 * quad
    lf = ll + stats.halfnorm.logpdf(np.exp(V_GRID), scale=PRIOR_SD["sigma"]) + V_GRID
    dv = V_GRID[1] - V_GRID[0]
    trap = logsumexp(lf, axis=-1, b=np.r_[0.5, np.ones(V_GRID.size - 2), 0.5]) + math.log(dv)
    slope = (lf[..., 1] - lf[..., 0]) / dv  # tail below the grid: f(v0) e^(slope (v - v0))
    tail = np.where(slope > 0.5, lf[..., 0] - np.log(np.maximum(slope, 0.5)), -np.inf)
    return np.logaddexp(trap, tail)


def responsibilities(theta, Xs, ys, eps):
    """Per draw (M, K, P): log of (1 - eps) p(z_i = k | theta, y) + eps / K, (M, n, K)."""
    p = unpack(theta)
    eta = np.einsum("nd,mkd->mnk", Xs, p["beta1"]) + p["beta0"][:, None, :]
    lw = eta - logsumexp(eta, axis=-1, keepdims=True)
    mu = np.einsum("nd,mkd->mnk", Xs, p["a"]) + p["b"][:, None, :]
    lp = lw + stats.norm.logpdf(ys[:, None], mu, np.exp(p["log_sigma"])[:, None, :])
    r = np.exp(lp - logsumexp(lp, axis=-1, keepdims=True))
    return np.log((1 - eps) * r + eps / theta.shape[1])


class CollapsedProposal:
    """q(gate, z) = mean over stored draws c (all K! labellings of M NUTS draws) of
    t_5(gate; gate_c, h² Σ) prod_i r_c(z_i): a kernel density of the gate times the draw's
    allocation probabilities (smoothed).
    """

    def __init__(self, post, K, Xs, ys, M, h=0.6, eps=0.05, df=5.0):
        chains = post.shape[0]
        per = max(1, M // chains)
        pick = post[:, :: max(1, post.shape[1] // per)][:, :per].reshape(-1, K, P)
        gates = post[..., : 1 + D_X].reshape(chains, post.shape[1], -1)
        cov = np.mean([np.cov(g.T) for g in gates], axis=0)  # within-chain (one labelling)
        perms = [np.array(p) for p in itertools.permutations(range(K))]
        logr = responsibilities(pick, Xs, ys, eps)  # (M, n, K)
        G = pick[..., : 1 + D_X]
        self.centres = np.concatenate([G[:, p].reshape(len(pick), -1) for p in perms])
        self.logr = np.concatenate([logr[:, :, p] for p in perms])  # (M', n, K)
        self.L = np.linalg.cholesky(h * h * cov + 1e-9 * np.eye(cov.shape[0]))
        self.K, self.df = K, df
        self.wc = np.linalg.solve(self.L, self.centres.T).T  # whitened centres

    def draw(self, rng, size):
        c = rng.integers(len(self.centres), size=size)
        d = self.centres.shape[1]
        g = rng.chisquare(self.df, size) / self.df
        gate = self.centres[c] + (rng.standard_normal((size, d)) @ self.L.T) / np.sqrt(g)[:, None]
        u = rng.uniform(size=(size, N, 1))
        cum = np.cumsum(np.exp(self.logr[c]), axis=-1)
        z = np.minimum((u > cum).sum(-1), self.K - 1)
        return gate, z

    def logpdf(self, gate, z):
        d = self.centres.shape[1]
        wg = np.linalg.solve(self.L, gate.T).T
        d2 = (wg * wg).sum(1)[:, None] + (self.wc * self.wc).sum(1)[None] - 2 * wg @ self.wc.T
        d2 = np.maximum(d2, 0.0)
        lt = (math.lgamma((self.df + d) / 2) - math.lgamma(self.df / 2)
              - 0.5 * d * math.log(self.df * math.pi) - np.log(np.diag(self.L)).sum()
              - 0.5 * (self.df + d) * np.log1p(d2 / self.df))  # fmt: skip
        onehot = (z[..., None] == np.arange(self.K)).reshape(len(z), -1).astype(float)
        lz = onehot @ self.logr.reshape(len(self.logr), -1).T
        return logsumexp(lt + lz, axis=1) - math.log(len(self.centres))


def collapsed_importance(prop, Xs, ys, rng, n, chunk=2000):
    """Z_K = E_q[p(gate) prod_i g_{z_i}(x_i) prod_k m_k(z) / q(gate, z)]."""
    K = prop.K
    logw = []
    for start in range(0, n, chunk):
        gate, z = prop.draw(rng, min(chunk, n - start))
        G = gate.reshape(-1, K, 1 + D_X)
        lp = stats.norm.logpdf(G[..., 0], 0, PRIOR_SD["beta0"]).sum(-1)
        lp = lp + stats.norm.logpdf(G[..., 1:], 0, PRIOR_SD["beta1"]).sum((-1, -2))
        eta = np.einsum("nd,skd->snk", Xs, G[..., 1:]) + G[..., 0][:, None, :]
        lw = eta - logsumexp(eta, axis=-1, keepdims=True)
        lg = np.take_along_axis(lw, z[..., None], -1)[..., 0].sum(1)
        onehot = (z[..., None] == np.arange(K)).astype(float)
        lm = log_expert_evidence(onehot, Xs, ys).sum(1)
        logw.append(lp + lg + lm - prop.logpdf(gate, z))
    logw = np.concatenate(logw)
    m = logw.max()
    w = np.exp(logw - m)
    return {
        "log_z": float(m + math.log(w.mean())),
        "se": float(w.std(ddof=1) / math.sqrt(n) / w.mean()),
        "ess": float(w.sum() ** 2 / (w * w).sum()),
        "n": n,
        "max_weight_share": float(w.max() / w.sum()),
        "batch_log_z": [float(logsumexp(b) - math.log(b.size)) for b in np.array_split(logw, 10)],
    }, logw


def sampler_pk(sampler, X, y, draws, tune, chains, seed, cores=2):
    import arviz as az

    from bayesmoe.inference.rjmcmc import k_posterior, sample_random_k

    t0 = time.perf_counter()
    kw = dict(max_experts=K_MAX, experts_prior="poisson:1.0", random_seed=seed)
    if sampler == "step":
        kw.update(cores=cores, step_kwargs={"moves_per_step": 5})
    tr = sample_random_k(X, y, draws=draws, tune=tune, chains=chains, sampler=sampler, **kw)
    seconds = time.perf_counter() - t0
    k = tr["posterior"]["n_experts"].values
    p = k_posterior(tr).values
    ess = [float(az.ess((k == j).astype(float))) if 0 < p[j - 1] < 1 else float(k.size)
           for j in range(1, K_MAX + 1)]  # fmt: skip
    se = np.sqrt(p * (1 - p) / np.asarray(ess))
    per_chain = [np.bincount(c, minlength=K_MAX + 1)[1:] / c.size for c in k]
    return {
        "p": p.tolist(),
        "se": se.tolist(),
        "ess_indicator": ess,
        "per_chain": [c.tolist() for c in per_chain],
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "seconds": seconds,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--proposals", type=int, default=200_000)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1500)
    ap.add_argument("--components", type=int, default=6)
    ap.add_argument("--collapsed", type=int, default=100_000, help="proposals of the collapsed IS")
    ap.add_argument("--kde-draws", type=int, default=600, help="NUTS draws in its proposal")
    ap.add_argument("--skip-continuous", action="store_true", help="collapsed IS only")
    ap.add_argument("--source", choices=["nuts", "compiled", "both"], default="both",
                    help="draws the proposals are fitted to")  # fmt: skip
    ap.add_argument("--df", type=float, default=5.0)
    ap.add_argument("--inflate", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samplers", nargs="*", default=[], choices=["compiled", "step"])
    ap.add_argument("--sampler-draws", type=int, default=20000)
    ap.add_argument("--sampler-seed", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    X, y, Xs, ys = data()
    t_start = time.perf_counter()
    res = {"load_before": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                       time.gmtime())}  # fmt: skip
    res["model_check"] = check_against_model(X, y, Xs, ys, rng)
    res["log_z1_exact"] = log_z1(Xs, ys)
    print("log Z_1 exact", res["log_z1_exact"], flush=True)
    per_k = {}
    for K in args.ks:
        t0 = time.perf_counter()
        sources = []
        if args.source in ("nuts", "both"):
            sources.append(
                nuts_draws(K, Xs, ys, args.chains, args.warmup, args.draws, args.seed + K)
            )
        if args.source in ("compiled", "both"):
            sources.append(compiled_fixed_k_draws(K, X, y, args.chains, args.draws, args.seed + K))
        post = np.concatenate(sources)  # (chains of every source, draws, K, P)
        ll = log_lik(post, Xs, ys)
        est = {}
        if not args.skip_continuous:
            half = post.shape[1] // 2  # fit on the first half of every chain, bridge on the second
            prop = Proposal(
                [src[:, :half] for src in sources],
                K,
                1 if K == 1 else args.components,
                rng,
                args.df,
                args.inflate,
            )
            est, logw = importance(prop, Xs, ys, rng, args.proposals)
            est["bridge_log_z"] = bridge(prop, post[:, half::2], Xs, ys, logw, rng)
            batches = np.array_split(logw, 10)
            est["batch_log_z"] = [float(logsumexp(b) - math.log(b.size)) for b in batches]
        m = min(args.kde_draws, 6000 // math.factorial(K))  # at most 6000 kernels
        cprop = CollapsedProposal(post, K, Xs, ys, m)
        est["collapsed"], _ = collapsed_importance(cprop, Xs, ys, rng, args.collapsed)
        est["collapsed"]["kde_draws"] = m
        est["chain_mean_loglik"] = ll.mean(1).round(3).tolist()  # NUTS chains first
        est["chain_min_log_sigma_median"] = np.median(post[..., -1].min(-1), 1).round(3).tolist()
        est["seconds"] = time.perf_counter() - t0
        per_k[K] = est
        print(K, json.dumps(est), flush=True)
    res["per_k"] = per_k
    if set(range(2, K_MAX + 1)) <= set(per_k):
        log_z = np.array(
            [res["log_z1_exact"]] + [per_k[K]["collapsed"]["log_z"] for K in range(2, K_MAX + 1)]
        )
        se = np.array([0.0] + [per_k[K]["collapsed"]["se"] for K in range(2, K_MAX + 1)])
        lp = np.log(prior_pmf()) + log_z
        pk = np.exp(lp - logsumexp(lp))
        # delta method: d p_j / d log Z_k = p_j (1[j = k] - p_k), independent log Z errors
        J = np.diag(pk) - np.outer(pk, pk)
        pk_se = np.sqrt((J**2 * se**2).sum(1))
        res["reference"] = {"p": pk.tolist(), "se": pk_se.tolist(), "log_z": log_z.tolist(),
                            "log_z_se": se.tolist()}  # fmt: skip
        print("reference p(K | y)", pk.round(4), "se", pk_se.round(4), flush=True)
    for s in args.samplers:
        res[s] = sampler_pk(s, X, y, args.sampler_draws, 1000, 2, args.sampler_seed)
        print(s, json.dumps(res[s]), flush=True)
        if "reference" in res:
            ref = res["reference"]
            z = (np.array(res[s]["p"]) - ref["p"]) / np.hypot(res[s]["se"], ref["se"])
            res[s]["z_vs_reference"] = z.tolist()
            print(s, "z", z.round(2), flush=True)
    res["seconds"] = time.perf_counter() - t_start
    res["load_after"] = os.getloadavg()[0]
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
