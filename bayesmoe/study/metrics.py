"""Per-task diagnostics of a study: posterior convergence, fit criteria, distances to the truth.

Every function returns a flat ``dict`` of JSON-ready scalars (floats, ints, bools, strings, None),
one row of the study's tidy table.

- Posterior (:func:`trace_metrics`): the largest R-hat and the smallest bulk/tail ESS over the
  user-unit parameters (``beta0, beta1, a, b, sigma``) of the **relabelled** draws (the trace is
  relabelled first when it is not already), the number of divergent transitions, and, when the
  trace has a ``log_likelihood`` group, PSIS-LOO's ``elpd_loo`` and ``p_loo``.
- Point estimate (:func:`mle_metrics`): log-likelihood, AIC, BIC, ICL, convergence.
- Distances to the truth (:func:`truth_distances`, simulated data only): the Voronoi loss
  (:func:`bayesmoe.diagnostics.voronoi.voronoi_loss`; D1 when K <= K*, D2 when K > K*) and the
  expected Hellinger distance (:func:`bayesmoe.diagnostics.hellinger.expected_hellinger`, the
  expectation over the first ``n_eval`` = 200 training inputs, which are i.i.d. draws of X; its
  cost is proportional to draws × inputs, about 4 s for 200 × 200 on one core). For a
  posterior both are posterior means over at most ``max_draws`` draws, thinned evenly within each
  chain. Both diagnostics are imported lazily; when one is not available the metric is left out
  and ``metrics_missing`` names it.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import xarray as xr

__all__ = ["USER_VARS", "mle_metrics", "thin_draws", "trace_metrics", "truth_distances"]

#: Posterior variables in user units whose convergence is reported.
USER_VARS = ("beta0", "beta1", "a", "b", "sigma")


def _optional(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _float(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def thin_draws(ds: xr.Dataset, max_draws: int) -> xr.Dataset:
    """Keep at most `max_draws` draws in total, evenly spaced within each chain.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.study.metrics import thin_draws
    >>> ds = xr.Dataset({"b": (("chain", "draw"), np.zeros((4, 1000)))})
    >>> thin_draws(ds, 200).sizes["draw"]
    50
    """
    if isinstance(max_draws, bool) or not isinstance(max_draws, (int, np.integer)) or max_draws < 1:
        raise ValueError(f"`max_draws` must be a positive integer; got {max_draws!r}.")
    if "draw" not in ds.dims:
        return ds
    n_chain = ds.sizes.get("chain", 1)
    per_chain = max(1, int(max_draws) // n_chain)
    n_draw = ds.sizes["draw"]
    if per_chain >= n_draw:
        return ds
    return ds.isel(draw=np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int)))


def truth_distances(
    measure: xr.Dataset, truth: xr.Dataset, X, *, max_draws: int = 200, n_eval: int = 200
) -> dict:
    """Voronoi loss and expected Hellinger distance of a measure (or its draws) to the truth.

    Parameters
    ----------
    measure : xarray.Dataset
        Mixing measure, with or without sample dims (chain, draw).
    truth : xarray.Dataset
        The true mixing measure (no sample dims).
    X : array_like, shape (n, d)
        Inputs; the first `n_eval` rows are the sample the Hellinger expectation averages over.
    max_draws, n_eval : int
        Draws (posterior) and inputs used.

    Returns
    -------
    dict
        ``voronoi_loss`` (posterior mean), ``voronoi_kind`` ("D1"/"D2"), ``hellinger``
        (posterior mean), ``metrics_missing`` (names of left-out metrics, comma-separated).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.study.metrics import truth_distances
    >>> X, _, truth = simulate("S-B", n=50, random_seed=0)
    >>> d = truth_distances(truth, truth, X)
    >>> d["voronoi_loss"], d["hellinger"], d["voronoi_kind"]
    (0.0, 0.0, 'D1')
    """
    out: dict = {}
    missing = []
    G = thin_draws(measure, max_draws)
    X_eval = np.asarray(X, dtype=float)[:n_eval]
    K, K_true = G.sizes["expert"], truth.sizes["expert"]
    kind = "overfitted" if K > K_true else "exact"
    voronoi_loss = _optional("bayesmoe.diagnostics.voronoi", "voronoi_loss")
    if voronoi_loss is None:
        missing.append("voronoi_loss")
    else:
        out["voronoi_kind"] = "D2" if kind == "overfitted" else "D1"
        try:
            out["voronoi_loss"] = _float(voronoi_loss(G, truth, kind=kind).mean())
        except ValueError as err:  # e.g. an over-fitted Gaussian cell of >= 4 atoms (r̄ unknown)
            out["voronoi_loss"] = None
            out["voronoi_note"] = str(err).splitlines()[0]
    expected_hellinger = _optional("bayesmoe.diagnostics.hellinger", "expected_hellinger")
    if expected_hellinger is None:
        missing.append("hellinger")
    else:
        out["hellinger"] = _float(expected_hellinger(G, truth, X_eval).mean())
    out["metrics_missing"] = ",".join(missing)
    return out


def _posterior(trace: xr.DataTree) -> xr.Dataset:
    if not isinstance(trace, xr.DataTree) or "posterior" not in trace.children:
        raise TypeError(
            "`trace` must be an xarray.DataTree with a 'posterior' group (from "
            f"bayesmoe.inference.sample); got {type(trace).__name__}."
        )
    return trace["posterior"].to_dataset()


def trace_metrics(
    trace: xr.DataTree,
    *,
    truth: xr.Dataset | None = None,
    X=None,
    max_draws: int = 200,
    n_eval: int = 200,
) -> dict:
    """Convergence and accuracy metrics of one posterior trace.

    Parameters
    ----------
    trace : xarray.DataTree
        From :func:`bayesmoe.inference.sample` (relabelled here if it is not yet).
    truth : xarray.Dataset, optional
        True mixing measure (simulated data); adds :func:`truth_distances`.
    X : array_like, optional
        Training inputs (needed with `truth`).
    max_draws, n_eval : int
        See :func:`truth_distances`.

    Returns
    -------
    dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``n_draws``,
        ``elpd_loo``, ``p_loo`` (when the trace has log-likelihoods), ``k_mode``, ``k_mean``
        (when the posterior has ``n_experts``), and the truth distances.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.study.metrics import trace_metrics
    >>> rng = np.random.default_rng(0)
    >>> post = xr.Dataset({"b": (("chain", "draw", "expert"), rng.normal(size=(2, 300, 1)))})
    >>> m = trace_metrics(xr.DataTree.from_dict({"posterior": post}))
    >>> m["max_rhat"] < 1.05, m["n_draws"]
    (True, 600)
    """
    import arviz as az

    post = _posterior(trace)
    if not trace.attrs.get("relabelled") and any(
        "expert" in post[v].dims for v in USER_VARS if v in post
    ):
        from bayesmoe.diagnostics.relabel import relabel

        trace = relabel(trace)
        post = _posterior(trace)
    names = [v for v in USER_VARS if v in post]
    out: dict = {"n_draws": int(post.sizes["chain"] * post.sizes["draw"])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant parameters give NaN R-hat
        if names:
            sub = post[names]
            out["max_rhat"] = _float(
                np.nanmax(np.concatenate([np.ravel(v) for v in az.rhat(sub).data_vars.values()]))
            )
            out["min_ess_bulk"] = _float(
                np.nanmin(
                    np.concatenate(
                        [np.ravel(v) for v in az.ess(sub, method="bulk").data_vars.values()]
                    )
                )
            )
            out["min_ess_tail"] = _float(
                np.nanmin(
                    np.concatenate(
                        [np.ravel(v) for v in az.ess(sub, method="tail").data_vars.values()]
                    )
                )
            )
    if "sample_stats" in trace.children and "diverging" in trace["sample_stats"]:
        out["divergences"] = int(trace["sample_stats"]["diverging"].values.sum())
    if "log_likelihood" in trace.children:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loo = az.loo(trace)
            out["elpd_loo"], out["p_loo"] = _float(loo.elpd), _float(loo.p)
        except Exception as err:
            out["elpd_loo"] = None
            out["loo_note"] = f"{type(err).__name__}: {err}".splitlines()[0]
    if "n_experts" in post:
        k = post["n_experts"].values.ravel().astype(int)
        vals, counts = np.unique(k, return_counts=True)
        out["k_mode"] = int(vals[np.argmax(counts)])
        out["k_mean"] = float(k.mean())
    if truth is not None:
        if X is None:
            raise ValueError("`X` is needed with `truth` (the Hellinger expectation is over X).")
        from bayesmoe.diagnostics.mixing import mixing_measure

        out.update(
            truth_distances(mixing_measure(trace), truth, X, max_draws=max_draws, n_eval=n_eval)
        )
    return out


def mle_metrics(result, *, truth: xr.Dataset | None = None, X=None, n_eval: int = 200) -> dict:
    """Fit criteria of an MM maximum-likelihood fit and its distances to the truth.

    Parameters
    ----------
    result : bayesmoe.inference.mle.mm.MMResult
    truth, X, n_eval
        See :func:`truth_distances`.

    Returns
    -------
    dict
        ``loglik``, ``aic``, ``bic``, ``icl``, ``n_params``, ``converged``, ``iterations``, and the
        truth distances.

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> from bayesmoe.inference.mle.mm import fit_mle
    >>> from bayesmoe.study.metrics import mle_metrics
    >>> X, y, truth = simulate("S-B", n=300, random_seed=0)
    >>> m = mle_metrics(fit_mle(X, y, 3, n_starts=2, random_seed=0), truth=truth, X=X)
    >>> sorted(k for k in m if k in ("bic", "hellinger", "voronoi_loss"))
    ['bic', 'hellinger', 'voronoi_loss']
    """
    if not hasattr(result, "measure_"):
        raise TypeError(f"`result` must be an MMResult from fit_mle; got {type(result).__name__}.")
    d = result.to_dict()
    out = {k: d[k] for k in ("loglik", "aic", "bic", "icl", "n_params", "converged", "iterations")}
    if truth is not None:
        if X is None:
            raise ValueError("`X` is needed with `truth` (the Hellinger expectation is over X).")
        out.update(truth_distances(result.measure_, truth, X, n_eval=n_eval))
    return out
