"""The optional compiled engine (mypyc, built by setup.py): used only when built from the current
sources, and making the same decisions as the interpreted one.

These tests need no compiler: the guard is checked on a copy of the package with a stand-in for a
compiled module, and the comparison runs whichever engine this environment has against the sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from frontoffice.domain import routing
from frontoffice.domain.routing import _accelerator

ROUTING_DIR = Path(routing.__file__).resolve().parent
ROOT = ROUTING_DIR.parents[2]

# One replication of a small multi-queue day with patience, wrap-up, overflow, an answer delay and a
# chat channel; prints the raw stats.
REPLICATION = """
from frontoffice.domain.routing import COMPILED
from frontoffice.wfm.simulation import replication_rngs, run_replication, scenario_from_dict
scenario = scenario_from_dict({
    "hours": 2, "warmup_s": 600, "answer_delay_s": 2,
    "queues": [
        {"id": "sales", "skills": {"sales": 1}, "max_wait_s": 30, "overflow": "backup"},
        {"id": "support", "skills": {"support": 1}, "wrap_up_s": 15, "strategy": "round_robin"},
        {"id": "backup", "strategy": "fewest_contacts"},
    ],
    "agents": [
        {"name": "sales", "count": 4, "skills": {"sales": 5}, "queues": {"sales": 1}},
        {"name": "support", "count": 9, "skills": {"support": 5}, "queues": {"support": 1},
         "capacity": {"voice": 1, "chat": 3}},
        {"name": "universal", "count": 3, "skills": {"sales": 3, "support": 3},
         "queues": {"backup": 1, "support": 2}},
    ],
    "arrivals": [
        {"queue": "sales", "rate_per_min": 1.5, "aht_s": 240, "patience_s": 120},
        {"queue": "support", "rate_per_min": 2.0, "aht_s": 300, "patience_s": 180, "priority": 1},
        {"queue": "support", "channel": "chat", "rate_per_min": 1.0, "aht_s": 600},
    ],
})
print(COMPILED)
print(repr(run_replication(scenario, *replication_rngs(3, 1))))
"""


def _run(code: str, *, pure: bool, path: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != _accelerator.PURE_PYTHON_ENV}
    if pure:
        env[_accelerator.PURE_PYTHON_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], cwd=path, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_engine_in_use_and_the_interpreted_one_simulate_alike() -> None:
    here = _run(REPLICATION, pure=False)
    interpreted = _run(REPLICATION, pure=True)
    assert here.returncode == 0, here.stderr
    assert interpreted.returncode == 0, interpreted.stderr
    assert interpreted.stdout.splitlines()[0] == "False"
    # Compiled or not (True when the build compiled the engine), the same stats to the last bit.
    assert here.stdout.splitlines()[1] == interpreted.stdout.splitlines()[1]


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """The routing package copied as top-level ``routing_copy``, with a stand-in for a compiled engine
    (not a loadable module: importing it fails, so a test sees whether the guard let it be used)."""
    copy = tmp_path / "routing_copy"
    copy.mkdir()
    for source in ROUTING_DIR.glob("*.py"):
        if source.stem != _accelerator.STAMP_MODULE:
            shutil.copy(source, copy / source.name)
    (copy / f"engine{EXTENSION_SUFFIXES[0]}").write_bytes(b"not a compiled module")
    return copy


def _stamp(copy: Path, digest: str) -> None:
    (copy / f"{_accelerator.STAMP_MODULE}.py").write_text(f'SOURCE_DIGEST = "{digest}"\n')


IMPORT_COPY = "import routing_copy, routing_copy.engine as e; print(routing_copy.COMPILED, e.__file__)"


def test_a_build_without_a_stamp_is_not_used(package_copy: Path) -> None:
    result = _run(IMPORT_COPY, pure=False, path=package_copy.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(package_copy / "engine.py")]


def test_a_build_from_other_sources_is_not_used(package_copy: Path) -> None:
    _stamp(package_copy, _accelerator.source_digest(package_copy))
    with (package_copy / "engine.py").open("a") as engine:
        engine.write("# edited after the build\n")
    result = _run(IMPORT_COPY, pure=False, path=package_copy.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", str(package_copy / "engine.py")]


def test_a_current_build_is_used_unless_turned_off(package_copy: Path) -> None:
    _stamp(package_copy, _accelerator.source_digest(package_copy))
    turned_off = _run(IMPORT_COPY, pure=True, path=package_copy.parent)
    assert turned_off.returncode == 0, turned_off.stderr
    assert turned_off.stdout.split() == ["False", str(package_copy / "engine.py")]
    # Left on, the import goes for the (stand-in) compiled module.
    used = _run(IMPORT_COPY, pure=False, path=package_copy.parent)
    assert used.returncode != 0 and "engine" in used.stderr


def test_the_digest_covers_every_source_but_the_stamp(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    before = _accelerator.source_digest(tmp_path)
    _stamp(tmp_path, "whatever")
    assert _accelerator.source_digest(tmp_path) == before
    (tmp_path / "b.py").write_text("y = 3\n")
    assert _accelerator.source_digest(tmp_path) != before
