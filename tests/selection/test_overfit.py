"""Over-fitted K in a sweep: the split start and the chain-disagreement warning.

The split start must be a valid NUTS start (finite log density) whose log-likelihood equals the
(K-1) fit's exactly; on a fixed seed where the MM fit of the over-fitted K has near-step gates
(S-B, n = 300, seed 1, K = 4), its log-likelihood at the point NUTS starts from (after the gate
clipping of ``sampling._clip_gate``) is higher than the old MM start's. The disagreement warning
fires on chains in different modes and stays silent on well-mixed ones.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.diagnostics.convergence import ConvergenceWarning
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.inference.nuts.flat_model import flat_model_from_spec
from bayesmoe.inference.nuts.sampling import start_values
from bayesmoe.measure import log_likelihood
from bayesmoe.models.spec import fixed_k_spec
from bayesmoe.selection.overfit import (
    chains_disagree,
    is_overfitted,
    split_start,
    start_log_density,
    sweep_starts,
    warn_overfit_disagreement,
)


@pytest.fixture(scope="module")
def sb300():
    X, y, _ = simulate("S-B", n=300, random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fits = {K: fit_mle(X, y, K, n_starts=10, random_seed=1) for K in (3, 4)}
    return X, y, fits


def _start_loglik(G, X, y, K):
    """Log-likelihood and log density at the point NUTS starts from (gates clipped)."""
    spec = fixed_k_spec(X, y, n_experts=K)
    fm = flat_model_from_spec(spec)
    point, _ = start_values(spec, method=G)
    flat = fm.unconstrain(point)
    return float(np.sum(fm.pointwise(fm.constrain(flat)[0]))), float(fm.logp(flat))


def test_split_start_is_valid_and_beats_the_overfitted_mm_start(sb300):
    X, y, fits = sb300
    new = split_start(fits[3].measure_, X)
    assert new.sizes["expert"] == 4
    # the split keeps the mixture density: log-likelihood equal to the K = 3 fit's (round-off)
    assert float(log_likelihood(new, X, y)) == pytest.approx(fits[3].loglik_, abs=1e-8)
    ll_new, lp_new = _start_loglik(new, X, y, 4)
    ll_old, lp_old = _start_loglik(fits[4].measure_, X, y, 4)
    assert np.isfinite(lp_new) and ll_new == pytest.approx(fits[3].loglik_, abs=1e-6)
    # the old start's near-step gates are clipped to 3 prior sds: its likelihood drops below the
    # split start's (the numbers of this seed: -450.4 against -414.2)
    assert ll_new >= ll_old and lp_new >= lp_old
    # must-fail twin: the unclipped MM fit of K = 4 has the higher likelihood (it chases noise),
    # so the comparison above is about the start NUTS gets, not a tautology
    assert fits[4].loglik_ > ll_new


def test_split_start_arguments():
    X = np.zeros((10, 1))
    with pytest.raises(TypeError, match="`measure` must be a mixing-measure Dataset"):
        split_start({"beta0": 1}, X)
    from bayesmoe.measure import make_measure

    G = make_measure([0.0, 0.0], [[1.0, -1.0]], [[1.0, 0.0]], [0.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"`weight` must be in \(0, 0.5\]; got 0.7"):
        split_start(G, X, weight=0.7)


def test_sweep_starts_split_only_overfitted_k(sb300):
    X, y, fits = sb300

    table = pd.DataFrame({"bic": [900.0, 850.0, 800.0, 805.0]}, index=[1, 2, 3, 4])
    starts, split = sweep_starts(table, {3: fits[3], 4: fits[4]}, X)
    assert split == {4} and starts[3] is fits[3]
    assert starts[4].sizes["expert"] == 4
    assert is_overfitted(table, 4) and not is_overfitted(table, 3)
    # scored by the log density at the NUTS start: the split wins against this seed's
    # near-step MM fit of K = 4 (-457.5 against -534.2)...
    score = start_log_density(X, y)
    starts, split = sweep_starts(table, {3: fits[3], 4: fits[4]}, X, score=score)
    assert split == {4} and score(4, starts[4]) > score(4, fits[4])
    # ...and loses against a start that scores higher (a must-fail twin of the choice)
    starts, split = sweep_starts(
        table, {3: fits[3], 4: fits[4]}, X, score=lambda K, s: 0.0 if s is fits[4] else -1.0
    )
    assert split == set() and starts[4] is fits[4]
    # a K the BIC prefers keeps its MM start
    table.loc[4, "bic"] = 790.0
    starts, split = sweep_starts(table, {3: fits[3], 4: fits[4]}, X)
    assert split == set() and starts[4] is fits[4]


def _trace(loglik):
    ds = xr.Dataset({"y": (("chain", "draw", "obs"), loglik)})
    return xr.DataTree.from_dict({"log_likelihood": ds})


def test_disagreement_warning_fires_on_split_chains_and_not_on_mixed_ones():
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(2, 400, 100)) - 1.0  # total log-lik sd 10 per chain
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert chains_disagree(_trace(ll)) is None
        assert warn_overfit_disagreement(_trace(ll), 5) is False  # silent: well mixed
    ll[1] -= 0.4  # chain 1 sits 40 log-lik units lower: 4 within-chain sds
    found = chains_disagree(_trace(ll))
    assert found is not None and found["spread_sds"] > 3
    with pytest.warns(ConvergenceWarning, match=r"over-fitted K = 5 disagree.*MTM.*p\(K \| y\)"):
        assert warn_overfit_disagreement(_trace(ll), 5) is True


def test_compare_experts_gives_overfitted_k_its_start_and_depth_cap(monkeypatch):
    """What compare_experts hands to ``sample`` per K (the sampler is stopped at the last K)."""
    import bayesmoe.inference.nuts.sampling as sampling
    from bayesmoe.selection.compare import OVERFIT_TREE_DEPTH, compare_experts

    class Reached(Exception):
        pass

    seen = {}

    def fake_sample(X, y, *, n_experts, **opts):
        seen[n_experts] = opts
        if n_experts == 3:
            raise Reached
        return None

    monkeypatch.setattr(sampling, "sample", fake_sample)
    X, y, _ = simulate("S-A", n=400, random_seed=3)  # two experts: K = 3 is over-fitted by BIC
    with pytest.raises(Reached):
        compare_experts(X, y, ks=[2, 3], n_starts=3, random_seed=5, nuts=True, progressbar=False)
    assert "max_treedepth" not in seen[2] and hasattr(seen[2]["init"], "measure_")
    assert seen[3]["max_treedepth"] == OVERFIT_TREE_DEPTH
    # the user's setting wins
    seen.clear()
    with pytest.raises(Reached):
        compare_experts(
            X,
            y,
            ks=[2, 3],
            n_starts=3,
            random_seed=5,
            nuts=True,
            nuts_kwargs={"max_treedepth": 10},
            progressbar=False,
        )
    assert seen[3]["max_treedepth"] == 10
