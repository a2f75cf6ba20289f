"""Writes notebooks/08_formulas.ipynb and executes it once (run: python notebooks/make_08_formulas.py).

Pass ``--no-execute`` to only write the notebook. ``BAYESMOE_NB_DRAWS`` sets the draws per chain.
"""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

cells = [
    nbf.v4.new_markdown_cell(
        "# Formulas for the experts and the gate\n"
        "flexmix writes `flexmix(y ~ x, concomitant = FLXPmultinom(~ z))`, MoEClust "
        "`MoE_clust(Y, expert = ~ x, gating = ~ z)`. bayesmoe takes the same two formulas on a "
        "pandas DataFrame (`bayesmoe.formula`, built on formulaic): `formula=` for the response "
        "and the experts, `gate_formula=` for the gate, in R's conventions (`C(g)`, `a * b`, "
        "`log(x)`, `offset(...)`, `~ 1` for constant mixing weights). bayesmoe fits the "
        "intercepts itself, so the intercept column is dropped from both designs. This notebook "
        "refits two of flexmix's documented examples from their formulas. `BAYESMOE_NB_DRAWS` "
        "sets the NUTS draws per chain (the test suite uses 100)."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import warnings\n"
        "from pathlib import Path\n"
        "\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "\n"
        "import bayesmoe as bm\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 1000))\n"
        "DATA = Path(bm.__file__).parents[1] / 'tests' / 'published'  # flexmix's data sets\n"
        "seizure = pd.read_csv(DATA / 'seizure.csv')\n"
        "patent = pd.read_csv(DATA / 'patent.csv')\n"
        "seizure.head()"
    ),
    nbf.v4.new_markdown_cell(
        "## Seizure counts: a mixture of Poisson regressions\n"
        "flexmix's `seizure` example: daily seizure counts before and after a treatment, two "
        "latent regimes with constant weights, the observation hours as exposure. The formula is "
        "flexmix's own, `Seizures ~ Treatment * log(Day) + offset(log(Hours))`, and `'~ 1'` "
        "makes the weights constant."
    ),
    nbf.v4.new_code_cell(
        "f = 'Seizures ~ Treatment * log(Day) + offset(log(Hours))'\n"
        "res = bm.fit_mle(data=seizure, formula=f, gate_formula='~ 1', n_experts=2,\n"
        "                 family='poisson', n_starts=20, random_seed=0)\n"
        "print('design columns:', res.measure_['feature'].values.tolist())\n"
        "print(f'MM fit loglik {res.loglik_:.4f} with {res.n_params_} parameters; flexmix -376.1762 (df 9)')"
    ),
    nbf.v4.new_markdown_cell(
        "The same fit from hand-built columns gives the same optimum: the formula only builds "
        "the matrices (`bm.design_matrices` returns them, with the `Design` that re-applies "
        "the transforms to new rows)."
    ),
    nbf.v4.new_code_cell(
        "dm = bm.design_matrices(seizure, f, '~ 1', family='poisson')\n"
        "twin = bm.fit_mle(dm.X.to_numpy(), seizure['Seizures'], 2, family='poisson',\n"
        "                  offset=np.log(seizure['Hours']), gate_X=np.zeros((len(seizure), 0)),\n"
        "                  n_starts=20, random_seed=0)\n"
        "print(f'matrix fit loglik {twin.loglik_:.4f}')\n"
        "dm.X.head(3)"
    ),
    nbf.v4.new_markdown_cell(
        "## The posterior, and predictions on a new DataFrame\n"
        "`MoE.fit(data=..., formula=...)` samples the posterior; its predictions take a new "
        "DataFrame with the original columns (the response is not needed) and apply the stored "
        "design: the factor coding, `log(Day)`, the interaction and the offset."
    ),
    nbf.v4.new_code_cell(
        "model = bm.MoE(n_experts=2, family='poisson')\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')  # short runs in the test suite\n"
        "    trace = model.fit(data=seizure, formula=f, gate_formula='~ 1', draws=DRAWS,\n"
        "                      tune=DRAWS, chains=2, random_seed=1, progressbar=False)\n"
        "print('trace formula:', trace.attrs['formula'])\n"
        "fig, ax = plt.subplots(figsize=(7, 3.5))\n"
        "ax.scatter(seizure['Day'], seizure['Seizures'] / seizure['Hours'], s=8, color='grey',\n"
        "           label='observed rate (per hour)')\n"
        "for treated in ('No', 'Yes'):  # each over the days it was observed\n"
        "    seen = seizure.loc[seizure['Treatment'] == treated, 'Day']\n"
        "    days = np.arange(seen.min(), seen.max() + 1)\n"
        "    new = pd.DataFrame({'Day': days, 'Treatment': treated, 'Hours': 1.0})\n"
        "    ax.plot(days, model.predict(new)['mean'], label=f'E[rate], Treatment = {treated}')\n"
        "ax.set(xlabel='Day', ylabel='seizures per hour'); ax.legend();"
    ),
    nbf.v4.new_markdown_cell(
        "A factor level not seen in the fit is an error, not a silent row of zeros:"
    ),
    nbf.v4.new_code_cell(
        "try:\n"
        "    model.predict(pd.DataFrame({'Day': [10], 'Treatment': ['Maybe'], 'Hours': [1.0]}))\n"
        "except ValueError as err:\n"
        "    print('ValueError:', err)"
    ),
    nbf.v4.new_markdown_cell(
        "## Patents: a gate with covariates of its own\n"
        "flexmix's `patent` example: patents against log R&D spending (`Patents ~ lgRD`), three "
        "Poisson regressions whose weights depend on the R&D-to-sales ratio, the concomitant "
        "model `~ RDS`."
    ),
    nbf.v4.new_code_cell(
        "pat = bm.fit_mle(data=patent, formula='Patents ~ lgRD', gate_formula='~ RDS',\n"
        "                 n_experts=3, family='poisson', n_starts=20, random_seed=0)\n"
        "print(f'MM fit loglik {pat.loglik_:.4f} with {pat.n_params_} parameters; flexmix -197.6753 (df 10)')\n"
        "print('gate features:', pat.measure_['gate_feature'].values.tolist())"
    ),
    nbf.v4.new_markdown_cell(
        "The same from the command line: `bayesmoe fit patent.csv --formula 'Patents ~ lgRD' "
        "--gate-formula '~ RDS' --family poisson --experts 3 --method mle`."
    ),
]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _build import build

    build(cells, "08_formulas.ipynb")
