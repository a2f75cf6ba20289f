"""Shared dask clients for the study tests (starting a LocalCluster costs seconds: do it once)."""

import logging

import pytest


def _client(n_workers: int):
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    return cluster, Client(cluster)


@pytest.fixture(scope="session")
def client1():
    cluster, client = _client(1)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def client2():
    cluster, client = _client(2)
    yield client
    client.close()
    cluster.close()
