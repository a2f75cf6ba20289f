"""Write notebooks/03_random_k.ipynb with nbformat (run: python notebooks/build_03_random_k.py).

The notebook reads BAYESMOE_NOTEBOOK_QUICK=1 (set by the test suite) to use tiny draws.
"""

from pathlib import Path

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell("""# A random number of experts: reversible jump and a Dirichlet-process gate

How many experts does a softmax-gated mixture of experts need? Instead of fitting K = 1, 2, 3, ...
and comparing, put a prior on K and sample it. bayesmoe offers two routes (shared/MATH.md §2–3):

1. **Mixture of finite mixtures** — K − 1 ~ Poisson(λ) truncated at K_max, atoms i.i.d. from the
   fixed-K prior, sampled by **reversible-jump** moves (birth/death with a data-informed proposal,
   split/merge with the exact Jacobian, a free permutation) combined with NUTS for the continuous
   parameters. The model lives in a padded space of K_max slots; inactive slots get gate
   probability 0 and follow their prior.
2. **Dirichlet-process gate** — truncated stick-breaking weights give the gate intercepts;
   everything is continuous, so NUTS alone samples it. Its count of *occupied* experts is reported
   but is not a consistent estimate of K (Miller & Harrison).

The data: the S-B setting (Gaussian experts, d = 2, K* = 3)."""),
    nbf.v4.new_code_cell("""import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, sample_random_k
from bayesmoe.models.dp import sample_dp
from bayesmoe.models.random_k import experts_prior_pmf

warnings.filterwarnings("ignore", category=UserWarning)
QUICK = os.environ.get("BAYESMOE_NOTEBOOK_QUICK") == "1"
DRAWS, TUNE = (40, 40) if QUICK else (500, 500)
CHAINS = 1 if QUICK else 2
N = 150 if QUICK else 500
X, y, truth = simulate("S-B", n=N, random_seed=1)
X.shape, truth["beta0"].values"""),
    nbf.v4.new_markdown_cell("""## Reversible jump over K

Chains start at K spread over 1..K_max (over-dispersed on purpose: a stuck chain would show).
`moves_per_step` trans-dimensional moves are tried per NUTS iteration."""),
    nbf.v4.new_code_cell("""K_MAX = 4
trace = sample_random_k(
    X, y, max_experts=K_MAX, experts_prior="poisson:1.0", draws=DRAWS, tune=TUNE,
    chains=CHAINS, cores=1, random_seed=1, step_kwargs={"moves_per_step": 3},
)
pk = k_posterior(trace)
pk"""),
    nbf.v4.new_code_cell("""prior = experts_prior_pmf("poisson:1.0", K_MAX)
fig, ax = plt.subplots(figsize=(5, 3))
ks = pk["n_experts"].values
ax.bar(ks - 0.2, prior, width=0.4, label="prior p(K)")
ax.bar(ks + 0.2, pk.values, width=0.4, label="posterior p(K | y)")
ax.set_xlabel("number of experts K"); ax.set_xticks(ks); ax.legend();"""),
    nbf.v4.new_markdown_cell("""Acceptance per move type (after tuning). Trans-dimensional acceptance is bounded by the
posterior itself: when p(K | y) sits on one K, few jumps can be accepted by any proposal."""),
    nbf.v4.new_code_cell("""acceptance_summary(trace).to_dataframe()"""),
    nbf.v4.new_code_cell("""k = trace.posterior["n_experts"]
fig, ax = plt.subplots(figsize=(6, 2.5))
for c in k["chain"].values:
    ax.plot(k.sel(chain=c).values, lw=0.8, label=f"chain {c}")
ax.set_ylabel("K"); ax.set_xlabel("draw"); ax.legend();"""),
    nbf.v4.new_markdown_cell("""## The same steps with the likelihood off

`prior_only=True` drops the likelihood and runs the same reversible-jump and NUTS steps: the draws
of K must reproduce the prior pmf (the test suite checks this with a chi-square test)."""),
    nbf.v4.new_code_cell("""prior_trace = sample_random_k(
    X, y, max_experts=K_MAX, experts_prior="poisson:1.0", prior_only=True, init="prior",
    draws=DRAWS * 2, tune=TUNE, chains=1, cores=1, random_seed=2,
    step_kwargs={"moves_per_step": 3},
)
np.c_[k_posterior(prior_trace).values, prior]"""),
    nbf.v4.new_markdown_cell("""## A Dirichlet-process gate

Truncated stick-breaking GEM(α) weights at K_max slots are the gate intercepts (free slopes).
The number of occupied experts per draw is reported — with the Miller–Harrison caution that it
is inconsistent for K*: extra tiny experts persist. Select K with merge–truncate–merge or the
dendrogram instead."""),
    nbf.v4.new_code_cell("""dp = sample_dp(X, y, max_experts=5 if QUICK else 8, alpha=1.0, draws=DRAWS, tune=TUNE,
               chains=CHAINS, cores=1, random_seed=3)
occ = dp.posterior["n_occupied"].values.ravel()
print("posterior mean weight of the last stick:", round(dp.attrs["last_stick_weight"], 4))
np.bincount(occ) / occ.size"""),
    nbf.v4.new_code_cell("""import time
print(f"CPU seconds used by this notebook: {time.process_time():.1f}")"""),
]

nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                                "display_name": "Python 3",
                                                                "language": "python"}})
out = Path(__file__).with_name("03_random_k.ipynb")
nbf.write(nb, out)
print("wrote", out)
