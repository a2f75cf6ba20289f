"""bayesmoe: Bayesian softmax-gated mixtures of experts on PyMC, PyTensor and ArviZ.

Examples
--------
>>> import bayesmoe as bm
>>> X, y, truth = bm.data.simulate("S-B", n=500, random_seed=1)
>>> model = bm.MoE(n_experts=3)
>>> trace = model.fit(X, y, random_seed=1)          # doctest: +SKIP
>>> bm.summary(trace)                               # doctest: +SKIP
"""

__version__ = "0.1.0"

from bayesmoe import data, diagnostics, inference, measure, models, report, study  # noqa: E402
from bayesmoe.diagnostics import mixing_measure, relabel, summary  # noqa: E402
from bayesmoe.inference import (  # noqa: E402
    compare_experts,
    conditional_density,
    fit_mle,
    gate_probabilities,
    posterior_predictive,
    predict,
    sample,
)
from bayesmoe.models import Priors, build_model  # noqa: E402
from bayesmoe.moe import MoE  # noqa: E402

__all__ = [
    "MoE",
    "Priors",
    "build_model",
    "sample",
    "fit_mle",
    "compare_experts",
    "predict",
    "posterior_predictive",
    "gate_probabilities",
    "conditional_density",
    "mixing_measure",
    "relabel",
    "summary",
    "data",
    "diagnostics",
    "inference",
    "measure",
    "models",
    "report",
    "study",
    "__version__",
]
