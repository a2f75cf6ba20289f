"""NUTS on S-B: recovery of the truth, convergence after relabelling, outputs and provenance.

One posterior (conftest `sb_trace`: 4 chains x 1000 draws, n = 1000, seed 11) serves every check.
"""

import json

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesmoe.diagnostics import mixing_measure
from bayesmoe.diagnostics.relabel import permute_experts, relabel
from tests.helpers import ALPHA_RECOVERY, assert_mcse_z

ATOM_VARS = ("beta0", "beta1", "a", "b", "sigma2")


def _match_to_truth(post_mean, truth):
    """Permutation of the posterior's experts that best matches the truth (expert parameters)."""

    def atoms(G):
        return np.column_stack(
            [
                G["a"].transpose("expert", "feature").values,
                G["b"].values,
                np.log(G["sigma2"].values),
            ]
        )

    A, T = atoms(post_mean), atoms(truth)
    cost = ((A[:, None, :] - T[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty_like(cols)
    perm[cols] = rows
    return perm


def test_groups_and_dims(sb_trace):
    assert {"posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"} <= set(
        sb_trace.children
    )
    post = sb_trace.posterior
    assert post["beta1"].dims == ("chain", "draw", "gate_feature", "expert")
    assert post["a"].dims == ("chain", "draw", "feature", "expert")
    assert post["sigma"].dims == ("chain", "draw", "expert")
    assert sb_trace.log_likelihood["y"].dims == ("chain", "draw", "obs")
    assert sb_trace.constant_data["X"].shape == (1000, 2)


def test_provenance_attrs(sb_trace):
    attrs = sb_trace.attrs
    # the default backend ("auto") runs the compiled JAX sampler when jax/numpyro are installed
    # (core dependencies); tests/inference/nuts/test_backends.py covers the PyMC fallback
    assert attrs["sampler"] == "jax" and attrs["backend_requested"] == "auto"
    assert attrs["init"] == "mm" and attrs["random_seed"] == 11
    assert json.loads(attrs["model_options"])["n_experts"] == 3
    transform = json.loads(attrs["data_transform"])
    assert set(transform) >= {"x_center", "x_scale", "y_center", "y_scale"}
    assert attrs["bayesmoe_version"]


def test_recovers_sb_truth(sb_trace, sb_data):
    """Posterior means lie within z * posterior sd of the truth.

    Bernstein-von Mises: at n = 1000 the posterior is close to N(theta_hat, sd^2) with theta_hat
    within O(sd) of the truth, so (mean - truth) / sd is approximately standard normal per scalar.
    With P scalars checked, a Bonferroni bound z = Phi^-1(1 - 0.01 / (2P)) gives a 1% family-wise
    false-alarm rate (ALPHA_RECOVERY). The Monte Carlo error of the mean (mcse) is added in
    quadrature.
    """
    _, _, truth = sb_data
    # the gate is identified up to a common shift of all experts: compare sum-to-zero forms
    truth = truth.assign(
        beta0=truth.beta0 - truth.beta0.mean("expert"),
        beta1=truth.beta1 - truth.beta1.mean("expert"),
    )
    G = mixing_measure(sb_trace)
    mean, sd = G.mean(("chain", "draw")), G.std(("chain", "draw"))
    perm = _match_to_truth(mean, truth)
    G = G.isel(expert=perm).assign_coords(expert=np.arange(3))
    mean, sd = G.mean(("chain", "draw")), G.std(("chain", "draw"))
    ess = az.ess(G, sample_dims=["chain", "draw"])
    err, se = [], []
    for v in ATOM_VARS:
        dims = mean[v].dims
        err.append((mean[v] - truth[v]).transpose(*dims).values.ravel())
        se.append(np.sqrt(sd[v] ** 2 + sd[v] ** 2 / ess[v]).transpose(*dims).values.ravel())
    assert_mcse_z(np.concatenate(err), np.concatenate(se), alpha=ALPHA_RECOVERY, what="S-B atoms")


def test_converged_after_relabelling_without_divergences(sb_trace):
    assert int(sb_trace.sample_stats["diverging"].sum()) == 0
    rhat = az.rhat(sb_trace.posterior.to_dataset()[["beta0", "beta1", "a", "b", "sigma"]])
    worst = max(float(rhat[v].max()) for v in rhat.data_vars)
    assert worst < 1.01, f"max R-hat {worst:.4f} after relabelling"


def test_relabelling_makes_disagreeing_chains_agree(sb_trace):
    """Give each chain a different expert labelling (what chains do from random starts)."""
    perms = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 0, 2]])
    perm = np.broadcast_to(perms[:, None, :], (4, sb_trace.posterior.sizes["draw"], 3))
    post = sb_trace.posterior.to_dataset()
    scrambled = permute_experts(post, perm)
    raw = az.rhat(scrambled[["b", "sigma", "a"]])
    assert min(float(raw[v].max()) for v in raw.data_vars) > 1.5  # chains disagree
    fixed = relabel(scrambled, random_seed=0)
    rhat = az.rhat(fixed[["beta0", "beta1", "a", "b", "sigma"]])
    assert max(float(rhat[v].max()) for v in rhat.data_vars) < 1.01


def test_netcdf_round_trip(sb_trace, tmp_path):
    path = tmp_path / "trace.nc"
    sb_trace.to_netcdf(path, engine="h5netcdf")
    back = xr.open_datatree(path, engine="h5netcdf")
    xr.testing.assert_allclose(back.posterior.to_dataset(), sb_trace.posterior.to_dataset())
    assert back.attrs["model_options"] == sb_trace.attrs["model_options"]


def test_loo_works(sb_trace):
    loo = az.loo(sb_trace)
    assert np.isfinite(loo.elpd)


def test_unknown_backend_and_init(sb_data):
    from bayesmoe.inference import sample

    X, y, _ = sb_data
    with pytest.raises(ValueError, match="backend"):
        sample(X, y, n_experts=2, backend="stan")
    with pytest.raises(ValueError, match="init"):
        sample(X, y, n_experts=2, init="random")


@pytest.mark.parametrize("init", ["map", "prior"])
def test_other_inits_run(sb_data, init):
    from bayesmoe.inference import sample

    X, y, _ = sb_data
    tr = sample(
        X[:300],
        y[:300],
        n_experts=2,
        draws=30,
        tune=30,
        chains=2,
        init=init,
        random_seed=1,
        progressbar=False,
    )
    assert tr.attrs["init"] == init
    assert tr.posterior.sizes["draw"] == 30


def test_ordered_option_keeps_intercepts_ordered(sb_data):
    from bayesmoe.inference import sample

    X, y, _ = sb_data
    tr = sample(
        X[:400],
        y[:400],
        n_experts=3,
        ordered=True,
        draws=50,
        tune=50,
        chains=2,
        random_seed=2,
        progressbar=False,
    )
    assert bool((tr.posterior["b_std"].diff("expert") > 0).all())
    assert "relabel" not in tr.children  # the ordering identifies the labels


def test_start_from_a_given_mm_fit(sb_data):
    from bayesmoe.inference import fit_mle, sample

    X, y, _ = sb_data
    fit = fit_mle(X[:300], y[:300], 2, random_seed=0)
    tr = sample(
        X[:300],
        y[:300],
        n_experts=2,
        draws=20,
        tune=20,
        chains=1,
        init=fit,
        random_seed=1,
        progressbar=False,
    )
    assert tr.attrs["init"] == "measure"
    with pytest.raises(ValueError, match="experts; the model has 3"):
        sample(X[:300], y[:300], n_experts=3, init=fit)


def test_near_step_gate_starts_are_pulled_into_the_prior():
    """An MM fit on separable data can have |beta| ~ 1000; NUTS starts at most 3 prior sds out,
    with the zero-sum constraint kept."""
    from bayesmoe.data import simulate
    from bayesmoe.inference.nuts.sampling import _clip_gate
    from bayesmoe.models.spec import fixed_k_spec

    X, y, _ = simulate("S-B", n=120, random_seed=0)
    info = fixed_k_spec(X, y, n_experts=3)
    point = {
        "beta0_std": np.array([900.0, -1000.0, 100.0]),
        "beta1_std": np.array([[1.0, -0.5, -0.5], [2000.0, -1000.0, -1000.0]]),
    }
    out = _clip_gate({k: v.copy() for k, v in point.items()}, info)
    bound = 3.0 * info.priors.gate_slope
    assert np.abs(out["beta1_std"]).max() <= 2 * bound
    np.testing.assert_allclose(out["beta1_std"][0], point["beta1_std"][0])  # inside: unchanged
    for k in out:
        np.testing.assert_allclose(out[k].sum(-1), 0.0, atol=1e-12)


@pytest.mark.parametrize("backend", ["jax", "pymc"])
def test_sample_validates_the_data_once(backend, monkeypatch):
    """One ModelSpec per call (issue 20): the MM start and the PyMC fallback read it; X is
    checked once whichever backend samples. The MM start of the spec equals a separate
    fit_mle on the same data (the spec's Standardizer is the one fit_mle would fit).
    """
    import bayesmoe._validation as val
    from bayesmoe.data import simulate
    from bayesmoe.inference import sample
    from bayesmoe.inference.mle import mm
    from bayesmoe.models import spec as spec_mod

    if backend == "jax":
        pytest.importorskip("numpyro")
    X, y, _ = simulate("S-B", n=150, random_seed=0)
    calls = []

    def counting(X, *args, **kwargs):
        calls.append(1)
        return val.check_X(X, *args, **kwargs)

    for mod in (spec_mod, mm):
        monkeypatch.setattr(mod, "check_X", counting)
    trace = sample(
        X,
        y,
        n_experts=2,
        draws=5,
        tune=5,
        chains=1,
        random_seed=0,
        progressbar=False,
        backend=backend,
    )
    assert trace.attrs["sampler"] == backend and len(calls) == 1
    monkeypatch.undo()
    spec = spec_mod.fixed_k_spec(X, y, n_experts=2)
    a = mm.fit_mle(spec=spec, random_seed=3, engine="numpy")
    b = mm.fit_mle(X, y, 2, random_seed=3, engine="numpy")
    assert a.loglik_ == b.loglik_
    xr.testing.assert_identical(a.measure_, b.measure_)
    with pytest.raises(ValueError, match="either `spec` or the data"):
        mm.fit_mle(X, y, spec=spec)
