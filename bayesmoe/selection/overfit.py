"""Over-fitted K in a sweep: starts with a light extra expert, and a warning when chains disagree.

The MM fit of an over-fitted model (more experts than the data support) spends its extra experts
on noise: duplicated experts, near-step gates. The posterior of such a model puts most of its mass
elsewhere, on configurations where the surplus experts are nearly empty (their gate weight a few
observations, their parameters near the prior). NUTS started at the MM point spends its warm-up
travelling there with a mass matrix from the wrong place, and its trees go deep
(benchmarks/README.md "K-sweep").

- :func:`split_start`: the (K-1)-expert start with its heaviest expert split into itself and a
  light copy (the log-likelihood is exactly that of the (K-1) start);
- :func:`is_overfitted`: the MM table's own verdict (BIC of K above the best BIC of fewer experts);
- :func:`chains_disagree` / :func:`warn_overfit_disagreement`: the between-chain spread of the
  total log-likelihood of a fit, and a warning that points to MTM and p(K | y) when an over-fitted
  K's chains disagree (LOO of that K is then not to be trusted on its own).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayesmoe._validation import warn_user
from bayesmoe.measure import gate_covariates, gate_probabilities, upgrade_measure

__all__ = [
    "LOGLIK_SPREAD_MAX",
    "chains_disagree",
    "is_overfitted",
    "split_start",
    "start_log_density",
    "sweep_starts",
    "warn_overfit_disagreement",
]

#: chains of one fit "disagree" when their mean total log-likelihoods differ by more than this
#: many (pooled) within-chain sds, or the rank-normalised R-hat of the total exceeds 1.05
LOGLIK_SPREAD_MAX = 2.0
_RHAT_LOGLIK_MAX = 1.05


def _light_weight(n: int) -> float:
    """Share of the split expert's gate weight the light copy takes: about 5 observations."""
    return float(min(0.05, 5.0 / max(n, 1)))


def split_start(measure: xr.Dataset, X, *, gate_X=None, gate=None, weight=None) -> xr.Dataset:
    """A (K+1)-expert start from a K-expert measure: its heaviest expert split into itself and
    a light copy.

    The copy has the same gate slopes and expert parameters; the gate intercepts of the pair
    are shifted by ``log(1 - weight)`` and ``log(weight)``, so the mixture density, and so the
    log-likelihood, is exactly that of ``measure``. The light expert sits where an over-fitted
    model's posterior keeps its surplus experts (nearly empty), not at the MM fit's duplicated
    or noise-chasing experts.

    Parameters
    ----------
    measure : xarray.Dataset
        A mixing measure without sample dims (user units), e.g. ``fit_mle(...).measure_``.
    X : array_like, shape (n, d)
        The data the heaviest expert is judged on (mean gate probability over the rows).
    gate_X : array_like, shape (n, d_gate), optional
        The gate's own covariates, if the measure's gate has them.
    gate : str or callable, optional
        The gate transform, overriding ``measure.attrs["gate"]`` (needed for a custom gate).
    weight : float, optional
        The light copy's share of the heaviest expert's weight, in (0, 0.5]; default
        ``min(0.05, 5 / n)`` (about five observations).

    Returns
    -------
    xarray.Dataset
        The measure with K + 1 experts (gate in sum-to-zero form), the light copy last.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.measure import make_measure, log_likelihood
    >>> from bayesmoe.selection.overfit import split_start
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 1)); y = X[:, 0] + rng.normal(size=100)
    >>> G = make_measure([0.5, -0.5], [[1.0, -1.0]], [[1.0, 0.0]], [0.0, 1.0], [1.0, 2.0])
    >>> G3 = split_start(G, X)
    >>> G3.sizes["expert"], bool(np.isclose(log_likelihood(G3, X, y), log_likelihood(G, X, y)))
    (3, True)
    """
    if not isinstance(measure, xr.Dataset) or "beta0" not in measure:
        raise TypeError(
            f"`measure` must be a mixing-measure Dataset; got {type(measure).__name__}."
        )
    G = upgrade_measure(measure)
    if G["beta0"].ndim != 1:
        raise ValueError(
            f"`measure` must have no sample dims; got beta0 with dims {G['beta0'].dims}."
        )
    Xa = np.asarray(X, dtype=float)
    n = Xa.shape[0]
    w = _light_weight(n) if weight is None else float(weight)
    if not 0.0 < w <= 0.5:
        raise ValueError(f"`weight` must be in (0, 0.5]; got {weight!r}.")
    Z = gate_covariates(G, Xa, gate_X)
    b0 = G["beta0"].values
    b1 = G["beta1"].transpose("gate_feature", "expert").values
    probs = gate_probabilities(
        b0,
        b1,
        Z,
        gate=G.attrs.get("gate", "softmax") if gate is None else gate,
        temperature=G.attrs.get("temperature", 1.0),
    )
    h = int(np.argmax(probs.mean(0)))
    K = G.sizes["expert"]
    out = xr.concat(
        [G, G.isel(expert=[h])], dim="expert", data_vars="minimal", coords="minimal"
    ).assign_coords(expert=np.arange(K + 1))
    beta0 = np.append(b0, b0[h] + np.log(w))
    beta0[h] += np.log1p(-w)
    beta1 = out["beta1"].transpose("gate_feature", "expert").values
    out["beta0"] = ("expert", beta0 - beta0.mean())
    out["beta1"] = (("gate_feature", "expert"), beta1 - beta1.mean(-1, keepdims=True))
    out.attrs = dict(G.attrs)
    return out


def is_overfitted(table: pd.DataFrame, K: int) -> bool:
    """Whether the MM table says K has more experts than the data support: its BIC is above the
    best BIC of fewer experts (``table`` as :func:`~bayesmoe.selection.criteria.select_experts`
    returns it; False when the rows are missing or NaN).

    Examples
    --------
    >>> import pandas as pd
    >>> from bayesmoe.selection.overfit import is_overfitted
    >>> t = pd.DataFrame({"bic": [10.0, 5.0, 7.0]}, index=[1, 2, 3])
    >>> is_overfitted(t, 2), is_overfitted(t, 3)
    (False, True)
    """
    if K not in table.index or "bic" not in table:
        return False
    fewer = table.loc[[k for k in table.index if k < K], "bic"].dropna()
    bic = float(table.loc[K, "bic"])
    return bool(len(fewer)) and np.isfinite(bic) and bic > float(fewer.min())


def sweep_starts(table: pd.DataFrame, fits: dict, X, *, gate_X=None, gate=None, score=None):
    """The NUTS start of every K of an MM table: the MM fit of K, or, for a K the table calls
    over-fitted (:func:`is_overfitted`), the start of K - 1 with its heaviest expert split
    (:func:`split_start`; recursively, so K* + 2 has two light experts) when its ``score`` is
    higher than the MM fit's.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~bayesmoe.selection.criteria.select_experts`' table.
    fits : dict
        K -> its MM result (``MMResult``, None when the fit failed), e.g. collected by
        ``select_experts(..., on_fit=...)``.
    X, gate_X, gate
        As :func:`split_start`.
    score : callable, optional
        ``score(K, start) -> float``, e.g. the model's log density at the point NUTS starts
        from (:func:`start_log_density`); the split replaces the MM fit only where it scores
        higher (the MM fit of an over-fitted K is often a fine start; near-step gates or chased
        noise are where it is not). None: an over-fitted K always takes the split.

    Returns
    -------
    (dict, set)
        K -> start (an ``MMResult`` or a measure; None when there is none) and the set of K
        started from a split (the over-fitted ones).
    """
    starts, split = {}, set()
    for K in sorted(fits):
        prev = starts.get(K - 1)
        if K > 1 and prev is not None and is_overfitted(table, K):
            G = split_start(getattr(prev, "measure_", prev), X, gate_X=gate_X, gate=gate)
            if fits[K] is None or score is None or score(K, G) > score(K, fits[K]):
                starts[K] = G
                split.add(K)
                continue
        starts[K] = fits[K]
    return starts, split


def start_log_density(X, y, **model_options):
    """``score(K, start)`` for :func:`sweep_starts`: the fixed-K model's log density (flat,
    unconstrained scale) at the point NUTS starts from for a measure or MM result ``start``
    (gates clipped as :func:`bayesmoe.inference.sample` does); -inf when the compiled flat
    model does not cover the model (every start then scores alike and the MM fit is kept).
    ``model_options`` are :func:`~bayesmoe.models.spec.fixed_k_spec`'s (``family``, ``gate``,
    ``priors``, ``offset``, ``gate_X``, ``trials``, ...).
    """
    from bayesmoe.inference.nuts.flat_model import flat_model_from_spec
    from bayesmoe.inference.nuts.sampling import start_values
    from bayesmoe.models.spec import fixed_k_spec

    def score(K, start):
        spec = fixed_k_spec(X, y, n_experts=K, **model_options)
        fm = flat_model_from_spec(spec)
        if fm is None:
            return -np.inf
        point, _ = start_values(spec, method=start)
        return float(fm.logp(fm.unconstrain(point)))

    return score


def chains_disagree(trace: xr.DataTree) -> dict | None:
    """Between-chain disagreement of a fit's total log-likelihood, or None when the chains agree.

    The total log-likelihood per draw is label-invariant (no relabelling needed). The chains
    disagree when their means differ by more than :data:`LOGLIK_SPREAD_MAX` pooled within-chain
    sds or its rank-normalised split R-hat exceeds 1.05.

    Returns
    -------
    dict or None
        ``{"chain_means": [...], "spread_sds": float, "rhat": float}`` when they disagree.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayesmoe.selection.overfit import chains_disagree
    >>> rng = np.random.default_rng(0)
    >>> ll = rng.normal(size=(2, 300, 50)) - 1.0
    >>> ok = xr.DataTree.from_dict({"log_likelihood": xr.Dataset(
    ...     {"y": (("chain", "draw", "obs"), ll)})})
    >>> chains_disagree(ok) is None
    True
    >>> ll[1] -= 0.5                                   # chain 1 in a worse mode
    >>> bad = xr.DataTree.from_dict({"log_likelihood": xr.Dataset(
    ...     {"y": (("chain", "draw", "obs"), ll)})})
    >>> chains_disagree(bad)["spread_sds"] > 2
    True
    """
    from bayesmoe.diagnostics import mcmc_stats

    if "log_likelihood" not in trace.children:
        return None
    da = trace["log_likelihood"].to_dataset()["y"]
    if da.sizes.get("chain", 1) < 2:
        return None
    other = [d for d in da.dims if d not in ("chain", "draw")]
    total = da.sum(other).transpose("chain", "draw").values  # (chain, draw)
    means = total.mean(1)
    within = float(np.sqrt(np.mean(total.var(1, ddof=1))))
    spread = float(np.ptp(means) / within) if within > 0 else float(np.inf * np.ptp(means))
    rhat = float(mcmc_stats.rhat(total))
    if spread > LOGLIK_SPREAD_MAX or rhat > _RHAT_LOGLIK_MAX:
        return {"chain_means": means.tolist(), "spread_sds": spread, "rhat": rhat}
    return None


def warn_overfit_disagreement(trace: xr.DataTree, K: int) -> bool:
    """Warn (a :class:`~bayesmoe.diagnostics.convergence.ConvergenceWarning`) when the chains
    of an over-fitted K disagree (:func:`chains_disagree`); return whether it warned.

    The message names K and the chains' mean log-likelihoods and points to the MTM posterior of
    K and p(K | y), which are the answers to read for an over-fitted model.
    """
    found = chains_disagree(trace)
    if found is None:
        return False
    means = ", ".join(f"{m:.1f}" for m in found["chain_means"])
    warn_user(
        f"the NUTS chains of the over-fitted K = {K} disagree (mean log-likelihood per chain "
        f"{means}; {found['spread_sds']:.1f} within-chain sds apart, R-hat "
        f"{found['rhat']:.2f}): its LOO row is unreliable. Read the MTM posterior of K "
        "(mtm=True) or p(K | y) (rjmcmc=True) instead, or run longer chains.",
        _category(),
    )
    return True


def _category():
    from bayesmoe.diagnostics.convergence import ConvergenceWarning

    return ConvergenceWarning
