"""Nothing accepted is lost: kill -9 the server while contacts pour in, restart, and count."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from ..conftest import free_port, wait_until_serving

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
CONTACTS = 60
KILL_AFTER = 20
VALID_STATES = {"queued", "offered", "connected"}


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*FRONTOFFICE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(proc, port)
    return proc


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([*FRONTOFFICE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_kill_9_mid_stream_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
    }
    await asyncio.to_thread(_cli, env, "init")
    admin = re.search(
        r"token \(shown once\): (\S+)", await asyncio.to_thread(_cli, env, "user", "token", "admin")
    )
    agent = re.search(
        r"token \(shown once\): (\S+)", await asyncio.to_thread(_cli, env, "user", "token", "agent2")
    )
    assert admin and agent
    admin_h = {"Authorization": f"Bearer {admin.group(1)}"}
    agent_h = {"Authorization": f"Bearer {agent.group(1)}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(_start, env, port)
    acknowledged: dict[str, int] = {}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.post("/api/v1/agent/login", json={}, headers=agent_h)).status_code == 204
            gate = asyncio.Semaphore(8)

            async def post(n: int) -> None:
                key = f"k{n}"
                body = {
                    "entry_point": "website",
                    "subject": f"contact {n}",
                    "customer": {"email": f"c{n}@example.org"},
                }
                async with gate:
                    try:
                        r = await client.post(
                            "/api/v1/interactions", json=body, headers={**admin_h, "Idempotency-Key": key}
                        )
                    except httpx.TransportError:
                        return
                if r.status_code in (200, 201):
                    acknowledged[key] = r.json()["interaction"]["id"]
                    if len(acknowledged) == KILL_AFTER:
                        os.kill(server.pid, signal.SIGKILL)

            await asyncio.gather(*(post(n) for n in range(CONTACTS)))
    finally:
        server.kill()
        server.wait()
    assert KILL_AFTER <= len(acknowledged) < CONTACTS, "the kill must land mid-stream"

    server = await asyncio.to_thread(_start, env, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for key, interaction_id in acknowledged.items():
                r = await client.get(f"/api/v1/interactions/{interaction_id}", headers=admin_h)
                assert r.status_code == 200, (key, r.text)
                assert r.json()["state"] in VALID_STATES, r.json()
            # Retrying every request with its key: acknowledged ones come back unchanged, the rest
            # are created now (or found, if they were committed but the answer was lost in the kill).
            ids: dict[str, int] = {}
            for n in range(CONTACTS):
                key = f"k{n}"
                body = {
                    "entry_point": "website",
                    "subject": f"contact {n}",
                    "customer": {"email": f"c{n}@example.org"},
                }
                r = await client.post(
                    "/api/v1/interactions", json=body, headers={**admin_h, "Idempotency-Key": key}
                )
                assert r.status_code in (200, 201), r.text
                ids[key] = r.json()["interaction"]["id"]
                if key in acknowledged:
                    assert r.status_code == 200 and ids[key] == acknowledged[key]
            listed: list[int] = []
            cursor = None
            while True:
                params: dict[str, str | int] = {"limit": 200, "channel": "webform"}
                if cursor:
                    params["cursor"] = cursor
                page = (await client.get("/api/v1/interactions", params=params, headers=admin_h)).json()
                listed += [i["id"] for i in page["items"] if i["subject"].startswith("contact ")]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert sorted(listed) == sorted(ids.values()), "every contact exists exactly once"
            status = (await client.get("/api/v1/agent/status", headers=agent_h)).json()
            assert status["state"] in {"available", "on_contact"}
            assert len(status["offered_contact_ids"]) == 1, "the ringing offer is made again after restart"
    finally:
        server.terminate()
        server.wait(timeout=20)
