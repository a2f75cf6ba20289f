"""Reversible-jump MCMC for a random number of experts (docs/math.md §3)."""

from bayesmoe.inference.rjmcmc.sampling import (
    acceptance_summary,
    k_posterior,
    parse_gate_prior,
    relabel_at_k,
    sample_random_k,
)
from bayesmoe.inference.rjmcmc.step import ReversibleJump

__all__ = [
    "ReversibleJump",
    "acceptance_summary",
    "k_posterior",
    "parse_gate_prior",
    "relabel_at_k",
    "sample_random_k",
]
