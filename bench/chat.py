"""Web chat: concurrent visitor sessions on one node and message latency visitor → desk socket.

A real ``frontoffice serve`` on SQLite (a subprocess). N visitors connect to ``/chat/ws`` (the
``websockets`` client, in ``--clients`` client processes: one process cannot keep up with thousands
of sockets and would measure itself), each says hello and sends a first message (a new chat,
queued: nobody is signed in, so every chat stays open); a supervisor's desk socket
(``/api/v1/stream``) receives every later message of every chat (``conversation_message``). Then
visitors' messages are sent at a fixed total rate to random sessions for a while; each message's
latency is from the moment its client *sends* the frame (the time is in the message's text) to the
moment the desk socket has it (one clock: ``time.perf_counter`` is CLOCK_MONOTONIC, the same for
every process of the machine). ``kb_per_session``: the server's resident memory growth per
open session (``/proc/<pid>/status``), after all sessions connected and sent their first message.

    .venv/bin/python bench/chat.py [--quick] [--sessions 5000] [--rate 200] [--seconds 30]
        [--database postgresql+asyncpg://postgres@127.0.0.1:5432/bench]

A PostgreSQL URL names a server database that is emptied (its tables dropped) and migrated; the
default is a new SQLite file in a temporary data directory.

Prints one JSON line (shared BENCHMARKS.md): sessions, msgs_per_s, p99_ms, kb_per_session.
"""

from __future__ import annotations

import sys

# Run as ``python bench/chat.py``, this directory comes first on sys.path, where a bench named like a
# standard module (bench/email.py once was) would shadow it: keep the standard library first.
if sys.path and sys.path[0] == __file__.rpartition("/")[0]:
    del sys.path[0]

import argparse
import asyncio
import contextlib
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
from sqlalchemy import text

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Channel, Role
from frontoffice.services.acd_schemas import EntryPointIn, QueueIn, QueueSettings
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.store import migrate
from frontoffice.store.database import create_engine
from frontoffice.store.tables import Base

# Sessions connect in waves this large: a burst of thousands of handshakes at once measures the
# kernel's accept queue, not the chat.
CONNECT_WAVE = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _setup(data_dir: Path, database_url: str | None) -> str:
    settings = load_settings(data_dir=data_dir, **({"database_url": database_url} if database_url else {}))
    if settings.database_url.startswith("postgresql"):
        engine = create_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
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


# Seconds a handshake may take: on a loaded machine a wave of 200 handshakes queues behind the
# server's other work; the measurement is the connect time, not a failed run.
OPEN_TIMEOUT_S = 120.0


class Session:
    def __init__(self, n: int) -> None:
        self.n = n
        self.ws: Any = None
        self.sent = 0

    async def open(self, url: str, origin: str) -> None:
        self.ws = await websockets.connect(  # type: ignore[arg-type]
            # No client keepalive pings: a busy client process would time out its own pings and
            # drop sessions mid-run (the server pings, and this client answers).
            url,
            origin=origin,
            max_queue=64,
            open_timeout=OPEN_TIMEOUT_S,
            ping_interval=None,
        )
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


async def _worker(
    url: str, origin: str, first: int, count: int, worker: int, rate: float, seconds: float
) -> None:
    """One client process: opens sessions ``first .. first+count-1`` (prints ``connected``), waits for
    ``go`` on stdin, sends ``rate`` messages a second to random sessions of its own for ``seconds``
    (each body ends with its send time, ``time.perf_counter()``: CLOCK_MONOTONIC, one clock for all
    the processes of this machine), then prints ``sent <n>`` and keeps reading until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    opened: list[Session] = []
    for wave in range(first, first + count, CONNECT_WAVE):
        batch = [Session(n) for n in range(wave, min(first + count, wave + CONNECT_WAVE))]
        await asyncio.gather(*(s.open(url, origin) for s in batch))
        opened += batch
    drains = [asyncio.create_task(s.drain()) for s in opened]
    print("connected", flush=True)
    await reader.readline()  # go
    total = int(rate * seconds)
    interval = 1.0 / rate
    begin = time.perf_counter()
    for i in range(total):
        delay = begin + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        session = random.choice(opened)
        with contextlib.suppress(websockets.ConnectionClosed):  # counted as lost by the desk side
            await session.send(f"m{i} w{worker} s{session.n} {time.perf_counter():.6f}")
    print("sent", total, round(total / (time.perf_counter() - begin), 1), flush=True)
    await reader.readline()  # stdin closes: done
    for task in drains:
        task.cancel()
    await asyncio.gather(*(s.ws.close() for s in opened), return_exceptions=True)


async def _run(
    base: str, token: str, pid: int, sessions: int, rate: float, seconds: float, clients: int
) -> dict[str, Any]:
    host = base.removeprefix("http://")
    url = f"ws://{host}/chat/ws?key=bench"
    origin = base
    received: set[str] = set()
    latencies: list[float] = []
    desk = await websockets.connect(f"ws://{host}/api/v1/stream?token={token}", max_queue=None)

    async def desk_reader() -> None:
        async for raw in desk:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "conversation_message":
                key, _, stamp = message["data"]["body"].rpartition(" ")
                if key.startswith("m") and key not in received:
                    received.add(key)
                    latencies.append((now - float(stamp)) * 1000)

    reader = asyncio.create_task(desk_reader())
    rss_before = _rss_kb(pid)
    share = -(-sessions // clients)
    workers = []
    started = time.perf_counter()
    for w in range(clients):
        first, count = w * share, min(share, sessions - w * share)
        if count <= 0:
            break
        workers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",
                __file__,
                "--worker",
                url,
                origin,
                str(first),
                str(count),
                str(w),
                str(rate / clients),
                str(seconds),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    for proc in workers:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line.startswith(b"connected"):
            raise RuntimeError(f"a client process failed: {line!r}")
    connect_s = time.perf_counter() - started
    rss_after = _rss_kb(pid)
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    total = 0
    achieved = 0.0
    for proc in workers:
        assert proc.stdout is not None
        _, n, per_s = (await proc.stdout.readline()).split()
        total += int(n)
        achieved += float(per_s)
    deadline = time.perf_counter() + 10
    while len(received) < total and time.perf_counter() < deadline:  # noqa: ASYNC110 - the reader fills it
        await asyncio.sleep(0.05)
    lost = total - len(received)
    reader.cancel()
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.close()
    await asyncio.gather(*(proc.wait() for proc in workers))
    await desk.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return {
        "sessions": sessions,
        "msgs_per_s": round(achieved, 1),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(p99, 2),
        "kb_per_session": round((rss_after - rss_before) / max(1, sessions), 1),
        "messages": total,
        "lost_or_late": lost,
        "connect_s": round(connect_s, 1),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, origin, first, count, worker, rate, seconds = sys.argv[2:9]
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        asyncio.run(_worker(url, origin, int(first), int(count), int(worker), float(rate), float(seconds)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sessions for 10 s")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument(
        "--clients", type=int, default=2, help="client processes (one cannot keep up with 5,000 sockets)"
    )
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    sessions = args.sessions or (1000 if args.quick else 5000)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    # Thousands of sockets: raise this process's open-file limit as far as allowed.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        token = asyncio.run(_setup(data, args.database))
        port = _free_port()
        env = dict(os.environ, FRONTOFFICE_DATA_DIR=str(data), FRONTOFFICE_LOG_LEVEL="WARNING")
        if args.database:
            env["FRONTOFFICE_DATABASE_URL"] = args.database
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
            metrics = asyncio.run(
                _run(base, token, server.pid, sessions, args.rate, seconds, max(1, args.clients))
            )
        except BaseException:
            log.flush()
            print((Path(tmp) / "server.log").read_text()[-20_000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    print(
        json.dumps(
            {
                "bench": "chat",
                "quick": args.quick,
                "params": {
                    "sessions": sessions,
                    "rate": args.rate,
                    "seconds": seconds,
                    "clients": args.clients,
                    "database": "postgresql" if (args.database or "").startswith("postgresql") else "sqlite",
                },
                "metrics": metrics,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
