"""PyMC model builders: gates, experts, priors, fixed K, random K, Dirichlet-process gate.

Names are imported on first use (PEP 562), so ``bayesmoe.models.spec`` (the checks and layout of a
fixed-K model) is available without importing PyMC.
"""

from bayesmoe._lazy import lazy_exports

_ATTRS = {
    "IDENTIFIABILITY": "bayesmoe.models.spec",
    "ModelInfo": "bayesmoe.models.spec",
    "ModelSpec": "bayesmoe.models.spec",
    "fixed_k_spec": "bayesmoe.models.spec",
    "build_model": "bayesmoe.models.builder",
    "model_from_spec": "bayesmoe.models.builder",
    "TruncationWarning": "bayesmoe.models.dp",
    "build_dp_model": "bayesmoe.models.dp",
    "check_truncation": "bayesmoe.models.dp",
    "occupied_experts": "bayesmoe.models.dp",
    "GATES": "bayesmoe.models.gates",
    "resolve_gate": "bayesmoe.models.gates",
    "PRIOR_SETS": "bayesmoe.models.priors",
    "Priors": "bayesmoe.models.priors",
    "resolve_priors": "bayesmoe.models.priors",
    "RandomKInfo": "bayesmoe.models.random_k",
    "build_random_k_model": "bayesmoe.models.random_k",
    "experts_prior_pmf": "bayesmoe.models.random_k",
    "parse_experts_prior": "bayesmoe.models.random_k",
    # sample_dp lives in bayesmoe.inference.dp (bayesmoe.inference imports bayesmoe.models)
    "sample_dp": "bayesmoe.inference.dp",
}

__getattr__, __dir__ = lazy_exports(__name__, _ATTRS)

__all__ = [
    "GATES",
    "IDENTIFIABILITY",
    "PRIOR_SETS",
    "ModelInfo",
    "ModelSpec",
    "Priors",
    "RandomKInfo",
    "TruncationWarning",
    "build_dp_model",
    "build_model",
    "build_random_k_model",
    "check_truncation",
    "experts_prior_pmf",
    "fixed_k_spec",
    "model_from_spec",
    "occupied_experts",
    "parse_experts_prior",
    "resolve_gate",
    "resolve_priors",
    "sample_dp",
]
