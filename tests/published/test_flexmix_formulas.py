"""flexmix's published examples reached from their formulas (bayesmoe.formula), as written in
flexmix's documentation: seizure ``Seizures ~ Treatment * log(Day) + offset(log(Hours))`` with
constant weights, and patent ``Patents ~ lgRD`` with the concomitant model ``~ RDS``.

Same tolerance as tests/published/test_flexmix.py (the hand-built matrices): a fit "reaches" a
printed log-likelihood when it is at least the printed value minus half a unit of its fourth
decimal and not more than 0.01 above it. The formula fit must also equal the matrix fit of the
same seed to round-off (the formula builds the same columns).
Sources: tests/published/PROVENANCE.md.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmoe.inference.mle.mm import fit_mle

HERE = Path(__file__).parent
HALF_DIGIT = 5e-5  # half a unit of the printed fourth decimal
ABOVE = 0.01  # further above the printed optimum than EM noise allows: another likelihood
SEIZURE = "Seizures ~ Treatment * log(Day) + offset(log(Hours))"


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit_mle(*args, family="poisson", n_starts=20, random_seed=0, **kwargs)


def _reaches(loglik: float, printed: float) -> bool:
    return printed - HALF_DIGIT <= loglik <= printed + ABOVE


def test_seizure_from_its_formula():
    s = pd.read_csv(HERE / "seizure.csv")
    res = _fit(data=s, formula=SEIZURE, gate_formula="~ 1", n_experts=2)
    assert res.n_params_ == 9  # flexmix's df
    assert _reaches(res.loglik_, -376.1762), res.loglik_
    assert list(res.measure_["feature"].values) == [
        "Treatment[T.Yes]",
        "log(Day)",
        "Treatment[T.Yes]:log(Day)",
    ]
    treated = (s["Treatment"] == "Yes").to_numpy(float)
    log_day = np.log(s["Day"].to_numpy(float))
    X = np.column_stack([treated, log_day, treated * log_day])
    twin = _fit(
        X,
        s["Seizures"].to_numpy(float),
        2,
        offset=np.log(s["Hours"].to_numpy(float)),
        gate_X=np.zeros((len(s), 0)),
    )
    np.testing.assert_allclose(res.loglik_, twin.loglik_, rtol=1e-10)


def test_seizure_formula_without_the_offset_misses_it():
    s = pd.read_csv(HERE / "seizure.csv")
    res = _fit(data=s, formula="Seizures ~ Treatment * log(Day)", gate_formula="~ 1", n_experts=2)
    assert not _reaches(res.loglik_, -376.1762), res.loglik_


def test_patent_from_its_formulas():
    p = pd.read_csv(HERE / "patent.csv")
    res = _fit(data=p, formula="Patents ~ lgRD", gate_formula="~ RDS", n_experts=3)
    assert res.n_params_ == 10  # flexmix's df
    assert list(res.measure_["gate_feature"].values) == ["RDS"]
    assert _reaches(res.loglik_, -197.6753), res.loglik_


def test_patent_without_the_gate_formula_misses_it():
    p = pd.read_csv(HERE / "patent.csv")
    res = _fit(data=p, formula="Patents ~ lgRD", n_experts=3)  # the gate sees lgRD
    assert not _reaches(res.loglik_, -197.6753), res.loglik_
