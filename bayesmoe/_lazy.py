"""Lazy re-exports (PEP 562): a package's public names are imported on first use.

`import bayesmoe` then costs milliseconds, and the maximum-likelihood path never imports
PyMC/PyTensor/ArviZ.
"""

from __future__ import annotations

import importlib
import sys
import types


def lazy_exports(module_name: str, attrs: dict[str, str], submodules=()):
    """Return ``(__getattr__, __dir__)`` for module `module_name`.

    `attrs` maps a public name to the module that defines it; `submodules` are names of
    subpackages imported on first access.
    """
    submodules = frozenset(submodules)
    # a public name that is also its own module's name (diagnostics.relabel, the function, in
    # diagnostics/relabel.py): importing the submodule sets the package attribute to the module;
    # the package keeps the function instead
    shadowed = {n for n, m in attrs.items() if m.rsplit(".", 1)[-1] == n}
    if shadowed:
        sys.modules[module_name].__class__ = type(
            "LazyPackage", (types.ModuleType,), {"__setattr__": _keeps(shadowed, attrs)}
        )

    def __getattr__(name: str):
        if name in submodules:
            return importlib.import_module(f"{module_name}.{name}")
        if name in attrs:
            value = getattr(importlib.import_module(attrs[name]), name)
            setattr(sys.modules[module_name], name, value)
            return value
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[module_name])) | submodules | set(attrs))

    return __getattr__, __dir__


def _keeps(shadowed: set, attrs: dict):
    def __setattr__(self, name, value):
        if (
            name in shadowed
            and isinstance(value, types.ModuleType)
            and value.__name__ == attrs[name]
        ):
            value = getattr(value, name)
        types.ModuleType.__setattr__(self, name, value)

    return __setattr__
