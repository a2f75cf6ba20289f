"""Truth-informed starts of the theory studies (benchmarks/_common.py, issue 11).

The 2026-11-30 studies started the over-fitted (K* + 1) MM fits from the truth with one expert
split into two *exact* copies. Exact copies get identical responsibilities and identical MM
updates, so they stay copies: the start is a fixed point and measures nothing about the
over-fitted cell. ``perturbed_split`` moves the copies apart; MM then separates them.
"""

import sys
from pathlib import Path

import numpy as np

from bayesmoe.data import simulate
from bayesmoe.diagnostics import voronoi_cells
from bayesmoe.inference import fit_mle

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _common import perturbed_split  # noqa: E402
from gating_regimes import split_start  # noqa: E402


def _copy_gap(G):
    """Largest parameter difference between the two atoms of the over-fitted cell."""
    theta = np.concatenate([G[v].values.reshape(-1, G.sizes["expert"])
                            for v in ("beta1", "a", "b", "sigma2")], axis=0)
    return float(np.abs(theta[:, 0] - theta[:, -1]).max())


def test_exact_copy_start_is_a_fixed_point_and_perturbed_start_is_not():
    X, y, truth = simulate("S-B", 1500, random_seed=3)
    exact = fit_mle(X, y, 4, n_starts=0, starts=[split_start(truth, 0)], max_iter=50,
                    random_seed=0)
    # the copies (slots 0 and 3) never separate: the gap stays at the round-off of the
    # standardisation round trip (7e-7 here), while MM converges in a few cycles
    assert _copy_gap(exact.measure_) < 1e-5 and exact.converged_
    start = perturbed_split(truth, 0, np.random.default_rng(0))
    moved = fit_mle(X, y, 4, n_starts=0, starts=[start], max_iter=50, random_seed=0)
    print("gaps", _copy_gap(start), _copy_gap(moved.measure_))
    assert _copy_gap(moved.measure_) > 1e-2
    assert moved.loglik_ > exact.loglik_
    assert voronoi_cells(moved.measure_, truth).cell_size.values.tolist()[0] == 2
