"""Simulators with known truth and small bundled real datasets."""

from bayesmoe.data.simulate import PRESETS, preset, simulate

__all__ = ["simulate", "preset", "PRESETS"]
