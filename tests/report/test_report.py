"""HTML reports: self-contained pages, every plot a decodable PNG, the study summaries."""

import base64
import io
import re
import warnings

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from bayesmoe.report import (
    contraction_slopes,
    selection_frequencies,
    write_fit_report,
    write_report,
)
from tests.helpers import synthetic_trace

_IMG = re.compile(r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)' alt='([^']*)'>")


def _images(html: str) -> dict[str, np.ndarray]:
    out = {}
    for data, alt in _IMG.findall(html):
        out[alt] = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
    return out


def _assert_self_contained(html: str) -> None:
    assert "<script" not in html
    assert not re.search(r"(src|href)=['\"](https?:)?//", html)
    assert "class='error'" not in html  # no plot failed
    assert html.count("<img") == len(_IMG.findall(html))  # every image is an inline PNG


def test_fit_report_has_every_plot_as_inline_png(fit_report):
    html = fit_report.read_text()
    _assert_self_contained(html)
    imgs = _images(html)
    assert set(imgs) == {
        "the fitted model",
        "the trace plot",
        "the rank plot",
        "the forest plot",
        "posterior predictive check",
    }
    for alt, arr in imgs.items():
        assert arr.shape[0] > 50 and arr.shape[1] > 50, alt
        assert arr[..., :3].std() > 0.01, alt  # not a blank canvas
    sections = [
        "The fitted model",
        "Parameters (user units)",
        "Posterior predictive check",
        "Diagnostics (relabelled draws)",
        "Trace plots (relabelled draws)",
        "Rank plots",
        "Forest plots",
    ]
    at = [html.index(f"<h2>{s}") for s in sections]
    assert at == sorted(at)  # the answer first, then the checks, then the diagnostics
    assert "beta1[x0, 0]" in html and "r_hat" in html
    assert "<b>sigma</b>: expert noise sd" in html  # the parameters' legend
    assert "Posterior of the number of experts" not in html  # K is fixed here


def test_forest_plot_has_one_panel_and_scale_per_parameter():
    from bayesmoe.diagnostics.summary import summary
    from bayesmoe.report.answer import forest_figure

    trace = synthetic_trace()
    names = ["beta0", "beta1", "a", "b", "sigma"]
    fig = forest_figure(summary(trace, var_names=names), names)
    assert [ax.get_title(loc="left") for ax in fig.axes] == names
    widths = [np.diff(ax.get_xlim())[0] for ax in fig.axes]
    assert widths[-1] < 0.5 * max(widths)  # sigma's panel is not stretched to the slopes' scale


def test_k_posterior_is_shown_first_when_k_is_random(tmp_path):
    trace = synthetic_trace("S-A", random_k=True, seed=2)  # K=2, d=1: fewer panels, faster
    trace.attrs.update(max_experts=4, experts_prior="[0.1, 0.2, 0.3, 0.4]")  # K in 2..4
    html = write_fit_report(trace, tmp_path).read_text()
    _assert_self_contained(html)
    assert "posterior of K" in _images(html)
    first = html.index("<h2>")
    assert html.startswith("<h2>Posterior of the number of experts K", first)
    k = trace["posterior"]["n_experts"].values.ravel()
    for val in (2, 3, 4):  # the table reports p(K | y) = the frequency of each K, and the prior
        assert f"<td>{np.mean(k == val):.4g}</td>" in html
    assert "<th>prior p(K)</th>" in html and "<th>MCSE</th>" in html
    assert "relabelled</th><td>no: expert labels are defined given K" in html
    assert "Diagnostics (relabelled" not in html  # no heading claims relabelled draws


def test_categorical_fit_report(tmp_path):
    trace = synthetic_trace("S-D", seed=1)
    post = trace["posterior"].to_dataset()
    trace["posterior"] = post.assign_coords({"class": ["setosa", "versicolor", "v"]})
    html = write_fit_report(trace, tmp_path).read_text()
    _assert_self_contained(html)  # string labels, codes in observed_data: no error box
    assert {"posterior predictive check", "the fitted model"} <= set(_images(html))
    assert "observed class shares in bins" in html
    assert "<td class='l'>a[x0, versicolor, 0]</td>" in html
    assert "a[x0, v, 0]" not in html  # the reference class's pinned zeros are left out


def test_trace_and_rank_plots_leave_out_the_reference_class():
    from bayesmoe.report.fit import _without_reference

    trace = synthetic_trace("S-D", seed=1)
    view = _without_reference(trace)
    assert view["posterior"].sizes["class"] == 2 and trace["posterior"].sizes["class"] == 3
    gaussian = synthetic_trace()
    assert _without_reference(gaussian) is gaussian  # Gaussian experts: nothing pinned


def test_a_plot_that_fails_is_shown_and_warned(tmp_path):
    """The error box that the other tests look for does appear when a plot cannot be drawn."""
    trace = synthetic_trace(seed=3)
    X = trace["constant_data"].to_dataset()
    trace["constant_data"] = X.isel(feature=[0])  # one feature: the measure needs two
    with pytest.warns(UserWarning, match="could not draw the posterior predictive check"):
        html = write_fit_report(trace, tmp_path).read_text()
    assert "class='error'" in html


def test_study_report_contraction_selection_and_links(study_report):
    html = study_report.read_text()
    _assert_self_contained(html)
    root = study_report.parent
    table = pd.read_csv(root / "results.csv")
    assert "contraction log-log plot" in _images(html)
    assert "selection frequencies" in _images(html)
    slopes = contraction_slopes(table, "hellinger")
    for s in slopes["slope"]:
        assert f"{s:.4g}" in html
    links = re.findall(r"<a href='(tasks/[^']+)'>open</a>", html)
    assert len(links) == len(table) == 8
    for link in links:
        page = (root / link).read_text()
        assert "../../report.html" in page  # back link
        assert "class='error'" not in page
    # the task whose result is a posterior got the full fit page
    assert "the trace plot" in (root / "tasks/n150-rep0-K3/report.html").read_text()
    # a second call keeps the fresh fit pages (they are rewritten only when outdated)
    mtimes = {p: (root / p).stat().st_mtime_ns for p in links}
    write_report(root)
    assert all((root / p).stat().st_mtime_ns == m for p, m in mtimes.items())


def test_contraction_slopes_recovers_a_power_law():
    n = np.repeat([100, 200, 400, 800, 1600], 3)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"n": np.tile(n, 2), "n_experts": np.repeat([2, 3], len(n)), "status": "done"}
    )
    df["loss"] = np.where(df["n_experts"] == 2, 2.0 * df["n"] ** -0.5, 5.0 / df["n"])
    df.loc[df.index[:3], "loss"] = np.nan  # missing values are ignored
    s = contraction_slopes(df, "loss").set_index("n_experts")
    np.testing.assert_allclose(s.loc[2, "slope"], -0.5, atol=1e-12)  # exact power laws:
    np.testing.assert_allclose(s.loc[3, "slope"], -1.0, atol=1e-12)  # round-off only
    noisy = df.assign(loss=df["loss"] * np.exp(0.1 * rng.standard_normal(len(df))))
    assert (
        abs(contraction_slopes(noisy, "loss").set_index("n_experts").loc[2, "slope"] + 0.5) < 0.1
    )  # 5 sd of the slope estimate (sd ≈ 0.1 / (sd(log n)·√12) ≈ 0.02)
    with pytest.raises(ValueError, match="needs columns"):
        contraction_slopes(df, "nope")


def test_selection_frequencies_rules():
    base = {
        "n": [100] * 6,
        "replicate": [0, 0, 1, 1, 2, 2],
        "n_experts": [2, 3] * 3,
        "status": "done",
    }
    mle = pd.DataFrame({**base, "method": "mle", "bic": [5.0, 4.0, 3.0, 9.0, 1.0, np.nan]})
    f = selection_frequencies(mle)
    # replicate 2 has no BIC for K=3 (unfinished): only replicates 0 and 1 count
    assert f.loc[100].to_dict() == {"K=2": 0.5, "K=3": 0.5}
    nuts = pd.DataFrame(
        {**base, "method": "nuts", "elpd_loo": [-5.0, -4.0, -3.0, -9.0, -1.0, -2.0]}
    )
    assert selection_frequencies(nuts).loc[100].to_dict() == {"K=2": 2 / 3, "K=3": 1 / 3}
    one_k = mle[mle["n_experts"] == 2]
    assert selection_frequencies(one_k) is None


def test_write_report_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        write_report(tmp_path / "nothing")
    with pytest.raises(ValueError, match="neither a fit folder"):
        write_report(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="not an existing folder"):
            write_fit_report(synthetic_trace(), tmp_path / "missing")
