"""Conjugate Gibbs updates of a covariate-free normal mixture under the Richardson–Green prior.

For d = 0, Gaussian experts and the hierarchical prior of Richardson & Green (1997, §2.1, §4.1)
every continuous block has a closed-form full conditional given the allocations ``z``, so one
sweep (in the padded random-K space, or with all slots active in the fixed-K model) is, on the
standardised scale:

1. ``z_i ~ p(z_i = j | y_i, w, mu, sigma)`` over the K active slots (drawn, not stored);
2. weights: ``w ~ Dirichlet(delta + n_1, ..., delta + n_K)`` and, independently, the unidentified
   total ``S ~ Gamma(K delta, 1)``; the intercepts are ``beta0_j = log(S w_j)`` (the likelihood
   depends on ``g = S w`` only through ``w``, and under ``g_j ~ Gamma(delta, 1)`` i.i.d. ``S`` and
   ``w`` are independent with those laws) [derived];
3. ``mu_j ~ N((kappa xi + tau_j sum_{z_i = j} y_i) / (kappa + n_j tau_j),
   1 / (kappa + n_j tau_j))``;
4. ``tau_j = sigma_j^-2 ~ Gamma(alpha + n_j / 2, beta + sum_{z_i = j} (y_i - mu_j)^2 / 2)``;
5. ``beta ~ Gamma(g + K_max alpha, h + sum over all K_max slots of tau_j)``: in the padded space the
   inactive slots' precisions are draws of the same prior given beta, so they enter too;
6. inactive slots (j >= K): fresh draws of their prior given beta (their full conditional).

Steps 3–4 follow the order of RG's sweep (weights, means, variances, then beta). Combined with
:class:`bayesmoe.inference.rjmcmc.ReversibleJump` each kernel leaves the padded target invariant,
so the compound chain does too; it replaces NUTS for this model because NUTS needs deep trees
on the heavy-tailed prior of the inactive slots (measured in benchmarks/README.md, "Galaxy").
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pymc.model import modelcontext
from pymc.step_methods.compound import BlockedStep, Competence
from pymc.util import get_random_generator, get_value_vars_from_user_vars

from bayesmoe.families import get_family
from bayesmoe.models.random_k import HYPER_VARS, K_VAR
from bayesmoe.models.spec import ModelSpec

__all__ = ["ConjugateGibbs", "gibbs_eligible"]

_VARS = ("beta0_std", "beta1_std", "a_std", "b_std", "sigma_std_log__", HYPER_VARS[0])


def gibbs_eligible(info: ModelSpec) -> bool:
    """True for the models :class:`ConjugateGibbs` updates exactly: no covariates, Gaussian
    experts, the Richardson–Green prior set (Dirichlet weights, hierarchical precisions).
    """
    pri = info.priors
    return (
        get_family(info.family).hierarchical_prior  # the conjugate normal mixture
        and info.Xs.shape[1] == 0
        and info.Zs.shape[1] == 0  # constant weights: the gate has no covariates either
        and pri.hierarchical
        and pri.dirichlet_weights
        and info.temperature == 1.0
    )


class ConjugateGibbs(BlockedStep):
    """One Gibbs sweep of the continuous parameters of a d = 0 Richardson–Green mixture.

    Parameters
    ----------
    vars : list, optional
        Default (and required): every continuous free variable of the model.
    info : ModelSpec
        From :func:`bayesmoe.models.random_k.build_random_k_model` (random K, or
        ``fixed_experts=K`` for all slots active). :func:`gibbs_eligible` must hold.
    model : pymc.Model, optional
    rng : RandomGenerator, optional

    Notes
    -----
    Sample stat ``occupied``: the number of active experts with at least one allocated
    observation in the sweep's draw of ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.data import load_dataset
    >>> from bayesmoe.models.random_k import build_random_k_model
    >>> from bayesmoe.inference.rjmcmc.gibbs import ConjugateGibbs
    >>> X, y, _ = load_dataset("galaxy")
    >>> model, info = build_random_k_model(X, y, max_experts=5, experts_prior="uniform",
    ...                                    priors="richardson-green")
    >>> step = ConjugateGibbs(info=info, model=model, rng=0)
    >>> point, stats = step.step(model.initial_point())
    >>> stats[0]["occupied"]
    1
    """

    name = "conjugate_gibbs"
    default_blocked = True
    stats_dtypes_shapes: ClassVar[dict] = {"occupied": (np.int64, [])}

    def __init__(self, vars=None, *, info: ModelSpec, model=None, rng=None, blocked=True):
        model = modelcontext(model)
        if not (isinstance(info, ModelSpec) and info.kind == "slots"):
            raise TypeError(
                "`info` must be the ModelSpec returned by build_random_k_model; got "
                f"{getattr(info, 'kind', type(info).__name__)!r}."
            )
        if not gibbs_eligible(info):
            raise ValueError(
                "ConjugateGibbs needs a model without covariates (X of shape (n, 0)), Gaussian "
                "experts, temperature 1 and priors='richardson-green'; got d = "
                f"{info.Xs.shape[1]}, family={info.family!r}, priors={info.priors.scheme!r}. "
                "Use NUTS for other models."
            )
        names = {v.name for v in model.value_vars}
        needed = {n for n in _VARS if n in names}
        if vars is None:
            vars = [v for v in model.value_vars if v.name in needed]
        else:
            vars = get_value_vars_from_user_vars(vars, model)
        if {v.name for v in vars} != needed:
            raise ValueError(
                f"ConjugateGibbs updates exactly {sorted(needed)}; got "
                f"{sorted(v.name for v in vars)}. Pass vars=None."
            )
        self.vars = vars
        self.info = info
        self.K_max = info.max_experts
        self.random_k = info.prior_pmf is not None
        c, pri = info.prior_constants, info.priors
        self.xi, self.kappa = c["mean_center"], 1.0 / c["mean_sd"] ** 2
        self.h, self.g = c["rate_rate"], pri.rate_shape
        self.alpha, self.delta = pri.precision_shape, pri.weights_concentration
        # prior_only: the model has no likelihood, so neither have the full conditionals (with
        # no observations every update below is a draw from the prior)
        self.y = np.zeros(0) if info.prior_only else np.asarray(info.ys, dtype=float)
        self.rng = get_random_generator(rng)

    def step(self, point: dict):
        rng, y, K_max = self.rng, self.y, self.K_max
        K = int(point[K_VAR]) + 1 if self.random_k else K_max
        beta0 = np.asarray(point["beta0_std"], dtype=float).copy()
        mu = np.asarray(point["b_std"], dtype=float).copy()
        log_sigma = np.asarray(point["sigma_std_log__"], dtype=float).copy()
        tau = np.exp(-2.0 * log_sigma)
        beta = float(np.exp(point[HYPER_VARS[0]]))

        # 1. allocations over the active slots
        lw = beta0[:K] - np.logaddexp.reduce(beta0[:K])
        lp = lw + 0.5 * np.log(tau[:K]) - 0.5 * tau[:K] * (y[:, None] - mu[:K]) ** 2
        lp -= lp.max(axis=1, keepdims=True)
        prob = np.exp(lp)
        prob /= prob.sum(axis=1, keepdims=True)
        u = rng.uniform(size=(y.size, 1))
        z = np.minimum((u > np.cumsum(prob, axis=1)).sum(axis=1), K - 1)
        n_j = np.bincount(z, minlength=K).astype(float)
        s_j = np.bincount(z, weights=y, minlength=K)
        # 2. weights (Dirichlet) and their unidentified total S
        g = rng.gamma(self.delta + n_j)
        w = g / g.sum()
        S = rng.gamma(K * self.delta)
        beta0[:K] = np.log(S) + np.log(w)
        # 3. means, 4. precisions
        prec = self.kappa + n_j * tau[:K]
        mu[:K] = (self.kappa * self.xi + tau[:K] * s_j) / prec + rng.standard_normal(K) / np.sqrt(
            prec
        )
        ss = np.bincount(z, weights=(y - mu[z]) ** 2, minlength=K)
        tau[:K] = rng.gamma(self.alpha + 0.5 * n_j, 1.0 / (beta + 0.5 * ss))
        # 6. inactive slots from their prior given the current beta (before beta moves: the
        # order inside a sweep is free, each update is a full conditional)
        m = K_max - K
        if m:
            beta0[K:] = np.log(rng.gamma(self.delta, size=m))
            mu[K:] = self.xi + rng.standard_normal(m) / np.sqrt(self.kappa)
            tau[K:] = rng.gamma(self.alpha, 1.0 / beta, size=m)
        # 5. the hyperparameter beta given every slot's precision
        beta = rng.gamma(self.g + K_max * self.alpha, 1.0 / (self.h + tau.sum()))

        new = dict(point)
        new["beta0_std"] = beta0
        new["b_std"] = mu
        new["sigma_std_log__"] = -0.5 * np.log(tau)
        new[HYPER_VARS[0]] = np.asarray(np.log(beta))
        return new, [{"occupied": int((n_j > 0).sum())}]

    @staticmethod
    def competence(var, has_grad):
        return Competence.INCOMPATIBLE
