"""Pooling the chains' dense mass-matrix windows (jax_nuts._pool_windows, ``pool_mass=True``).

Exact checks on a sampler state's leaves: the Welford sums of squares and counts become the sums
over the chains, every other leaf is untouched, and a state of another layout is left alone.
Short compiled runs check that the option reaches the sampler.
"""

import numpy as np
import pytest

from bayesmoe.inference.nuts.jax_nuts import _pool_windows, _window_ends


def _leaves(chains=3, nd=4, seed=0):
    rng = np.random.default_rng(seed)
    sq = [rng.normal(size=(chains, nd, nd)) for _ in range(4)]
    return [
        rng.normal(size=(chains,)),  # step size
        *sq[:3],  # inverse mass matrix and its square roots
        rng.normal(size=(chains, nd)),  # Welford mean
        sq[3],  # Welford m2
        np.array([10, 12, 11][:chains]),  # Welford n
        np.zeros(chains, int),  # window index
    ]


def test_pooled_sums_and_leaves_the_rest():
    leaves = _leaves()
    out = _pool_windows(leaves, 4)
    np.testing.assert_array_equal(out[5], np.broadcast_to(leaves[5].sum(0), leaves[5].shape))
    np.testing.assert_array_equal(out[6], [33, 33, 33])
    for i in (0, 1, 2, 3, 4, 7):
        assert out[i] is leaves[i]
    assert not np.array_equal(out[5][0], leaves[5][0])  # must-fail twin: it did change


def test_other_layout_left_alone():
    leaves = _leaves()
    del leaves[2]  # three square leaves: not NumPyro's dense adaptation state
    out = _pool_windows(leaves, 4)
    assert all(a is b for a, b in zip(out, leaves, strict=True))


def test_window_ends_are_numpyros():
    assert _window_ends(300) == [99, 149, 249]


@pytest.mark.slow  # ~12 s (compiles its own programs); the exact checks above run by default
@pytest.mark.filterwarnings("ignore::bayesmoe.ConvergenceWarning")  # 20-draw runs
def test_pooling_changes_the_run_and_only_the_warmup():
    """pool_mass=True reaches the sampler (the draws differ from the unpooled run's) and a
    single chain, with nothing to pool, gives the unpooled draws exactly.
    """
    pytest.importorskip("numpyro")
    from bayesmoe.data import simulate
    from bayesmoe.inference import sample

    X, y, _ = simulate("S-B", n=200, random_seed=1)

    def run(pool, chains):
        tr = sample(
            X,
            y,
            n_experts=2,
            draws=20,
            tune=200,
            chains=chains,
            random_seed=1,
            progressbar=False,
            pool_mass=pool,
        )
        return tr.posterior["b_std"].values

    assert not np.array_equal(run(True, 2), run(False, 2))
    np.testing.assert_array_equal(run(True, 1), run(False, 1))
