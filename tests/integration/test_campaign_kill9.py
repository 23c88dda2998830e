"""A campaign survives ``kill -9``: the server is killed while a notification campaign's calls are in
flight (sipp as the called parties), restarted, and the campaign goes on where it was. No number is
dialled twice except an attempt that was in flight at the kill (ended ``unknown`` and retried by the
campaign's rule, as docs/outbound.md says), and none is skipped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx

from ..conftest import eventually, free_port, require_tool, wait_until_serving
from .campaign_helpers import ALL_DAY
from .sipp.runner import SCENARIOS, _udp_bound

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
CARRIER = "127.0.0.2"
NUMBERS = [f"+74951110{n:02d}{d}" for n in range(3) for d in (0, 7, 8, 9)]  # all answer


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


async def test_kill_9_mid_campaign_neither_redials_nor_skips_a_number(db_url: str, tmp_path: Path) -> None:
    sipp = require_tool("sipp")
    carrier_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        "FRONTOFFICE_VOICE_ENABLED": "true",
        "FRONTOFFICE_SIP_HOST": "127.0.0.1",
        "FRONTOFFICE_SIP_PORT": str(free_port()),
        "FRONTOFFICE_SIP_TRUNKS": json.dumps([{"name": "carrier", "host": CARRIER, "port": carrier_port}]),
    }
    await asyncio.to_thread(_cli, env, "init", "--no-demo")
    token = re.search(
        r"token \(shown once\): (\S+)", await asyncio.to_thread(_cli, env, "user", "token", "admin")
    )
    assert token
    admin = {"Authorization": f"Bearer {token.group(1)}"}
    carrier = await asyncio.create_subprocess_exec(
        sipp, "-sf", str(SCENARIOS / "carrier_crowd.xml"), "-i", CARRIER, "-mi", CARRIER,
        "-p", str(carrier_port), "-mp", str(free_port()), "-nostdin", "-timeout", "180s",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await eventually(lambda: _udp_bound(carrier_port), "the crowd listens")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(_start, env, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            r = await client.post(
                "/api/v1/campaigns",
                json={
                    "name": "Storm warning",
                    "mode": "notification",
                    "trunk": "carrier",
                    "windows": ALL_DAY,
                    "retry": {"failed": {"after_s": 0, "max_attempts": 2}},  # unknown follows failed
                    "message_text": "A storm is coming.",
                    "settings": {"max_lines": 3},
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            campaign_id = r.json()["id"]
            csv_text = "phone\n" + "".join(f"{n}\n" for n in NUMBERS)
            r = await client.post(
                f"/api/v1/campaigns/{campaign_id}/contacts/import",
                files={"file": ("list.csv", csv_text.encode(), "text/csv")},
                headers=admin,
            )
            assert r.json()["created"] == len(NUMBERS), r.text
            r = await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=admin)
            assert r.status_code == 200, r.text

            async def placed() -> int:
                page = (
                    await client.get(f"/api/v1/campaigns/{campaign_id}/attempts?limit=500", headers=admin)
                ).json()
                return sum(1 for a in page["items"] if a["state"] != "ended")

            await eventually(lambda: _at_least(placed, 2), "calls are in flight", timeout_s=60)
            os.kill(server.pid, signal.SIGKILL)
    finally:
        server.kill()
        server.wait()

    server = await asyncio.to_thread(_start, env, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def finished() -> bool:
                r = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=admin)
                return r.json()["state"] == "finished"

            await eventually(finished, "the campaign is finished after the restart", timeout_s=120)
            attempts = (
                await client.get(f"/api/v1/campaigns/{campaign_id}/attempts?limit=500", headers=admin)
            ).json()["items"]
            contacts = (
                await client.get(f"/api/v1/campaigns/{campaign_id}/contacts?limit=500", headers=admin)
            ).json()["items"]
    finally:
        server.terminate()
        server.wait(timeout=20)
        carrier.terminate()
        await carrier.wait()
    unknown = [a["phone"] for a in attempts if a["outcome"] == "unknown"]
    assert unknown, "the kill must land while calls are in flight"
    finals = Counter(a["phone"] for a in attempts if a["outcome"] != "unknown")
    assert finals == Counter(NUMBERS), "every number reached exactly once"
    assert all(n == 1 for n in Counter(unknown).values())
    assert {c["phone"]: c["state"] for c in contacts} == dict.fromkeys(NUMBERS, "done")


async def _at_least(count: object, n: int) -> bool:
    return await count() >= n  # type: ignore[operator]
