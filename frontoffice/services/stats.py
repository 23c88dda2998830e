"""Statistics from the event log: historical reports, and live wallboard figures kept up to date.

Live figures come from a :class:`MetricsAccumulator` that is rebuilt from today's events on start and
then fed every committed event (``store.append_log`` keeps the log rows a transaction wrote, and the
``after_commit`` of the outermost transaction hands them over, not a savepoint's release), so they are
correct across restarts: they come from the log, not from counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.metrics import (
    AgentStateRecord,
    GroupBy,
    InteractionEventRecord,
    LiveQueueFigures,
    MetricsAccumulator,
    MetricsError,
    Report,
    SLVariant,
    compute_report,
    local_day_start,
)
from frontoffice.store.committed import Committed
from frontoffice.store.tables import AgentEvent, InteractionEvent, Project, Queue, User

from .context import Actor, Clock, system_clock
from .csv_safe import csv_lines
from .scope import event_visible, where

__all__ = ["StatsService"]

log = logging.getLogger("frontoffice.stats")

# A report reads this much log before its start, so contacts that began earlier are understood.
LOOKBEHIND = timedelta(hours=12)
# Longest range one report may cover; beyond it, ask for several.
MAX_REPORT_DAYS = 92


def _record(e: InteractionEvent) -> InteractionEventRecord:
    return InteractionEventRecord(
        interaction_id=e.interaction_id,
        at=e.at,
        type=e.type,
        queue_id=e.queue_id,
        agent_id=e.agent_id,
        project_id=e.project_id,
        channel=e.channel,
        data=dict(e.data or {}),
    )


def _row_record(row: dict[str, Any]) -> InteractionEventRecord:
    return InteractionEventRecord(
        interaction_id=row["interaction_id"],
        at=row["at"],
        type=row["type"],
        queue_id=row["queue_id"],
        agent_id=row["agent_id"],
        project_id=row["project_id"],
        channel=row["channel"],
        data=dict(row["data"] or {}),
    )


def _agent_record(e: AgentEvent) -> AgentStateRecord:
    return AgentStateRecord(agent_id=e.agent_id, at=e.at, state=e.state, reason=e.reason)


class StatsService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = system_clock,
        time_zone: str = "UTC",
        sl_threshold_s: float = 20.0,
        short_abandon_s: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.zone = ZoneInfo(time_zone)
        self.sl_threshold_s = sl_threshold_s
        self.short_abandon_s = short_abandon_s
        self._live: MetricsAccumulator | None = None
        self._day_start: datetime | None = None
        # The start of the next day after _day_start: a commit before it is in the same day, known
        # without converting the time to the local zone (every commit asks).
        self._next_day_start: datetime | None = None
        self._listeners: list[Callable[[set[int]], None]] = []

    # ------------------------------------------------------------------ live
    def day_start(self, now: datetime) -> datetime:
        """The start of ``now``'s day in the site's time zone."""
        return local_day_start(now, self.zone)

    async def start(self) -> None:
        """Rebuild today's live figures from the log."""
        now = self.clock()
        start = self.day_start(now)
        live = MetricsAccumulator(
            start=start,
            interval_s=None,
            group_by="queue",
            sl_threshold_s=self.sl_threshold_s,
            short_abandon_s=self.short_abandon_s,
        )
        async with self.sessions() as s:
            events = await s.scalars(
                select(InteractionEvent)
                .where(InteractionEvent.at >= start - LOOKBEHIND)
                .order_by(InteractionEvent.at, InteractionEvent.id)
            )
            live.add_many(_record(e) for e in events)
        self._live = live
        self._set_day(start)

    def on_change(self, listener: Callable[[set[int]], None]) -> None:
        """Called after each commit with the ids of queues whose figures changed."""
        self._listeners.append(listener)

    def committed(self, committed: Committed) -> None:
        """Feed today's live figures with a committed transaction's interaction events (a subscriber
        of the one outlet of committed events, registered in ``bootstrap.py``)."""
        if self._live is None:
            return
        pending = committed.interaction_events
        if not pending:
            return
        now = self.clock()
        if not self._today(now):
            # A new day: start a fresh accumulator; yesterday's contacts still open are re-read lazily.
            self._live = MetricsAccumulator(
                start=self.day_start(now),
                interval_s=None,
                group_by="queue",
                sl_threshold_s=self.sl_threshold_s,
                short_abandon_s=self.short_abandon_s,
            )
            self._set_day(self.day_start(now))
        queues: set[int] = set()
        # Rows in the order they were written (sorted() is stable), as the log's ids order them.
        for row in sorted(pending, key=lambda row: row["at"]):
            try:
                self._live.add(_row_record(row))
            except MetricsError:
                log.exception("live statistics rejected an event", extra={"event_type": row["type"]})
            if row["queue_id"] is not None:
                queues.add(row["queue_id"])
        for listener in self._listeners:
            listener(queues)

    def _set_day(self, start: datetime) -> None:
        self._day_start = start
        # Noon of the next day is a day later whatever a DST change does to this one.
        self._next_day_start = self.day_start(start + timedelta(hours=36))

    def _today(self, now: datetime) -> bool:
        """Whether ``now`` is in the live figures' day (``day_start(now) == _day_start``)."""
        start, end = self._day_start, self._next_day_start
        if start is None or end is None:
            return True
        if start <= now < end:
            return True
        return self.day_start(now) == start

    def live(self) -> dict[int, LiveQueueFigures]:
        if self._live is None:
            return {}
        return self._live.live_queue_figures(self.clock())

    # ------------------------------------------------------------------ reports
    async def report(
        self,
        actor: Actor,
        *,
        start: datetime,
        end: datetime,
        group_by: GroupBy = "queue",
        interval_s: int | None = 900,
        sl_threshold_s: float | None = None,
        short_abandon_s: float | None = None,
        sl_variant: SLVariant = "default",
        project_id: int | None = None,
    ) -> Report:
        """Figures from the event log. A user limited to projects gets the figures of their projects'
        contacts only (another project asked for is ``404 no-such-project``); agent states belong to
        no project and count for everyone, as on the wallboard."""
        actor.require("stats.read")
        if project_id is not None and not actor.sees_project(project_id):
            raise NotFound("No such project", error_id="no-such-project", project_id=project_id)
        if end <= start:
            raise InvalidInput("The end of the range must be after its start", error_id="invalid-range")
        if end - start > timedelta(days=MAX_REPORT_DAYS):
            raise InvalidInput("The range is too long for one report", error_id="range-too-long")
        async with self.sessions() as s:
            stmt = where(
                select(InteractionEvent).where(
                    InteractionEvent.at >= start - LOOKBEHIND, InteractionEvent.at < end
                ),
                event_visible(actor),
            )
            if project_id is not None:
                stmt = stmt.where(InteractionEvent.project_id == project_id)
            events = [
                _record(e) for e in await s.scalars(stmt.order_by(InteractionEvent.at, InteractionEvent.id))
            ]
            agents = [
                _agent_record(e)
                for e in await s.scalars(
                    select(AgentEvent)
                    .where(AgentEvent.at >= start - LOOKBEHIND, AgentEvent.at < end)
                    .order_by(AgentEvent.at, AgentEvent.id)
                )
            ]
        try:
            return compute_report(
                events,
                agents,
                start=start,
                end=end,
                interval_s=interval_s,
                group_by=group_by,
                sl_threshold_s=self.sl_threshold_s if sl_threshold_s is None else sl_threshold_s,
                short_abandon_s=self.short_abandon_s if short_abandon_s is None else short_abandon_s,
                sl_variant=sl_variant,
                now=self.clock(),
            )
        except MetricsError as exc:
            raise InvalidInput(
                "Invalid report parameters", error_id="invalid-report", reason=str(exc)
            ) from None

    async def group_names(self, group_by: str, keys: Iterable[Any]) -> dict[Any, str]:
        """The names of a report's groups, for its CSV: queue names, agents' display names (their
        username when they have none), project names. Channels and "overall" have no other name."""
        model: type[Queue] | type[User] | type[Project]
        ids = sorted({k for k in keys if isinstance(k, int)})
        if not ids or group_by not in NAMED_GROUPS:
            return {}
        async with self.sessions() as s:
            if group_by == "agent":
                stmt = select(User.id, User.display_name, User.username).where(User.id.in_(ids))
                users = await s.execute(stmt)
                return {uid: display or username for uid, display, username in users}
            model = Queue if group_by == "queue" else Project
            named = await s.execute(select(model.id, model.name).where(model.id.in_(ids)))
            return {key: name for key, name in named}


# The groups whose ids have a name; the CSV gives it in a ``<group>_name`` column next to ``key``.
NAMED_GROUPS = ("queue", "agent", "project")
# CSV rounding (docs/metrics.md, "The report as CSV"): durations to a tenth of a second, ratios
# (0..1) to four decimals — a hundredth of a percent, finer than any target is set.
CSV_SECONDS_DECIMALS = 1
CSV_RATIO_DECIMALS = 4
_RATIOS = frozenset({"service_level", "abandonment_rate", "occupancy", "utilization"})


def report_rows(report: Report) -> list[dict[str, Any]]:
    """Flat rows (key, interval, every figure) for JSON and CSV."""
    rows = []
    for row in report.rows:
        rows.append(
            {
                "key": row.key,
                "interval_start": row.interval_start.isoformat(),
                "interval_end": row.interval_end.isoformat(),
            }
            | asdict(row.figures)
        )
    return rows


def report_csv(
    rows: Iterable[dict[str, Any]],
    *,
    group_by: str | None = None,
    names: dict[Any, str] | None = None,
    zone: tzinfo | None = None,
) -> str:
    """The rows of :func:`report_rows` as CSV for a spreadsheet: a ``<group>_name`` column after
    ``key`` (queue, agent and project groups, from ``names``), interval times in ``zone`` (the site's
    time zone) as ISO 8601 with their offset, durations to 0.1 s and ratios to 4 decimals."""
    name_column = f"{group_by}_name" if group_by in NAMED_GROUPS else None
    table = []
    for row in rows:
        out: dict[str, Any] = {"key": row["key"]}
        if name_column is not None:
            out[name_column] = (names or {}).get(row["key"], "")
        for column, value in row.items():
            if column == "key":
                continue
            if column in ("interval_start", "interval_end") and zone is not None:
                value = datetime.fromisoformat(value).astimezone(zone).isoformat()
            elif isinstance(value, float) and column in _RATIOS:
                value = round(value, CSV_RATIO_DECIMALS)
            elif isinstance(value, float) and column.endswith("_s"):
                value = round(value, CSV_SECONDS_DECIMALS)
            out[column] = value
        table.append(out)
    if not table:
        header = ["key", name_column, "interval_start", "interval_end"]
        return ",".join(c for c in header if c) + "\n"
    columns = list(table[0])
    # The shared writer: a queue or agent name like "=HYPERLINK(...)" stays text in a spreadsheet.
    return csv_lines([columns, *([row.get(c) for c in columns] for row in table)])
