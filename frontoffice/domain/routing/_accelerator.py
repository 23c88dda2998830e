"""Run the engine compiled (mypyc) when an up-to-date build is present, else as plain Python.

``pip install -e .`` (``setup.py``) compiles the engine's internal modules (:data:`COMPILED_MODULES`)
with mypyc into extension modules next to their sources, and records :func:`source_digest` of the
package in ``_build_stamp.py``. Python imports an extension module in preference to the ``.py`` file
of the same name, so a build that no longer matches the sources (an engine edited after the install)
would silently run old code: this module, imported by the package's ``__init__`` before anything else,
loads the sources themselves instead whenever the stamp does not match the sources, or when
``FRONTOFFICE_PURE_PYTHON`` is set. The compiled and the interpreted engine are the same code and make
the same decisions; only the speed differs. (Reading the package's own files here is import machinery,
not domain logic: the domain stays free of I/O once imported.)

The package exposes the outcome as ``frontoffice.domain.routing.COMPILED``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

#: the modules compiled by the build, in dependency order (each imports only earlier ones of these).
COMPILED_MODULES = ("model", "queue_index", "strategies", "engine")
#: mypyc's group name: the shared library of the compiled modules is ``_native__mypyc``.
NATIVE_GROUP = "_native"
#: the file the build writes (not in version control); it holds ``SOURCE_DIGEST``.
STAMP_MODULE = "_build_stamp"
#: set (to anything but "" or "0") to run the engine interpreted even when a build is present.
PURE_PYTHON_ENV = "FRONTOFFICE_PURE_PYTHON"

_HERE = Path(__file__).resolve().parent
_PACKAGE = __name__.rpartition(".")[0]


def source_digest(directory: Path = _HERE) -> str:
    """SHA-256 over the package's Python sources (names and contents), the stamp excluded.

    All sources count, not only the compiled ones: compiled code is checked against the types of the
    modules it imports (outputs, configuration), so a change there also calls for a new build.
    """
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        if path.stem == STAMP_MODULE:
            continue
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _stamped_digest() -> str | None:
    try:
        stamp = importlib.import_module(f"{_PACKAGE}.{STAMP_MODULE}")
    except ImportError:
        return None
    value = getattr(stamp, "SOURCE_DIGEST", None)
    return value if isinstance(value, str) else None


def _built() -> bool:
    """Whether a compiled module sits next to its source (a build happened here)."""
    return any(
        (_HERE / f"{name}{suffix}").exists() for name in COMPILED_MODULES for suffix in EXTENSION_SUFFIXES
    )


def _usable() -> bool:
    """Whether the compiled modules may be used: not turned off, and built from these very sources."""
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return False
    stamped = _stamped_digest()
    return stamped is not None and stamped == source_digest()


def _load_sources() -> None:
    """Import the compiled modules from their ``.py`` files, so that later imports find those."""
    for name in COMPILED_MODULES:
        full_name = f"{_PACKAGE}.{name}"
        if full_name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(full_name, _HERE / f"{name}.py")
        if spec is None or spec.loader is None:  # the file is part of the package
            raise ImportError(f"cannot load {full_name} from its source")
        module = importlib.util.module_from_spec(spec)
        sys.modules[full_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full_name]
            raise


def engine_is_compiled() -> bool:
    """Whether the engine in use is the compiled one (call after the package is imported)."""
    engine = sys.modules.get(f"{_PACKAGE}.engine")
    return engine is not None and not str(getattr(engine, "__file__", "")).endswith(".py")


# Only as a part of the package (the build loads this file on its own, for the digest). Without a
# build there is nothing to guard: the usual imports find the sources.
if _PACKAGE and _built() and not _usable():
    _load_sources()
