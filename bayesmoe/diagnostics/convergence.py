"""Convergence checks run after every fit, with the thresholds the HTML report uses.

:func:`bayesmoe.inference.sample` (and ``MoE.fit``) call :func:`check_fixed_k` on the trace it
returns, :func:`bayesmoe.inference.rjmcmc.sample_random_k` calls :func:`check_random_k`: each
problem becomes one :class:`ConvergenceWarning` that names the parameters or chains concerned and
what to do. The report (:mod:`bayesmoe.report.fit`) flags rows with the same ``RHAT_MAX``.

The rules (README "What bayesmoe warns about"):

- R-hat of a relabelled user-unit parameter above ``RHAT_MAX`` (1.01; Vehtari et al. 2021);
- bulk ESS below ``ESS_PER_CHAIN_MIN`` (100) times the number of chains;
- any divergent transition after tuning;
- random K: a chain whose K never changes while the chains do not all sit at one K, or no
  trans-dimensional move accepted at all.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmoe._validation import warn_user
from bayesmoe.diagnostics import mcmc_stats

__all__ = [
    "ESS_PER_CHAIN_MIN",
    "RHAT_MAX",
    "ConvergenceWarning",
    "check_fixed_k",
    "check_random_k",
    "convergence_problems",
]

#: largest acceptable rank-normalised split R-hat (Vehtari et al. 2021)
RHAT_MAX = 1.01
#: smallest acceptable bulk ESS per chain (so 400 for 4 chains)
ESS_PER_CHAIN_MIN = 100
#: user-unit parameters checked (the relabelled mixing measure)
_USER_VARS = ("beta0", "beta1", "a", "b", "sigma")
_N_NAMED = 3  # worst parameters named in a message


class ConvergenceWarning(UserWarning):
    """The sampler's output shows a problem (R-hat, ESS, divergences, a stuck chain)."""


def _flat(ds: xr.Dataset) -> dict[str, float]:
    """``{"a[x0, 1]": value}`` for every scalar of a Dataset without sample dims."""
    out = {}
    for name, da in ds.data_vars.items():
        if da.ndim == 0:
            out[name] = float(da)
            continue
        idx = [da[d].values for d in da.dims]
        for pos in np.ndindex(da.shape):
            label = ", ".join(str(idx[i][j]) for i, j in enumerate(pos))
            out[f"{name}[{label}]"] = float(da.values[pos])
    return out


def _per_variable(ds: xr.Dataset, stat) -> xr.Dataset:
    """``stat`` (numpy, (chain, draw, ...) -> (...)) of every variable, labelled; the numpy
    estimators of :mod:`bayesmoe.diagnostics.mcmc_stats` import no ArviZ on the sampling path.
    """
    out = {}
    for name, da in ds.data_vars.items():
        rest = [d for d in da.dims if d not in ("chain", "draw")]
        values = stat(da.transpose("chain", "draw", *rest).values)
        out[name] = xr.DataArray(values, dims=rest, coords={d: da[d].values for d in rest})
    return xr.Dataset(out)


def _names(values: dict[str, float], worst_high: bool) -> str:
    items = sorted(values.items(), key=lambda kv: -kv[1] if worst_high else kv[1])
    shown = ", ".join(f"{k} ({v:.3g})" for k, v in items[:_N_NAMED])
    more = len(items) - _N_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _ordered(trace: xr.DataTree) -> bool:
    """Fitted with ``ordered=True``: the intercept ordering already identifies the labels."""
    import json

    try:
        return bool(json.loads(trace.attrs.get("model_options", "{}")).get("ordered", False))
    except (TypeError, ValueError, AttributeError):
        return False


def convergence_problems(trace: xr.DataTree) -> list[str]:
    """The messages :func:`check_fixed_k` would warn with (empty when all is well).

    R-hat and ESS are computed on the user-unit parameters ``beta0, beta1, a, b, sigma``, only
    when the expert labels are aligned: the draws are relabelled (``attrs["relabelled"]``),
    the fit was ``ordered``, or there is one expert. The divergence count needs
    ``sample_stats.diverging``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.convergence import convergence_problems
    >>> rng = np.random.default_rng(0)
    >>> b = rng.normal(size=(2, 200, 1))
    >>> b[1] += 3.0                                          # chain 1 elsewhere
    >>> post = xr.Dataset({"b": (("chain", "draw", "expert"), b)}, coords={"expert": [0]})
    >>> msg = convergence_problems(xr.DataTree.from_dict({"posterior": post}))
    >>> msg[0].startswith("R-hat > 1.01 for 1 parameter(s): b[0]")
    True
    """
    post = trace["posterior"].to_dataset()
    msgs = []
    n_chains = post.sizes.get("chain", 1)
    one_expert = post.sizes.get("expert", 1) == 1
    names = [v for v in _USER_VARS if v in post]
    if names and (trace.attrs.get("relabelled") or one_expert or _ordered(trace)):
        ds = post[names]
        if n_chains > 1:
            rhat = {
                k: v for k, v in _flat(_per_variable(ds, mcmc_stats.rhat)).items() if v > RHAT_MAX
            }
            if rhat:
                msgs.append(
                    f"R-hat > {RHAT_MAX} for {len(rhat)} parameter(s): {_names(rhat, True)}; "
                    "the chains disagree. Run longer (more draws and tune), check for a minor "
                    "mode (bm.summary(trace), the report's rank plots), or use fewer experts."
                )
        need = ESS_PER_CHAIN_MIN * n_chains
        bulk = _flat(_per_variable(ds, mcmc_stats.ess_bulk))
        ess = {k: v for k, v in bulk.items() if v < need}
        if ess:
            msgs.append(
                f"bulk ESS < {need} ({ESS_PER_CHAIN_MIN} per chain) for {len(ess)} parameter(s): "
                f"{_names(ess, False)}; posterior means and intervals of these are imprecise. "
                "Run more draws."
            )
    msgs += _divergences(trace)
    return msgs


def _divergences(trace: xr.DataTree) -> list[str]:
    if "sample_stats" not in trace.children or "diverging" not in trace["sample_stats"]:
        return []
    div = np.asarray(trace["sample_stats"]["diverging"].values)
    n_div = int(np.sum(div))
    if not n_div:
        return []
    per = np.sum(div.reshape(div.shape[0], -1), axis=1).tolist() if div.ndim > 1 else [n_div]
    return [
        f"{n_div} divergent transition(s) after tuning (per chain: {per}); the posterior may be "
        "biased. Raise target_accept (e.g. target_accept=0.95), or use fewer experts or "
        "stronger priors."
    ]


def check_fixed_k(trace: xr.DataTree) -> list[str]:
    """Warn (:class:`ConvergenceWarning`) for each problem of :func:`convergence_problems`.

    Returns the messages.
    """
    msgs = convergence_problems(trace)
    for m in msgs:
        warn_user(m, ConvergenceWarning)
    return msgs


def random_k_problems(trace: xr.DataTree) -> list[str]:
    """The messages :func:`check_random_k` would warn with (empty when all is well).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.diagnostics.convergence import random_k_problems
    >>> k = np.array([[2, 3, 2, 3], [4, 4, 4, 4]])
    >>> post = xr.Dataset({"n_experts": (("chain", "draw"), k)})
    >>> random_k_problems(xr.DataTree.from_dict({"posterior": post}))[0][:40]
    'chain 1 stayed at K = 4 for all 4 draws '
    """
    post = trace["posterior"].to_dataset()
    k = np.asarray(post["n_experts"].values, dtype=int)
    k = k.reshape(k.shape[0], -1) if k.ndim > 1 else k[None, :]
    msgs = []
    stuck = [c for c in range(k.shape[0]) if np.all(k[c] == k[c, 0])]
    if stuck and np.unique(k).size > 1:
        chains = post["chain"].values if "chain" in post.coords else np.arange(k.shape[0])
        which = ", ".join(f"chain {chains[c]} stayed at K = {k[c, 0]}" for c in stuck)
        msgs.append(
            f"{which} for all {k.shape[1]} draws while other chains visit other K: the "
            "reversible-jump moves do not mix, and p(K | y) depends on the starts. Run longer, "
            "compare k_posterior(trace, by_chain=True), or tune step_kwargs."
        )
    if "sample_stats" in trace.children:
        ss = trace["sample_stats"]
        acc = [v for v in ss.data_vars if str(v).startswith("accepted_")]
        if acc and k.size > 1 and sum(int(ss[v].sum()) for v in acc) == 0:
            msgs.append(
                "no trans-dimensional move (birth, death, split, merge) was accepted: K never "
                "changed, and p(K | y) only reflects the starting K. Run longer or tune "
                "step_kwargs."
            )
    return msgs + _divergences(trace)


def check_random_k(trace: xr.DataTree) -> list[str]:
    """Warn (:class:`ConvergenceWarning`) for each problem of :func:`random_k_problems`.

    Returns the messages.
    """
    msgs = random_k_problems(trace)
    for m in msgs:
        warn_user(m, ConvergenceWarning)
    return msgs
