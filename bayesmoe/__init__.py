"""bayesmoe: Bayesian softmax-gated mixtures of experts on PyMC, PyTensor and ArviZ."""

from bayesmoe import data, diagnostics, measure

__version__ = "0.1.0"

__all__ = ["data", "diagnostics", "measure", "__version__"]
