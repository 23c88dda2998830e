"""Web chat: concurrent visitor sessions on one node and message latency visitor → desk socket.

A real ``frontoffice serve`` on SQLite (a subprocess). N visitors connect to ``/chat/ws`` (the
``websockets`` client, in this process), each says hello and sends a first message (a new chat,
queued: nobody is signed in, so every chat stays open); a supervisor's desk socket
(``/api/v1/stream``) receives every later message of every chat (``conversation_message``). Then
visitors' messages are sent at a fixed total rate to random sessions for a while; each message's
latency is from the moment its client *sends* the frame to the moment the desk socket has it (one
clock: both ends are in this process). ``kb_per_session``: the server's resident memory growth per
open session (``/proc/<pid>/status``), after all sessions connected and sent their first message.

    .venv/bin/python bench/chat.py [--quick] [--sessions 5000] [--rate 200] [--seconds 30]

Prints one JSON line (shared BENCHMARKS.md): sessions, msgs_per_s, p99_ms, kb_per_session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_schemas import EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate

# Sessions connect in waves this large: a burst of thousands of handshakes at once measures the
# kernel's accept queue, not the chat.
CONNECT_WAVE = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _setup(data_dir: Path) -> str:
    settings = load_settings(data_dir=data_dir)
    migrate.upgrade(settings.database_url)
    c = build_container(settings)
    system = Actor.system()
    admin = await c.auth.create_user(
        system, UserIn(username="admin", role=Role.ADMIN, password="bench-password-1")
    )
    token = (await c.auth.create_token(system, "bench", user_id=admin.id)).token
    queue = await c.routing_admin.create_queue(system, QueueIn(name="chat", settings=QueueSettings()))
    await c.routing_admin.create_entry_point(
        system, EntryPointIn(name="bench", channel=Channel.CHAT, address="bench", default_queue_id=queue.id)
    )
    await c.close()
    return token


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Session:
    def __init__(self, n: int) -> None:
        self.n = n
        self.ws: Any = None
        self.sent = 0

    async def open(self, url: str, origin: str) -> None:
        self.ws = await websockets.connect(url, origin=origin, max_queue=64)  # type: ignore[arg-type]
        await self.ws.send(json.dumps({"t": "hello", "last_seen": 0, "page": "https://bench/"}))
        while json.loads(await self.ws.recv())["t"] != "welcome":
            pass
        await self.send(f"first {self.n}")
        while True:
            frame = json.loads(await self.ws.recv())
            if frame["t"] == "ack":
                break
            if frame["t"] == "error":
                raise RuntimeError(frame)

    async def send(self, text: str) -> None:
        self.sent += 1
        await self.ws.send(json.dumps({"t": "msg", "cid": f"s{self.n}m{self.sent}", "text": text}))

    async def drain(self) -> None:
        """Read (and drop) what the server sends: acks, queue positions."""
        try:
            async for _ in self.ws:
                pass
        except websockets.ConnectionClosed:
            return


async def _run(base: str, token: str, pid: int, sessions: int, rate: float, seconds: float) -> dict[str, Any]:
    host = base.removeprefix("http://")
    url = f"ws://{host}/chat/ws?key=bench"
    origin = base
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    desk = await websockets.connect(f"ws://{host}/api/v1/stream?token={token}", max_queue=None)

    async def desk_reader() -> None:
        async for raw in desk:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "conversation_message":
                key = message["data"]["body"]
                started = sent_at.pop(key, None)
                if started is not None:
                    latencies.append((now - started) * 1000)

    reader = asyncio.create_task(desk_reader())
    rss_before = _rss_kb(pid)
    opened: list[Session] = []
    started = time.perf_counter()
    for wave in range(0, sessions, CONNECT_WAVE):
        batch = [Session(n) for n in range(wave, min(sessions, wave + CONNECT_WAVE))]
        await asyncio.gather(*(s.open(url, origin) for s in batch))
        opened += batch
    connect_s = time.perf_counter() - started
    drains = [asyncio.create_task(s.drain()) for s in opened]
    rss_after = _rss_kb(pid)
    # The steady load: `rate` messages a second to random sessions, each send timed.
    total = int(rate * seconds)
    interval = 1.0 / rate
    begin = time.perf_counter()
    for i in range(total):
        due = begin + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        session = random.choice(opened)
        key = f"m{i} s{session.n}"
        sent_at[key] = time.perf_counter()
        await session.send(key)
    elapsed = time.perf_counter() - begin
    deadline = time.perf_counter() + 10
    while sent_at and time.perf_counter() < deadline:  # noqa: ASYNC110 - the reader task empties it
        await asyncio.sleep(0.05)
    lost = len(sent_at)
    reader.cancel()
    for task in drains:
        task.cancel()
    await desk.close()
    await asyncio.gather(*(s.ws.close() for s in opened), return_exceptions=True)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return {
        "sessions": len(opened),
        "msgs_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(p99, 2),
        "kb_per_session": round((rss_after - rss_before) / max(1, len(opened)), 1),
        "messages": total,
        "lost_or_late": lost,
        "connect_s": round(connect_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sessions for 10 s")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    sessions = args.sessions or (1000 if args.quick else 5000)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    # Thousands of sockets: raise this process's open-file limit as far as allowed.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        token = asyncio.run(_setup(data))
        port = _free_port()
        env = dict(os.environ, FRONTOFFICE_DATA_DIR=str(data), FRONTOFFICE_LOG_LEVEL="WARNING")
        log = (Path(tmp) / "server.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "frontoffice", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard)),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            metrics = asyncio.run(_run(base, token, server.pid, sessions, args.rate, seconds))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    print(
        json.dumps(
            {
                "bench": "chat",
                "quick": args.quick,
                "params": {"sessions": sessions, "rate": args.rate, "seconds": seconds, "database": "sqlite"},
                "metrics": metrics,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
