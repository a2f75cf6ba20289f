"""Diagnostics over mixing measures: relabelling, summaries, losses, contraction, K selection."""

from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.diagnostics.relabel import (
    permute_experts,
    relabel,
    relabel_permutations,
    stephens_permutations,
)
from bayesmoe.diagnostics.summary import summary, total_log_likelihood

__all__ = [
    "mixing_measure",
    "relabel",
    "relabel_permutations",
    "stephens_permutations",
    "permute_experts",
    "summary",
    "total_log_likelihood",
]
