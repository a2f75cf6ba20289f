"""Writes notebooks/09_counts.ipynb and executes it once (run: python notebooks/make_09_counts.py).

Pass ``--no-execute`` to only write the notebook. ``BAYESMOE_NB_DRAWS`` sets the draws per chain.
"""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

cells = [
    nbf.v4.new_markdown_cell(
        "# Counts: Poisson experts with a gate of their own, and what a negative binomial "
        "changes\n"
        "The data are flexmix's `patent` example (Wang, Cockburn & Puterman 1998; provenance in "
        "`tests/published/PROVENANCE.md`): for 70 pharmaceutical and biomedical companies, the "
        "number of patents granted, the log of R&D spending (`lgRD`) and the ratio of R&D "
        "spending to sales (`RDS`). flexmix's model has Poisson regressions of `Patents` on "
        "`lgRD` as experts and a gate on `RDS` alone. `BAYESMOE_NB_DRAWS` sets the NUTS draws "
        "per chain (the test suite uses 100)."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import warnings\n"
        "from pathlib import Path\n"
        "\n"
        "import arviz as az\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "\n"
        "import bayesmoe as bm\n"
        "from bayesmoe.diagnostics.summary import describe\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 1000))\n"
        "DATA = Path(bm.__file__).parents[1] / 'tests' / 'published'  # flexmix's data sets\n"
        "patent = pd.read_csv(DATA / 'patent.csv')\n"
        "X, y, Z = patent[['lgRD']], patent['Patents'], patent[['RDS']]  # experts, response, gate\n"
        "print(f'{len(y)} companies; patents from {y.min()} to {y.max()}, median {y.median():.0f}, '\n"
        "      f'{(y == 0).sum()} with none')"
    ),
    nbf.v4.new_markdown_cell(
        "## Choose K\n"
        "`compare_experts` fits K = 1..4 by maximum likelihood (several starts each) with "
        "Poisson experts on `lgRD` and the gate on `RDS` (`gate_X=`), and says which K it "
        "recommends and why."
    ),
    nbf.v4.new_code_cell(
        "table = bm.compare_experts(X, y, ks=range(1, 5), family='poisson', gate_X=Z,\n"
        "                           n_starts=10, random_seed=0, progressbar=False)\n"
        "print('recommendation:', table.attrs['recommendation'])\n"
        "table[['loglik', 'n_params', 'aic', 'bic', 'icl']].round(2)"
    ),
    nbf.v4.new_markdown_cell(
        "The K = 3 log-likelihood is the optimum flexmix prints for this model "
        "(-197.6753 with 10 parameters)."
    ),
    nbf.v4.new_code_cell(
        "K = table.attrs['recommended']\n"
        "print(f\"Poisson K = {K}: MM loglik {table.loc[K, 'loglik']:.4f}\")"
    ),
    nbf.v4.new_markdown_cell(
        "## The posterior at that K\n"
        "NUTS starts from the maximum-likelihood fit; the trace comes back relabelled, so "
        "expert 0 is the same expert in every draw. `a` is each expert's slope on `lgRD` (the "
        "elasticity of patents to R&D spending), `beta1` the gate's slope on `RDS`."
    ),
    nbf.v4.new_code_cell(
        "pois = bm.MoE(n_experts=K, family='poisson')\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')  # short runs in the test suite\n"
        "    trace = pois.fit(X, y, gate_X=Z, draws=DRAWS, tune=DRAWS, chains=2, random_seed=1,\n"
        "                     progressbar=False)\n"
        "summ = bm.summary(trace, round_to=3)\n"
        "print(describe(summ))\n"
        "summ[['mean', 'sd', 'eti94_lb', 'eti94_ub', 'r_hat']]"
    ),
    nbf.v4.new_markdown_cell(
        "## Do simulated counts look like the observed ones?\n"
        "A posterior predictive check: for every posterior draw, new counts for the same 70 "
        "companies (`posterior_predictive`, with the gate's `RDS` passed as `gate_X`), sorted "
        "into the same bins as the data. Bars are the observed numbers of companies per bin; "
        "dots and lines are the predicted mean and 94% interval."
    ),
    nbf.v4.new_code_cell(
        "EDGES = [0, 1, 2, 3, 5, 10, 25, 50, 100, np.inf]\n"
        "LABELS = ['0', '1', '2', '3-4', '5-9', '10-24', '25-49', '50-99', '100+']\n"
        "\n"
        "\n"
        "def frequencies(counts):\n"
        '    """Companies per count bin; counts (..., n) -> (..., bins)."""\n'
        "    idx = np.searchsorted(EDGES, counts, side='right') - 1\n"
        "    return np.stack([(idx == b).sum(-1) for b in range(len(LABELS))], axis=-1)\n"
        "\n"
        "\n"
        "def ppc(model, ax, colour, name, shift):\n"
        "    draws = model.posterior_predictive(X, gate_X=Z, random_seed=0)['y'].values\n"
        "    f = frequencies(draws.reshape(-1, len(y)))\n"
        "    lo, hi = np.quantile(f, [0.03, 0.97], axis=0)\n"
        "    pos = np.arange(len(LABELS)) + shift\n"
        "    ax.errorbar(pos, f.mean(0), yerr=[f.mean(0) - lo, hi - f.mean(0)], fmt='o',\n"
        "                color=colour, label=f'{name}: predicted (94%)')\n"
        "    return f\n"
        "\n"
        "\n"
        "observed = frequencies(y.to_numpy())\n"
        "fig, ax = plt.subplots(figsize=(8, 3.5))\n"
        "ax.bar(np.arange(len(LABELS)), observed, color='0.8', label='observed')\n"
        "f_pois = ppc(pois, ax, 'C0', f'Poisson, K = {K}', 0.0)\n"
        "ax.set(xticks=range(len(LABELS)), xticklabels=LABELS, xlabel='patents',\n"
        "       ylabel='companies'); ax.legend();\n"
        "for b in (0, 1):\n"
        "    print(f'{LABELS[b]} patents: observed {observed[b]}, Poisson predicts '\n"
        "          f'{f_pois[:, b].mean():.1f} (94%: {np.quantile(f_pois[:, b], 0.03):.0f}'\n"
        "          f'-{np.quantile(f_pois[:, b], 0.97):.0f})')"
    ),
    nbf.v4.new_markdown_cell(
        "Three Poisson experts reproduce most of the spread of the counts, from none to 173, "
        "which one Poisson regression cannot (its K = 1 log-likelihood above is about 120 units "
        "lower). The mixture buys that spread with two extra experts and their gate. One bin "
        "is off: 10-24 patents holds 5 companies, about half what the model predicts."
    ),
    nbf.v4.new_markdown_cell(
        "## What a negative binomial changes: the log-likelihood\n"
        "A negative binomial expert has variance mu + alpha mu^2 (`alpha` is its dispersion; "
        "alpha = 0 is the Poisson expert), so it contains the Poisson expert and its maximum "
        "log-likelihood at the same K can only be higher. The same comparison of K with "
        "negative binomial experts:"
    ),
    nbf.v4.new_code_cell(
        "nb_table = bm.compare_experts(X, y, ks=range(1, 5), family='negbinomial', gate_X=Z,\n"
        "                              n_starts=10, random_seed=0, progressbar=False)\n"
        "print('recommendation:', nb_table.attrs['recommendation'])\n"
        "pd.DataFrame({'Poisson loglik': table['loglik'], 'NB loglik': nb_table['loglik'],\n"
        "              'Poisson BIC': table['bic'], 'NB BIC': nb_table['bic']}).round(2)"
    ),
    nbf.v4.new_markdown_cell(
        "The negative binomial is never below the Poisson at the same K (the nesting). One "
        "negative binomial regression gains about 110 units of log-likelihood over one Poisson "
        "regression with a single extra parameter; three Poisson experts gain 10 more with 7 "
        "more parameters, and BIC prefers the single negative binomial. Much of what the "
        "Poisson mixture describes as groups of companies, one negative binomial describes as "
        "extra variation around one line."
    ),
    nbf.v4.new_markdown_cell(
        "## The dispersion\n"
        "The maximum-likelihood `alpha` of each expert at K = 1 and at the Poisson's K:"
    ),
    nbf.v4.new_code_cell(
        "K_nb = nb_table.attrs['recommended']\n"
        "for k in sorted({K_nb, K}):\n"
        "    fit = bm.fit_mle(X, y, k, family='negbinomial', gate_X=Z, n_starts=10, random_seed=0)\n"
        "    print(f'K = {k}: loglik {fit.loglik_:.2f}, alpha per expert',\n"
        "          np.round(fit.measure_['alpha'].values, 3))"
    ),
    nbf.v4.new_markdown_cell(
        "With one expert, alpha is clearly above 0: the counts vary more than a Poisson allows. "
        "With K experts, the fit puts the extra variation into one expert and leaves the others "
        "at (or near) the Poisson limit alpha = 0: at this K the mixture already carries most "
        "of the overdispersion."
    ),
    nbf.v4.new_markdown_cell(
        "## LOO: which predicts new companies better?\n"
        "Leave-one-out cross-validation (PSIS-LOO, `az.compare`) of the Poisson mixture above "
        "against the negative binomial at the K its own comparison recommended, both sampled "
        "by NUTS. A difference smaller than about two of its standard errors (`dse`) does not "
        "separate the models."
    ),
    nbf.v4.new_code_cell(
        "nb = bm.MoE(n_experts=K_nb, family='negbinomial')\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')  # short runs; Pareto-k warnings are in the table\n"
        "    nb_trace = nb.fit(X, y, gate_X=Z, draws=DRAWS, tune=DRAWS, chains=2, random_seed=1,\n"
        "                      progressbar=False)\n"
        "    loo = az.compare({f'Poisson K={K}': trace, f'NB K={K_nb}': nb_trace},\n"
        "                     round_to='none')\n"
        "print(f\"NB alpha posterior mean {float(nb_trace.posterior['alpha'].mean()):.3f}\")\n"
        "loo[['elpd', 'se', 'p', 'elpd_diff', 'dse']].round(1)"
    ),
    nbf.v4.new_markdown_cell(
        "The same frequency check for the negative binomial beside the Poisson mixture:"
    ),
    nbf.v4.new_code_cell(
        "fig, ax = plt.subplots(figsize=(8, 3.5))\n"
        "ax.bar(np.arange(len(LABELS)), observed, color='0.8', label='observed')\n"
        "ppc(pois, ax, 'C0', f'Poisson, K = {K}', -0.12)\n"
        "f_nb = ppc(nb, ax, 'C1', f'NB, K = {K_nb}', 0.12)\n"
        "ax.set(xticks=range(len(LABELS)), xticklabels=LABELS, xlabel='patents',\n"
        "       ylabel='companies'); ax.legend();\n"
        "print(f'0 patents: observed {observed[0]}, NB predicts {f_nb[:, 0].mean():.1f}')"
    ),
    nbf.v4.new_markdown_cell(
        "The two models predict nearly the same count frequencies, and both over-predict the "
        "10-24 bin: whatever is missing there, neither the extra experts nor the dispersion "
        "supplies it."
    ),
    nbf.v4.new_markdown_cell(
        "What to take away: on these counts, a Poisson mixture and a single negative binomial "
        "fit about equally well out of sample; the mixture says there are groups of companies "
        "with different R&D returns, the negative binomial says there is one return with "
        "extra noise. The data alone do not decide between the two stories, and the gate's "
        "groups should not be read as real without other evidence."
    ),
]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _build import build

    build(cells, "09_counts.ipynb")
