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

__all__ = ["LOGLIK_ROW", "describe", "summary", "total_log_likelihood"]

#: Row name of the total log-likelihood per draw (``loglik_total`` if the posterior already has a
#: variable called ``loglik``).
LOGLIK_ROW = "loglik"

#: What the variables that are not an expert family's mean (the family's own are in its
#: ``trace_descriptions``).
DESCRIPTIONS = {
    "beta0": "gate intercept: the expert's softmax logit at x = 0 (only differences between "
    "experts matter)",
    "beta1": "gate slope: change in the expert's softmax logit per unit of the feature (only "
    "differences between experts matter)",
    "n_experts": "number of experts K in the draw (random K)",
    "active": "expert slot in use in the draw (its mean is P(K > slot))",
    LOGLIK_ROW: "total log-likelihood of the draw (sum over the observations)",
    "loglik_total": "total log-likelihood of the draw (sum over the observations)",
}
_STD = "_std"


def _family(trace, post):
    from bayesmoe.families import get_family

    name = (getattr(trace, "attrs", {}) or {}).get("family") or post.attrs.get("family")
    try:
        return get_family(name) if name else None
    except (ValueError, KeyError):
        return None


def _legend(names, fam) -> dict:
    """Variable -> one line saying what it means (user units; ``*_std``: the sampler's scale)."""
    own = dict(DESCRIPTIONS, **(fam.trace_descriptions if fam is not None else {}))
    out = {}
    for n in names:
        base = n[: -len(_STD)] if n.endswith(_STD) else n
        if base in own:
            out[n] = own[base] + (
                " — on the standardised scale the sampler works on (x, and a real y, centred "
                "and scaled)"
                if base != n
                else ""
            )
    return out


def describe(table: pd.DataFrame) -> str:
    """The legend of a :func:`summary` table: one line per variable, what it means.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.diagnostics.summary import describe
    >>> t = pd.DataFrame(index=["beta0[0]"])
    >>> t.attrs["legend"] = {"beta0": "gate intercept"}
    >>> print(describe(t))
    beta0: gate intercept
    """
    legend = table.attrs.get("legend", {})
    return "\n".join(f"{k}: {v}" for k, v in legend.items())


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


def _default_vars(post: xr.Dataset, fam, standardized: bool) -> list[str]:
    """Every posterior variable except per-observation ones (dims containing 'obs'), the user-unit
    parameters first (gate, then the family's), the standardised ``*_std`` copies only when
    ``standardized``, and last.
    """
    names = [
        n
        for n, v in post.data_vars.items()
        if "obs" not in v.dims and n != _DATASET_PERMUTATION_VAR
    ]
    lead = ["beta0", "beta1", *(fam.trace_dims if fam is not None else ("a", "b", "sigma"))]
    first = [n for n in lead if n in names]
    rest = [n for n in names if n not in first and not n.endswith(_STD)]
    std = [n for n in names if n.endswith(_STD)] if standardized else []
    return first + rest + std


def _drop_reference(data: xr.Dataset, fam) -> xr.Dataset:
    """Leave out the family's fixed reference entries (categorical: the reference class's 0s)."""
    if fam is None:
        return data
    for dim, index in fam.reference_index.items():
        if dim in data.dims and data.sizes[dim] > 1:
            # every variable with this dim is an expert variable pinned at ``index``
            data = data.isel({dim: np.delete(np.arange(data.sizes[dim]), index)})
    return data


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
    standardized: bool = False,
) -> pd.DataFrame:
    """Summary table (mean, sd, interval, ESS, R-hat, MCSE) of a trace on relabelled draws.

    The rows are in the user's units: the gate's intercepts and slopes (``beta0``, ``beta1``),
    then the experts' parameters (for Gaussian experts ``a``, ``b``, ``sigma``); what each means
    is in ``df.attrs["legend"]`` (:func:`describe` prints it). The sampler's standardised-scale
    copies (``*_std``) are left out unless ``standardized=True``, and a categorical fit's
    reference class (slopes and intercept fixed at 0) is left out.

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
    standardized : bool
        Also report the standardised-scale variables (``*_std``, after the user-unit rows).

    Returns
    -------
    pandas.DataFrame
        One row per scalar (e.g. ``a[x0, 1]``), plus the row ``loglik`` (total log-likelihood of
        each draw; ``loglik_total`` if the posterior already has a ``loglik`` variable) when the
        trace has a ``log_likelihood`` group. ``df.attrs["relabelled"]`` says whether the draws
        were relabelled, ``df.attrs["random_k"]`` whether the trace has inactive expert slots,
        ``df.attrs["legend"]`` what each variable means (variable -> one line).

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
    if not isinstance(standardized, (bool, np.bool_)):
        raise TypeError(f"`standardized` must be True or False; got {standardized!r}.")
    fam = _family(trace, post)
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
    available = _default_vars(post, fam, standardized) + ([row] if loglik is not None else [])
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
    data = _drop_reference(post[[n for n in names if n != row]], fam)
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
    df.attrs["legend"] = _legend(names, fam)
    return df
