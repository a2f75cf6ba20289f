"""The flat (numpy/JAX) log density equals the PyMC model's, term for term, for every option.

PyMC's graph is evaluated with mode="FAST_COMPILE" (Python implementations, no compilation) so
these checks cost no compile time. PyMC's Normal log density carries its constant
log(sqrt(2 pi)) at float32 precision (about 2e-9 per scalar prior term, measured), so the total
logp is compared with rtol 1e-8 and differences between two points, where constants cancel,
with atol 1e-9.
"""

import numpy as np
import pymc as pm
import pytest

from bayesmoe.data import simulate
from bayesmoe.inference.nuts.flat_model import flat_model
from bayesmoe.models import build_model
from tests.helpers import flat_data, flat_options

OPTIONS = flat_options()


@pytest.fixture(scope="module", params=range(len(OPTIONS)), ids=lambda i: f"opts{i}")
def built(request):
    X, y, opts = flat_data(OPTIONS[request.param])
    model, info = build_model(X, y, **opts)
    fm = flat_model(model, info)
    assert fm is not None, f"flat model does not cover {opts}"
    return model, info, fm


def test_logp_equals_pymc(built):
    model, _, fm = built
    logp = model.compile_logp(mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    xs = rng.normal(scale=0.7, size=(4, fm.ndim))
    ours = np.array([fm.logp(x) for x in xs])
    theirs = np.array([logp(fm.unflatten(x)) for x in xs])
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=1e-9)
    # batched evaluation (leading dims) gives the same values
    np.testing.assert_allclose(fm.logp(xs), ours, rtol=1e-13)


def test_jax_logp_and_gradient_equal_pymc(built):
    jax = pytest.importorskip("jax")
    model, _, fm = built
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    x = np.random.default_rng(1).normal(scale=0.7, size=fm.ndim)
    data = fm.data()
    with jax.enable_x64(True):
        f = jax.jit(jax.value_and_grad(fm.jax_logp()))
        val, grad = f(jax.numpy.asarray(x), {k: jax.numpy.asarray(v) for k, v in data.items()})
    np.testing.assert_allclose(float(val), fm.logp(x), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(grad), dlogp(fm.unflatten(x)), rtol=1e-8, atol=1e-8)


def test_deterministics_and_pointwise_loglik_equal_pymc(built):
    model, _, fm = built
    x = np.random.default_rng(2).normal(scale=0.7, size=fm.ndim)
    free, _ = fm.constrain(x)
    names = [d.name for d in model.deterministics]
    outs = model.replace_rvs_by_values([model[n] for n in names])
    fn = model.compile_fn(
        outs + model.logp(model.observed_RVs, sum=False),
        inputs=model.value_vars,
        mode="FAST_COMPILE",
        on_unused_input="ignore",
    )
    values = fn(fm.unflatten(x))
    det = fm.deterministics(free)
    for name, v in zip(names, values[:-1], strict=True):
        np.testing.assert_allclose(det[name], v, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(fm.pointwise(free), values[-1], rtol=1e-10)


def test_unconstrain_inverts_constrain(built):
    _, _, fm = built
    x = np.random.default_rng(3).normal(size=fm.ndim)
    free, _ = fm.constrain(x)
    np.testing.assert_allclose(fm.unconstrain(free), x, rtol=1e-10, atol=1e-12)


def test_unknown_model_is_not_flattened():
    X, y, _ = simulate("S-B", n=80, random_seed=0)
    model, info = build_model(X, y, n_experts=2)
    with model:
        pm.Normal("extra", 0.0, 1.0)
    assert flat_model(model, info) is None


def test_models_outside_the_flat_density_fall_back():
    """A model whose variables are not the ones its options imply (here: built with one prior
    set, read with the other's info) is left to PyMC (flat_model returns None, "auto" -> pymc).
    """
    X, y, _ = simulate("S-B", n=80, random_seed=0)
    model_rg, info_rg = build_model(X, y, n_experts=2, priors="richardson-green")
    model, info = build_model(X, y, n_experts=2)
    assert flat_model(model_rg, info_rg) is not None and flat_model(model, info) is not None
    assert flat_model(model_rg, info) is None
    assert flat_model(model, info_rg) is None
