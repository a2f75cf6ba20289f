"""Prediction and summary on every trace kind: fixed K, random K (padded, inactive slots), DP.

The references are plain loops over draws and *active* experts in numpy/scipy, independent of
the package's vectorised mixture code. Traces are synthetic (built here, no sampling) plus one
short real reversible-jump run; each is checked in memory and lazily reopened from netCDF.
"""

import numpy as np
import pytest
import xarray as xr
from scipy.special import softmax
from scipy.stats import norm

from bayesmoe.diagnostics import summary
from bayesmoe.inference import (
    conditional_density,
    gate_probabilities,
    posterior_predictive,
    predict,
)

CHAINS, DRAWS, K_MAX = 2, 15, 4
CLASSES = ["lo", "mid", "hi"]


def _trace(
    kind: str, family: str = "gaussian", d: int = 1, seed: int = 0, draws: int = DRAWS
) -> xr.DataTree:
    """A trace shaped like sample / sample_random_k / sample_dp output.

    Active experts sit where the data are (y in about [2, 8]). For ``kind="random_k"`` the
    inactive slots hold draws as wide as a prior (means near 60, large gate intercepts): a
    computation that lets them in moves most of the predictive mass away from the data.
    """
    rng = np.random.default_rng(seed)
    S = (CHAINS, draws)
    if kind == "random_k":
        k = rng.integers(1, K_MAX + 1, size=S)
        k[0, 0], k[1, 0] = 1, K_MAX
        active = np.arange(K_MAX) < k[..., None]
    else:
        active = np.ones((*S, K_MAX), bool)
    off = ~active
    beta0 = rng.normal(0, 0.5, (*S, K_MAX)) + 6.0 * off
    beta1 = rng.normal(0, 0.8, (*S, d, K_MAX))
    post = {}
    if kind == "dp":
        w = rng.dirichlet(np.ones(K_MAX), size=S)
        beta0 = np.log(w)
        post["weights"] = (("chain", "draw", "expert"), w)
        post["n_occupied"] = (("chain", "draw"), rng.integers(1, K_MAX + 1, size=S))
    if family == "gaussian":
        a = rng.normal(0, 0.3, (*S, d, K_MAX)) + 5.0 * off[:, :, None, :]
        b = rng.uniform(2.5, 7.5, (*S, K_MAX)) + 55.0 * off
        sigma = rng.uniform(0.3, 0.9, (*S, K_MAX)) + 20.0 * off
        post.update(
            a=(("chain", "draw", "feature", "expert"), a),
            b=(("chain", "draw", "expert"), b),
            sigma=(("chain", "draw", "expert"), sigma),
        )
    else:
        M = len(CLASSES)
        a = rng.normal(0, 1.0, (*S, d, M, K_MAX))
        a[:, :, :, -1, :] = 0.0
        b = (
            rng.normal(0, 1.0, (*S, M, K_MAX))
            + 8.0 * (np.arange(M) == 0)[:, None] * off[:, :, None, :]
        )
        b[:, :, -1, :] = 0.0
        post.update(
            a=(("chain", "draw", "feature", "class", "expert"), a),
            b=(("chain", "draw", "class", "expert"), b),
        )
    post.update(
        beta0=(("chain", "draw", "expert"), beta0),
        beta1=(("chain", "draw", "feature", "expert"), beta1),
    )
    if kind == "random_k":
        post["active"] = (("chain", "draw", "expert"), active)
        post["n_experts"] = (("chain", "draw"), active.sum(-1))
    coords = {
        "chain": np.arange(CHAINS),
        "draw": np.arange(draws),
        "expert": np.arange(K_MAX),
        "feature": [f"x{j}" for j in range(d)],
    }
    if family != "gaussian":
        coords["class"] = CLASSES
    n = 40
    X = rng.uniform(-1, 1, (n, d))
    y = rng.uniform(3, 7, n) if family == "gaussian" else rng.integers(0, len(CLASSES), n)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(post, coords=coords),
            "observed_data": xr.Dataset({"y": ("obs", y)}, coords={"obs": np.arange(n)}),
            "constant_data": xr.Dataset(
                {"X": (("obs", "feature"), X)},
                coords={"obs": np.arange(n), "feature": coords["feature"]},
            ),
        }
    )
    tree.attrs.update({"family": family, "gate": "softmax", "temperature": 1.0})
    return tree


def _draws(trace):
    """(chain, draw) arrays of every posterior variable, loaded, as numpy."""
    post = trace["posterior"].to_dataset().load()
    return {n: np.asarray(v.values) for n, v in post.data_vars.items()}


def _loop_gaussian(trace, X, grid):
    """Per draw: gate weights over active experts, E[y|x] and p(y|x) on the grid (plain loops)."""
    p = _draws(trace)
    C, D, K = p["beta0"].shape
    gates = np.zeros((C, D, len(X), K))
    mean = np.zeros((C, D, len(X)))
    dens = np.zeros((C, D, len(X), len(grid)))
    for c in range(C):
        for t in range(D):
            on = p["active"][c, t] if "active" in p else np.ones(K, bool)
            ks = np.flatnonzero(on)
            for i, x in enumerate(X):
                eta = np.array([p["beta0"][c, t, k] + x @ p["beta1"][c, t, :, k] for k in ks])
                g = softmax(eta)
                gates[c, t, i, ks] = g
                for gk, k in zip(g, ks, strict=True):
                    mu = x @ p["a"][c, t, :, k] + p["b"][c, t, k]
                    mean[c, t, i] += gk * mu
                    dens[c, t, i] += gk * norm.pdf(grid, mu, p["sigma"][c, t, k])
    return gates, mean, dens


def _loop_categorical(trace, X):
    p = _draws(trace)
    C, D, K = p["beta0"].shape
    probs = np.zeros((C, D, len(X), len(CLASSES)))
    for c in range(C):
        for t in range(D):
            on = p["active"][c, t] if "active" in p else np.ones(K, bool)
            ks = np.flatnonzero(on)
            for i, x in enumerate(X):
                eta = np.array([p["beta0"][c, t, k] + x @ p["beta1"][c, t, :, k] for k in ks])
                for gk, k in zip(softmax(eta), ks, strict=True):
                    logits = x @ p["a"][c, t, :, :, k] + p["b"][c, t, :, k]
                    probs[c, t, i] += gk * softmax(logits)
    return probs


def _lazy(trace, tmp_path, name="trace.nc"):
    path = tmp_path / name
    trace.to_netcdf(path)
    return xr.open_datatree(path)  # not loaded: variables stay on disk (h5)


def _grid_error(trace, X, grid):
    """Bound on |trapezoid integral - 1| of a Gaussian mixture with the trace's active experts.

    Poisson summation: the trapezoid rule with step h over the whole line integrates N(mu, sd)
    with error at most 2 exp(-2 pi^2 sd^2 / h^2) / (1 - exp(-6 pi^2 sd^2 / h^2)); cutting the
    line to [grid[0], grid[-1]] loses at most the two tail masses (plus half an end value).
    Floating-point summation of a few thousand terms adds ~1e-13; 1e-9 covers it.
    """
    p = _draws(trace)
    on = p["active"] if "active" in p else np.ones(p["b"].shape, bool)
    mu = np.einsum("nd,...dk->...nk", X, p["a"]) + p["b"][..., None, :]
    sd = np.broadcast_to(p["sigma"][..., None, :], mu.shape)
    on = np.broadcast_to(on[..., None, :], mu.shape)
    mu, sd = mu[on], sd[on]
    h = grid[1] - grid[0]
    r = np.exp(-2 * np.pi**2 * sd.min() ** 2 / h**2)
    tails = norm.sf((grid[-1] - mu) / sd) + norm.cdf((grid[0] - mu) / sd)
    return 2 * r / (1 - r**3) + tails.max() + 1e-9


KINDS = ["fixed", "random_k", "dp"]
GRID = np.linspace(-10, 20, 3001)  # the active experts: means in [-0.5, 10.5], sds >= 0.3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [0, 1])
def test_gaussian_density_integrates_to_one_and_matches_loop(kind, d, tmp_path):
    trace = _trace(kind, d=d, seed=d)
    X = np.random.default_rng(5).uniform(-1, 1, (3, d))
    gates, mean, dens = _loop_gaussian(trace, X, GRID)
    tol = _grid_error(trace, X, GRID)
    assert tol < 1e-8, tol  # the grid holds the mass: a lost 1e-3 would show
    np.testing.assert_allclose(np.trapezoid(dens, GRID, axis=-1), 1.0, atol=tol)
    for tr in (trace, _lazy(trace, tmp_path)):
        out = conditional_density(tr, X, GRID, max_draws=None)
        np.testing.assert_allclose(out["density"].integrate("y"), 1.0, atol=tol)
        np.testing.assert_allclose(out["density"].values, dens.mean((0, 1)), rtol=1e-9, atol=1e-14)
        band = np.quantile(dens, [0.03, 0.97], axis=(0, 1))
        np.testing.assert_allclose(out["lower"].values, band[0], rtol=1e-9, atol=1e-14)
        g = gate_probabilities(tr, X)
        np.testing.assert_allclose(g.values, gates, rtol=1e-9, atol=1e-15)
        pp = posterior_predictive(tr, X, random_seed=0)
        np.testing.assert_allclose(pp["expected_y"].values, mean, rtol=1e-9)
        pr = predict(tr, X, random_seed=0)
        np.testing.assert_allclose(pr["mean"].values, mean.mean((0, 1)), rtol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_predictive_draws_come_from_active_experts_only(kind):
    """Inactive slots have means near 60 and sds near 20; no draw may come from one.

    The active experts' means are below 11 and sds below 0.9: a draw above 20 is more than 10
    sds from every one of them (probability < 1e-23 per draw).
    """
    trace = _trace(kind, d=1)
    X = np.zeros((50, 1))
    y = posterior_predictive(trace, X, random_seed=1)["y"].values
    assert y.max() < 20, y.max()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", [0, 2])
def test_categorical_probabilities_sum_to_one_and_match_loop(kind, d, tmp_path):
    trace = _trace(kind, family="categorical", d=d, seed=3)
    X = np.random.default_rng(6).uniform(-1, 1, (4, d))
    probs = _loop_categorical(trace, X)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-12)
    for tr in (trace, _lazy(trace, tmp_path)):
        out = conditional_density(tr, X, CLASSES, max_draws=None)
        np.testing.assert_allclose(out["density"].sum("y"), 1.0, rtol=1e-12)
        np.testing.assert_allclose(out["density"].values, probs.mean((0, 1)), rtol=1e-9)
        pp = posterior_predictive(tr, X, random_seed=0)
        np.testing.assert_allclose(pp["probs"].values, probs, rtol=1e-9)
        np.testing.assert_allclose(predict(tr, X)["probs"].values, probs.mean((0, 1)), rtol=1e-9)


@pytest.mark.parametrize("d", [0, 1])
def test_lazily_opened_trace_with_thinning_equals_in_memory(d, tmp_path):
    """max_draws thins with an index array; on a lazily opened file this used to reach h5py,
    which fails on the zero-size slopes of a model without covariates once the index list has
    17 or more entries ("Dataspaces don't have hyperslab selections"): 20 of 40 draws here."""
    trace = _trace("random_k", d=d, draws=40)
    lazy = _lazy(trace, tmp_path)
    X = np.zeros((2, d))
    for f, args, kw in (
        (conditional_density, (GRID[::50],), {}),
        (gate_probabilities, (), {}),
        (posterior_predictive, (), {"random_seed": 0}),
    ):
        a, b = f(trace, X, *args, max_draws=40, **kw), f(lazy, X, *args, max_draws=40, **kw)
        assert a.sizes.get("draw", 20) == 20  # conditional_density: no draw dim
        xr.testing.assert_allclose(a, b)
    kw = {"max_draws": 40, "random_seed": 0}
    xr.testing.assert_allclose(predict(trace, X, **kw), predict(lazy, X, **kw))


# active[0] is True in every draw: its R-hat is 0/0 (NaN), which ArviZ warns about.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("lazy", [False, True])
def test_summary_of_random_k_trace(lazy, tmp_path):
    trace = _trace("random_k", d=1)
    tr = _lazy(trace, tmp_path) if lazy else trace
    df = summary(tr)
    k = trace["posterior"]["n_experts"].values
    assert df.index.tolist() == ["n_experts"], df.index.tolist()
    assert df.loc["n_experts", "mean"] == pytest.approx(k.mean(), rel=1e-12)
    assert df.attrs["random_k"] and not df.attrs["relabelled"]
    act = summary(tr, var_names=["active"])  # mean of active[k] = P(K > k)
    np.testing.assert_allclose(act["mean"].values, [(k > j).mean() for j in range(K_MAX)])
    with pytest.raises(ValueError, match="per-expert variables of a random-K trace"):
        summary(tr, var_names=["b"])
    from bayesmoe.inference.rjmcmc import relabel_at_k

    at2 = summary(relabel_at_k(tr, 2))  # the route the error message names
    assert {"b[0]", "b[1]"} <= set(at2.index) and "b[2]" not in at2.index


def test_summary_of_fixed_k_and_dp_traces_keeps_expert_rows(tmp_path):
    for kind in ("fixed", "dp"):
        df = summary(_lazy(_trace(kind, d=1), tmp_path, f"{kind}.nc"))
        assert "b[0]" in df.index and df.attrs["relabelled"] and not df.attrs["random_k"]


# ----- one short real reversible-jump run -------------------------------------------------------


@pytest.fixture(scope="module")
def rj_trace():
    """Galaxy velocities, Richardson-Green priors, K_max = 6, 2 chains x 30 draws (Gibbs + RJ,
    about 4 s): K varies over draws, inactive slots hold prior draws."""
    from bayesmoe.data import load_dataset
    from bayesmoe.inference.rjmcmc import sample_random_k

    X, y, _ = load_dataset("galaxy")
    return sample_random_k(
        X,
        y,
        max_experts=6,
        priors="richardson-green",
        draws=30,
        tune=30,
        chains=2,
        cores=1,
        random_seed=1,
        sampler="step",  # no JAX compile for this K_max; the compiled trace has the same schema
    )


def test_real_random_k_trace(rj_trace, tmp_path):
    post = rj_trace["posterior"]
    assert not bool(post["active"].all())  # some slots are inactive: the case under test
    grid = np.linspace(-40, 80, 6001)  # velocities 9-35 (1000 km/s)
    X = np.zeros((1, 0))
    gates, _, dens = _loop_gaussian(rj_trace, X, grid)
    tol = _grid_error(rj_trace, X, grid)
    assert tol < 1e-6, tol
    for tr in (rj_trace, _lazy(rj_trace, tmp_path)):
        out = conditional_density(tr, X, grid, max_draws=None)
        np.testing.assert_allclose(out["density"].integrate("y"), 1.0, atol=tol)
        np.testing.assert_allclose(out["density"].values, dens.mean((0, 1)), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(gate_probabilities(tr, X).values, gates, rtol=1e-9, atol=1e-15)
        df = summary(tr)
        assert "n_experts" in df.index and not any("[" in i for i in df.index)
    import arviz as az

    X_obs = rj_trace["constant_data"]["X"].values  # (82, 0)
    posterior_predictive(rj_trace, X_obs, random_seed=0, extend=True)
    ppc = rj_trace["posterior_predictive"]["y"]
    assert ppc.shape == (2, 30, 82) and np.isfinite(ppc.values).all()
    az.plot_ppc_dist(rj_trace, backend="matplotlib", num_samples=5)


# ----- item 7: the posterior_predictive group for ArviZ -----------------------------------------


def test_extend_adds_groups_that_arviz_plots(tmp_path):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    trace = _trace("random_k", d=1)
    X = trace["constant_data"]["X"].values
    out = posterior_predictive(trace, X, random_seed=0, extend=True)
    assert out is trace and "posterior_predictive" in trace.children
    ppc = trace["posterior_predictive"]["y"]
    assert ppc.dims == ("chain", "draw", "obs") and ppc.shape == (CHAINS, DRAWS, 40)
    np.testing.assert_array_equal(ppc["obs"].values, trace["observed_data"]["obs"].values)
    same = posterior_predictive(trace, X, random_seed=0)["y"]  # same draws as without extend
    np.testing.assert_array_equal(ppc.values, same.values)
    pc = az.plot_ppc_dist(trace, backend="matplotlib", num_samples=5)
    assert pc is not None
    # a trace without observed_data gets one from `observed`
    bare = xr.DataTree.from_dict({"posterior": trace["posterior"].to_dataset()})
    bare.attrs.update(trace.attrs)
    y = trace["observed_data"]["y"].values
    posterior_predictive(bare, X, random_seed=0, extend=True, observed=y)
    np.testing.assert_array_equal(bare["observed_data"]["y"].values, y)
    az.plot_ppc_dist(bare, backend="matplotlib", num_samples=5)


def test_extend_categorical_stores_codes():
    trace = _trace("fixed", family="categorical", d=1)
    X = trace["constant_data"]["X"].values
    posterior_predictive(trace, X, random_seed=0, extend=True)
    codes = trace["posterior_predictive"]["y"].values
    labels = posterior_predictive(trace, X, random_seed=0)["y"].values
    np.testing.assert_array_equal(np.asarray(CLASSES)[codes], labels)


def test_extend_errors():
    trace = _trace("fixed", d=1)
    X = trace["constant_data"]["X"].values
    with pytest.raises(ValueError, match="inputs of the 40 observations"):
        posterior_predictive(trace, X[:5], extend=True)
    with pytest.raises(TypeError, match="`extend` must be True or False"):
        posterior_predictive(trace, X, extend="yes")
    with pytest.raises(TypeError, match=r"must be an xarray\.DataTree"):
        posterior_predictive(trace["posterior"].to_dataset(), X, extend=True)
    with pytest.raises(ValueError, match="only used with `extend=True`"):
        posterior_predictive(trace, X, observed=np.zeros(40))
    bare = xr.DataTree.from_dict({"posterior": trace["posterior"].to_dataset()})
    with pytest.raises(ValueError, match="no observed_data group"):
        posterior_predictive(bare, X, extend=True)
    with pytest.raises(ValueError, match="differs from the trace's observed_data"):
        posterior_predictive(trace, X, extend=True, observed=np.zeros(40))
