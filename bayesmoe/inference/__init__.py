"""Inference by algorithm: NUTS (:mod:`.nuts`), maximum likelihood (:mod:`.mle`), reversible
jump (:mod:`.rjmcmc`) and the Dirichlet-process gate (:mod:`.dp`).

The names choosing K (:mod:`bayesmoe.selection`) and prediction (:mod:`bayesmoe.prediction`) are
re-exported here for code written before they moved.
"""

from bayesmoe._lazy import lazy_exports  # names are imported on first use

_ATTRS = {
    "compare_experts": "bayesmoe.selection.compare",
    "sample_dp": "bayesmoe.inference.dp",
    "ConjugateGibbs": "bayesmoe.inference.rjmcmc.gibbs",
    "plot_compare_experts": "bayesmoe.selection.compare",
    "MMResult": "bayesmoe.inference.mle.mm",
    "count_parameters": "bayesmoe.inference.mle.mm",
    "fit_mle": "bayesmoe.inference.mle.mm",
    "monotone_violations": "bayesmoe.inference.mle.mm",
    "conditional_density": "bayesmoe.prediction",
    "gate_probabilities": "bayesmoe.prediction",
    "posterior_predictive": "bayesmoe.prediction",
    "predict": "bayesmoe.prediction",
    "ReversibleJump": "bayesmoe.inference.rjmcmc",
    "acceptance_summary": "bayesmoe.inference.rjmcmc",
    "k_posterior": "bayesmoe.inference.rjmcmc",
    "parse_gate_prior": "bayesmoe.inference.rjmcmc",
    "relabel_at_k": "bayesmoe.inference.rjmcmc",
    "sample_random_k": "bayesmoe.inference.rjmcmc",
    "BACKENDS": "bayesmoe.inference.nuts.sampling",
    "INITS": "bayesmoe.inference.nuts.sampling",
    "sample": "bayesmoe.inference.nuts.sampling",
    "select_experts": "bayesmoe.selection.criteria",
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
