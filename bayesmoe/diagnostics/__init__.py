"""Diagnostics over mixing measures: relabelling, summaries, losses, contraction, K selection."""

from bayesmoe.diagnostics.contraction import contraction_summary
from bayesmoe.diagnostics.dendrogram import dendrogram, merge_atoms, plot_dendrogram, select_dsc
from bayesmoe.diagnostics.gate_rate import (
    distortion_rate,
    gate_information_rate,
    routing_distortion,
)
from bayesmoe.diagnostics.hellinger import expected_hellinger, expected_total_variation
from bayesmoe.diagnostics.mixing import mixing_measure
from bayesmoe.diagnostics.mtm import MTMResult, merge_truncate_merge, num_experts_posterior
from bayesmoe.diagnostics.plots import (
    plot_contraction,
    plot_loss_posterior,
    plot_num_experts,
    plot_rate_distortion,
)
from bayesmoe.diagnostics.relabel import (
    permute_experts,
    relabel,
    relabel_permutations,
    stephens_permutations,
)
from bayesmoe.diagnostics.relabel_cross_k import cross_k_summary, relabel_cross_k
from bayesmoe.diagnostics.sbc import plot_sbc, sbc_ranks, sbc_replicate, sbc_summary
from bayesmoe.diagnostics.summary import summary, total_log_likelihood
from bayesmoe.diagnostics.voronoi import voronoi_cells, voronoi_loss

__all__ = [
    "mixing_measure",
    "relabel",
    "relabel_permutations",
    "stephens_permutations",
    "permute_experts",
    "relabel_cross_k",
    "cross_k_summary",
    "summary",
    "total_log_likelihood",
    "voronoi_loss",
    "voronoi_cells",
    "expected_hellinger",
    "expected_total_variation",
    "merge_truncate_merge",
    "num_experts_posterior",
    "MTMResult",
    "gate_information_rate",
    "distortion_rate",
    "routing_distortion",
    "contraction_summary",
    "plot_loss_posterior",
    "plot_contraction",
    "plot_num_experts",
    "plot_rate_distortion",
    "dendrogram",
    "select_dsc",
    "plot_dendrogram",
    "merge_atoms",
    "sbc_replicate",
    "sbc_ranks",
    "sbc_summary",
    "plot_sbc",
]
