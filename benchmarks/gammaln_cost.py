"""Cost of one value and gradient of the count families' log densities, jitted and as a stored
program (``jax.export``, what the NUTS and compiled reversible-jump paths run), with
``jax.scipy.special.gammaln`` against bayesmoe's ``gammaln_positive`` (families/_ops.py) side by
side in one process.

The summed component log density of n = 1000 rows and K = 2 experts, differentiated with respect
to the experts' predictors (and the negative binomial's alpha): the part of the flat density
that calls log-gamma per row. Median of 7 repeats of 200 calls each.

Usage::

    python benchmarks/gammaln_cost.py [--n 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np


def _timed(fn, args, reps: int = 7, calls: int = 200) -> float:
    fn(*args)[0].block_until_ready()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(calls):
            r = fn(*args)
        r[0].block_until_ready()
        out.append((time.perf_counter() - t) / calls * 1e3)
    return float(np.median(out))


def _case(family: str, n: int, rng):
    import jax.numpy as jnp

    from bayesmoe.families import get_family

    fam = get_family(family)
    eta = rng.normal(0.5, 0.5, size=(n, 2))
    if family == "negbinomial":
        y = rng.poisson(3.0, size=n).astype(float)
        args = (jnp.asarray(eta), jnp.asarray([0.5, 0.1]))
        return fam, y, args, lambda ops, y, e, a: fam.component_log_prob(ops, y, e, a[None, :])
    if family == "binomial":
        trials = rng.integers(1, 30, size=n).astype(float)
        y = rng.binomial(trials.astype(int), 0.4).astype(float)
        t = jnp.asarray(trials)[:, None] * jnp.ones((1, 2))
        return fam, y, (jnp.asarray(eta),), lambda ops, y, e: fam.component_log_prob(ops, y, e, t)
    y = rng.poisson(3.0, size=n).astype(float)
    return fam, y, (jnp.asarray(eta),), lambda ops, y, e: fam.component_log_prob(ops, y, e)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    import jax
    from jax import export

    jax.config.update("jax_enable_x64", True)
    from bayesmoe.families._ops import jax_ops

    fast = jax_ops()
    plain = dataclasses.replace(fast, gammaln=jax.scipy.special.gammaln)
    rng = np.random.default_rng(0)
    rows = []
    print(f"load {os.getloadavg()[0]:.1f}; n = {a.n}, K = 2; ms per value and gradient")
    print("| family | gammaln | jit ms | stored program ms |")
    print("|---|---|---|---|")
    for family in ("negbinomial", "poisson", "binomial"):
        _, y, args, logp = _case(family, a.n, rng)
        yj = jax.numpy.asarray(y)
        values = {}
        for label, ops in (("jax.scipy.special", plain), ("gammaln_positive", fast)):

            def total(*p, ops=ops, logp=logp, yj=yj):
                return logp(ops, yj, *p).sum()

            vg = jax.value_and_grad(total, argnums=tuple(range(len(args))))
            jitted = jax.jit(vg)
            stored = jax.jit(export.deserialize(export.export(jax.jit(vg))(*args).serialize()).call)
            values[label] = float(jitted(*args)[0])
            row = {"family": family, "gammaln": label}
            row["jit_ms"], row["export_ms"] = _timed(jitted, args), _timed(stored, args)
            rows.append(row)
            print(f"| {family} | {label} | {row['jit_ms']:.3f} | {row['export_ms']:.3f} |")
        diff = abs(values["jax.scipy.special"] - values["gammaln_positive"])
        print(f"  {family}: |difference of the summed log densities| = {diff:.2e}")
    print(f"load {os.getloadavg()[0]:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
