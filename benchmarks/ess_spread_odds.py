"""How likely is issue 24's min-ESS spread target to pass on six fresh sampler seeds?

The target (benchmarks/ess_spread.py): on each of 3 S-B data seeds, the smallest of 6 runs' min
ESS is at least 0.8x their median. Six runs are a sample, so whether the target passes is itself
random. Given m >= 6 runs of one configuration on one data set, the share of its 6-run subsets
that pass is the U-statistic estimate of that probability: unbiased for independent runs
(Hoeffding 1948), with a jackknife standard error. Runs on different data sets are independent
processes, so the chance of passing all three is the product.

Two kinds of run are read from ``benchmarks/results``:

* **seeds**: ``ess_spread_12seeds*.json`` (ess_spread.py ``--seeds 1 ... 12``): each run has its
  own warm-up. This is the target's probability for that configuration.
* **segments**: ``ess_spread_oracle*.json`` and ``ess_spread_segments_*pilot*.json``
  (ess_spread_oracle.py, default and ``--variant`` pilots): one pilot (4 chains x 5000 draws
  after 1000 tuning steps) cut into 10 runs of 2 chains x 1000 draws that share the pilot's
  warm-up. Their probability is what the target would have if every seed repeated that warm-up
  exactly; the mean over pilots is that chance for a warm-up drawn like theirs, and six
  segments drawn from all pilots at once mix the warm-ups as separate seeds do. (Neighbouring
  segments of the same chains are not quite independent; the estimate treats them as if they
  were.)

It also prints, from the pilots that record them, where the segments' spread comes from
(within- against between-pilot variance, the tail visits, the slowest scalar), and the same
odds for ideal chains (independent Gaussian AR(1) scalars) as the reference.

Usage::

    python benchmarks/ess_spread_odds.py
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RUNS = 6
RATIO = 0.8


def pass_probability(ess, runs: int = RUNS, ratio: float = RATIO) -> float:
    """Share of the ``runs``-subsets of ``ess`` whose minimum is ``>= ratio`` x their median.

    Examples
    --------
    >>> pass_probability([100, 100, 100, 100, 100, 100, 10])
    0.14285714285714285
    """
    ess = np.asarray(ess, float)
    if ess.size < runs:
        raise ValueError(f"ess: expected at least {runs} runs, got {ess.size}")
    idx = np.array(list(itertools.combinations(range(ess.size), runs)))
    sub = ess[idx]
    return float(np.mean(sub.min(1) >= ratio * np.median(sub, 1)))


def sampled_pass_probability(
    ess, runs: int = RUNS, ratio: float = RATIO, subsets: int = 20_000, seed: int = 0
) -> float:
    """:func:`pass_probability` over ``subsets`` random ``runs``-subsets (for many runs)."""
    ess = np.asarray(ess, float)
    rng = np.random.default_rng(seed)
    sub = np.array([ess[rng.choice(ess.size, runs, replace=False)] for _ in range(subsets)])
    return float(np.mean(sub.min(1) >= ratio * np.median(sub, 1)))


def jackknife_se(ess, runs: int = RUNS, ratio: float = RATIO) -> float:
    """Jackknife standard error of :func:`pass_probability` (needs ``runs + 2`` runs or more)."""
    ess = np.asarray(ess, float)
    if ess.size < runs + 2:
        return float("nan")
    loo = np.array([pass_probability(np.delete(ess, i), runs, ratio) for i in range(ess.size)])
    return float(np.sqrt((ess.size - 1) / ess.size * np.sum((loo - loo.mean()) ** 2)))


def _seeds(results: Path) -> list[str]:
    lines = ["| variant | data 1 | data 2 | data 3 | all three |", "|---|---|---|---|---|"]
    by_variant: dict[str, dict[int, list[float]]] = {}
    for f in sorted(results.glob("ess_spread_12seeds*.json")):
        for r in json.loads(f.read_text()):
            ess = [row["min_ess_bulk"] for row in r["rows"]]
            if len(ess) >= RUNS + 2:
                by_variant.setdefault(r["variant"], {})[r["data_seed"]] = ess
    for variant, per_data in by_variant.items():
        cells, total = [], 1.0
        for ds in (1, 2, 3):
            ess = per_data.get(ds)
            if ess is None:
                cells.append("–")
                total = float("nan")
                continue
            p = pass_probability(ess)
            total *= p
            cells.append(f"{p:.2f} ± {jackknife_se(ess):.2f} ({len(ess)} runs)")
        lines.append(f"| {variant} | {' | '.join(cells)} | {total:.3f} |")
    return lines


def _segments(results: Path) -> list[str]:
    files = sorted(results.glob("ess_spread_oracle*.json"))
    files += sorted(results.glob("ess_spread_segments_*pilot*.json"))
    probs: dict[str, dict[int, dict[int, float]]] = {}  # variant -> data seed -> pilot -> P
    pooled: dict[str, dict[int, list[float]]] = {}  # variant -> data seed -> all segments
    for f in files:
        for r in json.loads(f.read_text()):
            # the first oracle files predate the recorded pilot seed: it is in the file name
            stem = f.stem
            seed = r.get("pilot_seed") or (int(stem.split("pilot")[-1]) if "pilot" in stem else 100)
            ess = [s["min_ess_bulk"] for s in r["segments"]]
            variant, ds = r.get("variant", "default"), r["data_seed"]
            probs.setdefault(variant, {}).setdefault(ds, {})[seed] = pass_probability(ess)
            pooled.setdefault(variant, {}).setdefault(ds, []).extend(ess)
    lines = [
        "| pilot variant | data | P per pilot (pilot seed: P) | mean | pilots with P >= 0.8 "
        "| P, six segments drawn from all pilots |",
        "|---|---|---|---|---|---|",
    ]
    for variant, per_data in probs.items():
        total = mixed_total = 1.0
        for ds, per_pilot in sorted(per_data.items()):
            ps = np.array(list(per_pilot.values()))
            total *= ps.mean()
            listed = " ".join(f"{seed}: {p:.2f}" for seed, p in sorted(per_pilot.items()))
            good = f"{np.sum(ps >= 0.8)} of {ps.size}"
            mixed = sampled_pass_probability(pooled[variant][ds])
            mixed_total *= mixed
            lines.append(
                f"| {variant} | {ds} | {listed} | {ps.mean():.2f} | {good} | {mixed:.2f} |"
            )
        lines.append(f"| {variant} | all three (products) | | {total:.3f} | | {mixed_total:.3f} |")
    return lines


def _sources(results: Path) -> list[str]:
    """Within- against between-pilot variance of log segment ESS; the low segments' tail visits."""
    from scipy import stats

    lines = [
        "| data | pilots | var(log ESS) within a pilot | var of pilot means (within alone "
        "predicts) | Spearman(ESS, tail share) | low runs: tail visit >= 5 draws / shorter "
        "| r(pair's lowest, step size / mean leapfrog steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds in (1, 2, 3):
        logs, rel, share, longest, pairs = [], [], [], [], []
        for f in sorted(results.glob("ess_spread_segments_pilot*.json")):
            for r in json.loads(f.read_text()):
                if r["data_seed"] != ds or "tail_share" not in r["segments"][0]:
                    continue
                seg = np.array([s["min_ess_bulk"] for s in r["segments"]])
                logs.append(np.log(seg))
                rel += list(seg / np.median(seg))
                share += [s["tail_share"] for s in r["segments"]]
                longest += [s["tail_longest"] for s in r["segments"]]
                # each chain pair (chains 1-2: segments 1-5, chains 3-4: 6-10) has its own warm-up
                for c, part in zip(((0, 1), (2, 3)), (seg[:5], seg[5:]), strict=True):
                    step = np.mean([r["step_size"][i] for i in c])
                    leap = np.mean([r["n_steps_mean"][i] for i in c])
                    pairs.append((part.min() / np.median(seg), step, leap))
        if not logs:
            continue
        logs, low, longest = np.array(logs), np.array(rel) < RATIO, np.array(longest)
        within = logs.var(1, ddof=1).mean()
        between = logs.mean(1).var(ddof=1)
        rho = stats.spearmanr(rel, share)[0]
        long_ = f"{low[longest >= 5].mean():.2f} of {np.sum(longest >= 5)}"
        short = f"{low[longest < 5].mean():.2f} of {np.sum(longest < 5)}"
        pairs = np.array(pairs)
        r_step, r_leap = (np.corrcoef(pairs[:, 0], pairs[:, j])[0, 1] for j in (1, 2))
        lines.append(
            f"| {ds} | {len(logs)} | {within:.4f} | {between:.4f} ({within / logs.shape[1]:.4f}) "
            f"| {rho:.2f} | {long_} / {short} | {r_step:.2f} / {r_leap:.2f} |"
        )
    return lines


def _slowest(results: Path) -> list[str]:
    """Which scalar has the smallest ESS in the low segments and in the others."""
    lines = [
        "| data | segments | low: lightest expert's gate intercept / another's / other "
        "| the rest: the same |",
        "|---|---|---|---|",
    ]
    for ds in (1, 2, 3):
        counts = {True: [0, 0, 0], False: [0, 0, 0]}
        for f in sorted(results.glob("ess_spread_segments_pilot*.json")):
            for r in json.loads(f.read_text()):
                if r["data_seed"] != ds or "slowest" not in r["segments"][0]:
                    continue
                med = np.median([s["min_ess_bulk"] for s in r["segments"]])
                for s in r["segments"]:
                    name, index = s["slowest"].rstrip("]").split("[")
                    expert = int(index.split(",")[-1])  # the expert is the last dimension
                    kind = 2 if name != "beta0_std" else int(expert != np.argmin(s["weights"]))
                    counts[bool(s["min_ess_bulk"] < RATIO * med)][kind] += 1
        if sum(counts[True]) + sum(counts[False]):
            n = sum(counts[True]) + sum(counts[False])
            low, rest = (" / ".join(map(str, counts[k])) for k in (True, False))
            lines.append(f"| {ds} | {n} | {low} | {rest} |")
    return lines


def _reference(scalars: int = 21, runs: int = 300, seed: int = 0) -> list[str]:
    """The same odds for ideal chains: every scalar an independent Gaussian AR(1) series.

    21 scalars as the S-B K = 3 model's (gate intercepts and slopes as sum-to-zero vectors
    over the 3 experts: 3 + 6; expert slopes 6, intercepts 3, scales 3), 2 chains x 1000
    draws, min bulk ESS over the scalars; ``runs`` runs give ``runs / 6`` independent sets of
    six. The lag-1 autocorrelations bracket the default's median min ESS (1197, 711, 1136).
    """
    import arviz as az

    rng = np.random.default_rng(seed)
    lines = ["| lag-1 autocorrelation | median min ESS | P(six runs pass) |", "|---|---|---|"]
    for rho in (0.0, 0.25, 0.5):
        mins = []
        for _ in range(runs):
            e = rng.standard_normal((2, 1000, scalars))
            x = np.empty_like(e)
            x[:, 0] = e[:, 0]
            for t in range(1, e.shape[1]):
                x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
            mins.append(float(az.ess({"v": x}, method="bulk")["v"].values.min()))
        sets = np.array(mins[: runs - runs % RUNS]).reshape(-1, RUNS)
        ok = np.mean(sets.min(1) >= RATIO * np.median(sets, 1))
        lines.append(f"| {rho} | {np.median(mins):.0f} | {ok:.2f} ({len(sets)} sets) |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(HERE / "results"))
    args = p.parse_args()
    results = Path(args.results)
    print(f"P(min of {RUNS} runs >= {RATIO} x their median), per data set and for all three\n")
    print("Each run with its own warm-up (sampler seeds):")
    print("\n".join(_seeds(results)))
    print("\nRuns sharing one pilot's warm-up (segments):")
    print("\n".join(_segments(results)))
    print(
        "\nWhere the segments' spread comes from (default pilots; a run is low below "
        f"{RATIO} x its pilot's median; tail: the lightest expert's centred gate intercept < -1.5):"
    )
    print("\n".join(_sources(results)))
    print("\nThe slowest scalar (segments that record it):")
    print("\n".join(_slowest(results)))
    print("\nIdeal chains for comparison (independent Gaussian AR(1) scalars):")
    print("\n".join(_reference()))


if __name__ == "__main__":
    main()
