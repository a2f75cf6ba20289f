"""SBC building blocks: test quantities against the PyMC model, matching, tests, tempering."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from bayesmoe.diagnostics.sbc import plot_sbc, sbc_summary
from bayesmoe.study import sbc as S


@pytest.mark.parametrize(
    "family, gate",
    [
        ("gaussian", "softmax"),
        ("categorical", "tanh"),
        ("binomial", "softmax"),
    ],
)
def test_loglik_quantity_is_the_models_log_likelihood(family, gate):
    """The numpy test quantities read the parameters exactly as the PyMC model does."""
    X = np.random.default_rng(0).standard_normal((40, 1))
    model, info = S._model(X, family, 3, gate, 3, None, 1.0)
    prior = pm.sample_prior_predictive(draws=3, model=model, random_seed=1)
    y = prior["prior_predictive"]["y"].values[0, 0]
    with model:
        pm.set_data({"y_obs": y})
    post = prior["prior"].to_dataset()
    tr = xr.DataTree.from_dict({"posterior": post})
    ll = pm.compute_log_likelihood(tr, model=model, progressbar=False)
    expected = ll["log_likelihood"]["y"].sum("obs").values.ravel()
    q = S._quantities(
        S._params(post, family),
        family,
        info.gate,
        X,
        y,
        X[:2],
        np.zeros(2, dtype=float if family == "gaussian" else int),
    )
    np.testing.assert_allclose(q["loglik_data"], expected, rtol=1e-10)
    assert np.all((q["gate_entropy"] >= 0) & (q["gate_entropy"] <= np.log(3) + 1e-12))


def test_the_sbc_model_pins_the_response_transform():
    """Prior draws are on a fixed scale: y centre 0 and scale 1 whatever the placeholder y."""
    X = np.random.default_rng(1).standard_normal((30, 1))
    model, _ = S._model(X, "gaussian", 2, "softmax", 2, None, 1.0)
    assert float(model["y_center"].get_value()) == 0.0
    assert float(model["y_scale"].get_value()) == 1.0


def test_likelihood_power_tempers_exactly_the_likelihood():
    X = np.random.default_rng(2).standard_normal((30, 1))
    full, _ = S._model(X, "gaussian", 2, "softmax", 2, None, 1.0)
    half, _ = S._model(X, "gaussian", 2, "softmax", 2, None, 0.5)
    point = full.initial_point()
    lp_full = full.compile_logp()(point)
    lp_half = half.compile_logp()(point)
    lik = float(full.compile_logp(vars=[full["y"]])(point))
    np.testing.assert_allclose(lp_full - lp_half, 0.5 * lik, rtol=1e-10)


def test_match_to_truth_undoes_label_switching():
    rng = np.random.default_rng(3)
    truth = np.array([[0.0, 1.0, -2.0], [4.0, -1.0, 2.0], [8.0, 3.0, 0.0]])
    perms = np.stack([rng.permutation(3) for _ in range(50)])
    draws = np.stack([truth[p] for p in perms]) + 0.05 * rng.standard_normal((50, 3, 3))
    perm = S.match_to_truth(draws, truth)
    aligned = np.take_along_axis(draws, perm[..., None], axis=1)
    np.testing.assert_allclose(aligned, np.broadcast_to(truth, aligned.shape), atol=0.3)
    assert np.array_equal(np.take_along_axis(perms, perm, axis=1), np.tile(np.arange(3), (50, 1)))


def test_ranks_break_ties_uniformly():
    rng = np.random.default_rng(4)
    draws = np.zeros((9, 2000))  # every draw ties with the truth: ranks uniform on 0..9
    r = S._rank(np.zeros(2000), draws, rng)
    counts = np.bincount(r, minlength=10)
    # each count ~ Binomial(2000, 0.1): mean 200, sd 13.4; 5 sd
    assert np.all(np.abs(counts - 200) < 5 * 13.4)


def test_summary_passes_uniform_ranks_and_flags_skewed_ones():
    """200 replicates, L = 49: uniform ranks pass, ranks from a 2x too wide posterior fail."""
    rng = np.random.default_rng(5)
    L, n = 49, 200
    z = rng.standard_normal(n)
    wide = np.array([(rng.standard_normal(L) * 2.0 < zi).sum() for zi in z])
    ranks = xr.Dataset(
        {
            "loglik_data": ("replicate", rng.integers(0, L + 1, n)),
            "gate_entropy": ("replicate", wide),
            "b": (("replicate", "expert"), rng.integers(0, L + 1, (n, 2))),
        },
        attrs={"n_ranked": L},
    )
    s = sbc_summary(ranks)
    assert s["uniform"].sel(component="loglik_data") and s["uniform"].sel(component="b[0]")
    assert not s["uniform"].sel(component="gate_entropy")
    assert s.attrs["verdict"] == "fail" and s.attrs["n_components"] == 4
    assert int(s["histogram"].sel(component="loglik_data").sum()) == n
    ok = sbc_summary(ranks.drop_vars("gate_entropy"))
    assert ok.attrs["verdict"] == "pass"


def test_plot_has_one_panel_per_component():
    import matplotlib

    matplotlib.use("Agg")
    rng = np.random.default_rng(6)
    ranks = xr.Dataset(
        {
            "loglik_data": ("replicate", rng.integers(0, 20, 30)),
            "pred_mean": (("replicate", "test_point"), rng.integers(0, 20, (30, 3))),
        },
        attrs={"n_ranked": 19},
    )
    fig = plot_sbc(ranks, summary=sbc_summary(ranks))
    assert sum(ax.get_visible() for ax in fig.axes) == 4
    assert "p=" in fig.axes[0].get_title()


def test_sbc_replicate_rejects_bad_options():
    X = np.zeros((10, 1)) + np.arange(10)[:, None]
    with pytest.raises(ValueError, match="n_ranked"):
        S.sbc_replicate(X, n_experts=2, draws=10, chains=1, n_ranked=20)
    with pytest.raises(ValueError, match="likelihood_power"):
        S.sbc_replicate(X, n_experts=2, likelihood_power=0)
