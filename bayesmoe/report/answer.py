"""The sections a fit report leads with: the answer before the diagnostics.

Fixed K: the fitted model (:func:`bayesmoe.plots.plot_fit`: each expert's curve over the data
and the gate) and the user-unit parameters with their legend. Random K: p(K | y) beside its
prior with Monte Carlo errors (:func:`bayesmoe.plots.plot_k_posterior`). Also the readable
diagnostics figures: rank plots with one-line titles and forest plots grouped by parameter (one
axis scale per group).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from arviz_base.labels import BaseLabeller
from matplotlib.figure import Figure

from bayesmoe.report.html import Section, esc, figure_to_data_uri, guarded, table_html

__all__ = [
    "FlatLabeller",
    "fitted_model_section",
    "forest_figure",
    "k_posterior_section",
    "parameters_section",
]

_CI = 0.94


class FlatLabeller(BaseLabeller):
    """ArviZ labeller whose panel titles are one line (``beta1[x0, 1]``): two-line titles run into
    the tick labels of the row above in the rank plots.
    """

    def make_label_vert(self, var_name, sel, isel):
        return self.make_label_flat(var_name, sel, isel)


def fitted_model_section(trace) -> Section:
    """Each expert's curve over the data and the gate probabilities, against the first feature."""
    sec = Section("The fitted model")

    def fill(s: Section) -> None:
        from bayesmoe.gates import is_custom
        from bayesmoe.plots import plot_fit

        if is_custom(trace.attrs.get("gate")):
            s.add_note(
                "The fit used a custom gate callable, which a trace does not store; the fitted "
                "model is not drawn."
            )
            return
        X = trace["constant_data"]["X"]
        if X.sizes["feature"] == 0:
            s.add_note(
                "No covariates: the gate is constant (the mixing weights softmax(beta0)); see "
                "the parameters and the predictive check below."
            )
            return
        fig = plot_fit(trace, y_label=trace.attrs.get("target_name"))
        s.add_image(figure_to_data_uri(fig), "the fitted model")
        classes = "class" in trace["posterior"].dims
        note = (
            (
                "One panel per class: each expert's probability of the class (posterior mean "
                f"and {_CI:.0%} band) and the mixture's (dashed), the observations at 1 (this "
                "class) or 0"
                if classes
                else f"Left: the data with each expert's fitted mean (posterior mean and {_CI:.0%}"
                " band)"
            )
            + ", points coloured by their most probable expert. Last panel: the gate "
            "probabilities of the experts"
        )
        if X.sizes["feature"] > 1:
            note += "; the other features are held at their medians"
        s.add_note(note + ".")

    guarded(sec, "the fitted model", fill)
    return sec


def parameters_section(table: pd.DataFrame) -> Section:
    """The user-unit parameters: posterior mean, sd and interval, with what each one means."""
    sec = Section("Parameters (user units)")

    def fill(s: Section) -> None:
        cols = [c for c in table.columns if c in ("mean", "sd") or c.startswith(("eti", "hdi"))]
        rows = [i for i in table.index if not str(i).startswith("loglik")]  # not a parameter
        s.html.append(table_html(table.loc[rows, cols]))
        legend = {k: v for k, v in table.attrs.get("legend", {}).items() if "loglik" not in k}
        if legend:
            s.html.append(
                "<ul class='note'>"
                + "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in legend.items())
                + "</ul>"
            )
        s.add_note("R-hat, ESS and Monte Carlo errors of these rows are in the diagnostics below.")

    guarded(sec, "the parameter table", fill)
    return sec


def k_posterior_section(trace) -> Section:
    """p(K | y) beside its prior, with Monte Carlo standard errors, as a figure and a table."""
    sec = Section("Posterior of the number of experts K")

    def fill(s: Section) -> None:
        from bayesmoe.inference.rjmcmc import k_posterior
        from bayesmoe.plots import _prior_of_k, plot_k_posterior

        fig = Figure(figsize=(6, 3.4), layout="constrained")
        plot_k_posterior(trace, ax=fig.subplots())
        s.add_image(figure_to_data_uri(fig), "posterior of K")
        pk = k_posterior(trace)
        ks = pk["n_experts"].values.astype(int)
        df = pd.DataFrame({"K": ks, "p(K | y)": pk.values, "MCSE": pk["mcse"].values})
        prior = _prior_of_k(trace, ks)
        if prior is not None:
            df.insert(1, "prior p(K)", prior)
        s.html.append(table_html(df, index=False))
        s.add_note(
            "MCSE: Monte Carlo standard error of each probability, sqrt(p (1 - p) / ESS) with "
            "the effective sample size of the indicator of K (empty where K never or always "
            "occurs). Per-expert parameters are only defined given K: summarise one K with "
            "bayesmoe.inference.rjmcmc.relabel_at_k(trace, K)."
        )

    guarded(sec, "the posterior of K", fill)
    return sec


def forest_figure(table: pd.DataFrame, names) -> Figure:
    """Forest plot grouped by parameter: one panel per variable, each with its own axis scale
    (posterior mean and the table's interval), so small intervals (noise sds) stay visible.
    """
    lo_col = next(c for c in table.columns if c.endswith("_lb"))
    hi_col = next(c for c in table.columns if c.endswith("_ub"))
    groups = []
    for n in names:
        rows = [i for i in table.index if i == n or str(i).startswith(f"{n}[")]
        if rows:
            groups.append((n, table.loc[rows]))
    heights = [max(len(g), 1) + 1.2 for _, g in groups]
    fig = Figure(figsize=(7, 0.22 * sum(heights) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(groups), 1, gridspec_kw={"height_ratios": heights}))
    for ax, (n, g) in zip(axes, groups, strict=True):
        pos = np.arange(len(g))[::-1]
        ax.hlines(pos, g[lo_col], g[hi_col], color="C0", lw=2)
        ax.plot(g["mean"], pos, "o", color="C0", ms=4, mfc="white")
        ax.set_yticks(pos, [str(i) for i in g.index], fontsize=8)
        ax.set_ylim(-0.7, len(g) - 0.3)
        ax.set_title(n, fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel(f"posterior mean and {lo_col.split('_')[0]} interval", fontsize=8)
    return fig
