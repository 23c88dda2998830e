"""One serving node per database: the store's node lock, and two real ``frontoffice serve`` processes on
one database (SQLite and PostgreSQL), the second of which refuses to start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from frontoffice.store.database import database_label
from frontoffice.store.node_lock import DatabaseInUse, node_lock

from ..conftest import free_port, wait_until_serving

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
# Exit status of a serve refused because another node serves its database (docs/install.md).
DATABASE_IN_USE = 4


# ------------------------------------------------------------------ the lock itself
async def test_a_second_lock_on_a_locked_database_is_refused_naming_the_database(db_url: str) -> None:
    first, second = node_lock(db_url), node_lock(db_url)
    await first.acquire()
    try:
        with pytest.raises(DatabaseInUse) as refused:
            await second.acquire()
        assert refused.value.database == database_label(db_url)
        assert database_label(db_url) in str(refused.value)
        assert "stop the other 'frontoffice serve'" in str(refused.value)
        assert refused.value.holder is not None and f"pid {os.getpid()}" in refused.value.holder
    finally:
        await first.release()


async def test_a_released_lock_can_be_taken_again(db_url: str) -> None:
    first, second = node_lock(db_url), node_lock(db_url)
    await first.acquire()
    await first.release()

    await second.acquire()

    await second.release()


async def test_locks_on_two_sqlite_databases_do_not_meet(tmp_path: Path) -> None:
    one = node_lock(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    other = node_lock(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await one.acquire()
    try:
        await other.acquire()
        await other.release()
    finally:
        await one.release()


async def test_an_in_memory_database_needs_no_lock() -> None:
    first, second = node_lock("sqlite+aiosqlite://"), node_lock("sqlite+aiosqlite:///:memory:")
    await first.acquire()
    await second.acquire()
    await first.release()
    await second.release()


# ------------------------------------------------------------------ two real servers
def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    return env | {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        "COLUMNS": "400",  # the refusal is one line, not wrapped to a narrow terminal
    }


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FRONTOFFICE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _refused(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start a second server; it must exit by itself (the lock is never waited for)."""
    second = _serve(env, free_port())
    try:
        out, err = second.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        second.kill()
        second.communicate()
        raise AssertionError("a second server on a served database started") from None
    return subprocess.CompletedProcess(second.args, second.returncode, out, err)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FRONTOFFICE, *args], env=env, capture_output=True, text=True, timeout=120)


def _two_servers_on_one_database(db_url: str, tmp_path: Path) -> None:
    env = _env(db_url, tmp_path)
    port = free_port()
    first = _serve(env, port)
    try:
        wait_until_serving(first, port)

        second = _refused(env)

        assert second.returncode == DATABASE_IN_USE, second.stderr
        message = " ".join(second.stderr.split())
        assert database_label(db_url) in message
        assert "already served by another Frontoffice node" in message
        assert "stop the other 'frontoffice serve' first" in message
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        # Commands that migrate or read run beside the serving node.
        for args in (("db", "status"), ("db", "upgrade"), ("init", "--no-demo"), ("user", "list")):
            result = _cli(env, *args)
            assert result.returncode == 0, (args, result.stderr)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    # A node that died without a word leaves no lock behind: the next one starts.
    port = free_port()
    again = _serve(env, port)
    try:
        wait_until_serving(again, port)
    finally:
        again.terminate()
        again.communicate(timeout=30)


async def test_a_second_server_on_a_served_database_refuses_to_start(db_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(_two_servers_on_one_database, db_url, tmp_path)
