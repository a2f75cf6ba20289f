"""The anchor-cell birth of categorical experts for the compiled covariate sampler (JAX).

The kernel of the step method's :class:`~bayesmoe.inference.rjmcmc.categorical.AnchorBirth`
(see its module for the construction), evaluated inside the compiled loop: the newborn slot row
``u`` (gate intercept, gate slopes, class slopes and intercepts; value space) is drawn from the
defensive mixture

    q(u | theta, K) = prior_mix * prior(u) + (1 - prior_mix) * sum_c pi_c N(u; m_c, diag(s_c^2)),

with ``m`` anchors c (k-means cells of the standardised gate inputs). The expert part of
``m_c, s_c`` is a ridge-penalised multinomial logistic fit on cell c (data only, computed once
in numpy); the gate part and the weights ``pi_c`` depend on the K active slots of the current
state: the gate part is the least-squares fit of the gate logits that give the newborn the share
0.6 of every observation in cell c and 0.05 of the others against the current gate, and
``pi_c = 1/(2m) + (1/2) * (share of the badness of fit exp(-l_i / 2) in cell c)``, ``l_i`` the
pointwise log density of the current mixture.

The birth from K draws ``u ~ q(. | theta, K)`` into slot K; the reverse death removes the last
active slot ``j = K' - 1`` of a state with K' = K + 1 and evaluates ``q(theta_j | theta, K' - 1)``
on the other K' - 1 active slots, the exact density its birth would have drawn from (the
permutation before every move makes "the last" a uniform choice). With the padded target of
docs/math.md §3.1 the acceptance ratio of the birth is therefore the step method's

    pi(K + 1, theta') p_death(K + 1) / (pi(K, theta) p_birth(K) q(u | theta, K)),

the discarded inactive row's prior cancelling against the death's fresh prior draw of the freed
slot (docs/math.md §3.2). With ``prior_mix = 1`` it is the prior birth.
"""

from __future__ import annotations

import math

import numpy as np

from bayesmoe.families import get_family
from bayesmoe.inference.rjmcmc.categorical import (
    SHARE_IN,
    SHARE_OUT,
    _cell_logistic,
    kmeans_anchors,
)

__all__ = [
    "BIRTHS",
    "DEFAULT_ANCHORS",
    "anchor_constants",
    "anchor_draw",
    "anchor_log_density",
    "anchor_randoms",
    "beta_pair",
    "birth_death",
]

#: birth kernels of the compiled covariate sampler (``step_kwargs={"birth": ...}``)
BIRTHS = ("prior", "anchors")
#: the anchor levels: k-means with each of these numbers of centres (fewer when a cell would
#: hold < 5 observations), the cells of all levels pooled (the step method's kernel: (8,))
DEFAULT_ANCHORS = (8,)
_LOG_2PI = math.log(2.0 * math.pi)


def anchor_constants(info, prior_sd: np.ndarray, levels: tuple = DEFAULT_ANCHORS) -> dict:
    """The data-only constants of the anchor birth (numpy): per anchor the expert part's means
    and sds, the cell membership, the gate's least-squares map and the share logits.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.compiled_covariates import _columns
    >>> from bayesmoe.inference.rjmcmc.compiled_births import anchor_constants
    >>> X, y, _ = simulate("S-D", n=40, random_seed=0)
    >>> _, info = build_random_k_model(X, y, max_experts=3, family="categorical")
    >>> c = anchor_constants(info, _columns(info)[1])
    >>> c["anchor_expert_mean"].shape, c["anchor_share_logit"].shape
    ((8, 6), (8, 40))
    """
    if not get_family(info.family).has_classes:
        raise ValueError(
            f"`birth='anchors'` is for categorical experts; got family {info.family!r}. "
            "Use birth='prior'."
        )
    Xs, Zs = np.asarray(info.Xs, dtype=float), np.asarray(info.Zs, dtype=float)
    ys = np.asarray(info.ys, dtype=int)
    n, d = Xs.shape
    M = int(info.n_classes)
    # the cells of every level (k-means with that many centres), stacked: (n, m) membership
    cells = []
    for level in levels:
        _, labels = kmeans_anchors(Zs, int(max(1, min(level, n // 5))))
        cells.append(labels[:, None] == np.arange(int(labels.max()) + 1))
    cells = np.concatenate(cells, axis=1)
    m = cells.shape[1]
    Y = np.eye(M)[ys]
    A = np.column_stack([Xs, np.ones(n)])
    g = 1 + Zs.shape[1]
    ps = np.asarray(prior_sd, dtype=float)[g:]
    ridge = np.r_[np.full(d, 1.0 / ps[0] ** 2), 1.0 / ps[-1] ** 2]
    mean = np.zeros((m, ps.size))
    sd = np.zeros((m, ps.size))
    for c in range(m):
        cell = cells[:, c]
        counts = np.bincount(ys[cell], minlength=M) + 0.5
        V, S = _cell_logistic(A[cell], Y[cell], ridge, np.log(counts[:-1] / counts[-1]))
        mean[c] = np.r_[V[:d].reshape(-1), V[d]]
        sd[c] = np.r_[S[:d].reshape(-1), S[d]]
    A_gate = np.column_stack([np.ones(n), Zs])
    G = A_gate.T @ A_gate / n + 1e-8 * np.eye(g)
    share = np.where(cells.T, SHARE_IN, SHARE_OUT)
    return {
        "anchor_expert_mean": mean,
        "anchor_expert_sd": np.maximum(sd, 0.05),
        # (n, m) membership over the levels: each row's badness counts once in pi
        "anchor_cells": cells.astype(np.float64) / len(levels),
        "anchor_gate_design": A_gate,
        "anchor_gate_solve": np.linalg.inv(G) @ A_gate.T / n,  # (g, n) least squares
        "anchor_gate_var": np.diag(np.linalg.inv(G)) / n,
        "anchor_share_logit": np.log(share) - np.log1p(-share),  # (m, n)
    }


def _components(eta, comp, K_rest, c):
    """Anchor log weights (m,), means (m, D) and sds (m, D) given the first ``K_rest`` slots:
    ``eta`` (n, K_max) their tempered gate logits, ``comp`` (n, K_max) their log p_k(y_i).
    """
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    mask = jnp.arange(eta.shape[1]) < K_rest
    lw = jnp.where(mask, eta, -jnp.inf)
    lse = logsumexp(lw, axis=1)
    ll = logsumexp(jnp.where(mask, lw - lse[:, None] + comp, -jnp.inf), axis=1)
    bad = -0.5 * ll
    bad = jnp.exp(bad - logsumexp(bad))
    weights = 0.5 / c["anchor_cells"].shape[1] + 0.5 * (bad @ c["anchor_cells"])
    log_w = jnp.log(weights) - jnp.log(weights.sum())
    target = c["temperature"] * (c["anchor_share_logit"] + lse[None, :])  # (m, n)
    coef = target @ c["anchor_gate_solve"].T  # (m, g)
    resid = target - coef @ c["anchor_gate_design"].T
    rv = jnp.maximum(jnp.mean(resid**2, axis=1), 1e-6)
    g = coef.shape[1]
    gate_sd = jnp.maximum(
        jnp.sqrt(c["anchor_gate_var"][None, :] * rv[:, None]), c["prior_sd"][None, :g] / 3.0
    )
    means = jnp.concatenate([coef, c["anchor_expert_mean"]], axis=1)
    sds = jnp.concatenate([gate_sd, c["anchor_expert_sd"]], axis=1)
    return log_w, means, jnp.maximum(sds, 1e-3)


def anchor_log_density(u, prior_logp, eta, comp, K_rest, c):
    """Log q(u | theta, K_rest) of the defensive mixture; ``prior_logp`` the slot prior's log
    density at ``u``.
    """
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    log_w, means, sds = _components(eta, comp, K_rest, c)
    z = (u[None, :] - means) / sds
    log_n = jnp.sum(-0.5 * _LOG_2PI - jnp.log(sds) - 0.5 * z * z, axis=1)
    pm = c["birth_prior_mix"]
    return jnp.logaddexp(jnp.log(pm) + prior_logp, jnp.log1p(-pm) + logsumexp(log_w + log_n))


def anchor_draw(prior_u, z, pick, which, eta, comp, K_rest, c):
    """A draw of q(. | theta, K_rest): ``prior_u`` (a slot prior draw) when ``pick <
    prior_mix`` (``pick`` uniform), else anchor ``c ~ pi`` (``which``: a Gumbel-max key) and
    ``means[c] + sds[c] * z`` (``z`` standard normals).
    """
    import jax
    import jax.numpy as jnp

    log_w, means, sds = _components(eta, comp, K_rest, c)
    a = jax.random.categorical(which, log_w)
    return jnp.where(pick < c["birth_prior_mix"], prior_u, means[a] + sds[a] * z)


def anchor_randoms(key, D: int) -> dict:
    """The anchor birth's random numbers of one move: normals, the prior-or-anchor uniform and
    the anchor choice's key.
    """
    import jax

    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "z_birth": jax.random.normal(k1, (D,)),
        "u_birth": jax.random.uniform(k2),
        "k_birth": k3,
    }


def birth_death(anchored: bool, slot_logp, prior_row, gate_eta, components):
    """The birth and death branches of the compiled covariate sampler's move switch,
    ``(theta, K, r, c) -> (theta', K', log q ratio, log |J|)``: the prior birth, or with
    ``anchored`` the anchor-cell birth; ``slot_logp``, ``prior_row``, ``gate_eta`` and
    ``components`` are the kernel's slot prior density and draw, gate logits and expert log
    densities. ``c["birth_density"]`` (1; 0 only in a must-fail twin) scales the proposal
    density's term.
    """

    def log_q(row, theta, K_rest, c):
        """Log q(row | the first K_rest slots of theta): the birth proposal's density."""
        if not anchored:
            return slot_logp(row, c)
        eta, comp = gate_eta(theta, c), components(theta, c)
        return anchor_log_density(row, slot_logp(row, c), eta, comp, K_rest, c)

    def birth(theta, K, r, c):
        row = prior_row(r["z_prior"], c)
        if anchored:
            eta, comp = gate_eta(theta, c), components(theta, c)
            row = anchor_draw(row, r["z_birth"], r["u_birth"], r["k_birth"], eta, comp, K, c)
        return theta.at[K].set(row), K + 1, -log_q(row, theta, K, c) * c["birth_density"], 0.0

    def death(theta, K, r, c):
        j = K - 1  # the last active slot; the rest are the state its birth started from
        log_qj = log_q(theta[j], theta, j, c) * c["birth_density"]
        return theta.at[j].set(prior_row(r["z_prior"], c)), K - 1, log_qj, 0.0

    return birth, death


def beta_pair(key, order: int, a):
    """``(log u, log(1 - u))`` of ``u ~ Beta(a, a)``, the split's weight share: with ``order``
    = a (a small integer, static) the a-th smallest of 2a - 1 uniforms (exactly Beta(a, a));
    otherwise two log-Gamma(a) draws ``(g1, g2)`` (``u = e^g1 / (e^g1 + e^g2)``).

    [choice] The order statistic for the default a = 2: ``jax.random.loggamma``'s rejection
    loop inside the move scan cost about 8 s of the program's 24-27 s XLA compile (iris2, load 6).

    Examples
    --------
    >>> import jax
    >>> import numpy as np
    >>> from bayesmoe.inference.rjmcmc.compiled_births import beta_pair
    >>> lu, l1mu = np.asarray(beta_pair(jax.random.key(0), 2, 2.0))
    >>> bool(abs(np.exp(lu) + np.exp(l1mu) - 1.0) < 1e-6)
    True
    """
    import jax
    import jax.numpy as jnp

    if not order:
        return jax.random.loggamma(key, jnp.full(2, a))
    u = jnp.sort(jax.random.uniform(key, (2 * order - 1,)))[order - 1]
    return jnp.stack([jnp.log(u), jnp.log1p(-u)])
