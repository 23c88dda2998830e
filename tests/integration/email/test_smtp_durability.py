"""Nothing accepted over SMTP is lost: kill -9 a real `frontoffice serve` during a burst of mail,
restart it, and count. Every message that got 250 is stored once; the clients then retry the rest
(as mail servers do with a message that got no answer) and nothing is duplicated."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import smtplib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ...conftest import free_port, wait_until_serving
from .helpers import mail

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]
MESSAGES = 60
KILL_AFTER = 20
CLIENTS = 6
SUPPORT = "support@acme.example"


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([*FRONTOFFICE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*FRONTOFFICE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(proc, port)
    return proc


def _message(n: int) -> bytes:
    return mail(
        sender=f"Customer {n} <c{n}@customer.example>",
        subject=f"Question {n}",
        message_id=f"<burst-{n}@customer.example>",
    )


def _send(smtp_port: int, n: int) -> bool:
    """True when the server answered 250 to this message."""
    try:
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            return client.sendmail(f"c{n}@customer.example", [SUPPORT], _message(n)) == {}
    except (OSError, smtplib.SMTPException):
        return False


async def test_kill_9_during_an_smtp_burst_loses_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env |= {
        "FRONTOFFICE_DATA_DIR": str(tmp_path / "data"),
        "FRONTOFFICE_DATABASE_URL": db_url,
        "FRONTOFFICE_LOG_LEVEL": "WARNING",
        "FRONTOFFICE_SMTP_ENABLED": "true",
        "FRONTOFFICE_SMTP_PORT": str(smtp_port),
    }
    await asyncio.to_thread(_cli, env, "init")
    token = re.search(
        r"token \(shown once\): (\S+)", await asyncio.to_thread(_cli, env, "user", "token", "admin")
    )
    assert token
    admin = {"Authorization": f"Bearer {token.group(1)}"}
    base = f"http://127.0.0.1:{http_port}"
    server = await asyncio.to_thread(_start, env, http_port)
    acknowledged: set[int] = set()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            queue = await client.post("/api/v1/queues", json={"name": "Mail"}, headers=admin)
            assert queue.status_code == 201, queue.text
            entry = await client.post(
                "/api/v1/entry-points",
                json={
                    "name": "Support",
                    "channel": "email",
                    "address": SUPPORT,
                    "default_queue_id": queue.json()["id"],
                },
                headers=admin,
            )
            assert entry.status_code == 201, entry.text

        def burst() -> None:
            def one(n: int) -> None:
                if _send(smtp_port, n):
                    acknowledged.add(n)
                    if len(acknowledged) == KILL_AFTER:
                        os.kill(server.pid, signal.SIGKILL)

            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(one, range(MESSAGES)))

        await asyncio.to_thread(burst)
    finally:
        server.kill()
        server.wait()
    assert KILL_AFTER <= len(acknowledged) < MESSAGES, "the kill must land mid-burst"

    server = await asyncio.to_thread(_start, env, http_port)
    try:
        # The mail servers retry every message that got no 250 (and, harmlessly, some that did).
        retried = await asyncio.to_thread(lambda: [n for n in range(MESSAGES) if _send(smtp_port, n)])
        assert sorted(retried) == list(range(MESSAGES))
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            subjects: list[str] = []
            cursor = None
            while True:
                params: dict[str, str | int] = {"limit": 200, "channel": "email"}
                if cursor:
                    params["cursor"] = cursor
                page = (await client.get("/api/v1/interactions", params=params, headers=admin)).json()
                # (`init` seeds a few demo contacts of its own.)
                subjects += [i["subject"] for i in page["items"] if i["subject"].startswith("Question ")]
                cursor = page["next_cursor"]
                if not cursor:
                    break
    finally:
        server.kill()
        server.wait()
    assert sorted(subjects) == sorted(f"Question {n}" for n in range(MESSAGES)), "one contact per message"
