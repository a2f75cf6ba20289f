"""Galaxy velocities, K = 3 without covariates: the compiled JAX path beside PyMC's sampler.

Before the expert families (issue 20) a model without covariates always ran on PyMC's sampler;
the flat JAX density now covers it. Each configuration runs in its own fresh Python process (the
wall time of that process is "process s": imports, compilation, MM start, sampling, relabelling,
log-likelihood), 2 chains x 1000 draws, seed 1; min bulk ESS and max R-hat over the relabelled
user-unit parameters (``bm.summary``; with the Richardson–Green set also ``noise_rate``), ESS/s =
min ESS / process s. The Richardson–Green prior set (``--priors richardson-green``) ran on PyMC's
sampler only until the flat JAX density covered it.

Usage::

    python benchmarks/galaxy_fixed_k.py            # table to stdout
    python benchmarks/galaxy_fixed_k.py --cold     # also each backend with empty compile caches
    python benchmarks/galaxy_fixed_k.py --priors richardson-green   # the RG prior set
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

WORKER = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import bayesmoe as bm
X, y, _ = bm.data.load_dataset("galaxy")  # X has shape (82, 0): no covariates
tr = bm.inference.sample(X, y, n_experts=3, draws=1000, chains=2, backend=sys.argv[1],
                         priors=sys.argv[2], random_seed=1, progressbar=False)
seconds = time.perf_counter() - t0
s = bm.summary(tr)
user = s[~s.index.str.contains("_std")]
print(json.dumps({"sampler": tr.attrs["sampler"], "seconds": seconds,
                  "min_ess": float(user["ess_bulk"].min()), "max_rhat": float(user["r_hat"].max()),
                  "divergences": int(tr.sample_stats["diverging"].sum())}))
"""


def run(backend: str, cold: bool, priors: str = "default") -> dict:
    env = dict(os.environ)
    if cold:
        tmp = tempfile.mkdtemp(prefix="bayesmoe-galaxy-")
        env["BAYESMOE_JAX_CACHE"] = os.path.join(tmp, "jax")
        env["PYTENSOR_FLAGS"] = f"compiledir={os.path.join(tmp, 'pytensor')}"
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", WORKER, backend, priors],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - t0
    row["load"] = os.getloadavg()[0]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true", help="also run with empty compile caches")
    ap.add_argument("--priors", default="default", help="prior set (default, richardson-green)")
    args = ap.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"priors={args.priors}")
    configs = [("jax", False), ("pymc", False)]
    if args.cold:
        configs += [("jax", True), ("pymc", True)]
    for backend, cold in configs:
        if not cold:
            run(backend, cold, args.priors)  # warm: a first run fills the caches
        r = run(backend, cold, args.priors)
        print(
            f"{backend:5s} {'cold' if cold else 'warm'}  sampler {r['sampler']:5s} "
            f"process {r['process_s']:6.1f} s  min ESS {r['min_ess']:7.0f}  "
            f"max R-hat {r['max_rhat']:.3f}  div {r['divergences']}  "
            f"ESS/s {r['min_ess'] / r['process_s']:7.1f}  load {r['load']:.1f}"
        )


if __name__ == "__main__":
    main()
