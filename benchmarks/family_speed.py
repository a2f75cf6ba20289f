"""NUTS speed per expert family: bayesmoe's compiled path against a hand-written NumPyro model.

A 2-expert MoE of one family (``--family binomial | negbinomial | student-t``; gate and experts on
2 covariates; the truth of tests/families/test_<family>.py), n = 1000, 2 chains x 1000 draws.
Binomial rows have 1..14 trials per row. Each configuration runs in its own fresh Python process,
one after the other, on the same data (simulated once by the driver and handed over as an .npz
file; the reference process never imports bayesmoe). "process seconds" is the wall time of that
process: interpreter, imports, compilation, start point, sampling and post-processing (for
bayesmoe the DataTree a user gets, with its log-likelihood group and relabelling).

Reference ``numpyro``: what a competent NumPyro user writes with bayesmoe's priors and
standardisation — ZeroSumNormal(3) gate parameters, Normal(0, 2) expert coefficients on
standardised x, the family's own parameter with bayesmoe's prior (negative binomial:
``sqrt(alpha) ~ HalfNormal(1)`` with the log link centred at the log of the mean count; Student-t:
``sqrt(2 / nu) ~ HalfNormal(0.5)`` and ``sigma ~ HalfNormal(1)`` on y standardised by its mean and
sd), NumPyro's own distributions (``Binomial``, ``NegativeBinomial2``, ``StudentT``) summed over
experts by logsumexp, NumPyro's default init and float32, 1000 tuning steps, 2 chains in parallel
on 2 host devices. ``numpyro64`` (``--kinds``): the same model in float64 (``numpyro.enable_x64``).

ESS (computed by the driver, outside the timing, the same way for every row): the minimum bulk ESS
(arviz) over label-invariant quantities — the data log-likelihood of each draw and E[y | x] at 5
fixed inputs — so no relabelling enters the comparison. Also: max R-hat of the same quantities and
divergences.

Usage::

    python benchmarks/family_speed.py --family negbinomial --seeds 1 2
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
GATE = {"beta0": [0.0, 0.0], "beta1": [[3.0, -3.0], [0.0, 0.0]]}
#: the experts of the truth, per family (tests/families/test_<family>.py)
EXPERTS = {
    "binomial": {"a": [[0.4, -0.2], [0.8, -0.6]], "b": [1.5, -0.5]},
    "negbinomial": {"a": [[0.1, -0.2], [0.5, -0.4]], "b": [1.5, 0.8], "alpha": [0.5, 0.1]},
    "student-t": {
        "a": [[1.0, -0.5], [0.5, 0.4]],
        "b": [1.5, -1.0],
        "sigma2": [0.25, 1.0],
        "nu": [3.0, 30.0],
    },
}


def _worker_numpyro(family: str, data: str, seed: int, out: str, x64: bool = False) -> None:
    import numpyro

    numpyro.set_host_device_count(2)
    if x64:
        numpyro.enable_x64()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp
    from numpyro.infer import MCMC, NUTS

    d = np.load(data)
    X, y = d["X"], d["y"].astype(float)
    cx, sx = X.mean(0), X.std(0)
    real = np.float64 if x64 else np.float32
    Xs = np.asarray((X - cx) / sx, real)
    # the response's centre and scale, as bayesmoe standardises it (1 and 0 where it does not)
    yc, ys = {"negbinomial": (np.log(y.mean()), 1.0), "student-t": (y.mean(), y.std())}.get(
        family, (0.0, 1.0)
    )
    y_fit = (y - yc) / ys if family == "student-t" else y

    def experts(Xs, y, t):
        """log p_k(y_i | x_i), (n, K), on the standardised scale."""
        a = numpyro.sample("a", dist.Normal(0.0, 2.0).expand([Xs.shape[1], K]).to_event(2))
        b = numpyro.sample("b", dist.Normal(0.0, 2.0).expand([K]).to_event(1))
        eta = Xs @ a + b
        if family == "binomial":
            return dist.Binomial(t[:, None], logits=eta).log_prob(y[:, None])
        if family == "negbinomial":
            kappa = numpyro.sample("kappa", dist.HalfNormal(1.0).expand([K]).to_event(1))
            mean = jnp.exp(yc + eta)
            return dist.NegativeBinomial2(mean, 1.0 / kappa**2).log_prob(y[:, None])
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0).expand([K]).to_event(1))
        c = numpyro.sample("tail", dist.HalfNormal(0.5).expand([K]).to_event(1))
        return dist.StudentT(2.0 / c**2, eta, sigma).log_prob(y[:, None])

    def model(Xs, y, t):
        dim = Xs.shape[1]
        beta0 = numpyro.sample("beta0", dist.ZeroSumNormal(3.0, event_shape=(K,)))
        with numpyro.plate("feature", dim):
            beta1 = numpyro.sample("beta1", dist.ZeroSumNormal(3.0, event_shape=(K,)))
        log_g = jax.nn.log_softmax(Xs @ beta1 + beta0, axis=-1)
        numpyro.factor("y", logsumexp(log_g + experts(Xs, y, t), axis=-1).sum())

    mcmc = MCMC(
        NUTS(model),
        num_warmup=TUNE,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="parallel",
        progress_bar=False,
    )
    t = d["trials"] if "trials" in d else np.ones_like(y)
    mcmc.run(
        jax.random.PRNGKey(seed),
        Xs,
        jnp.asarray(y_fit, real),
        jnp.asarray(t, real),
        extra_fields=("diverging",),
    )
    s = {k: np.asarray(v, float) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    beta1 = s["beta1"] / sx[:, None]  # user units (the same maps as bayesmoe's)
    a = s["a"] * ys / sx[:, None]
    out_s = {
        "beta1": beta1,
        "beta0": s["beta0"] - np.einsum("d,...dk->...k", cx, beta1),
        "a": a,
        "b": yc + ys * s["b"] - np.einsum("d,...dk->...k", cx, a),
    }
    if family == "negbinomial":
        out_s["alpha"] = s["kappa"] ** 2
    if family == "student-t":
        out_s["sigma2"] = (ys * s["sigma"]) ** 2
        out_s["nu"] = 2.0 / s["tail"] ** 2
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    np.savez(out, **out_s)
    Path(out + ".json").write_text(json.dumps({"divergences": div}))


def _worker_bayesmoe(family: str, data: str, seed: int, out: str) -> None:
    import numpy as np

    from bayesmoe.inference import sample

    d = np.load(data)
    extra = {"trials": d["trials"]} if "trials" in d else {}
    trace = sample(
        d["X"],
        d["y"],
        n_experts=K,
        family=family,
        draws=DRAWS,
        chains=CHAINS,
        random_seed=seed,
        progressbar=False,
        **extra,
    )
    post = trace.posterior
    s = {
        "beta1": post["beta1"].transpose("chain", "draw", "gate_feature", "expert").values,
        "beta0": post["beta0"].values,
        "a": post["a"].transpose("chain", "draw", "feature", "expert").values,
        "b": post["b"].values,
    }
    if family == "negbinomial":
        s["alpha"] = post["alpha"].values
    if family == "student-t":
        s["sigma2"] = post["sigma"].values ** 2
        s["nu"] = post["nu"].values
    np.savez(out, **s)
    info = {"divergences": int(trace.sample_stats["diverging"].sum())}
    info.update({k: trace.attrs[k] for k in ("sampler", "tune") if k in trace.attrs})
    Path(out + ".json").write_text(json.dumps(info, default=str))


def _quantities(s, family, X, y, extra):
    """Label-invariant draws (chain, draw, q): the data log-likelihood and E[y | x] at 5 rows."""
    import numpy as np

    from bayesmoe.measure import conditional_mean, log_likelihood

    p = {**s, "family": family, "gate": "softmax", "temperature": 1.0}
    ll = log_likelihood(p, X, y, **extra)
    mean = conditional_mean(p, X[:5], **{k: v[:5] for k, v in extra.items()})
    return np.concatenate([ll[..., None], mean], axis=-1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", choices=sorted(EXPERTS), default="binomial")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument(
        "--kinds",
        nargs="+",
        choices=("numpyro", "numpyro64", "bayesmoe"),
        default=["numpyro", "bayesmoe"],
        help="configurations, run in this order per seed (numpyro64: the reference in float64)",
    )
    ap.add_argument("--worker", nargs=5, metavar=("KIND", "FAMILY", "DATA", "SEED", "OUT"))
    args = ap.parse_args(argv)
    if args.worker:
        kind, family, data, seed, out = args.worker
        if kind == "bayesmoe":
            _worker_bayesmoe(family, data, int(seed), out)
        else:
            _worker_numpyro(family, data, int(seed), out, x64=kind == "numpyro64")
        return
    import arviz as az
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import bayesmoe as bm
    from bayesmoe.measure import measure_from_arrays

    family = args.family
    truth = measure_from_arrays(GATE["beta0"], GATE["beta1"], EXPERTS[family], family=family)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_OBS, 2))
    extra = {"trials": rng.integers(1, 15, size=N_OBS)} if family == "binomial" else {}
    _, y, _ = bm.data.simulate(truth, X=X, random_seed=0, **extra)
    tmp = Path(tempfile.mkdtemp(prefix=f"{family}_speed_"))
    data = str(tmp / "data.npz")
    np.savez(data, X=X, y=y, **extra)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    rows = []
    for seed in args.seeds:
        for kind in args.kinds:
            out = str(tmp / f"{kind}-{seed}.npz")
            cmd = [sys.executable, __file__, "--worker", kind, family, data, str(seed), out]
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True)
            wall = time.perf_counter() - t0
            s = dict(np.load(out))
            q = _quantities(s, family, X, y, extra)
            ess = float(min(az.ess(q[..., j]) for j in range(q.shape[-1])))
            rhat = float(max(az.rhat(q[..., j]) for j in range(q.shape[-1])))
            info = json.loads(Path(out + ".json").read_text())
            rows.append(
                {
                    "family": family,
                    "config": kind,
                    "seed": seed,
                    "process_s": round(wall, 1),
                    "min_ess": round(ess),
                    "ess_per_s": round(ess / wall, 1),
                    "max_rhat": round(rhat, 3),
                    "load_before": round(load, 1),
                    "load_after": round(os.getloadavg()[0], 1),
                    **info,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    by = {}
    for r in rows:
        by.setdefault(r["seed"], {})[r["config"]] = r
    for seed, got in by.items():
        for ref in ("numpyro", "numpyro64"):
            if "bayesmoe" in got and ref in got and got[ref]["ess_per_s"] > 0:
                ratio = got["bayesmoe"]["ess_per_s"] / got[ref]["ess_per_s"]
                print(f"{family} seed {seed}: bayesmoe / {ref} ESS/s = {ratio:.2f}")


if __name__ == "__main__":
    main()
