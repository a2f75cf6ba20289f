"""SBC through the study runner: spec validation, a fast smoke-level calibration check (default
suite) and the pass / must-fail runs of benchmarks/sbc.py (``-m slow``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bayesmoe.diagnostics.sbc import PRIMARY, binomial_band, sbc_summary
from bayesmoe.study import parse_spec, run_study
from bayesmoe.study.sbc import sbc_ranks
from bayesmoe.study.spec import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import sbc as bench


def _spec(**over):
    raw = bench.spec_dict("t", family="gaussian", gate="softmax", replicates=2)
    for key, value in over.items():
        section, name = key.split("__")
        if value is None:
            raw[section].pop(name, None)
        else:
            raw[section][name] = value
    return raw


def test_sbc_spec_is_validated():
    spec = parse_spec(_spec(model__fit_priors={"gate_slope": 0.3}))
    task = spec.tasks()[0]
    assert task.config["model"]["fit_priors"] == {"gate_slope": 0.3}
    assert task.config["data"] == {"source": "prior", "n": 150, "d": 1, "x_seed": 0}
    bad = {
        "inference__method": ("mle", "go together"),
        "model__fit_priors": ({"gate_slop": 1.0}, "Unknown prior"),
        "model__likelihood_power": (0, "likelihood_power"),
        "model__n_classes": (3, "'categorical' only"),
        "inference__n_ranked": (1000, "n_ranked"),
        "inference__init": ("mm", "does not apply"),
        "data__preset": ("S-B", "does not apply"),
    }
    for key, (value, msg) in bad.items():
        raw = _spec(**{key: value})
        if key == "inference__method":
            for k in ("draws", "tune", "chains", "n_ranked", "target_accept"):
                raw["inference"].pop(k)
        with pytest.raises(SpecError, match=msg):
            parse_spec(raw)
    with pytest.raises(SpecError, match="sbc"):  # SBC-only keys elsewhere
        parse_spec(
            {
                "study": {"seed": 1},
                "data": {"source": "simulate", "preset": "S-B", "n": 100},
                "model": {"n_experts": 2, "likelihood_power": 0.5},
                "inference": {"method": "mle"},
            }
        )


@pytest.mark.slow  # ~60 s; tests/study/test_sbc_replicate.py guards the replicate by default
def test_fast_sbc_through_the_runner(tmp_path, client2):
    """10 replicates, ranks among L = 19 draws, Gaussian experts, K = 2, n = 100.

    Loose bands from the binomial error (a smoke check of the machinery, not a calibration
    proof: the slow runs below are that). Under uniform ranks, for each primary component the
    number of replicates with rank <= 9 is Binomial(10, 0.5): the 3-sd band 5 +- 4.7 fails only
    if all 10 fall in one half. Pooled over the C primary components, the number of extreme ranks
    (0 or L) is Binomial(10 C, 2 / 20); it must stay below its mean + 3 sd (a sampler stuck away
    from the truth piles ranks at 0 and L).
    """
    raw = bench.spec_dict(
        "fast-sbc",
        family="gaussian",
        gate="softmax",
        replicates=10,
        n=100,
        draws=80,
        tune=120,
        chains=1,
        n_ranked=19,
    )
    # two workers: the replicates are independent tasks with seeds from the spec, so the ranks
    # do not depend on the number of workers (tests/study/test_runner.py checks that)
    table = run_study(parse_spec(raw), tmp_path / "sbc", client=client2, progressbar=False)
    assert (table["status"] == "done").all(), table.get("error")
    ranks = sbc_ranks(tmp_path / "sbc")
    assert ranks.sizes["replicate"] == 10 and ranks.attrs["n_ranked"] == 19
    assert set(PRIMARY) <= set(ranks.data_vars)
    summ = sbc_summary(ranks)
    prim = [c for c, p in zip(summ["component"].values, summ["primary"].values, strict=True) if p]
    lo, hi = binomial_band(10, n_bins=2, z=3.0)  # 5 +- 4.74
    low = {c: int((_component(ranks, c) <= 9).sum()) for c in prim}
    assert all(lo <= v <= hi for v in low.values()), low
    extreme = sum(int(np.isin(_component(ranks, c), (0, 19)).sum()) for c in prim)
    m = 10 * len(prim) * 0.1
    assert extreme <= m + 3 * np.sqrt(m * 0.9), (extreme, m)
    assert np.all(ranks["divergences"].values >= 0)


def _component(ranks, label):
    name, _, rest = label.partition("[")
    da = ranks[name]
    if rest:
        other = next(d for d in da.dims if d != "replicate")
        da = da.isel({other: int(rest[:-1])})
    return da.values


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, verdict",
    [
        ("gaussian-softmax-K2", "pass"),
        ("gaussian-softmax-K2-gate-prior-10x-too-small", "fail"),
        ("categorical-tanh-K2", "pass"),
        ("binomial-softmax-K2", "pass"),
        ("binomial-softmax-K2-expert-prior-10x-too-small", "fail"),
    ],
)
def test_sbc_pass_and_must_fail(name, verdict, tmp_path):
    """The README runs: the correct model calibrates, the fit with a 10x too narrow gate prior
    (binomial: expert-coefficient prior) is flagged non-uniform (POT-C, Bonferroni at family-wise
    alpha = 0.05 over the components). The binomial runs take about 20 min together on 2 cores;
    by default, test_sbc_replicate.py checks the binomial test quantities against the PyMC
    model's log-likelihood."""
    spec = parse_spec(bench.spec_dict(name, **bench.CONFIGS[name]))
    run_study(spec, tmp_path / name, workers=1, progressbar=False)
    summ = sbc_summary(sbc_ranks(tmp_path / name))
    assert summ.attrs["verdict"] == verdict, summ.to_dataframe()
