"""JAX programs exported once and reused by later processes (no Python tracing when warm).

JAX's persistent compilation cache saves XLA's compile, but every process still traces the Python
function into a program first: for NumPyro's NUTS that is ~1 s, as much as the sampling of a
small model. :func:`cached_program` exports the traced program (``jax.export``, StableHLO) to the
cache directory the first time and deserializes it afterwards (milliseconds); XLA then finds the
compiled executable in the persistent cache.

A program file is keyed by a SHA-256 of: its name and settings, the shapes and dtypes of its
arguments, the jax/jaxlib/numpyro versions, the device count, and the source of the modules that
define the computation (so an edited density or sampler never reuses a stale program).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["cached_program", "program_key"]

#: modules whose source defines the exported computations
_SOURCES = ("flat_model.py", "jax_nuts.py", "jax_programs.py", "reparam.py")


def _versions() -> dict:
    out = {}
    for pkg in ("jax", "jaxlib", "numpyro"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _source_files() -> list[Path]:
    """The modules that define the programs: the sampler's, and every expert family's and
    gate's (the density is written there: bayesmoe/families, bayesmoe/gates).
    """
    here = Path(__file__).resolve().parent
    package = here.parents[1]  # bayesmoe/ (this module is bayesmoe/inference/nuts/)
    density = sorted(package.glob("families/*.py")) + sorted(package.glob("gates/*.py"))
    return [here / name for name in _SOURCES] + density


def _source_digest() -> str:
    """Digest of :func:`_source_files`."""
    h = hashlib.sha256()
    for path in _source_files():
        h.update(path.read_bytes())
    return h.hexdigest()


def program_key(name: str, settings: dict, example_args) -> str:
    """The cache key of a program (hex SHA-256)."""
    import jax

    leaves, tree = jax.tree.flatten(example_args)
    avals = [
        (tuple(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x).__name__))) for x in leaves
    ]
    record = {
        "name": name,
        "settings": settings,
        "avals": avals,
        "tree": str(tree),
        "versions": _versions(),
        "devices": jax.local_device_count(),
        "platform": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
        "source": _source_digest(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def cached_program(
    name: str, make_fn, example_args: tuple, *, settings: dict, cache_dir: str | None, mesh=None
):
    """A callable equal to the jitted function ``make_fn()`` on arguments shaped like
    ``example_args``.

    ``make_fn()`` returns a ``jax.jit`` function (with ``in_shardings``/``out_shardings`` over
    ``mesh`` when it runs on several devices); it is called only when the program is not in
    ``cache_dir``. With ``cache_dir`` None this is ``make_fn()`` itself.
    """
    import jax

    if cache_dir is None:
        return make_fn()
    path = Path(cache_dir) / f"{name}-{program_key(name, settings, example_args)[:32]}.jaxexport"
    exported = None
    if path.exists():
        try:
            exported = jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception:
            exported = None
    if exported is None:
        exported = jax.export.export(make_fn())(*example_args)
        try:
            blob = exported.serialize()
        except ImportError:  # flatbuffers missing: run this process's export, store nothing
            blob = None
        if blob is not None:
            _atomic_write(path, blob)
    if mesh is None:
        return jax.jit(exported.call)
    ins = jax.tree.unflatten(exported.in_tree, exported.in_shardings_jax(mesh))[0]
    outs = jax.tree.unflatten(exported.out_tree, exported.out_shardings_jax(mesh))
    return jax.jit(exported.call, in_shardings=ins, out_shardings=outs)


def _atomic_write(path: Path, blob: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except OSError:  # a read-only cache: the program still runs, it is just not kept
        pass
