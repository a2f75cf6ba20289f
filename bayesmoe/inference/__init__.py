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
    "compare_experts",
    "plot_compare_experts",
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
