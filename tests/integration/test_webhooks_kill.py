"""Nothing accepted is lost, webhooks included: kill -9 the server while it is delivering, restart it,
and every event of every acknowledged contact reaches the receiver."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx

from ..conftest import eventually, free_port
from .test_durability import _cli, _start
from .webhook_receiver import WebhookReceiver

CONTACTS = 5


async def test_kill_9_mid_delivery_loses_no_webhook(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        # The receiver is on loopback, which webhooks reach only when allowed.
        "FRONTOFFICE_INTEGRATIONS_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }
    await asyncio.to_thread(_cli, env, "init")
    token = re.search(
        r"token \(shown once\): (\S+)", await asyncio.to_thread(_cli, env, "user", "token", "admin")
    )
    assert token
    admin = {"Authorization": f"Bearer {token.group(1)}"}
    receiver = await WebhookReceiver().start()
    receiver.hold = True  # it takes the requests and does not answer: the server dies mid-delivery
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(_start, env, port)
    acknowledged: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            r = await client.post(
                "/api/v1/webhooks",
                json={"name": "ERP", "url": receiver.url, "event_types": ["interaction.created"]},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            for n in range(CONTACTS):
                r = await client.post(
                    "/api/v1/interactions",
                    json={
                        "entry_point": "website",
                        "subject": f"c{n}",
                        "customer": {"email": f"c{n}@example.org"},
                    },
                    headers={**admin, "Idempotency-Key": f"k{n}"},
                )
                assert r.status_code == 201, r.text
                acknowledged.append(r.json()["interaction"]["id"])
        await eventually(lambda: receiver.requests, "the server started delivering")
        os.kill(server.pid, signal.SIGKILL)
        await asyncio.to_thread(server.wait)
        assert all(r.answered is None for r in receiver.requests), "the kill landed mid-delivery"
        # The requests of the killed server answer now too, to a closed socket: only later ones count.
        killed = len(receiver.requests)

        receiver.release()
        server = await asyncio.to_thread(_start, env, port)

        def delivered() -> set[int]:
            return {
                r.event["data"]["interaction_id"]
                for r in receiver.requests[killed:]
                if r.answered == 200 and r.event["type"] == "interaction.created"
            }

        await eventually(lambda: delivered() >= set(acknowledged), "every event delivered after the restart")
        assert delivered() == set(acknowledged)
    finally:
        server.kill()
        await asyncio.to_thread(server.wait)
        await receiver.stop()
