"""Simulators with known truth: draw (X, y) from a mixing measure, and the literature presets.

The presets are the synthetic settings of docs/math.md §10. Where the literature leaves a number
open (S-D, S-E), the value chosen here is marked [choice] and pinned by a test.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayesmoe.families import get_family
from bayesmoe.gates import stored_gate
from bayesmoe.measure import (
    _offset,
    _trials,
    gate_covariates,
    gate_probabilities,
    make_measure,
    measure_family,
    upgrade_measure,
)

__all__ = ["PRESETS", "preset", "simulate"]

PRESETS = ("S-A", "S-B", "S-D", "S-E")


def preset(
    name: str,
    *,
    regime: str = "A",
    gate: str = "softmax",
    n_experts: int = 4,
    d: int = 2,
    separation: float = 1.0,
) -> tuple[xr.Dataset, dict]:
    """Return the true mixing measure of a literature setting and its input distribution.

    Parameters
    ----------
    name : {"S-A", "S-B", "S-D", "S-E"}
    regime : {"A", "B"}
        S-D only: "A" has every expert slope non-zero, "B" sets expert 2's slopes to zero.
    gate : str
        S-D only: the truth's gate ("softmax" or "tanh"; "identity" is read as "softmax").
    n_experts : int
        S-E only: number of sector experts (2, 4 or 8 in the literature).
    d : int
        S-D only: input dimension.
    separation : float
        S-D only: factor (> 0) on the gate slopes and the expert parameters ``a``, ``b``; values
        above 1 give sharper gates and better-separated experts (the default preset is weakly
        identified: MLE errors stay large up to n ~ 10^4). Regime B's expert-2 slopes stay 0.

    Returns
    -------
    truth : xarray.Dataset
        The mixing measure.
    x_dist : dict
        ``{"kind": "uniform", "low": .., "high": ..}`` or ``{"kind": "normal"}``, with ``d``.
    """
    _check_preset_options(
        name, regime=regime, gate=gate, n_experts=n_experts, d=d, separation=separation
    )
    if name == "S-A":
        G = make_measure(
            beta0=[-8.0, 0.0],
            beta1=[[25.0, 0.0]],
            a=[[-20.0, 20.0]],
            b=[15.0, -5.0],
            sigma2=np.square([0.3, 0.4]),
        )
        return G, {"kind": "uniform", "low": 0.0, "high": 1.0, "d": 1}
    if name == "S-B":
        G = make_measure(
            beta0=[0.3, 0.5, 0.0],
            beta1=[[1.0, 1.0, 0.0], [-1.0, 0.5, 0.0]],
            a=[[1.5, 0.6, 1.1], [0.9, 0.5, -0.3]],
            b=[0.5, 0.5, 0.5],
            sigma2=np.square([0.9, 0.5, 1.2]),
        )
        return G, {"kind": "normal", "d": 2}
    if name == "S-D":
        if regime not in ("A", "B"):
            raise ValueError(f"`regime` must be 'A' or 'B' for S-D; got {regime!r}.")
        # [choice] K*=2, M=3; gate expert 1 vs reference expert 2; class 3 is the reference class.
        beta1 = np.zeros((d, 2))
        beta1[:, 0] = np.linspace(2.0, -1.0, d) if d > 1 else [2.0]
        a = np.zeros((d, 3, 2))
        a[:, 0, 0] = np.linspace(2.0, 1.0, d)
        a[:, 1, 0] = np.linspace(-1.5, 0.5, d)
        if regime == "A":
            a[:, 0, 1] = np.linspace(-2.0, -0.5, d)
            a[:, 1, 1] = np.linspace(1.0, 2.0, d)
        b = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]])
        s = float(separation)
        G = make_measure(beta0=[0.5, 0.0], beta1=s * beta1, a=s * a, b=s * b, gate=gate)
        return G, {"kind": "uniform", "low": -1.0, "high": 1.0, "d": d}
    if name == "S-E":
        # [choice] K linear experts on angular sectors of [-1, 1]^2: gate slopes point at the
        # sector centres with norm 4; each expert's slope points along its sector; noise sd 0.1.
        K = int(n_experts)
        ang = 2 * np.pi * (np.arange(K) + 0.5) / K
        u = np.stack([np.cos(ang), np.sin(ang)])  # (2, K)
        G = make_measure(
            beta0=np.zeros(K),
            beta1=4.0 * u,
            a=2.0 * u,
            b=np.linspace(-1, 1, K),
            sigma2=np.full(K, 0.01),
        )
        return G, {"kind": "uniform", "low": -1.0, "high": 1.0, "d": 2}
    raise ValueError(f"Unknown preset {name!r}; expected one of {PRESETS}.")


_PRESET_OPTIONS = {
    "S-A": set(),
    "S-B": set(),
    "S-D": {"regime", "gate", "d", "separation"},
    "S-E": {"n_experts"},
}
_OPTION_DEFAULTS = {"regime": "A", "gate": "softmax", "n_experts": 4, "d": 2, "separation": 1.0}


def _check_preset_options(name: str, **options) -> None:
    if name not in _PRESET_OPTIONS:
        raise ValueError(f"Unknown preset {name!r}; expected one of {PRESETS}.")
    allowed = _PRESET_OPTIONS[name]
    for key, value in options.items():
        if key not in allowed and value != _OPTION_DEFAULTS[key]:
            raise ValueError(
                f"Option `{key}` does not apply to preset {name!r} (it takes "
                f"{sorted(allowed) or 'no options'})."
            )
    sep = options["separation"]
    if (
        isinstance(sep, bool)
        or not isinstance(sep, (int, float, np.integer, np.floating))
        or not np.isfinite(sep)
        or sep <= 0
    ):
        raise ValueError(
            f"`separation` must be a finite number > 0 (1 is the default S-D preset); got {sep!r}."
        )
    for key in ("n_experts", "d"):
        v = options[key]
        lo = 2 if key == "n_experts" else 1
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"`{key}` must be >= {lo} and an integer; got {v!r}.")


def _draw_x(x_dist: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    d = x_dist["d"]
    if x_dist["kind"] == "uniform":
        return rng.uniform(x_dist["low"], x_dist["high"], size=(n, d))
    return rng.standard_normal((n, d))


def simulate(
    truth: str | xr.Dataset,
    n: int = 1000,
    *,
    X: np.ndarray | None = None,
    random_seed: int | np.random.Generator | None = None,
    offset=None,
    gate_X=None,
    trials=None,
    **preset_kwargs,
) -> tuple[np.ndarray, np.ndarray, xr.Dataset]:
    """Draw a data set from a mixing measure or a named literature setting.

    Parameters
    ----------
    truth : str or xarray.Dataset
        A preset name ("S-A", "S-B", "S-D", "S-E") or a mixing measure without sample dims.
    n : int
        Number of observations (ignored when `X` is given).
    X : array_like, shape (n, d), optional
        Inputs to use; by default drawn from the preset's input distribution (a measure given
        directly needs `X`, or draws X ~ N(0, I)).
    random_seed : int or numpy.random.Generator, optional
    offset : array_like, shape (n,), optional
        Per-row log-exposures (families with a log link, e.g. a Poisson truth); default 0.
    gate_X : array_like, shape (n, d_gate), optional
        The gate's covariates, for a truth whose gate has its own (``gate_feature`` labels other
        than the experts' ``feature``); not needed when it has none (constant mixing weights).
    trials : array_like, shape (n,), optional
        Per-row numbers of trials of a binomial truth; default 1 (Bernoulli rows).
    **preset_kwargs
        Passed to :func:`preset` (``regime``, ``gate``, ``n_experts``, ``d``, ``separation``).

    Returns
    -------
    X : ndarray (n, d)
    y : ndarray (n,)
        Drawn as the truth's family says: floats (gaussian), class codes (categorical),
        counts (poisson), successes (binomial).
    truth : xarray.Dataset
        The true mixing measure (``attrs["preset"]`` names the preset when one was used).

    Examples
    --------
    >>> from bayesmoe.data import simulate
    >>> X, y, truth = simulate("S-B", n=200, random_seed=1)
    >>> X.shape, y.shape, truth.sizes["expert"]
    ((200, 2), (200,), 3)
    """
    rng = np.random.default_rng(random_seed)
    if isinstance(truth, str):
        G, x_dist = preset(truth, **preset_kwargs)
        G.attrs["preset"] = truth
    elif isinstance(truth, xr.Dataset):
        if preset_kwargs:
            raise TypeError(f"Preset options {sorted(preset_kwargs)} only apply to a preset name.")
        G = truth
        x_dist = {"kind": "normal", "d": G.sizes["feature"]}
    else:
        raise TypeError(
            f"`truth` must be a preset name or a mixing-measure Dataset; got {type(truth)}."
        )
    if X is None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"`n` must be a positive integer; got {n!r}.")
        X = _draw_x(x_dist, int(n), rng)
    else:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != G.sizes["feature"]:
            raise ValueError(f"`X` must have shape (n, {G.sizes['feature']}); got {X.shape}.")
        if not np.all(np.isfinite(X)):
            raise ValueError("`X` contains NaN or inf; every input must be finite.")
    gate = stored_gate(
        G.attrs.get("gate"),
        what="This truth",
        fix="simulate from a named gate ('softmax', 'tanh', 'sigmoid') instead",
    )
    G = upgrade_measure(G)
    w = gate_probabilities(
        G.beta0.values,
        G.beta1.transpose("gate_feature", "expert").values,
        gate_covariates(G, X, gate_X),
        gate=gate,
        temperature=G.attrs.get("temperature", 1.0),
        active=G["active"].values if "active" in G else None,
    )
    z = (rng.uniform(size=(X.shape[0], 1)) > np.cumsum(w, axis=1)).sum(axis=1)
    z = np.minimum(z, w.shape[1] - 1)
    fam = get_family(measure_family(G))
    canon = {k: G[k].transpose(*dims).values for k, dims in fam.canonical_dims.items()}
    data = {"offset": _offset(offset, X.shape[0]), "trials": _trials(trials, X.shape[0])}
    if trials is not None and "trials" not in fam.row_data:
        raise ValueError(f"`trials` applies to binomial experts; {fam.name} takes none.")
    if offset is not None and not fam.takes_offset:
        raise ValueError(f"`offset` applies to families with a log link; {fam.name} takes none.")
    preds = fam.user_predictors(canon, X, data)
    y = fam.draw(rng, z, *preds)
    return X, y, G
