"""A NATS restart in the middle of load loses no acknowledged contact (a NATS server of the test's own,
on a port of its own, so that restarting it disturbs nothing else)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ..conftest import eventually, free_port, require_tool
from .cluster_nodes import (
    Cluster,
    contacts_listed,
    drop_database,
    make_cluster,
    post_until_acknowledged,
)

pytestmark = pytest.mark.postgres


class NatsServer:
    def __init__(self, binary: str, port: int, log: Path) -> None:
        self.binary, self.port, self.log = binary, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-a", "127.0.0.1", "-p", str(self.port)], stdout=out, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        await asyncio.to_thread(self._spawn)
        await eventually(self._listening, "nats-server listens")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(require_tool("nats-server"), free_port(), tmp_path / "nats.log")
    await server.start()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_nats_restart_under_load_loses_no_acknowledged_contact(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    cluster: Cluster = await asyncio.to_thread(make_cluster, tmp_path, nats_server.url)
    try:
        await asyncio.to_thread(cluster.start, 2)
        leader = await cluster.leader()
        standby = next(n for n in cluster.nodes if n is not leader)
        first = cluster.nodes.index(standby)  # through the standby: every contact crosses NATS
        acknowledged: dict[int, int] = {}
        restarted = asyncio.Event()
        gate = asyncio.Semaphore(4)

        async def post(n: int) -> None:
            async with gate:
                contact, _ = await post_until_acknowledged(cluster, n, f"nats{n}", first=first, prefix="nats")
            acknowledged[n] = contact
            if len(acknowledged) == 10 and not restarted.is_set():
                restarted.set()
                await asyncio.to_thread(nats_server.stop)
                await nats_server.start()

        await asyncio.gather(*(post(n) for n in range(30)))
        assert restarted.is_set()
        listed = await contacts_listed(cluster, leader, "nats")
        assert sorted(listed) == sorted((acknowledged[n], f"nats {n}") for n in range(30))
    finally:
        await asyncio.to_thread(cluster.stop)
        await asyncio.to_thread(drop_database, cluster.database_url)
