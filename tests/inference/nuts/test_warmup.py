"""Warm-up of the compiled NUTS path: the adapted dense mass matrices are shrunk towards the
Hessian start by pseudo-draws added to NumPyro's Welford accumulator between chunks
(jax_nuts._shrink_to_hessian), found in the flat sampler state by shape."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("numpyro")


def _state(dense: bool, nd: int = 3):
    """A NumPyro NUTS state of a Gaussian potential, its leaves with a leading chain axis of 2."""
    from numpyro.infer.hmc import hmc

    init_kernel, _ = hmc(potential_fn=lambda x: 0.5 * (x * x).sum(), algo="NUTS")
    with jax.enable_x64(True):
        state = init_kernel(
            np.zeros(nd), num_warmup=300, dense_mass=dense, rng_key=np.zeros(2, np.uint32)
        )
        leaves = [np.stack([np.asarray(v)] * 2) for v in jax.tree.leaves(state)]
    return state, leaves


def test_shrink_adds_pseudo_draws_to_the_welford_accumulator():
    from bayesmoe.inference.nuts.jax_nuts import _shrink_to_hessian

    state, leaves = _state(dense=True)
    treedef = jax.tree.structure(state)
    prior = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]])
    out = jax.tree.unflatten(treedef, [v[1] for v in _shrink_to_hessian(leaves, prior, 7)])
    _, m2, n = out.adapt_state.mm_state
    np.testing.assert_array_equal(m2, 7 * prior)  # the accumulator starts at zero
    assert int(n) == 7
    # nothing else in the state moved (the inverse mass matrix is set when the window closes)
    before = jax.tree.leaves(state)
    after = jax.tree.leaves(out)
    moved = [
        i for i, (a, b) in enumerate(zip(before, after, strict=True)) if not np.array_equal(a, b)
    ]
    assert len(moved) == 2


def test_shrink_leaves_a_diagonal_state_alone():
    # must-fail twin of the lookup: a diagonal mass matrix has no (ndim, ndim) accumulator
    from bayesmoe.inference.nuts.jax_nuts import _shrink_to_hessian

    _, leaves = _state(dense=False)
    out = _shrink_to_hessian(leaves, np.eye(3), 7)
    assert all(a is b for a, b in zip(leaves, out, strict=True))


def test_window_ends_follow_numpyros_schedule():
    from bayesmoe.inference.nuts.jax_nuts import _window_ends

    # 75-step start buffer, windows of 25, 50 and the rest, 50-step end buffer (Stan's schedule)
    assert _window_ends(300) == [99, 149, 249]
