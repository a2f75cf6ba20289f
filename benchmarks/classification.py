"""Classification benchmark: MM-fitted and Bayesian mixtures of experts vs standard classifiers.

Data (bundled with scikit-learn, no download): ``load_iris`` (n = 150, d = 4, 3 classes) and
``load_wine`` (n = 178, d = 13, 3 classes). Splits: ``N_REPEATS`` = 5 stratified 70/30 train/test
splits (``StratifiedShuffleSplit``, random_state = 0); features standardised with the training
split's mean and sd, the same standardised arrays given to every method.

Methods:

- **MoE, MM** - ``bayesmoe.inference.fit_mle`` with K = 2 experts (fixed, as the Bayesian model;
  not chosen by BIC), softmax gate, categorical experts, the default 10 random starts, and a ridge
  λ = 1 on the gate and expert slopes (standardised scale). Ridge because the MLE of a multinomial
  logit diverges on separable classes (wine is linearly separable on the training split); λ = 1
  is the same penalty as scikit-learn's default logistic regression (C = 1: ½‖w‖² added to the
  summed log-loss), so the two penalised fits are comparable.
- **MoE, Bayes** - ``bayesmoe.inference.sample`` with K = 2, softmax gate, the default priors,
  NUTS 2 chains × (500 tune + 500 draws), chains started from the MM fit; predictions are the
  posterior mean class probabilities (``bayesmoe.inference.predict``).
- **Multinomial logit** - ``sklearn.linear_model.LogisticRegression()`` (L2, C = 1, lbfgs).
- **Gradient boosting** - ``sklearn.ensemble.HistGradientBoostingClassifier(random_state=0)``
  (default settings).

Metrics on the test split (probabilities clipped to [1e-15, 1] for the log-loss only):

- accuracy of the most probable class;
- log-loss  = -(1/n) Σ_i log p_i,y_i;
- Brier score (multi-class) = (1/n) Σ_i Σ_c (p_ic - 1[y_i = c])², in [0, 2];
- expected calibration error with 15 equal-width bins of the confidence c_i = max_c p_ic on
  [0, 1]: ECE = Σ_b (n_b / n) · |acc_b - conf_b|, where acc_b and conf_b are the accuracy and the
  mean confidence of the n_b test points in bin b (empty bins contribute 0).

Reported: mean ± sd over the repeats. Run:  python benchmarks/classification.py  (3.4 CPU-minutes;
18 minutes wall time on 2 heavily shared cores; ``--quick`` uses 2 repeats and 200 + 200
NUTS steps).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import subprocess
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit

from bayesmoe.inference import predict, sample
from bayesmoe.inference.mle.mm import fit_mle
from bayesmoe.measure import conditional_mean

N_REPEATS = 5
TEST_SIZE = 0.3
K = 2
RIDGE = 1.0
N_BINS = 15
DATASETS = {"iris": load_iris, "wine": load_wine}


# ----- metrics --------------------------------------------------------------------------------
def accuracy(y, P) -> float:
    """Fraction of rows whose most probable class is y.

    >>> accuracy(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]))
    0.5
    """
    return float(np.mean(P.argmax(1) == y))


def log_loss(y, P) -> float:
    """-(1/n) Σ log P[i, y_i] (P clipped to [1e-15, 1]).

    >>> round(log_loss(np.array([0]), np.array([[np.exp(-1.0), 1 - np.exp(-1.0)]])), 12)
    1.0
    """
    return float(-np.mean(np.log(np.clip(P[np.arange(len(y)), y], 1e-15, 1.0))))


def brier(y, P) -> float:
    """Multi-class Brier score (1/n) Σ_i Σ_c (P_ic - 1[y_i = c])², in [0, 2].

    >>> brier(np.array([0]), np.array([[0.5, 0.5]]))
    0.5
    """
    onehot = np.eye(P.shape[1])[y]
    return float(np.mean(((P - onehot) ** 2).sum(1)))


def ece(y, P, n_bins: int = N_BINS) -> float:
    """Expected calibration error over `n_bins` equal-width bins of the max probability.

    ECE = Σ_b (n_b/n)·|acc_b - conf_b|, bin b = (b/n_bins, (b+1)/n_bins].

    >>> P = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(ece(np.array([0, 0, 0, 1]), P), 12)  # bins: acc 1 vs 0.9, acc 0.5 vs 0.6
    0.1
    """
    conf = P.max(1)
    correct = (P.argmax(1) == y).astype(float)
    # bin b holds conf in (b/n_bins, (b+1)/n_bins]; conf = 0 (impossible for a distribution) -> 0
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    acc_b = np.bincount(b, weights=correct, minlength=n_bins)
    conf_b = np.bincount(b, weights=conf, minlength=n_bins)
    return float(np.abs(acc_b - conf_b).sum() / len(y))  # Σ_b n_b/n · |acc_b/n_b - conf_b/n_b|


METRICS = {"accuracy": accuracy, "log_loss": log_loss, "brier": brier, "ece": ece}


# ----- methods --------------------------------------------------------------------------------
def moe_mm(Xtr, ytr, Xte, M, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = fit_mle(Xtr, ytr, K, family="categorical", ridge=RIDGE, n_classes=M, random_seed=seed)
    G = res.measure_
    return conditional_mean(G, Xte), {"converged": res.converged_}


def moe_bayes(Xtr, ytr, Xte, M, seed, draws, tune):
    trace = sample(
        Xtr,
        ytr,
        n_experts=K,
        family="categorical",
        gate="softmax",
        classes=list(range(M)),
        draws=draws,
        tune=tune,
        chains=2,
        cores=1,
        random_seed=seed,
        progressbar=False,
        log_likelihood=False,
    )
    P = predict(trace, Xte, random_seed=seed)["probs"].transpose("obs", "class").values
    div = int(trace.sample_stats["diverging"].sum())
    return P, {"divergences": div}


def logit(Xtr, ytr, Xte, M, seed):
    return LogisticRegression(max_iter=2000).fit(Xtr, ytr).predict_proba(Xte), {}


def boosting(Xtr, ytr, Xte, M, seed):
    return HistGradientBoostingClassifier(random_state=seed).fit(Xtr, ytr).predict_proba(Xte), {}


def run(n_repeats, draws, tune):
    rows = []
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        M = int(y.max()) + 1
        sss = StratifiedShuffleSplit(n_splits=n_repeats, test_size=TEST_SIZE, random_state=0)
        for rep, (tr, te) in enumerate(sss.split(X, y)):
            mu_, sd_ = X[tr].mean(0), X[tr].std(0)
            Xtr, Xte = (X[tr] - mu_) / sd_, (X[te] - mu_) / sd_
            ytr, yte = y[tr], y[te]
            methods = {
                "MoE K=2, MM (ridge 1)": lambda: moe_mm(Xtr, ytr, Xte, M, rep),
                "MoE K=2, Bayes (NUTS)": lambda: moe_bayes(Xtr, ytr, Xte, M, rep, draws, tune),
                "multinomial logit (sklearn)": lambda: logit(Xtr, ytr, Xte, M, rep),
                "HistGradientBoosting": lambda: boosting(Xtr, ytr, Xte, M, rep),
            }
            for meth, fn in methods.items():
                t0 = time.perf_counter()
                P, extra = fn()
                sec = time.perf_counter() - t0
                row = {
                    "dataset": name,
                    "repeat": rep,
                    "method": meth,
                    "seconds": sec,
                    **{m: f(yte, P) for m, f in METRICS.items()},
                    **extra,
                }
                rows.append(row)
                print(
                    f"{name} rep {rep} {meth}: acc {row['accuracy']:.3f} "
                    f"logloss {row['log_loss']:.3f} brier {row['brier']:.3f} "
                    f"ece {row['ece']:.3f} ({sec:.1f} s) {extra}",
                    flush=True,
                )
    return pd.DataFrame(rows)


def table(df: pd.DataFrame) -> str:
    cols = ["accuracy", "log_loss", "brier", "ece", "seconds"]
    lines = [
        "| data | method | accuracy | log-loss | Brier | ECE (15 bins) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    order = list(dict.fromkeys(df["method"]))
    for (data, meth), g in sorted(
        df.groupby(["dataset", "method"]), key=lambda t: (t[0][0], order.index(t[0][1]))
    ):
        cells = [f"{g[c].mean():.3f} ± {g[c].std(ddof=1):.3f}" for c in cols[:-1]]
        cells.append(f"{g['seconds'].mean():.1f}")
        lines.append(f"| {data} | {meth} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, 200 + 200 NUTS steps")
    ap.add_argument("--csv", help="also write the per-repeat rows to this CSV file")
    args = ap.parse_args(argv)
    logging.getLogger("pymc").setLevel(logging.ERROR)
    n_rep, draws, tune = (2, 200, 200) if args.quick else (N_REPEATS, 500, 500)
    try:
        cpu = (
            subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
            .stdout.split(":", 1)[1]
            .strip()
        )
    except (IndexError, OSError):
        cpu = platform.processor() or "unknown"
    t0 = time.perf_counter()
    df = run(n_rep, draws, tune)
    print(
        f"\ndate: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {cpu}; "
        f"{n_rep} stratified {int(100 * (1 - TEST_SIZE))}/{int(100 * TEST_SIZE)} splits; "
        f"NUTS 2 chains x ({tune} tune + {draws} draws); wall time "
        f"{time.perf_counter() - t0:.0f} s\n"
    )
    print(table(df))
    if "divergences" in df:
        d = df.dropna(subset=["divergences"]).groupby("dataset")["divergences"]
        print("\nNUTS divergences per fit (of 2 x draws):", d.apply(list).to_dict())
    if "converged" in df:
        c = df.dropna(subset=["converged"]).groupby("dataset")["converged"]
        print("MM best start converged:", c.apply(list).to_dict())
    if args.csv:
        df.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
