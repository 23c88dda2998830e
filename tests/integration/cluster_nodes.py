"""Nodes of a cluster as real ``frontoffice serve`` processes on loopback, for the cluster tests.

Each test gets a PostgreSQL database of its own (created from ``FRONTOFFICE_TEST_POSTGRES_URL``,
migrated, loaded with the demo data by ``frontoffice init``, dropped afterwards) and a cluster name of
its own on the NATS server at ``FRONTOFFICE_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``).
Without PostgreSQL or NATS the tests skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.engine import make_url

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.demo import load_demo
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate
from frontoffice.store.database import create_engine

from ..conftest import IN_CI, PG_URL, eventually, free_port, run_blocking, wait_until_serving

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
NATS_URL = os.environ.get("FRONTOFFICE_TEST_NATS_URL", "nats://127.0.0.1:4222")
SECRET = "cluster-test-secret-0123456789abcdef"


def _unusable(message: str) -> None:
    pytest.fail(message) if IN_CI else pytest.skip(message)


def require_nats() -> str:
    """The NATS URL of the tests; skip locally (fail in CI) when nothing answers there."""
    parsed = urlparse(NATS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=2):
            return NATS_URL
    except OSError as exc:
        _unusable(f"NATS at {NATS_URL} is not reachable ({exc}); .ci/run starts nats-server -js")
    raise AssertionError("unreachable")


async def admin_sql(sql: str, url: str = PG_URL) -> Any:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql))
            return result.all() if result.returns_rows else None
    finally:
        await engine.dispose()


def new_database() -> str:
    """A fresh, migrated PostgreSQL database for one test (its URL)."""
    if not PG_URL:
        _unusable("no PostgreSQL: set FRONTOFFICE_TEST_POSTGRES_URL")
    name = f"frontoffice_cluster_{uuid.uuid4().hex[:10]}"
    try:
        run_blocking(lambda: admin_sql(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _unusable(f"PostgreSQL is not usable: {exc}")
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def drop_database(url: str) -> None:
    name = make_url(url).database
    run_blocking(lambda: admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # this node's own settings (a SIP port ...)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/stream"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@dataclass
class Cluster:
    """A database and the nodes a test starts on it; tokens of the demo users."""

    database_url: str
    tmp_path: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    def node_env(self, name: str) -> dict[str, str]:
        return self.env | {
            "FRONTOFFICE_DATA_DIR": str(self.tmp_path / name),
            "FRONTOFFICE_NODE_NAME": name,
        }

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [*FRONTOFFICE, *args], env=self.node_env("cli"), capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, count: int, *, each: Sequence[Mapping[str, str]] = ()) -> list[Node]:
        """Start ``count`` more nodes (the i-th with the settings ``each[i]`` of its own, if given)
        and wait until each serves."""
        started = []
        for i in range(count):
            name = f"node{len(self.nodes) + 1}"
            port = free_port()
            log = self.tmp_path / f"{name}.log"
            own = dict(each[i]) if i < len(each) else {}
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [*FRONTOFFICE, "serve", "--port", str(port)],
                    env=self.node_env(name) | own,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            node = Node(name, port, proc, log, own)
            self.nodes.append(node)
            started.append(node)
        for node in started:
            wait_until_serving(node.proc, node.port)
        return started

    def restart(self, node: Node) -> None:
        """Stop ``node`` as systemd would (SIGTERM, wait) and start it again on its port."""
        node.proc.terminate()
        node.proc.wait(timeout=60)
        with node.log.open("ab") as out:
            node.proc = subprocess.Popen(
                [*FRONTOFFICE, "serve", "--port", str(node.port)],
                env=self.node_env(node.name) | node.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until_serving(node.proc, node.port)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def readiness(self, node: Node) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            body: dict[str, Any] = (await client.get(f"{node.url}/readyz")).json()
            return body

    async def leader(self, *, not_: Node | None = None) -> Node:
        """The node that says it leads (waiting for one, during a fail-over)."""

        async def find() -> Node | None:
            for node in self.nodes:
                if node is not_ or not node.alive():
                    continue
                try:
                    if (await self.readiness(node)).get("role") == "leader":
                        return node
                except httpx.TransportError:
                    continue
            return None

        found: Node = await eventually(find, "a node leads", timeout_s=30)
        return found

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.proc.terminate()
        for node in self.nodes:
            try:
                node.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()


def make_cluster(tmp_path: Path, nats_url: str | None = None) -> Cluster:
    nats_url = nats_url or require_nats()
    url = new_database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATABASE_URL": url,
        "FRONTOFFICE_NATS_URL": nats_url,
        "FRONTOFFICE_SECRET_KEY": SECRET,
        "FRONTOFFICE_CLUSTER_NAME": make_url(url).database or "",
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        "FRONTOFFICE_MESSAGING_CHANNELS": "false",
    }
    cluster = Cluster(url, tmp_path, env)
    cluster.tokens = run_blocking(lambda: _demo(url, tmp_path / "setup"))
    return cluster


async def _demo(url: str, data_dir: Path) -> dict[str, str]:
    """The demo data of ``frontoffice init`` (queues, a web form entry point, a supervisor and three
    agents), written in this process (a CLI process per step cost seconds each); API tokens of the
    admin and the demo users."""
    c = build_container(load_settings(data_dir=data_dir, database_url=url, secret_key=SECRET))
    try:
        system = Actor.system()
        await c.auth.create_user(
            system, UserIn(username="admin", role=Role.ADMIN, password="correct horse battery")
        )
        await load_demo(c.contact_center, c.auth)
        ids = {u.username: u.id for u in await c.auth.list_users(system)}
        return {
            user: (await c.auth.create_token(system, "cluster test", user_id=ids[user])).token
            for user in ("admin", "supervisor", "agent1", "agent2", "agent3")
        }
    finally:
        await c.close()


@asynccontextmanager
async def socket_of(node: Node, token: str) -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(f"{node.ws}?token={token}") as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        yield ws


@dataclass
class Heard:
    """Messages a socket received, with the monotonic time of each."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def of_type(self, type_: str, *, after: float = 0.0) -> list[dict[str, Any]]:
        return [m for at, m in self.messages if m["type"] == type_ and at >= after]


async def listen(ws: websockets.ClientConnection, heard: Heard) -> None:
    try:
        async for raw in ws:
            heard.messages.append((time.monotonic(), json.loads(raw)))
    except websockets.ConnectionClosed:
        return


def contact_body(n: int, prefix: str = "contact") -> dict[str, Any]:
    return {
        "entry_point": "website",
        "subject": f"{prefix} {n}",
        "customer": {"email": f"{prefix.replace(' ', '-')}{n}@example.org"},
    }


async def post_until_acknowledged(
    cluster: Cluster, n: int, key: str, first: int, *, prefix: str = "contact", deadline_s: float = 60.0
) -> tuple[int, str]:
    """POST contact ``n`` with its Idempotency-Key to the nodes in turn (starting at ``first``) until
    one acknowledges it, as a load balancer's client retries; returns (interaction id, node)."""
    stop = asyncio.get_running_loop().time() + deadline_s
    attempt = first
    async with httpx.AsyncClient(timeout=15) as client:
        while True:
            node = cluster.nodes[attempt % len(cluster.nodes)]
            attempt += 1
            if not node.alive():
                continue
            try:
                r = await client.post(
                    f"{node.url}/api/v1/interactions",
                    json=contact_body(n, prefix),
                    headers={**cluster.headers("admin"), "Idempotency-Key": key},
                )
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code in (200, 201):
                return int(r.json()["interaction"]["id"]), node.name
            if r is not None and r.status_code not in (502, 503):
                raise AssertionError(f"{node.name} answered {r.status_code}: {r.text}")
            if asyncio.get_running_loop().time() > stop:
                raise AssertionError(f"contact {n} was never acknowledged")


async def contacts_listed(cluster: Cluster, node: Node, prefix: str) -> list[tuple[int, str]]:
    """(id, subject) of every web form contact whose subject starts with ``prefix``."""
    found: list[tuple[int, str]] = []
    cursor = None
    async with httpx.AsyncClient(base_url=node.url, timeout=15) as client:
        while True:
            params: dict[str, str | int] = {"limit": 200, "channel": "webform"}
            if cursor:
                params["cursor"] = cursor
            page = (
                await client.get("/api/v1/interactions", params=params, headers=cluster.headers("admin"))
            ).json()
            found += [(i["id"], i["subject"]) for i in page["items"] if i["subject"].startswith(prefix + " ")]
            cursor = page["next_cursor"]
            if not cursor:
                return found
