"""Offer latency: contacts posted through the API reach an agent's WebSocket how fast?

A real ``frontoffice serve`` on SQLite (a subprocess), N agents signed in and connected over
WebSocket; contacts are posted through ``POST /api/v1/interactions`` at a fixed rate. Each agent
accepts its offer and completes the contact at once, so agents stay available. Measured per contact:
the time from the POST's response to the offer arriving on the agent's socket (0 when the offer
arrives first — the server publishes right after the commit, before it answers).

    .venv/bin/python bench/offer_latency.py [--quick]

Prints one JSON line (see shared BENCHMARKS.md): p50_ms, p99_ms, contacts, agents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_schemas import AgentProfileIn, EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _setup(data_dir: Path, agents: int) -> tuple[str, list[str]]:
    settings = load_settings(data_dir=data_dir)
    migrate.upgrade(settings.database_url)
    c = build_container(settings)
    system = Actor.system()
    admin = await c.auth.create_user(
        system, UserIn(username="admin", role=Role.ADMIN, password="bench-password-1")
    )
    admin_token = (await c.auth.create_token(system, "bench", user_id=admin.id)).token
    queue = await c.contact_center.create_queue(system, QueueIn(name="bench", settings=QueueSettings()))
    await c.contact_center.create_entry_point(
        system,
        EntryPointIn(name="bench", channel=Channel.WEBFORM, address="bench", default_queue_id=queue.id),
    )
    tokens = []
    for n in range(agents):
        user = await c.auth.create_user(
            system, UserIn(username=f"agent{n}", role=Role.AGENT, password="bench-password-1")
        )
        await c.contact_center.set_agent_profile(system, user.id, AgentProfileIn(queues={queue.id: 1}))
        tokens.append((await c.auth.create_token(system, "bench", user_id=user.id)).token)
    await c.close()
    return admin_token, tokens


async def _run(base: str, admin_token: str, tokens: list[str], contacts: int, rate: float) -> list[float]:
    responded: dict[int, float] = {}
    offered: dict[int, float] = {}
    all_offered = asyncio.Event()
    ws_url = base.replace("http", "ws") + "/api/v1/stream"
    async with httpx.AsyncClient(
        base_url=base, timeout=30, limits=httpx.Limits(max_connections=400)
    ) as client:

        async def agent(token: str, ready: asyncio.Event) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            await client.post("/api/v1/agent/login", json={}, headers=headers)
            async with websockets.connect(f"{ws_url}?token={token}", max_queue=None) as ws:
                await ws.recv()  # hello
                ready.set()
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] != "offer_contact":
                        continue
                    iid = message["data"]["contact_id"]
                    offered.setdefault(iid, time.perf_counter())
                    if len(offered) >= contacts:
                        all_offered.set()
                    await client.post(f"/api/v1/agent/offers/{iid}/accept", headers=headers)
                    await client.post(f"/api/v1/agent/contacts/{iid}/complete", json={}, headers=headers)

        readies = [asyncio.Event() for _ in tokens]
        tasks = [asyncio.create_task(agent(t, e)) for t, e in zip(tokens, readies, strict=True)]
        await asyncio.gather(*(e.wait() for e in readies))
        admin = {"Authorization": f"Bearer {admin_token}"}

        async def post(n: int) -> None:
            r = await client.post(
                "/api/v1/interactions",
                json={
                    "entry_point": "bench",
                    "subject": f"c{n}",
                    "customer": {"email": f"c{n}@bench.example"},
                },
                headers=admin,
            )
            responded[r.json()["interaction"]["id"]] = time.perf_counter()

        start = time.perf_counter()
        posts = []
        for n in range(contacts):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(post(n)))
        await asyncio.gather(*posts)
        await asyncio.wait_for(all_offered.wait(), timeout=60)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [max(0.0, offered[i] - responded[i]) * 1000 for i in responded if i in offered]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=50.0, help="contacts per second")
    args = parser.parse_args()
    agents, contacts = (50, 250) if args.quick else (200, 1500)
    rate = args.rate
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        admin_token, tokens = asyncio.run(_setup(data, agents))
        port = _free_port()
        env = dict(os.environ, FRONTOFFICE_DATA_DIR=str(data), FRONTOFFICE_LOG_LEVEL="WARNING")
        server = subprocess.Popen(
            [sys.executable, "-m", "frontoffice", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            latencies = asyncio.run(_run(base, admin_token, tokens, contacts, rate))
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    result = {
        "bench": "offer_latency",
        "quick": args.quick,
        "params": {"agents": agents, "contacts": contacts, "rate_per_s": rate, "database": "sqlite"},
        "metrics": {
            "p50_ms": round(statistics.median(latencies), 3),
            "p99_ms": round(p99, 3),
            "contacts": len(latencies),
            "agents": agents,
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
