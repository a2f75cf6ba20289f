"""NUTS speed: bayesmoe's backends against a hand-written NumPyro model of the same likelihood.

The 3-expert Gaussian MoE on S-B data (n = 1000), 2 chains x 1000 draws after 1000 tuning steps.
Every configuration runs in its own fresh Python process (so "whole process" includes imports,
compilation, the start-point fit and post-processing), one after the other in this script, on the
same data and priors. Reported per configuration:

- min bulk ESS over the standardised-scale parameters (beta0_std, beta1_std, a_std, b_std,
  sigma_std) after relabelling the experts (the same relabelling for every configuration);
- ESS per second of sampling, and ESS per second of the whole process;
- the ratio of each to the hand-written NumPyro reference.

Usage::

    python benchmarks/nuts_speed.py                 # all configurations, table to stdout + JSON
    python benchmarks/nuts_speed.py --seeds 1 2     # repeat over data/sampler seeds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_OBS, K, DRAWS, TUNE, CHAINS = 1000, 3, 1000, 1000, 2
PARAMS = ["beta0_std", "beta1_std", "a_std", "b_std", "sigma_std"]
HERE = Path(__file__).resolve().parent


# ----- worker side ---------------------------------------------------------------------------------
def _min_relabelled_ess(post) -> float:
    import arviz as az

    from bayesmoe.diagnostics import relabel

    ds = relabel(post[PARAMS], var_names=PARAMS, random_seed=0)
    ess = az.ess(ds[PARAMS], method="bulk")
    return float(min(float(ess[v].min()) for v in PARAMS))


def _worker_bayesmoe(backend: str, seed: int) -> dict:
    from bayesmoe.data import simulate
    from bayesmoe.inference import sample

    X, y, _ = simulate("S-B", n=N_OBS, random_seed=seed)
    trace = sample(X, y, n_experts=K, draws=DRAWS, tune=TUNE, chains=CHAINS, backend=backend,
                   random_seed=seed, progressbar=False, relabel=False)
    post = trace.posterior.to_dataset()
    div = int(trace.sample_stats["diverging"].sum()) if "diverging" in trace.sample_stats else -1
    return {"sampling_seconds": trace.attrs["seconds_sampling"],
            "init_seconds": trace.attrs["seconds_init"],
            "min_ess_bulk": _min_relabelled_ess(post), "divergences": div}


def _worker_numpyro_reference(seed: int) -> dict:
    """The same model hand-written in NumPyro (standardised data, same priors), default init."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    import xarray as xr
    from jax.nn import log_softmax
    from jax.scipy.special import logsumexp
    from numpyro.infer import MCMC, NUTS

    from bayesmoe.data import simulate
    from bayesmoe.scaling import Standardizer

    X, y, _ = simulate("S-B", n=N_OBS, random_seed=seed)
    st = Standardizer.from_data(X, y)
    Xs, ys = jnp.asarray(st.transform_X(X)), jnp.asarray(st.transform_y(y))
    d = Xs.shape[1]

    def model(Xs, ys):
        beta0 = numpyro.sample("beta0_std", dist.ZeroSumNormal(3.0, event_shape=(K,)))
        with numpyro.plate("feature", d):
            beta1 = numpyro.sample("beta1_std", dist.ZeroSumNormal(3.0, event_shape=(K,)))
            a = numpyro.sample("a_std", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        b = numpyro.sample("b_std", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        sigma = numpyro.sample("sigma_std", dist.HalfNormal(1.0).expand([K]).to_event(1))
        log_g = log_softmax(Xs @ beta1 + beta0, axis=-1)
        comp = dist.Normal(Xs @ a + b, sigma).log_prob(ys[:, None])
        numpyro.factor("y", logsumexp(log_g + comp, axis=-1).sum())

    mcmc = MCMC(NUTS(model), num_warmup=TUNE, num_samples=DRAWS, num_chains=CHAINS,
                chain_method="parallel", progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), Xs, ys)
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    seconds = time.perf_counter() - t0
    dims = {"beta0_std": ["expert"], "beta1_std": ["feature", "expert"],
            "a_std": ["feature", "expert"], "b_std": ["expert"], "sigma_std": ["expert"]}
    post = xr.Dataset({k: (["chain", "draw", *dims[k]], samples[k]) for k in PARAMS})
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return {"sampling_seconds": seconds, "init_seconds": 0.0,
            "min_ess_bulk": _min_relabelled_ess(post), "divergences": div}


def _worker(name: str, seed: int) -> dict:
    if name == "numpyro-reference":
        return _worker_numpyro_reference(seed)
    return _worker_bayesmoe(name.split(":")[1], seed)


# ----- driver side ---------------------------------------------------------------------------------
CONFIGS = [
    # (name, extra environment, note)
    ("numpyro-reference", {}, "hand-written NumPyro model, default init"),
    ("bayesmoe:pymc", {}, "default path: MM start + PyMC NUTS (Numba), warm compile cache"),
    ("bayesmoe:pymc", {"COLD": "1"}, "as above, empty compile cache"),
    ("bayesmoe:nutpie", {}, "MM start + nutpie (Numba)"),
    ("bayesmoe:numpyro", {}, "MM start + PyMC's NumPyro backend (JAX)"),
]


def _run_config(name: str, env_extra: dict, seed: int) -> dict:
    env = dict(os.environ)
    # two host devices so that JAX runs the 2 chains in parallel, as PyMC and nutpie do
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    tmp = None
    if env_extra.get("COLD"):
        tmp = tempfile.mkdtemp(prefix="pytensor-cold-")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}"
        env["NUMBA_CACHE_DIR"] = tmp
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, "--worker", name, "--seed", str(seed)],
                         capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out.update(name=name + (" (cold cache)" if tmp else ""), seed=seed, process_seconds=wall)
    out["ess_per_sampling_second"] = out["min_ess_bulk"] / out["sampling_seconds"]
    out["ess_per_process_second"] = out["min_ess_bulk"] / wall
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--json", default=str(HERE / "results" / "nuts_speed.json"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.seed)))
        return
    rows = []
    for seed in args.seeds:
        for name, env_extra, note in CONFIGS:
            row = _run_config(name, env_extra, seed)
            row["note"] = note
            rows.append(row)
            print(f"{row['name']:<28} seed {seed}: ESS {row['min_ess_bulk']:7.0f}  sampling "
                  f"{row['sampling_seconds']:6.1f} s  process {row['process_seconds']:6.1f} s",
                  flush=True)
    ref = {r["seed"]: r for r in rows if r["name"] == "numpyro-reference"}
    print("\n| configuration | seed | min bulk ESS | sampling s | process s | ESS/s sampling "
          "| ESS/s process | × ref (sampling) | × ref (process) | divergences |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rr = ref[r["seed"]]
        print(f"| {r['name']} | {r['seed']} | {r['min_ess_bulk']:.0f} | {r['sampling_seconds']:.1f} "
              f"| {r['process_seconds']:.1f} | {r['ess_per_sampling_second']:.1f} "
              f"| {r['ess_per_process_second']:.1f} "
              f"| {r['ess_per_sampling_second'] / rr['ess_per_sampling_second']:.2f} "
              f"| {r['ess_per_process_second'] / rr['ess_per_process_second']:.2f} "
              f"| {r['divergences']} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
