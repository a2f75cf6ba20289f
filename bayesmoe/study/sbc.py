"""Simulation-based calibration (SBC) of the fixed-K models: the runner (Talts et al. 2018;
Modrák et al. 2023).

One SBC replicate (:func:`sbc_replicate`) draws a parameter vector theta* and a data set y* from the
model's own prior predictive distribution (``pymc.sample_prior_predictive`` on the fixed inputs X),
fits the same model to (X, y*) with NUTS, and records the rank of f(theta*, y*) among
f(theta_s, y*) for L thinned posterior draws theta_s, for a set of test quantities f. If the
sampler and the model agree, every rank is uniform on {0, ..., L} over replicates.

Replicates run through the study runner (``inference.method = "sbc"`` with ``data.source =
"prior"``, see :mod:`bayesmoe.study.spec`), so they resume and run on dask; :func:`sbc_ranks`
collects the ranks of a study folder into a labelled :class:`xarray.Dataset`, :func:`sbc_summary`
tests each quantity for uniformity and :func:`bayesmoe.diagnostics.plot_sbc` draws the
ECDF-difference plot with ArviZ's simultaneous bands.

Which checks are valid for a mixture
------------------------------------
The model is symmetric under permutations of the experts, so the posterior has K! label modes and
a single expert's parameters are not identified. SBC is exact for any function of (theta, y) that
is invariant under relabelling; these are the **primary** quantities:

- ``loglik_data``: log p(y* | X, theta), the log-likelihood of the simulated data (a data-dependent
  test quantity, the most sensitive one for a miscalibrated fit, Modrák et al. 2023);
- ``loglik_test``: log p(y_t | x_t, theta) at fixed test pairs (x_t, y_t);
- ``pred_mean``: E[y | x_t, theta] (Gaussian experts) or P(y = first class | x_t, theta);
- ``gate_entropy``: the mean entropy of the gate probabilities over the rows of X.

The **relabelled parameters** (``b``, ``a``, ``log_sigma``, ``beta0``, ``beta1`` per expert) are
ranked after matching each posterior draw's experts to the prior draw's experts by the Hungarian
algorithm (the matching of :mod:`bayesmoe.diagnostics.relabel`). Matching to the truth uses the
truth, so these ranks are a secondary, approximate check: when a prior draw has a nearly empty
expert (its gate weight is tiny everywhere), that expert's parameters are not identified and the
matching can prefer the draw's expert closest to the truth, which skews its ranks toward the
middle. The gate weight of the smallest expert is recorded (``min_gate_weight``) so such
replicates can be told apart.

Starts and chains: NUTS starts from PyMC's jittered default point (``init="jitter+adapt_diag"``),
never from the truth (a start at theta* would bias the ranks toward the middle whenever a chain
does not forget its start). The Gaussian model is built with the response transform fixed to the
identity (y centre 0, scale 1) for both the prior draw and the fit: the default data-dependent
standardisation of y would make the "prior" depend on y* and break SBC.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pymc as pm
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesmoe._validation import check_family, check_int, check_X, family_keyword
from bayesmoe.families import NUMPY, get_family
from bayesmoe.gates import resolve_gate
from bayesmoe.measure import log_gate_probabilities
from bayesmoe.models.builder import build_model

__all__ = ["match_to_truth", "sbc_ranks", "sbc_replicate"]

_RELABELLED = ("b", "a", "log_sigma", "beta0", "beta1")


# ------------------------------------------------------------------------------------------------
# one replicate
# ------------------------------------------------------------------------------------------------
def _model(X, family, n_experts, gate, n_classes, priors, likelihood_power):
    """The model on X with the response transform pinned to the identity (a stand-in y): the
    prior must not depend on the data it generates.
    """
    fam = get_family(family)
    y0 = fam.example_response(X.shape[0], n_classes)
    classes = list(range(n_classes)) if fam.has_classes else None
    model, info = build_model(
        X, y0, n_experts=n_experts, family=fam.name, gate=gate, priors=priors, classes=classes
    )
    if fam.transforms_response:
        with model:
            pm.set_data({"y_center": 0.0, "y_scale": 1.0})
    if likelihood_power != 1.0:
        with model:
            y_rv = model["y"]
            pm.Potential(
                "likelihood_tempering",
                (likelihood_power - 1.0) * pm.logp(y_rv, model.rvs_to_values[y_rv]).sum(),
            )
    return model, info


def _params(ds: xr.Dataset, family: str) -> dict:
    """User-unit parameters with a leading sample axis S: gate (S,K), (S,d,K); the family's
    trace variables.
    """

    def arr(name, dims):
        da = ds[name]
        extra = [d for d in da.dims if d not in dims]
        return da.transpose(*extra, *dims).values.reshape((-1,) + tuple(da.sizes[d] for d in dims))

    out = {"beta0": arr("beta0", ("expert",)), "beta1": arr("beta1", ("gate_feature", "expert"))}
    out.update({k: arr(k, dims) for k, dims in get_family(family).trace_dims.items()})
    return out


def _log_gate(p: dict, X: np.ndarray, gate_name: str) -> np.ndarray:
    """Log gate probabilities, shape (S, n, K), of the gate covariates X (the gate module's)."""
    return log_gate_probabilities(p["beta0"], p["beta1"], X, gate=gate_name)


def _predictors(p: dict, family: str, X: np.ndarray):
    fam = get_family(family)
    canon = fam.canonical_from_trace({k: p[k] for k in fam.trace_dims})
    return fam, fam.user_predictors(canon, X)


def _log_components(p: dict, family: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log p(y_i | x_i, expert k), shape (S, n, K): the family's one log density."""
    fam, preds = _predictors(p, family, X)
    return fam.component_log_prob(NUMPY, y, *preds)


def _quantities(p: dict, family: str, gate_name: str, X, y, x_test, y_test) -> dict:
    """Label-invariant test quantities per sample: name -> (S,) or (S, n_test)."""
    lg = _log_gate(p, X, gate_name)
    ll = np.logaddexp.reduce(lg + _log_components(p, family, X, y), axis=-1)
    g = np.exp(lg)
    entropy = -(g * lg).sum(-1).mean(-1)
    lg_t = _log_gate(p, x_test, gate_name)
    ll_t = np.logaddexp.reduce(lg_t + _log_components(p, family, x_test, y_test), axis=-1)
    fam, preds = _predictors(p, family, x_test)
    mean = fam.mean(*preds)  # E[y | x, k]; with classes P(y = first class | x, k)
    pred = (np.exp(lg_t) * (mean[..., 0, :] if fam.has_classes else mean)).sum(-1)
    out = {
        "loglik_data": ll.sum(-1),
        "loglik_test": ll_t,
        "pred_mean": pred,
        "gate_entropy": entropy,
    }
    if fam.has_classes and int(np.max(y_test)) == 0 and len(np.unique(y_test)) == 1:
        del out["loglik_test"]  # log P(y = 0 | x) is a monotone map of pred_mean: no new check
    return out


def _atoms(p: dict, family: str) -> np.ndarray:
    """(S, K, P) expert atoms for the matching: beta0, beta1 and the family's gauge-fixed
    canonical blocks (positive ones, variances, on the log scale).
    """
    S, K = p["beta0"].shape
    fam = get_family(family)
    canon = fam.canonical_from_trace({k: p[k] for k in fam.trace_dims})
    atoms = fam.atom_blocks(canon, S, K)
    blocks = [p["beta0"][..., None], np.moveaxis(p["beta1"], 1, 2)]
    for name in fam.canonical_dims:
        blocks.append(np.log(atoms[name]) if name in fam.positive_canonical else atoms[name])
    return np.concatenate(blocks, axis=-1)


def match_to_truth(atoms, truth) -> np.ndarray:
    """Permutations matching each draw's experts to the truth's experts (Hungarian algorithm).

    Features are scaled by their pooled posterior sd (as in
    :func:`bayesmoe.diagnostics.relabel.relabel_permutations`); ``perm[s, j]`` is the draw's
    expert placed at the truth's label j.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.study.sbc import match_to_truth
    >>> truth = np.array([[0.0, 1.0], [5.0, -1.0]])
    >>> draws = np.stack([truth[::-1] + 0.01, truth - 0.01])   # the first draw is swapped
    >>> match_to_truth(draws, truth).tolist()
    [[1, 0], [0, 1]]
    """
    from bayesmoe.diagnostics.relabel import _feature_scale

    atoms = np.asarray(atoms, dtype=float)
    truth = np.asarray(truth, dtype=float)
    scale = _feature_scale(atoms, None)
    z, c = atoms * scale, truth * scale
    cost = ((c[None, :, None, :] - z[:, None, :, :]) ** 2).sum(-1)  # (S, truth j, draw k)
    return np.stack([linear_sum_assignment(cs)[1] for cs in cost])


def _relabelled(p: dict, family: str, perm: np.ndarray) -> dict:
    """Per-expert parameters (S, K) in the truth's labels: the first entry of every event axis
    (first feature, first class against the reference), positive ones as ``log_*``.
    """
    take = lambda v: np.take_along_axis(v, perm, axis=-1)  # noqa: E731
    out = {"beta0": take(p["beta0"]), "beta1": take(p["beta1"][:, 0, :])}
    fam = get_family(family)
    positive = {prm.name for prm in fam.params if prm.positive}
    for name in fam.trace_dims:
        v = p[name].reshape(p[name].shape[0], -1, p[name].shape[-1])[:, 0, :]
        out[f"log_{name}" if name in positive else name] = take(
            np.log(v) if name in positive else v
        )
    return out


def _rank(truth: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """#{s: f_s < f*} plus a uniform share of ties; truth (...), draws (L, ...)."""
    less = (draws < truth).sum(0)
    ties = (draws == truth).sum(0)
    return less + rng.integers(0, ties + 1)


def sbc_replicate(
    X,
    *,
    n_experts: int,
    family: str = "gaussian",
    gate: str = "softmax",
    n_classes: int = 2,
    priors: dict | None = None,
    fit_priors: dict | None = None,
    likelihood_power: float = 1.0,
    x_test=None,
    y_test=None,
    draws: int = 250,
    tune: int = 500,
    chains: int = 2,
    n_ranked: int = 99,
    target_accept: float = 0.9,
    random_seed=None,
    progressbar: bool = False,
    experts: str | None = None,
) -> dict:
    """Run one SBC replicate: a prior draw, a NUTS fit to its simulated data, the ranks.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Fixed inputs (the same for the prior draw and the fit).
    n_experts, family, gate : model options
        As in :func:`bayesmoe.models.build_model` (``gate`` a name).
    n_classes : int
        Number of classes of categorical experts.
    priors : dict, optional
        Prior scales of the data-generating model (:class:`bayesmoe.models.Priors` keys).
    fit_priors : dict, optional
        Prior scales of the fitted model (default: `priors`). A different value is a deliberate
        misspecification (the must-fail check).
    likelihood_power : float
        The fit's likelihood is raised to this power (1: correct; 0.5: tempered, must fail).
    x_test : array_like, shape (n_test, d), optional
        Test inputs of ``loglik_test`` and ``pred_mean`` (default: the 10/50/90 % quantiles of
        the first feature of X, the other features at their median).
    y_test : array_like, shape (n_test,), optional
        Test responses of ``loglik_test`` (default 0.0 for Gaussian, class 0 for categorical).
    draws, tune, chains : int
        NUTS draws and tuning steps per chain, and chains (run sequentially, ``cores=1``).
    n_ranked : int
        L, the number of thinned posterior draws the truth is ranked among (ranks in 0..L).
    target_accept : float
        NUTS target acceptance.
    random_seed : int or sequence of int, optional
        Entropy of a :class:`numpy.random.SeedSequence` that seeds the prior draw, the sampler
        and the tie breaking.
    progressbar : bool
        PyMC's progress bar.

    Returns
    -------
    dict
        ``ranks``: {quantity: list of int (flattened over its coordinate)}, ``n_ranked``,
        ``min_gate_weight`` (the prior draw's smallest mean gate weight), ``divergences``,
        ``ess_loglik`` (bulk ESS of ``loglik_data`` over all draws), ``seconds``.

    Examples
    --------
    Not run as a doctest (skipped): it compiles and runs a PyMC sampler, about 8 s even
    with 20 draws.

    >>> import numpy as np
    >>> from bayesmoe.study.sbc import sbc_replicate
    >>> X = np.random.default_rng(0).standard_normal((100, 1))
    >>> out = sbc_replicate(X, n_experts=2, draws=100, tune=100, chains=1, n_ranked=19,
    ...                     random_seed=1)  # doctest: +SKIP
    >>> 0 <= out["ranks"]["loglik_data"][0] <= 19  # doctest: +SKIP
    True
    """
    family = family_keyword(family, experts, "sbc_replicate")
    import arviz as az

    family = check_family(family)
    fam = get_family(family)
    K = check_int(n_experts, "n_experts")
    L = check_int(n_ranked, "n_ranked")
    X = check_X(X)
    gate_name, _ = resolve_gate(gate)
    if fam.has_classes:
        n_classes = check_int(n_classes, "n_classes", minimum=2)
    if not (isinstance(likelihood_power, (int, float)) and likelihood_power > 0):
        raise ValueError(f"`likelihood_power` must be a positive number; got {likelihood_power!r}.")
    if chains * draws < L:
        raise ValueError(
            f"`n_ranked` ({L}) exceeds the {chains * draws} posterior draws "
            "(chains * draws); lower it or draw more."
        )
    if x_test is None:
        q = np.quantile(X, [0.1, 0.5, 0.9], axis=0)
        x_test = np.repeat(np.median(X, axis=0, keepdims=True), 3, axis=0)
        x_test[:, 0] = q[:, 0]
    x_test = check_X(x_test, "x_test")
    if y_test is None:
        y_test = np.zeros(x_test.shape[0], dtype=int if fam.y_dtype == "int64" else float)
    y_test = np.asarray(y_test)
    t0 = time.perf_counter()
    seeds = np.random.SeedSequence(random_seed).spawn(3)
    prior_seed, fit_seed = (int(s.generate_state(1)[0]) for s in seeds[:2])
    rng = np.random.default_rng(seeds[2])

    gen, _ = _model(X, family, K, gate, n_classes, priors, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(draws=1, model=gen, random_seed=prior_seed)
    truth_ds = prior["prior"].to_dataset()
    y_sim = prior["prior_predictive"]["y"].values.reshape(-1)
    if fam.y_dtype == "int64":
        y_sim = y_sim.astype(np.int64)

    fit_model, _ = _model(
        X,
        family,
        K,
        gate,
        n_classes,
        priors if fit_priors is None else fit_priors,
        likelihood_power,
    )
    with fit_model:
        pm.set_data({"y_obs": y_sim})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            cores=1,
            model=fit_model,
            random_seed=fit_seed,
            target_accept=target_accept,
            nuts_sampler="pymc",
            progressbar=progressbar,
            compute_convergence_checks=False,
        )
    post = trace["posterior"].to_dataset()
    p_all = _params(post, family)
    S = p_all["beta0"].shape[0]
    keep = np.linspace(0, S - 1, L).round().astype(int)  # evenly thinned over pooled chains
    p_draw = {k: v[keep] for k, v in p_all.items()}
    p_true = _params(truth_ds, family)

    q_true = _quantities(p_true, family, gate_name, X, y_sim, x_test, y_test)
    q_draw = _quantities(p_draw, family, gate_name, X, y_sim, x_test, y_test)
    ranks = {k: _rank(q_true[k][0], q_draw[k], rng) for k in q_true}
    if K > 1:
        perm = match_to_truth(_atoms(p_draw, family), _atoms(p_true, family)[0])
        r_true = _relabelled(p_true, family, np.arange(K)[None, :])
        r_draw = _relabelled(p_draw, family, perm)
        ranks.update({k: _rank(r_true[k][0], r_draw[k], rng) for k in r_true})
    g_true = np.exp(_log_gate(p_true, X, gate_name))[0]
    ll_all = _quantities(p_all, family, gate_name, X, y_sim, x_test, y_test)["loglik_data"]
    ess = float(az.ess(ll_all.reshape(chains, -1)))
    divergences = int(trace["sample_stats"]["diverging"].values.sum())
    return {
        "ranks": {k: np.atleast_1d(v).astype(int).tolist() for k, v in ranks.items()},
        "n_ranked": L,
        "min_gate_weight": float(g_true.mean(0).min()),
        "divergences": divergences,
        "ess_loglik": ess,
        "seconds": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------------------------------------
# collection, tests, plot
# ------------------------------------------------------------------------------------------------
_COORD_OF = {"loglik_test": "test_point", "pred_mean": "test_point"}


def sbc_ranks(out) -> xr.Dataset:
    """The ranks of a finished SBC study folder as a labelled Dataset.

    Parameters
    ----------
    out : str or pathlib.Path
        A study folder written by :func:`bayesmoe.study.run_study` with ``method = "sbc"``.

    Returns
    -------
    xarray.Dataset
        One variable per quantity with dims ``replicate`` (and ``test_point`` or ``expert``),
        integer ranks in 0..L; ``attrs["n_ranked"]`` = L; per-replicate ``min_gate_weight``,
        ``divergences``, ``ess_loglik`` and ``seconds`` as coordinates.
    """
    import json
    from pathlib import Path

    from bayesmoe.study.store import StudyStore

    store = StudyStore(out, create=False)
    recs = [store.read_metrics(t) for t in store.finished_ids()]
    recs = [r for r in recs if r.get("method") == "sbc"]
    if not recs:
        raise ValueError(f"no finished SBC task in {str(Path(out))!r}; run the study first.")
    recs.sort(key=lambda r: (r["coords"].get("replicate", 0), r["task"]))
    L = {r["metrics"]["n_ranked"] for r in recs}
    if len(L) != 1:
        raise ValueError(f"the tasks of {str(out)!r} rank among different numbers of draws {L}.")
    keys = [k for k in recs[0]["metrics"] if k.startswith("rank__")]
    names = list(dict.fromkeys(k.split("__")[1] for k in keys))
    data = {}
    for name in names:
        cols = sorted(
            (k for k in keys if k.split("__")[1] == name), key=lambda k: int(k.split("__")[2])
        )
        arr = np.array([[r["metrics"][c] for c in cols] for r in recs], dtype=np.int64)
        if name in ("loglik_data", "gate_entropy"):
            data[name] = (("replicate",), arr[:, 0])
        else:
            data[name] = (("replicate", _COORD_OF.get(name, "expert")), arr)
    rep = [r["task"] for r in recs]
    extra = {
        k: ("replicate", [r["metrics"][k] for r in recs])
        for k in ("min_gate_weight", "divergences", "ess_loglik", "seconds")
    }
    spec = store.read_spec() or {}
    return xr.Dataset(
        data,
        coords={"replicate": rep, **extra},
        attrs={"n_ranked": int(L.pop()), "spec": json.dumps(spec)},
    )
