"""Email in: how many messages per second are accepted over SMTP, parsed, threaded and committed,
and how fast does a thread of 500 messages open in a mailbox of 200,000?

``messages_per_s``: a node with the built-in SMTP server (and the whole intake: parse, blobs,
dedupe, threading, customer, interaction through the ACD) takes N messages (full: 3,000; ``--quick``:
600) from 8 concurrent SMTP client connections (the standard library's ``smtplib``, as a sending MTA
keeps a connection for several messages); 70% open new threads from new customers, 30% answer an
earlier message (In-Reply-To) and are appended to its open interaction. The clock runs from the first
``MAIL FROM`` to the last ``250``; every ``250`` is after the message's commit;
``server_cpu_ms_per_message`` is the server process's CPU time over the same span per message.
The clients run in a process of their own, as sending MTAs do: as threads of the server's process
they took its interpreter lock from the event loop at every reply (``client_process_s`` says how
long that process took to start, outside the clock).

``ticket_open_p99_ms``: a mailbox of M messages (full: 200,000; ``--quick``: 20,000) is bulk-loaded
with Core inserts (threads of 10 messages, one of 500); opening the 500-message thread is reading its
header and all its messages page by page (200 a page, attachments' metadata included) through the
thread service (the code the API handler calls, without HTTP). p99 over 50 opens.

The node runs as ``frontoffice serve`` runs it: on its event loop (``--loop auto``: uvloop where it
is installed; ``--loop asyncio`` for the standard library's, as this bench ran before), with what it
built moved out of the garbage collector's sight before it serves (``aio.settle_heap``) and the
GIL handed back to the loop within 0.5 ms (``aio.favour_the_loop``).

No baseline (no other mail intake runs here); ``machine_reference_ms`` tells machines apart. Run:

    .venv/bin/python bench/email_intake.py [--quick] [--database postgresql+asyncpg://...] [--loop ...]

A PostgreSQL URL names a server database that is emptied (its tables dropped) and migrated. The last
stdout line is the JSON result.
"""

from __future__ import annotations

import os
import sys

# This file was named after what it measures (BENCHMARKS.md), which is also the standard library's
# ``email`` package: run as a script, its own directory goes last on the path (``_machine`` is
# still found there, the standard library first).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.append(sys.path.pop(0))

import argparse
import asyncio
import json
import multiprocessing
import platform
import smtplib
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from _machine import machine_reference_ms
from sqlalchemy import func, insert, select, text

from frontoffice import aio
from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.services.acd_schemas import EntryPointIn, QueueIn
from frontoffice.services.context import Actor
from frontoffice.store import migrate
from frontoffice.store.database import create_engine
from frontoffice.store.tables import Base, EntryPoint, Interaction, Message, Queue, Thread

SUPPORT = "support@acme.example"
CLIENTS = 8
REPLY_SHARE = 0.3
BIG_THREAD = 500
THREAD_SIZE = 10
CHUNK = 10_000
OPENS = 50
PAGE = 200
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BODY = (
    "Здравствуйте! Заказ оплачен неделю назад, но до сих пор не пришёл. Подскажите, пожалуйста, "
    "что с ним и когда ждать доставку? Номер заказа в теме письма.\n\n-- \nИван Петров\n+7 916 555-12-34\n"
)


def message(n: int) -> bytes:
    msg = EmailMessage()
    reply_to = int(n * (1 - REPLY_SHARE)) if n % 10 < 3 and n > 10 else None
    sender = n if reply_to is None else reply_to
    msg["From"] = f"Customer {sender} <customer{sender}@example.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Заказ {n} не пришёл" if reply_to is None else f"Re: Заказ {reply_to} не пришёл"
    msg["Message-ID"] = f"<bench-{n}@example.com>"
    if reply_to is not None:
        msg["In-Reply-To"] = f"<bench-{reply_to}@example.com>"
        msg["References"] = f"<bench-{reply_to}@example.com>"
    msg.set_content(BODY)
    msg.add_alternative(f"<p>{BODY}</p><img src='https://tracker.example/p.gif'>", subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


def _send(port: int, shares: list[list[tuple[int, bytes]]]) -> tuple[float, list[int]]:
    """The sending MTAs (in the clients' process): one connection per share, each sending its
    messages in order; returns the seconds from the first ``MAIL FROM`` to the last answer and the
    numbers of the messages refused."""
    refused: list[int] = []

    def client(share: list[tuple[int, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            for n, raw in share:
                if smtp.sendmail(f"customer{n}@example.com", [SUPPORT], raw):
                    refused.append(n)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(shares)) as pool:
        list(pool.map(client, shares))
    return time.perf_counter() - started, refused


def _ready() -> bool:
    return True


async def accept(url: str, data: Path, count: int) -> dict[str, Any]:
    settings = load_settings(
        data_dir=data,
        database_url=url,
        secret_key="bench-secret-key-0123456789",
        smtp_enabled=True,
        smtp_port=0,
        log_level="WARNING",
    )
    container = build_container(settings)
    await container.start()
    aio.settle_heap()  # as ``frontoffice serve`` does once built
    aio.favour_the_loop()
    try:
        queue = await container.routing_admin.create_queue(Actor.system(), QueueIn(name="Mail"))
        await container.routing_admin.create_entry_point(
            Actor.system(),
            EntryPointIn(name="Support", channel="email", address=SUPPORT, default_queue_id=queue.id),  # type: ignore[arg-type]
        )
        assert container.smtp is not None
        port = container.smtp.port
        # Replies must find the message they answer: a message is sent after the one it answers,
        # by the client that sent that one (each client sends its share in order).
        raws = [message(n) for n in range(count)]
        shares = [[(n, raws[n]) for n in range(c, count, CLIENTS)] for c in range(CLIENTS)]
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as clients:
            started = time.perf_counter()
            await loop.run_in_executor(clients, _ready)  # the process is up before the clock runs
            client_process_s = time.perf_counter() - started
            cpu = time.process_time()
            elapsed, refused = await loop.run_in_executor(clients, _send, port, shares)
            cpu = time.process_time() - cpu
        async with container.sessions() as s:
            stored = await s.scalar(select(func.count()).select_from(Message))
            threads = await s.scalar(select(func.count()).select_from(Thread))
        return {
            "messages_per_s": round(count / elapsed, 1),
            # The server's CPU (all its threads: event loop, commits, fsyncs) per message: what the
            # rate would be bound by on an idle machine, less sensitive to other load than the rate.
            "server_cpu_ms_per_message": round(1000 * cpu / count, 2),
            "accepted": count - len(refused),
            "client_process_s": round(client_process_s, 1),
            "stored": stored,
            "threads": threads,
        }
    finally:
        await container.close()


async def seed(url: str, total: int) -> int:
    """Bulk-load a mailbox of ``total`` messages; returns the id of its 500-message thread."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        queue_id = (
            await conn.execute(insert(Queue).values(name="Bulk", config={}, created_at=NOW))
        ).inserted_primary_key[0]
        entry_id = (
            await conn.execute(
                insert(EntryPoint).values(
                    name="Bulk",
                    channel="email",
                    address="bulk@acme.example",
                    config={},
                    created_at=NOW,
                    default_queue_id=queue_id,
                )
            )
        ).inserted_primary_key[0]
        first_thread = int(await conn.scalar(select(func.coalesce(func.max(Thread.id), 0))) or 0) + 1
        first_interaction = (
            int(await conn.scalar(select(func.coalesce(func.max(Interaction.id), 0))) or 0) + 1
        )
        sizes = [BIG_THREAD] + [THREAD_SIZE] * ((total - BIG_THREAD) // THREAD_SIZE)
        big = first_thread
        for start in range(0, len(sizes), CHUNK):
            chunk = range(start, min(start + CHUNK, len(sizes)))
            await conn.execute(
                insert(Thread),
                [
                    {
                        "id": first_thread + i,
                        "channel": "email",
                        "token": first_thread + i,
                        "entry_point_id": entry_id,
                        "subject": f"Thread {i}",
                        "created_at": NOW,
                        "last_message_at": NOW,
                    }
                    for i in chunk
                ],
            )
            await conn.execute(
                insert(Interaction),
                [
                    {
                        "id": first_interaction + i,
                        "channel": "email",
                        "direction": "inbound",
                        "state": "done",
                        "entry_point_id": entry_id,
                        "queue_id": queue_id,
                        "thread_id": first_thread + i,
                        "subject": f"Thread {i}",
                        "attributes": {},
                        "created_at": NOW,
                    }
                    for i in chunk
                ],
            )
        rows: list[dict[str, Any]] = []
        n = 0
        for i, size in enumerate(sizes):
            for k in range(size):
                n += 1
                rows.append(
                    {
                        "interaction_id": first_interaction + i,
                        "thread_id": first_thread + i,
                        "direction": "inbound" if k % 2 == 0 else "outbound",
                        "sender": f"c{i}@example.com",
                        "recipients": {"to": [SUPPORT]},
                        "subject": f"Re: Thread {i}",
                        "body": BODY,
                        "content_type": "text/plain",
                        "rfc_message_id": f"seed-{n}@example.com",
                        "reference_ids": "",
                        "thread_reason": "in-reply-to",
                        "flags": {},
                        "created_at": NOW + timedelta(seconds=k),
                    }
                )
                if len(rows) >= CHUNK:
                    await conn.execute(insert(Message), rows)
                    rows = []
        if rows:
            await conn.execute(insert(Message), rows)
    await engine.dispose()
    return big


async def open_thread(url: str, data: Path, thread_id: int) -> dict[str, Any]:
    settings = load_settings(
        data_dir=data, database_url=url, secret_key="bench-secret-key-0123456789", log_level="WARNING"
    )
    container = build_container(settings)
    # As ``frontoffice serve`` does once built: the process's long-lived objects out of the
    # collector's full passes (their pauses, not the query, made the p99: ~150,000 objects walked,
    # up to ~150 ms), and the loop favoured over worker threads.
    aio.settle_heap()
    aio.favour_the_loop()
    actor = Actor.system()
    times: list[float] = []
    try:
        for _ in range(OPENS):
            started = time.perf_counter()
            await container.threads.get(actor, thread_id)
            seen, cursor = 0, None
            while True:
                page = await container.threads.messages(actor, thread_id, limit=PAGE, cursor=cursor)
                seen += len(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
            times.append((time.perf_counter() - started) * 1000)
            assert seen == BIG_THREAD, seen
    finally:
        await container.engine.dispose()
    return {
        "ticket_open_p99_ms": round(statistics.quantiles(times, n=100)[98], 2),
        "ticket_open_p50_ms": round(statistics.median(times), 2),
    }


async def prepare(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 messages and a 20,000-message mailbox")
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
        help="event loop (auto: uvloop when installed, as the server does)",
    )  # fmt: skip
    args = parser.parse_args()
    count = 600 if args.quick else 3_000
    mailbox = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{Path(tmp) / 'email.db'}"
        aio.run(prepare(url), args.loop)
        accepted = aio.run(accept(url, Path(tmp), count), args.loop)
        started = time.perf_counter()
        big = aio.run(seed(url, mailbox), args.loop)
        seed_s = time.perf_counter() - started
        opened = aio.run(open_thread(url, Path(tmp), big), args.loop)
    database = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(
        json.dumps(
            {
                "bench": "email",
                "quick": args.quick,
                "params": {
                    "database": database,
                    "event_loop": aio.loop_name(aio.loop_factory(args.loop)),
                    "messages": count,
                    "mailbox": mailbox,
                    "clients": CLIENTS,
                    "thread": BIG_THREAD,
                    "seed_s": round(seed_s, 1),
                },
                "metrics": {**accepted, **opened, "machine_reference_ms": machine_reference_ms()},
                "baseline": None,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
