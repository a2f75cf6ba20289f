"""Posterior contraction summaries and empirical rates (docs/math.md §5)."""

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayesmoe.diagnostics.contraction import contraction_summary, rate_fit

N7 = np.array([500, 1000, 2000, 5000, 10_000, 20_000, 50_000])


def _distances(n, slope=-0.5, noise=0.1, draws=100, reps=1, seed=0):
    rng = np.random.default_rng(seed)
    vals = 2.0 * n[:, None, None] ** slope * rng.lognormal(0, noise, (len(n), reps, draws))
    return xr.DataArray(vals, dims=("n", "replicate", "draw"), coords={"n": n})


def test_per_fit_summaries_match_numpy():
    d = _distances(N7, reps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 7 sizes over 2 decades from 500: no warning
        s = contraction_summary(d, quantiles=(0.1, 0.9))
    np.testing.assert_allclose(s["mean"].values, d.values.mean(-1))
    np.testing.assert_allclose(s["sd"].values, d.values.std(-1))
    np.testing.assert_allclose(s["quantiles"].values, np.quantile(d.values, [0.1, 0.9], axis=-1))
    assert set(s["mean"].dims) == {"n", "replicate"}


def test_slope_and_ci_equal_linregress_with_t_quantile():
    d = _distances(N7, reps=3, noise=0.3, seed=1)
    s = contraction_summary(d, ci_prob=0.9)
    m = d.mean("draw")
    x = np.log(np.broadcast_to(N7[:, None], m.shape)).ravel()
    res = stats.linregress(x, np.log(m.values).ravel())
    assert float(s.slope) == pytest.approx(res.slope, rel=1e-12)
    half = stats.t.ppf(0.95, x.size - 2) * res.stderr
    np.testing.assert_allclose(s.slope_ci.values, [res.slope - half, res.slope + half])
    assert float(s.theory_slope) == -0.5


def test_ci_coverage_uses_t_not_normal():
    # 5 fits (df = 3): the 95% t interval must cover the true slope in 95% of 400 simulated
    # studies; binomial sd sqrt(.95 * .05 / 400) = 0.011, so [0.917, 0.983] is a 3-sd band.
    # A normal quantile (1.96 instead of t_3 = 3.18) covers only ~85%: the band excludes it.
    n = np.array([500, 1500, 4000, 12_000, 40_000])
    rng = np.random.default_rng(7)
    cover_t = cover_z = 0
    for _ in range(400):
        means = 3.0 * n**-0.5 * rng.lognormal(0, 0.2, n.size)
        fit = rate_fit(n, means)
        cover_t += fit["ci"][0] <= -0.5 <= fit["ci"][1]
        cover_z += abs(fit["slope"] + 0.5) <= 1.96 * fit["stderr"]
    assert 0.917 <= cover_t / 400 <= 0.983
    assert cover_z / 400 < 0.917


def test_n_sources_and_no_n():
    d = _distances(N7).isel(replicate=0, drop=True)
    plain = d.drop_vars("n").rename(n="fit")
    s0 = contraction_summary(plain)
    assert "slope" not in s0 and "mean" in s0
    s1 = contraction_summary(plain, n=N7)
    s2 = contraction_summary(plain.assign_coords(n=("fit", N7)))
    s3 = contraction_summary(d)
    assert float(s1.slope) == pytest.approx(float(s2.slope)) == pytest.approx(float(s3.slope))
    # posterior median instead of mean
    sm = contraction_summary(d, statistic="median")
    assert float(sm.slope) != float(s3.slope)
    # distances without sample dims (point estimates): the values themselves are regressed
    pt = contraction_summary(d.isel(draw=0, drop=True))
    np.testing.assert_allclose(pt["mean"].values, d.isel(draw=0).values)


def test_warns_on_thin_designs():
    d = _distances(np.array([100, 200, 400]))
    with pytest.warns(UserWarning, match="7 values"):
        contraction_summary(d)


def test_bad_inputs():
    d = _distances(N7)
    with pytest.raises(TypeError, match="DataArray"):
        contraction_summary(d.values)
    with pytest.raises(ValueError, match="statistic"):
        contraction_summary(d, statistic="mode")
    with pytest.raises(ValueError, match="> 0"):
        contraction_summary(d * 0)
    with pytest.raises(ValueError, match="non-negative"):
        contraction_summary(-d)
    plain = d.isel(replicate=0, drop=True).drop_vars("n").rename(n="fit")
    with pytest.raises(ValueError, match="one sample size per fit"):
        contraction_summary(plain, n=N7[:3])
    with pytest.raises(ValueError, match="at least 3 fits"):
        rate_fit([100, 100, 100], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="sample_dims"):
        contraction_summary(d, sample_dims=["chain"])


def test_plot_contraction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesmoe.diagnostics.plots import plot_contraction

    s = contraction_summary(_distances(N7, reps=2))
    ax = plot_contraction(s)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    fit_line, theory_line = ax.lines[-2], ax.lines[-1]
    gx, gy = fit_line.get_xdata(), fit_line.get_ydata()
    np.testing.assert_allclose(gy, np.exp(float(s.intercept)) * gx ** float(s.slope))
    tx, ty = theory_line.get_xdata(), theory_line.get_ydata()
    slope = np.diff(np.log(ty)) / np.diff(np.log(tx))
    np.testing.assert_allclose(slope, -0.5)
    plt.close("all")
    with pytest.raises(ValueError, match="slope"):
        plot_contraction(contraction_summary(_distances(N7).drop_vars("n")))
