"""PyMC model builders: gates, experts, priors, the fixed-K MoE."""

from bayesmoe.models.builder import IDENTIFIABILITY, ModelInfo, build_model
from bayesmoe.models.gates import GATES, resolve_gate
from bayesmoe.models.priors import Priors

__all__ = ["build_model", "ModelInfo", "Priors", "GATES", "IDENTIFIABILITY", "resolve_gate"]
