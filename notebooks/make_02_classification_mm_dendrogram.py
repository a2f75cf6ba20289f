"""Writes notebooks/02_classification_mm_dendrogram.ipynb (run: python notebooks/make_02_classification_mm_dendrogram.py)."""

from pathlib import Path

import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell

cells = [
    md(
        "# Classification: maximum likelihood by MM, the dendrogram, and a NUTS fit started from MM\n"
        "Data from the S-D setting of docs/math.md §10: two inputs, three classes, two "
        "multinomial-logistic experts behind a softmax gate. We fit the mixture by maximum "
        "likelihood with the MM algorithm, over-fit it and read the number of experts off the "
        "dendrogram of mixing measures (DSC), compare AIC/BIC/ICL, and finish with a short NUTS fit "
        "whose chains start from the MM fit. `BAYESMOE_NB_DRAWS` sets the NUTS draws per chain "
        "(default 500; the test suite runs this notebook with 100)."
    ),
    code(
        "import os\n"
        "import warnings\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "import bayesmoe as bm\n"
        "from bayesmoe.inference import select_experts\n"
        "from bayesmoe.diagnostics import dendrogram, plot_dendrogram\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 500))"
    ),
    md("## Data\nS-D, regime A (both gate slopes non-zero), n = 300; the true measure has K* = 2."),
    code(
        "X, y, truth = bm.data.simulate('S-D', n=300, random_seed=3, regime='A')\n"
        "print('class counts:', np.bincount(y))\n"
        "truth"
    ),
    md(
        "## Maximum likelihood by MM\n"
        "`fit_mle` runs a batch of random starts as one vectorised MM iteration (Böhning's bound "
        "for the gate and the experts, SQUAREM acceleration) and returns the best start as a "
        "mixing measure in the user's units, with AIC, BIC and ICL. The log-likelihood rises at "
        "every iteration; that is the algorithm's contract."
    ),
    code(
        "mm = bm.fit_mle(X, y, 2, family='categorical', n_starts=5, random_seed=1)\n"
        "print(mm)\n"
        "ll_truth = float(bm.measure.log_likelihood(truth, X, y))\n"
        "print(f'log-likelihood: MM fit {mm.loglik_:.2f}, true measure {ll_truth:.2f}')\n"
        "print('ascent violations:', bm.inference.monotone_violations(mm.loglik_trace_).size)\n"
        "fig, ax = plt.subplots(figsize=(5, 3))\n"
        "ax.plot(mm.loglik_trace_)\n"
        "ax.set(xlabel='SQUAREM cycle', ylabel='log-likelihood', title='MM ascent (best start)');"
    ),
    md(
        "A fit that ends with `converged=False` hit `max_iter` while still (slowly) rising: "
        "with n = 300 the likelihood keeps growing as the gate sharpens, the case "
        "docs/math.md §8 describes; the returned best start is still above the true measure's "
        "log-likelihood, as a maximum-likelihood fit must be.\n\n"
        "Fitted class probabilities against the truth on a line through the input square (x1 = 0):"
    ),
    code(
        "grid = np.column_stack([np.linspace(-1, 1, 50), np.zeros(50)])\n"
        "p_mm = bm.measure.conditional_mean(mm.measure_, grid)\n"
        "p_true = bm.measure.conditional_mean(truth, grid)\n"
        "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
        "for c in range(3):\n"
        "    ax.plot(grid[:, 0], p_true[:, c], color=f'C{c}', ls='--')\n"
        "    ax.plot(grid[:, 0], p_mm[:, c], color=f'C{c}', label=f'class {c}')\n"
        "ax.set(xlabel='x0 (x1 = 0)', ylabel='P(y = class | x)', title='MM (solid) vs truth (dashed)')\n"
        "ax.legend();\n"
        "print('training accuracy of the MM fit:',\n"
        "      float(np.mean(bm.measure.conditional_mean(mm.measure_, X).argmax(1) == y)))"
    ),
    md(
        "## Over-fit, then merge: the dendrogram and DSC\n"
        "Fit K̄ = 4 experts, then merge the closest pair of atoms repeatedly with the weighted "
        "dissimilarity of docs/math.md §7. The dendrogram selection criterion "
        "DSC(κ) = −(h^(κ) + log n · ℓ̄_n(G^(κ))) trades the merge height against the average "
        "log-likelihood of the merged measure (plugged in, no refit); κ̂ = argmin."
    ),
    code(
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', UserWarning)  # an over-fitted gate may not converge\n"
        "    over = bm.fit_mle(X, y, 4, family='categorical', n_starts=3, max_iter=300, tol=1e-6,\n"
        "                      random_seed=2)\n"
        "dend = dendrogram(over.measure_, X, y)\n"
        "print('DSC choice: K =', dend.attrs['n_experts_selected'])\n"
        "dend[['height', 'mean_loglik', 'dsc']].to_dataframe()"
    ),
    code(
        "fig, ax = plt.subplots(figsize=(5, 3.5))\n"
        "plot_dendrogram(dend, ax=ax)\n"
        "ax.set_title('dendrogram of the K̄ = 4 MM fit');"
    ),
    md(
        "## Information criteria\n"
        "`select_experts` fits K = 1..K_max by MM and tabulates log-likelihood, AIC, BIC and ICL "
        "(lower is better) with the DSC choice from the K_max fit."
    ),
    code(
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', UserWarning)\n"
        "    table = select_experts(X, y, 3, family='categorical', n_starts=3, max_iter=300,\n"
        "                           tol=1e-6, random_seed=4)\n"
        "print({k: table.attrs[k] for k in ('selected_aic', 'selected_bic', 'selected_icl',\n"
        "                                   'selected_dsc')})\n"
        "table"
    ),
    md(
        "BIC's log n penalty is heavy at n = 300 (15 parameters for K = 2) and can prefer fewer "
        "experts than the truth; DSC reads K off the over-fitted fit's dendrogram instead."
    ),
    md(
        "## A short NUTS fit started from MM\n"
        "`sample` starts every chain from an MM maximum-likelihood fit (jittered per chain) "
        "rather than from the prior, so the chains begin in the main mode. The predictions are "
        "posterior means of the class probabilities, with credible bands from the draws."
    ),
    code(
        "trace = bm.sample(X, y, n_experts=2, family='categorical', gate='softmax', draws=DRAWS,\n"
        "                  tune=DRAWS, chains=2, cores=1, random_seed=5, progressbar=False)\n"
        "print('chains started from:', trace.attrs['init'],\n"
        "      f\"(MM start {trace.attrs['seconds_init']:.1f} s, sampling \"\n"
        "      f\"{trace.attrs['seconds_sampling']:.1f} s)\")\n"
        "print('divergences:', int(trace.sample_stats['diverging'].sum()))\n"
        "bm.summary(trace, var_names=['beta0', 'beta1', 'loglik'])"
    ),
    code(
        "pp = bm.posterior_predictive(trace, grid, random_seed=6)['probs']\n"
        "mean = pp.mean(('chain', 'draw'))\n"
        "lo, hi = pp.quantile([0.03, 0.97], dim=('chain', 'draw'))\n"
        "fig, ax = plt.subplots(figsize=(6, 3.5))\n"
        "for c in range(3):\n"
        "    ax.fill_between(grid[:, 0], lo.isel({'class': c}), hi.isel({'class': c}),\n"
        "                    color=f'C{c}', alpha=0.2)\n"
        "    ax.plot(grid[:, 0], mean.isel({'class': c}), color=f'C{c}', label=f'class {c}')\n"
        "    ax.plot(grid[:, 0], p_mm[:, c], color=f'C{c}', ls=':')\n"
        "ax.set(xlabel='x0 (x1 = 0)', ylabel='P(y = class | x)',\n"
        "       title='posterior mean and 94% band (solid, shaded) vs MM (dotted)')\n"
        "ax.legend();\n"
        "probs = bm.predict(trace, X[:5], random_seed=7)['probs']\n"
        "probs.to_pandas().round(3)"
    ),
    md(
        "The posterior mean probabilities sit close to the MM plug-in where the data are dense; the "
        "credible bands show where a single maximum-likelihood fit is uncertain."
    ),
]
nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).with_name("02_classification_mm_dendrogram.ipynb")
nbf.write(nb, out)
print(f"wrote {out}")
