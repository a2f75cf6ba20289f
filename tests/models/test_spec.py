"""The PyMC-free model spec agrees with the built PyMC model: same checks, same flat density blocks
(in the model's value-variable order), same coords, dims and constant data."""

import subprocess
import sys

import numpy as np
import pytest

from bayesmoe.inference.nuts.flat_model import flat_model, flat_model_from_spec
from bayesmoe.inference.nuts.sampling import layout_from_model
from bayesmoe.models import build_model
from bayesmoe.models.spec import fixed_k_spec, trace_layout
from tests.helpers import flat_data, flat_options

# the flat-density option sets (the custom gate's M(x) is data: the spec covers it too)
OPTIONS = flat_options()


@pytest.mark.parametrize(
    "options",
    OPTIONS,
    # the same ids in every process (pytest-xdist): callables by name, not by address
    ids=lambda o: "-".join(f"{k}={getattr(v, '__name__', v)}" for k, v in o.items()),
)
def test_spec_matches_the_built_model(options):
    X, y, opts = flat_data(options)
    model, info = build_model(X, y, **opts)
    s = info_s = fixed_k_spec(X, y, **opts)
    assert fm_signature(info_s) == fm_signature(info)
    fm, fm_s = flat_model(model, info), flat_model_from_spec(s)
    assert fm_s.blocks == fm.blocks  # names, kinds, shapes, scales and order
    for k in ("Xs", "Zs", "y", "offset"):
        a, b = getattr(fm_s, k), getattr(fm, k)
        if a is None or b is None:  # no offset given: the model's data are zeros
            a, b = fm_s.data().get(k, a), fm.data().get(k, b)
        if a is None and b is None:  # a family without offsets
            continue
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14, err_msg=k)
    point = np.random.default_rng(0).normal(size=fm.ndim)
    assert fm_s.logp(point) == pytest.approx(fm.logp(point), rel=1e-14)

    coords, dims, const = trace_layout(s)
    ref = layout_from_model(model)
    assert set(coords) == set(ref["coords"])
    for k, v in ref["coords"].items():
        np.testing.assert_array_equal(np.asarray(coords[k]), np.asarray(v))
    for k, v in ref["dims"].items():
        assert tuple(dims[k]) == tuple(v), k
    assert set(const) == set(ref["constant_data"])
    for k, v in ref["constant_data"].items():
        np.testing.assert_allclose(const[k], v, rtol=1e-14, err_msg=k)


def fm_signature(info) -> dict:
    """Model options with a callable gate by name (the same callable in both)."""
    return {**info.options(), "gate": info.gate}


def test_spec_rejects_what_build_model_rejects():
    X, y, _ = flat_data({})
    for bad in (
        dict(n_experts=0),
        dict(n_experts=2, identifiability="pinned"),
        dict(n_experts=2, temperature=-1.0),
        dict(n_experts=80),
    ):
        with pytest.raises(ValueError) as built:
            build_model(X, y, **bad)
        with pytest.raises(ValueError) as spec:
            fixed_k_spec(X, y, **bad)
        assert str(spec.value) == str(built.value)


def test_richardson_green_constants_are_data_of_the_flat_model():
    """The RG constants (midpoint and range of y) enter the JAX program as data: two data sets
    of one shape share a program signature but not the constants.
    """
    X, y, _ = flat_data({})
    fms = []
    for yy in (y, 2.0 * y + 1.0 + np.sin(y)):
        s = fixed_k_spec(X, yy, n_experts=2, priors="richardson-green")
        fm = flat_model_from_spec(s)
        data = fm.data()
        for k, v in s.prior_constants.items():
            assert data[f"prior_{k}"] == pytest.approx(v, rel=1e-15), k
        fms.append(fm)
    assert fms[0].signature() == fms[1].signature()
    assert fms[0].data()["prior_mean_center"] != fms[1].data()["prior_mean_center"]


def test_the_jax_path_imports_neither_pymc_nor_arviz():
    """The compiled path's fixed cost: no PyMC model, no ArviZ/matplotlib (issue 9)."""
    pytest.importorskip("numpyro")
    code = (
        "import sys\n"
        "from bayesmoe.data import simulate\n"
        "from bayesmoe.inference import sample\n"
        "X, y, _ = simulate('S-B', n=150, random_seed=0)\n"
        "tr = sample(X, y, n_experts=2, draws=20, tune=20, chains=1, random_seed=0,\n"
        "            progressbar=False)\n"
        "assert tr.attrs['sampler'] == 'jax', tr.attrs['sampler']\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'arviz', 'matplotlib', 'scipy.stats')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"
