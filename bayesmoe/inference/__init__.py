"""Inference: NUTS sampling (pymc / nutpie / numpyro), reversible jump, prediction, MM."""

from bayesmoe.inference.dp import sample_dp
from bayesmoe.inference.gibbs import ConjugateGibbs
from bayesmoe.inference.mm import MMResult, count_parameters, fit_mle, monotone_violations
from bayesmoe.inference.prediction import (
    conditional_density,
    gate_probabilities,
    posterior_predictive,
    predict,
)
from bayesmoe.inference.rjmcmc import (
    ReversibleJump,
    acceptance_summary,
    k_posterior,
    parse_gate_prior,
    relabel_at_k,
    sample_random_k,
)
from bayesmoe.inference.sampling import BACKENDS, INITS, sample
from bayesmoe.inference.selection import select_experts

__all__ = [
    "sample",
    "BACKENDS",
    "INITS",
    "predict",
    "posterior_predictive",
    "gate_probabilities",
    "conditional_density",
    "fit_mle",
    "MMResult",
    "select_experts",
    "count_parameters",
    "monotone_violations",
    "sample_random_k",
    "ReversibleJump",
    "k_posterior",
    "acceptance_summary",
    "relabel_at_k",
    "parse_gate_prior",
    "sample_dp",
    "ConjugateGibbs",
]
