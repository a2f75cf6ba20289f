"""Report fixtures: a synthetic posterior (no sampling) and a small MLE study run in-process."""

import numpy as np
import pytest
import xarray as xr


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
    stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
        coords={"chain": coords["chain"], "draw": coords["draw"]},
    )
    obs = np.arange(len(y))
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": stats,
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


@pytest.fixture(scope="session")
def fit_report(tmp_path_factory):
    """A fit folder with trace.nc and report.html written by write_report."""
    from bayesmoe.report import write_report

    folder = tmp_path_factory.mktemp("fit")
    synthetic_trace().to_netcdf(folder / "trace.nc", engine="h5netcdf")
    return write_report(folder)


@pytest.fixture(scope="session")
def study_report(tmp_path_factory):
    """A 2 n × 2 replicates × 2 K MLE study run in-process (run_task) and its report."""
    from bayesmoe.report import write_report
    from bayesmoe.study import StudyStore, parse_spec, run_task

    folder = tmp_path_factory.mktemp("study")
    spec = parse_spec(
        {
            "study": {"name": "mini", "seed": 4},
            "data": {"source": "simulate", "preset": "S-B"},
            "model": {},
            "inference": {"method": "mle", "n_starts": 3},
            "grid": {"n": [150, 600], "replicate": 2, "n_experts": [2, 3]},
        }
    )
    store = StudyStore(folder)
    store.write_spec(spec.to_dict())
    for t in spec.tasks():
        rec = run_task(t.to_dict(), str(folder))
        assert rec["status"] == "done", rec.get("error")
    # one task with a posterior: a fit page with plots is linked from the study page too
    tdir = store.task_dir("n150-rep0-K3")
    synthetic_trace().to_netcdf(tdir / "trace.nc", engine="h5netcdf")
    import json

    rec = json.loads((tdir / "metrics.json").read_text())
    rec["result_file"] = "trace.nc"
    (tdir / "metrics.json").write_text(json.dumps(rec))
    return write_report(folder)
