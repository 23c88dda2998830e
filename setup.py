"""Build hook: compile the routing engine with mypyc when possible; plain Python otherwise.

The project's metadata lives in ``pyproject.toml``; this file only adds the optional extension modules.
The engine's internal modules (``frontoffice.domain.routing._accelerator.COMPILED_MODULES``) are
compiled with mypyc (a part of mypy, which ``[build-system]`` requires) into extension modules next to
their sources: the same code, about twice as fast, which is what lets the planning simulation run a
day of calls through the real engine in the time the issue asks for. Every step is optional: without
mypyc or a C compiler, or with ``FRONTOFFICE_PURE_PYTHON=1`` set at install time, the package installs
as plain Python and behaves the same. After a build, a stamp with the digest of the engine's sources
is written; at import, ``_accelerator`` uses the compiled modules only while the sources still match
it (edit the engine and it runs interpreted until the next ``pip install -e .``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
ROUTING = ROOT / "frontoffice" / "domain" / "routing"
PACKAGE = "frontoffice.domain.routing"


def _accelerator() -> Any:
    """The package's ``_accelerator`` module, loaded by path (the package itself is not importable
    in the isolated build environment: its dependencies are not installed there)."""
    spec = importlib.util.spec_from_file_location("_frontoffice_accelerator", ROUTING / "_accelerator.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # outside its package, it only defines its functions
    return module


def _note(message: str) -> None:
    print(f"frontoffice build: {message}", file=sys.stderr)


def _extensions() -> list[Any]:
    accel = _accelerator()
    if os.environ.get(accel.PURE_PYTHON_ENV, "") not in ("", "0"):
        _note(f"{accel.PURE_PYTHON_ENV} is set: the routing engine stays plain Python")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _note("mypyc is not available: the routing engine stays plain Python")
        return []
    sources = [str((ROUTING / f"{name}.py").relative_to(ROOT)) for name in accel.COMPILED_MODULES]
    try:
        extensions: list[Any] = mypycify(sources, opt_level="3", group_name=f"{PACKAGE}.{accel.NATIVE_GROUP}")
    except (Exception, SystemExit) as exc:  # mypy reports errors by exiting
        _note(f"mypyc could not compile the routing engine ({exc!r}): it stays plain Python")
        return []
    for extension in extensions:
        # A failed C compilation (no compiler, no Python headers) skips the module with a warning.
        extension.optional = True
    return extensions


class BuildExt(build_ext):
    """build_ext that removes an earlier build first and stamps a complete new one."""

    def run(self) -> None:
        accel = _accelerator()
        routing = Path(self.build_lib if not self.inplace else ROOT, *PACKAGE.split("."))
        stamp = routing / f"{accel.STAMP_MODULE}.py"
        stamp.unlink(missing_ok=True)
        for extension in self.extensions:
            Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
        super().run()
        built = [Path(self.get_ext_fullpath(extension.name)) for extension in self.extensions]
        if built and all(path.exists() for path in built):
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(
                '"""Written by the build (setup.py): the digest of the sources the engine was compiled'
                ' from."""\n\n'
                f'SOURCE_DIGEST = "{accel.source_digest(ROUTING)}"\n'
            )
            _note("the routing engine is compiled (mypyc)")
        elif built:
            for path in built:  # all or nothing: a partial build is not used
                path.unlink(missing_ok=True)
            _note("compiling the routing engine failed: it stays plain Python")


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
