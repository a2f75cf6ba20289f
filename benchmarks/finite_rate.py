"""Finite-rate gating on S-E (docs/math.md §1.4, §9): the gate's information rate I(X;T) against the
temperature τ, test risk against rate, and the distortion-rate curve D(R) by Blahut–Arimoto.

For K ∈ {2, 4, 8} sector experts and m ∈ {100, 300, 1000, 3000} training points (replicates), an
MM fit with K experts is evaluated on 1500 fresh test points at temperatures
τ ∈ logspace(-2, 2, 9):
- rate: plug-in Î(X;T) of the tempered gate on the test inputs (nats, <= log K);
- routing risk: E_x Σ_t g_t(x; τ) d(x, t) with d(x, t) = (y − a_t·x − b_t)² — the expected
  distortion of routing each test point to one expert drawn from the tempered gate;
- test log-loss: −mean log p_τ(y | x) of the tempered mixture (the predictive risk).
D(R) comes from Blahut–Arimoto on the same test distortion matrix (slopes s ∈ logspace(-1, 4, 25),
at most 500 iterations, tolerance 1e-6 on q: a capped run still gives an achievable channel, so the
curve can only sit slightly above the exact D(R)).
A channel of rate R cannot beat D(R), so every (rate, routing risk) point must lie on or above the
curve: the script counts violations (beyond 1e-3 relative). The fits' routing risks at τ = 1 are
compared across m (the generalisation term of the bound shrinks with m).

Run: python benchmarks/finite_rate.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fit, parser, seed_for, write_results

from bayesmoe.data import simulate
from bayesmoe.diagnostics import (
    distortion_rate,
    gate_information_rate,
    routing_distortion,
)
from bayesmoe.measure import gate_probabilities, log_likelihood, measure_arrays

KS = (2, 4, 8)
MS = (100, 300, 1000, 3000)
TAUS = np.logspace(-2, 2, 9)
SLOPES = np.logspace(-1, 4, 25)
BA = {"max_iter": 500, "tol": 1e-6}
REPLICATES = 2
N_TEST = 1500


def evaluate(G, X, y, taus):
    """Rate, routing risk and log-loss of measure G tempered by each τ, on (X, y)."""
    d = routing_distortion(G, X, y, loss="squared").values  # (n, K)
    arr = measure_arrays(G, [])
    rows = []
    for tau in taus:
        g = gate_probabilities(
            arr["beta0"],
            arr["beta1"],
            X,
            gate=G.attrs.get("gate", "softmax"),
            temperature=float(tau),
        )
        rows.append(
            {
                "tau": float(tau),
                "rate": float(gate_information_rate(G, X, temperature=float(tau))),
                "routing_risk": float((g * d).sum(1).mean()),
                "log_loss": float(
                    -log_likelihood(G.assign_attrs(temperature=float(tau)), X, y) / len(y)
                ),
            }
        )
    return rows, d


def run(Ks, ms, reps, taus):
    rows, curves = [], []
    for K in Ks:
        Xt, yt, truth = simulate("S-E", N_TEST, n_experts=K, random_seed=seed_for("fr-test", K))
        tr_rows, d_true = evaluate(truth, Xt, yt, taus)
        rd = distortion_rate(d_true, SLOPES, **BA)
        curves.append(
            pd.DataFrame(
                {
                    "K": K,
                    "m": 0,
                    "replicate": 0,
                    "fit": "truth",
                    "slope": SLOPES,
                    "R": rd.R.values,
                    "D": rd.D.values,
                }
            )
        )
        for r in tr_rows:
            rows.append({"K": K, "m": 0, "replicate": 0, "fit": "truth", **r})
        for rep in range(reps):
            for m in ms:
                t0 = time.perf_counter()
                X, y, _ = simulate("S-E", m, n_experts=K, random_seed=seed_for("fr", K, m, rep))
                res = fit(X, y, K, seed_for("fr-mm", K, m, rep), n_starts=3, max_iter=300)
                ev, d = evaluate(res.measure_, Xt, yt, taus)
                rd = distortion_rate(d, SLOPES, **BA)
                curves.append(
                    pd.DataFrame(
                        {
                            "K": K,
                            "m": m,
                            "replicate": rep,
                            "fit": "mm",
                            "slope": SLOPES,
                            "R": rd.R.values,
                            "D": rd.D.values,
                            "ba_converged": rd.attrs["converged"],
                        }
                    )
                )
                # every tempered-gate point must lie on or above this fit's D(R) curve
                Rc, Dc = rd.R.values, rd.D.values
                order = np.argsort(Rc)
                for r in ev:
                    dmin = np.interp(r["rate"], Rc[order], Dc[order])
                    r["D_of_rate"] = float(dmin)
                    r["below_curve"] = bool(r["routing_risk"] < dmin * (1 - 1e-3))
                    rows.append(
                        {
                            "K": K,
                            "m": m,
                            "replicate": rep,
                            "fit": "mm",
                            **r,
                            "converged": res.converged_,
                        }
                    )
                print(
                    f"K={K} m={m} rep={rep}: rate(τ=1)={ev[4]['rate']:.3f} "
                    f"risk(τ=1)={ev[4]['routing_risk']:.4f} "
                    f"logloss(τ=1)={ev[4]['log_loss']:.3f} ({time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def figure(df, curves, path):
    Ks = sorted(df.K.unique())
    fig, axes = plt.subplots(3, len(Ks), figsize=(5 * len(Ks), 12), squeeze=False)
    ms = sorted(df[df.fit == "mm"].m.unique())
    for j, K in enumerate(Ks):
        sub = df[df.K == K]
        for i, m in enumerate(ms):
            s = (
                sub[(sub.fit == "mm") & (sub.m == m)]
                .groupby("tau")[["rate", "routing_risk", "log_loss"]]
                .mean()
            )
            axes[0, j].plot(s.index, s.rate, "o-", color=f"C{i}", label=f"MM fit, m={m}")
            axes[1, j].plot(s.rate, s.routing_risk, "o-", color=f"C{i}", label=f"m={m}")
            axes[2, j].plot(s.rate, s.log_loss, "o-", color=f"C{i}", label=f"m={m}")
        t = sub[sub.fit == "truth"]
        axes[0, j].plot(t.tau, t.rate, "k--", label="truth")
        axes[0, j].axhline(np.log(K), color="grey", lw=0.8, ls=":", label="log K")
        axes[0, j].set(
            xscale="log",
            xlabel="temperature τ",
            ylabel="I(X;T) (nats)",
            title=f"S-E, K={K}: gate rate",
        )
        c = curves[
            (curves.K == K) & (curves.fit == "mm") & (curves.m == max(ms)) & (curves.replicate == 0)
        ]
        axes[1, j].plot(c.R, c.D, "k-", lw=2, label=f"D(R), fit m={max(ms)}")
        ct = curves[(curves.K == K) & (curves.fit == "truth")]
        axes[1, j].plot(ct.R, ct.D, "k:", label="D(R), truth")
        axes[1, j].set(
            yscale="log",
            xlabel="rate (nats)",
            ylabel="routing risk E d(X,T)",
            title=f"K={K}: risk vs rate (points: τ from 0.01 to 100)",
        )
        axes[2, j].set(xlabel="rate (nats)", ylabel="test log-loss", title=f"K={K}: log-loss")
        for a in axes[:, j]:
            a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    Ks, ms, reps = (KS, MS, REPLICATES) if not args.quick else ((2, 4), (100, 300), 1)
    stem = "finite_rate_quick" if args.quick else "finite_rate"
    t0 = time.perf_counter()
    df, curves = run(Ks, ms, reps, TAUS)
    mm = df[df.fit == "mm"]
    at1 = (
        mm[np.isclose(mm.tau, 1.0)].groupby(["K", "m"])[["rate", "routing_risk", "log_loss"]].mean()
    )
    summary = {
        "Ks": list(Ks),
        "ms": list(ms),
        "replicates": reps,
        "taus": TAUS,
        "n_test": N_TEST,
        "points_below_D_of_R": int(mm.below_curve.sum()),
        "points_total": len(mm),
        "rate_decreasing_in_tau": bool(
            (
                mm.sort_values("tau")
                .groupby(["K", "m", "replicate"])
                .rate.apply(lambda s: bool(np.all(np.diff(s.values) <= 1e-9)))
            ).all()
        ),
        "at_tau_1": {f"K={k},m={m}": v for (k, m), v in at1.to_dict("index").items()},
    }
    write_results(args.out, stem, df, summary)
    curves.to_csv(args.out / f"{stem}_curves.csv", index=False)
    figure(df, curves, args.out / f"{stem}.png")
    print(at1.round(4).to_string())
    print(
        f"points below D(R): {summary['points_below_D_of_R']} / {summary['points_total']}; "
        f"rate non-increasing in τ everywhere: {summary['rate_decreasing_in_tau']}"
    )
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
