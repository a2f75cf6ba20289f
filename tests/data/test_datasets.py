"""Bundled real datasets: contents, the loader's contract and its errors."""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayesmoe.data import datasets as ds
from bayesmoe.data.datasets import list_datasets, load_dataset

INFO_KEYS = {
    "name",
    "feature_names",
    "target_name",
    "n_samples",
    "task",
    "description",
    "units",
    "citation",
    "source",
    "license",
}


def _resource(name: str):
    return resources.files("bayesmoe.data").joinpath("datasets", name)


def test_list_datasets_is_sorted_and_has_mcycle():
    names = list_datasets()
    assert names == sorted(names)
    assert "mcycle" in names


@pytest.mark.parametrize("name", list_datasets())
def test_every_dataset_loads_with_consistent_shapes_and_info(name):
    X, y, info = load_dataset(name)
    assert set(info) == INFO_KEYS
    n, d = info["n_samples"], len(info["feature_names"])
    assert isinstance(X, np.ndarray) and X.dtype == np.float64 and X.shape == (n, d)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == (n,)
    assert np.isfinite(X).all() and np.isfinite(y).all()  # no NaN / inf
    assert info["name"] == name
    assert set(info["units"]) == {*info["feature_names"], info["target_name"]}
    for key in ("description", "citation", "source", "license"):
        assert isinstance(info[key], str) and len(info[key]) > 20


@pytest.mark.parametrize("name", list_datasets())
def test_as_frame_gives_the_same_values_with_names(name):
    X, y, info = load_dataset(name)
    Xf, yf, info_f = load_dataset(name, as_frame=True)
    assert isinstance(Xf, pd.DataFrame) and isinstance(yf, pd.Series)
    assert list(Xf.columns) == info["feature_names"] and yf.name == info["target_name"]
    np.testing.assert_array_equal(Xf.to_numpy(), X)
    np.testing.assert_array_equal(yf.to_numpy(), y)
    assert info_f == info
    assert list(Xf.join(yf).columns) == [*info["feature_names"], info["target_name"]]


@pytest.mark.parametrize("name", list_datasets())
def test_file_is_plain_csv_listed_in_provenance(name):
    spec = ds._REGISTRY[name]
    text = _resource(spec.file).read_text(encoding="utf-8")
    header = text.splitlines()[0]
    # Plain header: exactly the column names, no index column, no quoting.
    assert header == ",".join([*spec.feature_names, spec.target_name])
    assert "\r" not in text
    provenance = _resource("PROVENANCE.md").read_text(encoding="utf-8")
    assert f"`{spec.file}`" in provenance


def test_mcycle_summary_numbers():
    # The numbers stated in PROVENANCE.md (Silverman 1985 data as shipped with R's MASS).
    X, y, info = load_dataset("mcycle")
    times = X[:, 0]
    assert info["feature_names"] == ["times"] and info["target_name"] == "accel"
    assert X.shape == (133, 1) and y.shape == (133,)
    assert (times.min(), times.max()) == (2.4, 57.6)
    assert (y.min(), y.max()) == (-134.0, 75.0)
    # Every value has one decimal, so sums in tenths are exact integers.
    t10, a10 = np.rint(times * 10), np.rint(y * 10)
    np.testing.assert_allclose(times * 10, t10, atol=1e-9)
    np.testing.assert_allclose(y * 10, a10, atol=1e-9)
    assert int(t10.sum()) == 33488 and int(a10.sum()) == -33976
    assert np.all(np.diff(times) >= 0)
    assert np.unique(times).size == 94
    assert pd.DataFrame({"t": times, "a": y}).duplicated().sum() == 1
    # Standard deviation as stated in PROVENANCE.md, to its 7 significant digits.
    assert round(float(np.std(y, ddof=1)), 5) == 48.32205
    assert info["citation"].startswith("Silverman, B. W. (1985)")


def test_mcycle_file_hash_matches_provenance():
    # PROVENANCE.md records the SHA-256 of the file; any edit to the data must update both.
    digest = hashlib.sha256(_resource("mcycle.csv").read_bytes()).hexdigest()
    assert digest in _resource("PROVENANCE.md").read_text(encoding="utf-8")


def test_galaxy_values_and_typo_correction():
    # The numbers stated in PROVENANCE.md (Roeder 1990 as shipped with R's MASS, 78th corrected).
    X, y, info = load_dataset("galaxy")
    assert X.shape == (82, 0) and info["feature_names"] == [] and info["task"] == "density"
    assert info["target_name"] == "velocity" and info["units"] == {"velocity": "1000 km/s"}
    kms = np.rint(y * 1000)
    np.testing.assert_allclose(y * 1000, kms, atol=1e-6)  # integer km/s
    assert (kms.min(), kms.max(), int(kms.sum())) == (9172, 34279, 1708180)
    assert kms[77] == 26960  # MASS has 26690 here (its documented typo)
    assert 26690 not in kms
    assert np.all(np.diff(kms) > 0)
    assert round(float(np.std(y, ddof=1)), 5) == 4.56813
    assert info["citation"].startswith("Roeder, K. (1990)")


def test_galaxy_file_hash_matches_provenance():
    digest = hashlib.sha256(_resource("galaxy.csv").read_bytes()).hexdigest()
    assert digest in _resource("PROVENANCE.md").read_text(encoding="utf-8")


def test_info_is_a_fresh_copy():
    _, _, info = load_dataset("mcycle")
    info["feature_names"].append("junk")
    info["units"]["times"] = "junk"
    _, _, again = load_dataset("mcycle")
    assert again["feature_names"] == ["times"]
    assert again["units"]["times"] == "milliseconds after impact"


def test_unknown_name_lists_available_datasets():
    with pytest.raises(ValueError, match="Unknown dataset 'motorcycle'") as err:
        load_dataset("motorcycle")
    for name in list_datasets():
        assert repr(name) in str(err.value)


@pytest.mark.parametrize("bad", [None, 1, ["mcycle"]])
def test_non_string_name_is_a_type_error(bad):
    with pytest.raises(TypeError, match="`name` must be a str"):
        load_dataset(bad)


def test_as_frame_must_be_bool():
    with pytest.raises(TypeError, match="`as_frame` must be True or False"):
        load_dataset("mcycle", as_frame="yes")


def test_damaged_file_is_detected(monkeypatch):
    # The loader checks the file against its spec; a spec that disagrees with the file must fail.
    wrong = dataclasses.replace(ds._REGISTRY["mcycle"], n_samples=132)
    monkeypatch.setitem(ds._REGISTRY, "mcycle", wrong)
    with pytest.raises(RuntimeError, match="damaged"):
        load_dataset("mcycle")
