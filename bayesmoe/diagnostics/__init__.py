"""Diagnostics over mixing measures: relabelling, summaries, losses, contraction, K selection."""

from bayesmoe.diagnostics.mixing import mixing_measure

__all__ = ["mixing_measure"]
