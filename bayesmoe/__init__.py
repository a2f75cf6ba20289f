"""bayesmoe: Bayesian softmax-gated mixtures of experts on PyMC, PyTensor and ArviZ.

Examples
--------
A tiny run (20 draws, one chain) to show the calls; a real fit keeps the default draws, tune
and chains.

>>> import bayesmoe as bm
>>> X, y, truth = bm.data.simulate("S-B", n=300, random_seed=1)
>>> model = bm.MoE(n_experts=3)
>>> trace = model.fit(X, y, draws=20, tune=20, chains=1, random_seed=1, progressbar=False)
>>> table = bm.summary(trace, var_names=["beta0", "sigma"], round_to=2)
>>> table.index.tolist()
['beta0[0]', 'beta0[1]', 'beta0[2]', 'sigma[0]', 'sigma[1]', 'sigma[2]']
"""

__version__ = "0.1.0"

from bayesmoe._lazy import lazy_exports

# Imports are lazy (PEP 562): `import bayesmoe` costs milliseconds, and the maximum-likelihood path
# (bayesmoe.inference.mle.mm, `bayesmoe fit --method mle`) never imports PyMC/PyTensor/ArviZ.
_SUBMODULES = {
    "data",
    "diagnostics",
    "formula",
    "inference",
    "measure",
    "models",
    "plots",
    "prediction",
    "report",
    "selection",
    "study",
}
_ATTRS = {
    "ConvergenceWarning": "bayesmoe.diagnostics.convergence",
    "compare_experts": "bayesmoe.inference",
    "mixing_measure": "bayesmoe.diagnostics",
    "relabel": "bayesmoe.diagnostics",
    "summary": "bayesmoe.diagnostics",
    "conditional_density": "bayesmoe.inference",
    "fit_mle": "bayesmoe.inference",
    "gate_probabilities": "bayesmoe.inference",
    "posterior_predictive": "bayesmoe.inference",
    "predict": "bayesmoe.inference",
    "sample": "bayesmoe.inference",
    "Priors": "bayesmoe.models",
    "build_model": "bayesmoe.models",
    "MoE": "bayesmoe.moe",
    "design_matrices": "bayesmoe.formula",
}


__getattr__, __dir__ = lazy_exports(__name__, _ATTRS, _SUBMODULES)


__all__ = [
    "ConvergenceWarning",
    "MoE",
    "Priors",
    "__version__",
    "build_model",
    "compare_experts",
    "conditional_density",
    "data",
    "design_matrices",
    "diagnostics",
    "fit_mle",
    "formula",
    "gate_probabilities",
    "inference",
    "measure",
    "mixing_measure",
    "models",
    "plots",
    "posterior_predictive",
    "predict",
    "relabel",
    "report",
    "sample",
    "study",
    "summary",
]
