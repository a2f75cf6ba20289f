"""The study report page: contraction, selection frequencies, and a per-task table of links.

- **Contraction**: for each distance to the truth in the table (``voronoi_loss``, ``hellinger``)
  and each K, the metric against n on log–log axes with the least-squares line of
  log(metric) on log(n) (:func:`scipy.stats.linregress`; slope ± standard error) and a reference
  line of slope −1/2 (the parametric rate n^(-1/2)) through the fitted line's centre.
- **Selection frequencies** (when the grid has several K): within each data set (the same n and
  replicate) the K chosen by the lowest BIC (mle) or the highest ``elpd_loo`` (nuts); with random
  K (``k_mode`` in the table) the posterior mode of K. Only data sets with every K finished count.
- **Tasks**: status, coordinates, main metrics and a link to the fit's page (written for every
  finished task into its folder; a page is rewritten only when older than the task's files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesmoe.report.html import Section, esc, figure_to_data_uri, guarded, render_page, table_html

__all__ = ["THEORETICAL_SLOPE", "contraction_slopes", "selection_frequencies", "write_study_report"]

#: Reference slope of log(loss) on log(n): the parametric rate n^(-1/2).
THEORETICAL_SLOPE = -0.5
_DISTANCES = ("voronoi_loss", "hellinger")


def contraction_slopes(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Least-squares slope of log(metric) on log(n), per number of experts.

    Parameters
    ----------
    table : pandas.DataFrame
        The study table (columns ``n``, `metric`, optionally ``n_experts`` and ``status``).
    metric : str
        A positive metric column.

    Returns
    -------
    pandas.DataFrame
        Columns ``n_experts``, ``slope``, ``stderr``, ``intercept``, ``r2``, ``n_tasks``; one row
        per K with at least two distinct n.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayesmoe.report.study import contraction_slopes
    >>> n = np.array([100, 200, 400, 800])
    >>> df = pd.DataFrame({"n": n, "loss": 3.0 * n ** -0.5, "n_experts": 2})
    >>> round(float(contraction_slopes(df, "loss")["slope"].iloc[0]), 6)
    -0.5
    """
    from scipy.stats import linregress

    if metric not in table.columns or "n" not in table.columns:
        raise ValueError(f"the table needs columns 'n' and {metric!r}; got {list(table.columns)}.")
    df = table
    if "status" in df.columns:
        df = df[df["status"] == "done"]
    df = df[pd.to_numeric(df[metric], errors="coerce") > 0]
    groups = df.groupby("n_experts") if "n_experts" in df.columns else [(None, df)]
    rows = []
    for k, g in groups:
        if g["n"].nunique() < 2:
            continue
        x, y = np.log(g["n"].astype(float)), np.log(g[metric].astype(float))
        fit = linregress(x, y)
        rows.append(
            {
                "n_experts": k,
                "slope": fit.slope,
                "stderr": fit.stderr,
                "intercept": fit.intercept,
                "r2": fit.rvalue**2,
                "n_tasks": len(g),
            }
        )
    return pd.DataFrame(
        rows, columns=["n_experts", "slope", "stderr", "intercept", "r2", "n_tasks"]
    )


def selection_frequencies(table: pd.DataFrame) -> pd.DataFrame | None:
    """Frequency of each selected K per sample size (None when nothing is selected).

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.report.study import selection_frequencies
    >>> df = pd.DataFrame({"n": [100] * 4, "replicate": [0, 0, 1, 1], "n_experts": [2, 3] * 2,
    ...                    "method": "mle", "status": "done", "bic": [10.0, 12.0, 9.0, 8.0]})
    >>> selection_frequencies(df).loc[100].tolist()
    [0.5, 0.5]
    """
    df = table[table["status"] == "done"] if "status" in table.columns else table
    if df.empty:
        return None
    by_n = "n" in df.columns
    if "k_mode" in df.columns and df["k_mode"].notna().any():
        chosen = df[["n", "k_mode"]] if by_n else df[["k_mode"]].assign(n="all")
        chosen = chosen.rename(columns={"k_mode": "selected_K"})
    else:
        if "n_experts" not in df.columns or df["n_experts"].nunique() < 2:
            return None
        method = df["method"].iloc[0] if "method" in df.columns else "mle"
        crit, best = ("bic", "idxmin") if method == "mle" else ("elpd_loo", "idxmax")
        if crit not in df.columns:
            return None
        keys = [c for c in ("n", "replicate") if c in df.columns]
        n_k = df["n_experts"].nunique()
        picks = []
        for _key, g in df.groupby(keys) if keys else [((), df)]:
            g = g[pd.to_numeric(g[crit], errors="coerce").notna()]
            if len(g) < n_k:  # a data set with an unfinished K does not count
                continue
            row = g.loc[getattr(g[crit].astype(float), best)()]
            picks.append({"n": row["n"] if by_n else "all", "selected_K": row["n_experts"]})
        if not picks:
            return None
        chosen = pd.DataFrame(picks)
    freq = pd.crosstab(chosen["n"], chosen["selected_K"], normalize="index")
    freq.columns = [f"K={int(c)}" for c in freq.columns]
    freq.index.name = "n"
    return freq


def _contraction_section(table: pd.DataFrame) -> Section | None:
    metrics = [
        m
        for m in _DISTANCES
        if m in table.columns and pd.to_numeric(table[m], errors="coerce").gt(0).any()
    ]
    if not metrics or "n" not in table.columns or table["n"].nunique() < 2:
        return None
    sec = Section("Contraction of the posterior (or estimator) towards the truth")

    def fill(s: Section) -> None:
        fig = Figure(figsize=(5.5 * len(metrics), 4))
        axes = np.atleast_1d(fig.subplots(1, len(metrics)))
        all_rows = []
        for ax, m in zip(axes, metrics, strict=True):
            slopes = contraction_slopes(table, m)
            done = table[
                (table.get("status", "done") == "done")
                & (pd.to_numeric(table[m], errors="coerce") > 0)
            ]
            groups = done.groupby("n_experts") if "n_experts" in done else [(None, done)]
            for i, (k, g) in enumerate(groups):
                c = f"C{i % 10}"
                lab = f"K={k}" if k is not None else "tasks"
                ax.scatter(g["n"], g[m].astype(float), s=14, color=c, alpha=0.6, label=lab)
                means = g.groupby("n")[m].apply(lambda v: np.exp(np.log(v.astype(float)).mean()))
                ax.plot(means.index, means.values, "o", color=c, mfc="none", ms=8)
                row = slopes[slopes["n_experts"] == k] if k is not None else slopes
                if len(row):
                    r = row.iloc[0]
                    ns = np.array([g["n"].min(), g["n"].max()], dtype=float)
                    ax.plot(
                        ns,
                        np.exp(r["intercept"]) * ns ** r["slope"],
                        color=c,
                        label=f"fit: slope {r['slope']:.2f} ± {r['stderr']:.2f}",
                    )
                    xc = np.exp(np.log(g["n"].astype(float)).mean())
                    yc = np.exp(r["intercept"]) * xc ** r["slope"]
                    ax.plot(
                        ns,
                        yc * (ns / xc) ** THEORETICAL_SLOPE,
                        "--",
                        color=c,
                        alpha=0.7,
                        label="slope −1/2" if i == 0 else None,
                    )
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("n")
            ax.set_ylabel(m.replace("_", " "))
            ax.legend(fontsize=7)
            all_rows.append(slopes.assign(metric=m))
        s.add_image(figure_to_data_uri(fig), "contraction log-log plot")
        tab = pd.concat(all_rows)[["metric", "n_experts", "slope", "stderr", "r2", "n_tasks"]]
        s.html.append(table_html(tab.assign(theoretical=THEORETICAL_SLOPE), index=False))
        s.add_note(
            "Points: tasks; open circles: geometric mean per n; solid: least-squares fit of "
            "log(metric) on log(n); dashed: slope −1/2 through the fit's centre. Posterior "
            "metrics are posterior means over at most 200 draws."
        )

    guarded(sec, "the contraction plot", fill)
    return sec


def _selection_section(table: pd.DataFrame) -> Section | None:
    freq = selection_frequencies(table)
    if freq is None:
        return None
    sec = Section("Selection frequencies of K")

    def fill(s: Section) -> None:
        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
        pos = np.arange(len(freq))
        bottom = np.zeros(len(freq))
        for i, c in enumerate(freq.columns):
            ax.bar(pos, freq[c].values, bottom=bottom, color=f"C{i % 10}", label=c)
            bottom += freq[c].values
        ax.set_xticks(pos, [str(v) for v in freq.index])
        ax.set_xlabel("n")
        ax.set_ylabel("frequency")
        ax.legend(fontsize=8)
        s.add_image(figure_to_data_uri(fig), "selection frequencies")
        s.html.append(table_html(freq))
        s.add_note(
            "Per data set (n, replicate): the K with the lowest BIC (mle) or the highest "
            "PSIS-LOO elpd (nuts); with random K, the posterior mode of K."
        )

    guarded(sec, "the selection frequencies", fill)
    return sec


def _write_task_pages(root: Path, table: pd.DataFrame, progressbar: bool) -> dict[str, str]:
    """Write (or refresh) each finished task's page; return task id -> relative link."""
    from tqdm.auto import tqdm

    from bayesmoe.report.fit import REPORT_FILE, write_fit_report, write_measure_report

    links = {}
    done = table[table["status"] == "done"] if "status" in table.columns else table
    for tid in tqdm(list(done["task"]), desc="fit pages", unit="page", disable=not progressbar):
        folder = root / "tasks" / str(tid)
        page = folder / REPORT_FILE
        rec_path = folder / "metrics.json"
        if not rec_path.is_file():
            continue
        rec = json.loads(rec_path.read_text())
        result = folder / rec.get("result_file", "")
        if not result.is_file():
            continue
        fresh = page.is_file() and page.stat().st_mtime >= max(
            result.stat().st_mtime, rec_path.stat().st_mtime
        )
        if not fresh:
            nav = [("← study", "../../report.html")]
            extra = {
                "task": tid,
                **{
                    k: v
                    for k, v in rec.get("metrics", {}).items()
                    if not isinstance(v, (dict, list))
                },
                "task seconds": rec.get("seconds"),
                "host": rec.get("host"),
            }
            title = f"{tid} ({rec.get('method')})"
            if result.name == "trace.nc":
                write_fit_report(result, folder, metrics=extra, nav=nav, title=title)
            else:
                write_measure_report(result, folder, metrics=extra, nav=nav, title=title)
        links[str(tid)] = f"tasks/{tid}/{REPORT_FILE}"
    return links


_TABLE_COLS = (
    "status",
    "n",
    "replicate",
    "n_experts",
    "method",
    "voronoi_loss",
    "hellinger",
    "max_rhat",
    "min_ess_bulk",
    "divergences",
    "elpd_loo",
    "bic",
    "k_mode",
    "seconds",
    "attempts",
    "error",
)


def write_study_report(study_dir: str | Path, *, progressbar: bool = True) -> Path:
    """Write ``study_dir/report.html`` and one page per finished fit.

    Parameters
    ----------
    study_dir : str or pathlib.Path
        A folder written by :func:`bayesmoe.study.run_study`.
    progressbar : bool
        Show a bar while the fit pages are written.

    Returns
    -------
    pathlib.Path
        The study page.
    """
    from bayesmoe.study.runner import collect_results
    from bayesmoe.study.store import atomic_write_text

    root = Path(study_dir)
    table = collect_results(root)  # refreshes results.csv/.nc so they match the page
    spec = json.loads((root / "study.json").read_text()) if (root / "study.json").is_file() else {}
    links = _write_task_pages(root, table, progressbar)
    sections = []
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    for make in (_contraction_section, _selection_section):
        sec = make(table)
        if sec is not None:
            sections.append(sec)
    tasks = Section(f"Tasks ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})")
    cols = [c for c in _TABLE_COLS if c in table.columns]
    view = table.set_index("task")[cols].copy()
    view.insert(
        0, "page", [f"<a href='{esc(links[t])}'>open</a>" if t in links else "" for t in view.index]
    )
    tasks.html.append(table_html(view, raw_columns=("page",)))
    tasks.add_note("Full table: results.csv / results.nc in the study folder.")
    sections.append(tasks)
    st = spec.get("study", {})
    meta = {
        "study": st.get("name", root.name),
        "base seed": st.get("seed", "?"),
        "data": json.dumps(spec.get("data", {})),
        "model": json.dumps(spec.get("model", {})),
        "inference": json.dumps(spec.get("inference", {})),
        "grid": json.dumps(spec.get("grid", {})),
    }
    html_text = render_page(f"bayesmoe study: {meta['study']}", sections, meta=meta)
    return atomic_write_text(root / "report.html", html_text)
