"""Shared fixtures: one seeded S-B posterior reused by several tests (sampling is the cost)."""

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("BAYESMOE_TEST", "1")


@pytest.fixture(scope="session")
def sb_data():
    from bayesmoe.data import simulate

    return simulate("S-B", n=1000, random_seed=11)


@pytest.fixture(scope="session")
def sb_trace(sb_data):
    """4 chains x 1000 draws (1000 tune) of the K=3 Gaussian MoE on S-B, n=1000, seed 11."""
    from bayesmoe.inference import sample

    X, y, _ = sb_data
    return sample(
        X, y, n_experts=3, draws=1000, tune=1000, chains=4, random_seed=11, progressbar=False
    )
