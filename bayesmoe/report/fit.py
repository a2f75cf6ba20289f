"""The single-fit report page: the answer first, then the checks and the diagnostics.

Fixed K: the fitted model (each expert's curve over the data and the gate probabilities,
:func:`bayesmoe.plots.plot_fit`) and the user-unit parameters with their legend, then the
posterior predictive check (observed data in both panels), the diagnostics table
(:func:`bayesmoe.diagnostics.summary.summary`, or the fit folder's ``summary.csv``), ArviZ trace and
rank plots (``arviz.plot_trace_dist``, ``arviz.plot_rank``) and a forest plot grouped by parameter
(one axis scale per group). Random K: p(K | y) beside its prior with Monte Carlo errors first, then
the predictive check and the label-invariant diagnostics (per-expert parameters are only defined
given K). A maximum-likelihood fit (a mixing measure, ``fit.nc`` of a study task) gets a page with
its parameters and metrics (:func:`write_measure_report`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayesmoe.report.answer import (
    fitted_model_section,
    forest_figure,
    k_posterior_section,
    parameters_section,
)
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


def _meta(trace: xr.DataTree, relabelled: bool) -> dict:
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
        "relabelled": relabelled,
    }
    if "seconds_sampling" in a:
        meta["sampling time"] = f"{float(a['seconds_sampling']):.1f} s"
    if "sample_stats" in trace.children and "diverging" in trace["sample_stats"]:
        meta["divergences"] = int(trace["sample_stats"]["diverging"].values.sum())
    return meta


def _summary_table(trace, names, summary_table, random_k: bool) -> pd.DataFrame:
    """The diagnostics table: given, or computed (random K: the label-invariant rows)."""
    from bayesmoe.diagnostics.summary import _family, _legend, summary

    if summary_table is not None and "mean" not in summary_table.columns:
        summary_table = None  # e.g. a random-K fit folder's summary.csv holds p(K | y)
    if summary_table is not None:
        table = summary_table
        table.attrs.setdefault("relabelled", bool(trace.attrs.get("relabelled", False)))
    elif random_k:  # the label-invariant rows (not the sampler's internal K index)
        extra = ["loglik"] if "log_likelihood" in trace.children else []
        table = summary(trace, var_names=["n_experts", *extra])
    else:
        extra = ["loglik"] if "log_likelihood" in trace.children else []
        table = summary(
            trace, var_names=[*names, *extra], relabel=not trace.attrs.get("relabelled", False)
        )
    if "legend" not in table.attrs:
        stems = list(dict.fromkeys(str(i).split("[")[0] for i in table.index))
        table.attrs["legend"] = _legend(stems, _family(trace, trace["posterior"]))
    return table


def _diagnostics(table: pd.DataFrame, title: str) -> Section:
    sec = Section(title)

    def fill(s: Section) -> None:
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

    from bayesmoe.report.answer import FlatLabeller

    pc = az.plot_rank(trace, var_names=names, backend="matplotlib", labeller=FlatLabeller())
    _arviz_figure(pc).set_layout_engine("constrained")  # no title over the row above
    return pc


def _without_reference(trace: xr.DataTree) -> xr.DataTree:
    """The trace whose posterior leaves out the family's pinned reference entries (categorical:
    the reference class's zeros), which trace and rank plots would draw as constants.
    """
    from bayesmoe.diagnostics.summary import _drop_reference, _family

    post = trace["posterior"].to_dataset()
    fam = _family(trace, post)
    if fam is None or not fam.reference_index:
        return trace
    view = trace.copy()
    view["posterior"] = xr.DataTree(_drop_reference(post, fam))
    return view


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
            from bayesmoe.plots import _class_codes

            classes = pp["class"].values
            codes = _class_codes(y, classes.tolist())  # observed_data holds class codes
            obs = np.bincount(codes, minlength=len(classes)) / len(codes)
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
            if X.shape[1] == 0:  # no covariates: one probability per class
                ax2.set_axis_off()
            else:
                # observed class shares in 8 equal-count bins of the first feature
                edges = np.unique(np.quantile(X[:, 0], np.linspace(0, 1, 9)))
                b = np.clip(np.searchsorted(edges, X[:, 0], side="right") - 1, 0, len(edges) - 2)
                mids = np.array([np.median(X[b == i, 0]) for i in range(len(edges) - 1)])
                for j, c in enumerate(classes):
                    ax2.scatter(X[:, 0], p[:, j], s=4, color=f"C{j % 10}", label=f"P(y={c} | x)")
                    share = [np.mean(codes[b == i] == j) for i in range(len(edges) - 1)]
                    ax2.plot(mids, share, "x", color=f"C{j % 10}", ms=8, mew=2)
                ax2.plot([], [], "x", color="k", label="observed share (8 bins)")
                ax2.set_xlabel(str(trace["constant_data"]["feature"].values[0]))
                ax2.set_ylabel("class probability")
        ax1.legend(fontsize=8)
        if ax2.axison:
            ax2.legend(fontsize=8, markerscale=2)
        s.add_image(figure_to_data_uri(fig), "posterior predictive check")
        if "probs" in pp:
            right = (
                "Right: the predicted class probabilities at the observed inputs (posterior "
                "mean) and the observed class shares in bins of the first feature."
            )
            left = "Left: observed class proportions and those of replicated data sets"
        else:
            right = (
                "Right: the observed data and one replicate against the first feature."
                if X.shape[1]
                else "Right: sorted replicate against sorted data (quantile plot)."
            )
            left = "Left: the distribution of y (red) and of replicated data sets (grey)"
        s.add_note(f"{left}, drawn from the posterior predictive at the observed inputs. {right}")

    guarded(sec, "the posterior predictive check", fill)
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
    random_k = "n_experts" in post
    table = _summary_table(trace, names, summary_table, random_k)
    relabelled = bool(trace.attrs.get("relabelled", False) or table.attrs.get("relabelled"))
    meta = _meta(trace, relabelled)
    if random_k:
        meta["relabelled"] = "no: expert labels are defined given K (relabel_at_k)"
    if metrics:
        meta.update({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in metrics.items()})
    has_data = {"constant_data", "observed_data"} <= set(trace.children)
    sections = []
    if random_k:  # the answer: p(K | y) beside its prior
        sections.append(k_posterior_section(trace))
        if has_data:
            sections.append(_ppc(trace))
        sections.append(_diagnostics(table, "Diagnostics (label-invariant quantities)"))
        sections.append(
            _arviz_section("Trace plot of K", "the trace plot", _trace_plot, trace, ["n_experts"])
        )
        if post.sizes["chain"] > 1:  # K's ranks are the mixing check (padded slots say nothing)
            sections.append(
                _arviz_section("Rank plot of K", "the rank plot", _rank_plot, trace, ["n_experts"])
            )
    else:  # the answer: the fitted model and its parameters in the user's units
        if has_data:
            sections.append(fitted_model_section(trace))
        sections.append(parameters_section(table))
        if has_data:
            sections.append(_ppc(trace))
        which = " (relabelled draws)" if relabelled else ""
        view = _without_reference(trace)
        sections.append(_diagnostics(table, "Diagnostics" + which))
        sections.append(
            _arviz_section("Trace plots" + which, "the trace plot", _trace_plot, view, names)
        )
        if post.sizes["chain"] > 1:
            sections.append(_arviz_section("Rank plots", "the rank plot", _rank_plot, view, names))
        else:
            sections.append(Section("Rank plots"))
            sections[-1].add_note("Rank plots compare chains; this fit has one chain.")
        forest = Section(f"Forest plots ({_CI:.0%} intervals, chains combined), one per parameter")
        guarded(
            forest,
            "the forest plot",
            lambda s: s.add_image(
                figure_to_data_uri(forest_figure(table, names), dpi=70), "the forest plot"
            ),
        )
        sections.append(forest)
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
