"""Shared fixtures. Storage and API tests run on SQLite and, when configured, on PostgreSQL.

PostgreSQL runs when ``FRONTOFFICE_TEST_POSTGRES_URL`` names a server database (CI sets it); the
suite then creates a fresh database for the run and drops it at the end. Under ``CI=true`` a
missing PostgreSQL or tool is a failure, not a skip (see :func:`require_tool`).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from frontoffice.bootstrap import Container, build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate
from frontoffice.store.database import create_engine
from frontoffice.store.tables import Base
from frontoffice.web.app import create_app

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("FRONTOFFICE_TEST_POSTGRES_URL", "")
TEST_PASSWORD = "correct horse battery"
T = TypeVar("T")


def ephemeral_ports() -> range:
    """The ports the kernel hands out to sockets bound to port 0 (``net.ipv4.ip_local_port_range``)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2])
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def worker_ports(
    worker: str | None = os.environ.get("PYTEST_XDIST_WORKER"),
    workers: str | None = os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
) -> range:
    """This test process's share of the 12,000 ports just below the ephemeral range: each pytest-xdist
    worker has its own, and no socket bound to port 0 can land in any of them."""
    top = ephemeral_ports().start
    bottom = max(1024, top - 12_000)
    count = max(1, int(workers or 1))
    index = int((worker or "gw0").removeprefix("gw") or 0) % count
    size = (top - bottom) // count
    return range(bottom + index * size, bottom + (index + 1) * size)


_PORTS = worker_ports()
_next_port = itertools.count(random.randrange(len(_PORTS)))


def free_port() -> int:
    """A loopback port free for both TCP and UDP (a server a test starts; a SIP phone, which uses both
    on one number), which stays free until the test binds it.

    A port found by binding port 0 and closing the socket is in the ephemeral range, and in the time
    a server takes to start or a sipp phone to open its socket an outgoing connection or an RTP socket
    of the other worker could take it (seen: a phone that never rang). The port comes from this
    worker's share below that range instead (:func:`worker_ports`), walked in turn, each checked
    free.
    """
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_next_port) % len(_PORTS)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            try:
                udp.bind(("127.0.0.1", port))
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {_PORTS}")


def free_block(size: int) -> int:
    """An even port ``p`` with ``p`` .. ``p + size - 1`` free, taken from ``free_port``'s walk so that no
    later ``free_port`` (a SIP port) lands inside the block."""
    for _ in range(1000):
        first = free_port()
        if first % 2:
            continue  # the walk goes on from the even port after it
        rest = [free_port() for _ in range(size - 1)]
        if rest == list(range(first + 1, first + size)):  # none skipped for being in use
            return first
    raise RuntimeError(f"no {size} free ports in a row")


# How long a test waits for a `frontoffice serve` it started to answer /readyz: a bound on a hung
# start (migrations, the media process) on a loaded machine, not a claim about speed.
SERVER_START_TIMEOUT_S = 60.0
# Between two /readyz probes: the server is not listening yet, so there is no event to wait on.
READY_PROBE_INTERVAL_S = 0.1


def wait_until_serving(proc: subprocess.Popen[Any], port: int) -> None:
    """Wait until the server process ``proc`` answers ``/readyz`` on ``port`` on loopback; fail at
    once with its exit status if it exits first, or after :data:`SERVER_START_TIMEOUT_S`."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(READY_PROBE_INTERVAL_S)
    proc.kill()
    raise AssertionError("the server did not become ready")


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it locally, fail without it in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_blocking(coro_fn: Any) -> Any:
    """Run a coroutine function to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result()


def _backends() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if PG_URL or IN_CI:
        params.append(pytest.param("postgres", marks=pytest.mark.postgres))
    return params


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated once; dropped afterwards."""
    if not PG_URL:
        pytest.fail("CI=true but FRONTOFFICE_TEST_POSTGRES_URL is not set") if IN_CI else pytest.skip(
            "no PostgreSQL"
        )
    base = make_url(PG_URL)
    name = f"frontoffice_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    try:
        run_blocking(lambda: admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable server: fail in CI, skip locally
        message = f"PostgreSQL at {base.render_as_string(hide_password=True)} is not usable: {exc}"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    url = base.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    run_blocking(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(params=_backends())
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "frontoffice.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        await _truncate(url)
        yield url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


class ShiftedClock:
    """Real time plus an offset that tests move forward (offer timeouts, wrap-up, max wait)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def container(
    db_url: str, tmp_path: Path, settings_overrides: dict[str, Any], clock: ShiftedClock
) -> AsyncIterator[Container]:
    settings = load_settings(
        data_dir=tmp_path, database_url=db_url, secret_key="test-secret-key-0123456789", **settings_overrides
    )
    c = build_container(settings, clock=clock)
    await c.start()
    yield c
    await c.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def make_user(container: Container, username: str, role: Role, **extra: Any) -> int:
    user = await container.auth.create_user(
        Actor.system(), UserIn(username=username, role=role, password=TEST_PASSWORD, **extra)
    )
    return user.id


async def token_headers(container: Container, username: str, role: Role) -> dict[str, str]:
    """Create a user of ``role`` and return Authorization headers with a fresh API token."""
    user_id = await make_user(container, username, role)
    token = await container.auth.create_token(Actor.system(), "tests", user_id=user_id)
    return {"Authorization": f"Bearer {token.token}"}


@pytest.fixture
async def admin_headers(container: Container) -> dict[str, str]:
    return await token_headers(container, "root", Role.ADMIN)


@pytest.fixture
async def agent_headers(container: Container) -> dict[str, str]:
    return await token_headers(container, "agent", Role.AGENT)


async def eventually(
    check: Callable[[], Awaitable[T] | T],
    what: str = "the condition",
    *,
    timeout_s: float = 20.0,
    interval_s: float = 0.02,
) -> T:
    """Wait for a condition instead of sleeping a fixed time: call ``check`` (plain or async) until it
    returns a truthy value without raising ``AssertionError``, and return that value; fail saying
    ``what`` never happened. ``timeout_s`` is only a bound on a hung test (generous, for a loaded
    machine), never a claim about speed."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return cast(T, result)
            failure: AssertionError | None = None
        except AssertionError as exc:
            failure = exc
        if asyncio.get_running_loop().time() > deadline:
            if failure is not None:
                raise failure
            raise AssertionError(f"never happened within {timeout_s} s: {what} (last value: {result!r})")
        await asyncio.sleep(interval_s)


async def serve_in_task(server: Any) -> asyncio.Task[None]:
    """Run a ``uvicorn.Server`` (a test double, the app under test) as a task of this loop and return
    once it listens: uvicorn exposes a ``started`` flag, not an event, so the shared :func:`eventually`
    watches it."""
    task = asyncio.get_running_loop().create_task(server.serve())
    await eventually(lambda: server.started or task.done(), "the loopback server listens", timeout_s=10)
    if task.done():
        task.result()  # it failed to start: raise why
    return task
