"""Statistics (from the event log) and business-hours calendars."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from frontoffice.domain.metrics import GroupBy, SLVariant
from frontoffice.services.calendars import CalendarIn, CalendarOut
from frontoffice.services.context import Actor
from frontoffice.services.stats import report_csv, report_rows

from ..errors import ApiError
from ..security import container, requires

router = APIRouter()
Stats = Annotated[Actor, Depends(requires("stats.read"))]


@router.get(
    "/stats/report",
    tags=["statistics"],
    responses={
        200: {
            "description": "The report: JSON, or with ``format=csv`` a CSV file",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def stats_report(
    request: Request,
    actor: Stats,
    start: datetime,
    end: datetime,
    group_by: GroupBy = "queue",
    interval: Annotated[
        int, Query(description="seconds per row; 0 = one row per group", ge=0, le=86400)
    ] = 900,
    sl_threshold_s: Annotated[float | None, Query(gt=0, le=3600)] = None,
    short_abandon_s: Annotated[float | None, Query(ge=0, le=600)] = None,
    sl_variant: SLVariant = "default",
    project_id: int | None = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    """Offered, answered, abandoned, service level, ASA, AHT, occupancy... per group and interval.

    ``start`` and ``end`` need a time zone (``2026-11-27T00:00:00+03:00``). Definitions: docs/metrics.md.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError(400, "naive-datetime", "Give start and end with a time zone offset")
    report = await container(request).stats.report(
        actor,
        start=start,
        end=end,
        group_by=group_by,
        interval_s=interval or None,
        sl_threshold_s=sl_threshold_s,
        short_abandon_s=short_abandon_s,
        sl_variant=sl_variant,
        project_id=project_id,
    )
    rows = report_rows(report)
    if format == "csv":
        stats = container(request).stats
        names = await stats.group_names(group_by, (row["key"] for row in rows))
        return Response(
            report_csv(rows, group_by=group_by, names=names, zone=stats.zone),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{csv_file_name(group_by, start, end)}"'},
        )
    return {
        "start": report.start,
        "end": report.end,
        "group_by": report.group_by,
        "interval_s": report.interval_s,
        "sl_threshold_s": report.sl_threshold_s,
        "short_abandon_s": report.short_abandon_s,
        "sl_variant": report.sl_variant,
        "rows": rows,
    }


@router.get("/stats/live", tags=["statistics"])
async def stats_live(request: Request, actor: Stats) -> dict[str, Any]:
    """Today's per-queue figures, kept current from the event log."""
    from dataclasses import asdict

    c = container(request)
    return {
        "queues": [
            asdict(f)
            for f in c.stats.live().values()
            if actor.sees_project(c.acd.project_of_queue(f.queue_id))  # a project-limited user: theirs
        ]
    }


@router.get("/calendars", response_model=list[CalendarOut], tags=["routing"])
async def list_calendars(
    request: Request, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> list[CalendarOut]:
    return await container(request).calendars.list(actor)


@router.post("/calendars", response_model=CalendarOut, status_code=201, tags=["routing"])
async def create_calendar(
    request: Request, body: CalendarIn, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> CalendarOut:
    return await container(request).calendars.save(actor, body)


@router.put("/calendars/{calendar_id}", response_model=CalendarOut, tags=["routing"])
async def update_calendar(
    request: Request,
    calendar_id: int,
    body: CalendarIn,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> CalendarOut:
    return await container(request).calendars.save(actor, body, calendar_id)


def csv_file_name(group_by: str, start: datetime, end: datetime) -> str:
    """``report-queue-2026-12-01-2026-12-06.csv``: what and which days, as the reports page asks for
    them (``end`` is exclusive: a range that ends at midnight names the day before)."""
    last = end - timedelta(microseconds=1) if end > start else end
    return f"report-{group_by}-{start:%Y-%m-%d}-{last:%Y-%m-%d}.csv"
