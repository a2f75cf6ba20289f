"""One table to choose the number of experts K: BIC/ICL, DSC, MTM, p(K | y) and LOO side by side.

:func:`compare_experts` runs the existing selection tools and lines them up by K:

- **MM** (:func:`bayesmoe.selection.criteria.select_experts`): log-likelihood, parameter count,
  AIC, BIC, ICL of the multi-start MM fit of every K = 1..max(ks), and the dendrogram selection
  criterion DSC (docs/math.md §7) of the max(ks) fit;
- **MTM** (:func:`bayesmoe.selection.mtm.num_experts_posterior`, docs/math.md §6): the
  posterior of K̃ from the over-fitted NUTS fit at K = max(ks);
- **reversible jump** (:func:`bayesmoe.inference.rjmcmc.sample_random_k`, docs/math.md §3): p(K | y)
  under the random-K prior on 1..max(ks), when requested;
- **LOO** (``arviz.compare`` on NUTS fits from :func:`bayesmoe.inference.sample`), when
  requested.

:func:`plot_compare_experts` draws the table.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from bayesmoe._validation import check_family, family_keyword, keywords_checked
from bayesmoe.gates import check_gate

__all__ = ["CRITERIA", "OVERFIT_TREE_DEPTH", "compare_experts", "plot_compare_experts"]

#: NUTS tree depth at an over-fitted K (BIC above a smaller K's) unless ``nuts_kwargs`` sets
#: ``max_treedepth``: a surplus expert's posterior is a funnel (nearly empty, noise sd from a
#: data point's width to the prior's) where trees hit depth 10 (1023 steps) and one K cost most
#: of the sweep; 6 bounds it at 63 steps per draw. What the sweep reads there, elpd_loo, moved
#: by 0.2-0.6 nats between depths 6 and 7 (S-B n = 1000, three data sets), within its se_diff
#: of 0.6-1.0, while K = 4, 5 took half the time (benchmarks/README.md "K-sweep")
OVERFIT_TREE_DEPTH = 6

#: The criteria of the table and how each chooses K (``attrs["selected"]`` keys).
CRITERIA = {
    "aic": "argmin of AIC (MM fit)",
    "bic": "argmin of BIC (MM fit)",
    "icl": "argmin of ICL (MM fit)",
    "dsc": "DSC choice on the dendrogram of the max(ks) MM fit",
    "mtm": "mode of the MTM posterior of K (NUTS fit at max(ks))",
    "rjmcmc": "mode of p(K | y) (reversible jump)",
    "loo": "highest elpd_loo (arviz.compare over the NUTS fits)",
}


def _check_ks(ks) -> list[int]:
    try:
        values = list(ks)
    except TypeError:
        raise TypeError(
            f"`ks` must be an iterable of numbers of experts, e.g. range(1, 6); got "
            f"{type(ks).__name__}."
        ) from None
    if not values:
        raise ValueError("`ks` is empty; pass at least one number of experts, e.g. range(1, 6).")
    bad = [
        k
        for k in values
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1
    ]
    if bad:
        raise ValueError(f"`ks` must hold integers >= 1; got {bad}. Use e.g. ks=range(1, 6).")
    out = sorted({int(k) for k in values})
    if len(out) != len(values):
        raise ValueError(f"`ks` holds a K twice: {values}; pass each K once.")
    return out


def _requested(option, ks: list[int], name: str) -> list[int]:
    """``False``/``None`` -> [], ``True`` -> all ks, a sequence -> those K (each in ks)."""
    if option is None or option is False:
        return []
    if option is True:
        return list(ks)
    try:
        wanted = _check_ks(option)
    except (TypeError, ValueError) as err:
        raise type(err)(f"`{name}` must be True, False or a list of K from `ks`: {err}") from None
    missing = [k for k in wanted if k not in ks]
    if missing:
        raise ValueError(
            f"`{name}` asks for K = {missing}, which are not in ks = {ks}; add them "
            "to `ks` or drop them."
        )
    return wanted


def _check_gate(gate):
    """A gate spec the samplers and the MM fitter both take (the same names)."""
    return check_gate(gate)


@keywords_checked
def compare_experts(
    X=None,
    y=None,
    ks: Iterable[int] = range(1, 6),
    *,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    n_starts: int = 10,
    mm_kwargs: dict | None = None,
    nuts: bool | Iterable[int] = False,
    nuts_kwargs: dict | None = None,
    mtm: bool | None = None,
    mtm_kwargs: dict | None = None,
    rjmcmc: bool = False,
    rjmcmc_kwargs: dict | None = None,
    random_seed: int | None = None,
    progressbar: bool = True,
    return_fits: bool = False,
    offset=None,
    experts: str | None = None,
    gate_X=None,
    trials=None,
    data=None,
    formula: str | None = None,
    gate_formula: str | None = None,
):
    """Compare numbers of experts K by BIC, ICL, DSC, MTM, p(K | y) and LOO in one table.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
        Real responses (Gaussian), integer class codes 0..M-1 (categorical), counts (Poisson).
    ks : iterable of int
        The numbers of experts to compare (default 1..5). MM fits every K in 1..max(ks) (the
        DSC uses the max(ks) fit); rows are reported for ``ks``.
    family : str
        The expert family (:data:`bayesmoe.families.FAMILIES`).
    experts : str, optional
        Deprecated alias of ``family`` (kept one release; a ``FutureWarning`` says so).
    gate : {"softmax", "tanh", "sigmoid"} or callable
        Gate input transform (the same for every method).
    n_starts : int
        MM starts per K.
    mm_kwargs : dict, optional
        More options of :func:`~bayesmoe.selection.criteria.select_experts` (``tol``,
        ``max_iter``, ``ridge``, ``n_classes``).
    nuts : bool or iterable of int
        NUTS fits (:func:`~bayesmoe.inference.sample`) for LOO: ``True`` for every K in
        ``ks``, or the Ks to fit. Default ``False`` (no LOO columns filled).
    nuts_kwargs : dict, optional
        Passed to ``sample`` (e.g. ``draws``, ``tune``, ``chains``, ``cores``). Unless it sets
        ``init``, each chain starts at the MM fit of that K from the table (no second MM run);
        a K whose BIC is above the best BIC of fewer experts (over-fitted) starts instead from
        the start of K - 1 with its heaviest expert split off as a light extra expert
        (:func:`~bayesmoe.selection.overfit.split_start`) when the model's log density is
        higher there than at the MM fit, and its trees are capped at depth
        :data:`OVERFIT_TREE_DEPTH` unless ``max_treedepth`` is given (its surplus experts'
        parameters then get fewer effective draws; the ESS warnings say so). When the chains
        of such a K disagree (:func:`~bayesmoe.selection.overfit.chains_disagree`), a
        ``ConvergenceWarning`` says so and points to the MTM posterior and p(K | y).
    mtm : bool, optional
        MTM posterior of K from the NUTS fit at K = max(ks) (over-fitted). ``None`` (default):
        computed when that fit exists (``nuts`` includes max(ks)); ``True``: fit it if needed;
        ``False``: skip.
    mtm_kwargs : dict, optional
        Passed to :func:`~bayesmoe.selection.mtm.num_experts_posterior` (``omega``, ``c``,
        ``r``, ``omega_scale``).
    rjmcmc : bool or xarray.DataTree
        Also sample the random-K model on 1..max(ks) by reversible jump and report p(K | y);
        or pass an existing :func:`~bayesmoe.inference.rjmcmc.sample_random_k` trace (with
        ``max_experts`` >= max(ks)) to use its p(K | y) without resampling.
    rjmcmc_kwargs : dict, optional
        Passed to :func:`~bayesmoe.inference.rjmcmc.sample_random_k` (e.g. ``experts_prior``,
        ``draws``, ``tune``, ``chains``, ``step_kwargs``).
    random_seed : int, optional
        The MM block uses it unchanged (the MM columns equal ``select_experts(X, y, max(ks),
        random_seed=random_seed)``); NUTS, reversible jump and MTM get independent child seeds.
    progressbar : bool
        A tqdm bar over the fits (MM per K, NUTS per K, reversible jump, MTM).
    return_fits : bool
        Also return the fits: ``(table, {"nuts": {K: DataTree}, "rjmcmc": DataTree or None})``.
    offset : array_like, shape (n,), optional
        Per-row log-exposures of families with a log link (every fit uses them).
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of binomial experts (every fit uses them; default 1).
    gate_X : array_like, shape (n, d_gate), optional
        The gate's own covariates (default: ``X``; every fit uses them); zero columns give
        constant mixing weights.
    data, formula, gate_formula : DataFrame, str, str, optional
        The formula form instead of ``X``, ``y``, ``offset`` and ``gate_X``
        (:func:`bayesmoe.formula.design_matrices`; class labels become codes 0..M-1 in the
        order of the design's classes); the table's ``attrs`` and the returned fits keep the
        formulas and the design.

    Returns
    -------
    pandas.DataFrame
        Index ``n_experts`` (the ``ks``). Columns: ``loglik``, ``n_params``, ``aic``, ``bic``,
        ``icl``, ``converged``, ``iterations``, ``seconds`` (MM); ``dsc`` (DSC at level K of the
        dendrogram, NaN where undefined); ``p_mtm`` (MTM posterior of K), ``p_rjmcmc``
        (p(K | y)); ``elpd_loo``,
        ``se_loo``, ``elpd_diff``, ``se_diff`` (standard error of the difference to the best),
        ``loo_weight`` (arviz.compare stacking weights), ``p_loo`` (effective parameters);
        ``loo_tie`` (True where the LOO difference to the best is within 2 ``se_diff``: LOO
        does not separate those K). Columns of methods not run are NaN. ``attrs``:
        ``recommended`` (K) and ``recommendation`` (one line: what and why, see
        :func:`~bayesmoe.selection.recommend.recommend_k`); ``selected``
        (criterion -> chosen K, None when not run; see :data:`CRITERIA`), ``selected_aic``,
        ``selected_bic``, ``selected_icl``, ``selected_dsc`` (as ``select_experts``), ``dsc``
        (level -> DSC value), ``family``, ``n_obs``, ``ks``, ``methods`` (which ran) and
        ``p_rjmcmc_outside_ks`` (posterior mass of K in 1..max(ks) not listed in ``ks``).

    Examples
    --------
    >>> import bayesmoe as bm
    >>> X, y, _ = bm.data.simulate("S-B", n=300, random_seed=0)
    >>> table = bm.compare_experts(X, y, ks=range(1, 4), n_starts=2, random_seed=0,
    ...                            mm_kwargs={"max_iter": 200}, progressbar=False)
    >>> list(table.index), table.attrs["selected"]["bic"] in (1, 2, 3)
    ([1, 2, 3], True)
    >>> table.attrs["methods"]
    ['mm', 'dsc']
    """
    family = family_keyword(family, experts, "compare_experts")
    from tqdm.auto import tqdm

    from bayesmoe.selection.criteria import select_experts

    family = check_family(family)
    design = None
    if formula is not None or data is not None:  # the formula form (bayesmoe.formula)
        from bayesmoe.formula import formula_inputs

        dm = formula_inputs(X, y, data, formula, gate_formula, family, offset=offset, gate_X=gate_X)
        X, offset, gate_X, design = dm.X, dm.offset, dm.gate_X, dm.design
        y = dm.y if design.classes is None else dm.codes()
        if design.classes is not None and isinstance(mm_kwargs, (dict, type(None))):
            mm_kwargs = {"n_classes": len(design.classes), **(mm_kwargs or {})}
    ks = _check_ks(ks)
    K_top = ks[-1]
    sample_gate = mm_gate = _check_gate(gate)
    nuts_ks = _requested(nuts, ks, "nuts")
    if mtm not in (None, True, False):
        raise TypeError(f"`mtm` must be None, True or False; got {mtm!r}.")
    want_mtm = bool(mtm) or (mtm is None and K_top in nuts_ks)
    fit_ks = sorted(set(nuts_ks) | ({K_top} if want_mtm else set()))
    import xarray as xr

    given_rj = rjmcmc if isinstance(rjmcmc, xr.DataTree) else None
    if given_rj is None and not isinstance(rjmcmc, (bool, np.bool_)):
        raise TypeError(
            "`rjmcmc` must be True, False or a sample_random_k trace (DataTree); "
            f"got {type(rjmcmc).__name__}."
        )
    if given_rj is not None:
        if (
            "posterior" not in given_rj.children
            or "n_experts" not in given_rj["posterior"].data_vars
        ):
            raise ValueError(
                "`rjmcmc` as a DataTree must be a sample_random_k trace (posterior "
                "with `n_experts`)."
            )
        if int(given_rj.attrs.get("max_experts", K_top)) < K_top:
            raise ValueError(
                f"The `rjmcmc` trace has max_experts = "
                f"{given_rj.attrs['max_experts']} < max(ks) = {K_top}; resample "
                "it or drop the larger K from `ks`."
            )
        rjmcmc = True
    for name, opt in (
        ("mm_kwargs", mm_kwargs),
        ("nuts_kwargs", nuts_kwargs),
        ("mtm_kwargs", mtm_kwargs),
        ("rjmcmc_kwargs", rjmcmc_kwargs),
    ):
        if opt is not None and not isinstance(opt, dict):
            raise TypeError(
                f"`{name}` must be a dict of keyword arguments; got {type(opt).__name__}."
            )
    seeds = np.random.SeedSequence(random_seed).spawn(3)
    nuts_seed, rj_seed, mtm_seed = (int(s.generate_state(1)[0]) for s in seeds)

    n_steps = K_top + len(fit_ks) + int(bool(rjmcmc)) + int(want_mtm)
    bar = tqdm(total=n_steps, desc="compare K", unit="fit", disable=not progressbar)

    mm_fits = {}

    def on_fit(K, res):
        mm_fits[K] = res
        bar.set_postfix_str(f"MM K={K}")
        bar.update(1)

    try:
        mm = select_experts(
            X,
            y,
            K_top,
            family=family,
            gate=mm_gate,
            n_starts=n_starts,
            random_seed=random_seed,
            on_fit=on_fit,
            offset=offset,
            gate_X=gate_X,
            trials=trials,
            **(mm_kwargs or {}),
        )
        table = mm.loc[
            ks, ["loglik", "n_params", "aic", "bic", "icl", "converged", "iterations", "seconds"]
        ].copy()
        table["dsc"] = [mm.attrs["dsc"].get(k, np.nan) for k in ks]
        methods = ["mm", "dsc"]
        for col in (
            "p_mtm",
            "p_rjmcmc",
            "elpd_loo",
            "se_loo",
            "elpd_diff",
            "se_diff",
            "loo_weight",
            "p_loo",
        ):
            table[col] = np.nan
        selected = {c: None for c in CRITERIA}
        for c in ("aic", "bic", "icl"):
            col = table[c]
            selected[c] = int(col.idxmin()) if col.notna().any() else None
        selected["dsc"] = mm.attrs.get("selected_dsc")

        traces = {}
        nuts_opts = {
            "draws": 500,
            "tune": 500,
            "chains": 2,
            "progressbar": False,
            **(nuts_kwargs or {}),
        }
        if "random_seed" in nuts_opts:
            raise ValueError(
                "Pass the seed as `random_seed` of compare_experts, not in `nuts_kwargs`."
            )
        from bayesmoe.inference.nuts.sampling import sample
        from bayesmoe.selection.overfit import (
            is_overfitted,
            start_log_density,
            sweep_starts,
            warn_overfit_disagreement,
        )

        # the MM fit of each K from the table (no refit); a K the table's BIC calls over-fitted
        # starts from the fewer-expert start with a light extra expert (selection/overfit.py)
        model_keys = ("temperature", "identifiability", "ordered", "priors")
        score = start_log_density(
            X,
            y,
            family=family,
            gate=sample_gate,
            offset=offset,
            gate_X=gate_X,
            trials=trials,
            **{k: nuts_opts[k] for k in model_keys if k in nuts_opts},
        )
        starts, _ = sweep_starts(
            mm,
            mm_fits,
            X,
            gate_X=gate_X,
            gate=mm_gate if callable(mm_gate) else None,
            score=score,
        )
        overfitted = {K for K in fit_ks if is_overfitted(mm, K)}
        for i, K in enumerate(fit_ks):
            bar.set_postfix_str(f"NUTS K={K}")
            opts = dict(nuts_opts)
            if "init" not in opts and starts.get(K) is not None:
                opts["init"] = starts[K]
            if (
                K in overfitted
                and "max_treedepth" not in opts
                and opts.get("backend", "auto") in ("auto", "jax", "pymc")
            ):
                opts["max_treedepth"] = OVERFIT_TREE_DEPTH
            traces[K] = sample(
                X,
                y,
                n_experts=K,
                family=family,
                gate=sample_gate,
                random_seed=nuts_seed + i,
                offset=offset,
                gate_X=gate_X,
                trials=trials,
                **opts,
            )
            if K in overfitted:
                warn_overfit_disagreement(traces[K], K)
            bar.update(1)

        if nuts_ks:
            import arviz as az

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # Pareto k warnings stay in diag
                loos = {}
                for K in nuts_ks:  # a K whose chains give no LOO gets NaN, not a crash
                    try:
                        loos[K] = az.loo(traces[K], pointwise=True)  # compare reuses it
                    except ValueError as err:
                        warnings.warn(
                            f"LOO could not be computed for K = {K} ({err}); its LOO "
                            "columns are NaN. Its NUTS chains are too short or stuck: "
                            "raise draws/tune in `nuts_kwargs`.",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                ok = [K for K in nuts_ks if K in loos]
                if len(ok) > 1:
                    cmp = az.compare({str(K): loos[K] for K in ok}, round_to="none")
            for K in ok:
                if len(ok) > 1:
                    cols = ("elpd", "se", "elpd_diff", "dse", "weight", "p")
                    row = [cmp.loc[str(K), c] for c in cols]
                else:
                    row = [loos[K].elpd, loos[K].se, 0.0, 0.0, 1.0, loos[K].p]
                table.loc[
                    K, ["elpd_loo", "se_loo", "elpd_diff", "se_diff", "loo_weight", "p_loo"]
                ] = row
            if ok:
                selected["loo"] = max(ok, key=lambda K: float(table.loc[K, "elpd_loo"]))
                methods.append("loo")

        if want_mtm:
            from bayesmoe.selection.mtm import num_experts_posterior

            bar.set_postfix_str("MTM")
            pmf = num_experts_posterior(
                traces[K_top], method="mtm", random_seed=mtm_seed, **(mtm_kwargs or {})
            )
            probs = pd.Series(pmf.values, index=pmf["n_experts"].values)
            table["p_mtm"] = [float(probs.get(k, 0.0)) for k in ks]
            selected["mtm"] = int(probs.idxmax())
            methods.append("mtm")
            bar.update(1)

        rj_trace, outside = None, 0.0
        if rjmcmc:
            from bayesmoe.inference.rjmcmc import k_posterior, sample_random_k

            bar.set_postfix_str("reversible jump")
            rj_opts = {"draws": 1000, "tune": 500, "chains": 2, **(rjmcmc_kwargs or {})}
            if "random_seed" in rj_opts or "max_experts" in rj_opts:
                raise ValueError(
                    "`rjmcmc_kwargs` must not set `random_seed` or `max_experts` "
                    "(they come from compare_experts' random_seed and max(ks))."
                )
            rj_trace = (
                given_rj
                if given_rj is not None
                else sample_random_k(
                    X,
                    y,
                    max_experts=K_top,
                    family=family,
                    gate=sample_gate,
                    random_seed=rj_seed,
                    offset=offset,
                    gate_X=gate_X,
                    trials=trials,
                    **rj_opts,
                )
            )
            pk = k_posterior(rj_trace)
            probs = pd.Series(pk.values, index=pk["n_experts"].values)
            table["p_rjmcmc"] = [float(probs.get(k, 0.0)) for k in ks]
            outside = float(probs.drop(ks, errors="ignore").sum())
            selected["rjmcmc"] = int(probs.idxmax())
            methods.append("rjmcmc")
            bar.update(1)
    finally:
        bar.close()

    table.attrs = {
        "selected": selected,
        **{f"selected_{c}": selected[c] for c in ("aic", "bic", "icl", "dsc")},
        "dsc": dict(mm.attrs["dsc"]),
        "family": family,
        "n_obs": int(mm.attrs["n_obs"]),
        "ks": ks,
        "methods": methods,
        "p_rjmcmc_outside_ks": outside,
    }
    from bayesmoe.selection.recommend import loo_ties, recommend_k

    table["loo_tie"] = loo_ties(table)
    table.attrs["recommended"], table.attrs["recommendation"] = recommend_k(table)
    if design is not None:  # the formulas; the fits keep the design for predictions
        table.attrs.update(design.attrs())
        for fit in (*traces.values(), rj_trace if given_rj is None else None):
            if fit is not None:
                fit.attrs.update(design.attrs())
    if return_fits:
        return table, {"nuts": {K: traces[K] for K in fit_ks}, "rjmcmc": rj_trace}
    return table


def plot_compare_experts(table: pd.DataFrame, *, axes=None, figsize=(11, 3.2)):
    """Plot a :func:`compare_experts` table: information criteria, probabilities of K, LOO.

    Three panels share the K axis: AIC/BIC/ICL relative to their minimum (left); the MTM
    posterior of K and p(K | y) from reversible jump as bars (middle); elpd_loo with ± se bars
    (right). A marker shows each criterion's choice; panels of methods not run say so.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`compare_experts`.
    axes : sequence of 3 matplotlib Axes, optional
    figsize : tuple
        Size of the new figure when ``axes`` is None.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from bayesmoe.selection.compare import plot_compare_experts
    >>> t = pd.DataFrame({"aic": [3.0, 1.0], "bic": [3.0, 2.0], "icl": [3.5, 2.5],
    ...                   "p_mtm": [0.2, 0.8], "p_rjmcmc": np.nan, "elpd_loo": np.nan,
    ...                   "se_loo": np.nan}, index=pd.Index([1, 2], name="n_experts"))
    >>> t.attrs["selected"] = {"bic": 2, "dsc": 2}
    >>> axes = plot_compare_experts(t)
    >>> len(axes)
    3
    """
    import matplotlib.pyplot as plt

    if not isinstance(table, pd.DataFrame) or not {"aic", "bic", "icl"} <= set(table.columns):
        raise TypeError(
            "`table` must be the DataFrame returned by compare_experts (columns "
            f"aic, bic, icl, ...); got {type(table).__name__}."
        )
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=figsize, constrained_layout=True)
    axes = np.asarray(axes).ravel()
    if axes.size != 3:
        raise ValueError(f"`axes` must hold 3 Axes; got {axes.size}.")
    ks = np.asarray(table.index, dtype=int)
    sel = table.attrs.get("selected", {})
    ax = axes[0]
    for crit, marker in (("aic", "o"), ("bic", "s"), ("icl", "^")):
        v = table[crit].to_numpy(dtype=float)
        if np.isfinite(v).any():
            ax.plot(ks, v - np.nanmin(v), marker=marker, label=crit.upper())
    if sel.get("dsc") is not None:
        ax.axvline(sel["dsc"], color="k", ls=":", lw=1, label=f"DSC: K={sel['dsc']}")
    ax.set(xlabel="K", ylabel="criterion − its minimum", title="MM: lower is better")
    ax.set_xticks(ks)
    ax.legend(fontsize=8)

    ax = axes[1]
    cols = [
        (c, lab)
        for c, lab in (("p_mtm", "MTM"), ("p_rjmcmc", "reversible jump"))
        if c in table and table[c].notna().any()
    ]
    width = 0.8 / max(len(cols), 1)
    for i, (c, lab) in enumerate(cols):
        ax.bar(
            ks + (i - (len(cols) - 1) / 2) * width,
            table[c].to_numpy(dtype=float),
            width=width,
            label=lab,
        )
    if cols:
        ax.legend(fontsize=8)
    else:
        ax.text(
            0.5,
            0.5,
            "no MTM / reversible jump run",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set(xlabel="K", ylabel="posterior probability", title="posterior of K", ylim=(0, 1))
    ax.set_xticks(ks)

    ax = axes[2]
    if "elpd_loo" in table and table["elpd_loo"].notna().any():
        ok = table["elpd_loo"].notna().to_numpy()
        ax.errorbar(
            ks[ok],
            table["elpd_loo"].to_numpy(dtype=float)[ok],
            yerr=table["se_loo"].to_numpy(dtype=float)[ok],
            marker="o",
            capsize=3,
        )
        if sel.get("loo") is not None:
            ax.axvline(sel["loo"], color="k", ls=":", lw=1)
    else:
        ax.text(
            0.5, 0.5, "no NUTS fits (nuts=False)", ha="center", va="center", transform=ax.transAxes
        )
    ax.set(xlabel="K", ylabel="elpd_loo ± se", title="LOO: higher is better")
    ax.set_xticks(ks)
    return axes
