"""The contact path's CPU inside the application: no sockets, no client to share the machine with.

The three requests of every contact (``POST /api/v1/interactions``, ``POST
/api/v1/agent/offers/{id}/accept``, ``POST /api/v1/agent/contacts/{id}/complete``) are sent to the ASGI
application as direct calls, one contact after another, with the container of ``frontoffice serve``
on a fresh SQLite database (group commit, the commit thread, the outlet's subscribers all run). The
figure is the process's CPU per contact (``time.process_time``, commit threads included), and per
request. ``bench/offer_latency.py`` measures the whole server (uvicorn, sockets, WebSocket fan-out,
200 agents); this one isolates the application's share, and moves much less between runs on a busy
machine (it is one process on one core).

    .venv/bin/python bench/contact_path.py [--quick]

Prints one JSON line (shared BENCHMARKS.md): cpu_ms_per_contact, post_ms, accept_ms, complete_ms,
contacts, machine_reference_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import machine_reference_ms

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_schemas import AgentProfileIn, EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate
from frontoffice.web.app import create_app


async def _call(app: Any, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request as uvicorn hands it to the application."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def _run(contacts: int, warm_up: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), log_level="WARNING")
        migrate.upgrade(settings.database_url)
        c = build_container(settings)
        app = create_app(c)
        await c.start()
        try:
            system = Actor.system()
            admin = await c.auth.create_user(
                system, UserIn(username="admin", role=Role.ADMIN, password="bench-password-1")
            )
            admin_token = (await c.auth.create_token(system, "bench", user_id=admin.id)).token
            queue = await c.routing_admin.create_queue(
                system, QueueIn(name="bench", settings=QueueSettings())
            )
            await c.routing_admin.create_entry_point(
                system,
                EntryPointIn(
                    name="bench", channel=Channel.WEBFORM, address="bench", default_queue_id=queue.id
                ),
            )
            agent = await c.auth.create_user(
                system, UserIn(username="agent", role=Role.AGENT, password="bench-password-1")
            )
            await c.routing_admin.set_agent_profile(system, agent.id, AgentProfileIn(queues={queue.id: 1}))
            token = (await c.auth.create_token(system, "bench", user_id=agent.id)).token
            status, body = await _call(app, "/api/v1/agent/login", token, b"{}")
            if status != 204:
                raise RuntimeError(f"agent login: {status} {body[:200]!r}")
            spent = {"post": 0.0, "accept": 0.0, "complete": 0.0}

            async def contact(n: int) -> None:
                started = time.process_time()
                payload = {
                    "entry_point": "bench",
                    "subject": f"c{n}",
                    "customer": {"email": f"c{n}@bench.example"},
                }
                status, body = await _call(
                    app, "/api/v1/interactions", admin_token, json.dumps(payload).encode()
                )
                if status != 201:
                    raise RuntimeError(f"POST /interactions: {status} {body[:200]!r}")
                iid = json.loads(body)["interaction"]["id"]
                posted = time.process_time()
                status, body = await _call(app, f"/api/v1/agent/offers/{iid}/accept", token)
                if status != 204:
                    raise RuntimeError(f"accept: {status} {body[:200]!r}")
                accepted = time.process_time()
                status, body = await _call(app, f"/api/v1/agent/contacts/{iid}/complete", token, b"{}")
                if status != 200:
                    raise RuntimeError(f"complete: {status} {body[:200]!r}")
                done = time.process_time()
                spent["post"] += posted - started
                spent["accept"] += accepted - posted
                spent["complete"] += done - accepted

            for n in range(warm_up):
                await contact(n)
            spent = dict.fromkeys(spent, 0.0)
            for n in range(contacts):
                await contact(warm_up + n)
        finally:
            await c.close()
    per = {f"{k}_ms": round(1000 * v / contacts, 3) for k, v in spent.items()}
    return {"cpu_ms_per_contact": round(sum(per.values()), 3), **per}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    contacts, warm_up = (300, 50) if args.quick else (2000, 100)
    metrics = asyncio.run(_run(contacts, warm_up))
    result = {
        "bench": "contact_path",
        "quick": args.quick,
        "params": {"contacts": contacts, "warm_up": warm_up, "database": "sqlite"},
        "metrics": {**metrics, "contacts": contacts, "machine_reference_ms": machine_reference_ms()},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
