"""Choosing the number of experts K by information criteria and by DSC.

:func:`select_experts` fits K = 1..K_max by MM (:func:`bayesmoe.inference.fit_mle`, multi-start)
and tabulates log-likelihood, parameter count, AIC, BIC and ICL (lower is better for all three),
together with the dendrogram selection criterion (docs/math.md §7) computed from the K_max fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from bayesmoe._validation import (
    check_class_codes,
    check_family,
    check_int,
    check_X,
    check_y,
    keywords_checked,
)
from bayesmoe.families import get_family
from bayesmoe.inference.mle.mm import count_parameters, fit_mle
from bayesmoe.scaling import Standardizer
from bayesmoe.selection.dendrogram import dendrogram

__all__ = ["select_experts"]


@keywords_checked
def select_experts(
    X,
    y,
    max_experts: int,
    *,
    family: str = "gaussian",
    gate: str | Callable = "softmax",
    n_starts: int = 10,
    random_seed: int | np.random.Generator | None = None,
    ridge: float = 0.0,
    tol: float = 1e-8,
    max_iter: int = 2000,
    accelerate: bool = True,
    n_classes: int | None = None,
    progressbar: bool = False,
    on_fit: Callable[[int, object], None] | None = None,
    offset=None,
    gate_X=None,
    trials=None,
) -> pd.DataFrame:
    """Fit K = 1..max_experts by MM and compare them by AIC, BIC, ICL and DSC.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    max_experts : int
        Largest K fitted (K_max >= 1); DSC uses the dendrogram of the K_max fit.
    family, gate, ridge, tol, max_iter, accelerate, n_classes, progressbar
        As in :func:`bayesmoe.inference.mle.mm.fit_mle`.
    n_starts : int
        Random starts per K.
    random_seed : int or numpy.random.Generator, optional
        One seed for the whole table; each K gets an independent child stream.
    on_fit : callable, optional
        Called as ``on_fit(K, result)`` after the fit of each K, with the
        :class:`~bayesmoe.inference.mle.mm.MMResult` (None when the fit failed), e.g. to advance a
        progress bar or keep the fits.
    offset : array_like, shape (n,), optional
        Per-row log-exposures (families with a log link).
    gate_X : array_like, shape (n, d_gate), optional
        The gate's own covariates (default: ``X``); zero columns: constant mixing weights.
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of binomial experts (default 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n_experts`` = 1..K_max with columns ``loglik``, ``n_params``, ``aic``,
        ``bic``, ``icl``, ``converged``, ``iterations``, ``seconds``. ``attrs`` hold
        ``selected_aic``, ``selected_bic``, ``selected_icl`` (argmin of each), ``selected_dsc``
        (DSC on the K_max fit), ``dsc`` (the DSC value of each level κ = K_max..2, a dict),
        ``family`` and ``n_obs``. Refit one K with :func:`~bayesmoe.inference.mle.mm.fit_mle` (same
        options) to get its measure.
        A K whose fit raised a numerical error gets a row of NaN and a warning; the others are kept.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.selection.criteria import select_experts
    >>> X, y, _ = simulate("S-B", n=400, random_seed=0)
    >>> table = select_experts(X, y, 3, n_starts=2, random_seed=0, max_iter=200)
    >>> list(table.index), table.attrs["selected_bic"] in (1, 2, 3)
    ([1, 2, 3], True)
    """
    max_experts = check_int(max_experts, "max_experts")
    Xa = check_X(X)
    n, d = Xa.shape
    family = check_family(family, "family")
    M = 0
    if get_family(family).has_classes:
        ys, M = check_class_codes(y, n, n_classes)
    else:
        ys, _ = check_y(y, family, n)
    Z = None if gate_X is None else check_X(gate_X, "gate_X")
    dg = None if Z is None else Z.shape[1]
    # the scales' checks (e.g. a constant column) now, not after waiting for the kernels below
    Standardizer.from_data(Xa, ys, gate=gate, family=family, gate_X=Z)
    p_max = count_parameters(family, int(max_experts), d, M, dg)
    if n < p_max:
        raise ValueError(
            f"`max_experts`={max_experts} needs {p_max} parameters but there are only {n} "
            "rows; lower `max_experts`."
        )
    from bayesmoe.inference.mle import mm_warmup

    # every K on one engine: with the compiled kernels loaded first, the table never depends on
    # when a background load finished (the engines agree only to round-off)
    mm_warmup.start()
    mm_warmup.wait()
    seeds = np.random.default_rng(random_seed).integers(0, 2**63 - 1, size=int(max_experts))
    rows, fits = [], {}
    for K in range(1, int(max_experts) + 1):
        try:
            res = fit_mle(
                X,
                y,
                K,
                family=family,
                gate=gate,
                ridge=ridge,
                tol=tol,
                max_iter=max_iter,
                offset=offset,
                gate_X=gate_X,
                trials=trials,
                n_starts=n_starts,
                accelerate=accelerate,
                random_seed=int(seeds[K - 1]),
                n_classes=n_classes,
                progressbar=progressbar,
            )
        except (np.linalg.LinAlgError, FloatingPointError) as err:
            warnings.warn(
                f"The fit with K={K} failed ({err}); its row is NaN.", UserWarning, stacklevel=2
            )
            rows.append(
                {
                    "n_experts": K,
                    "loglik": np.nan,
                    "n_params": count_parameters(family, K, d, M, dg),
                    "aic": np.nan,
                    "bic": np.nan,
                    "icl": np.nan,
                    "converged": False,
                    "iterations": 0,
                    "seconds": np.nan,
                }
            )
            if on_fit is not None:
                on_fit(K, None)
            continue
        fits[K] = res
        if on_fit is not None:
            on_fit(K, res)
        rows.append(
            {
                "n_experts": K,
                "loglik": res.loglik_,
                "n_params": res.n_params_,
                "aic": res.aic_,
                "bic": res.bic_,
                "icl": res.icl_,
                "converged": res.converged_,
                "iterations": res.n_iter_,
                "seconds": res.seconds_,
            }
        )
    table = pd.DataFrame(rows).set_index("n_experts")
    for crit in ("aic", "bic", "icl"):
        col = table[crit]
        table.attrs[f"selected_{crit}"] = int(col.idxmin()) if col.notna().any() else None
    Kmax = int(max_experts)
    if Kmax in fits and Kmax > 1:
        dend = dendrogram(
            fits[Kmax].measure_,
            X,
            y,
            gate=gate if callable(gate) else None,
            offset=offset,
            gate_X=gate_X,
            trials=trials,
        )
        table.attrs["selected_dsc"] = int(dend.attrs["n_experts_selected"])
        table.attrs["dsc"] = {
            int(k): float(v)
            for k, v in zip(dend.level.values, dend.dsc.values, strict=True)
            if np.isfinite(v)
        }
    elif Kmax == 1:
        table.attrs["selected_dsc"] = 1
        table.attrs["dsc"] = {}
    else:
        table.attrs["selected_dsc"] = None
        table.attrs["dsc"] = {}
    table.attrs["family"] = family
    table.attrs["n_obs"] = int(n)
    return table
