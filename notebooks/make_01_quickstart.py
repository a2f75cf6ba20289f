"""Writes notebooks/01_quickstart.ipynb (run: python notebooks/make_01_quickstart.py)."""

from pathlib import Path

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# bayesmoe quickstart\n"
        "Simulate data from a known softmax-gated mixture of experts, fit it with NUTS, relabel, "
        "summarise, predict, and plot with ArviZ. `BAYESMOE_NB_DRAWS` sets the draws per chain "
        "(the test suite runs this notebook with a small number)."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import numpy as np\n"
        "import arviz as az\n"
        "import matplotlib.pyplot as plt\n"
        "import bayesmoe as bm\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 1000))"
    ),
    nbf.v4.new_markdown_cell(
        "## Simulate\nS-B (docs/math.md §10): two inputs, three experts, a softmax gate."
    ),
    nbf.v4.new_code_cell("X, y, truth = bm.data.simulate('S-B', n=1000, random_seed=1)\ntruth"),
    nbf.v4.new_markdown_cell(
        "## Fit\nChains start from the MM maximum-likelihood fit; the returned DataTree is "
        "already relabelled so that expert 0 means the same expert in every draw and chain."
    ),
    nbf.v4.new_code_cell(
        "model = bm.MoE(n_experts=3, family='gaussian', gate='softmax')\n"
        "trace = model.fit(X, y, draws=DRAWS, tune=DRAWS, chains=2, random_seed=1, progressbar=False)\n"
        "trace"
    ),
    nbf.v4.new_markdown_cell(
        "## Summarise\nR-hat and ESS on relabelled draws, plus the label-invariant log-likelihood."
    ),
    nbf.v4.new_code_cell(
        "bm.summary(trace, var_names=['beta0', 'beta1', 'a', 'b', 'sigma', 'loglik'])"
    ),
    nbf.v4.new_markdown_cell(
        "Without relabelling, chains that settled on different labelings would show R-hat far "
        "above 1; compare the raw trace's permutation record:"
    ),
    nbf.v4.new_code_cell(
        "perm = trace['relabel']['permutation']\n"
        "print('draws whose labels were permuted:', int((perm != perm['expert']).any('expert').sum()))"
    ),
    nbf.v4.new_markdown_cell(
        "## Predict\nIn the user's units: mean, credible band of E[y|x], predictive interval."
    ),
    nbf.v4.new_code_cell(
        "grid = np.column_stack([np.linspace(-2.5, 2.5, 60), np.zeros(60)])\n"
        "pred = model.predict(grid, random_seed=0)\n"
        "gate = model.gate_probabilities(grid).mean(('chain', 'draw'))\n"
        "fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.5))\n"
        "ax0.scatter(X[:, 0], y, s=4, alpha=0.3, color='grey')\n"
        "ax0.plot(grid[:, 0], pred['mean'], label='E[y|x]')\n"
        "ax0.fill_between(grid[:, 0], pred['lower'], pred['upper'], alpha=0.2, label='94% predictive')\n"
        "ax0.set(xlabel='x0 (x1 = 0)', ylabel='y'); ax0.legend()\n"
        "for k in gate['expert'].values:\n"
        "    ax1.plot(grid[:, 0], gate.sel(expert=k), label=f'expert {k}')\n"
        "ax1.set(xlabel='x0 (x1 = 0)', ylabel='gate probability'); ax1.legend()"
    ),
    nbf.v4.new_markdown_cell("The conditional density p(y | x) at two inputs:"),
    nbf.v4.new_code_cell(
        "dens = model.conditional_density(np.array([[-1.5, 0.0], [1.5, 0.0]]), np.linspace(-5, 6, 200))\n"
        "dens['density'].plot.line(x='y', hue='obs');"
    ),
    nbf.v4.new_markdown_cell("## Plot with ArviZ"),
    nbf.v4.new_code_cell("az.plot_trace_dist(trace, var_names=['b', 'sigma']);"),
    nbf.v4.new_code_cell("az.plot_forest(trace, var_names=['a']);"),
    nbf.v4.new_markdown_cell(
        "## Compare with the truth\nThe Voronoi loss is permutation-invariant: no relabelling needed."
    ),
    nbf.v4.new_code_cell(
        "loss = bm.diagnostics.voronoi_loss(bm.mixing_measure(trace), truth)\n"
        "print(f'posterior mean D1 = {float(loss.mean()):.3f}')"
    ),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, Path(__file__).with_name("01_quickstart.ipynb"))
