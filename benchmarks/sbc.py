"""Simulation-based calibration of the fixed-K models through the study runner (issue 13).

Runs (or resumes) one study per configuration into ``benchmarks/results/sbc/<name>/`` with
``inference.method = "sbc"``, then prints one row per configuration and quantity for
benchmarks/README.md and writes the ECDF-difference plots ``benchmarks/results/sbc/<name>.png``.

Not a speed benchmark: run it under ``nice -n 15`` in the background, e.g.

    nice -n 15 python benchmarks/sbc.py > benchmarks/results/sbc/log.txt 2>&1 &
    python benchmarks/sbc.py --summary-only          # the table of what has finished

Configurations: Gaussian experts with the softmax gate (the pass check), the same fit with the
gate prior scales 10x too small (must fail), categorical experts with the tanh gate (pass), Poisson
experts with the softmax gate (pass) and the same fit with its likelihood tempered to the power
0.5 (must fail); negative binomial and Student-t experts (pass) and the same fits with the
dispersion / tail prior 10x too small (must fail); binomial (Bernoulli) experts (pass) and the same
fit with the expert coefficients' prior 10x too small (must fail).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "sbc"


def spec_dict(
    name: str,
    *,
    family: str,
    gate: str,
    replicates: int,
    n: int = 150,
    K: int = 2,
    draws: int = 150,
    tune: int = 300,
    chains: int = 2,
    n_ranked: int = 49,
    fit_priors: dict | None = None,
    likelihood_power: float = 1.0,
    seed: int = 13,
) -> dict:
    model = {"family": family, "gate": gate, "n_experts": K}
    if fit_priors:
        model["fit_priors"] = fit_priors
    if likelihood_power != 1.0:
        model["likelihood_power"] = likelihood_power
    return {
        "study": {
            "name": name,
            "seed": seed,
            "retries": 1,
            "description": "SBC of the fixed-K model (benchmarks/sbc.py)",
        },
        "data": {"source": "prior", "n": n, "d": 1, "x_seed": 0},
        "model": model,
        "inference": {
            "method": "sbc",
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "n_ranked": n_ranked,
            "target_accept": 0.9,
        },
        "grid": {"replicate": replicates},
    }


CONFIGS = {  # the must-fail first: it decides whether SBC has power at all
    "gaussian-softmax-K2-gate-prior-10x-too-small": dict(
        family="gaussian",
        gate="softmax",
        replicates=24,
        fit_priors={"gate_intercept": 0.3, "gate_slope": 0.3},
    ),
    "gaussian-softmax-K2": dict(family="gaussian", gate="softmax", replicates=40),
    "categorical-tanh-K2": dict(family="categorical", gate="tanh", replicates=24),
    # Poisson experts (issue 20): the tempered fit (likelihood^0.5, a posterior too wide) must fail
    "poisson-softmax-K2-likelihood-tempered": dict(
        family="poisson", gate="softmax", replicates=24, likelihood_power=0.5
    ),
    "poisson-softmax-K2": dict(family="poisson", gate="softmax", replicates=40),
    # negative binomial and Student-t experts (issue 21): the broken fits shrink the family's own
    # parameter 10x too hard towards the Poisson / Gaussian expert (prior scale / 10)
    "negbinomial-softmax-K2-dispersion-prior-10x-too-small": dict(
        family="negbinomial", gate="softmax", replicates=24, fit_priors={"dispersion": 0.1}
    ),
    "negbinomial-softmax-K2": dict(family="negbinomial", gate="softmax", replicates=40),
    "student-t-softmax-K2-tail-prior-10x-too-small": dict(
        family="student-t", gate="softmax", replicates=24, fit_priors={"tail": 0.05}
    ),
    "student-t-softmax-K2": dict(family="student-t", gate="softmax", replicates=40),
    # binomial experts (Bernoulli rows: the prior-predictive data have one trial per row): the
    # broken fit shrinks the experts' logit coefficients 10x too hard towards p = 1/2
    "binomial-softmax-K2-expert-prior-10x-too-small": dict(
        family="binomial",
        gate="softmax",
        replicates=24,
        fit_priors={"expert_slope": 0.2, "expert_intercept": 0.2},
    ),
    "binomial-softmax-K2": dict(family="binomial", gate="softmax", replicates=40),
}


def summarise(name: str, folder: Path, plot: bool = True) -> list[str]:
    from bayesmoe.diagnostics.sbc import plot_sbc, sbc_summary
    from bayesmoe.study.sbc import sbc_ranks

    ranks = sbc_ranks(folder)
    summ = sbc_summary(ranks)
    rows = []
    spec = json.loads(ranks.attrs["spec"])
    inf = spec["inference"]
    secs = float(np.sum(ranks["seconds"].values))
    per = secs / ranks.sizes["replicate"]
    for q in dict.fromkeys(summ["quantity"].values):
        sub = summ.sel(component=summ["quantity"] == q)
        kind = "primary" if bool(sub["primary"].values[0]) else "relabelled"
        ok = bool(sub["uniform"].all())
        ps = ", ".join(f"{v:.2g}" for v in sub["p_value"].values)
        rows.append(
            f"| {name} | {q} ({kind}) | {ranks.sizes['replicate']} | "
            f"{inf['chains']}x{inf['draws']} -> {ranks.attrs['n_ranked']} | {per:.0f} | "
            f"{ps} | {'uniform' if ok else 'NON-UNIFORM'} |"
        )
    rows.append(
        f"| {name} | **verdict (primary, Bonferroni over {summ.attrs['n_components']} "
        f"components at alpha 0.05)** | | | | | **{summ.attrs['verdict']}** |"
    )
    import pandas as pd

    from bayesmoe.diagnostics.sbc import _components

    wide = pd.DataFrame(
        {label: r for label, _, _, r in _components(ranks)},
        index=pd.Index(ranks["replicate"].values, name="replicate"),
    )
    for c in ("min_gate_weight", "divergences", "ess_loglik", "seconds"):
        wide[c] = ranks[c].values
    wide.to_csv(OUT / f"{name}_ranks.csv")
    summ.drop_vars("histogram").drop_attrs().to_dataframe().to_csv(OUT / f"{name}_summary.csv")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        fig = plot_sbc(ranks, summary=summ)
        fig.savefig(OUT / f"{name}.png", dpi=80)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--summary-only", action="store_true", help="do not run, only summarise")
    ap.add_argument("--only", nargs="*", default=None, help="configuration names")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--stages",
        type=int,
        nargs="*",
        default=[8, 16, 24, 40],
        help="run the first 8 replicates of every configuration, then 16, ... "
        "(each stage resumes the previous one; partial results stay balanced)",
    )
    args = ap.parse_args(argv)
    from bayesmoe.study import parse_spec, run_study

    OUT.mkdir(parents=True, exist_ok=True)
    names = args.only or list(CONFIGS)
    if not args.summary_only:
        import logging

        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        try:
            for stage in args.stages:
                for name in names:
                    t0 = time.time()
                    spec = parse_spec(spec_dict(name, **CONFIGS[name]))
                    ids = [t.id for t in spec.tasks()][:stage]
                    run_study(spec, OUT / name, client=client, progressbar=False, tasks=ids)
                    print(
                        f"{name}: {len(ids)} replicates, {time.time() - t0:.0f} s wall", flush=True
                    )
        finally:
            client.close()
            cluster.close()
    import arviz
    import pymc

    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, "
        f"PyMC {pymc.__version__}, ArviZ {arviz.__version__}"
    )
    print(
        "| config | quantity | replicates | draws -> ranked L | s / replicate | p (POT-C) | "
        "verdict |\n|---|---|---|---|---|---|---|"
    )
    for name in names:
        if (OUT / name / "tasks").is_dir():
            print("\n".join(summarise(name, OUT / name)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
