"""The sales report: win rate and cycle time, overall and by stage, of the deals of one pipeline closed
(won or lost) in a period.

A deal's **journey** through the stages is read from its audit entries (``deal.create`` with the first
``stage``, each ``deal.update`` with ``from_stage``/``to_stage``), through ``ix_audit_log_object``:

- **win rate** = won / (won + lost); by stage, of the deals that were ever in that stage — how often a
  deal that reached the stage ends won (the later the stage, the higher it should be);
- **cycle time** = from the deal's creation to its close, for won deals (what a sale takes); by stage,
  the time deals spent in it (each visit from entering to leaving; a deal back in a stage adds the new
  visit), in wall-clock seconds — deals move on calendar days, not business hours.

Deals whose stage history is incomplete (made before the audit log recorded stages) count in the
overall figures from their creation and close times, and by stage only for what their entries tell.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.domain.pipelines import DEFAULT_PIPELINE, Pipeline, StageKind
from frontoffice.store.tables import AuditEntry, Deal, PipelineRow

from .context import Actor
from .deals import pipeline_of_row
from .scope import deal_visible, where

__all__ = ["SalesReport", "SalesReportService", "StageFigures", "Visit", "journey"]

#: The longest period one report reads, a year: it reads each closed deal's entries.
MAX_REPORT_DAYS = 366
#: Deals read at most (the newest closed first); a report of more says so (``capped``).
MAX_DEALS = 20_000
#: Audit entries read per query (a bound on the IN list).
CHUNK = 500


class StageFigures(BaseModel):
    key: str
    name: str
    kind: str = Field(description="open, won or lost")
    deals: int = Field(description="closed deals that were in this stage at some time")
    won: int
    win_rate: float | None = Field(description="won / deals (null: none)")
    avg_time_in_stage_s: float | None = Field(description="mean time spent in the stage (open stages)")


class SalesReport(BaseModel):
    since: datetime
    until: datetime
    pipeline_id: int | None = Field(description="null: the default pipeline")
    deals: int = Field(description="deals closed in the period (won or lost)")
    won: int
    lost: int
    win_rate: float | None
    avg_cycle_s: float | None = Field(description="mean creation-to-close time of the won deals")
    stages: list[StageFigures]
    capped: bool = Field(description="true: only the newest MAX_DEALS closed deals were read")


@dataclass(frozen=True, slots=True)
class Visit:
    """A deal's stay in one stage: from ``start`` to ``end``."""

    stage: str
    start: datetime
    end: datetime


def journey(
    created_at: datetime, closed_at: datetime, entries: list[tuple[datetime, dict[str, Any]]]
) -> list[Visit]:
    """The stages a deal went through and when, from its audit entries (oldest first): the creation's
    ``stage`` (else the first move's ``from_stage``) from ``created_at``, then each move's ``to_stage``;
    the last visit ends at ``closed_at``."""
    visits: list[Visit] = []
    current: tuple[str, datetime] | None = None
    for at, details in entries:
        if current is None:
            first = details.get("stage") or details.get("from_stage")
            if isinstance(first, str):
                current = (first, created_at)
        moved = details.get("to_stage")
        if isinstance(moved, str) and current is not None and moved != current[0]:
            visits.append(Visit(current[0], current[1], at))
            current = (moved, at)
    if current is not None:
        visits.append(Visit(current[0], current[1], max(current[1], closed_at)))
    return visits


class SalesReportService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def report(
        self,
        actor: Actor,
        since: datetime,
        until: datetime,
        *,
        pipeline_id: int | None = None,
        project_id: int | None = None,
    ) -> SalesReport:
        """Win rate and cycle time of the deals of ``pipeline_id`` (None: the default pipeline) closed
        in ``[since, until)`` that the actor may see."""
        actor.require("stats.read")
        if not since < until <= since + timedelta(days=MAX_REPORT_DAYS):
            raise InvalidInput(
                f"The period must be positive and at most {MAX_REPORT_DAYS} days",
                error_id="invalid-period",
                max_days=MAX_REPORT_DAYS,
            )
        stmt = where(
            select(Deal.id, Deal.stage, Deal.created_at, Deal.closed_at).where(
                Deal.closed_at >= since,
                Deal.closed_at < until,
                Deal.pipeline_id.is_(None) if pipeline_id is None else Deal.pipeline_id == pipeline_id,
            ),
            deal_visible(actor),
        )
        if project_id is not None:
            stmt = stmt.where(Deal.project_id == project_id)
        async with self.sessions() as s:
            pipeline = await self._pipeline(s, pipeline_id)
            rows = list(
                await s.execute(stmt.order_by(Deal.closed_at.desc(), Deal.id.desc()).limit(MAX_DEALS + 1))
            )
            capped = len(rows) > MAX_DEALS
            rows = rows[:MAX_DEALS]
            entries: dict[int, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
            ids = [str(r.id) for r in rows]
            for i in range(0, len(ids), CHUNK):
                found = await s.execute(
                    select(AuditEntry.object_id, AuditEntry.at, AuditEntry.details)
                    .where(
                        AuditEntry.object_type == "deal",
                        AuditEntry.object_id.in_(ids[i : i + CHUNK]),
                        AuditEntry.action.in_(["deal.create", "deal.update"]),
                    )
                    .order_by(AuditEntry.id)
                )
                for object_id, at, details in found:
                    entries[int(str(object_id))].append((at, details or {}))
        kinds = {st.key: st.kind for st in pipeline.stages}
        won = lost = 0
        cycles: list[float] = []
        entered: dict[str, int] = defaultdict(int)
        entered_won: dict[str, int] = defaultdict(int)
        stay: dict[str, list[float]] = defaultdict(list)
        for deal_id, stage, created_at, closed_at in rows:
            if closed_at is None:  # not possible: read by closed_at; for the type
                continue
            kind = kinds.get(stage)
            if kind is StageKind.WON:
                won += 1
                cycles.append((closed_at - created_at).total_seconds())
            elif kind is StageKind.LOST:
                lost += 1
            else:
                continue  # closed in the period, reopened since: not an outcome
            visits = journey(created_at, closed_at, entries.get(deal_id, []))
            times: dict[str, float] = defaultdict(float)
            for v in visits:
                times[v.stage] += (v.end - v.start).total_seconds()
            for key, seconds in times.items():
                entered[key] += 1
                entered_won[key] += kind is StageKind.WON
                if kinds.get(key) is StageKind.OPEN:
                    stay[key].append(seconds)
        closed = won + lost
        return SalesReport(
            since=since,
            until=until,
            pipeline_id=pipeline_id,
            deals=closed,
            won=won,
            lost=lost,
            win_rate=won / closed if closed else None,
            avg_cycle_s=fmean(cycles) if cycles else None,
            stages=[
                StageFigures(
                    key=st.key,
                    name=st.name,
                    kind=st.kind.value,
                    deals=entered[st.key],
                    won=entered_won[st.key],
                    win_rate=entered_won[st.key] / entered[st.key] if entered[st.key] else None,
                    avg_time_in_stage_s=fmean(stay[st.key]) if stay[st.key] else None,
                )
                for st in pipeline.stages
            ],
            capped=capped,
        )

    async def _pipeline(self, s: AsyncSession, pipeline_id: int | None) -> Pipeline:
        if pipeline_id is None:
            return DEFAULT_PIPELINE
        row = await s.get(PipelineRow, pipeline_id)
        if row is None:
            raise NotFound("No such pipeline", error_id="no-such-pipeline", pipeline_id=pipeline_id)
        return pipeline_of_row(row)
