"""One table of bad inputs, run against every public entry point (issue 13).

Every entry point checks its data through ``bayesmoe._validation`` before anything is compiled or
sampled, so each bad input must raise a ValueError/TypeError whose message names the problem (the
regex) at every entry point where the input can be expressed. No case reaches PyMC's compiler:
the whole table runs in a few seconds.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmoe as bm
from bayesmoe._validation import int_at_least, nonneg_int, positive_int

RNG = np.random.default_rng(0)
N = 50
X_OK = RNG.standard_normal((N, 1))
Y_GAUSS = RNG.standard_normal(N)
Y_CLASS = (X_OK[:, 0] > 0).astype(int)


def _with(arr, i, v):
    out = np.array(arr, dtype=float, copy=True)
    out.flat[i] = v
    return out


# id: (X, y, family, n_experts, gate, message regex)
CASES = {
    "X-1d": (X_OK[:, 0], Y_GAUSS, "gaussian", 2, "softmax", r"1-D array.*reshape\(-1, 1\)"),
    "X-3d": (X_OK[:, :, None], Y_GAUSS, "gaussian", 2, "softmax", r"must be 2-D"),
    "X-nan": (_with(X_OK, 3, np.nan), Y_GAUSS, "gaussian", 2, "softmax", r"NaN or inf"),
    "X-inf": (_with(X_OK, 4, np.inf), Y_GAUSS, "gaussian", 2, "softmax", r"NaN or inf"),
    "X-strings": (np.array([["a"]] * N), Y_GAUSS, "gaussian", 2, "softmax", r"numeric"),
    "X-no-rows": (np.empty((0, 1)), np.empty(0), "gaussian", 2, "softmax", r"empty"),
    "X-None": (None, Y_GAUSS, "gaussian", 2, "softmax", r"2-D numeric array"),
    "X-constant-column": (
        np.column_stack([X_OK, np.ones(N)]),
        Y_GAUSS,
        "gaussian",
        2,
        "softmax",
        r"constant",
    ),
    "y-wrong-length": (X_OK, Y_GAUSS[:-1], "gaussian", 2, "softmax", r"one per row of X"),
    "y-2d": (X_OK, np.column_stack([Y_GAUSS, Y_GAUSS]), "gaussian", 2, "softmax", r"1-D with"),
    "y-nan": (X_OK, _with(Y_GAUSS, 5, np.nan), "gaussian", 2, "softmax", r"NaN or inf"),
    "y-strings-gaussian": (
        X_OK,
        np.array(["a", "b"] * (N // 2)),
        "gaussian",
        2,
        "softmax",
        r"numeric for Gaussian",
    ),
    "y-constant": (X_OK, np.ones(N), "gaussian", 2, "softmax", r"constant"),
    "y-continuous-categorical": (
        X_OK,
        Y_GAUSS,
        "categorical",
        2,
        "softmax",
        r"as many distinct values as rows.*continuous",
    ),
    "y-single-class": (X_OK, np.zeros(N, dtype=int), "categorical", 2, "softmax", r"single class"),
    "y-nan-categorical": (
        X_OK,
        _with(Y_CLASS, 2, np.nan),
        "categorical",
        2,
        "softmax",
        r"NaN or inf",
    ),
    "too-few-rows": (X_OK[:8], Y_GAUSS[:8], "gaussian", 3, "softmax", r"parameters"),
    "n_experts-0": (X_OK, Y_GAUSS, "gaussian", 0, "softmax", r"_experts.*>= 1"),
    "n_experts-float": (X_OK, Y_GAUSS, "gaussian", 2.5, "softmax", r"_experts.*>= 1"),
    "n_experts-bool": (X_OK, Y_GAUSS, "gaussian", True, "softmax", r"_experts.*>= 1"),
    "family-unknown": (X_OK, Y_GAUSS, "weibull", 2, "softmax", r"must be one of"),
    "gate-unknown": (X_OK, Y_GAUSS, "gaussian", 2, "relu", r"gate"),
}


# ---- entry points ---------------------------------------------------------------------------
def _moe(X, y, family, K, gate, tmp_path):
    bm.MoE(n_experts=K, family=family, gate=gate).fit(
        X, y, draws=5, tune=5, chains=1, progressbar=False
    )


def _build_model(X, y, family, K, gate, tmp_path):
    bm.models.build_model(X, y, n_experts=K, family=family, gate=gate)


def _sample(X, y, family, K, gate, tmp_path):
    from bayesmoe.inference import sample

    sample(
        X, y, n_experts=K, family=family, gate=gate, draws=5, tune=5, chains=1, progressbar=False
    )


def _fit_mle(X, y, family, K, gate, tmp_path):
    from bayesmoe.inference.mle.mm import fit_mle

    fit_mle(X, y, K, family=family, gate=gate, n_starts=1, max_iter=2)


def _select(X, y, family, K, gate, tmp_path):
    from bayesmoe.selection.criteria import select_experts

    select_experts(X, y, K, family=family, gate=gate, n_starts=1, max_iter=2)


def _random_k(X, y, family, K, gate, tmp_path):
    from bayesmoe.inference.rjmcmc import sample_random_k

    sample_random_k(X, y, max_experts=K, family=family, gate=gate, draws=5, tune=5, chains=1)


def _study_spec(X, y, family, K, gate, tmp_path):
    """The spec validates a CSV data set with the same helpers when it is parsed."""
    from bayesmoe.study import parse_spec

    X = np.asarray(X) if X is not None else None
    if X is None or X.ndim != 2 or np.asarray(y).ndim != 1 or len(y) != len(X) or len(X) == 0:
        pytest.skip("not expressible as a CSV table")
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    df["y"] = y
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    model = {"family": family, "gate": gate, "n_experts": K}
    parse_spec(
        {
            "study": {"seed": 1},
            "data": {"source": "csv", "path": str(path), "target": "y"},
            "model": model,
            "inference": {"method": "mle"},
        }
    )


ENTRY_POINTS = {
    "MoE.fit": _moe,
    "build_model": _build_model,
    "sample": _sample,
    "fit_mle": _fit_mle,
    "select_experts": _select,
    "sample_random_k": _random_k,
    "study_spec": _study_spec,
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_bad_input_is_rejected_with_a_clear_message(entry, case, tmp_path, monkeypatch):
    X, y, family, K, gate, pattern = CASES[case]
    if entry == "sample_random_k" and case == "too-few-rows":
        pytest.skip("random K checks the rows at K = 1: test_random_k_rows_rule_is_at_k_1")
    from pytensor.compile.maker import FunctionMaker

    compiled = []
    real = FunctionMaker.__init__
    monkeypatch.setattr(
        FunctionMaker, "__init__", lambda self, *a, **k: compiled.append(1) or real(self, *a, **k)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, TypeError), match=pattern):
            ENTRY_POINTS[entry](X, y, family, K, gate, tmp_path)
    assert not compiled, f"{entry} compiled a function before rejecting {case}"


def test_random_k_rows_rule_is_at_k_1():
    """K_max may exceed what the rows could fit alone (a prior over K); K = 1 must fit."""
    from bayesmoe.inference.rjmcmc import sample_random_k

    # d = 1 Gaussian: K = 1 has 3 parameters, so 2 rows are too few whatever K_max is
    with pytest.raises(ValueError, match="parameters"):
        sample_random_k(X_OK[:2], Y_GAUSS[:2], max_experts=3, draws=5, tune=5, chains=1)


def test_categorical_labels_with_few_classes_are_accepted():
    """The continuous-y rule does not reject genuine labels (2 classes, 50 rows)."""
    from bayesmoe._validation import check_class_codes, check_y

    codes, classes = check_y(np.where(Y_CLASS == 1, "yes", "no"), "categorical", N)
    assert classes == ["no", "yes"] and codes.sum() == Y_CLASS.sum()
    assert check_class_codes(Y_CLASS.astype(float), N)[1] == 2


def test_covariate_free_X_is_accepted():
    """X of shape (n, 0) is a covariate-free model (the rule shared with issue 14)."""
    from bayesmoe._validation import check_X

    assert check_X(np.empty((5, 0))).shape == (5, 0)


def test_argparse_int_types():
    assert positive_int("4") == 4 and nonneg_int("0") == 0 and int_at_least(3)("3") == 3
    for bad, parse in (("0", positive_int), ("-1", nonneg_int), ("x", positive_int)):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            parse(bad)


def test_the_two_clis_share_the_int_type_without_importing_each_other():
    import bayesmoe.cli
    import bayesmoe.study.cli

    assert bayesmoe.cli._positive_int is bayesmoe.study.cli._positive_int is positive_int


# ---- sampler sizes: the CLI's rule (issue 19 item 5) ------------------------------------------
# id: (keyword, value, message regex naming the argument)
SAMPLER_CASES = {
    "draws-negative": ("draws", -5, r"`draws` must be an int >= 1; got -5"),
    "draws-0": ("draws", 0, r"`draws` must be an int >= 1; got 0"),
    "draws-float": ("draws", 2.5, r"`draws` must be an int >= 1"),
    "tune-negative": ("tune", -1, r"`tune` must be an int >= 0; got -1"),
    "chains-0": ("chains", 0, r"`chains` must be an int >= 1; got 0"),
    "cores-0": ("cores", 0, r"`cores` must be an int >= 1; got 0"),
    "target_accept-0": ("target_accept", 0.0, r"`target_accept` must be a number in \(0, 1\)"),
    "target_accept-1": ("target_accept", 1.0, r"`target_accept` must be a number in \(0, 1\)"),
    "target_accept-str": ("target_accept", "0.9", r"`target_accept` must be a number in \(0, 1\)"),
}


def _sampler_moe(**kw):
    bm.MoE(n_experts=2).fit(X_OK, Y_GAUSS, progressbar=False, **kw)


def _sampler_sample(**kw):
    from bayesmoe.inference import sample

    sample(X_OK, Y_GAUSS, n_experts=2, progressbar=False, **kw)


def _sampler_random_k(**kw):
    from bayesmoe.inference.rjmcmc import sample_random_k

    sample_random_k(X_OK, Y_GAUSS, max_experts=2, **kw)


def _sampler_dp(**kw):
    from bayesmoe.inference.dp import sample_dp

    sample_dp(X_OK, Y_GAUSS, max_experts=2, **kw)


SAMPLERS = {
    "MoE.fit": _sampler_moe,
    "sample": _sampler_sample,
    "sample_random_k": _sampler_random_k,
    "sample_dp": _sampler_dp,
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
@pytest.mark.parametrize("entry", list(SAMPLERS))
def test_bad_sampler_sizes_are_rejected_naming_the_argument(entry, case, monkeypatch):
    """draws >= 1, tune >= 0, chains >= 1, cores >= 1, 0 < target_accept < 1, before anything
    is compiled (the CLI's argparse types apply the same rule)."""
    name, value, pattern = SAMPLER_CASES[case]
    from pytensor.compile.maker import FunctionMaker

    compiled = []
    real = FunctionMaker.__init__
    monkeypatch.setattr(
        FunctionMaker, "__init__", lambda self, *a, **k: compiled.append(1) or real(self, *a, **k)
    )
    kw = {"draws": 5, "tune": 5, "chains": 1, name: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=pattern):
            SAMPLERS[entry](**kw)
    assert not compiled, f"{entry} compiled a function before rejecting {case}"
