"""ArviZ-style summary table of a mixture-of-experts trace, on relabelled draws.

Per-expert statistics (mean, sd, credible interval, ESS, R-hat, MCSE) only mean something once the
draws are relabelled (:func:`bayesmoe.diagnostics.relabel.relabel`); label-invariant quantities
(the total log-likelihood per draw, deterministics without an ``expert`` dim) are reported as they
are and are the same with or without relabelling.
"""

from __future__ import annotations

from collections.abc import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

# Import names from the module itself: the package may re-export a function called `relabel`.
from bayesmoe.diagnostics.relabel import (
    _DATASET_PERMUTATION_VAR,
    _expert_vars,
    _posterior_of,
)
from bayesmoe.diagnostics.relabel import relabel as _relabel

__all__ = ["LOGLIK_ROW", "summary", "total_log_likelihood"]

#: Row name of the total log-likelihood per draw (``loglik_total`` if the posterior already has a
#: variable called ``loglik``).
LOGLIK_ROW = "loglik"


def total_log_likelihood(trace: xr.DataTree) -> xr.DataArray | None:
    """Total log-likelihood of each draw: the sum over observations of the log_likelihood group.

    Sums every variable of the ``log_likelihood`` group over all its non-sample dims (all observed
    variables together). Returns None when the trace has no ``log_likelihood`` group.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.summary import total_log_likelihood
    >>> ll = xr.Dataset({"y": (("chain", "draw", "obs"), np.full((1, 2, 3), -0.5))})
    >>> total_log_likelihood(xr.DataTree.from_dict({"log_likelihood": ll})).values.tolist()
    [[-1.5, -1.5]]
    """
    if not isinstance(trace, xr.DataTree) or "log_likelihood" not in trace.children:
        return None
    ds = trace["log_likelihood"].to_dataset()
    parts = []
    for name, da in ds.data_vars.items():
        if not {"chain", "draw"} <= set(da.dims):
            raise ValueError(
                f"log_likelihood variable {name!r} has dims {da.dims}; expected (chain, draw, ...)."
            )
        parts.append(da.sum([d for d in da.dims if d not in ("chain", "draw")]))
    if not parts:
        return None
    total = sum(parts[1:], parts[0]).transpose("chain", "draw")
    return total.rename(None).assign_attrs(
        description="sum over observations (and observed variables) of the log_likelihood group"
    )


def _default_vars(post: xr.Dataset) -> list[str]:
    """Every posterior variable except per-observation ones (dims containing 'obs')."""
    return [
        n
        for n, v in post.data_vars.items()
        if "obs" not in v.dims and n != _DATASET_PERMUTATION_VAR
    ]


def _inactive_slots(post: xr.Dataset) -> bool:
    """True for a random-K trace whose padded expert slots are inactive in some draw."""
    return (
        "active" in post
        and {"chain", "draw", "expert"} <= set(post["active"].dims)
        and not (bool(post["active"].all()))
    )


def summary(
    trace: xr.DataTree | xr.Dataset,
    *,
    var_names: str | Sequence[str] | None = None,
    relabel: bool = True,
    ci_prob: float = 0.94,
    ci_kind: str | None = None,
    kind: str = "all",
    round_to: int | None = None,
) -> pd.DataFrame:
    """Summary table (mean, sd, interval, ESS, R-hat, MCSE) of a trace on relabelled draws.

    Parameters
    ----------
    trace : xarray.DataTree or xarray.Dataset
        A trace with a ``posterior`` group (or a posterior Dataset) with dims (chain, draw).
    var_names : str or sequence of str, optional
        Variables (rows) to report; ``"loglik"`` selects the total log-likelihood row. Default:
        every posterior variable without an ``obs`` dim, plus the total log-likelihood.
    relabel : bool
        Relabel the experts first (:func:`bayesmoe.diagnostics.relabel.relabel`). Ignored when
        no posterior variable has an ``expert`` dim (there are no labels to switch), and for a
        random-K trace (see Notes).
    ci_prob : float
        Probability mass of the credible interval, in (0, 1).
    ci_kind : {"hdi", "eti"}, optional
        Interval kind; default ArviZ's ``rcParams["stats.ci_kind"]``.
    kind : str
        Passed to :func:`arviz.summary` ("all", "stats", "diagnostics", ...).
    round_to : int, optional
        Decimal places to round to; default None keeps raw floats.

    Returns
    -------
    pandas.DataFrame
        One row per scalar (e.g. ``a[x0, 1]``), plus the row ``loglik`` (total log-likelihood of
        each draw; ``loglik_total`` if the posterior already has a ``loglik`` variable) when the
        trace has a ``log_likelihood`` group. ``df.attrs["relabelled"]`` says whether the draws
        were relabelled, ``df.attrs["random_k"]`` whether the trace has inactive expert slots.

    Notes
    -----
    A random-K trace (:func:`bayesmoe.inference.rjmcmc.sample_random_k`: an ``active[expert]``
    mask that is False somewhere) pads every draw to ``max_experts`` slots, and a draw with K
    experts holds prior draws in its inactive slots; expert labels are only defined given K.
    Its per-expert variables are therefore left out (naming one in ``var_names`` raises
    ValueError; ``active`` may be named, its mean is P(K > slot)); the table has the
    label-invariant rows (``n_experts``, the log-likelihood). For per-expert rows at one K use
    ``summary(relabel_at_k(trace, K))``, across K
    :func:`bayesmoe.diagnostics.relabel_cross_k.cross_k_summary`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.summary import summary
    >>> rng = np.random.default_rng(0)
    >>> b = np.array([-2.0, 3.0]) + 0.1 * rng.standard_normal((2, 100, 2))
    >>> b[1] = b[1][:, ::-1]                                   # chain 1 swapped the labels
    >>> ll = xr.Dataset({"y": (("chain", "draw", "obs"), rng.normal(size=(2, 100, 5)))})
    >>> post = xr.Dataset({"b": (("chain", "draw", "expert"), b)})
    >>> tree = xr.DataTree.from_dict({"posterior": post, "log_likelihood": ll})
    >>> df = summary(tree)
    >>> df.index.tolist()
    ['b[0]', 'b[1]', 'loglik']
    >>> bool(df["r_hat"].max() < 1.05), bool(summary(tree, relabel=False)["r_hat"].max() > 1.5)
    (True, True)
    """
    post = _posterior_of(trace)
    if not isinstance(relabel, (bool, np.bool_)):
        raise TypeError(f"`relabel` must be True or False; got {relabel!r}.")
    if not (isinstance(ci_prob, (int, float)) and 0 < ci_prob < 1):
        raise ValueError(f"`ci_prob` must be a number in (0, 1), e.g. 0.94; got {ci_prob!r}.")
    if round_to is not None and (isinstance(round_to, bool) or not isinstance(round_to, int)):
        raise TypeError(f"`round_to` must be an int (decimal places) or None; got {round_to!r}.")
    done = False
    random_k = _inactive_slots(post)
    if random_k:
        # Random K (sample_random_k): the expert slots are padded, a draw with K experts has
        # prior draws in its K_max - K inactive slots, and labels are only defined given K.
        # Per-expert rows over all draws would mix those, so only label-invariant rows are
        # reported (n_experts, the log-likelihood, other variables without an expert dim).
        per_expert = [n for n, v in post.data_vars.items() if "expert" in v.dims]
        named = (
            [] if var_names is None else [var_names] if isinstance(var_names, str) else var_names
        )
        bad = [n for n in named if n in per_expert and n != "active"]
        if bad:
            ks = (
                sorted(np.unique(np.asarray(post["n_experts"].values)).tolist())
                if "n_experts" in post
                else "varying"
            )
            raise ValueError(
                f"`var_names` entries {bad} are per-expert variables of a random-K trace "
                f"(K in {ks}); summarise them at one K: "
                "summary(bayesmoe.inference.rjmcmc.relabel_at_k(trace, K))."
            )
        post = post.drop_vars([n for n in per_expert if n not in named])
    elif relabel and _expert_vars(post):
        trace = _relabel(trace)
        post = _posterior_of(trace)
        done = True
    loglik = total_log_likelihood(trace)
    # ArviZ's interval code subtracts values: booleans (e.g. ``active``) are summarised as 0/1.
    post = post.assign({n: v.astype(float) for n, v in post.data_vars.items() if v.dtype == bool})
    row = "loglik_total" if LOGLIK_ROW in post.data_vars else LOGLIK_ROW
    available = _default_vars(post) + ([row] if loglik is not None else [])
    if var_names is None:
        names = available
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
        valid = set(post.data_vars) | ({row} if loglik is not None else set())
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise ValueError(
                f"`var_names` entries {bad or names} are not in the trace; choose from "
                f"{available} (variables with an 'obs' dim can be named explicitly)."
            )
    data = post[[n for n in names if n != row]]
    if loglik is not None and row in names:
        data = data.assign({row: loglik.reset_coords(drop=True)})
    # One arviz.summary call per variable: ArviZ 1.3 (wide format) labels the rows of a
    # multi-dim variable by the variable's dim order but orders the values by the Dataset's
    # dim order, so e.g. a[feature, expert] next to beta0[expert] gets mislabelled rows.
    frames = [
        az.summary(
            data[[n]], ci_prob=ci_prob, ci_kind=ci_kind, kind=kind, fmt="wide", round_to="none"
        )
        for n in names
    ]
    df = pd.DataFrame(pd.concat(frames))
    if round_to is not None:
        df = df.round(round_to)
    df.attrs["relabelled"] = done
    df.attrs["random_k"] = random_k
    return df
