"""Rank-normalised split R-hat and bulk ESS in plain numpy (Vehtari et al. 2021).

The same estimators as :func:`arviz.rhat` and :func:`arviz.ess` (``method="bulk"``), written here
so that the checks that run after every fit (:mod:`bayesmoe.diagnostics.convergence`) cost no
import of ArviZ, matplotlib or scipy.stats on the compiled sampling path (issue 9's fixed cost).
tests/diagnostics/test_mcmc_stats.py checks both against ArviZ to 1e-10 on random and
autocorrelated chains.

Both take an array whose first two axes are (chain, draw) and return one value per trailing index.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["ess_bulk", "rhat"]


def _split(x: np.ndarray) -> np.ndarray:
    """Split every chain into halves (the middle draw of an odd length dropped): (2C, N//2, ...)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged) over the first axis of a 2-D array, per column."""
    order = np.argsort(x, axis=0, kind="stable")
    sorted_x = np.take_along_axis(x, order, axis=0)
    ranks = np.empty_like(x, dtype=float)
    n = x.shape[0]
    for j in range(x.shape[1]):  # ties get the mean of their positions
        v = sorted_x[:, j]
        starts = np.r_[0, np.flatnonzero(v[1:] != v[:-1]) + 1]
        ends = np.r_[starts[1:], n]
        avg = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        ranks[order[:, j], j] = avg
    return ranks


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    """Normal scores Φ⁻¹((rank - 3/8) / (S + 1/4)) over all draws of every column (Blom)."""
    C, N = x.shape[:2]
    flat = x.reshape(C * N, -1)
    z = ndtri((_ranks(flat) - 0.375) / (flat.shape[0] + 0.25))
    return z.reshape(x.shape)


def _rhat_core(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    chain_mean = x.mean(axis=1)
    B = n * chain_mean.var(axis=0, ddof=1)
    W = x.var(axis=1, ddof=1).mean(axis=0)
    var_hat = (n - 1) / n * W + B / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_hat / W)


def rhat(x) -> np.ndarray:
    """Rank-normalised split R-hat: the larger of bulk and tail (folded) R-hat.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.mcmc_stats import rhat
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(rhat(x) < 1.01)
    True
    """
    x = np.asarray(x, dtype=float)
    lead, rest = x.shape[:2], x.shape[2:]
    if x.size == 0:  # e.g. the gate slopes of a model without covariates
        return np.empty(rest)
    x = x.reshape(*lead, -1)
    split = _split(x)
    bulk = _rhat_core(_rank_normalise(split))
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
    tail = _rhat_core(_rank_normalise(folded))
    return np.maximum(bulk, tail).reshape(rest)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of every chain along axis 1 (FFT), biased (divided by n)."""
    n = x.shape[1]
    m = 1 << int(np.ceil(np.log2(2 * n)))
    x = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(x, n=m, axis=1)
    return np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n] / n


def _ess_core(x: np.ndarray) -> float:
    """ESS of one (chains, draws) array: Geyer's initial monotone sequence."""
    C, n = x.shape
    acov = _autocov(x)
    chain_mean = x.mean(axis=1)
    mean_var = acov[:, 0].mean() * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if C > 1:
        var_plus += chain_mean.var(ddof=1)
    if not var_plus > 0:
        return float("nan")
    rho = np.zeros(n)
    rho_even, rho_odd = 1.0, 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[0], rho[1] = rho_even, rho_odd
    t = 1
    while t < n - 3 and rho_even + rho_odd > 0.0:
        rho_even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        rho_odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if rho_even + rho_odd >= 0:
            rho[t + 1], rho[t + 2] = rho_even, rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0:
        rho[max_t + 1] = rho_even
    t = 1
    while t <= max_t - 2:  # monotone: pairs may not increase
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    total = C * n
    tau = -1.0 + 2.0 * rho[: max_t + 1].sum() + rho[max_t + 1 : max_t + 2].sum()
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def ess_bulk(x) -> np.ndarray:
    """Bulk effective sample size: the ESS of the rank-normalised split chains.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmoe.diagnostics.mcmc_stats import ess_bulk
    >>> x = np.random.default_rng(0).normal(size=(4, 500))
    >>> bool(1500 < ess_bulk(x) < 2500)
    True
    """
    x = np.asarray(x, dtype=float)
    lead, rest = x.shape[:2], x.shape[2:]
    if x.size == 0:
        return np.empty(rest)
    z = _rank_normalise(_split(x.reshape(*lead, -1)))
    out = np.array([_ess_core(z[:, :, j]) for j in range(z.shape[-1])])
    return out.reshape(rest)
