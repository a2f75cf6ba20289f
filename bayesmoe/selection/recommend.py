"""One recommended number of experts K, with its reason, from a :func:`compare_experts` table.

The rule, in order (docs/math.md §5–§7 for the criteria):

1. **p(K | y)** (reversible jump), when it ran: the posterior mode is the recommendation, and
   the line says whether BIC agrees.
2. Otherwise **BIC** (argmin over the MM fits): consistent for the number of components of
   a mixture of regressions, and the least sensitive of the MM criteria to the number of
   starts; ICL, DSC and AIC are reported as agreeing or not (AIC under-penalises and tends to
   pick more experts; ICL penalises overlapping experts and tends to pick fewer).
3. **LOO**: K whose ``elpd_loo`` is within 2 standard errors of the difference (``se_diff``) of
   the best are **ties** (column ``loo_tie``): LOO does not separate them, and the line says so
   instead of naming a LOO winner.
4. **MTM**: merges experts that the posterior cannot yet separate at this n (its dendrogram
   cut shrinks with n), so at small n it undercounts; a disagreement is reported with that
   reason and never overrides 1–2.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["LOO_TIE_SE", "loo_ties", "recommend_k"]

#: LOO differences within this many standard errors of the difference are ties.
LOO_TIE_SE = 2.0


def loo_ties(table: pd.DataFrame) -> pd.Series:
    """Which K are LOO ties with the best: ``elpd_diff <= LOO_TIE_SE * se_diff`` (the best K is a
    tie with itself); missing (``pd.NA``) where LOO did not run.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"elpd_loo": [-250.0, -140.0, -139.5], "elpd_diff": [110.5, 0.5, 0.0],
    ...                   "se_diff": [12.0, 22.0, 0.0]}, index=[1, 2, 3])
    >>> loo_ties(t).tolist()
    [False, True, True]
    """
    out = pd.Series(pd.NA, index=table.index, name="loo_tie", dtype="boolean")
    if "elpd_loo" not in table:
        return out
    ran = table["elpd_loo"].notna()
    diff = table["elpd_diff"].astype(float)
    se = table["se_diff"].astype(float) if "se_diff" in table else pd.Series(0.0, table.index)
    out[ran] = (diff <= LOO_TIE_SE * se.fillna(0.0) + 1e-12)[ran]
    return out


def _listing(ks) -> str:
    ks = [str(k) for k in ks]
    return ", ".join(map(str, ks[:-1])) + f" and {ks[-1]}" if len(ks) > 1 else str(ks[0])


def recommend_k(table: pd.DataFrame) -> tuple[int | None, str]:
    """The recommended K of a :func:`compare_experts` table and one line saying why.

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`compare_experts` (``attrs["selected"]``, ``attrs["n_obs"]``, the
        columns ``p_rjmcmc``, ``elpd_loo``/``elpd_diff``/``se_diff``).

    Returns
    -------
    (int or None, str)
        The recommended K (None when no criterion ran) and the reason.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = pd.DataFrame({"bic": [300.0, 250.0, 260.0], "p_rjmcmc": [0.0, 0.9, 0.1]},
    ...                  index=pd.Index([1, 2, 3], name="n_experts"))
    >>> t.attrs = {"selected": {"aic": 3, "bic": 2, "icl": 2, "rjmcmc": 2}, "n_obs": 150}
    >>> k, why = recommend_k(t)
    >>> print(why)  # doctest: +NORMALIZE_WHITESPACE
    K = 2: p(K | y) is highest at 2 (0.90) and BIC agrees; ICL agrees; AIC prefers 3 (AIC
    under-penalises and tends to add experts).
    """
    sel = dict(table.attrs.get("selected", {}))
    n = table.attrs.get("n_obs")
    parts = []
    if sel.get("rjmcmc") is not None:
        k = int(sel["rjmcmc"])
        p = float(table.loc[k, "p_rjmcmc"]) if k in table.index else float("nan")
        bic = sel.get("bic")
        head = f"p(K | y) is highest at {k} ({p:.2f})"
        head += (
            " and BIC agrees" if bic == k else (f"; BIC chooses {bic}" if bic is not None else "")
        )
        parts.append(head)
        others = ("icl", "dsc", "aic")
    elif sel.get("bic") is not None:
        k = int(sel["bic"])
        parts.append(f"BIC (consistent for K) is lowest at {k}")
        others = ("icl", "dsc", "aic")
    elif sel.get("loo") is not None:
        k = int(sel["loo"])
        parts.append(f"LOO is highest at {k}")
        others = ()
    else:
        return None, "no criterion ran: nothing to recommend."
    agree = [c.upper() for c in others if sel.get(c) == k]
    if agree:
        parts.append(f"{_listing(agree)} agree{'s' if len(agree) == 1 else ''}")
    for c in others:
        v = sel.get(c)
        if v is None or v == k:
            continue
        why = {
            "aic": "AIC under-penalises and tends to add experts",
            "icl": "ICL penalises overlapping experts and tends to merge them",
            "dsc": "DSC cuts the dendrogram of the largest fit",
        }[c]
        parts.append(f"{c.upper()} prefers {v} ({why})")
    ties = loo_ties(table).fillna(False).to_numpy(dtype=bool)
    if ties.any():
        tied = [int(x) for x in table.index[ties]]
        if len(tied) > 1:
            parts.append(
                f"LOO ties K = {_listing(tied)} (elpd differences within "
                f"{LOO_TIE_SE:g} standard errors)"
                + ("" if k in tied else f"; K = {k} is clearly worse by LOO")
            )
        elif tied[0] == k:
            parts.append("LOO agrees")
        else:
            parts.append(f"LOO prefers {tied[0]} by more than {LOO_TIE_SE:g} standard errors")
    if sel.get("mtm") is not None and sel["mtm"] != k:
        at_n = f" at n = {n}" if n else ""
        parts.append(
            f"MTM gives {sel['mtm']}: it merges experts the posterior cannot yet separate, so "
            f"it undercounts{at_n} while the data are few"
            if sel["mtm"] < k
            else f"MTM gives {sel['mtm']}"
        )
    elif sel.get("mtm") == k:
        parts.append("MTM agrees")
    return k, f"K = {k}: " + "; ".join(parts) + "."
