"""Named prior sets, and the Richardson–Green slot prior: draws, densities and the model agree."""

import numpy as np
import pytest
from scipy import stats

from bayesmoe.data import load_dataset
from bayesmoe.models import PRIOR_SETS, Priors, resolve_priors
from bayesmoe.models.random_k import (
    HYPER_VARS,
    build_random_k_model,
    hyper_prior_draw,
    slot_prior_draw,
    slot_prior_logpdf,
)
from tests.helpers import ALPHA

X, Y, _ = load_dataset("galaxy")


def test_prior_sets_by_name_dict_and_object():
    assert set(PRIOR_SETS) == {"default", "richardson-green"}
    assert resolve_priors(None) == Priors() == resolve_priors("default")
    rg = resolve_priors("richardson-green")
    assert (
        rg.scheme,
        rg.dirichlet_weights,
        rg.weights_concentration,
        rg.precision_shape,
        rg.rate_shape,
        rg.rate_rate_factor,
        rg.mean_precision_factor,
    ) == ("richardson-green", True, 1.0, 2.0, 0.2, 10.0, 1.0)
    over = resolve_priors({"scheme": "richardson-green", "precision_shape": 3})
    assert over.precision_shape == 3.0 and over.dirichlet_weights
    assert resolve_priors({"dirichlet_weights": True}).scheme == "default"
    with pytest.raises(ValueError, match="Unknown prior set 'rgx'"):
        resolve_priors("rgx")
    with pytest.raises(ValueError, match="Unknown prior"):
        resolve_priors({"noise_sd": 1.0})
    with pytest.raises(ValueError, match="positive"):
        resolve_priors({"precision_shape": -1})
    with pytest.raises(TypeError, match="prior-set name"):
        resolve_priors(3)


def test_rg_constants_are_the_midpoint_and_range_of_y():
    model, info = build_random_k_model(X, Y, max_experts=3, priors="richardson-green")
    st = info.standardizer
    R = (Y.max() - Y.min()) / st.y_scale
    c = info.prior_constants
    assert np.isclose(c["mean_center"], ((Y.max() + Y.min()) / 2 - st.y_center) / st.y_scale)
    assert np.isclose(c["mean_sd"], R)  # 1 / sqrt(kappa), kappa = 1 / R^2
    assert np.isclose(c["rate_rate"], 10 / R**2)  # h = 10 / R^2
    assert float(model["prior_mean_sd"].get_value()) == pytest.approx(R)


def test_rg_slot_logpdf_matches_the_model_and_the_draws():
    """slot_prior_logpdf is the model's own slot log density (value space, with Jacobians)
    given beta, and slot_prior_draw samples it (moment and KS checks on 4000 draws)."""
    model, info = build_random_k_model(
        X, Y, max_experts=4, priors="richardson-green", prior_only=True
    )
    rng = np.random.default_rng(0)
    point = model.initial_point()
    point.update(hyper_prior_draw(info, rng))
    point.update(slot_prior_draw(info, rng, size=4, point=point))
    slot_rvs = [
        model.values_to_rvs[v] for v in model.value_vars if v.name in {n for n, _ in info.slot_vars}
    ]
    terms = model.logp(vars=slot_rvs, sum=False, jacobian=True)
    fn = model.compile_fn(terms, inputs=model.value_vars, on_unused_input="ignore", point_fn=False)
    out = fn(**{v.name: point[v.name] for v in model.value_vars})
    model_lp = sum(
        np.asarray(t).reshape(-1, 4).sum(0) if np.ndim(t) > 1 else np.asarray(t) for t in out
    )
    ours = slot_prior_logpdf(info, point, point)
    np.testing.assert_allclose(ours, model_lp, rtol=1e-10)

    big = slot_prior_draw(info, rng, size=4000, point=point)
    beta = float(np.exp(point[HYPER_VARS[0]]))
    tau = np.exp(-2 * big["sigma_std_log__"])
    assert stats.kstest(tau, stats.gamma(2.0, scale=1 / beta).cdf).pvalue > ALPHA
    g = np.exp(big["beta0_std"])
    assert stats.kstest(g, stats.expon().cdf).pvalue > ALPHA  # Gamma(1, 1): Dirichlet(1) weights
    c = info.prior_constants
    assert stats.kstest(big["b_std"], stats.norm(c["mean_center"], c["mean_sd"]).cdf).pvalue > ALPHA


def test_rg_prior_needs_gaussian_experts():
    with pytest.raises(ValueError, match="Gaussian experts"):
        build_random_k_model(
            X, (Y > 20).astype(int), max_experts=2, family="categorical", priors="richardson-green"
        )
