"""Inference: NUTS sampling (pymc / nutpie / numpyro), prediction, the MM fitter."""

from bayesmoe.inference.prediction import (
    conditional_density,
    gate_probabilities,
    posterior_predictive,
    predict,
)
from bayesmoe.inference.sampling import BACKENDS, INITS, sample

__all__ = [
    "sample",
    "BACKENDS",
    "INITS",
    "predict",
    "posterior_predictive",
    "gate_probabilities",
    "conditional_density",
]
