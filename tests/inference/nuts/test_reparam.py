"""The gate-scaled change of variables (bayesmoe/inference/nuts/reparam.py) keeps the posterior.

Exact checks, no sampling: the map inverts, its log-Jacobian equals log |det| of JAX's Jacobian
matrix of the map, the density of z equals logp(x(z)) + that log-Jacobian, and switched off the
map is the identity. Tolerances are float64 round-off (rtol 1e-10 on log-determinants of an
18-40-dimensional Jacobian).
"""

import numpy as np
import pytest

from bayesmoe.inference.nuts.flat_model import flat_model_from_spec
from bayesmoe.inference.nuts.reparam import gate_scaled
from bayesmoe.models.spec import fixed_k_spec
from tests.helpers import flat_data

#: option sets (tests/helpers.py flat_options) the map applies to
APPLIES = [
    dict(n_experts=3),
    dict(n_experts=2, family="categorical", gate="sigmoid"),
    dict(n_experts=3, gate_features="own"),
    dict(n_experts=2, family="negbinomial", offset=True),
    dict(n_experts=2, family="student-t(df=4)"),
]
#: and does not (ordered intercepts, the Richardson–Green set, one expert)
DOES_NOT = [
    dict(n_experts=3, family="student-t", ordered=True),
    dict(n_experts=3, priors="richardson-green"),
    dict(n_experts=1),
]


def _setup(opts, seed=0, slopes=False):
    X, y, o = flat_data(opts)
    fm = flat_model_from_spec(fixed_k_spec(X, y, **o))
    rp = gate_scaled(
        fm,
        slopes=bool(slopes),
        slope_shift=slopes != "noshift",
        rho_floor=0.05 if slopes == "capped" else 0.0,
    )
    rng = np.random.default_rng(seed)
    data = fm.data()
    x_hat = rng.normal(scale=0.5, size=fm.ndim)
    A = rng.normal(size=(fm.ndim, fm.ndim))
    info = np.diag(rng.uniform(1.0, 80.0, size=fm.ndim)) + 0.05 * A @ A.T  # an information
    return fm, rp, {**data, **rp.fit(x_hat, info, data)}, x_hat, rng


@pytest.mark.parametrize("slopes", [False, True, "noshift", "capped"])
@pytest.mark.parametrize("opts", APPLIES, ids=lambda o: str(o))
def test_change_of_variables_is_exact(opts, slopes):
    jax = pytest.importorskip("jax")
    fm, rp, c, x_hat, rng = _setup(opts, slopes=slopes)
    assert rp is not None
    has_slopes = fm.Zs.shape[1] > 0 and fm.info.identifiability == "zerosum"
    assert (rp.slopes is not None) == (bool(slopes) and has_slopes)
    np.testing.assert_allclose(rp.forward(x_hat, c)[0], x_hat, atol=1e-12)  # identity at MM
    z = x_hat + rng.normal(size=fm.ndim)
    x, log_det = rp.forward(z, c)
    np.testing.assert_allclose(rp.inverse(x, c), z, atol=1e-10)
    with jax.enable_x64(True):
        cj = {k: jax.numpy.asarray(v) for k, v in c.items()}
        J = np.asarray(jax.jacfwd(lambda v: rp.forward(v, cj, jax.numpy)[0])(z))
        lp_jax = float(jax.jit(rp.jax_logp())(jax.numpy.asarray(z), cj))
    sign, exact = np.linalg.slogdet(J)
    assert sign > 0
    np.testing.assert_allclose(log_det, exact, rtol=1e-10)
    np.testing.assert_allclose(rp.logp(z, c), fm.logp(x) + exact, rtol=1e-12)
    np.testing.assert_allclose(lp_jax, fm.logp(x) + exact, rtol=1e-12)
    # batched points
    zs = x_hat + rng.normal(size=(3, fm.ndim))
    np.testing.assert_allclose(rp.forward(zs, c)[0][1], rp.forward(zs[1], c)[0], rtol=1e-13)


@pytest.mark.parametrize("slopes", [False, True], ids=["experts", "experts+slopes"])
def test_map_is_not_the_identity_away_from_the_mm_gate(slopes):
    """The must-fail twin of the exactness test: the checks there are not met trivially."""
    fm, rp, c, x_hat, rng = _setup(APPLIES[0], slopes=slopes)
    z = x_hat + rng.normal(size=fm.ndim)
    x, log_det = rp.forward(z, c)
    assert abs(log_det) > 0.05 and np.abs(x - z).max() > 0.05
    if slopes:  # the gate slopes move too, the intercepts do not
        moved = np.abs(x - z) > 1e-9
        assert moved[rp.slopes].any() and not moved[rp.slopes.size : rp.slopes.size + 2].any()


@pytest.mark.parametrize("opts", APPLIES[:2], ids=lambda o: str(o))
def test_switched_off_is_identity(opts):
    fm, rp, _, _, rng = _setup(opts, slopes=True)
    off = {**fm.data(), **rp.off()}
    z = rng.normal(size=fm.ndim)
    x, log_det = rp.forward(z, off)
    np.testing.assert_array_equal(x, z)
    assert log_det == 0.0


@pytest.mark.parametrize("opts", DOES_NOT, ids=lambda o: str(o))
def test_models_it_does_not_cover(opts):
    X, y, o = flat_data(opts)
    assert gate_scaled(flat_model_from_spec(fixed_k_spec(X, y, **o))) is None
