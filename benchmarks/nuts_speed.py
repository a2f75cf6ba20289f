"""NUTS speed: bayesmoe's sampling paths against two hand-written NumPyro models.

The 3-expert Gaussian MoE on S-B data (n = 1000), 2 chains x 1000 draws. The references tune for
1000 steps; bayesmoe's configurations use their own defaults unless the row says otherwise.
Every configuration runs in its own fresh Python process, one after the other in this script, on
the same data (simulated once by the driver and handed to every process as an .npz file, so no
reference process imports bayesmoe). "process seconds" is the wall time of that process: the
interpreter, imports, compilation, start-point fit, sampling and post-processing (for bayesmoe the
log-likelihood group and relabelling: the DataTree a user gets).

References (what a competent NumPyro user writes; both standardise the data in numpy, NumPyro's
default init and float32, 2 chains in parallel on 2 host devices):

- ``numpyro-mirror``: the same priors as bayesmoe (ZeroSumNormal gate, logsumexp factor);
- ``numpyro-fast``: a reference-expert gate (the last expert's gate parameters fixed at 0,
  Normal(0, 3) on the others), ``MixtureSameFamily`` likelihood, Normal(0, 2) expert coefficients,
  HalfNormal(1) noise sd.

ESS (computed by the driver, outside the timing, the same way for every row): the posterior draws
of the standardised-scale parameters are put in one form — the gate parameters as the sum-to-zero
vector over the K experts (for the reference gate: append the 0 of the last expert and centre; the
same gate) — relabelled with :func:`bayesmoe.diagnostics.relabel` (seed 0), then the minimum bulk
ESS over all scalars. Also reported: max R-hat after relabelling and the number of divergences.

Usage::

    python benchmarks/nuts_speed.py --seeds 1 2 3          # table to stdout + results JSON
    python benchmarks/nuts_speed.py --seeds 1 --configs numpyro-fast bayesmoe
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_OBS, K, DRAWS, TUNE, CHAINS = 1000, 3, 1000, 1000, 2
PARAMS = ["beta0_std", "beta1_std", "a_std", "b_std", "sigma_std"]
HERE = Path(__file__).resolve().parent


# ----- worker side (runs in a fresh process; must not import bayesmoe for the references) -------
def _load(path: str):
    import numpy as np

    d = np.load(path)
    return d["X"], d["y"]


def _standardise(X, y):
    import numpy as np

    Xs = (X - X.mean(0)) / X.std(0)
    ys = (y - y.mean()) / y.std()
    return np.asarray(Xs, np.float32), np.asarray(ys, np.float32)


def _run_numpyro(model, Xs, ys, seed):
    import jax
    import numpy as np
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(
        NUTS(model),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="parallel",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), Xs, ys, extra_fields=("diverging",))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return samples, div


def _worker_numpyro_mirror(data: str, seed: int) -> dict:
    import numpyro
    import numpyro.distributions as dist
    from jax.nn import log_softmax
    from jax.scipy.special import logsumexp

    X, y = _load(data)
    Xs, ys = _standardise(X, y)
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

    samples, div = _run_numpyro(model, Xs, ys, seed)
    return {"samples": samples, "divergences": div}


def _worker_numpyro_fast(data: str, seed: int) -> dict:
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    X, y = _load(data)
    Xs, ys = _standardise(X, y)
    n, d = Xs.shape

    def model(Xs, ys):
        beta0 = numpyro.sample("beta0", dist.Normal(0.0, 3.0).expand([K - 1]).to_event(1))
        beta1 = numpyro.sample("beta1", dist.Normal(0.0, 3.0).expand([d, K - 1]).to_event(2))
        a = numpyro.sample("a", dist.Normal(0.0, 2.0).expand([d, K]).to_event(2))
        b = numpyro.sample("b", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0).expand([K]).to_event(1))
        logits = jnp.concatenate([Xs @ beta1 + beta0, jnp.zeros((n, 1))], axis=-1)
        mix = dist.MixtureSameFamily(
            dist.Categorical(logits=logits), dist.Normal(Xs @ a + b, sigma)
        )
        with numpyro.plate("obs", n):
            numpyro.sample("y", mix, obs=ys)

    s, div = _run_numpyro(model, Xs, ys, seed)
    zero0 = np.zeros(s["beta0"].shape[:-1] + (1,))
    zero1 = np.zeros(s["beta1"].shape[:-1] + (1,))
    samples = {
        "beta0_std": np.concatenate([s["beta0"], zero0], -1),
        "beta1_std": np.concatenate([s["beta1"], zero1], -1),
        "a_std": s["a"],
        "b_std": s["b"],
        "sigma_std": s["sigma"],
    }
    return {"samples": samples, "divergences": div}


def _worker_bayesmoe(
    data: str, seed: int, backend: str, tune, kwargs: dict, progressbar: bool = False
) -> dict:
    import numpy as np

    from bayesmoe.inference import sample

    X, y = _load(data)
    trace = sample(
        X,
        y,
        n_experts=K,
        draws=DRAWS,
        tune=tune,
        chains=CHAINS,
        backend=backend,
        random_seed=seed,
        progressbar=progressbar,
        **kwargs,
    )
    post = trace.posterior
    samples = {k: post[k].values for k in PARAMS}
    div = int(trace.sample_stats["diverging"].sum())
    attrs = {
        k: trace.attrs[k]
        for k in (
            "sampler",
            "tune",
            "seconds_init",
            "seconds_sampling",
            "mass_matrix",
            "chain_method",
            "seconds_mass_matrix",
            "seconds_log_likelihood",
        )
        if k in trace.attrs
    }
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}
    return {"samples": samples, "divergences": div, "attrs": attrs}


def _worker(spec: dict, data: str, seed: int, out: str) -> None:
    import numpy as np

    kind = spec["kind"]
    if kind == "numpyro-mirror":
        res = _worker_numpyro_mirror(data, seed)
    elif kind == "numpyro-fast":
        res = _worker_numpyro_fast(data, seed)
    else:
        res = _worker_bayesmoe(
            data,
            seed,
            spec.get("backend", "auto"),
            spec.get("tune"),
            spec.get("kwargs", {}),
            spec.get("progressbar", False),
        )
    np.savez(out, **res.pop("samples"))
    Path(out + ".json").write_text(json.dumps(res))


# ----- driver side --------------------------------------------------------------------------------
#: name -> spec; "cold": fresh PyTensor compile dir and empty JAX cache; "jax_cache": off / warm
CONFIGS = {
    "numpyro-mirror": {
        "kind": "numpyro-mirror",
        "note": "hand-written NumPyro, bayesmoe's priors, default init, 1000 tune",
    },
    "numpyro-fast": {
        "kind": "numpyro-fast",
        "note": "hand-written NumPyro, reference gate + MixtureSameFamily, 1000 tune",
    },
    "bayesmoe": {
        "kind": "bayesmoe",
        "note": "default path (auto -> jax: MM start, Hessian mass matrix, tune 300), "
        "warm JAX cache",
    },
    "bayesmoe-gate-scaled-slopes": {
        "kind": "bayesmoe",
        "kwargs": {"reparam": "gate-scaled-slopes", "target_accept": 0.9},
        "note": "default path with reparam='gate-scaled-slopes' and target_accept=0.9 (issue "
        "24's min-ESS spread), warm JAX cache",
    },
    "bayesmoe-cold": {
        "kind": "bayesmoe",
        "cold": True,
        "note": "default path, first run on a new machine (empty PyTensor and JAX caches)",
    },
    "bayesmoe-bar": {
        "kind": "bayesmoe",
        "progressbar": True,
        "note": "default path with its progress bar on (the user's default), warm",
    },
    "bayesmoe-nocache": {
        "kind": "bayesmoe",
        "env": {"BAYESMOE_JAX_CACHE": "off"},
        "note": "default path, JAX persistent cache off (compiles every process)",
    },
    "jax-tune1000-identity": {
        "kind": "bayesmoe",
        "backend": "jax",
        "tune": 1000,
        "kwargs": {"dense_mass": False, "init_mass": "identity"},
        "note": "jax backend, MM start, identity diag mass, tune 1000",
    },
    "jax-tune1000": {
        "kind": "bayesmoe",
        "backend": "jax",
        "tune": 1000,
        "note": "jax backend, MM start, Hessian dense mass, tune 1000",
    },
    "jax-tune200": {
        "kind": "bayesmoe",
        "backend": "jax",
        "tune": 200,
        "note": "jax backend, MM start, Hessian dense mass, tune 200",
    },
    "jax-fixed-mass": {
        "kind": "bayesmoe",
        "backend": "jax",
        "tune": 200,
        "kwargs": {"adapt_mass_matrix": False},
        "note": "jax backend, Hessian dense mass kept fixed, step size tuned 200",
    },
    "pymc": {
        "kind": "bayesmoe",
        "backend": "pymc",
        "tune": 1000,
        "note": "old default: MM start + PyMC NUTS (Numba), warm PyTensor cache",
    },
    "pymc-cold": {
        "kind": "bayesmoe",
        "backend": "pymc",
        "tune": 1000,
        "cold": True,
        "note": "old default, empty PyTensor cache",
    },
}
DEFAULT_CONFIGS = [
    "numpyro-mirror",
    "numpyro-fast",
    "bayesmoe",
    "bayesmoe-cold",
    "bayesmoe-nocache",
    "jax-tune1000-identity",
    "jax-tune1000",
    "jax-tune200",
    "pymc",
    "pymc-cold",
]
REFERENCES = ("numpyro-mirror", "numpyro-fast")


def _summarise(npz: str) -> dict:
    import arviz as az
    import numpy as np
    import xarray as xr
    from scipy.special import softmax

    from bayesmoe.diagnostics import relabel

    s = np.load(npz)
    dims = {
        "beta0_std": ["expert"],
        "beta1_std": ["feature", "expert"],
        "a_std": ["feature", "expert"],
        "b_std": ["expert"],
        "sigma_std": ["expert"],
    }
    post = xr.Dataset({k: (["chain", "draw", *dims[k]], s[k]) for k in PARAMS})
    for k in ("beta0_std", "beta1_std"):  # one form of the gate: sum-to-zero over experts
        post[k] = post[k] - post[k].mean("expert")
    ds = relabel(post, var_names=PARAMS, random_seed=0)
    ess = az.ess(ds[PARAMS], method="bulk")
    rhat = az.rhat(ds[PARAMS])
    worst = min(PARAMS, key=lambda v: float(ess[v].min()))
    where = ess[worst].argmin(...)  # the scalar of that variable with the smallest ESS
    return {
        "min_ess_bulk": float(min(float(ess[v].min()) for v in PARAMS)),
        "max_rhat": float(max(float(rhat[v].max()) for v in PARAMS)),
        "slowest": f"{worst}[{', '.join(str(int(i)) for i in where.values())}]",
        # each relabelled expert's mean gate weight at the covariates' mean (standardised: 0)
        "weights": [float(w) for w in softmax(ds["beta0_std"].values, -1).mean((0, 1))],
    }


def _run_config(name: str, seed: int, data: str, workdir: Path) -> dict:
    spec = CONFIGS[name]
    env = dict(os.environ)
    # two host devices so that JAX runs the 2 chains in parallel, as PyMC does with 2 cores
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env.update(spec.get("env", {}))
    tmp = None
    if spec.get("cold"):
        tmp = tempfile.mkdtemp(prefix="nuts-speed-cold-")
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp}/pytensor"
        env["NUMBA_CACHE_DIR"] = f"{tmp}/numba"
        env["BAYESMOE_JAX_CACHE"] = f"{tmp}/jax"
    out = str(workdir / f"{name}-{seed}.npz")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            json.dumps(spec),
            "--data",
            data,
            "--seed",
            str(seed),
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{res.stderr[-3000:]}")
    row = json.loads(Path(out + ".json").read_text())
    row.update(
        _summarise(out),
        name=name,
        seed=seed,
        process_seconds=wall,
        load_1min=load,
        note=spec["note"],
    )
    row["ess_per_process_second"] = row["min_ess_bulk"] / wall
    return row


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("pymc", "pytensor", "jax", "numpyro", "numpy")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker")
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--json", default=str(HERE / "results" / "nuts_speed.json"))
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker), args.data, args.seed, args.out)
        return
    import numpy as np

    from bayesmoe.data import simulate

    configs = [c for c in args.configs]
    for ref in REFERENCES[::-1]:
        if ref not in configs:
            configs.insert(0, ref)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {_versions()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nuts-speed-") as wd:
        workdir = Path(wd)
        if any(
            CONFIGS[c]["kind"] == "bayesmoe"
            and not CONFIGS[c].get("cold")
            and "env" not in CONFIGS[c]
            for c in configs
        ):
            # warm the JAX cache of the default path once (not timed; the cold row measures the
            # first-ever run)
            X, y, _ = simulate("S-B", n=N_OBS, random_seed=0)
            np.savez(workdir / "warm.npz", X=X, y=y)
            warm = [c for c in configs if CONFIGS[c].get("kwargs") and "backend" not in CONFIGS[c]]
            for name in ["bayesmoe", *warm]:
                _run_config(name, 0, str(workdir / "warm.npz"), workdir)
        for seed in args.seeds:
            X, y, _ = simulate("S-B", n=N_OBS, random_seed=seed)
            data = str(workdir / f"data-{seed}.npz")
            np.savez(data, X=X, y=y)
            for name in configs:
                row = _run_config(name, seed, data, workdir)
                rows.append(row)
                print(
                    f"{name:<24} seed {seed}: ESS {row['min_ess_bulk']:6.0f}  R-hat "
                    f"{row['max_rhat']:.3f}  div {row['divergences']}  process "
                    f"{row['process_seconds']:5.1f} s  load {row['load_1min']:.1f}",
                    flush=True,
                )
    ref = {(r["name"], r["seed"]): r for r in rows if r["name"] in REFERENCES}
    print(
        "\n| configuration | seed | min bulk ESS | max R-hat | div. | process s | ESS/s "
        "| × mirror | × fast | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratios = [
            r["ess_per_process_second"] / ref[(n, r["seed"])]["ess_per_process_second"]
            for n in REFERENCES
        ]
        r["ratio_mirror"], r["ratio_fast"] = ratios
        print(
            f"| {r['name']} | {r['seed']} | {r['min_ess_bulk']:.0f} | {r['max_rhat']:.3f} "
            f"| {r['divergences']} | {r['process_seconds']:.1f} "
            f"| {r['ess_per_process_second']:.1f} | {ratios[0]:.2f} | {ratios[1]:.2f} "
            f"| {r['load_1min']:.1f} |"
        )
    print("\ngeometric mean over seeds (× mirror, × fast; min over seeds):")
    for name in configs:
        rs = [r for r in rows if r["name"] == name]
        gm = [
            float(np.exp(np.mean(np.log([r[k] for r in rs]))))
            for k in ("ratio_mirror", "ratio_fast")
        ]
        mn = [min(r[k] for r in rs) for k in ("ratio_mirror", "ratio_fast")]
        print(f"| {name} | {gm[0]:.2f} (min {mn[0]:.2f}) | {gm[1]:.2f} (min {mn[1]:.2f}) |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"versions": _versions(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
