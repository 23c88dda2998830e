"""Several nodes: fail-over time, offer latency through a standby, and throughput of 3 nodes vs 1.

Real ``frontoffice serve`` processes on PostgreSQL (``FRONTOFFICE_BENCH_POSTGRES_URL``, default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``: a database is created per phase and dropped)
and NATS (``FRONTOFFICE_BENCH_NATS_URL``, default ``nats://127.0.0.1:4222``).

- ``contacts_per_s_one_node``: one node (PostgreSQL, in-process bus, no NATS); contacts posted with a
  fixed concurrency, agents accept and complete each offer at once; contacts per second from the
  first post to the last completion.
- ``contacts_per_s_three_nodes``: the same load on a three-node cluster, contacts posted round-robin
  to the three nodes, the agents' desks spread over them. On a 2-core machine this shows the
  cluster's overhead (NATS hops, the mirror), not scale: one engine routes either way.
- ``offer_p99_ms``: contacts posted at 50 per second to a standby, the agents' sockets on a standby;
  from the moment the client sends the POST to the moment the offer reaches the socket.
- ``failover_s``: an agent on a standby has an offer ringing; the leader is killed (``kill -9``); the
  time until that agent's socket hears the new leader's offer (the rebuild offers it again).

    .venv/bin/python bench/cluster.py [--quick]

Prints one JSON line (shared BENCHMARKS.md): failover_s, offer_p99_ms, contacts_per_s_three_nodes,
contacts_per_s_one_node.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from offer_latency import _free_port, _Http, _p99  # the same measuring client

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_schemas import AgentProfileIn, EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate
from frontoffice.store.database import create_engine

PG_URL = os.environ.get("FRONTOFFICE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("FRONTOFFICE_BENCH_NATS_URL", "nats://127.0.0.1:4222")
SECRET = "bench-cluster-secret-0123456789abcdef"
RATE = 50.0  # contacts per second of the latency phase (the target rate)
CONCURRENCY = 16  # POSTs in flight in the throughput phases
# A second latency step well below what a 2-core machine sustains (about 20-40 contacts a second for
# the whole cycle): the path's own cost, without the backlog that a saturated cluster builds.
LIGHT_RATE = 10.0
LIGHT_CONTACTS = 60


async def _admin(sql: str) -> None:
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _database(data_dir: Path, agents: int) -> tuple[str, str, list[str], str]:
    """A new database with a queue, an entry point, ``agents`` agents and a holder agent alone in a
    queue of its own (for the fail-over); returns (url, admin token, agents' tokens, holder's token)."""
    name = f"frontoffice_bench_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrate.upgrade, url)
    c = build_container(load_settings(data_dir=data_dir, database_url=url, secret_key=SECRET))
    system = Actor.system()
    admin = await c.auth.create_user(
        system, UserIn(username="admin", role=Role.ADMIN, password="bench-password-1")
    )
    admin_token = (await c.auth.create_token(system, "bench", user_id=admin.id)).token
    tokens = []
    for queue_name, members in (("bench", agents), ("hold", 1)):
        queue = await c.routing_admin.create_queue(
            system, QueueIn(name=queue_name, settings=QueueSettings(offer_timeout_s=600))
        )
        await c.routing_admin.create_entry_point(
            system,
            EntryPointIn(
                name=queue_name, channel=Channel.WEBFORM, address=queue_name, default_queue_id=queue.id
            ),
        )
        for n in range(members):
            user = await c.auth.create_user(
                system, UserIn(username=f"{queue_name}{n}", role=Role.AGENT, password="bench-password-1")
            )
            await c.routing_admin.set_agent_profile(system, user.id, AgentProfileIn(queues={queue.id: 1}))
            tokens.append((await c.auth.create_token(system, "bench", user_id=user.id)).token)
    await c.close()
    return url, admin_token, tokens[:-1], tokens[-1]


class _Nodes:
    def __init__(self, tmp: Path, url: str, count: int, cluster: bool) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        tmp.mkdir(parents=True, exist_ok=True)
        for n in range(count):
            port = _free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
            env |= {
                "FRONTOFFICE_DATABASE_URL": url,
                "FRONTOFFICE_DATA_DIR": str(tmp / f"node{n}"),
                "FRONTOFFICE_SECRET_KEY": SECRET,
                "FRONTOFFICE_LOG_LEVEL": "WARNING",
                "FRONTOFFICE_MESSAGING_CHANNELS": "false",
            }
            if cluster:
                env |= {"FRONTOFFICE_NATS_URL": NATS_URL, "FRONTOFFICE_NODE_NAME": f"node{n}"}
            log = (tmp / f"node{n}.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "frontoffice", "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.ports.append(port)
        for port in self.ports:
            self._wait_ready(port)

    @staticmethod
    def _wait_ready(port: int) -> None:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node on port {port} never became ready")

    def role(self, n: int) -> str:
        try:
            return str(
                httpx.get(f"http://127.0.0.1:{self.ports[n]}/readyz", timeout=2).json().get("role", "")
            )
        except httpx.TransportError:
            return "dead"

    def leader(self) -> int:
        for _ in range(300):
            for n in range(len(self.ports)):
                if self.procs[n].poll() is None and self.role(n) == "leader":
                    return n
            time.sleep(0.1)
        raise RuntimeError("no leader")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


class _Desks:
    """Agents signed in on given nodes, accepting and completing every offer at once."""

    def __init__(self) -> None:
        self.offered: dict[int, float] = {}
        self.completed: dict[int, float] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()

    async def start(self, ports: list[int], tokens: list[str], *, answer: bool = True) -> None:
        readies = []
        for n, token in enumerate(tokens):
            ready = asyncio.Event()
            readies.append(ready)
            self.tasks.append(asyncio.create_task(self._agent(ports[n % len(ports)], token, ready, answer)))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)

    async def _agent(self, port: int, token: str, ready: asyncio.Event, answer: bool) -> None:
        client = _Http("127.0.0.1", port)
        status, body = await client.request("POST", "/api/v1/agent/login", token, {})
        if status != 204:
            raise RuntimeError(f"login: {status} {body[:200]!r}")
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/api/v1/stream?token={token}", max_queue=None
        ) as ws:
            await ws.recv()
            ready.set()
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] != "offer_contact":
                    continue
                iid = message["data"]["contact_id"]
                self.offered.setdefault(iid, time.perf_counter())
                self.changed.set()
                if not answer:
                    continue
                await client.request("POST", f"/api/v1/agent/offers/{iid}/accept", token)
                await client.request("POST", f"/api/v1/agent/contacts/{iid}/complete", token, {})
                self.completed[iid] = time.perf_counter()
                self.changed.set()

    async def until(self, done: object, bound_s: float = 180) -> None:
        async def wait() -> None:
            while True:
                self.changed.clear()  # before the check: a change after it wakes the wait
                if done():  # type: ignore[operator]
                    return
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout=bound_s)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _post(client: _Http, token: str, n: int, entry: str = "bench") -> int:
    for _ in range(200):
        status, body = await client.request(
            "POST",
            "/api/v1/interactions",
            token,
            {"entry_point": entry, "subject": f"c{n}", "customer": {"email": f"c{n}@bench.example"}},
        )
        if status == 201:
            return int(json.loads(body)["interaction"]["id"])
        if status != 503:
            raise RuntimeError(f"POST /interactions: {status} {body[:200]!r}")
    raise RuntimeError("never acknowledged")


async def _throughput(ports: list[int], admin: str, tokens: list[str], contacts: int) -> float:
    desks = _Desks()
    await desks.start(ports, tokens)
    clients = [_Http("127.0.0.1", p) for p in ports]
    gate = asyncio.Semaphore(CONCURRENCY)
    ids: list[int] = []

    async def one(n: int) -> None:
        async with gate:
            ids.append(await _post(clients[n % len(clients)], admin, n))

    try:
        start = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(contacts)))
        await desks.until(lambda: all(i in desks.completed for i in ids))
        elapsed = max(desks.completed[i] for i in ids) - start
    finally:
        await desks.close()
    return contacts / elapsed


async def _latency(
    standby: int, agents_port: int, admin: str, tokens: list[str], contacts: int, rate: float = RATE
) -> list[float]:
    desks = _Desks()
    await desks.start([agents_port], tokens)
    client = _Http("127.0.0.1", standby)
    sent: dict[int, float] = {}

    async def one(n: int) -> None:
        at = time.perf_counter()
        sent[await _post(client, admin, int(rate) * 100_000 + n)] = at

    try:
        start = time.perf_counter()
        posts = []
        for k in range(contacts):
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(one(k)))
        await asyncio.gather(*posts)
        await desks.until(lambda: all(i in desks.offered for i in sent))
    finally:
        await desks.close()
    return [(desks.offered[i] - sent[i]) * 1000 for i in sent]


async def _failover(nodes: _Nodes, admin: str, holder: str) -> float:
    leader = nodes.leader()
    standby = next(n for n in range(len(nodes.ports)) if n != leader)
    desks = _Desks()
    await desks.start([nodes.ports[standby]], [holder], answer=False)
    try:
        await _post(_Http("127.0.0.1", nodes.ports[standby]), admin, 900_000, entry="hold")
        await desks.until(lambda: len(desks.offered) == 1)
        desks.offered.clear()
        killed = time.perf_counter()
        os.kill(nodes.procs[leader].pid, signal.SIGKILL)
        await desks.until(lambda: len(desks.offered) == 1, bound_s=60)
        return next(iter(desks.offered.values())) - killed
    finally:
        await desks.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    agents, contacts, latency_contacts = (40, 150, 150) if args.quick else (100, 1000, 1500)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        urls = []
        try:
            url, admin, tokens, _ = asyncio.run(_database(tmp / "one", agents))
            urls.append(url)
            one = _Nodes(tmp / "one", url, 1, cluster=False)
            try:
                one_per_s = asyncio.run(_throughput(one.ports, admin, tokens, contacts))
            finally:
                one.stop()
            url, admin, tokens, holder = asyncio.run(_database(tmp / "three", agents))
            urls.append(url)
            three = _Nodes(tmp / "three", url, 3, cluster=True)
            try:
                three_per_s = asyncio.run(_throughput(three.ports, admin, tokens, contacts))
                leader = three.leader()
                standbys = [n for n in range(3) if n != leader]
                posting, desks = three.ports[standbys[0]], three.ports[standbys[1]]
                latencies = asyncio.run(_latency(posting, desks, admin, tokens, latency_contacts))
                # The same path below saturation: what a contact costs when the cluster keeps up.
                light = asyncio.run(_latency(posting, desks, admin, tokens, LIGHT_CONTACTS, LIGHT_RATE))
                failover_s = asyncio.run(_failover(three, admin, holder))
            finally:
                three.stop()
        except BaseException:
            for log in sorted(tmp.glob("**/*.log")):
                print(f"== {log.name}\n{log.read_text()[-2000:]}", file=sys.stderr)
            raise
        finally:
            for url in urls:
                name = make_url(url).database
                asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    result = {
        "bench": "cluster",
        "quick": args.quick,
        "params": {
            "agents": agents,
            "contacts": contacts,
            "latency_contacts": latency_contacts,
            "latency_rate_per_s": RATE,
            "concurrency": CONCURRENCY,
            "database": "postgresql",
            "bus": "nats",
        },
        "metrics": {
            "failover_s": round(failover_s, 3),
            "offer_p99_ms": round(_p99(latencies), 2),
            "offer_p50_ms": round(statistics.median(latencies), 2),
            "offer_p99_ms_at_10_per_s": round(_p99(light), 2),
            "offer_p50_ms_at_10_per_s": round(statistics.median(light), 2),
            "contacts_per_s_three_nodes": round(three_per_s, 1),
            "contacts_per_s_one_node": round(one_per_s, 1),
            "three_to_one_ratio": round(three_per_s / one_per_s, 3),
        },
        "note": "2 cores: three nodes show the cluster's overhead (one engine routes either way), not scale",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
