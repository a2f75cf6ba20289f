"""Lazy re-exports (PEP 562): a package's public names are imported on first use.

`import bayesmoe` then costs milliseconds, and the maximum-likelihood path never imports
PyMC/PyTensor/ArviZ.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(module_name: str, attrs: dict[str, str], submodules=()):
    """Return ``(__getattr__, __dir__)`` for module `module_name`.

    `attrs` maps a public name to the module that defines it; `submodules` are names of
    subpackages imported on first access.
    """
    submodules = frozenset(submodules)

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
