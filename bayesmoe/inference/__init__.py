"""Inference: NUTS sampling (pymc / nutpie / numpyro), reversible jump, prediction, MM."""

from bayesmoe._lazy import lazy_exports  # names are imported on first use

_ATTRS = {
    "compare_experts": "bayesmoe.inference.compare",
    "sample_dp": "bayesmoe.inference.dp",
    "ConjugateGibbs": "bayesmoe.inference.gibbs",
    "plot_compare_experts": "bayesmoe.inference.compare",
    "MMResult": "bayesmoe.inference.mm",
    "count_parameters": "bayesmoe.inference.mm",
    "fit_mle": "bayesmoe.inference.mm",
    "monotone_violations": "bayesmoe.inference.mm",
    "conditional_density": "bayesmoe.inference.prediction",
    "gate_probabilities": "bayesmoe.inference.prediction",
    "posterior_predictive": "bayesmoe.inference.prediction",
    "predict": "bayesmoe.inference.prediction",
    "ReversibleJump": "bayesmoe.inference.rjmcmc",
    "acceptance_summary": "bayesmoe.inference.rjmcmc",
    "k_posterior": "bayesmoe.inference.rjmcmc",
    "parse_gate_prior": "bayesmoe.inference.rjmcmc",
    "relabel_at_k": "bayesmoe.inference.rjmcmc",
    "sample_random_k": "bayesmoe.inference.rjmcmc",
    "BACKENDS": "bayesmoe.inference.sampling",
    "INITS": "bayesmoe.inference.sampling",
    "sample": "bayesmoe.inference.sampling",
    "select_experts": "bayesmoe.inference.selection",
}


__getattr__, __dir__ = lazy_exports(__name__, _ATTRS)


__all__ = [
    "BACKENDS",
    "INITS",
    "ConjugateGibbs",
    "MMResult",
    "ReversibleJump",
    "acceptance_summary",
    "compare_experts",
    "conditional_density",
    "count_parameters",
    "fit_mle",
    "gate_probabilities",
    "k_posterior",
    "monotone_violations",
    "parse_gate_prior",
    "plot_compare_experts",
    "posterior_predictive",
    "predict",
    "relabel_at_k",
    "sample",
    "sample_dp",
    "sample_random_k",
    "select_experts",
]
