"""Write notebooks/03_random_k.ipynb with nbformat (run: python notebooks/build_03_random_k.py).

``BAYESMOE_NB_DRAWS`` sets the draws per chain (default 500; the test suite uses 100, and below
200 draws the notebook also uses fewer observations and one chain).
"""

from pathlib import Path

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell("""# A random number of experts: reversible jump and a Dirichlet-process gate

How many experts does a softmax-gated mixture of experts need? Instead of fitting K = 1, 2, 3, ...
and comparing, put a prior on K and sample it. bayesmoe offers two routes (docs/math.md §2–3):

1. **Mixture of finite mixtures** — K − 1 ~ Poisson(λ) truncated at K_max, atoms i.i.d. from the
   fixed-K prior, sampled by **reversible-jump** moves (birth/death with a data-informed proposal,
   split/merge with the exact Jacobian, a free permutation) combined with NUTS for the continuous
   parameters. The model lives in a padded space of K_max slots; inactive slots get gate
   probability 0 and follow their prior.
2. **Dirichlet-process gate** — truncated stick-breaking weights give the gate intercepts;
   everything is continuous, so NUTS alone samples it. Its count of *occupied* experts is reported
   but is not a consistent estimate of K (Miller & Harrison).

The data: the S-B setting (Gaussian experts, d = 2, K* = 3). The notebook then follows each
expert across draws with different K (cross-K relabelling) and puts every way of choosing K in
one table (`bm.compare_experts`)."""),
    nbf.v4.new_code_cell("""import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

from bayesmoe.data import simulate
from bayesmoe.inference.rjmcmc import acceptance_summary, k_posterior, sample_random_k
from bayesmoe.models.dp import sample_dp
from bayesmoe.models.random_k import experts_prior_pmf

warnings.filterwarnings("ignore", category=UserWarning)
DRAWS = int(os.environ.get("BAYESMOE_NB_DRAWS", 500))
TUNE = DRAWS
QUICK = DRAWS < 200
CHAINS = 1 if QUICK else 2
N = 150 if QUICK else 500
X, y, truth = simulate("S-B", n=N, random_seed=1)
X.shape, truth["beta0"].values"""),
    nbf.v4.new_markdown_cell("""## Reversible jump over K

Chains start at K spread over 1..K_max (over-dispersed on purpose: a stuck chain would show).
For Gaussian experts with covariates the default sampler is the compiled one (one JAX program:
within-K sweeps, then `moves_per_step` trans-dimensional moves per sweep); `sampler="step"` runs
PyMC's NUTS with the reversible-jump step method instead (a compiled trace has `attrs["rj_sampler"] == "compiled"`)."""),
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
    nbf.v4.new_markdown_cell("""## Following an expert across K

The permutation move shuffles expert labels on purpose, and draws differ in K, so "expert 2" of
one draw need not be "expert 2" of the next. `relabel_cross_k` maps the experts of *every* draw
onto one set of reference atoms: those of the modal K (pivot-relabelled), plus extra rows for the
experts that only appear when K is larger. Atoms are compared in the canonical coordinates of the
Voronoi losses (docs/math.md §4: masses, mass-centred gate slopes, expert parameters, log σ²) and each
draw is matched one-to-one (Hungarian algorithm), then the references are re-estimated until no
assignment changes. Each row of the summary is a stable expert, with the % of draws it is in and
the mean K of those draws; rows are ordered by presence."""),
    nbf.v4.new_code_cell("""from bayesmoe.diagnostics import cross_k_summary, relabel_cross_k

cross = relabel_cross_k(trace)
rows = cross_k_summary(cross, var_names=["weight", "a", "b", "sigma"])
print("reference K:", cross.attrs["reference_k"], "| rows:", cross.sizes["expert"])
rows.round(2)"""),
    nbf.v4.new_markdown_cell("""Compare with the truth (S-B: three experts with intercept 0.5 and slopes (1.5, 0.9),
(0.6, 0.5), (1.1, −0.3), noise sd 0.9, 0.5, 1.2). Rows present in (nearly) every draw are
experts every K agrees on; when p(K | y) is split between K = 2 and 3, a row with a large mass and
averaged slopes is the merged expert of the K = 2 draws, and rows present in few draws are the
occasional extra expert. With few observations (the test suite's quick run) K = 1 dominates."""),
    nbf.v4.new_code_cell("""import pandas as pd
from scipy.special import softmax

w_true = softmax(truth["beta0"].values)  # gate weights at x = 0 (standardised inputs)
pd.DataFrame({"weight at x=0": w_true,
              **{f"a[{f}]": truth["a"].sel(feature=f).values for f in truth["feature"].values},
              "b": truth["b"].values, "sigma": np.sqrt(truth["sigma2"].values)}).round(2)"""),
    nbf.v4.new_markdown_cell("""## Every way of choosing K in one table

`bm.compare_experts` fits K = 1..K_max by MM (AIC, BIC, ICL; the dendrogram selection criterion
DSC from the K_max fit), runs NUTS per K for LOO (`arviz.compare`) and the merge–truncate–merge
posterior of K from the over-fitted K_max fit, and adds p(K | y) from reversible jump — here
reusing the trace above instead of resampling. `bayesmoe select data.csv --target y
--max-experts 4 --nuts --rjmcmc` prints the same table."""),
    nbf.v4.new_code_cell("""import bayesmoe as bm

table = bm.compare_experts(
    X, y, ks=range(1, K_MAX + 1), n_starts=3, nuts=True,
    nuts_kwargs={"draws": DRAWS, "tune": TUNE, "chains": CHAINS, "cores": 1},
    rjmcmc=trace, random_seed=1, progressbar=False,
)
print("choices:", table.attrs["selected"])
table[["loglik", "bic", "icl", "dsc", "p_mtm", "p_rjmcmc", "elpd_loo", "se_loo",
       "loo_weight"]].round(3)"""),
    nbf.v4.new_code_cell("""bm.inference.plot_compare_experts(table);"""),
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

nb = nbf.v4.new_notebook(
    cells=cells,
    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
)
out = Path(__file__).with_name("03_random_k.ipynb")
nbf.write(nb, out)
print("wrote", out)
