"""Per-task metrics: relabelled convergence diagnostics, posterior-mean distances to the truth."""

import numpy as np
import pytest
import xarray as xr

from bayesmoe.data import simulate
from bayesmoe.diagnostics import mixing_measure
from bayesmoe.diagnostics.hellinger import expected_hellinger
from bayesmoe.diagnostics.voronoi import voronoi_loss
from bayesmoe.study.metrics import mle_metrics, thin_draws, trace_metrics, truth_distances
from tests.helpers import synthetic_trace


def _switch_labels(trace: xr.DataTree) -> xr.DataTree:
    """Chain 1 with experts 0 and 2 swapped: the label switching NUTS can produce."""
    post = trace["posterior"].to_dataset()
    perm = np.array([2, 1, 0])
    swapped = {}
    for name, da in post.data_vars.items():
        if "expert" in da.dims:
            c1 = da.isel(chain=1).isel(expert=perm).assign_coords(expert=da["expert"].values)
            da = xr.concat([da.isel(chain=[0]), c1.expand_dims(chain=[1])], dim="chain")
        swapped[name] = da
    out = trace.copy()
    out["posterior"] = xr.Dataset(swapped)
    out.attrs = {k: v for k, v in trace.attrs.items() if k != "relabelled"}
    return out


def test_trace_metrics_relabel_a_switched_trace():
    trace = _switch_labels(synthetic_trace(seed=5, draws=200))
    m = trace_metrics(trace)
    # i.i.d. draws around one point: R-hat near 1 once relabelled (1.05 is far above the
    # ~1.01 sampling spread of R-hat for 2 chains x 200 i.i.d. draws)
    assert m["max_rhat"] < 1.05
    assert m["min_ess_bulk"] > 100 and m["divergences"] == 0 and m["n_draws"] == 400
    # the control: the same trace declared relabelled is not repaired, and R-hat shows it
    trace.attrs["relabelled"] = 1
    assert trace_metrics(trace)["max_rhat"] > 1.5


def test_truth_distances_are_posterior_means_over_thinned_draws():
    trace = synthetic_trace(seed=6, draws=300)  # 600 draws -> thinned to 100 per chain
    X, _, truth = simulate("S-B", n=150, random_seed=6)
    m = trace_metrics(trace, truth=truth, X=X, max_draws=200, n_eval=100)
    G = thin_draws(mixing_measure(trace), 200)
    assert G.sizes["chain"] * G.sizes["draw"] == 200
    np.testing.assert_allclose(m["voronoi_loss"], float(voronoi_loss(G, truth).mean()), rtol=1e-12)
    np.testing.assert_allclose(
        m["hellinger"], float(expected_hellinger(G, truth, X[:100]).mean()), rtol=1e-12
    )
    assert m["voronoi_kind"] == "D1" and m["metrics_missing"] == ""
    # a posterior further from the truth is further by both distances
    far = trace.copy()
    far["posterior"] = trace["posterior"].to_dataset().assign(a=trace["posterior"]["a"] + 0.5)
    m_far = trace_metrics(far, truth=truth, X=X, max_draws=200, n_eval=100)
    assert m_far["voronoi_loss"] > m["voronoi_loss"] and m_far["hellinger"] > m["hellinger"]


def test_overfitted_measure_uses_d2():
    from bayesmoe.inference.mle.mm import fit_mle

    X, y, truth = simulate("S-B", n=300, random_seed=0)
    m = mle_metrics(fit_mle(X, y, 4, n_starts=2, random_seed=0), truth=truth, X=X)
    assert m["voronoi_kind"] == "D2"
    assert set(m) >= {"loglik", "bic", "aic", "icl", "converged", "hellinger"}
    assert truth_distances(truth, truth, X)["voronoi_loss"] == 0.0


def test_input_errors():
    with pytest.raises(TypeError, match="DataTree with a 'posterior'"):
        trace_metrics(xr.Dataset())
    with pytest.raises(ValueError, match="`X` is needed"):
        trace_metrics(synthetic_trace(), truth=simulate("S-B", 10, random_seed=0)[2])
    with pytest.raises(ValueError, match="`max_draws`"):
        thin_draws(xr.Dataset(), 0)
    with pytest.raises(TypeError, match="MMResult"):
        mle_metrics(object())
