"""Choosing the number of experts, in one place: information criteria (AIC/BIC/ICL,
:func:`select_experts`), the dendrogram selection criterion (DSC, :func:`select_dsc`),
merge–truncate–merge (:func:`merge_truncate_merge`) and the side-by-side table of all of them with
LOO and p(K | y) (:func:`compare_experts`).

Names are imported on first use (PEP 562).
"""

from bayesmoe._lazy import lazy_exports

_ATTRS = {
    "compare_experts": "bayesmoe.selection.compare",
    "plot_compare_experts": "bayesmoe.selection.compare",
    "select_experts": "bayesmoe.selection.criteria",
    "dendrogram": "bayesmoe.selection.dendrogram",
    "merge_atoms": "bayesmoe.selection.dendrogram",
    "plot_dendrogram": "bayesmoe.selection.dendrogram",
    "select_dsc": "bayesmoe.selection.dendrogram",
    "MTMResult": "bayesmoe.selection.mtm",
    "merge_truncate_merge": "bayesmoe.selection.mtm",
    "num_experts_posterior": "bayesmoe.selection.mtm",
}

__getattr__, __dir__ = lazy_exports(__name__, _ATTRS)

__all__ = sorted(_ATTRS)
