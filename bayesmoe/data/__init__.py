"""Simulators with known truth and small bundled real datasets."""

from bayesmoe.data.datasets import list_datasets, load_dataset
from bayesmoe.data.simulate import PRESETS, preset, simulate

__all__ = ["PRESETS", "list_datasets", "load_dataset", "preset", "simulate"]
