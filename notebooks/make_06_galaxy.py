"""Writes notebooks/06_galaxy.ipynb and executes it once (run: python notebooks/make_06_galaxy.py).

Pass ``--no-execute`` to only write the notebook. ``BAYESMOE_NB_DRAWS`` sets the draws per chain.
"""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

cells = [
    nbf.v4.new_markdown_cell(
        "# Galaxy velocities: a mixture without covariates and the posterior of k\n"
        "A Gaussian mixture is the mixture of experts with no inputs (X of shape (n, 0)): the gate "
        "reduces to mixing weights softmax(β0), the experts to means b and sds σ. This notebook "
        "fits the 82 galaxy velocities (Roeder 1990; `load_dataset('galaxy')`, in 1000 km/s) with "
        "a random number of components k under the hierarchical prior of Richardson & Green "
        "(1997): weights ~ Dirichlet(1, …, 1), μ_j ~ N(ξ, R²) with ξ the midpoint and R the "
        "range of y, σ_j⁻² ~ Gamma(2, β), β ~ Gamma(0.2, 10/R²), k ~ U{1, …, 30}, and puts p(k | y) "
        "beside their Table 1. `BAYESMOE_NB_DRAWS` sets the draws per chain (the test suite uses "
        "100; the full comparison with its Monte Carlo error is in benchmarks/README.md, "
        "'Galaxy')."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import warnings\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "import arviz as az\n"
        "from scipy import stats\n"
        "from bayesmoe.data import load_dataset\n"
        "from bayesmoe.inference import select_experts\n"
        "from bayesmoe.inference.rjmcmc import sample_random_k, k_posterior, acceptance_summary\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 5000))\n"
        "warnings.filterwarnings('ignore', message='Only .* samples per chain')\n"
        "X, y, info = load_dataset('galaxy')\n"
        "print(X.shape, y.shape, info['units'])"
    ),
    nbf.v4.new_markdown_cell(
        "## Reversible jump under the Richardson–Green prior\n"
        "Birth/death and split/merge moves change k; between them an exact conjugate Gibbs sweep "
        "(allocations, Dirichlet weights, means, precisions, β) updates the continuous "
        "parameters — `sample_random_k` picks it automatically for d = 0 under this prior "
        "(`continuous='auto'`). Two chains start at k = 2 and k = 12."
    ),
    nbf.v4.new_code_cell(
        "trace = sample_random_k(X, y, max_experts=30, experts_prior='uniform',\n"
        "                        priors='richardson-green', draws=DRAWS, tune=max(DRAWS // 10, 50),\n"
        "                        chains=2, cores=1, start_experts=[2, 12], random_seed=6,\n"
        "                        step_kwargs={'moves_per_step': 5})\n"
        "print(trace.attrs['sampler'])\n"
        "pk = k_posterior(trace)\n"
        "k = trace.posterior['n_experts'].values\n"
        "print(f'ESS of k: {float(az.ess(k.astype(float))):.0f} from {k.size} draws')\n"
        "acceptance_summary(trace).to_dataframe()"
    ),
    nbf.v4.new_markdown_cell(
        "## p(k | y) beside Richardson & Green's Table 1\n"
        "Bars: our estimate with ±2 Monte Carlo standard errors (from the effective sample size "
        "of each indicator 1{k = j}); dots: RG's published values (themselves an MCMC estimate)."
    ),
    nbf.v4.new_code_cell(
        "RG = np.array([0.000, 0.000, 0.061, 0.128, 0.182, 0.199, 0.160, 0.109, 0.071, 0.040,\n"
        "               0.023, 0.013, 0.006, 0.003])\n"
        "ks = np.arange(1, 15)\n"
        "p = pk.sel(n_experts=ks).values\n"
        "se = np.array([np.sqrt(pj * (1 - pj) / float(az.ess((k == j).astype(float))))\n"
        "               if 0 < pj < 1 else 0.0 for j, pj in zip(ks, p, strict=True)])\n"
        "fig, ax = plt.subplots(figsize=(8, 3.5))\n"
        "ax.bar(ks, p, yerr=2 * se, color='C0', alpha=0.7, capsize=3, label='bayesmoe (RJ + Gibbs)')\n"
        "ax.plot(ks, RG, 'o', color='C3', label='Richardson & Green (1997), Table 1')\n"
        "ax.set_xlabel('k'); ax.set_ylabel('p(k | y)'); ax.set_xticks(ks); ax.legend()\n"
        "print('p(k | y):')\n"
        "for j in ks:\n"
        "    print(f'  k={j:2d}  ours {p[j - 1]:.3f} ± {se[j - 1]:.3f}   RG {RG[j - 1]:.3f}')"
    ),
    nbf.v4.new_markdown_cell(
        "## The density estimate\n"
        "The posterior predictive density of a new velocity averages the mixture density over the "
        "draws, k included (only the active slots enter: `active`)."
    ),
    nbf.v4.new_code_cell(
        "post = trace.posterior.to_dataset()[['beta0', 'active', 'b', 'sigma']]\n"
        "post = post.stack(s=('chain', 'draw'))  # (the empty d = 0 slopes cannot be stacked)\n"
        "grid = np.linspace(5, 40, 300)\n"
        "beta0 = post['beta0'].transpose('s', 'expert').values\n"
        "active = post['active'].transpose('s', 'expert').values\n"
        "lw = np.where(active, beta0, -np.inf)\n"
        "w = np.exp(lw - np.logaddexp.reduce(lw, axis=1, keepdims=True))\n"
        "mu = post['b'].transpose('s', 'expert').values\n"
        "sd = post['sigma'].transpose('s', 'expert').values\n"
        "dens = (w[:, None, :] * stats.norm.pdf(grid[None, :, None], mu[:, None, :],\n"
        "                                       sd[:, None, :])).sum(-1)\n"
        "fig, ax = plt.subplots(figsize=(8, 3.5))\n"
        "ax.hist(y, bins=30, density=True, color='0.8', label='data')\n"
        "ax.plot(grid, dens.mean(0), color='C0', label='posterior predictive density')\n"
        "ax.set_xlabel('velocity (1000 km/s)'); ax.legend()\n"
        "print(f'density integrates to {np.trapezoid(dens.mean(0), grid):.3f} over the grid')"
    ),
    nbf.v4.new_markdown_cell(
        "## mclust-style BIC by MM\n"
        "The same data by maximum likelihood (MM, 20 starts per K, unequal variances): "
        "BIC = 2 log L − p log n with p = 3K − 1, higher is better (mclust's sign)."
    ),
    nbf.v4.new_code_cell(
        "table = select_experts(X, y, 8, n_starts=20 if DRAWS >= 1000 else 4, random_seed=0)\n"
        "table['bic_mclust'] = 2 * table['loglik'] - table['n_params'] * np.log(y.size)\n"
        "print('mclust-style BIC, best K =', int(table['bic_mclust'].idxmax()))\n"
        "table[['loglik', 'n_params', 'bic_mclust', 'converged']]"
    ),
]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _build import build

    build(cells, "06_galaxy.ipynb")
