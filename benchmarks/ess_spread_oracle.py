"""Is the min-ESS spread a warm-up problem? An oracle mass matrix and the light expert's excursions.

Issue 24 asks for a warm-up that learns the slow gate direction, judged by the min-ESS spread over
sampler seeds (benchmarks/ess_spread.py). This script asks what the best possible mass matrix
would give. Per S-B data seed (n = 1000, K = 3):

1. a pilot run of the default sampler, 4 chains x 5000 draws after 1000 tuning steps
   (``--pilot-seed``, default 100);
2. **excursions**: the smallest centred gate intercept of each draw (the lightest expert's),
   the share of draws below thresholds, the number of runs of consecutive draws below them
   and their lengths;
3. **segments**: the pilot cut into 10 disjoint runs of 2 chains x 1000 draws (chains 1-2 and
   3-4, draws 1-1000, ..., 4001-5000), ESS as below, with each segment's share of tail draws
   (centred intercept < -1.5) and its longest visit there. They share the pilot's warm-up,
   so their spread is what that warm-up would leave if it were repeated exactly. It varies
   from pilot to pilot (benchmarks/README.md; benchmarks/ess_spread_odds.py reads the pilots);
4. **oracle**: the pilot's covariance of the unconstrained draws (the posterior covariance
   a warm-up tries to estimate, from 20 000 draws instead of ~100) as the dense inverse mass
   matrix, kept fixed (no adaptation; the step size is still adapted over the default 300
   tuning steps), then the 6 sampler seeds of ess_spread.py, 2 chains x 1000 draws, ESS as
   there (relabelled min bulk ESS over the standardised parameters).

The oracle replaces ``jax_nuts.mass_matrix_from_hessian`` (the Hessian start) by the pilot
covariance, which is how the start enters the compiled sampler; the pilot's flat draws are read
where ``jax_nuts`` turns them into the DataTree. Both are internal: this is a measurement, not
an option of :func:`bayesmoe.inference.sample`.

``--variant`` gives the pilot an ess_spread.py variant's keywords; ``--no-oracle`` stops after
the segments.

Usage::

    python benchmarks/ess_spread_oracle.py --data-seeds 1 2 3
    python benchmarks/ess_spread_oracle.py --no-oracle --pilot-seed 103 \\
        --json benchmarks/results/ess_spread_segments_pilot103.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ess_spread import VARIANTS, run_worker, spread_text
from nuts_speed import CHAINS, DRAWS, N_OBS, PARAMS, K, _summarise

THRESHOLDS = (-1.0, -1.5, -2.0, -2.5)


def _excursions(b0, thresholds=THRESHOLDS) -> list[dict]:
    """Runs of draws whose smallest centred gate intercept is below each threshold."""
    import numpy as np

    low = (b0 - b0.mean(-1, keepdims=True)).min(-1)  # (chains, draws)
    out = []
    for thr in thresholds:
        below = low < thr
        lengths = []
        for c in range(below.shape[0]):
            edges = np.diff(np.concatenate([[0], below[c].astype(int), [0]]))
            lengths += list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
        out.append(
            dict(
                threshold=thr,
                share=float(below.mean()),
                runs=len(lengths),
                mean_length=float(np.mean(lengths)) if lengths else 0.0,
                max_length=int(max(lengths, default=0)),
            )
        )
    return out


def _worker(
    data_seed: int,
    seeds: list[int],
    out: str,
    pilot_seed: int = 100,
    variant: str = "default",
    oracle: bool = True,
) -> None:
    import numpy as np

    import bayesmoe.inference.nuts.jax_nuts as jn
    from bayesmoe.data import simulate
    from bayesmoe.inference import sample

    X, y, _ = simulate("S-B", n=N_OBS, random_seed=data_seed)
    seen = {}
    to_datatree = jn._to_datatree

    def keep_flat(fm, layout, flat, *a, **kw):
        seen["flat"] = flat
        return to_datatree(fm, layout, flat, *a, **kw)

    jn._to_datatree = keep_flat
    kw = {k: v for k, v in VARIANTS[variant].items() if k not in ("chains", "draws", "tune")}
    pilot = sample(
        X, y, n_experts=K, random_seed=pilot_seed, chains=4, draws=5000, tune=1000, **kw
    )  # fmt: skip
    flat = seen["flat"].reshape(-1, seen["flat"].shape[-1])
    cov = np.cov(flat.T)
    result = dict(data_seed=data_seed, excursions=_excursions(pilot.posterior["beta0_std"].values))
    stats = pilot.sample_stats
    result["step_size"] = stats["step_size"].values[:, -1].tolist()  # per chain, after warm-up
    result["n_steps_mean"] = stats["n_steps"].values.mean(-1).tolist()
    segments = []
    for pair in ((0, 1), (2, 3)):
        for start in range(0, 5000, DRAWS):
            npz = f"{out}-segment.npz"
            part = {k: pilot.posterior[k].values[list(pair), start : start + DRAWS] for k in PARAMS}
            np.savez(npz, **part)
            tail = _excursions(part["beta0_std"], thresholds=(-1.5,))[0]
            segments.append(
                dict(_summarise(npz), chains=list(pair), start=start, tail_share=tail["share"],
                     tail_runs=tail["runs"], tail_longest=tail["max_length"])
            )  # fmt: skip
    result["segments"] = segments
    if not oracle:
        Path(out).write_text(json.dumps(dict(result, oracle=[])))
        return
    jn.mass_matrix_from_hessian = lambda hess, dense=True: cov.copy()
    rows = []
    for seed in seeds:
        trace = sample(
            X, y, n_experts=K, random_seed=seed, chains=CHAINS, draws=DRAWS,
            adapt_mass_matrix=False, progressbar=False,
        )  # fmt: skip
        npz = f"{out}-{seed}.npz"
        np.savez(npz, **{k: trace.posterior[k].values for k in PARAMS})
        rows.append(dict(_summarise(npz), seed=seed))
    result["oracle"] = rows
    Path(out).write_text(json.dumps(result))


def main() -> None:
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", type=int)
    p.add_argument("--out")
    p.add_argument("--data-seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    p.add_argument("--pilot-seed", type=int, default=100, help="sampler seed of the pilot run")
    p.add_argument(
        "--variant", default="default", choices=list(VARIANTS),
        help="ess_spread.py variant whose keywords the pilot takes (not chains, draws, tune)",
    )  # fmt: skip
    p.add_argument("--no-oracle", action="store_true", help="pilot and segments only")
    p.add_argument("--json", default=str(HERE / "results" / "ess_spread_oracle.json"))
    args = p.parse_args()
    if args.worker is not None:
        _worker(
            args.worker, args.seeds, args.out, args.pilot_seed, args.variant, not args.no_oracle
        )  # fmt: skip
        return
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="ess-oracle-") as wd:
        for ds in args.data_seeds:
            out = str(Path(wd) / f"{ds}.json")
            worker = ["--worker", str(ds), "--out", out, "--pilot-seed", str(args.pilot_seed)]
            worker += ["--variant", args.variant, *["--no-oracle"] * args.no_oracle]
            run_worker(__file__, [*worker, "--seeds", *map(str, args.seeds)], f"data seed {ds}")
            res = json.loads(Path(out).read_text())
            ess = np.array([row["min_ess_bulk"] for row in res["oracle"]])
            if len(ess):
                res["min_over_median"] = float(ess.min() / np.median(ess))
            seg = np.array([row["min_ess_bulk"] for row in res["segments"]])
            res["segments_min_over_median"] = float(seg.min() / np.median(seg))
            res["segments_first6_min_over_median"] = float(seg[:6].min() / np.median(seg[:6]))
            res["load_1min"] = os.getloadavg()[0]
            res.update(pilot_seed=args.pilot_seed, variant=args.variant)
            results.append(res)
            for e in res["excursions"]:
                print(
                    f"data {ds}: centred gate intercept < {e['threshold']}: "
                    f"{100 * e['share']:.2f} % of 20000 pilot draws, {e['runs']} runs, mean "
                    f"length {e['mean_length']:.1f}, longest {e['max_length']}"
                )
            first6 = res["segments_first6_min_over_median"]
            print(f"data {ds}: pilot segments, {spread_text(seg, 0)} (first 6: {first6:.2f})")
            if len(ess):
                print(f"data {ds}: oracle fixed mass, {spread_text(ess, 0)}", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
