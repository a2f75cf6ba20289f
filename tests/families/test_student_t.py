"""Student-t experts through every entry point: simulate, fit_mle (monotone ECME), NUTS (the
compiled path), prediction, reversible jump, compare_experts, the study spec and the CLI; recovery
and its must-fail twin (the degrees of freedom forced to the Gaussian limit); fixed degrees of
freedom ('student-t(df=NU)'); the nested check Student-t >= Gaussian on mcycle."""

import json

import numpy as np
import pytest

import bayesmoe as bm
from bayesmoe.families import get_family
from bayesmoe.inference.mle.mm import tuning
from bayesmoe.measure import log_likelihood, measure_from_arrays

#: truth: a gate switching on x0, a heavy-tailed expert (nu = 3) and a near-Gaussian one (nu = 30)
TRUTH = measure_from_arrays(
    [0.0, 0.0],
    [[3.0, -3.0], [0.0, 0.0]],
    {
        "a": [[1.0, -0.5], [0.5, 0.4]],
        "b": [1.5, -1.0],
        "sigma2": [0.25, 1.0],
        "nu": [3.0, 30.0],
    },
    family="student-t",
)


def _data(n, seed):
    X = np.random.default_rng(seed).normal(size=(n, 2))
    _, y, _ = bm.data.simulate(TRUTH, X=X, random_seed=seed)
    return X, y


def _aligned(G):
    order = np.argsort(-G["beta1"].sel(gate_feature="x0").values)
    return G.isel(expert=order)


def test_mle_recovers_the_truth_and_gaussian_experts_fail():
    """n = 4000, spreads over 4 seeds: coefficients 0.02-0.05, sigma² about 5 %, log nu of the
    heavy expert about 0.08 (the light expert's nu ranged over 22-160: only nu > 10 is asked).
    The MLE must be within 0.12 of the coefficients, sigma² within a factor 1.2, the heavy nu
    within a factor 1.4, its log-likelihood at least the truth's and its trace monotone.
    Gaussian experts (nu forced to infinity) must miss the truth's log-likelihood by far (by
    220-460 over those seeds)."""
    X, y = _data(4000, 1)
    res = bm.fit_mle(X, y, 2, family="student-t", random_seed=0)
    assert len(bm.inference.monotone_violations(res.loglik_trace_)) == 0
    truth_ll = float(log_likelihood(TRUTH, X, y))
    assert res.loglik_ >= truth_ll - 1e-6
    G = _aligned(res.measure_)
    for name in ("a", "b"):
        assert np.abs(G[name].values - TRUTH[name].values).max() < 0.12, name
    assert np.abs(np.log(G["sigma2"].values / TRUTH["sigma2"].values)).max() < np.log(1.2)
    nu = G["nu"].values
    assert abs(np.log(nu[0] / 3.0)) < np.log(1.4) and nu[1] > 10.0
    gauss = bm.fit_mle(X, y, 2, family="gaussian", random_seed=0)
    assert gauss.loglik_ < truth_ll - 100


def test_fixed_degrees_of_freedom():
    """'student-t(df=3)' has one parameter fewer per expert and keeps nu = 3 in the measure; its
    log-likelihood lies between the free fit's (which nests it) and the Gaussian's (on data whose
    heavy expert has nu = 3)."""
    X, y = _data(1500, 2)
    free = bm.fit_mle(X, y, 2, family="student-t", random_seed=0)
    fixed = bm.fit_mle(X, y, 2, family="student-t(df=3)", random_seed=0)
    gauss = bm.fit_mle(X, y, 2, family="gaussian", random_seed=0)
    assert fixed.measure_.attrs["family"] == "student-t(df=3)"
    np.testing.assert_array_equal(fixed.measure_["nu"].values, 3.0)
    assert fixed.n_params_ == free.n_params_ - 2
    assert gauss.loglik_ < fixed.loglik_ <= free.loglik_ + 1e-6
    assert np.all(np.isfinite(bm.measure.conditional_mean(fixed.measure_, X[:3])))
    with pytest.raises(ValueError, match="student-t"):
        get_family("student-t(df=-1)")


def test_student_t_is_at_least_gaussian_on_mcycle():
    """Nested models on real data (mcycle, K = 4 quadratic experts): started also from the
    Gaussian MLE (nu = 1000), the Student-t MLE's log-likelihood is at least the Gaussian's."""
    X, y, _ = bm.data.load_dataset("mcycle")
    Xq = np.column_stack([X[:, 0], X[:, 0] ** 2])
    gauss = bm.fit_mle(Xq, y, 4, family="gaussian", random_seed=0)
    G = gauss.measure_.assign(nu=("expert", np.full(4, 1000.0))).assign_attrs(family="student-t")
    st = bm.fit_mle(Xq, y, 4, family="student-t", starts=[G], random_seed=0)
    assert st.loglik_ >= gauss.loglik_ - 1e-6
    assert len(bm.inference.monotone_violations(st.loglik_trace_)) == 0


def _special_function_sizes(jaxpr) -> list[tuple[str, int]]:
    """(primitive, input size) of every lgamma/digamma in a jaxpr, sub-jaxprs included, and
    ("optimization_barrier", largest operand size) for each barrier."""
    out = []
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in ("lgamma", "digamma"):
            out.append((name, int(np.prod(eqn.invars[0].aval.shape))))
        elif name == "optimization_barrier":
            out.append((name, max(int(np.prod(v.aval.shape)) for v in eqn.invars)))
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out.extend(_special_function_sizes(inner))
    return out


def test_compiled_density_evaluates_the_constant_once_per_expert(monkeypatch):
    """The compiled sampler's density and its gradient take the log-gamma constant of the K
    degrees of freedom only (not of nu broadcast to the n x K rows), behind an optimization
    barrier, so that XLA neither evaluates nor fuses it per row, and with no lgamma/digamma
    primitive (families._ops.gammaln_positive): in the stored (jax.export) programs these
    are expanded into elementwise code, and per row they made a gradient ~60 times dearer (5 ms
    instead of 0.08 ms at n = 1000; benchmarks/README.md). Must-fail twin: nu broadcast to the
    rows, as before, puts n K = 120 x 3 elements through the barrier."""
    jax = pytest.importorskip("jax")
    from bayesmoe.families.gaussian import Gaussian
    from bayesmoe.families.student_t import StudentT
    from bayesmoe.inference.nuts.flat_model import flat_model_from_spec
    from bayesmoe.inference.nuts.jax_nuts import _x64
    from bayesmoe.models.spec import fixed_k_spec

    X, y = _data(120, 0)
    fm = flat_model_from_spec(fixed_k_spec(X, y, n_experts=3, family="student-t"))
    logp, data = fm.jax_logp(), fm.data()
    x = np.zeros(fm.ndim)

    def sizes():
        with _x64(jax):
            return _special_function_sizes(jax.make_jaxpr(jax.grad(logp))(x, data).jaxpr)

    got = sizes()
    assert {n for n, _ in got} == {"optimization_barrier"}  # no lgamma/digamma primitive
    assert max(size for _, size in got) == 3

    def per_row(self, ops, canon, X, tr, data=None):
        mu, sigma = Gaussian.predictors(self, ops, canon, X, tr, data)
        return mu, sigma, ops.xp.zeros_like(mu) + canon["nu"][..., None, :]

    monkeypatch.setattr(StudentT, "predictors", per_row)
    assert max(size for _, size in sizes()) == 120 * 3


@pytest.fixture(scope="module")
def nuts_fit():
    X, y = _data(600, 3)
    model = bm.MoE(n_experts=2, family="student-t")
    trace = model.fit(X, y, draws=300, chains=2, random_seed=3, progressbar=False)
    return model, trace, X, y


@pytest.mark.slow  # a NUTS fit (~55 s); the flat density equal to PyMC's guards it by default
def test_nuts_runs_the_compiled_path_and_covers_the_truth(nuts_fit):
    """Relabelled posterior means within 4.5 posterior sds of the truth (sigma and nu on the
    log scale; the light expert's nu is barely identified at n = 600 and is left out)."""
    _, trace, *_ = nuts_fit
    assert trace.attrs["sampler"] == "jax" and trace.attrs["family"] == "student-t"
    post = trace.posterior
    order = np.argsort(-post["beta1"].sel(gate_feature="x0").mean(("chain", "draw")).values)
    checks = {
        "a": (post["a"], TRUTH["a"].values),
        "b": (post["b"], TRUTH["b"].values),
        "log_sigma": (np.log(post["sigma"]), 0.5 * np.log(TRUTH["sigma2"].values)),
    }
    for name, (da, truth) in checks.items():
        da = da.isel(expert=order)
        z = (da.mean(("chain", "draw")).values - truth) / da.std(("chain", "draw")).values
        assert np.abs(z).max() < 4.5, name
    log_nu = np.log(post["nu"].isel(expert=order[0]))
    z = (float(log_nu.mean()) - np.log(3.0)) / float(log_nu.std())
    assert abs(z) < 4.5


@pytest.mark.slow  # a NUTS fit (~55 s); the flat density equal to PyMC's guards it by default
def test_prediction_predictive_checks_and_report(nuts_fit, tmp_path):
    from bayesmoe.report import write_fit_report

    model, trace, X, _y = nuts_fit
    assert write_fit_report(trace, tmp_path, title="heavy tails").exists()
    pred = model.predict(X[:4], random_seed=0)
    assert np.all(pred["lower"].values < pred["mean"].values)
    assert np.all(pred["mean"].values < pred["upper"].values)
    grid = np.linspace(-60, 60, 6001)
    dens = bm.conditional_density(trace, X[:3], grid)
    mass = dens["density"].sum("y").values * (grid[1] - grid[0])
    np.testing.assert_allclose(mass, 1.0, atol=0.01)  # heavy tails beyond ±60 carry < 1 %
    pp = bm.posterior_predictive(trace, X, extend=True, random_seed=0)
    assert np.all(np.isfinite(pp["posterior_predictive"]["y"].values))


def test_cdf_quantiles_and_distance():
    from scipy import stats

    fam = get_family("student-t")
    mu, sigma, nu = np.array([0.0, 1.0, -2.0]), np.array([1.0, 0.5, 2.0]), np.array([0.7, 4.0, 1e6])
    for y in (-3.0, 0.0, 2.5):
        np.testing.assert_allclose(fam.cdf(y, mu, sigma, nu), stats.t(nu, mu, sigma).cdf(y))
    lo, hi = fam.quantile_bounds(mu, sigma, nu)
    dist = stats.t(nu[1:], mu[1:], sigma[1:])
    # the mass outside is below 1e-9, except where the bounds stop at 1e10 scales (nu = 0.7)
    assert np.all(dist.cdf(lo[1:]) < 1e-9) and np.all(dist.sf(hi[1:]) < 1e-9)
    np.testing.assert_allclose((hi - mu)[0] / sigma[0], 1e10)
    # nu -> inf: the Hellinger distance of two single experts tends to the Gaussians' closed form
    w = np.ones((1, 1))
    p = tuple(np.array([[v]]) for v in (0.0, 1.0, 1e7))
    q = tuple(np.array([[v]]) for v in (1.0, 1.0, 1e7))
    h2 = fam.mixture_distance(w, p, w, q, kind="hellinger")[0]
    assert abs(h2 - (1 - np.exp(-1 / 8))) < 1e-6
    assert fam.mixture_distance(w, p, w, p, kind="tv")[0] < 1e-12


def test_sample_random_k_runs():
    X, y = _data(300, 4)
    from bayesmoe.inference.rjmcmc import sample_random_k

    tr = sample_random_k(
        X,
        y,
        max_experts=3,
        family="student-t",
        draws=60,
        tune=60,
        chains=1,
        random_seed=5,
        progressbar=False,
    )
    assert set(np.unique(tr.posterior["n_experts"].values)) <= {1, 2, 3}
    # the moves' correctness for these experts: tests/rjmcmc/test_prior_recovery.py


def test_compare_experts_mm_table():
    X, y = _data(800, 6)
    table = bm.compare_experts(
        X, y, ks=[1, 2, 3], family="student-t", random_seed=0, progressbar=False
    )
    assert table.attrs["selected_bic"] == 2


def test_cli_and_study_spec(tmp_path, capsys):
    import pandas as pd

    from bayesmoe.cli import main
    from bayesmoe.study import StudyStore, parse_spec, run_task

    X, y = _data(300, 7)
    path = tmp_path / "t.csv"
    pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "y": y}).to_csv(path, index=False)
    args = ["fit", str(path), "--target", "y", "--family", "student-t", "--experts", "2"]
    args += ["--method", "mle", "--json", "--out", str(tmp_path / "fit"), "--seed", "1"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "student-t"
    fixed = [a.replace("student-t", "student-t(df=4)").replace("/fit", "/fixed") for a in args]
    assert main(fixed) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "student-t(df=4)"
    for bad in ("weibull", "student-t(df=0)"):
        assert main([a.replace("student-t", bad).replace("/fit", "/bad") for a in args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "student-t(df=NU)" in err[0]
        assert not (tmp_path / "bad").exists()
    raw = {
        "study": {"seed": 1},
        "data": {"source": "csv", "path": str(path), "target": "y"},
        "model": {"family": "student-t", "n_experts": 2},
        "inference": {"method": "mle", "n_starts": 3},
    }
    assert parse_spec({**raw, "model": {"family": "student-t(df=4)", "n_experts": 2}})
    task = parse_spec(raw).tasks()[0].to_dict()
    StudyStore(tmp_path / "out")
    out = run_task(task, str(tmp_path / "out"))
    assert out["status"] == "done", out.get("error")
    assert np.isfinite(out["metrics"]["loglik"])


def test_ecme_is_monotone_and_a_broken_step_is_caught():
    """Plain ECME (no acceleration), over-fitted K = 4 with a ridge, and the same with the
    coefficient step scaled x3 (it overshoots the weighted least-squares maximiser and is not
    halved): the checker that passes the first must flag the second."""
    X, y = _data(400, 9)
    kw = dict(family="student-t", n_starts=1, random_seed=0, accelerate=False, tol=1e-12)
    good = bm.fit_mle(X, y, 4, ridge=2.0, max_iter=150, **kw)
    assert len(bm.inference.monotone_violations(good.loglik_trace_)) == 0
    with tuning(step_scale=3.0):
        bad = bm.fit_mle(X, y, 2, max_iter=60, **kw)
    assert len(bm.inference.monotone_violations(bad.loglik_trace_)) > 0
