"""Writes notebooks/07_from_csv.ipynb and executes it once (run: python notebooks/make_07_from_csv.py).

Pass ``--no-execute`` to only write the notebook. ``BAYESMOE_NB_DRAWS`` sets the draws per chain.
"""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

cells = [
    nbf.v4.new_markdown_cell(
        "# From your own CSV: fit → plots → choose K → predict\n"
        "A walk through a real data set as a user would start: a CSV file read with pandas. The "
        "data are the motorcycle-crash accelerations (`mcycle`, Silverman 1985; bundled with "
        "bayesmoe, provenance in `bayesmoe/data/datasets/PROVENANCE.md`): head acceleration "
        "(g) against time after impact (ms), flat, then a deep dip and a rebound, with noise "
        "that grows after the impact — a curve that one straight line cannot follow but a few "
        "local lines, switched by a gate on time, can. `BAYESMOE_NB_DRAWS` sets the draws per "
        "chain (the test suite runs this notebook with a small number)."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "from importlib.resources import files\n"
        "\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "\n"
        "import bayesmoe as bm\n"
        "from bayesmoe.diagnostics.summary import describe\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 1000))\n"
        "csv = files('bayesmoe.data') / 'datasets' / 'mcycle.csv'  # your own file's path here\n"
        "df = pd.read_csv(csv)\n"
        "print(df.shape)\n"
        "df.head()"
    ),
    nbf.v4.new_markdown_cell(
        "## Choose K\n"
        "`compare_experts` fits K = 1..5 by maximum likelihood (MM, several starts each) and lines "
        "up AIC, BIC, ICL and the dendrogram criterion DSC; with `nuts=True` or `rjmcmc=True` it "
        "adds LOO and p(K | y). Its `recommendation` says which K and why."
    ),
    nbf.v4.new_code_cell(
        "X, y = df[['times']], df['accel']\n"
        "table = bm.compare_experts(X, y, ks=range(1, 6), n_starts=5, random_seed=0,\n"
        "                           progressbar=False)\n"
        "print('recommendation:', table.attrs['recommendation'])\n"
        "fig = bm.plots.plot_k_choice(table)"
    ),
    nbf.v4.new_markdown_cell(
        "## Fit\n"
        "NUTS at the recommended K, started from the MM fit; the returned trace is relabelled, "
        "so expert 0 means the same expert in every draw."
    ),
    nbf.v4.new_code_cell(
        "K = table.attrs['recommended']\n"
        "model = bm.MoE(n_experts=K)\n"
        "trace = model.fit(X, y, draws=DRAWS, tune=DRAWS, chains=2, random_seed=1,\n"
        "                  progressbar=False)\n"
        "print(f'fitted K = {K} experts')"
    ),
    nbf.v4.new_markdown_cell(
        "## Look at the fitted model\n"
        "Each expert's line over the data (posterior mean and 94% band), the points coloured by "
        "the expert most likely to have produced them, and the gate: which expert is in charge "
        "at each time."
    ),
    nbf.v4.new_code_cell("fig = bm.plots.plot_fit(trace, y_label='acceleration (g)')"),
    nbf.v4.new_markdown_cell(
        "The parameters in the data's units (ms, g), and what each one means:"
    ),
    nbf.v4.new_code_cell(
        "table_fit = bm.summary(trace, round_to=3)\n"
        "print(describe(table_fit))\n"
        "table_fit[['mean', 'sd', 'eti94_lb', 'eti94_ub', 'r_hat']]"
    ),
    nbf.v4.new_markdown_cell(
        "## Predict\n"
        "New times as a DataFrame (columns matched by name): the mean acceleration with its "
        "credible band and a 94% predictive interval; then the whole predictive density at "
        "one time, where the experts overlap."
    ),
    nbf.v4.new_code_cell(
        "new = pd.DataFrame({'times': [10.0, 20.0, 30.0, 45.0]})\n"
        "pred = model.predict(new, random_seed=0)\n"
        "print(pred.to_dataframe().round(1).assign(times=new['times'].values)"
        ".set_index('times'))\n"
        "ax = bm.plots.plot_predictive_density(trace, {'times': 20.0},\n"
        "                                      y_label='acceleration (g)')"
    ),
    nbf.v4.new_code_cell(
        "grid = pd.DataFrame({'times': np.linspace(df['times'].min(), df['times'].max(), 120)})\n"
        "band = model.predict(grid, random_seed=0)\n"
        "fig, ax = plt.subplots(figsize=(8, 3.5))\n"
        "ax.scatter(df['times'], df['accel'], s=8, color='0.4', label='data')\n"
        "ax.plot(grid['times'], band['mean'], color='C0', label='E[accel | time]')\n"
        "ax.fill_between(grid['times'], band['lower'], band['upper'], color='C0', alpha=0.2,\n"
        "                label='94% predictive interval')\n"
        "ax.set(xlabel='time after impact (ms)', ylabel='acceleration (g)'); ax.legend()\n"
        "inside = ((df['accel'] >= model.predict(X, random_seed=0)['lower'].values)\n"
        "          & (df['accel'] <= model.predict(X, random_seed=0)['upper'].values)).mean()\n"
        "print(f'observations inside their 94% predictive interval: {inside:.0%}')"
    ),
]

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _build import build

    build(cells, "07_from_csv.ipynb")
