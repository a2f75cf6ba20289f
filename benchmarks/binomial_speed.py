"""NUTS speed for binomial experts: bayesmoe's compiled path against a hand-written NumPyro model.

A 2-expert binomial MoE (logit link, 1..14 trials per row, gate and experts on 2 covariates; the
truth of tests/families/test_binomial.py), n = 1000, 2 chains x 1000 draws. Each configuration
runs in its own fresh Python process, one after the other, on the same data (simulated once by the
driver and handed over as an .npz file; the reference process never imports bayesmoe). "process
seconds" is the wall time of that process: interpreter, imports, compilation, start point,
sampling and post-processing (for bayesmoe the DataTree a user gets, with its log-likelihood group
and relabelling).

Reference ``numpyro``: what a competent NumPyro user writes with bayesmoe's priors —
ZeroSumNormal(3) gate parameters, Normal(0, 2) expert coefficients on standardised x,
``dist.Binomial(total_count, logits)`` components summed by logsumexp, NumPyro's default init and
float32, 1000 tuning steps, 2 chains in parallel on 2 host devices.

ESS (computed by the driver, outside the timing, the same way for every row): the minimum bulk ESS
(arviz) over label-invariant quantities — the data log-likelihood of each draw and E[y | x] at 5
fixed inputs — so no relabelling enters the comparison. Also: max R-hat of the same quantities and
divergences.

Usage::

    python benchmarks/binomial_speed.py --seeds 1 2
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

N_OBS, K, DRAWS, TUNE, CHAINS = 1000, 2, 1000, 1000, 2


def _worker_numpyro(data: str, seed: int, out: str) -> None:
    import numpyro

    numpyro.set_host_device_count(2)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp
    from numpyro.infer import MCMC, NUTS

    d = np.load(data)
    X, y, t = d["X"], d["y"], d["trials"]
    cx, sx = X.mean(0), X.std(0)
    Xs = np.asarray((X - cx) / sx, np.float32)

    def model(Xs, y, t):
        dim = Xs.shape[1]
        beta0 = numpyro.sample("beta0", dist.ZeroSumNormal(3.0, event_shape=(K,)))
        with numpyro.plate("feature", dim):
            beta1 = numpyro.sample("beta1", dist.ZeroSumNormal(3.0, event_shape=(K,)))
            a = numpyro.sample("a", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        b = numpyro.sample("b", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        log_g = jax.nn.log_softmax(Xs @ beta1 + beta0, axis=-1)
        comp = dist.Binomial(t[:, None], logits=Xs @ a + b).log_prob(y[:, None])
        numpyro.factor("y", logsumexp(log_g + comp, axis=-1).sum())

    mcmc = MCMC(
        NUTS(model),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="parallel",
        progress_bar=False,
    )
    mcmc.run(
        jax.random.PRNGKey(seed),
        Xs,
        jnp.asarray(y, jnp.float32),
        jnp.asarray(t, jnp.float32),
        extra_fields=("diverging",),
    )
    s = {k: np.asarray(v, float) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    beta1 = s["beta1"] / sx[:, None]  # user units (the same map as bayesmoe's)
    a = s["a"] / sx[:, None]
    out_s = {
        "beta1": beta1,
        "beta0": s["beta0"] - np.einsum("d,...dk->...k", cx, beta1),
        "a": a,
        "b": s["b"] - np.einsum("d,...dk->...k", cx, a),
    }
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    np.savez(out, **out_s)
    Path(out + ".json").write_text(json.dumps({"divergences": div}))


def _worker_bayesmoe(data: str, seed: int, out: str) -> None:
    import numpy as np

    from bayesmoe.inference import sample

    d = np.load(data)
    trace = sample(
        d["X"],
        d["y"],
        n_experts=K,
        family="binomial",
        trials=d["trials"],
        draws=DRAWS,
        chains=CHAINS,
        random_seed=seed,
        progressbar=False,
    )
    post = trace.posterior
    s = {
        "beta1": post["beta1"].transpose("chain", "draw", "gate_feature", "expert").values,
        "beta0": post["beta0"].values,
        "a": post["a"].transpose("chain", "draw", "feature", "expert").values,
        "b": post["b"].values,
    }
    np.savez(out, **s)
    info = {"divergences": int(trace.sample_stats["diverging"].sum())}
    info.update({k: trace.attrs[k] for k in ("sampler", "tune") if k in trace.attrs})
    Path(out + ".json").write_text(json.dumps(info, default=str))


def _quantities(s, X, y, t):
    """Label-invariant draws (chain, draw, q): the data log-likelihood and E[y | x] at 5 rows."""
    import numpy as np

    from bayesmoe.measure import conditional_mean, log_likelihood

    p = {**s, "family": "binomial", "gate": "softmax", "temperature": 1.0}
    ll = log_likelihood(p, X, y, trials=t)
    mean = conditional_mean(p, X[:5], trials=t[:5])
    return np.concatenate([ll[..., None], mean], axis=-1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--worker", nargs=4, metavar=("KIND", "DATA", "SEED", "OUT"))
    args = ap.parse_args(argv)
    if args.worker:
        kind, data, seed, out = args.worker
        (_worker_numpyro if kind == "numpyro" else _worker_bayesmoe)(data, int(seed), out)
        return
    import arviz as az
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bayesmoe as bm
    from bayesmoe.measure import measure_from_arrays

    truth = measure_from_arrays(
        [0.0, 0.0],
        [[3.0, -3.0], [0.0, 0.0]],
        {"a": [[0.4, -0.2], [0.8, -0.6]], "b": [1.5, -0.5]},
        family="binomial",
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_OBS, 2))
    t = rng.integers(1, 15, size=N_OBS)
    _, y, _ = bm.data.simulate(truth, X=X, trials=t, random_seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="binomial_speed_"))
    data = str(tmp / "data.npz")
    np.savez(data, X=X, y=y, trials=t)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    rows = []
    for seed in args.seeds:
        for kind in ("numpyro", "bayesmoe"):
            out = str(tmp / f"{kind}-{seed}.npz")
            cmd = [sys.executable, __file__, "--worker", kind, data, str(seed), out]
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            wall = time.perf_counter() - t0
            s = dict(np.load(out))
            q = _quantities(s, X, y, t)
            ess = float(min(az.ess(q[..., j]) for j in range(q.shape[-1])))
            rhat = float(max(az.rhat(q[..., j]) for j in range(q.shape[-1])))
            info = json.loads(Path(out + ".json").read_text())
            rows.append(
                {
                    "config": kind,
                    "seed": seed,
                    "process_s": round(wall, 1),
                    "min_ess": round(ess),
                    "ess_per_s": round(ess / wall, 1),
                    "max_rhat": round(rhat, 3),
                    **info,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    by = {}
    for r in rows:
        by.setdefault(r["seed"], {})[r["config"]] = r
    for seed, pair in by.items():
        if len(pair) == 2:
            ratio = pair["bayesmoe"]["ess_per_s"] / pair["numpyro"]["ess_per_s"]
            print(f"seed {seed}: bayesmoe / numpyro ESS/s = {ratio:.2f}")


if __name__ == "__main__":
    main()
