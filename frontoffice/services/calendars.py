"""Business-hours calendars: stored definitions, and the scheduler that opens and closes queues.

The routing engine only knows "open" or "closed"; this scheduler evaluates each queue's calendar and
tells the engine exactly when that changes (``next_change``), re-checking whenever configuration
changes and at least every few minutes as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date, datetime
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.aio import wake_or_timeout
from frontoffice.domain.calendars import (
    BusinessCalendar,
    CalendarError,
    OpeningInterval,
    is_open,
    next_change,
    weekday_index,
)
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.store.tables import BusinessCalendar as CalendarRow
from frontoffice.store.tables import Queue

from .acd import AcdService
from .acd_commands import SetQueueOpen
from .context import Actor, Clock, audit, system_clock
from .schemas import N_, Input

__all__ = ["CALENDAR_MESSAGES", "CalendarFields", "CalendarIn", "CalendarOut", "CalendarService"]

log = logging.getLogger("frontoffice.calendars")
# Even with exact next-change times, look again this often (clock jumps, tz database updates).
RECHECK_S = 300.0


# What a form shows for each kind of calendar error (``CalendarError.kind``), in the catalogs.
CALENDAR_MESSAGES = {
    "unknown-time-zone": N_("Unknown time zone: use a name such as Europe/Moscow"),
    "hours-format": N_("Write the hours as HH:MM-HH:MM, for example 09:00-18:00"),
    "hour-out-of-range": N_("An hour is out of range: use 00:00 to 24:00"),
    "unknown-weekday": N_("Unknown weekday: use mon, tue, wed, thu, fri, sat or sun"),
    "end-before-start": N_(
        "The end is before the start. To stay open past midnight, end this day at 24:00 "
        "and open the next day at 00:00"
    ),
}


def _field_error(kind: str, loc: tuple[str | int, ...], value: object) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, CALENDAR_MESSAGES[kind]), loc=loc, input=value)


def _interval_errors(days: dict[str, list[str]]) -> list[InitErrorDetails]:
    """Each interval that cannot be read, is out of range or ends before it starts, located as
    ``(day, index)``: the hours a form shows."""
    errors = []
    for day, intervals in days.items():
        for index, text in enumerate(intervals):
            try:
                interval = OpeningInterval.parse(text)
            except CalendarError as exc:
                kind = exc.kind if exc.kind in CALENDAR_MESSAGES else "hours-format"
                errors.append(_field_error(kind, (day, index), text))
                continue
            if interval.ends_before_start:
                errors.append(_field_error("end-before-start", (day, index), text))
    return errors


class CalendarFields(Input):
    """What a calendar is made of, as stored (and answered)."""

    name: str = Field(min_length=1, max_length=200)
    time_zone: str = Field(default="Europe/Moscow", max_length=64)
    weekly: dict[str, list[str]] = Field(
        default_factory=dict,
        description='{"mon": ["09:00-13:00", "14:00-18:00"], ...}; missing days are closed',
    )
    holidays: list[date] = Field(default_factory=list, max_length=1000)
    special_days: dict[date, list[str]] = Field(default_factory=dict, description="a date's own hours")


class CalendarIn(CalendarFields):
    """A business-hours calendar as an administrator writes it.

    Each problem is a 422 naming its field (``time_zone``, ``weekly.<day>.<n>``,
    ``special_days.<date>.<n>``) with a ``type`` from :data:`CALENDAR_MESSAGES`. Hours end after they
    start: to stay open past midnight, one day ends at 24:00 and the next opens at 00:00. (Calendars
    stored before this rule, with hours across midnight, still load and answer: see ``CalendarOut``.)
    """

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, time_zone: str) -> str:
        try:
            BusinessCalendar.from_definition(time_zone, {})
        except CalendarError:
            raise PydanticCustomError("unknown-time-zone", CALENDAR_MESSAGES["unknown-time-zone"]) from None
        return time_zone

    @field_validator("weekly")
    @classmethod
    def _weekly_hours(cls, weekly: dict[str, list[str]]) -> dict[str, list[str]]:
        errors = []
        for day in weekly:
            try:
                weekday_index(day)
            except CalendarError:
                errors.append(_field_error("unknown-weekday", (day,), day))
        errors += _interval_errors(weekly)
        if errors:
            raise ValidationError.from_exception_data("weekly", errors)
        return weekly

    @field_validator("special_days")
    @classmethod
    def _special_hours(cls, special_days: dict[date, list[str]]) -> dict[date, list[str]]:
        errors = _interval_errors({day.isoformat(): hours for day, hours in special_days.items()})
        if errors:
            raise ValidationError.from_exception_data("special_days", errors)
        return special_days


class CalendarOut(CalendarFields):
    id: int
    open_now: bool
    next_change: datetime | None


def build(definition: dict[str, Any]) -> BusinessCalendar:
    try:
        return BusinessCalendar.from_definition(
            definition["time_zone"],
            definition.get("weekly", {}),
            holidays=definition.get("holidays", []),
            special_days=definition.get("special_days", {}),
        )
    except (CalendarError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("Invalid calendar", error_id="invalid-calendar", reason=str(exc)) from None


class CalendarService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], acd: AcdService, *, clock: Clock = system_clock
    ) -> None:
        self.sessions = sessions
        self.acd = acd
        self.clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def save(self, actor: Actor, data: CalendarIn, calendar_id: int | None = None) -> CalendarOut:
        actor.require("routing.write")
        definition = data.model_dump(mode="json", exclude={"name"})
        calendar = build(definition)
        async with self.sessions.begin() as s:
            if calendar_id is None:
                row = CalendarRow(name=data.name, definition=definition, created_at=self.clock())
                s.add(row)
            else:
                found = await s.get(CalendarRow, calendar_id)
                if found is None:
                    raise NotFound("No such calendar", error_id="no-such-calendar", calendar_id=calendar_id)
                row = found
                row.name, row.definition = data.name, definition
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict("A calendar with this name exists", error_id="calendar-name-taken") from None
            audit(s, actor, "calendar.save", "calendar", row.id)
            out = self._out(row, calendar)
        self.changed()
        return out

    def _out(self, row: CalendarRow, calendar: BusinessCalendar) -> CalendarOut:
        now = self.clock()
        return CalendarOut(
            id=row.id,
            name=row.name,
            open_now=is_open(calendar, now),
            next_change=next_change(calendar, now),
            **row.definition,
        )

    async def list(self, actor: Actor) -> list[CalendarOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            rows = list(await s.scalars(select(CalendarRow).order_by(CalendarRow.name)))
        return [self._out(row, build(row.definition)) for row in rows]

    # ------------------------------------------------------------------ scheduler
    def changed(self) -> None:
        """Configuration changed: re-evaluate now."""
        self._wake.set()

    async def start(self) -> None:
        await self.apply()
        self._task = asyncio.create_task(self._loop(), name="calendars")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def apply(self) -> datetime | None:
        """Open or close every queue with a calendar as it says now; returns the next change."""
        now = self.clock()
        async with self.sessions() as s:
            calendars = {row.id: build(row.definition) for row in await s.scalars(select(CalendarRow))}
            queues = list(await s.scalars(select(Queue)))
        soonest: datetime | None = None
        for queue in queues:
            calendar_id = queue.config.get("calendar_id")
            calendar = calendars.get(calendar_id) if calendar_id is not None else None
            want = True if calendar is None else is_open(calendar, now)
            if calendar is not None:
                change = next_change(calendar, now)
                if change is not None and (soonest is None or change < soonest):
                    soonest = change
            qid = str(queue.id)
            if (
                qid in self.acd.engine.queue_ids()
                and self.acd.engine.queue_status(qid, now.timestamp()).open != want
            ):
                await self.acd.execute(SetQueueOpen(qid, want))
                log.info("queue %s", "opened" if want else "closed", extra={"queue_id": queue.id})
        return soonest

    async def _loop(self) -> None:
        while True:
            try:
                soonest = await self.apply()
            except Exception:
                log.exception("calendar evaluation failed")
                soonest = None
            delay = RECHECK_S
            if soonest is not None:
                delay = min(delay, max(0.0, (soonest - self.clock()).total_seconds()) + 0.001)
            self._wake.clear()
            await wake_or_timeout(self._wake, delay)
