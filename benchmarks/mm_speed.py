"""MM speed benchmark: bayesmoe's MM fitter (plain and SQUAREM) against an honest EM baseline.

The EM baseline is written here: E-step responsibilities, then an M-step that maximises Q exactly
up to a Newton tolerance — the gate by a Newton/IRLS inner loop on the soft-label multinomial
log-likelihood (full Hessian, step halving, at most 25 inner steps, stop when the relative change of
the gate's Q falls below 1e-12), Gaussian experts by weighted least squares + closed-form variances,
categorical experts by the same Newton inner loop per expert. This is what EM software for
softmax-gated MoE does (flexmix/meteorits use IRLS for the gate).

All methods start from the same point (one k-means-like start from bayesmoe's initialiser), work on
the same standardised data, evaluate the log-likelihood with the same code, and stop with the same
rule |Δℓ| <= tol·|ℓ| (tol = 1e-8) or at their iteration cap. Reported log-likelihoods are in the
user's units.

One-start MM rows: the default map (safeguarded Newton steps for the gate and categorical experts)
with SQUAREM and plain, and the MM maps only (Böhning/WLS, unbounded SQUAREM: the fitter before the
Newton lever of issue 10). The last row of every setting is the whole default
``fit_mle(X, y, K, family=...)`` (10 starts, pruning, numba engine, tol 1e-10, flat-ridge stop)
with the ratio "one EM fit / this whole fit".
Wall and CPU (process) seconds: on the shared machine the CPU time is the better estimate of an
idle machine's wall time.

Run:  python benchmarks/mm_speed.py            (about 5-8 minutes on 2 cores)
      python benchmarks/mm_speed.py --quick    (n = 10^3 and 10^4 only)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import time
import warnings

import numpy as np

from bayesmoe.data import simulate
from bayesmoe.inference.mle import mm_updates as mu
from bayesmoe.inference.mle import mm_warmup
from bayesmoe.inference.mle.mm import _initial_theta, _measure_from_theta, fit_mle, tuning
from bayesmoe.scaling import Standardizer

TOL = 1e-8
CAPS = {"mm": 3000, "squarem": 1500, "em": 1000}
#: iteration caps at n = 10^5, to keep the whole run under ~10 minutes on a shared 2-core machine
CAPS_LARGE = {"mm": 600, "squarem": 300, "em": 300}


# ----- EM baseline ----------------------------------------------------------------------------
def _log_softmax_ref(eta):
    """log-softmax with the last category pinned to 0 (eta holds the C-1 free logits)."""
    full = np.concatenate([eta, np.zeros(eta.shape[:-1] + (1,))], axis=-1)
    return mu.log_softmax(full, axis=-1)


def newton_multinomial(Z, T, w, W, *, max_inner=25, rtol=1e-12, ridge=0.0):
    """Maximise Q(W) = Σ_i w_i Σ_c T_ic log softmax_c(z_i W) - (ridge/2)‖W[1:]‖² over W (D, C-1)
    by Newton + halving (row 0 of W, the intercepts, is not penalised)."""
    D, Cm1 = W.shape
    P = np.ones(D)
    P[0] = 0.0

    def q(Wc):
        return float(
            (w[:, None] * T * _log_softmax_ref(Z @ Wc)).sum()
            - 0.5 * ridge * (P[:, None] * Wc**2).sum()
        )

    f = q(W)
    for _ in range(max_inner):
        G = np.exp(_log_softmax_ref(Z @ W))[:, :Cm1]  # (n, C-1)
        grad = Z.T @ (w[:, None] * (T[:, :Cm1] - G)) - ridge * P[:, None] * W  # (D, C-1)
        Wt = w[:, None, None] * (G[:, :, None] * (np.eye(Cm1)[None] - G[:, None, :]))  # (n,C-1,C-1)
        H = np.empty((Cm1, D, Cm1, D))
        for j in range(Cm1):
            for m in range(j, Cm1):
                H[j, :, m, :] = (Z * Wt[:, j, m, None]).T @ Z
                H[m, :, j, :] = H[j, :, m, :].T
        H = H.reshape(Cm1 * D, Cm1 * D)
        H += 1e-10 * len(Z) * np.eye(Cm1 * D) + ridge * np.kron(np.eye(Cm1), np.diag(P))
        step = np.linalg.solve(H, grad.T.reshape(-1)).reshape(Cm1, D).T
        t = 1.0
        while True:
            Wn = W + t * step
            fn = q(Wn)
            if fn >= f or t < 1e-8:
                break
            t /= 2
        done = abs(fn - f) <= rtol * abs(f)
        if fn >= f:
            W, f = Wn, fn
        if done:
            break
    return W


def em_fit(prob: mu.Problem, theta0: np.ndarray, *, tol=TOL, max_iter=1000):
    """EM with Newton/IRLS inner loops; single start, theta0 of shape (1, P). A ridge in ``prob``
    is supported for categorical experts and the gate (Gaussian experts: ridge must be 0)."""
    lay = prob.layout
    if prob.ridge and lay.family == "gaussian":
        raise ValueError("em_fit supports a ridge only with categorical experts.")
    K = lay.K
    theta = theta0.copy()
    tau, f = mu.estep(prob, theta)
    trace = [float(f[0])]
    converged = False
    for it in range(1, max_iter + 1):  # noqa: B007 (returned after the loop)
        p = lay.unpack(theta)
        t = tau[0]
        if K > 1:
            Wg = newton_multinomial(
                prob.Zt, t, np.ones(len(t)), p["W"][0, :, : K - 1], ridge=prob.ridge
            )
            p["W"][0, :, : K - 1] = Wg
        if lay.family == "gaussian":
            Xt, y = prob.Xt, prob.y
            for k in range(K):
                wk = t[:, k]
                H = (Xt * wk[:, None]).T @ Xt + 1e-10 * len(y) * np.eye(lay.D)
                beta = np.linalg.solve(H, (Xt * wk[:, None]).T @ y)
                r = y - Xt @ beta
                p["A"][0, :, k] = beta
                p["log_s2"][0, k] = np.log(max((wk * r * r).sum() / wk.sum(), prob.var_floor))
        else:
            for k in range(K):
                Vk = newton_multinomial(
                    prob.Xt, prob.Y1, t[:, k], p["V"][0, :, : lay.M - 1, k], ridge=prob.ridge
                )
                p["V"][0, :, : lay.M - 1, k] = Vk
        theta = lay.pack(p)
        tau, fn = mu.estep(prob, theta)
        trace.append(float(fn[0]))
        if abs(fn[0] - f[0]) <= tol * abs(fn[0]):
            converged = True
            f = fn
            break
        f = fn
    return theta, float(f[0]), it, converged, np.array(trace)


# ----- one setting ----------------------------------------------------------------------------
def run_setting(name, n, seed=0):
    if name == "S-B":
        X, y, truth = simulate("S-B", n=n, random_seed=seed)
        family = "gaussian"
    else:
        X, y, truth = simulate("S-D", n=n, random_seed=seed, regime="A")
        family = "categorical"
    K = truth.sizes["expert"]
    M = int(y.max()) + 1 if family == "categorical" else 0
    st = Standardizer.from_data(X, y if family == "gaussian" else None)
    Xt = np.column_stack([np.ones(n), st.transform_X(X)])
    ys = st.transform_y(y) if family == "gaussian" else y
    prob = mu.make_problem(family, Xt, Xt.copy(), ys, K, M=M)
    theta0 = _initial_theta(prob, 1, np.random.default_rng(seed))
    G0 = _measure_from_theta(theta0[0], prob.layout, st, "softmax", None, None)
    log_sy = np.log(st.y_scale) if family == "gaussian" else 0.0
    caps = CAPS_LARGE if n >= 100_000 else CAPS
    rows = []
    old = dict(newton=0, cap0=np.inf)  # the MM maps only, unbounded SQUAREM: before issue 10
    for method, acc, kw in (
        ("MM (SQUAREM, Newton steps)", True, {}),
        ("MM (plain, Newton steps)", False, {}),
        ("MM (SQUAREM, MM maps only)", True, old),
    ):
        cap = caps["squarem" if acc else "mm"]
        with warnings.catch_warnings(), tuning(**kw):
            warnings.simplefilter("ignore", UserWarning)
            t0, c0 = time.perf_counter(), time.process_time()
            res = fit_mle(
                X,
                y,
                K,
                family=family,
                n_starts=0,
                starts=[G0],
                accelerate=acc,
                tol=TOL,
                max_iter=cap,
                stall_window=None,
            )
            sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(
            (
                name,
                n,
                method + ", one start",
                sec,
                cpu,
                res.n_iter_,
                res.loglik_,
                res.converged_,
                "-",
            )
        )
    t0, c0 = time.perf_counter(), time.process_time()
    _, f, it, conv, _ = em_fit(prob, theta0, max_iter=caps["em"])
    em_sec, em_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows.append(
        (name, n, "EM (Newton/IRLS gate), one start", em_sec, em_cpu, it, f - n * log_sy, conv, "-")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t0, c0 = time.perf_counter(), time.process_time()
        res = fit_mle(X, y, K, family=family, random_seed=seed)  # every default
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows.append(
        (
            name,
            n,
            f"MM default whole fit ({len(res.all_starts_loglik_)} starts, "
            f"{res.n_survivors_} survived)",
            sec,
            cpu,
            res.n_iter_,
            res.loglik_,
            res.converged_,
            f"{em_sec / sec:.2f} / {em_cpu / cpu:.2f}",
        )
    )
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 10^3 and 10^4 only")
    args = ap.parse_args(argv)
    ns = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    try:
        cpu = (
            subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
            .stdout.split(":", 1)[1]
            .strip()
        )
    except (IndexError, OSError):
        cpu = platform.processor() or "unknown"
    import numba

    fit_mle(*simulate("S-B", n=200, random_seed=0)[:2], 3)  # load the compiled engine once
    mm_warmup.start()  # "auto" runs numpy until the kernels are loaded: time loaded fits only
    mm_warmup.wait()
    print(
        f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {cpu}; "
        f"numpy {np.__version__}; numba {numba.__version__}; tol = {TOL} (one-start rows); "
        f"caps {CAPS}, at n=1e5 {CAPS_LARGE}"
    )
    print(
        "| setting | n | method | seconds (wall) | CPU seconds | iterations | final log-lik | "
        "converged | EM one fit / this (wall / CPU) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("S-B", "S-D"):
        for n in ns:
            for r in run_setting(name, n):
                load = " ".join(f"{x:.1f}" for x in os.getloadavg())
                print(
                    f"| {r[0]} | {r[1]:,} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]} | "
                    f"{r[6]:.3f} | {'yes' if r[7] else 'no'} | {r[8]} | {load} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
