"""``aio.ProcessWorker``: pure CPU work (an import's parsing) in a process of its own, so it neither
holds the event loop nor competes with it for the GIL; a worker that dies is replaced."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from frontoffice.aio import ProcessWorker
from frontoffice.services.crm_csv import Parser, parse_lines

from ..conftest import eventually


def _pid_and_double(n: int) -> tuple[int, int]:
    return os.getpid(), 2 * n


def _dies_once(marker: str) -> int:
    """Kills its process the first time (no marker yet), answers its pid the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os._exit(1)
    return os.getpid()


def _fails(message: str) -> None:
    raise ValueError(message)


async def test_the_work_runs_in_another_process_kept_for_the_next_call() -> None:
    worker = ProcessWorker()
    try:
        assert worker.processes() == []
        (pid, doubled), (again, _) = await asyncio.gather(
            worker.run(_pid_and_double, 21), worker.run(_pid_and_double, 1)
        )
        assert doubled == 42
        assert pid != os.getpid() and pid == again
        assert worker.processes() == [pid]
    finally:
        worker.close()
    assert worker.processes() == []


async def test_a_worker_that_dies_during_a_call_is_replaced_and_the_call_made_again(tmp_path: Path) -> None:
    worker = ProcessWorker()
    try:
        first = (await worker.run(_pid_and_double, 1))[0]
        pid = await worker.run(_dies_once, str(tmp_path / "marker"))
        assert pid not in (first, os.getpid())
        assert worker.processes() == [pid]
    finally:
        worker.close()


async def test_an_exception_in_the_work_reaches_the_caller_and_the_worker_stays() -> None:
    worker = ProcessWorker()
    try:
        pid = (await worker.run(_pid_and_double, 1))[0]
        with pytest.raises(ValueError, match="bad row"):
            await worker.run(_fails, "bad row")
        assert worker.processes() == [pid]
    finally:
        worker.close()


def test_repeats_are_found_across_chunks_parsed_apart_and_reported_where_the_row_checks_them() -> None:
    # The rows are parsed by themselves (in the worker); the parser on the loop settles what depends
    # on earlier lines, in the order the file has them, whatever chunk each row was parsed in.
    parser = Parser(",", "RU")
    first = parse_lines([(2, {"id": "7", "phones": "+74951234567", "emails": "a@example.ru"})], ",", "RU")
    later = parse_lines(
        [(3, {"id": "7", "phones": "bad; +7 495 123-45-67", "emails": "a@example.ru", "vip": "maybe"})],
        ",",
        "RU",
    )
    row, errors = parser.settle(first[0])
    assert row is not None and errors == []
    row, errors = parser.settle(later[0])
    assert row is None
    assert [(e.field, e.message) for e in errors] == [
        ("id", "7 repeats line 2"),
        ("phones", errors[1].message),  # "bad": not a phone number
        ("phones", "+74951234567 repeats line 2"),
        ("emails", "a@example.ru repeats line 2"),
        ("vip", "maybe: not true or false"),
    ]
    assert errors[1].message.startswith("bad:")


_PARENT = """
import asyncio, os, signal, sys
from frontoffice.aio import ProcessWorker

async def main() -> None:
    worker = ProcessWorker()
    print(await worker.run(os.getpid), flush=True)

if __name__ == "__main__":
    asyncio.run(main())
    os.kill(os.getpid(), signal.SIGKILL)  # dies without stopping its worker
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"


async def test_a_worker_whose_parent_is_killed_exits_instead_of_staying_orphaned(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    parent = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, cwd=str(tmp_path)
    )
    assert parent.stdout is not None
    worker_pid = int(await asyncio.wait_for(parent.stdout.readline(), timeout=60))
    # The parent is gone (its output pipe may stay open while an orphaned worker holds it).
    await eventually(lambda: not _alive(parent.pid), "the parent was killed", timeout_s=60)
    await eventually(lambda: not _alive(worker_pid), "the orphaned worker exited", timeout_s=30)
