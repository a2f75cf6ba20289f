"""The gate modules: one definition per gate, evaluated the same by every array namespace."""

import numpy as np
import pytest

from bayesmoe.families import NUMPY, jax_ops, pytensor_ops
from bayesmoe.gates import (
    CONSTANT,
    GATES,
    STICK_BREAKING,
    CustomGate,
    canonical_name,
    check_gate,
    get_gate,
    resolve_gate,
)
from bayesmoe.gates.base import Gate

Z = np.random.default_rng(0).normal(scale=3.0, size=(7, 2))


@pytest.mark.parametrize("name", sorted(GATES))
def test_each_gate_transform_is_one_definition_on_every_backend(name):
    """numpy, JAX and PyTensor evaluate the gate's one transform alike (to round-off)."""
    jax = pytest.importorskip("jax")
    gate = get_gate(name)
    ref = gate.transform(Z)
    with jax.enable_x64(True):  # the compiled sampler's precision
        got = np.asarray(gate.transform(jax.numpy.asarray(Z), jax_ops()))
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    import pytensor.tensor as pt

    np.testing.assert_allclose(
        gate.transform(pt.as_tensor(Z), pytensor_ops()).eval(), ref, rtol=1e-12
    )
    _, tensor_fn = resolve_gate(name)  # what the PyMC builders apply to the gate's pm.Data
    np.testing.assert_allclose(tensor_fn(pt.as_tensor(Z)).eval(), ref, rtol=1e-12)


def test_the_named_transforms_are_the_documented_maps():
    """Against independent formulas (docs/math.md §1.3); swapping two maps fails."""
    np.testing.assert_array_equal(get_gate("softmax").transform(Z), Z)
    np.testing.assert_allclose(get_gate("tanh").transform(Z), np.tanh(Z), rtol=1e-15)
    np.testing.assert_allclose(get_gate("sigmoid").transform(Z), 1 / (1 + np.exp(-Z)), rtol=1e-14)
    assert not np.allclose(get_gate("tanh").transform(Z), get_gate("sigmoid").transform(Z))


def test_log_weights_are_a_log_softmax_over_experts():
    eta = np.random.default_rng(1).normal(size=(4, 3))
    lw = get_gate("tanh").log_weights(eta)
    np.testing.assert_allclose(np.exp(lw).sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(lw - lw[:, :1], eta - eta[:, :1], rtol=1e-14)  # softmax ratios


def test_constant_gate_reads_no_covariates():
    assert not CONSTANT.covariates and all(get_gate(n).covariates for n in GATES)
    assert CONSTANT.transform(Z).shape == (7, 0)


def test_stick_breaking_weights_on_every_backend():
    """w_k = v_k prod_{j<k}(1 - v_j), w_K = prod(1 - v_j): a probability vector, the same in
    numpy and PyTensor (the DP builder's graph).
    """
    v = np.array([0.3, 0.6, 0.1])
    lw = STICK_BREAKING.log_intercepts(v)
    expected = [0.3, 0.7 * 0.6, 0.7 * 0.4 * 0.1, 0.7 * 0.4 * 0.9]
    np.testing.assert_allclose(np.exp(lw), expected, rtol=1e-14)
    np.testing.assert_allclose(STICK_BREAKING.log_intercepts(v, pytensor_ops()).eval(), lw)


def test_custom_gate_numpy_and_tensor():
    import pytensor.tensor as pt

    gate = get_gate(pt.arctan)
    assert isinstance(gate, CustomGate) and gate.name == "custom"
    np.testing.assert_allclose(gate.transform(Z), np.arctan(Z), rtol=1e-15)
    with pytest.raises(ValueError, match="pass the callable as `gate=`"):
        get_gate("custom")


def test_old_name_identity_reads_as_softmax_and_warns_as_an_option():
    assert get_gate("identity") is get_gate("softmax")
    assert canonical_name("identity") == "softmax"
    with pytest.warns(DeprecationWarning, match="gate='softmax'"):
        assert resolve_gate("identity")[0] == "softmax"
    with pytest.warns(DeprecationWarning):
        assert check_gate("identity") == "softmax"
    with pytest.raises(ValueError, match="`gate` must be one of"):
        check_gate("linear")


def test_a_measure_stored_with_the_old_name_evaluates_as_softmax():
    from bayesmoe.data import simulate
    from bayesmoe.measure import log_likelihood

    X, y, truth = simulate("S-B", n=100, random_seed=0)
    assert truth.attrs["gate"] == "softmax"
    old = truth.assign_attrs(gate="identity")
    assert log_likelihood(old, X, y) == log_likelihood(truth, X, y)
    tanh = truth.assign_attrs(gate="tanh")  # must-fail twin: another gate changes the value
    assert log_likelihood(tanh, X, y) != pytest.approx(log_likelihood(truth, X, y))


def test_every_gate_implements_the_protocol():
    for gate in (*GATES.values(), CONSTANT, STICK_BREAKING):
        assert isinstance(gate, Gate) and gate.name and gate.description
        assert gate.transform(Z, NUMPY).shape[0] == Z.shape[0]
