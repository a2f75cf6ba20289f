"""Shared test helpers (a plain module, not a test module: pytest collects nothing here).

Test modules import what they share from here, never from another ``test_*`` module or a
``conftest`` (``tests/test_house_rules.py`` enforces it). What lives here:

- the suite's false-alarm budget (``ALPHA``, ``ALPHA_RECOVERY``) and the two tests built on it:
  the Bonferroni/MCSE z-test (``bonferroni_z``, ``assert_mcse_z``) and the ESS-thinned
  chi-square test of a K chain (``chi_square_pvalue``);
- the reversible-jump prior-recovery chain (``run_prior_chain``) shared by the RJ tests;
- synthetic posteriors without sampling (``synthetic_trace``, ``jittered_measure``,
  ``split_expert``, ``permute_last_axis``);
- the flat-density option sets and their data (``flat_options``, ``flat_data``);
- the notebook runner (``run_notebook``).

Heavy imports (PyMC, PyTensor, nbclient) happen inside the functions that need them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

# --------------------------------------------------------------------------------------------
# false-alarm budget
# --------------------------------------------------------------------------------------------
ALPHA = 1e-3
"""False-alarm rate of each statistical check of the suite (fixed seeds, so a given code state
passes or fails deterministically; ALPHA is the chance that a *correct* sampler or simulator with
an unlucky seed would have been flagged).

Shared by 21 checks in the default tier: chi-square of the ESS-thinned K chain (tests/rjmcmc:
test_prior_recovery 3 (one of them Poisson experts), test_prior_recovery_rg 1, test_categorical 1,
test_sampling 1, test_compiled 1 — ALPHA / 2 per chain over two chains), Kolmogorov–Smirnov of
ESS-thinned Gibbs marginals (tests/inference/test_gibbs 4), KS of prior draws
(tests/models/test_priors 3), Bonferroni z-tests of simulated expert frequencies at family-wise
ALPHA (tests/data/test_simulate 6: 3 gates x 2 temperatures), and the Bonferroni z-test of the
Richardson–Green posterior on the JAX path against PyMC's (tests/inference/nuts/test_rg_jax 1).
The slow tier (``-m slow``) adds 3 more (the second pmf of two prior-recovery tests,
tests/rjmcmc/test_evidence). With the 3 default checks at ``ALPHA_RECOVERY`` below, the
family-wise false-alarm probability of the default tier is at most 21 * 1e-3 + 3 * 1e-2 = 0.051
(union bound). Checks with their own stated per-check threshold are outside this count
(tests/data/test_simulate's 4-SE moment checks, 6.3e-5 each; the 4.5-SE
importance-ratio checks of tests/rjmcmc/test_categorical; the 4.5-SE draw checks of
tests/families/test_families, below 1e-4 each after Bonferroni; the recovery bounds of
tests/families/test_poisson). The must-fail twins assert ``p < ALPHA``: the same threshold, so a
twin that fails as required shows power at this budget.
"""

ALPHA_RECOVERY = 1e-2
"""Family-wise false-alarm rate of a posterior-recovery z-test (posterior means against a known
truth, Bonferroni over all the scalars compared). Looser than ``ALPHA`` because the normal
reference is an approximation (Bernstein–von Mises, or iid jitter with an estimated MCSE), not an
exact null. Used by 3 default checks (tests/inference/test_sampling::test_recovers_sb_truth,
tests/diagnostics/test_relabel::test_relabelled_means_match_truth_within_mcse,
tests/rjmcmc/test_compiled::test_compiled_galaxy_matches_richardson_green) and the slow
tests/rjmcmc/test_galaxy_rg.py.
"""


def bonferroni_z(m: int, alpha: float = ALPHA) -> float:
    """Two-sided normal critical value for ``m`` checks at family-wise error rate ``alpha``.

    Parameters
    ----------
    m : int
        Number of scalar checks sharing the budget.
    alpha : float
        Family-wise false-alarm rate.

    Returns
    -------
    float
        ``Phi^-1(1 - alpha / (2 m))``.
    """
    return float(stats.norm.isf(alpha / (2 * m)))


def assert_mcse_z(error, se, *, alpha: float = ALPHA, what: str = "") -> np.ndarray:
    """Assert ``|error| / se`` below the Bonferroni bound for all scalars at family-wise ``alpha``.

    Parameters
    ----------
    error : array_like
        Estimate minus reference, one entry per scalar checked.
    se : array_like
        Standard error of each entry (the MCSE, or the MCSE and posterior sd in quadrature).
    alpha : float
        Family-wise false-alarm rate over all entries.
    what : str
        Label for the failure message.

    Returns
    -------
    numpy.ndarray
        The z-scores (for further checks or printing).
    """
    error, se = np.asarray(error, float), np.asarray(se, float)
    z = np.abs(error) / se
    crit = bonferroni_z(z.size, alpha)
    assert z.max() < crit, f"{what}: max |z| {z.max():.2f} >= {crit:.2f} (z = {z.ravel()})"
    return z


def chi_square_pvalue(ks, pmf):
    """p-value of the chi-square test of a K chain, thinned to ~1 draw per ESS, against ``pmf``.

    The chain is thinned by ceil(n / ESS), with ESS the smallest ``arviz.ess`` of the visited-K
    indicators, so the kept draws are close to independent. A chain that never leaves one K, or
    visits a K outside the support of ``pmf``, gets p = 0.

    Parameters
    ----------
    ks : numpy.ndarray
        The K chain (values 1..pmf.size).
    pmf : numpy.ndarray
        Target probabilities of K = 1..pmf.size.

    Returns
    -------
    tuple of (float, int)
        The p-value and the thinning.
    """
    import arviz as az

    K_max = pmf.size
    visited = [k for k in range(1, K_max + 1) if 0 < np.mean(ks == k) < 1]
    if not visited:  # the chain never left one K: it cannot reproduce a pmf on several K
        return 0.0, ks.size
    ess = min(az.ess((ks == k).astype(float)[None, :]) for k in visited)
    thin = max(1, int(np.ceil(ks.size / ess)))
    kept = ks[::thin]
    counts = np.bincount(kept, minlength=K_max + 1)[1:]
    expected = pmf * kept.size
    support = expected > 0
    if np.any(counts[~support] > 0):
        return 0.0, thin
    return stats.chisquare(counts[support], expected[support]).pvalue, thin


# --------------------------------------------------------------------------------------------
# reversible-jump prior recovery
# --------------------------------------------------------------------------------------------
N_TUNE, N_DRAWS = 1000, 12000  # RJ prior-recovery chains: tuning and kept iterations
TWIN_DRAWS = 2000
"""Kept iterations of a must-fail twin's chain. A broken move misses p(K) by far: with 2000 draws
the chi-square p-values of the six twins (tests/rjmcmc) were 8.7e-56, 2.4e-91 and 8.9e-68 (dropped
split/merge Jacobian: Gaussian, Richardson–Green, categorical), 2.1e-256 (RG birth without its
density) and 0 (Gaussian and categorical birth without its density: the chain never leaves its
first K), against ALPHA = 1e-3; 12000 draws gave 0 for all six. The passing twins keep N_DRAWS.
"""


def run_prior_chain(
    experts_prior,
    *,
    max_experts=4,
    family="gaussian",
    seed=0,
    p_birth_death=0.5,
    n_draws=N_DRAWS,
):
    """The reversible-jump chain with the likelihood off, exact Gibbs refresh from the prior.

    Returns (ks, prior pmf, move codes, accepted flags) over the ``n_draws`` kept iterations
    (after ``N_TUNE`` tuning iterations).
    """
    from bayesmoe.data import simulate
    from bayesmoe.inference.rjmcmc.step import ReversibleJump
    from bayesmoe.models.random_k import K_VAR, build_random_k_model, slot_prior_draw

    if family == "gaussian":
        X, y, _ = simulate("S-B", n=40, random_seed=seed)
    else:
        X, y, _ = simulate("S-D", n=40, random_seed=seed)
    if family in ("poisson", "negbinomial"):  # counts on the same inputs (likelihood off)
        y = np.random.default_rng(seed).poisson(np.exp(0.5 + 0.5 * X[:, 0]))
    elif family.startswith("student-t"):  # a real response on the same inputs
        y = np.random.default_rng(seed).standard_t(3.0, size=X.shape[0]) + X[:, 0]
    extra = {}
    if family == "binomial":  # successes of 1..5 trials (the birth proposal reads the trials)
        rng = np.random.default_rng(seed)
        extra["trials"] = rng.integers(1, 6, size=len(y))
        y = rng.binomial(extra["trials"], 1.0 / (1.0 + np.exp(-0.5 * X[:, 0])))
    model, info = build_random_k_model(
        X,
        y,
        max_experts=max_experts,
        family=family,
        experts_prior=experts_prior,
        prior_only=True,
        **extra,
    )
    step = ReversibleJump(info=info, model=model, rng=seed + 1, p_birth_death=p_birth_death)
    step.setup_chain(np.random.default_rng(seed + 2), N_TUNE, n_draws)
    rng = np.random.default_rng(seed + 3)
    point = model.initial_point()
    ks, moves, accepted = [], [], []
    for i in range(N_TUNE + n_draws):
        if i == N_TUNE:
            step.stop_tuning()
        point = dict(point)
        point.update(slot_prior_draw(info, rng, size=max_experts))
        point, stats_ = step.step(point)
        if i >= N_TUNE:
            ks.append(int(point[K_VAR]) + 1)
            moves.append(stats_[0]["move"])
            accepted.append(stats_[0]["accepted"])
    return np.array(ks), info.prior_pmf, np.array(moves), np.array(accepted)


# --------------------------------------------------------------------------------------------
# synthetic posteriors (no sampling)
# --------------------------------------------------------------------------------------------
def synthetic_trace(
    preset: str = "S-B", *, random_k: bool = False, seed: int = 0, chains: int = 2, draws: int = 60
) -> xr.DataTree:
    """A trace shaped like bayesmoe.inference.sample's output: the truth plus small noise.

    Draws are truth + N(0, 0.05²) per parameter (sigma multiplied by exp(N(0, 0.05²))), so the
    relabelled-posterior plots and diagnostics have realistic shapes without running NUTS.
    """
    from bayesmoe.data import simulate

    X, y, truth = simulate(preset, n=150, random_seed=seed)
    rng = np.random.default_rng(seed)
    post = {}
    for name, da in truth.data_vars.items():
        shape = (chains, draws, *da.shape)
        noise = 0.05 * rng.standard_normal(shape)
        if name == "sigma2":
            values, name = np.sqrt(da.values) * np.exp(noise), "sigma"
        else:
            values = da.values + noise
        post[name] = (("chain", "draw", *da.dims), values)
    coords = {
        "chain": np.arange(chains),
        "draw": np.arange(draws),
        **{k: v.values for k, v in truth.coords.items()},
    }
    posterior = xr.Dataset(post, coords=coords)
    if random_k:
        k = rng.choice([2, 3, 4], p=[0.2, 0.7, 0.1], size=(chains, draws))
        posterior["n_experts"] = (("chain", "draw"), k)
    stats_ = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    obs = np.arange(len(y))
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": stats_,
            "observed_data": xr.Dataset({"y": ("obs", y)}, coords={"obs": obs}),
            "constant_data": xr.Dataset(
                {"X": (("obs", "feature"), X)},
                coords={"obs": obs, "feature": truth["feature"].values},
            ),
        }
    )
    tree.attrs.update(
        {
            "family": truth.attrs["family"],
            "gate": truth.attrs["gate"],
            "temperature": 1.0,
            "n_experts": int(truth.sizes["expert"]),
            "relabelled": 1,
            "sampler": "synthetic",
            "random_seed": seed,
            "data": f"synthetic draws around the {preset} truth",
        }
    )
    return tree


def jittered_measure(truth, shape, scale, seed):
    """Mixing measures truth + N(0, scale²) per atom parameter (sigma2 times exp(N(0, scale²))),
    with sample dims ("chain", "draw") of the given ``shape``: a Gaussian posterior without
    sampling, in the form bayesmoe.measure.make_measure returns."""
    from bayesmoe.measure import make_measure

    rng = np.random.default_rng(seed)
    t = truth
    return make_measure(
        t.beta0.values + rng.normal(0, scale, shape + (t.sizes["expert"],)),
        t.beta1.values + rng.normal(0, scale, shape + t.beta1.shape),
        t.a.values + rng.normal(0, scale, shape + t.a.shape),
        t.b.values + rng.normal(0, scale, shape + t.b.shape),
        t.sigma2.values * np.exp(rng.normal(0, scale, shape + t.sigma2.shape)),
        sample_dims=("chain", "draw"),
    )


def split_expert(truth, j, frac=0.5):
    """Exact over-fitted copy of the measure ``truth``: expert j split in two atoms (masses frac,
    1 - frac of its weight), the copy appended last."""
    from bayesmoe.measure import make_measure

    K = truth.sizes["expert"]
    idx = list(range(K)) + [j]
    beta0 = truth.beta0.values[idx].copy()
    beta0[j] += np.log(frac)
    beta0[-1] += np.log(1 - frac)
    return make_measure(
        beta0,
        truth.beta1.values[:, idx],
        truth.a.values[:, idx],
        truth.b.values[idx],
        truth.sigma2.values[idx],
    )


def permute_last_axis(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``values`` (C, D, ..., K) permuted by ``q`` (C, D, K): out[..., j] = values[..., q[j]].

    How the synthetic label-switched traces of the relabelling tests are made.
    """
    idx = q.reshape(q.shape[:2] + (1,) * (values.ndim - 3) + q.shape[2:])
    return np.take_along_axis(values, idx, axis=-1)


# --------------------------------------------------------------------------------------------
# flat (numpy/JAX) density option sets
# --------------------------------------------------------------------------------------------
def flat_options() -> list[dict]:
    """Model option sets the flat density covers (every family, with and without covariates,
    both identifiabilities, ordered intercepts, modified and custom gates, offsets, both prior
    sets and ``dirichlet_weights`` alone).

    ``features=0``, ``gate_features`` (0 or "own") and ``offset=True`` are instructions to
    :func:`flat_data`, not model options.
    """
    import pytensor.tensor as pt

    return [
        dict(n_experts=3),
        dict(n_experts=3, identifiability="reference", ordered=True, gate="tanh", temperature=1.5),
        dict(n_experts=1),
        dict(n_experts=2, family="categorical", gate="sigmoid", priors={"gate_slope": 2.5}),
        dict(n_experts=3, family="categorical", identifiability="reference", ordered=True),
        dict(n_experts=2, gate=pt.arctan, priors={"noise": 0.5, "expert_slope": 1.5}),
        dict(n_experts=3, features=0),  # a mixture without covariates
        dict(n_experts=2, family="categorical", features=0, identifiability="reference"),
        dict(n_experts=2, family="poisson", offset=True, ordered=True),
        dict(n_experts=3, family="poisson", gate="tanh", features=0),
        dict(n_experts=3, gate_features="own"),  # the gate's own covariates
        dict(n_experts=2, family="poisson", offset=True, gate_features=0),  # constant weights
        dict(n_experts=2, family="categorical", features=0, gate_features="own"),
        # the Richardson–Green prior set (Dirichlet weights, hierarchical means and precisions)
        dict(n_experts=3, features=0, priors="richardson-green"),
        dict(n_experts=3, priors="richardson-green"),  # with covariates
        dict(n_experts=3, priors="richardson-green", identifiability="reference", ordered=True),
        dict(n_experts=2, priors="richardson-green", gate_features="own"),
        dict(n_experts=1, priors={"scheme": "richardson-green", "precision_shape": 3.0}),
        dict(n_experts=3, family="poisson", priors={"dirichlet_weights": True}),
        dict(n_experts=2, family="binomial", trials=True, gate_features="own"),
        dict(n_experts=2, family="negbinomial", offset=True, priors={"dispersion": 0.7}),
        dict(n_experts=3, family="student-t", ordered=True, priors={"tail": 0.8}),
        dict(n_experts=2, family="student-t(df=4)"),
    ]


def flat_data(opts):
    """(X, y, model options) of a :func:`flat_options` entry: S-B data, n = 120, seed 3; y cut
    into 3 classes for categorical experts, drawn from a two-expert Poisson regression (with a
    random log-exposure when ``offset``) for Poisson and negative binomial experts; ``features=0``
    drops X's columns; ``gate_features`` gives the gate none (0) or two of its own ("own").
    """
    from bayesmoe.data import simulate

    opts = dict(opts)
    X, y, _ = simulate("S-B", n=120, random_seed=3)
    rng = np.random.default_rng(3)
    family = opts.get("family", "gaussian")
    if family == "categorical":
        y = np.digitize(y, np.quantile(y, [0.4, 0.8]))
    elif family in ("poisson", "negbinomial"):
        off = rng.normal(scale=0.3, size=len(y)) if opts.get("offset") else np.zeros(len(y))
        rate = np.where(X[:, 0] > 0, np.exp(1.5 + 0.5 * X[:, 1]), np.exp(0.2 - 0.3 * X[:, 1]))
        y = rng.poisson(rate * np.exp(off))
        opts["offset"] = off if opts.get("offset") else None
    elif family == "binomial":  # successes of 1..9 trials (all 1 without ``trials``)
        t = rng.integers(1, 10, size=len(y)) if opts.get("trials") else np.ones(len(y), int)
        logit = np.where(X[:, 0] > 0, 1.0 + 0.8 * X[:, 1], -0.5 - 0.6 * X[:, 1])
        y = rng.binomial(t, 1.0 / (1.0 + np.exp(-logit)))
        opts["trials"] = t if opts.get("trials") else None
    gate = opts.pop("gate_features", None)
    if gate == 0:  # constant mixing weights
        opts["gate_X"] = np.zeros((len(y), 0))
    elif gate == "own":  # two gate covariates apart from the experts' (one a noisy copy)
        opts["gate_X"] = np.column_stack(
            [X[:, 0] + rng.normal(size=len(y)), rng.normal(size=len(y))]
        )
    if opts.pop("features", None) == 0:
        X = X[:, :0]
    return X, y, opts


# --------------------------------------------------------------------------------------------
# notebooks
# --------------------------------------------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, tmp_path, monkeypatch, draws: int | None = 100, timeout: int = 600):
    """Execute notebooks/<name> in tmp_path with BAYESMOE_NB_DRAWS=draws; return its stream text.

    ``draws=None`` leaves BAYESMOE_NB_DRAWS unset (notebooks that do not read it). Fails the
    calling test if any cell produced an error output. No timing: run times are measured by
    benchmarks/notebooks.py, not asserted by tests.
    """
    import nbformat
    from nbclient import NotebookClient

    if draws is not None:
        monkeypatch.setenv("BAYESMOE_NB_DRAWS", str(draws))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0]
    return "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
