"""Help desk: how fast do the ticket work lists open on a big desk, and how fast do SLA clocks recompute?

A database of N tickets (full: 1,000,000; ``--quick``: 20,000) is bulk-loaded with Core inserts:
50 agents serving 20 queues in 5 projects, statuses and priorities in help-desk proportions (most
tickets closed, a tenth open), tags on some, due times and running SLA clocks on the open ones. Then,
through the ticket service (the code the API handler calls, without HTTP):

- ``list_p99_ms``: every built-in view (mine, team, unassigned, open, pending, overdue, solved) in
  its default order and by SLA time left, first pages and the next page by cursor, as an agent and
  as a supervisor; the p99 over all of them;
- ``ticket_open_p99_ms``: opening one ticket (its row, contacts and tags) by id;
- ``sla_recompute_per_s``: tickets whose clocks are rebuilt from storage, paused, resumed and their
  next deadline and next check recomputed on a business-hours calendar with a lunch break and
  holidays (the work of the SLA job and of every status change), per second, in one process.

No baseline (no other help desk runs here); ``machine_reference_ms`` tells machines apart. Run:

    .venv/bin/python bench/helpdesk.py [--quick] [--database postgresql+asyncpg://...] [--tickets N]

A PostgreSQL URL names a server database that is emptied (its tables dropped) and migrated. The last
stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _machine import machine_reference_ms
from sqlalchemy import insert, select, text

from frontoffice.domain.calendars import BusinessCalendar
from frontoffice.domain.model import Role
from frontoffice.domain.sla import SlaTargets, TicketSla
from frontoffice.services.case_schemas import BuiltinTicketView, TicketFilters, TicketSort
from frontoffice.services.context import Actor
from frontoffice.services.tickets import TicketService
from frontoffice.store import migrate
from frontoffice.store.database import create_engine, session_factory
from frontoffice.store.tables import AgentProfile, Base, Customer, Project, Queue, Ticket, TicketTag, User

AGENTS = 50
QUEUES = 20
PROJECTS = 5
CHUNK = 10_000
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
# Help-desk proportions: most tickets are closed history; a tenth waits for someone.
STATUS_WEIGHTS = {"closed": 70, "solved": 15, "open": 10, "pending": 5}
PRIORITY_WEIGHTS = {"low": 20, "normal": 60, "high": 15, "urgent": 5}


def office() -> BusinessCalendar:
    weekly = {d: ["09:00-13:00", "14:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return BusinessCalendar.from_definition("Europe/Moscow", weekly, holidays=["2026-12-31", "2027-01-01"])


async def load(url: str, tickets: int, rng: random.Random) -> dict[str, Any]:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Project.__table__), [{"code": f"p{n}", "name": f"Project {n}"} for n in range(PROJECTS)]
        )
        await conn.execute(
            insert(Queue.__table__),
            [{"name": f"q{n}", "project_id": 1 + n % PROJECTS} for n in range(QUEUES)],
        )
        await conn.execute(
            insert(User.__table__),
            [{"username": f"agent{n}", "password_hash": "-", "role": Role.AGENT.value} for n in range(AGENTS)]
            + [{"username": "supervisor", "password_hash": "-", "role": Role.SUPERVISOR.value}],
        )
        await conn.execute(
            insert(AgentProfile.__table__),
            [
                {"user_id": 1 + n, "queues": {str(1 + n % QUEUES): 1, str(1 + (n + 7) % QUEUES): 2}}
                for n in range(AGENTS)
            ],
        )
        customers = max(1, tickets // 5)
        for start in range(0, customers, CHUNK):
            await conn.execute(
                insert(Customer.__table__),
                [
                    {"first_name": f"c{n}", "search_key": f"c{n}"}
                    for n in range(start, min(customers, start + CHUNK))
                ],
            )
    targets = SlaTargets(4 * 3600, 8 * 3600, 40 * 3600, warn_before_s=1800)
    statuses, status_w = zip(*STATUS_WEIGHTS.items(), strict=True)
    priorities, priority_w = zip(*PRIORITY_WEIGHTS.items(), strict=True)
    loaded = time.perf_counter()
    for start in range(0, tickets, CHUNK):
        rows: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        for n in range(start, min(tickets, start + CHUNK)):
            status = rng.choices(statuses, status_w)[0]
            # The backlog is recent (a desk works its tickets within days); the history spans a year.
            age_s = rng.randrange((14 if status in ("open", "pending") else 365) * 86400)
            created = NOW - timedelta(seconds=age_s)
            updated = created + timedelta(seconds=rng.randrange(max(1, int((NOW - created).total_seconds()))))
            queue = rng.randrange(QUEUES) + 1
            assignee = None if status == "open" and rng.random() < 0.3 else rng.randrange(AGENTS) + 1
            row: dict[str, Any] = {
                "customer_id": rng.randrange(customers) + 1,
                "project_id": 1 + (queue - 1) % PROJECTS,
                "queue_id": queue,
                "subject": f"ticket {n}",
                "description": "",
                "status": status,
                "priority": rng.choices(priorities, priority_w)[0],
                "assignee_id": assignee,
                "created_at": created,
                "updated_at": updated,
                "due_at": None,
                "solved_at": updated if status in ("solved", "closed") else None,
                "sla": None,
                "sla_due_at": None,
                "sla_check_at": None,
            }
            if status in ("open", "pending"):
                sla = TicketSla.for_new_ticket(targets, created)
                if status == "pending":
                    sla = sla.paused(None, updated)
                row["sla"] = sla.to_json()
                row["sla_due_at"] = sla.next_deadline(None)
                row["due_at"] = created + timedelta(days=3)
            rows.append(row)
            if n % 10 == 0:
                tags.append({"ticket_id": n + 1, "tag": rng.choice(["vip", "billing", "bug", "refund"])})
        async with engine.begin() as conn:
            await conn.execute(insert(Ticket.__table__), rows)
            if tags:
                await conn.execute(insert(TicketTag.__table__), tags)
    load_s = time.perf_counter() - loaded
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))  # both databases: plan with the real table sizes
    await engine.dispose()
    return {"load_s": round(load_s, 1)}


async def measure(url: str, tickets: int, rounds: int, rng: random.Random) -> dict[str, float]:
    engine = create_engine(url)
    service = TicketService(session_factory(engine), clock=lambda: NOW)
    agent = Actor(user_id=1, role=Role.AGENT, username="agent0")
    supervisor = Actor(user_id=AGENTS + 1, role=Role.SUPERVISOR, username="supervisor")
    for view in BuiltinTicketView:  # warm-up: connections, compiled statements, the page cache
        await service.work_list(supervisor, TicketFilters(view=view))
    list_ms: list[float] = []
    by_view: dict[str, list[float]] = {}
    for _ in range(rounds):
        for view in BuiltinTicketView:
            for sort in (None, TicketSort.SLA_DUE):
                actor = agent if view in (BuiltinTicketView.MINE, BuiltinTicketView.TEAM) else supervisor
                started = time.perf_counter()
                page = await service.work_list(actor, TicketFilters(view=view), sort=sort, limit=50)
                list_ms.append(1000 * (time.perf_counter() - started))
                by_view.setdefault(f"{view.value}/{(sort or TicketSort.UPDATED_DESC).value}", []).append(
                    list_ms[-1]
                )
                if page.next_cursor:
                    started = time.perf_counter()
                    await service.work_list(
                        actor, TicketFilters(view=view), sort=sort, limit=50, cursor=page.next_cursor
                    )
                    list_ms.append(1000 * (time.perf_counter() - started))
    open_ms: list[float] = []
    for _ in range(rounds * 10):
        ticket_id = rng.randrange(tickets) + 1
        started = time.perf_counter()
        await service.get(supervisor, ticket_id)
        open_ms.append(1000 * (time.perf_counter() - started))
    async with engine.connect() as conn:
        stored = [
            row[0]
            for row in await conn.execute(
                select(Ticket.sla).where(Ticket.sla_due_at.is_not(None)).limit(2000)
            )
        ]
    await engine.dispose()
    calendar = office()
    recomputed = 0
    started = time.perf_counter()
    while time.perf_counter() - started < 2.0:
        for data in stored:
            sla = TicketSla.from_json(data).paused(calendar, NOW).resumed(NOW + timedelta(hours=1))
            sla.next_deadline(calendar)
            sla.next_check(calendar)
            recomputed += 1
    sla_per_s = recomputed / (time.perf_counter() - started) if stored else 0.0

    def p99(values: list[float]) -> float:
        return round(statistics.quantiles(values, n=100)[98], 2) if len(values) > 1 else round(values[0], 2)

    # The slowest call of each view and order, on stderr, to find a view that lost its index.
    print(json.dumps({k: round(max(v), 1) for k, v in sorted(by_view.items())}), file=sys.stderr)
    return {
        "list_p99_ms": p99(list_ms),
        "list_p50_ms": round(statistics.median(list_ms), 2),
        "ticket_open_p99_ms": p99(open_ms),
        "ticket_open_p50_ms": round(statistics.median(open_ms), 2),
        "sla_recompute_per_s": round(sla_per_s, 1),
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
    parser.add_argument("--quick", action="store_true", help="20,000 tickets instead of 1,000,000")
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--tickets", type=int, help="how many tickets to load")
    args = parser.parse_args()
    tickets = args.tickets or (20_000 if args.quick else 1_000_000)
    rounds = 5 if args.quick else 20
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite+aiosqlite:///{Path(tmp) / 'helpdesk.db'}"
        asyncio.run(prepare(url))
        params = asyncio.run(load(url, tickets, rng))
        metrics = asyncio.run(measure(url, tickets, rounds, rng))
    database = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(
        json.dumps(
            {
                "bench": "helpdesk",
                "quick": args.quick,
                "params": {
                    "tickets": tickets,
                    "database": database,
                    "agents": AGENTS,
                    "queues": QUEUES,
                    **params,
                },
                "metrics": {**metrics, "tickets": tickets, "machine_reference_ms": machine_reference_ms()},
                "baseline": None,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
