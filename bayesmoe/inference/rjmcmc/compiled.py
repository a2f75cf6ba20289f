"""Compiled reversible jump for a covariate-free Gaussian mixture under Richardson–Green (JAX).

The same padded target as the step method (docs/math.md §3.1),
``pi(K, theta, beta) ∝ p(K) p(beta) prod_{k < K_max} p(theta_k | beta) L(y | theta_{0..K-1})``,
with slot atoms ``theta_k = (log g_k, mu_k, log sigma_k)`` on the standardised scale
(``g_k ~ Gamma(delta, 1)``, ``mu_k ~ N(xi, 1/kappa)``, ``sigma_k^-2 ~ Gamma(alpha, beta)``,
``beta ~ Gamma(g, h)``), and the same kernels, all inside one ``jax.lax.scan``. One draw is
``sweeps_per_step`` rounds (default 10) of:

1. the exact conjugate Gibbs sweep of :mod:`bayesmoe.inference.rjmcmc.gibbs` (allocations,
   Dirichlet weights with their Gamma total, means, precisions, inactive slots from the prior,
   then beta);
2. ``moves_per_step`` (default 5) rounds of (a uniform permutation of the active slots, one
   trans-dimensional move), each accepted with the ratio of docs/math.md §3.2:

   - birth (death): the new slot is a draw of the slot prior given beta (the weight share of a
     ``log Gamma(delta, 1)`` intercept is then ``Beta(delta, K delta)``, the birth law of
     Richardson & Green 1997, §3.2); the reverse death removes the last active slot (a uniform
     choice after the permutation) and redraws it from the prior. The proposal density is the
     prior, so the log ratio is Δ log p(K) + Δ log L + the move probabilities;
   - split (merge): :func:`~bayesmoe.inference.rjmcmc.moves.split_map` — ``u ~ Beta(a, a)``
     shares the weight, ``delta ~ N(0, diag(s^2))`` separates ``(mu, log sigma)`` keeping their
     weighted mean, ``|J| = 1 / (u (1 - u))``.

[choice] The birth here is the prior (``birth_prior_mix = 1`` of the step method), not the
step method's defensive data-informed mixture: cheap proposals, many per draw. The slow mode of
K on galaxy is the number of *occupied* components, which the Gibbs sweeps move as much as the
jumps do; measured ESS of k (galaxy, k_max 30, 2 chains x (1000 + 5000), seed 4, one run each):
1 sweep x 10 moves per draw 189-250, 1 x 40: 289, 5 x 2: 347, 5 x 10: 766-949, 10 x 3: 980,
**10 x 5: 1072** (the default). Split scales are tuned as in the step method: during tuning
each iteration draws a multiplier from ``SCALE_GRID`` and the one with the highest mean
acceptance probability of split/merge moves is kept after tuning (per chain).

Chains run one block per CPU device (``shard_map``; ``vmap`` within a block); iteration i uses
the key ``fold_in(chain key, i)``, so a fixed seed reproduces the draws. The program runs
``CHUNK`` iterations per call (run lengths are arguments, not shapes) and is exported and reused
by later processes (:func:`bayesmoe.inference.nuts.jax_programs.cached_program`).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bayesmoe.inference.rjmcmc.moves import MOVES
from bayesmoe.inference.rjmcmc.step import DEFAULT_SPLIT_SD, SCALE_GRID

__all__ = ["CHUNK", "COMPILED_OPTIONS", "CompiledSettings", "compiled_eligible", "run_compiled"]

_LOG_2PI = math.log(2.0 * math.pi)
_MIN_TRIES = 5
#: ``step_kwargs`` the compiled sampler takes (the others are the step method's).
COMPILED_OPTIONS = ("moves_per_step", "p_birth_death", "split_sd", "split_beta", "tune")


class CompiledSettings(NamedTuple):
    """Static settings of the compiled sampler (part of the program's cache key)."""

    k_max: int
    moves_per_step: int = 5
    sweeps_per_step: int = 10
    p_birth_death: float = 0.5
    split_beta: float = 2.0
    split_sd_mean: float = DEFAULT_SPLIT_SD["expert_intercept"]
    split_sd_log_sigma: float = DEFAULT_SPLIT_SD["noise"]
    tune_scales: bool = True
    #: test hook: drop the split/merge Jacobian (a must-fail twin), never set in use
    drop_split_jacobian: bool = False

    def _static(self) -> dict:
        """The settings that shape the program (the others are its arguments)."""
        return {
            "k_max": self.k_max,
            "moves_per_step": self.moves_per_step,
            "sweeps_per_step": self.sweeps_per_step,
            "tune_scales": self.tune_scales,
        }


def compiled_eligible(info) -> bool:
    """True for the models the compiled sampler covers: no covariates, Gaussian experts, the
    Richardson–Green prior set, temperature 1 (the models of the conjugate Gibbs sweep).
    """
    from bayesmoe.inference.rjmcmc.gibbs import gibbs_eligible

    # gibbs_eligible asks the family (hierarchical_prior: the conjugate normal mixture)
    return info.prior_pmf is not None and gibbs_eligible(info)


class _State(NamedTuple):
    K: object  # int, active slots
    beta0: object  # (K_max,) log g
    mu: object  # (K_max,)
    ls: object  # (K_max,) log sigma
    log_beta: object  # () log of the precision-rate hyperparameter


def _kernel(settings: CompiledSettings):
    """The per-chain functions (closures over the static settings)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln, logsumexp

    K_max = settings.k_max
    idx = jnp.arange(K_max)

    def slot_logp(beta0, mu, ls, log_beta, c):
        lp_w = c["delta"] * beta0 - jnp.exp(beta0) - gammaln(c["delta"])
        r = (mu - c["xi"]) / c["mean_sd"]
        lp_mu = -0.5 * r * r - jnp.log(c["mean_sd"]) - 0.5 * _LOG_2PI
        log_tau = -2.0 * ls
        lp_s = (
            c["alpha"] * log_beta
            - gammaln(c["alpha"])
            + c["alpha"] * log_tau
            - jnp.exp(log_beta + log_tau)
            + math.log(2.0)
        )
        return lp_w + lp_mu + lp_s

    def loglik(s: _State, c):
        mask = idx < s.K
        lw = jnp.where(mask, s.beta0, -jnp.inf)
        lw = lw - logsumexp(lw)
        z = (c["y"][:, None] - s.mu) * jnp.exp(-s.ls)
        comp = -0.5 * _LOG_2PI - s.ls - 0.5 * z * z
        ll = logsumexp(jnp.where(mask, lw + comp, -jnp.inf), axis=1).sum()
        return jnp.where(c["lik"] > 0, ll, 0.0)

    def target(s: _State, c):
        mask = idx < s.K
        prior = jnp.where(mask, slot_logp(s.beta0, s.mu, s.ls, s.log_beta, c), 0.0).sum()
        return c["log_pmf"][s.K - 1] + prior + loglik(s, c)

    def prior_row(r, log_beta, c):
        """A slot-prior draw given beta from the move's standard variates ``r``."""
        return r["lg"][0], c["xi"] + c["mean_sd"] * r["z"][0], -0.5 * (r["lg"][1] - log_beta)

    def move_variates(key, c):
        """Every random number a move may use, drawn once (one gamma call site: XLA compiles
        each sampler loop separately, and the compile time grows with their number).
        """
        k1, k2, k3 = jax.random.split(key, 3)
        shapes = jnp.stack([c["delta"], c["alpha"], c["split_beta"], c["split_beta"]])
        return {
            "lg": jax.random.loggamma(k1, shapes),
            "z": jax.random.normal(k2, (3,)),
            "u": jax.random.uniform(k3),
        }

    def move_probs(K, c):
        up = jnp.where(K == 1, 1.0, jnp.where(K == K_max, 0.0, 0.5))
        p = c["p_birth_death"]
        if K_max == 1:
            up = up * 0.0
            down = up
        else:
            down = 1.0 - up
        return jnp.stack([p * up, p * down, (1 - p) * up, (1 - p) * down])

    def split_aux_logpdf(log_u, log_1mu, delta, sd, c):
        a = c["split_beta"]
        lb = (a - 1.0) * (log_u + log_1mu) - (2.0 * gammaln(a) - gammaln(2.0 * a))
        zz = delta / sd
        return lb + jnp.sum(-0.5 * _LOG_2PI - jnp.log(sd) - 0.5 * zz * zz)

    def put(s: _State, j, row):
        b0, mu, ls = row
        return s._replace(beta0=s.beta0.at[j].set(b0), mu=s.mu.at[j].set(mu), ls=s.ls.at[j].set(ls))

    def birth(s, r, sd, c):
        row = prior_row(r, s.log_beta, c)
        log_q = -slot_logp(*row, s.log_beta, c)
        return put(s, s.K, row)._replace(K=s.K + 1), log_q, 0.0

    def death(s, r, sd, c):
        j = s.K - 1
        log_q = slot_logp(s.beta0[j], s.mu[j], s.ls[j], s.log_beta, c)
        return put(s, j, prior_row(r, s.log_beta, c))._replace(K=s.K - 1), log_q, 0.0

    def split(s, r, sd, c):
        j = jnp.minimum(jnp.floor(r["u"] * s.K).astype(s.K.dtype), s.K - 1)
        # u ~ Beta(a, a) as G1 / (G1 + G2), on the log scale
        log_u = r["lg"][2] - jnp.logaddexp(r["lg"][2], r["lg"][3])
        log_1mu = r["lg"][3] - jnp.logaddexp(r["lg"][2], r["lg"][3])
        u = jnp.exp(log_u)
        delta = sd * r["z"][1:]
        phi = jnp.stack([s.mu[j], s.ls[j]])
        phi1, phi2 = phi + (1.0 - u) * delta, phi - u * delta
        t1 = (s.beta0[j] + log_u, phi1[0], phi1[1])
        t2 = (s.beta0[j] + log_1mu, phi2[0], phi2[1])
        new = put(put(s, j, t1), s.K, t2)._replace(K=s.K + 1)
        return new, -split_aux_logpdf(log_u, log_1mu, delta, sd, c), -log_u - log_1mu

    def merge(s, r, sd, c):
        last = s.K - 1
        j = jnp.minimum(jnp.floor(r["u"] * last).astype(s.K.dtype), jnp.maximum(last - 1, 0))
        b = jnp.logaddexp(s.beta0[j], s.beta0[last])
        log_u, log_1mu = s.beta0[j] - b, s.beta0[last] - b
        u, one_minus_u = jnp.exp(log_u), jnp.exp(log_1mu)
        phi1 = jnp.stack([s.mu[j], s.ls[j]])
        phi2 = jnp.stack([s.mu[last], s.ls[last]])
        phi = u * phi1 + one_minus_u * phi2
        new = put(put(s, j, (b, phi[0], phi[1])), last, prior_row(r, s.log_beta, c))
        new = new._replace(K=s.K - 1)
        ok = (u > 0.0) & (one_minus_u > 0.0)  # a weight underflowed: no split gives it
        log_q = jnp.where(ok, split_aux_logpdf(log_u, log_1mu, phi1 - phi2, sd, c), -jnp.inf)
        return new, log_q, jnp.where(ok, log_u + log_1mu, 0.0)

    branches = (birth, death, split, merge)
    reverse = jnp.array([MOVES["death"], MOVES["birth"], MOVES["merge"], MOVES["split"]])

    def one_move(s: _State, current, key, mult, c):
        kp, km, kprop, ka = jax.random.split(key, 4)
        r = move_variates(kprop, c)
        order = jnp.where(idx < s.K, jax.random.uniform(kp, (K_max,)), 2.0 + idx)
        perm = jnp.argsort(order)
        s = s._replace(beta0=s.beta0[perm], mu=s.mu[perm], ls=s.ls[perm])
        probs = move_probs(s.K, c)
        has_move = probs.sum() > 0
        m = jax.random.categorical(km, jnp.log(jnp.where(has_move, probs, 1.0)))
        sd = c["split_sd"] * mult
        new, log_q, log_jac = jax.lax.switch(m, branches, s, r, sd, c)
        log_jac = log_jac * c["jacobian"]  # 1; 0 only in the must-fail twin of the tests
        p_rev = move_probs(new.K, c)[reverse[m]]
        proposed = target(new, c)
        log_alpha = proposed - current + log_q + log_jac + jnp.log(p_rev) - jnp.log(probs[m])
        log_alpha = jnp.where(jnp.isnan(log_alpha) | ~has_move, -jnp.inf, log_alpha)
        accepted = jnp.log(jax.random.uniform(ka)) < log_alpha
        out_state = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), new, s)
        out_current = jnp.where(accepted, proposed, current)
        stats = {
            "move": jnp.where(has_move, m, -1),
            "proposed_n_experts": new.K,
            "accepted": accepted,
            "accept": jnp.exp(jnp.minimum(0.0, log_alpha)),
            "log_accept_ratio": log_alpha,
        }
        return out_state, out_current, stats

    def gibbs(s: _State, key, c):
        """docs/math.md §3.4, the sweep of ConjugateGibbs with the allocations masked."""
        keys = jax.random.split(key, 3)
        mask = idx < s.K
        tau = jnp.exp(-2.0 * s.ls)
        y = c["y"]
        lw = jnp.where(mask, s.beta0, -jnp.inf)
        lw = lw - logsumexp(lw)
        lp = lw + 0.5 * jnp.log(tau) - 0.5 * tau * (y[:, None] - s.mu) ** 2
        lp = jnp.where(mask, lp, -jnp.inf)
        # inverse-CDF draw: one uniform per observation (the Gumbel trick needs n K_max)
        prob = jnp.exp(lp - lp.max(axis=1, keepdims=True))
        cum = jnp.cumsum(prob, axis=1)
        u = jax.random.uniform(keys[0], (y.shape[0], 1)) * cum[:, -1:]
        z = jnp.minimum((u > cum).sum(axis=1), s.K - 1)
        onehot = (z[:, None] == idx).astype(y.dtype) * c["lik"]
        n_j = onehot.sum(0)
        s_j = onehot.T @ y
        # every gamma variate of the sweep in one call (its rate applied after): weights,
        # precisions, the total S of the active weights, and beta's. Inactive slots have
        # n_j = 0, so the same formulas draw them from their prior given beta.
        shapes = jnp.concatenate(
            [
                c["delta"] + n_j,
                c["alpha"] + 0.5 * n_j,
                jnp.stack([s.K * c["delta"], c["g"] + K_max * c["alpha"]]),
            ]
        )
        lg_all = jax.random.loggamma(keys[1], shapes)
        lg, lg_tau, log_S, lg_beta = (
            lg_all[:K_max],
            lg_all[K_max : 2 * K_max],
            lg_all[-2],
            lg_all[-1],
        )
        # weights: Dirichlet(delta + n_j) over the active slots with a Gamma(K delta) total
        beta0 = jnp.where(mask, log_S + lg - logsumexp(jnp.where(mask, lg, -jnp.inf)), lg)
        # means, then precisions
        kappa = 1.0 / c["mean_sd"] ** 2
        prec = kappa + n_j * tau
        noise = jax.random.normal(keys[2], (K_max,))
        mu = (kappa * c["xi"] + tau * s_j) / prec + noise / jnp.sqrt(prec)
        ss = (onehot * (y[:, None] - mu) ** 2).sum(0)
        ls = -0.5 * (lg_tau - jnp.log(jnp.exp(s.log_beta) + 0.5 * ss))
        # the hyperparameter beta given every slot's precision
        log_beta = lg_beta - jnp.log(c["h"] + jnp.exp(-2.0 * ls).sum())
        occupied = jnp.sum((n_j > 0) & mask)
        return _State(s.K, beta0, mu, ls, log_beta), occupied

    def iteration(s: _State, key, mult, c):
        """``sweeps_per_step`` rounds of (the Gibbs sweep, ``moves_per_step`` moves)."""
        K_start = s.K

        def moves(carry, k):
            s, current = carry
            s, current, st = one_move(s, current, k, mult, c)
            return (s, current), st

        def sweep(s, k):
            kg, km = jax.random.split(k)
            s, occupied = gibbs(s, kg, c)
            keys = jax.random.split(km, settings.moves_per_step)
            (s, _), st = jax.lax.scan(moves, (s, target(s, c)), keys)
            return s, (st, occupied)

        s, (st, occ) = jax.lax.scan(sweep, s, jax.random.split(key, settings.sweeps_per_step))
        st = {k: v.reshape(-1) for k, v in st.items()}
        occupied = occ[-1]
        counts = {}
        for name, code in MOVES.items():
            hit = st["move"] == code
            counts[f"proposed_{name}"] = hit.sum()
            counts[f"accepted_{name}"] = (hit & st["accepted"]).sum()
        last = {k: v[-1] for k, v in st.items()}
        split_moves = st["move"] >= MOVES["split"]
        split_acc = jnp.where(split_moves, st["accept"], 0.0).sum()
        stats = {
            **last,
            "current_n_experts": K_start,
            **counts,
            "occupied": occupied,
        }
        return s, stats, (split_acc, split_moves.sum())

    return iteration


#: iterations per call of the compiled program (the run lengths are then arguments, not shapes)
CHUNK = 100


def _make_program(settings: CompiledSettings, mesh=None):
    """``advance(carry, keys, start, n_tune, consts)``: CHUNK iterations of every chain from
    iteration index ``start``; iteration i < n_tune tunes the split scale. The key of iteration
    i is ``fold_in(chain key, i)``, so draws do not depend on the chunking.
    """
    import jax
    import jax.numpy as jnp

    iteration = _kernel(settings)
    n_grid = SCALE_GRID.size
    grid = jnp.asarray(SCALE_GRID)
    fields = _State._fields

    def chain(carry, key, start, n_tune, c):
        def body(carry, i):
            s, sums, counts = carry
            kg, ki = jax.random.split(jax.random.fold_in(key, i))
            is_tune = i < n_tune
            gi = jax.random.randint(kg, (), 0, n_grid)
            tried = jnp.all(counts >= _MIN_TRIES)
            chosen = jnp.where(tried, grid[jnp.argmax(sums / jnp.maximum(counts, 1))], 1.0)
            mult = jnp.where(is_tune, grid[gi], chosen) if settings.tune_scales else 1.0
            s, stats, (acc, n) = iteration(s, ki, mult, c)
            record = is_tune & settings.tune_scales
            sums = sums.at[gi].add(jnp.where(record, acc, 0.0))
            counts = counts.at[gi].add(jnp.where(record, n, 0))
            stats = {**stats, "split_scale": jnp.asarray(mult, dtype=sums.dtype)}
            return (s, sums, counts), (s._asdict(), stats)

        init = (_State(**{f: carry[f] for f in fields}), carry["sums"], carry["counts"])
        (s, sums, counts), out = jax.lax.scan(body, init, start + jnp.arange(CHUNK))
        return {**s._asdict(), "sums": sums, "counts": counts}, out

    return sharded_chains(chain, mesh)


def sharded_chains(chain, mesh=None):
    """The compiled program of ``chain(carry, key, start, n_tune, constants)`` over a batch of
    chains: vmapped, and with a ``mesh`` sharded over its ``chain`` axis (one CPU device per
    chain); the start, tuning length and constants are shared.
    """
    import jax

    def local(carry, keys, start, n_tune, c):
        return jax.vmap(chain, in_axes=(0, 0, None, None, None))(carry, keys, start, n_tune, c)

    if mesh is None:
        return jax.jit(local)
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    ch, rep = NamedSharding(mesh, P("chain")), NamedSharding(mesh, P())
    sm = jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("chain"), P("chain"), P(), P(), P()),
        out_specs=P("chain"),
        check_vma=False,
    )
    return jax.jit(sm, in_shardings=(ch, ch, rep, rep, rep), out_shardings=ch)


def _source_digest() -> str:
    here = Path(__file__).resolve()
    h = hashlib.sha256()
    for path in (here, here.parent / "moves.py", here.parent / "step.py"):
        h.update(path.read_bytes())
    return h.hexdigest()


def _constants(info, prior_only: bool, settings: CompiledSettings) -> dict:
    c, pri = info.prior_constants, info.priors
    return {
        "y": np.asarray(info.ys, dtype=np.float64),
        "xi": np.float64(c["mean_center"]),
        "mean_sd": np.float64(c["mean_sd"]),
        "h": np.float64(c["rate_rate"]),
        "g": np.float64(pri.rate_shape),
        "alpha": np.float64(pri.precision_shape),
        "delta": np.float64(pri.weights_concentration),
        "log_pmf": np.log(np.asarray(info.prior_pmf, dtype=np.float64)),
        "lik": np.float64(0.0 if prior_only else 1.0),
        # move settings are data of the program, not shapes: one compile serves them all
        "p_birth_death": np.float64(settings.p_birth_death),
        "split_beta": np.float64(settings.split_beta),
        "split_sd": np.array([settings.split_sd_mean, settings.split_sd_log_sigma], np.float64),
        "jacobian": np.float64(0.0 if settings.drop_split_jacobian else 1.0),
    }


def run_compiled(
    info,
    starts: list[dict],
    *,
    draws: int,
    tune: int,
    seed: int,
    settings: CompiledSettings,
    prior_only: bool = False,
) -> tuple[dict, dict]:
    """Run the compiled sampler from one start point per chain (value space, as
    :func:`~bayesmoe.inference.rjmcmc.sampling.start_points` gives).

    Returns ``(values, stats)``: ``values`` maps the value-variable names
    (``n_experts_index``, ``beta0_std``, ``b_std``, ``sigma_std_log__``, ``noise_rate_std_log__``)
    to arrays (chain, draw[, expert]); ``stats`` the sample stats (chain, draw), with
    ``split_scale`` the split-scale multiplier in use.

    Examples
    --------
    >>> from bayesmoe.data import load_dataset
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.sampling import start_points
    >>> from bayesmoe.inference.rjmcmc.compiled import CompiledSettings, run_compiled
    >>> X, y, _ = load_dataset("galaxy")
    >>> _, info = build_random_k_model(X, y, max_experts=5, experts_prior="uniform",
    ...                                priors="richardson-green")
    >>> starts = start_points(info, chains=2, init="prior", random_seed=0)
    >>> values, stats = run_compiled(info, starts, draws=5, tune=5, seed=0,
    ...                                 settings=CompiledSettings(k_max=5, moves_per_step=2))
    ... # doctest: +SKIP
    >>> values["n_experts_index"].shape, stats["proposed_split"].shape  # doctest: +SKIP
    ((2, 5), (2, 5))
    """
    import jax
    from jax.sharding import Mesh

    from bayesmoe.inference.nuts.jax_nuts import _devices_for, _x64, compile_cache
    from bayesmoe.inference.nuts.jax_programs import cached_program

    cache_dir = compile_cache()
    chains = len(starts)
    n_dev = _devices_for(chains, jax)
    mesh = None if n_dev == 1 else Mesh(np.array(jax.devices()[:n_dev]), ("chain",))
    with _x64(jax):
        state = dict(
            K=np.array([int(p["n_experts_index"]) + 1 for p in starts], dtype=np.int64),
            beta0=np.stack([np.asarray(p["beta0_std"], dtype=np.float64) for p in starts]),
            mu=np.stack([np.asarray(p["b_std"], dtype=np.float64) for p in starts]),
            ls=np.stack([np.asarray(p["sigma_std_log__"], dtype=np.float64) for p in starts]),
            log_beta=np.array([float(p["noise_rate_std_log__"]) for p in starts], dtype=np.float64),
        )
        carry = {
            **state,
            "sums": np.zeros((chains, SCALE_GRID.size)),
            "counts": np.zeros((chains, SCALE_GRID.size), dtype=np.int64),
        }
        seeds = np.random.SeedSequence(seed).generate_state(chains * 2).reshape(chains, 2)
        keys = np.asarray(seeds, dtype=np.uint32)
        consts = _constants(info, prior_only, settings)
        n_tune = np.int64(tune)
        program = cached_program(
            "rjmcmc_rg",
            lambda: _make_program(settings, mesh),
            (carry, keys, n_tune, n_tune, consts),
            settings={**settings._static(), "chunk": CHUNK, "rj_source": _source_digest()},
            cache_dir=None if cache_dir is None else str(Path(cache_dir) / "programs"),
            mesh=mesh,
        )
        outs = []
        n_all = int(tune) + int(draws)
        for start in range(0, n_all, CHUNK):
            carry, out = program(carry, keys, np.int64(start), n_tune, consts)
            outs.append(jax.tree.map(np.asarray, out))
        keep = slice(int(tune), n_all)  # the tuning iterations are not returned
        states, stats = jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, keep], *outs)
        states = _State(**states)
    values = {
        "n_experts_index": states.K.astype(np.int64) - 1,
        "beta0_std": states.beta0,
        "b_std": states.mu,
        "sigma_std_log__": states.ls,
        "noise_rate_std_log__": states.log_beta,
    }
    return values, stats
