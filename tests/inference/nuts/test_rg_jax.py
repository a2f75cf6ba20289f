"""The Richardson–Green prior set runs on the compiled JAX path and gives PyMC's posterior.

Galaxy velocities, K = 3 (no covariates), 2 chains x 1000 draws on each backend, fixed seeds.
Label-invariant quantities are compared: the posterior mean of the total log-likelihood, of the
sorted expert means b (per draw) and of log(noise_rate). Both estimates carry Monte Carlo error
only (the same posterior), so each difference is divided by the two MCSEs (``arviz.mcse``, from
each run's ESS) in quadrature and the z-scores go through the suite's Bonferroni test at family-
wise ``ALPHA`` (1e-3; 5 scalars: |z| < 3.72). Measured at this commit: max |z| = 2.0 (the smallest
sorted mean). The must-fail twin runs the JAX path with a different RG hyperparameter
(``precision_shape`` 6 instead of 2: tighter noise sds) and must be flagged (measured: z ~ 17 on
the log-likelihood), so the check has power against a wrong prior term.
"""

import json

import arviz as az
import numpy as np
import pytest

import bayesmoe as bm
from tests.helpers import ALPHA, bonferroni_z

pytest.importorskip("numpyro")

RUN = dict(n_experts=3, draws=1000, chains=2, random_seed=1, progressbar=False)


def _run(backend: str, priors) -> tuple[str, dict, dict]:
    X, y, _ = bm.data.load_dataset("galaxy")
    tr = bm.inference.sample(X, y, priors=priors, backend=backend, **RUN)
    b = np.sort(tr.posterior["b"].values, axis=-1)
    q = {"loglik": tr.log_likelihood["y"].sum("obs").values}
    q.update({f"b_sorted{k}": b[..., k] for k in range(b.shape[-1])})
    q["log_noise_rate"] = np.log(tr.posterior["noise_rate"].values)
    layout = {
        g: {k: tr[g][k].dims for k in tr[g].data_vars}
        for g in ("posterior", "log_likelihood", "constant_data")
    }
    est = {k: (float(v.mean()), float(az.mcse(v))) for k, v in q.items()}
    return tr.attrs["sampler"], est, layout


@pytest.fixture(scope="module")
def pymc_run():
    return _run("pymc", "richardson-green")


def _z(a: dict, b: dict) -> np.ndarray:
    return np.array([abs(a[k][0] - b[k][0]) / np.hypot(a[k][1], b[k][1]) for k in a])


def test_rg_runs_on_jax_and_matches_pymc(pymc_run):
    sampler, jax_q, layout = _run("auto", "richardson-green")
    assert sampler == "jax"
    assert pymc_run[0] == "pymc"
    assert layout == pymc_run[2]  # same variables (incl. noise_rate, prior_*) and dims
    z = _z(jax_q, pymc_run[1])
    assert z.max() < bonferroni_z(z.size, ALPHA), json.dumps({"z": z.tolist(), "jax": jax_q})


def test_must_fail_twin_other_rg_hyperparameter(pymc_run):
    priors = {"scheme": "richardson-green", "precision_shape": 6.0}
    sampler, jax_q, _ = _run("jax", priors)
    assert sampler == "jax"
    z = _z(jax_q, pymc_run[1])
    assert z.max() >= bonferroni_z(z.size, ALPHA), z


@pytest.mark.parametrize(
    "options",
    [
        dict(n_experts=3, features=0, priors="richardson-green"),
        dict(n_experts=3, priors="richardson-green", identifiability="reference"),
        dict(n_experts=3, priors="richardson-green", ordered=True, gate_features="own"),
    ],
    ids=["d0", "reference", "ordered-own-gate"],
)
def test_mm_start_is_a_point_of_the_rg_model(options):
    """The MM start gives every free variable of the RG model (K Dirichlet-weight intercepts
    whatever the identifiability, the shared rate), at a finite density, jittered or not.
    """
    from bayesmoe.inference.nuts.flat_model import flat_model
    from bayesmoe.inference.nuts.sampling import _jitter, start_values
    from bayesmoe.models import build_model
    from tests.helpers import flat_data

    X, y, opts = flat_data(options)
    model, info = build_model(X, y, **opts)
    point, _ = start_values(info, method="mm", random_seed=0)
    assert set(point) == {v.name for v in model.free_RVs}
    assert point["beta0_std"].shape == (3,) and float(point["noise_rate_std"]) > 0
    # softmax(beta0_std) keeps the MM weights at the centre; sum exp = K delta (the prior mean)
    assert np.exp(point["beta0_std"]).sum() == pytest.approx(3.0, rel=1e-12)
    fm = flat_model(model, info)
    logp = model.compile_logp(mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    for p in (point, _jitter(point, info, rng, 0.05)):
        x = fm.unconstrain(p)
        assert np.isfinite(fm.logp(x))
        assert fm.logp(x) == pytest.approx(float(logp(fm.unflatten(x))), rel=1e-8)
