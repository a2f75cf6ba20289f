"""Compiled reversible jump for experts with covariates (JAX): within-K sweeps, jumps between K.

The padded target of the step method (docs/math.md §3.1, :mod:`bayesmoe.inference.rjmcmc.step`)
under the default prior set,

    pi(K, theta) ∝ p(K) prod_{k < K_max} p(theta_k) L(y | theta_{0..K-1}),

with the slot rows ``theta_k`` of :class:`~bayesmoe.inference.rjmcmc.moves.SlotLayout` (value
space, standardised scale: gate intercept, gate slopes, the family's expert parameters, positive
ones on the log scale). The log-likelihood is the family's own density
(:meth:`bayesmoe.families.base.Family.log_prob` with :func:`bayesmoe.families.jax_ops`) under the
softmax gate of the active slots. One draw is ``sweeps_per_step`` rounds (default 4) of:

1. a within-K sweep on the data-augmented target (the allocations z_i drawn from their full
   conditional and discarded after the sweep, so the kernel leaves the padded target invariant):

   - z_i | theta, K: one inverse-CDF draw per observation among the active experts;
   - the gate | z by Hamiltonian Monte Carlo: ``leapfrog_steps`` (default 6) leapfrog steps
     (step size jittered uniformly by ±20 %) with the diagonal metric of the prior's precision
     plus the bound ``n_k / 4`` on the logistic likelihood's (z is fixed within the block, so a
     metric that depends on it is valid), Metropolis-corrected;
   - the experts | z: for Gaussian experts ``tau_k = sigma_k^-2`` with ``(a_k, b_k)``
     integrated out (random-walk Metropolis on log tau_k under p(tau_k | z), the marginal
     likelihood of the allocated rows from their sums by Woodbury, times the HalfNormal prior
     of sigma_k), then the conjugate Normal draw of ``(a_k, b_k)`` given tau_k; for other
     families HMC as for the gate, the metric from the prior and ``n_k / 4``. Inactive slots
     (n_k = 0) move under their prior.

   [choice] Integrating (a_k, b_k) out for the noise: alternating (a_k, b_k) | sigma_k and
   sigma_k | (a_k, b_k) (with an independence step for tau_k from a Gamma proposal) left an
   expert that owned two rows at sigma_k ~ 0.001 for whole runs (S-B n = 40 at fixed K = 2: the
   smaller noise sd averaged 0.0014 against NUTS's 0.64), a funnel the joint update avoids.

   Both HMC step sizes are adapted during tuning by dual averaging (Hoffman & Gelman 2014,
   target acceptance 0.75) and fixed after it;
2. ``moves_per_step`` (default 5) rounds of (a uniform permutation of the active slots, one
   trans-dimensional move) on the marginal target (no z), with the step method's ratio:

   - birth (death): the new slot is a draw of the slot prior (``birth_prior_mix = 1`` of the
     step method), so ``log q`` cancels the slot's prior factor in the active target; the
     reverse death removes the last active slot (a uniform choice after the permutation) and
     redraws it from the prior;
   - split (merge): :func:`~bayesmoe.inference.rjmcmc.moves.split_map` — ``u ~ Beta(a, a)``
     shares the gate weight ``exp(beta0)``, ``delta ~ N(0, diag(s^2))`` separates every other
     coordinate keeping the weighted mean, ``|J| = 1 / (u (1 - u))``; ``s`` the step method's
     ``DEFAULT_SPLIT_SD`` per prior group.

[choice] HMC on the marginal padded target with a unit metric was tried first: on mcycle the
step size settled at 0.006 (an expert of small noise has posterior sds of that size, the others
of 0.1-0.3, and slot labels permute, so no fixed metric fits), the chains disagreed on p(K | y)
and the ESS of K was 7-16 per 4000 draws. Conditioning on z gives each block a metric of its
own scale and the Gaussian experts an exact draw; ESS of K 1600 per 4000 draws.

[choice] Prior births by default: a jump costs one likelihood evaluation, so many cheap jumps
replace few good ones (``birth="anchors"``, :mod:`.compiled_births`: no faster on iris2).

Chains run one block per CPU device (``shard_map``; ``vmap`` within a block); iteration i uses
the key ``fold_in(chain key, i)``, so a fixed seed reproduces the draws whatever the chunking.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bayesmoe.inference.rjmcmc import compiled_births as cb
from bayesmoe.inference.rjmcmc.moves import MOVES, SlotLayout
from bayesmoe.inference.rjmcmc.step import DEFAULT_SPLIT_SD

__all__ = [
    "CHUNK",
    "COVARIATE_FAMILIES",
    "COVARIATE_OPTIONS",
    "CovariateSettings",
    "covariates_eligible",
    "run_covariates",
    "soften_starts",
]

_LOG_2PI = math.log(2.0 * math.pi)
#: families whose compiled sampler is tested (prior recovery, agreement with the step method)
COVARIATE_FAMILIES = ("gaussian", "categorical")
#: ``step_kwargs`` the compiled covariate sampler takes
COVARIATE_OPTIONS = (
    "moves_per_step",
    "sweeps_per_step",
    "leapfrog_steps",
    "p_birth_death",
    "split_sd",
    "split_beta",
    "birth",
    "birth_prior_mix",
)
#: iterations per call of the compiled program
CHUNK = 100
_TARGET_ACCEPT = 0.75
_TAU_STEPS = 5  # random-walk steps on each Gaussian expert's log precision per sweep


class CovariateSettings(NamedTuple):
    """Settings of the compiled covariate sampler (the static ones shape the program)."""

    k_max: int
    moves_per_step: int = 5
    sweeps_per_step: int = 4
    leapfrog_steps: int = 6
    p_birth_death: float = 0.5
    split_beta: float = 2.0
    split_sd: tuple = ()  # per prior group overrides of DEFAULT_SPLIT_SD, as (group, sd) pairs
    #: the birth kernel (:data:`~bayesmoe.inference.rjmcmc.compiled_births.BIRTHS`): the slot
    #: prior, or the anchor-cell mixture of categorical experts with this weight on the prior
    birth: str = "prior"
    birth_prior_mix: float = 0.5
    #: test hooks (must-fail twins), never set in use: drop the split/merge Jacobian, or the
    #: birth/death proposal density
    drop_split_jacobian: bool = False
    drop_birth_density: bool = False

    def _static(self) -> dict:
        return {
            "k_max": self.k_max,
            "moves_per_step": self.moves_per_step,
            "sweeps_per_step": self.sweeps_per_step,
            "leapfrog_steps": self.leapfrog_steps,
            "birth": self.birth,
            "beta_order": int(a) if (a := float(self.split_beta)).is_integer() and a <= 16 else 0,
        }


def covariates_eligible(info) -> bool:
    """True for the models this sampler covers: a random K, at least one expert covariate, the
    default prior set (Normal and HalfNormal slot atoms, no hyperparameters), experts of
    :data:`COVARIATE_FAMILIES`.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.compiled_covariates import covariates_eligible
    >>> X, y, _ = simulate("S-B", n=30, random_seed=0)
    >>> covariates_eligible(build_random_k_model(X, y, max_experts=3)[1])
    True
    >>> covariates_eligible(build_random_k_model(X, y, max_experts=3,
    ...                                          priors="richardson-green")[1])
    False
    """
    pri = info.priors
    return (
        info.prior_pmf is not None
        and info.Xs.shape[1] >= 1
        and not pri.hierarchical
        and not pri.dirichlet_weights
        and info.family in COVARIATE_FAMILIES
    )


def _columns(info):
    """Per column of the slot matrix: prior sd, positive (log-HalfNormal) flag, split sd."""
    from bayesmoe.families import get_family

    layout = SlotLayout(tuple(info.slot_vars), tuple(info.slot_groups))
    groups = layout.column_groups
    fam = get_family(info.family)
    positive_groups = {p.prior for p in fam.params if p.positive}
    prior_sd = np.array([getattr(info.priors, g) for g in groups], dtype=np.float64)
    positive = np.array([g in positive_groups for g in groups], dtype=np.float64)
    return layout, prior_sd, positive


def _kernel(settings: CovariateSettings, layout: SlotLayout, family: str, n_gate: int):
    """The per-chain iteration (a closure over the static settings and the layout)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln, logsumexp

    from bayesmoe.families import Transform, get_family, jax_ops

    ops = jax_ops()
    fam = get_family(family)
    K_max = settings.k_max
    idx = jnp.arange(K_max)
    L = settings.leapfrog_steps
    g = 1 + n_gate  # the gate's columns: intercept and slopes

    def slot_logp(rows, c, start=0):
        """Prior log density of each row (..., D) -> (...), value space with Jacobians (of the
        columns from ``start`` on, when ``rows`` holds only those).
        """
        s, pos = c["prior_sd"][start:], c["positive"][start:]
        normal = -0.5 * (rows / s) ** 2 - jnp.log(s) - 0.5 * _LOG_2PI
        half = 0.5 * math.log(2.0 / math.pi) - jnp.log(s) - 0.5 * jnp.exp(2.0 * rows) / s**2 + rows
        return jnp.where(pos > 0, half, normal).sum(-1)

    def prior_row(z, c):
        """A slot-prior draw from standard normals ``z`` (D,)."""
        v = c["prior_sd"] * z
        return jnp.where(c["positive"] > 0, jnp.log(jnp.abs(v)), v)

    def components(theta, c):
        """Log p_k(y_i | x_i) of every slot, (n, K_max): the family's density."""
        p = layout.unpack(theta)
        free = {}
        for prm in fam.params:
            name = f"{prm.name}_std"
            free[name] = jnp.exp(p[f"{name}_log__"]) if prm.positive else p[name]
        canon = fam.canonical_from_free(ops, free)
        tr = Transform.identity(c["Xs"].shape[1])
        return fam.log_prob(canon, c["Xs"], c["ys"], tr=tr, ops=ops, data=c["data"])

    def gate_eta(theta, c):
        """The tempered gate logits of every slot, (n, K_max)."""
        p = layout.unpack(theta)
        return (c["Zs"] @ p["beta1_std"] + p["beta0_std"]) / c["temperature"]

    def loglik(theta, K, c):
        eta = gate_eta(theta, c)
        mask = idx < K
        lw = jnp.where(mask, eta, -jnp.inf)
        lw = lw - logsumexp(lw, axis=1, keepdims=True)
        comp = components(theta, c)
        ll = logsumexp(jnp.where(mask, lw + comp, -jnp.inf), axis=1).sum()
        return jnp.where(c["lik"] > 0, ll, 0.0)

    def active_target(theta, K, c):
        prior = jnp.where(idx < K, slot_logp(theta, c), 0.0).sum()
        return c["log_pmf"][K - 1] + prior + loglik(theta, K, c)

    gaussian = family == "gaussian"

    def allocations(theta, K, key, c):
        """z_i | theta, K: one inverse-CDF draw per observation; one-hot (n, K_max)."""
        p = layout.unpack(theta)
        eta = (c["Zs"] @ p["beta1_std"] + p["beta0_std"]) / c["temperature"]
        lp = jnp.where(idx < K, eta + components(theta, c), -jnp.inf)
        prob = jnp.exp(lp - lp.max(axis=1, keepdims=True))
        cum = jnp.cumsum(prob, axis=1)
        u = jax.random.uniform(key, (lp.shape[0], 1)) * cum[:, -1:]
        z = jnp.minimum((u > cum).sum(axis=1), K - 1)
        return (z[:, None] == idx).astype(jnp.float64) * c["lik"]

    def hmc(logp, x, scale, eps, key):
        """One HMC update of ``x`` under ``logp`` with the diagonal metric ``scale`` (the
        position is ``x = scale * w`` and ``w`` moves with unit mass).
        """
        k1, k2, k3 = jax.random.split(key, 3)
        eps = eps * jax.random.uniform(k3, minval=0.8, maxval=1.2)
        vg = jax.value_and_grad(lambda w: logp(scale * w))
        w0 = x / scale
        p0 = jax.random.normal(k1, x.shape)
        lp0, g0 = vg(w0)

        def leap(carry, _):
            w, p, g = carry
            p = p + 0.5 * eps * g
            w = w + eps * p
            lp, g = vg(w)
            p = p + 0.5 * eps * g
            return (w, p, g), lp

        (w, p, _), lps = jax.lax.scan(leap, (w0, p0, g0), None, length=L)
        log_a = (lps[-1] - 0.5 * jnp.sum(p * p)) - (lp0 - 0.5 * jnp.sum(p0 * p0))
        bad = ~jnp.isfinite(log_a) | ~jnp.all(jnp.isfinite(w))
        log_a = jnp.where(bad, -jnp.inf, log_a)
        accepted = jnp.log(jax.random.uniform(k2)) < log_a
        return jnp.where(accepted, scale * w, x), jnp.exp(jnp.minimum(0.0, log_a)), bad

    def gaussian_experts(theta, onehot, key, c):
        """Gaussian experts given the allocations, (a_k, b_k) integrated out for the noise:
        ``_TAU_STEPS`` random-walk Metropolis steps on log tau_k (tau_k = sigma_k^-2) under
        p(tau_k | z) (the marginal likelihood of the allocated rows, Woodbury on their sums,
        times the HalfNormal prior of sigma_k), proposal sd 2 / sqrt(n_k + 2); then
        (a_k, b_k) | tau_k, z from their Normal conditional.
        """
        k1, k2 = jax.random.split(key)
        d = c["Xs"].shape[1]
        A = jnp.concatenate([c["Xs"], jnp.ones((c["Xs"].shape[0], 1))], axis=1)
        y = c["ys"]
        prior_prec = 1.0 / c["prior_sd"][g : g + d + 1] ** 2
        AtA = jnp.einsum("nk,ni,nj->kij", onehot, A, A)
        Aty = jnp.einsum("nk,ni,n->ki", onehot, A, y)
        yty = (onehot * (y * y)[:, None]).sum(0)
        n_k = onehot.sum(0)
        s = c["prior_sd"][-1]

        def log_post(log_tau):
            tau = jnp.exp(log_tau)
            P = jnp.eye(d + 1) * prior_prec + tau[:, None, None] * AtA
            _, logdet = jnp.linalg.slogdet(P)
            sol = jnp.linalg.solve(P, Aty[..., None])[..., 0]
            quad = tau * yty - tau**2 * (Aty * sol).sum(-1)
            ll = 0.5 * n_k * log_tau - 0.5 * logdet - 0.5 * quad
            ls = -0.5 * log_tau  # log sigma: HalfNormal(s) of sigma, its Jacobian
            return ll - 0.5 * jnp.exp(2.0 * ls) / s**2 + ls

        sd = 2.0 / jnp.sqrt(n_k + 2.0)  # z is fixed in the block: a valid proposal scale

        def rw(carry, k):
            log_tau, cur, acc = carry
            ka, kb = jax.random.split(k)
            prop = log_tau + sd * jax.random.normal(ka, log_tau.shape)
            new = log_post(prop)
            ok = jnp.log(jax.random.uniform(kb, log_tau.shape)) < new - cur
            ok = ok & jnp.isfinite(new)
            return (jnp.where(ok, prop, log_tau), jnp.where(ok, new, cur), acc + ok), None

        log_tau0 = -2.0 * theta[:, -1]
        init = (log_tau0, log_post(log_tau0), jnp.zeros(K_max))
        (log_tau, _, acc), _ = jax.lax.scan(rw, init, jax.random.split(k2, _TAU_STEPS))
        tau = jnp.exp(log_tau)
        P = jnp.eye(d + 1) * prior_prec + tau[:, None, None] * AtA
        cov = jnp.linalg.inv(P)
        cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2))
        mean = jnp.einsum("kij,kj->ki", cov, tau[:, None] * Aty)
        chol = jnp.linalg.cholesky(cov)
        coef = mean + jnp.einsum("kij,kj->ki", chol, jax.random.normal(k1, mean.shape))
        theta = theta.at[:, g : g + d + 1].set(coef).at[:, -1].set(-0.5 * log_tau)
        return theta, acc.mean() / _TAU_STEPS

    def within(theta, K, eps, key, c):
        """One within-K sweep: allocations, the gate by HMC given them, the experts given them
        (conjugate for Gaussian experts, HMC otherwise). Returns the acceptance of both.
        """
        kz, kg, ke = jax.random.split(key, 3)
        onehot = allocations(theta, K, kz, c)
        n_k = onehot.sum(0)
        gate, experts = theta[:, :g], theta[:, g:]

        def gate_logp(G):
            eta = (c["Zs"] @ G[:, 1:].T + G[:, 0]) / c["temperature"]
            lw = jnp.where(idx < K, eta, -jnp.inf)
            lw = lw - logsumexp(lw, axis=1, keepdims=True)
            ll = jnp.where(onehot > 0, lw, 0.0).sum()
            return ll + (-0.5 * (G / c["prior_sd"][:g]) ** 2).sum()

        # metric: the prior's precision plus a bound on the data's (z fixed in this block)
        gate_scale = 1.0 / jnp.sqrt(1.0 / c["prior_sd"][:g] ** 2 + 0.25 * n_k[:, None])
        gate, acc_g, bad_g = hmc(gate_logp, gate, gate_scale, eps[0], kg)
        theta = theta.at[:, :g].set(gate)
        if gaussian:
            theta, acc_e = gaussian_experts(theta, onehot, ke, c)
            bad_e = False
        else:

            def expert_logp(E):
                th = jnp.concatenate([gate, E], axis=1)
                ll = (onehot * components(th, c)).sum()
                return ll + slot_logp(E, c, g).sum()

            scale = 1.0 / jnp.sqrt(1.0 / c["prior_sd"][g:] ** 2 + 0.25 * n_k[:, None])
            experts, acc_e, bad_e = hmc(expert_logp, experts, scale, eps[1], ke)
            theta = theta.at[:, g:].set(experts)
        return theta, jnp.stack([acc_g, acc_e]), bad_g | bad_e

    def move_probs(K, c):
        p = c["p_birth_death"]
        if K_max == 1:
            return jnp.zeros(4)
        up = jnp.where(K == 1, 1.0, jnp.where(K == K_max, 0.0, 0.5))
        down = 1.0 - up
        return jnp.stack([p * up, p * down, (1 - p) * up, (1 - p) * down])

    def split_aux_logpdf(log_u, log_1mu, delta, c):
        a = c["split_beta"]
        sd = c["split_sd"][1:]
        lb = (a - 1.0) * (log_u + log_1mu) - (2.0 * gammaln(a) - gammaln(2.0 * a))
        zz = delta / sd
        return lb + jnp.sum(-0.5 * _LOG_2PI - jnp.log(sd) - 0.5 * zz * zz)

    anchored = settings.birth == "anchors"
    birth, death = cb.birth_death(anchored, slot_logp, prior_row, gate_eta, components)

    def split(theta, K, r, c):
        j = jnp.minimum(jnp.floor(r["u"] * K).astype(K.dtype), K - 1)
        log_u = r["lg"][0] - jnp.logaddexp(r["lg"][0], r["lg"][1])
        log_1mu = r["lg"][1] - jnp.logaddexp(r["lg"][0], r["lg"][1])
        u = jnp.exp(log_u)
        delta = c["split_sd"][1:] * r["z_split"]
        row = theta[j]
        t1 = jnp.concatenate([row[:1] + log_u, row[1:] + (1.0 - u) * delta])
        t2 = jnp.concatenate([row[:1] + log_1mu, row[1:] - u * delta])
        new = theta.at[j].set(t1).at[K].set(t2)
        return new, K + 1, -split_aux_logpdf(log_u, log_1mu, delta, c), -log_u - log_1mu

    def merge(theta, K, r, c):
        last = K - 1
        j = jnp.minimum(jnp.floor(r["u"] * last).astype(K.dtype), jnp.maximum(last - 1, 0))
        r1, r2 = theta[j], theta[last]
        b = jnp.logaddexp(r1[0], r2[0])
        log_u, log_1mu = r1[0] - b, r2[0] - b
        u, one_minus_u = jnp.exp(log_u), jnp.exp(log_1mu)
        merged = jnp.concatenate([b[None], u * r1[1:] + one_minus_u * r2[1:]])
        new = theta.at[j].set(merged).at[last].set(prior_row(r["z_prior"], c))
        ok = (u > 0.0) & (one_minus_u > 0.0)  # a weight underflowed: no split gives it
        log_q = jnp.where(ok, split_aux_logpdf(log_u, log_1mu, r1[1:] - r2[1:], c), -jnp.inf)
        return new, K - 1, log_q, jnp.where(ok, log_u + log_1mu, 0.0)

    branches = (birth, death, split, merge)
    reverse = jnp.array([MOVES["death"], MOVES["birth"], MOVES["merge"], MOVES["split"]])

    def one_move(theta, K, current, key, c):
        kp, km, ka, kz, kg, ks, ku = jax.random.split(key, 7)
        D = theta.shape[1]
        r = {
            "z_prior": jax.random.normal(kz, (D,)),
            "z_split": jax.random.normal(ks, (D - 1,)),
            "lg": cb.beta_pair(kg, settings._static()["beta_order"], c["split_beta"]),
            "u": jax.random.uniform(ku),
        }
        if anchored:
            r.update(cb.anchor_randoms(jax.random.fold_in(key, 1), D))
        order = jnp.where(idx < K, jax.random.uniform(kp, (K_max,)), 2.0 + idx)
        theta = theta[jnp.argsort(order)]
        probs = move_probs(K, c)
        has_move = probs.sum() > 0
        m = jax.random.categorical(km, jnp.log(jnp.where(has_move, probs, 1.0)))
        new, K_new, log_q, log_jac = jax.lax.switch(m, branches, theta, K, r, c)
        log_jac = log_jac * c["jacobian"]  # 1; 0 only in a must-fail twin of the tests
        K_safe = jnp.clip(K_new, 1, K_max)
        p_rev = move_probs(K_safe, c)[reverse[m]]
        proposed = active_target(new, K_safe, c)
        log_alpha = proposed - current + log_q + log_jac + jnp.log(p_rev) - jnp.log(probs[m])
        log_alpha = jnp.where(jnp.isnan(log_alpha) | ~has_move, -jnp.inf, log_alpha)
        accepted = jnp.log(jax.random.uniform(ka)) < log_alpha
        stats = {
            "move": jnp.where(has_move, m, -1),
            "proposed_n_experts": K_safe,
            "accepted": accepted,
            "accept": jnp.exp(jnp.minimum(0.0, log_alpha)),
            "log_accept_ratio": log_alpha,
        }
        theta = jnp.where(accepted, new, theta)
        K = jnp.where(accepted, K_safe, K)
        return theta, K, jnp.where(accepted, proposed, current), stats

    def iteration(theta, K, eps, key, c):
        """``sweeps_per_step`` rounds of (the within-K sweep, ``moves_per_step`` moves)."""
        K_start = K

        def move_body(carry, k):
            th, KK, cur = carry
            th, KK, cur, st = one_move(th, KK, cur, k, c)
            return (th, KK, cur), st

        def sweep(carry, k):
            th, KK, acc, div = carry
            kw, km = jax.random.split(k)
            th, a, bad = within(th, KK, eps, kw, c)
            keys = jax.random.split(km, settings.moves_per_step)
            (th, KK, cur), st = jax.lax.scan(move_body, (th, KK, active_target(th, KK, c)), keys)
            return (th, KK, acc + a, div | bad), (st, cur)

        init = (theta, K, jnp.zeros(2), jnp.zeros((), bool))
        keys = jax.random.split(key, settings.sweeps_per_step)
        (theta, K, acc, diverging), (st, cur) = jax.lax.scan(sweep, init, keys)
        accept = acc / settings.sweeps_per_step
        st = {k: v.reshape(-1) for k, v in st.items()}
        counts = {}
        for name, code in MOVES.items():
            hit = st["move"] == code
            counts[f"proposed_{name}"] = hit.sum()
            counts[f"accepted_{name}"] = (hit & st["accepted"]).sum()
        last = {k: v[-1] for k, v in st.items()}
        stats = {
            **last,
            **counts,
            "current_n_experts": K_start,
            "acceptance_rate": accept[0],
            "expert_acceptance_rate": accept[1],
            "diverging": diverging,
            "lp": cur[-1],
        }
        if gaussian:  # no expert step size to adapt (the conjugate update)
            accept = accept.at[1].set(_TARGET_ACCEPT)
        return theta, K, stats, accept

    return iteration


def _make_program(settings: CovariateSettings, layout, family, n_gate, mesh=None):
    """``advance(carry, keys, start, n_tune, consts)``: CHUNK iterations of every chain from
    iteration ``start``; iterations i < n_tune adapt the HMC step size by dual averaging.
    """
    import jax
    import jax.numpy as jnp

    iteration = _kernel(settings, layout, family, n_gate)
    gamma, t0, kappa = 0.05, 10.0, 0.75

    def chain(carry, key, start, n_tune, c):
        def body(carry, i):
            theta, K, log_eps, log_eps_bar, h_bar, mu = carry
            is_tune = i < n_tune
            eps = jnp.exp(jnp.where(is_tune, log_eps, log_eps_bar))
            theta, K, stats, accept = iteration(theta, K, eps, jax.random.fold_in(key, i), c)
            # dual averaging (Hoffman & Gelman 2014, Algorithm 5) during tuning only
            t = i.astype(jnp.float64) + 1.0
            h_new = (1.0 - 1.0 / (t + t0)) * h_bar + (_TARGET_ACCEPT - accept) / (t + t0)
            le_new = mu - jnp.sqrt(t) / gamma * h_new
            w = t**-kappa
            leb_new = w * le_new + (1.0 - w) * log_eps_bar
            # floor and ceiling: a step size driven to zero by an early bad region never recovers
            le_new = jnp.clip(le_new, math.log(1e-3), math.log(3.0))
            log_eps = jnp.where(is_tune, le_new, log_eps)
            log_eps_bar = jnp.where(is_tune, leb_new, log_eps_bar)
            h_bar = jnp.where(is_tune, h_new, h_bar)
            stats = {
                **stats,
                "step_size": eps[0],
                "step_size_bar": jnp.exp(log_eps_bar[0]),
                "expert_step_size": eps[1],
            }
            return (theta, K, log_eps, log_eps_bar, h_bar, mu), (theta, K, stats)

        init = tuple(carry[k] for k in ("theta", "K", "log_eps", "log_eps_bar", "h_bar", "mu"))
        out_carry, out = jax.lax.scan(body, init, start + jnp.arange(CHUNK))
        names = ("theta", "K", "log_eps", "log_eps_bar", "h_bar", "mu")
        return dict(zip(names, out_carry, strict=True)), out

    from bayesmoe.inference.rjmcmc.compiled import sharded_chains

    return sharded_chains(chain, mesh)


def _source_digest() -> str:
    here = Path(__file__).resolve()
    h = hashlib.sha256()
    shared = (
        here.parent / "moves.py",
        here.parent / "compiled.py",
        here.parent / "compiled_births.py",
    )
    for path in (here, *shared, here.parents[2] / "families" / "_ops.py"):
        h.update(path.read_bytes())
    return h.hexdigest()


def soften_starts(starts: list[dict], info, limit: float = 3.0) -> list[dict]:
    """Start points whose linear blocks are scaled down so that none exceeds ``limit`` prior
    sds: the gate (intercepts and slopes together) and the experts' linear predictors (the
    non-positive expert parameters together), each by one factor per chain.

    An MM fit of many experts often has near-hard gates (|beta| in the thousands on mcycle at
    K = 6), and categorical experts on separable classes near-infinite logits, where the log
    density's curvature leaves HMC no usable step size. Any start is valid; scaling a block of
    logits keeps which expert (class) wins at every x.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.sampling import start_points
    >>> from bayesmoe.inference.rjmcmc.compiled_covariates import soften_starts
    >>> X, y, _ = simulate("S-B", n=30, random_seed=0)
    >>> _, info = build_random_k_model(X, y, max_experts=3)
    >>> start = start_points(info, chains=1, init="prior", random_seed=0)[0]
    >>> start["beta1_std"] = start["beta1_std"] * 0 + 1000.0   # a near-hard gate
    >>> soft = soften_starts([start], info)[0]
    >>> bool(np.abs(soft["beta1_std"]).max() <= 3 * info.priors.gate_slope + 1e-9)
    True
    """
    from bayesmoe.families import get_family

    fam = get_family(info.family)
    groups = dict(zip((n for n, _ in info.slot_vars), info.slot_groups, strict=True))
    gate = ["beta0_std", "beta1_std"]
    linear = [f"{p.name}_std" for p in fam.params if not p.positive]
    out = []
    for p in starts:
        q = dict(p)
        for block in (gate, linear):
            c = 1.0
            for name in block:
                sd = getattr(info.priors, groups[name])
                big = float(np.max(np.abs(p[name]), initial=0.0))
                if big > limit * sd:
                    c = min(c, limit * sd / big)
            for name in block:
                q[name] = np.asarray(p[name], dtype=float) * c
        out.append(q)
    return out


def _constants(info, prior_only: bool, settings: CovariateSettings) -> dict:
    layout, prior_sd, positive = _columns(info)
    sds = {**DEFAULT_SPLIT_SD, **dict(settings.split_sd)}
    split_sd = np.array([sds[g] for g in layout.column_groups], dtype=np.float64)
    data = {k: (None if v is None else np.asarray(v)) for k, v in (info.data or {}).items()}
    ys = np.asarray(info.ys)
    return {
        "Xs": np.asarray(info.Xs, dtype=np.float64),
        "Zs": np.asarray(info.Zs, dtype=np.float64),
        "ys": ys.astype(np.int64) if ys.dtype.kind in "iub" else ys.astype(np.float64),
        "data": data,
        "temperature": np.float64(info.temperature),
        "log_pmf": np.log(np.asarray(info.prior_pmf, dtype=np.float64)),
        "lik": np.float64(0.0 if prior_only else 1.0),
        "prior_sd": prior_sd,
        "positive": positive,
        "split_sd": split_sd,
        "split_beta": np.float64(settings.split_beta),
        "p_birth_death": np.float64(settings.p_birth_death),
        "jacobian": np.float64(0.0 if settings.drop_split_jacobian else 1.0),
        "birth_density": np.float64(0.0 if settings.drop_birth_density else 1.0),
        "birth_prior_mix": np.float64(settings.birth_prior_mix),
        **(cb.anchor_constants(info, prior_sd) if settings.birth == "anchors" else {}),
    }


def run_covariates(
    info,
    starts: list[dict],
    *,
    draws: int,
    tune: int,
    seed: int,
    settings: CovariateSettings,
    prior_only: bool = False,
) -> tuple[dict, dict]:
    """Run the compiled covariate sampler from one start point per chain (value space, as
    :func:`~bayesmoe.inference.rjmcmc.sampling.start_points` gives).

    Returns ``(values, stats)``: ``values`` maps ``n_experts_index`` and every slot value
    variable (``beta0_std``, ``beta1_std``, ``a_std``, ..., ``sigma_std_log__``) to arrays
    (chain, draw, block..., expert); ``stats`` the sample stats (chain, draw).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.sampling import start_points
    >>> from bayesmoe.inference.rjmcmc.compiled_covariates import (CovariateSettings,
    ...                                                            run_covariates)
    >>> X, y, _ = simulate("S-B", n=50, random_seed=0)
    >>> _, info = build_random_k_model(X, y, max_experts=3)
    >>> starts = start_points(info, chains=2, init="prior", random_seed=0)
    >>> values, stats = run_covariates(info, starts, draws=5, tune=5, seed=0,
    ...                                settings=CovariateSettings(k_max=3))  # doctest: +SKIP
    >>> values["a_std"].shape, stats["proposed_birth"].shape  # doctest: +SKIP
    ((2, 5, 1, 3), (2, 5))
    """
    import jax
    from jax.sharding import Mesh

    from bayesmoe.inference.nuts.jax_nuts import _devices_for, _x64, compile_cache
    from bayesmoe.inference.nuts.jax_programs import cached_program

    layout, _, _ = _columns(info)
    cache_dir = compile_cache()
    chains = len(starts)
    n_dev = _devices_for(chains, jax)
    mesh = None if n_dev == 1 else Mesh(np.array(jax.devices()[:n_dev]), ("chain",))
    with _x64(jax):
        eps0 = 0.3  # on the whitened scale of the metric
        carry = {
            "theta": np.stack([layout.pack(p) for p in starts]).astype(np.float64),
            "K": np.array([int(p["n_experts_index"]) + 1 for p in starts], dtype=np.int64),
            "log_eps": np.full((chains, 2), math.log(eps0)),
            "log_eps_bar": np.full((chains, 2), math.log(eps0)),
            "h_bar": np.zeros((chains, 2)),
            "mu": np.full((chains, 2), math.log(10.0 * eps0)),
        }
        seeds = np.random.SeedSequence(seed).generate_state(chains * 2).reshape(chains, 2)
        keys = np.asarray(seeds, dtype=np.uint32)
        consts = _constants(info, prior_only, settings)
        n_tune = np.int64(tune)
        program = cached_program(
            "rjmcmc_covariates",
            lambda: _make_program(settings, layout, info.family, info.Zs.shape[1], mesh),
            (carry, keys, n_tune, n_tune, consts),
            settings={
                **settings._static(),
                "layout": [list(map(str, v)) for v in layout.vars],
                "family": info.family,
                "chunk": CHUNK,
                "rj_source": _source_digest(),
            },
            cache_dir=None if cache_dir is None else str(Path(cache_dir) / "programs"),
            mesh=mesh,
        )
        outs = []
        n_all = int(tune) + int(draws)
        for start in range(0, n_all, CHUNK):
            carry, out = program(carry, keys, np.int64(start), n_tune, consts)
            outs.append(jax.tree.map(np.asarray, out))
        keep = slice(int(tune), n_all)
        theta, K, stats = jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, keep], *outs)
    values = {"n_experts_index": K.astype(np.int64) - 1}
    start = 0
    for name, shape in layout.vars:
        size = int(np.prod(shape, dtype=int))
        block = theta[..., start : start + size]  # (chain, draw, K_max, size)
        block = block.reshape(block.shape[:3] + tuple(shape))
        values[name] = np.moveaxis(block, 2, -1)
        start += size
    return values, stats
