"""PyMC model builders: gates, experts, priors, fixed K, random K, Dirichlet-process gate.

Names are imported on first use (PEP 562), so ``bayesmoe.models.spec`` (the checks and layout of a
fixed-K model) is available without importing PyMC.
"""

from bayesmoe._lazy import lazy_exports

_ATTRS = {
    "IDENTIFIABILITY": "bayesmoe.models.spec",
    "ModelInfo": "bayesmoe.models.spec",
    "build_model": "bayesmoe.models.builder",
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
    "build_model",
    "ModelInfo",
    "Priors",
    "PRIOR_SETS",
    "resolve_priors",
    "GATES",
    "IDENTIFIABILITY",
    "resolve_gate",
    "build_random_k_model",
    "RandomKInfo",
    "experts_prior_pmf",
    "parse_experts_prior",
    "build_dp_model",
    "sample_dp",
    "occupied_experts",
    "check_truncation",
    "TruncationWarning",
]
