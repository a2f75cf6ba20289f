"""Writes notebooks/04_diagnostics.ipynb and executes it once (run: python notebooks/make_04_diagnostics.py).

Pass ``--no-execute`` to only write the notebook. ``BAYESMOE_NB_DRAWS`` sets the draws per chain.
"""

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

cells = [
    nbf.v4.new_markdown_cell(
        "# Diagnostics: Voronoi losses, contraction, the number of experts, gate rate\n"
        "A fitted mixture of experts is a *mixing measure* G = Σ_k exp(β0_k) δ_(β1_k, a_k, b_k, σ²_k) "
        "(docs/math.md §1). This notebook compares posterior draws of G with the truth of a "
        "simulated setting: Voronoi losses (§4), the expected Hellinger distance (§5), the "
        "posterior of the number of experts by merge–truncate–merge (§6), the dendrogram and DSC "
        "(§7), and the gate's information rate with a rate–distortion curve (§9). "
        "`BAYESMOE_NB_DRAWS` sets the NUTS draws per chain (the test suite uses 100)."
    ),
    nbf.v4.new_code_cell(
        "import os\n"
        "import warnings\n"
        "import numpy as np\n"
        "import matplotlib.pyplot as plt\n"
        "from bayesmoe.data import simulate\n"
        "from bayesmoe.inference import sample, fit_mle\n"
        "from bayesmoe.diagnostics import (\n"
        "    mixing_measure, voronoi_loss, voronoi_cells, expected_hellinger, num_experts_posterior,\n"
        "    dendrogram, select_dsc, plot_dendrogram, gate_information_rate, routing_distortion,\n"
        "    distortion_rate, plot_loss_posterior, plot_num_experts, plot_rate_distortion)\n"
        "\n"
        "DRAWS = int(os.environ.get('BAYESMOE_NB_DRAWS', 500))\n"
        "warnings.filterwarnings('ignore', message='Only .* samples per chain')"
    ),
    nbf.v4.new_markdown_cell(
        "## A short NUTS fit of S-B with the true number of experts\n"
        "S-B (docs/math.md §10): two Gaussian inputs, K* = 3 experts. Chains start from the MM fit; "
        "`cores=1` keeps the run to one process."
    ),
    nbf.v4.new_code_cell(
        "n = 600\n"
        "X, y, truth = simulate('S-B', n, random_seed=4)\n"
        "trace = sample(X, y, n_experts=3, draws=DRAWS, tune=DRAWS, chains=2, cores=1,\n"
        "               random_seed=4, progressbar=False)\n"
        "G = mixing_measure(trace)\n"
        "G"
    ),
    nbf.v4.new_markdown_cell(
        "## Voronoi loss D1 to the truth\n"
        "Each fitted atom joins the cell of its nearest true atom; D1 adds the mass error of "
        "every cell and the mass-weighted parameter errors. It is invariant to permuting experts "
        "and to shifting the gate, so no relabelling is needed. The MM point estimate is marked.\n\n"
        "The masses are the gate weights softmax(β0) *at input 0*: pass `X=` to read them at "
        "centred inputs (S-B's inputs are centred already, so here it changes nothing; on inputs "
        "in [0, 1] it changes the values, not the rates)."
    ),
    nbf.v4.new_code_cell(
        "d1 = voronoi_loss(G, truth, kind='exact', X=X)\n"
        "mle = fit_mle(X, y, 3, n_starts=4, random_seed=4)\n"
        "d1_mle = float(voronoi_loss(mle.measure_, truth))\n"
        "ax = plot_loss_posterior(d1)\n"
        "ax.axvline(d1_mle, color='k', ls='--', label=f'MM fit: {d1_mle:.3f}')\n"
        "ax.legend()\n"
        "print(f'posterior mean D1 = {float(d1.mean()):.3f}, MM fit D1 = {d1_mle:.3f}')"
    ),
    nbf.v4.new_markdown_cell("Per-cell errors, averaged over the posterior:"),
    nbf.v4.new_code_cell(
        "cells = voronoi_cells(G, truth)\n"
        "cells[['cell_size', 'mass_error', 'cell_error_beta1', 'cell_error_a', 'cell_error_b',\n"
        "       'cell_error_sigma2']].mean(('chain', 'draw')).to_dataframe().round(3)"
    ),
    nbf.v4.new_markdown_cell(
        "## Expected Hellinger distance\n"
        "h̄ = E_X h(p(·|X), p*(·|X)) on conditional densities, per draw (every 5th draw, 300 "
        "inputs). The theory (§5) says its posterior concentrates at rate √(log n / n); "
        "benchmarks/contraction.py measures the slope over n."
    ),
    nbf.v4.new_code_cell(
        "h = expected_hellinger(G.isel(draw=slice(None, None, 5)), truth, X[:300])\n"
        "plot_loss_posterior(h)\n"
        "print(f'posterior mean h = {float(h.mean()):.4f};  sqrt(log n / n) = '\n"
        "      f'{np.sqrt(np.log(n) / n):.4f}')"
    ),
    nbf.v4.new_markdown_cell(
        "## The number of experts from an over-fitted fit\n"
        "Fit K̄ = 4 > K* experts. Merge–truncate–merge (§6) merges atoms closer than "
        "ω_n = (log n / n)^(1/8), drops atoms too light to matter and re-merges; the posterior of "
        "the surviving count K̃ estimates K*. Next to it: the number of *occupied* experts "
        "(allocations drawn from the posterior responsibilities), which docs/math.md §2.4 warns "
        "over-counts.\n\n"
        "MTM is for **posterior draws**. On a point estimate (an MM fit) it refuses the default "
        "radius: the MLE's surplus atoms sit far from every other atom with non-negligible "
        "masses, and no radius constant made K̃ consistent on S-B (benchmarks/README.md, "
        "Selection). Select K of point estimates with BIC or DSC (below)."
    ),
    nbf.v4.new_code_cell(
        "trace_over = sample(X, y, n_experts=4, draws=DRAWS, tune=DRAWS, chains=2, cores=1,\n"
        "                    random_seed=5, progressbar=False)\n"
        "G_over = mixing_measure(trace_over)\n"
        "pmf_mtm = num_experts_posterior(G_over, method='mtm', n=n, random_seed=0)\n"
        "pmf_occ = num_experts_posterior(G_over, method='occupied', X=X, y=y, random_seed=0)\n"
        "fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.5))\n"
        "plot_num_experts(pmf_mtm, ax=ax0, true_k=3); ax0.set_title('MTM posterior of K̃')\n"
        "plot_num_experts(pmf_occ, ax=ax1, true_k=3); ax1.set_title('occupied experts')\n"
        "mtm = zip(pmf_mtm.n_experts.values, pmf_mtm.values, strict=True)\n"
        "print('MTM pmf:', {int(k): round(float(v), 3) for k, v in mtm})\n"
        "from bayesmoe.diagnostics import merge_truncate_merge\n"
        "try:\n"
        "    merge_truncate_merge(fit_mle(X, y, 4, n_starts=2, random_seed=5).measure_, n=n)\n"
        "except ValueError as err:\n"
        "    print('MTM on an MM point:', str(err)[:120], '...')"
    ),
    nbf.v4.new_markdown_cell(
        "## Dendrogram of mixing measures and DSC\n"
        "From one over-fitted MM fit with K̄ = 5, merge the closest pair of atoms repeatedly "
        "(§7). DSC(κ) = −(h^(κ) + log n · ℓ̄_n(G^(κ))) picks the level. At this small n DSC "
        "can over-select on S-B (benchmarks/selection.py: it picks K* = 3 in 0/5 data sets at "
        "n = 500 and 5/5 at n = 4000)."
    ),
    nbf.v4.new_code_cell(
        "fit5 = fit_mle(X, y, 5, n_starts=4, random_seed=1)\n"
        "dend = dendrogram(fit5.measure_, X, y)\n"
        "plot_dendrogram(dend)\n"
        "print('DSC selects K =', select_dsc(fit5.measure_, X, y))\n"
        "dend[['height', 'dsc']].to_dataframe().round(3)"
    ),
    nbf.v4.new_markdown_cell(
        "## Gate information rate against temperature\n"
        "Î(X;T) = H(mean_j g(x_j)) − mean_j H(g(x_j)) (nats) of the gate softmax(η/τ), one value "
        "per posterior draw; it falls from near its τ → 0 value to 0 as τ grows, and never "
        "exceeds log K."
    ),
    nbf.v4.new_code_cell(
        "taus = np.logspace(-2, 2, 9)\n"
        "G_thin = G.isel(draw=slice(None, None, 5))\n"
        "rates = np.array([gate_information_rate(G_thin, X, temperature=t).values.ravel()\n"
        "                  for t in taus])\n"
        "fig, ax = plt.subplots(figsize=(5, 3.5))\n"
        "ax.plot(taus, rates.mean(1), 'o-', label='posterior mean')\n"
        "ax.fill_between(taus, *np.quantile(rates, [0.05, 0.95], axis=1), alpha=0.3, label='90%')\n"
        "ax.axhline(np.log(3), color='grey', ls=':', label='log K')\n"
        "ax.set(xscale='log', xlabel='temperature τ', ylabel='I(X;T) (nats)'); ax.legend()\n"
        "print(np.round(rates.mean(1), 3))"
    ),
    nbf.v4.new_markdown_cell(
        "## A small rate–distortion curve\n"
        "Distortion d(x, t) = squared error of routing x to expert t under the MM fit; "
        "Blahut–Arimoto traces D(R), the least expected distortion of any routing channel with "
        "rate ≤ R. The posterior draws of the fitted gate's rate (τ = 1) are marked on the R axis; "
        "the fitted gate's own expected distortion must lie on or above the curve."
    ),
    nbf.v4.new_code_cell(
        "d = routing_distortion(mle.measure_, X, y, loss='squared')\n"
        "rd = distortion_rate(d, np.logspace(-2, 3, 40))\n"
        "ax = plot_rate_distortion(rd, rate=gate_information_rate(G_thin, X))\n"
        "from bayesmoe.measure import gate_probabilities, measure_arrays\n"
        "arr = measure_arrays(mle.measure_, [])\n"
        "w = gate_probabilities(arr['beta0'], arr['beta1'], X)\n"
        "R_fit = float(gate_information_rate(mle.measure_, X)); D_fit = float((w * d.values).sum(1).mean())\n"
        "ax.plot(R_fit, D_fit, 'r*', ms=12, label='MM gate'); ax.legend()\n"
        "order = np.argsort(rd.R.values)\n"
        "D_at = np.interp(R_fit, rd.R.values[order], rd.D.values[order])\n"
        "print(f'MM gate: rate {R_fit:.3f} nats, distortion {D_fit:.3f} >= D(R) = {D_at:.3f}')"
    ),
]

cells.append(
    nbf.v4.new_markdown_cell(
        "## What you can rely on (benchmarks/README.md, measured 2026-11-30 and 2026-12-02)\n"
        "- **The losses are computed as defined.** D1, D2, the Voronoi cells, the gauge, the "
        "exponents r̄(2) = 4 and r̄(3) = 6 and the variance (not sd) agree with an independent "
        "plain-loop implementation of docs/math.md §4 to 1e-10 (tests/diagnostics/"
        "test_voronoi_reference.py).\n"
        "- **Exact-fitted rates reproduce.** D1 and h̄ fall at n^(-1/2) on S-A and S-B, for MM fits "
        "and for the NUTS posterior mean.\n"
        "- **Over-fitted D2 and per-cell errors are noisy, heavy-tailed summaries.** One fit's D2 can "
        "be dominated by a light atom far from its true atom, raised to r̄ = 4; the over-fitted "
        "MLE splits a different true atom from one data set to the next and can place a spurious "
        "light atom where the gate switches. With the MLE out to n = 10^5 (S-A, 14 fits) D2 falls "
        "(pooled slope −0.77 [−1.77, +0.23]) and the over-fitted cell's (a, σ²) error falls at "
        "−0.49 [−0.87, −0.11] (theory −1/4 is an upper bound); per cell type the intervals are too "
        "wide to separate −1/8 from −1/4. Read D2 across replicates, never one fit.\n"
        "- **Regime B's stall (multinomial experts with a vanishing slope) is not observable on S-D "
        "at n ≤ 32000**: even exact-fitted errors there are ≈ 100·n^(-1/2), and the over-fitted "
        "cell around the vanishing-slope expert keeps shrinking; the theory's statement is a "
        "minimax lower bound, not a prediction for one truth at moderate n.\n"
        "- **MTM**: use it on posterior draws (default C = 1 gave the posterior mode K̃ = 3 on S-B "
        "at n = 1000 and 2000); for point estimates use BIC or DSC — MTM refuses them unless you "
        "give `omega` yourself."
    )
)

if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    from _build import build

    build(cells, "04_diagnostics.ipynb")
