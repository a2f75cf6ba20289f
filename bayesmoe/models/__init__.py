"""PyMC model builders: gates, experts, priors, fixed K, random K, Dirichlet-process gate."""

from bayesmoe._lazy import lazy_exports
from bayesmoe.models.builder import IDENTIFIABILITY, ModelInfo, build_model
from bayesmoe.models.dp import (
    TruncationWarning,
    build_dp_model,
    check_truncation,
    occupied_experts,
)
from bayesmoe.models.gates import GATES, resolve_gate
from bayesmoe.models.priors import PRIOR_SETS, Priors, resolve_priors
from bayesmoe.models.random_k import (
    RandomKInfo,
    build_random_k_model,
    experts_prior_pmf,
    parse_experts_prior,
)

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


# sample_dp lives in bayesmoe.inference.dp (lazily: bayesmoe.inference imports bayesmoe.models)
__getattr__, _ = lazy_exports(__name__, {"sample_dp": "bayesmoe.inference.dp"})
