"""The single-fit report page: ArviZ plots of the relabelled posterior, checks and diagnostics.

Sections: run information, the diagnostics table (:func:`bayesmoe.diagnostics.summary.summary`, or
the fit folder's ``summary.csv``), ArviZ trace, rank and forest plots (``arviz.plot_trace_dist``,
``arviz.plot_rank``, ``arviz.plot_forest``) of the user-unit parameters, a posterior predictive
check, the gate probabilities over the first feature (posterior mean and 94% band, the other
features at their medians), and the posterior of K when the posterior has ``n_experts``. A
maximum-likelihood fit (a mixing measure, ``fit.nc`` of a study task) gets a page with its
parameters and metrics (:func:`write_measure_report`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayesmoe.report.html import (
    Section,
    esc,
    figure_to_data_uri,
    guarded,
    render_page,
    table_html,
)

__all__ = ["REPORT_FILE", "write_fit_report", "write_measure_report"]

REPORT_FILE = "report.html"
_USER_VARS = ("beta0", "beta1", "a", "b", "sigma")
_CI = 0.94


def _load_trace(trace) -> xr.DataTree:
    if isinstance(trace, xr.DataTree):
        return trace
    if isinstance(trace, (str, Path)):
        p = Path(trace)
        if not p.is_file():
            raise ValueError(f"trace file {str(p)!r} does not exist.")
        return xr.open_datatree(p, engine="h5netcdf").load()
    raise TypeError(
        f"`trace` must be an xarray.DataTree or a trace.nc path; got {type(trace).__name__}."
    )


def _arviz_figure(pc):
    fig = pc.get_viz("figure")
    return fig.item() if isinstance(fig, xr.DataArray) else fig


def _meta(trace: xr.DataTree) -> dict:
    a = trace.attrs
    post = trace["posterior"]
    meta = {
        "data": a.get("data", "?"),
        "family": a.get("family", "?"),
        "gate": a.get("gate", "?"),
        "experts (K)": a.get("n_experts", "random"),
        "sampler": a.get("sampler", "?"),
        "chains × draws": f"{post.sizes['chain']} × {post.sizes['draw']}",
        "tune": a.get("tune", "?"),
        "random seed": a.get("random_seed", "?"),
        "relabelled": bool(a.get("relabelled", False)),
    }
    if "seconds_sampling" in a:
        meta["sampling time"] = f"{float(a['seconds_sampling']):.1f} s"
    if "sample_stats" in trace.children and "diverging" in trace["sample_stats"]:
        meta["divergences"] = int(trace["sample_stats"]["diverging"].values.sum())
    return meta


def _diagnostics(trace, names, summary_table) -> Section:
    sec = Section("Diagnostics (relabelled draws)")

    def fill(s: Section) -> None:
        table = summary_table
        if table is None:
            from bayesmoe.diagnostics.summary import summary

            extra = ["loglik"] if "log_likelihood" in trace.children else []
            table = summary(
                trace, var_names=[*names, *extra], relabel=not trace.attrs.get("relabelled", False)
            )
        if "r_hat" in table.columns:
            from bayesmoe.diagnostics.convergence import RHAT_MAX

            bad = table["r_hat"] > RHAT_MAX
            if bad.any():
                s.add_note(
                    f"{int(bad.sum())} row(s) with R-hat > {RHAT_MAX}: "
                    + ", ".join(map(str, table.index[bad][:10]))
                )
        s.html.append(table_html(table))

    guarded(sec, "the diagnostics table", fill)
    return sec


def _arviz_section(title, what, fn, trace, names) -> Section:
    sec = Section(title)

    def fill(s: Section) -> None:
        s.add_image(figure_to_data_uri(_arviz_figure(fn(trace, names)), dpi=60), what)

    guarded(sec, what, fill)
    return sec


def _trace_plot(trace, names):
    import arviz as az

    return az.plot_trace_dist(trace, var_names=names, backend="matplotlib")


def _rank_plot(trace, names):
    import arviz as az

    return az.plot_rank(trace, var_names=names, backend="matplotlib")


def _forest_plot(trace, names):
    import arviz as az

    return az.plot_forest(trace, var_names=names, combined=True, backend="matplotlib")


def _observed(trace):
    X = trace["constant_data"]["X"].transpose("obs", "feature").values
    y = trace["observed_data"]["y"].values
    return X, y


def _ppc(trace) -> Section:
    sec = Section("Posterior predictive check")

    def fill(s: Section) -> None:
        from bayesmoe.inference import posterior_predictive

        X, y = _observed(trace)
        cd = trace["constant_data"]
        offset = cd["offset"].values if "offset" in cd else None  # log-exposures of the fit
        trials = cd["trials"].values if "trials" in cd else None  # binomial trials of the fit
        pp = posterior_predictive(
            trace, X, max_draws=60, random_seed=0, offset=offset, trials=trials
        )
        draws = pp["y"].stack(sample=("chain", "draw")).transpose("sample", "obs").values
        fig = Figure(figsize=(10, 3.4))
        ax1, ax2 = fig.subplots(1, 2)
        if np.issubdtype(np.asarray(y).dtype, np.number) and "probs" not in pp:
            bins = np.histogram_bin_edges(np.concatenate([y, draws.ravel()]), bins=40)
            mids = 0.5 * (bins[1:] + bins[:-1])
            for row in draws:
                ax1.plot(
                    mids, np.histogram(row, bins, density=True)[0], color="0.6", lw=0.5, alpha=0.4
                )
            ax1.plot(
                mids, np.histogram(y, bins, density=True)[0], color="C3", lw=2, label="observed y"
            )
            ax1.plot([], [], color="0.6", label=f"{len(draws)} predictive draws")
            ax1.set_xlabel("y")
            ax1.set_ylabel("density")
            if X.shape[1] == 0:  # no covariates: quantiles of one replicate against the data
                ax2.scatter(
                    np.sort(y), np.sort(draws[0]), s=4, color="0.6", label="one predictive draw"
                )
                ax2.plot([y.min(), y.max()], [y.min(), y.max()], color="C3", label="y = x")
                ax2.set_xlabel("observed y (sorted)")
            else:
                ax2.scatter(X[:, 0], draws[0], s=4, color="0.6", label="one predictive draw")
                ax2.scatter(X[:, 0], y, s=4, color="C3", label="observed")
                ax2.set_xlabel(str(trace["constant_data"]["feature"].values[0]))
            ax2.set_ylabel("y")
        else:
            classes = pp["class"].values
            obs = np.array([np.mean(y == c) for c in classes])
            pred = np.stack([(draws == c).mean(1) for c in classes], axis=1)
            lo, hi = np.quantile(pred, [(1 - _CI) / 2, (1 + _CI) / 2], axis=0)
            pos = np.arange(len(classes))
            ax1.bar(pos, obs, color="C3", alpha=0.6, label="observed")
            ax1.errorbar(
                pos,
                pred.mean(0),
                yerr=[pred.mean(0) - lo, hi - pred.mean(0)],
                fmt="o",
                color="k",
                label=f"predictive mean, {_CI:.0%} interval",
            )
            ax1.set_xticks(pos, [str(c) for c in classes])
            ax1.set_ylabel("class proportion")
            p = pp["probs"].mean(("chain", "draw")).values
            for j, c in enumerate(classes):
                ax2.scatter(X[:, 0], p[:, j], s=4, label=f"P(y={c} | x)")
            ax2.set_xlabel(str(trace["constant_data"]["feature"].values[0]))
        ax1.legend(fontsize=8)
        ax2.legend(fontsize=8, markerscale=3)
        s.add_image(figure_to_data_uri(fig), "posterior predictive check")
        s.add_note(
            "Left: the distribution of y and of replicated data sets drawn from the "
            "posterior predictive at the observed inputs. Right: data and one replicate "
            "against the first feature."
        )

    guarded(sec, "the posterior predictive check", fill)
    return sec


def _gate_plot(trace) -> Section:
    sec = Section("Gate probabilities over the first feature")

    def fill(s: Section) -> None:
        from bayesmoe.inference import gate_probabilities
        from bayesmoe.models.gates import is_custom

        if is_custom(trace.attrs.get("gate")):
            s.add_note(
                "The fit used a custom gate callable, which a trace does not store; "
                "gate probabilities are not drawn."
            )
            return
        X, _ = _observed(trace)
        if X.shape[1] == 0:
            s.add_note(
                "No covariates: the gate is constant, the mixing weights "
                "softmax(beta0) (see the summary table)."
            )
            return
        grid = np.repeat(np.median(X, axis=0, keepdims=True), 120, axis=0)
        grid[:, 0] = np.linspace(X[:, 0].min(), X[:, 0].max(), 120)
        g = gate_probabilities(trace, grid, max_draws=400)
        mean = g.mean(("chain", "draw")).values
        lo, hi = np.quantile(
            g.stack(s=("chain", "draw")).values, [(1 - _CI) / 2, (1 + _CI) / 2], axis=-1
        )
        fig = Figure(figsize=(7, 3.4))
        ax = fig.subplots()
        for k, e in enumerate(g["expert"].values):
            ax.plot(grid[:, 0], mean[:, k], color=f"C{k % 10}", label=f"expert {e}")
            ax.fill_between(grid[:, 0], lo[:, k], hi[:, k], color=f"C{k % 10}", alpha=0.2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(str(trace["constant_data"]["feature"].values[0]))
        ax.set_ylabel("gate probability")
        ax.legend(fontsize=8)
        s.add_image(figure_to_data_uri(fig), "gate probabilities")
        note = "Posterior mean and 94% band"
        if X.shape[1] > 1:
            note += "; the other features are held at their medians"
        s.add_note(note + ".")

    guarded(sec, "the gate probabilities", fill)
    return sec


def _k_posterior(trace) -> Section:
    sec = Section("Posterior of the number of experts K")

    def fill(s: Section) -> None:
        k = trace["posterior"]["n_experts"].values.ravel().astype(int)
        vals, counts = np.unique(k, return_counts=True)
        fig = Figure(figsize=(5, 3))
        ax = fig.subplots()
        ax.bar(vals, counts / k.size, color="C0")
        ax.set_xlabel("K")
        ax.set_ylabel("posterior probability")
        ax.set_xticks(vals)
        s.add_image(figure_to_data_uri(fig), "posterior of K")
        s.html.append(
            table_html(pd.DataFrame({"K": vals, "p(K | y)": counts / k.size}), index=False)
        )

    guarded(sec, "the posterior of K", fill)
    return sec


def write_fit_report(
    trace: xr.DataTree | str | Path,
    out_dir: str | Path,
    *,
    summary_table: pd.DataFrame | None = None,
    title: str | None = None,
    metrics: dict | None = None,
    nav: list[tuple[str, str]] | None = None,
    filename: str = REPORT_FILE,
) -> Path:
    """Write the self-contained HTML report of one posterior fit.

    Parameters
    ----------
    trace : xarray.DataTree or path
        A trace from :func:`bayesmoe.inference.sample` (relabelled draws are expected; an
        unrelabelled trace is relabelled for the table) or its ``trace.nc``.
    out_dir : str or pathlib.Path
        Existing folder to write ``report.html`` into.
    summary_table : pandas.DataFrame, optional
        Diagnostics table to show (default: computed with
        :func:`bayesmoe.diagnostics.summary.summary`; the table in ``out_dir/summary.csv`` is used
        when present).
    title : str, optional
    metrics : dict, optional
        Extra key/value rows for the run-information table (e.g. a study task's metrics).
    nav : list of (label, href), optional
        Links shown at the top (e.g. back to the study page).
    filename : str
        Name of the HTML file.

    Returns
    -------
    pathlib.Path
        The HTML file.

    Examples
    --------
    Given a fit folder from ``bayesmoe fit`` (not run as a doctest: a fit and the report's
    figures take several seconds):

    >>> from bayesmoe.report import write_fit_report
    >>> write_fit_report("bayesmoe-run/trace.nc", "bayesmoe-run")  # doctest: +SKIP
    PosixPath('bayesmoe-run/report.html')
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"`out_dir` {str(out)!r} is not an existing folder; create it first.")
    trace = _load_trace(trace)
    if "posterior" not in trace.children:
        raise ValueError(
            "the trace has no 'posterior' group; give a trace from bayesmoe.inference.sample."
        )
    csv = out / "summary.csv"
    if summary_table is None and csv.is_file():
        summary_table = pd.read_csv(csv, index_col=0)
    post = trace["posterior"]
    names = [v for v in _USER_VARS if v in post and post[v].size > 0]  # d = 0: no slopes
    if not names:
        raise ValueError(
            f"the posterior has none of the user-unit variables {_USER_VARS}; "
            "give a trace from bayesmoe.inference.sample."
        )
    meta = _meta(trace)
    if metrics:
        meta.update({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in metrics.items()})
    sections = [_diagnostics(trace, names, summary_table)]
    sections.append(
        _arviz_section("Trace plots (relabelled)", "the trace plot", _trace_plot, trace, names)
    )
    sections.append(_arviz_section("Rank plots", "the rank plot", _rank_plot, trace, names))
    sections.append(
        _arviz_section(
            "Forest plot (94% intervals, chains combined)",
            "the forest plot",
            _forest_plot,
            trace,
            names,
        )
    )
    if {"constant_data", "observed_data"} <= set(trace.children):
        sections.append(_ppc(trace))
        sections.append(_gate_plot(trace))
    if "n_experts" in post:
        sections.append(_k_posterior(trace))
    html_text = render_page(
        title or f"bayesmoe fit: {trace.attrs.get('data', out.name)}",
        sections,
        meta=meta,
        nav=nav or (),
    )
    path = out / filename
    from bayesmoe.study.store import atomic_write_text

    atomic_write_text(path, html_text)
    return path


def write_measure_report(
    measure: xr.Dataset | str | Path,
    out_dir: str | Path,
    *,
    metrics: dict | None = None,
    title: str | None = None,
    nav: list[tuple[str, str]] | None = None,
    filename: str = REPORT_FILE,
) -> Path:
    """Write the HTML page of a point estimate (a mixing measure, e.g. a study's ``fit.nc``).

    Returns
    -------
    pathlib.Path
        The HTML file.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"`out_dir` {str(out)!r} is not an existing folder; create it first.")
    if isinstance(measure, (str, Path)):
        measure = xr.open_dataset(measure, engine="h5netcdf").load()
    sec = Section("Fitted mixing measure (user units)")
    for name, da in measure.data_vars.items():
        df = da.to_dataframe().reset_index()
        sec.html.append(f"<h3>{esc(name)}</h3>")
        sec.html.append(table_html(df, index=False))
    meta = {k: v for k, v in measure.attrs.items()}
    if metrics:
        meta.update(
            {
                k: (f"{v:.4g}" if isinstance(v, float) else v)
                for k, v in metrics.items()
                if not isinstance(v, (dict, list))
            }
        )
    html_text = render_page(
        title or "bayesmoe maximum-likelihood fit", [sec], meta=meta, nav=nav or ()
    )
    from bayesmoe.study.store import atomic_write_text

    return atomic_write_text(out / filename, html_text)
