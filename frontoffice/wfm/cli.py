"""``plan``: staffing, lines, day plans, forecasts and costs from the command line.

A click group; the project's main command mounts it as ``frontoffice plan``. This is the only
module of the package that reads files or prints.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import tomllib
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from frontoffice.domain.dialer import DEFAULT_ABANDON_CAP, DialMode
from frontoffice.wfm.cost import CostInputs, break_even, own_cost
from frontoffice.wfm.dayplan import IntervalError, plan_day
from frontoffice.wfm.erlang_a import erlang_a_metrics
from frontoffice.wfm.erlang_b import (
    erlang_b,
    extended_erlang_b,
    extended_lines_for_blocking,
    lines_for_blocking,
)
from frontoffice.wfm.erlang_c import erlang_c_metrics
from frontoffice.wfm.forecast import METHODS, backtest, forecast_calls
from frontoffice.wfm.outbound import OUTBOUND_MODES, OutboundComparison, OutboundScenario, compare_outbound
from frontoffice.wfm.simulation import (
    Duration,
    QueueEstimates,
    Scenario,
    SimulationResult,
    scenario_from_dict,
    single_queue_scenario,
)
from frontoffice.wfm.simulation import simulate as run_simulation
from frontoffice.wfm.staffing import Staffing, StaffingTarget, erlang_c_staffing, required_agents
from frontoffice.wfm.trunks import size_trunks

__all__ = [
    "RATE",
    "SERVICE_LEVEL",
    "Number",
    "Share",
    "parse_rate",
    "parse_service_level",
    "parse_share",
    "plan",
    "simulate",
]

_UNIT_SECONDS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_LIMIT_LABELS = {
    "service_level": "SL",
    "asa": "ASA",
    "abandon_rate": "abandon",
    "max_occupancy": "occupancy cap",
    "stability": "N > A",
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?"
_RATE = re.compile(rf"^\s*({_NUMBER})\s*/\s*(\d+(?:\.\d*)?)?\s*([a-z]+?)s?\s*$")


def parse_rate(text: str) -> float:
    """Calls per second from ``N/min``, ``N/h``, ``N/30min``, ``N/s``, ``N/day`` (``1e6/min`` too)."""
    match = _RATE.match(text.strip().lower())
    if not match or match.group(3) not in _UNIT_SECONDS:
        raise ValueError(f"cannot read a call rate from {text!r}: use e.g. 100/min, 6000/h or 100/30min")
    count = float(match.group(1))
    span = float(match.group(2) or 1.0) * _UNIT_SECONDS[match.group(3)]
    if span <= 0.0:
        raise ValueError(f"the period in {text!r} must be > 0")
    if not math.isfinite(count):
        raise ValueError(f"the count in {text!r} must be a finite number")
    return count / span


def parse_share(text: str) -> float:
    """A share from ``30%``, ``0.3`` or ``30``.

    A bare number up to 1 is a fraction and a bare whole number above 1 a percentage; anything else
    (``1.5``: 1.5 % or a typo for 0.15?) is refused as ambiguous unless written with ``%``.
    """
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError:
        raise ValueError(f"cannot read a share from {text!r}: use e.g. 30% or 0.3") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite share")
    if percent:
        return value / 100.0
    if value > 1.0:
        if value != math.floor(value):
            raise ValueError(f"{text!r} is ambiguous: write {raw}% or a fraction up to 1")
        return value / 100.0
    return value


def parse_service_level(text: str) -> tuple[float, float]:
    """``80/20`` (80 % answered within 20 s) as ``(0.8, 20.0)``; ``80%/20s`` is accepted too."""
    parts = text.replace(" ", "").split("/")
    if len(parts) != 2:
        raise ValueError(f"cannot read a service level from {text!r}: use e.g. 80/20")
    level = parse_share(parts[0])
    try:
        answer = float(parts[1].rstrip("s"))
    except ValueError:
        raise ValueError(f"cannot read an answer time from {text!r}: use e.g. 80/20") from None
    if not 0.0 < level < 1.0:
        raise ValueError(f"the share in {text!r} must be above 0% and below 100% (no model answers 100%)")
    if not (answer >= 0.0 and math.isfinite(answer)):
        raise ValueError(f"the answer time in {text!r} must be a finite number of seconds >= 0")
    return level, answer


class Number(click.FloatRange):
    """A finite number, optionally bounded: ``nan``, ``inf`` or a value out of range is a one-line
    usage error naming the option, never a traceback from deeper down."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, or a usage error."""
        result = super().convert(value, param, ctx)
        if not math.isfinite(result):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return result


class Share(click.ParamType[float, Any]):
    """A share written ``30%``, ``0.3`` or ``30`` (see :func:`parse_share`), within bounds.

    The one type every share option of ``plan`` and ``simulate`` uses, so they all read alike.
    """

    name = "share"

    def __init__(self, *, zero: bool = True, one: bool = False) -> None:
        self.zero = zero
        self.one = one

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The share as a fraction, or a usage error."""
        if isinstance(value, float):
            return value
        try:
            share = parse_share(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        low_ok = share >= 0.0 if self.zero else share > 0.0
        high_ok = share <= 1.0 if self.one else share < 1.0
        if not (low_ok and high_ok):
            low = "0%" if self.zero else "above 0%"
            high = "100%" if self.one else "below 100%"
            self.fail(f"{value!r} must be from {low} to {high}.", param, ctx)
        return share


class _Parsed(click.ParamType[Any, Any]):
    def __init__(self, name: str, parser: Callable[[str], Any]) -> None:
        self.name = name
        self.parser = parser

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.parser(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


RATE = _Parsed("rate", parse_rate)
"""A call rate option type: ``100/min``, ``6000/h``, ``1e6/day``."""
SERVICE_LEVEL = _Parsed("X/T", parse_service_level)
"""A service level option type: ``80/20``, ``80%/20s``."""
# Times, rates and traffic: a handling time or patience of 0 s divides by zero in the models, while
# an IVR time, a wrap-up or a volume of 0 is a real answer.
POSITIVE = Number(min=0.0, min_open=True)
NON_NEGATIVE = Number(min=0.0)


def _console(width: int = 120) -> Console:
    # Wide enough for the day plan's ten columns even when the output is not a terminal.
    return Console(highlight=False, soft_wrap=False, width=max(width, Console().width))


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


def _secs(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.1f}"


def _traffic(calls_per_s: float | None, traffic: float | None, aht_s: float) -> float:
    if traffic is not None and calls_per_s is not None:
        raise click.UsageError("give --calls or --traffic, not both")
    if traffic is not None:
        return traffic
    if calls_per_s is None:
        raise click.UsageError("give --calls (e.g. 100/min) or --traffic (erlangs)")
    return calls_per_s * aht_s


def _target(
    sl: tuple[float, float] | None,
    asa: float | None,
    abandon: float | None,
    max_occupancy: float | None,
    shrinkage: float,
) -> StaffingTarget:
    level, answer = sl if sl is not None else (None, 20.0)
    if level is None and asa is None and abandon is None:
        level = 0.8  # the customary 80/20 when no service target is given; a cap alone is not one
    try:
        return StaffingTarget(level, answer, asa, abandon, max_occupancy, shrinkage)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _staffing_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--aht", type=POSITIVE, default=180.0, show_default=True, help="Average handling time, s."
        ),
        click.option(
            "--sl",
            type=SERVICE_LEVEL,
            help="Service level target X/T: X% within T s [default: 80/20 unless --asa or --abandon].",
        ),
        click.option("--asa", type=POSITIVE, help="Average speed of answer target, s."),
        click.option("--abandon", type=Share(zero=False), help="Maximum abandonment (needs --patience)."),
        click.option("--patience", type=POSITIVE, help="Mean caller patience, s: uses Erlang A."),
        click.option("--max-occupancy", type=Share(zero=False, one=True), help="Occupancy cap, e.g. 85%."),
        click.option(
            "--shrinkage", type=Share(), default="0", show_default=True, help="Share of paid time off."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(name="plan")
def plan() -> None:
    """Workforce planning: Erlang B/C/A staffing, lines, day plans, forecasts, costs."""


@plan.command()
@click.option("--calls", type=RATE, help="Call rate: 100/min, 6000/h, 100/30min.")
@click.option("--traffic", type=NON_NEGATIVE, help="Offered traffic in erlangs (instead of --calls).")
@_staffing_options
def staff(
    calls: float | None,
    traffic: float | None,
    aht: float,
    sl: tuple[float, float] | None,
    asa: float | None,
    abandon: float | None,
    patience: float | None,
    max_occupancy: float | None,
    shrinkage: float,
) -> None:
    """Minimum agents for a service target (Erlang C, or Erlang A with --patience)."""
    a = _traffic(calls, traffic, aht)
    target = _target(sl, asa, abandon, max_occupancy, shrinkage)
    results: list[Staffing] = []
    try:
        results.append(required_agents(a, aht, target, patience))
        if patience is not None and target.abandon_rate is None:
            results.append(erlang_c_staffing(a, aht, target))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    console = _console()
    console.print(f"Offered traffic {a:.2f} Erl ({a / aht * 3600:.0f} calls/h, AHT {aht:g} s)")
    table = Table(title="Minimum staffing")
    for column in (
        "model",
        "agents",
        "scheduled",
        "SL",
        "ASA s",
        "abandon",
        "occupancy",
        "P(wait)",
        "set by",
    ):
        table.add_column(column, justify="right" if column not in ("model", "set by") else "left")
    for r in results:
        name = "Erlang A" if r.model == "erlang_a" else "Erlang C"
        table.add_row(
            name,
            str(r.agents),
            str(r.scheduled),
            f"{_pct(r.service_level)}/{r.answer_time_s:g}s",
            _secs(r.asa_s),
            _pct(r.p_abandon),
            _pct(r.occupancy),
            _pct(r.p_wait),
            ", ".join(_LIMIT_LABELS.get(name, name) for name in r.limiting),
        )
    console.print(table)
    best = results[0]
    around = Table(title=f"Around the answer ({'Erlang A' if best.model == 'erlang_a' else 'Erlang C'})")
    for column in ("agents", "SL", "ASA s", "abandon", "occupancy", "meets"):
        around.add_column(column, justify="right")
    for n in range(max(1, best.agents - 2), best.agents + 3):
        if patience is not None:
            m = erlang_a_metrics(a, n, aht, patience, target.answer_time_s)
            row = (m.service_level, m.asa_s, m.p_abandon, m.occupancy)
        else:
            c = erlang_c_metrics(a, n, aht, target.answer_time_s)
            row = (c.service_level, c.asa_s, 0.0, c.occupancy)
        around.add_row(
            str(n),
            _pct(row[0]),
            _secs(row[1]),
            _pct(row[2]),
            _pct(row[3]),
            "yes" if n >= best.agents else "no",
        )
    console.print(around)
    if target.shrinkage:
        console.print(
            f"Shrinkage {_pct(target.shrinkage)}: schedule {best.scheduled} for {best.agents} on the phones."
        )


@plan.command()
@click.option("--calls", type=RATE, help="Call rate: 100/min, 6000/h, 100/30min.")
@click.option("--traffic", type=NON_NEGATIVE, help="Offered traffic in erlangs (instead of --calls).")
@click.option("--aht", type=POSITIVE, default=180.0, show_default=True, help="Average handling time, s.")
@click.option("--blocking", type=Share(zero=False), default="1%", show_default=True, help="Target.")
@click.option(
    "--agents", type=click.IntRange(min=1), help="Agents answering: sizes lines for IVR + queue + talk."
)
@click.option("--ivr", type=NON_NEGATIVE, default=0.0, show_default=True, help="Mean time in the IVR, s.")
@click.option(
    "--wrap", type=NON_NEGATIVE, default=0.0, show_default=True, help="Wrap-up part of AHT (no line), s."
)
@click.option("--queue-time", type=NON_NEGATIVE, help="Mean queue wait, s (default: from Erlang C/A).")
@click.option("--patience", type=POSITIVE, help="Mean caller patience, s: waits from Erlang A.")
@click.option("--retry", type=Share(), help="Share of blocked callers who retry.")
def lines(
    calls: float | None,
    traffic: float | None,
    aht: float,
    blocking: float,
    agents: int | None,
    ivr: float,
    wrap: float,
    queue_time: float | None,
    patience: float | None,
    retry: float | None,
) -> None:
    """Lines for a blocking target: Erlang B, with retrials, or trunk sizing behind agents."""
    a = _traffic(calls, traffic, aht)
    console = _console()
    try:
        if agents is None:
            table = Table(title=f"Lines for {a:.2f} Erl at {_pct(blocking)} blocking")
            for column in ("model", "lines", "blocking"):
                table.add_column(column, justify="right" if column != "model" else "left")
            n = lines_for_blocking(a, blocking)
            table.add_row("Erlang B", str(n), _pct(erlang_b(a, n) if a > 0.0 else 0.0))
            if retry is not None:
                m = extended_lines_for_blocking(a, blocking, retry)
                table.add_row(
                    f"extended Erlang B, {_pct(retry)} retry", str(m), _pct(extended_erlang_b(a, m, retry))
                )
            console.print(table)
            return
        t = size_trunks(a, aht, agents, blocking, ivr, wrap, queue_time, patience)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table(title=f"Trunk for {a:.2f} Erl offered to {agents} agents, {_pct(blocking)} blocking")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("mean queue wait, s", f"{t.queue_wait_s:.1f}")
    table.add_row("line holding time, s", f"{t.line_hold_s:.1f}")
    table.add_row("line traffic, Erl", f"{t.line_traffic:.2f}")
    table.add_row("lines (Erlang B on line traffic)", str(t.lines))
    table.add_row("blocking with them", _pct(t.blocking))
    table.add_row("lines per agent", f"{t.lines_per_agent:.2f}")
    positions = "no K reaches the target" if t.mmnk_positions is None else str(t.mmnk_positions)
    table.add_row("M/M/N/K agent + queue positions", positions)
    table.add_row("IVR ports (Erlang B)", str(t.ivr_ports))
    table.add_row("M/M/N/K lines (positions + IVR)", "—" if t.mmnk_lines is None else str(t.mmnk_lines))
    console.print(table)


# The interval report's CSV (``/api/v1/stats/report?format=csv``, services/stats.py report_csv;
# columns in docs/metrics.md): a header with these columns (and others: names, figures), one row
# per group and interval, times in the site's time zone with their offset (older exports: UTC with
# its offset; both read the same). Its ``offered`` counts the contacts that arrived in the interval.
_REPORT_COLUMNS = ("key", "interval_start", "offered")


def _read_report_csv(
    path: Path, records: Sequence[tuple[int, dict[str, str]]], key: str | None, zone: tzinfo | None
) -> tuple[list[tuple[datetime, float]], list[int]]:
    keys = sorted({record["key"] for _, record in records})
    if key is None and len(keys) > 1:
        raise click.ClickException(
            f"{path}: the report has several groups ({', '.join(k or '(all)' for k in keys[:10])}): "
            "choose one with --key, or export the report grouped 'overall'"
        )
    if key is not None and key not in keys:
        raise click.ClickException(f"{path}: no group {key!r} in the report (groups: {', '.join(keys[:10])})")
    rows: list[tuple[datetime, float]] = []
    lines: list[int] = []
    for number, record in records:
        if key is not None and record["key"] != key:
            continue
        try:
            start = datetime.fromisoformat(record["interval_start"])
            calls = float(record["offered"])
        except ValueError:
            raise click.ClickException(f"{path}:{number}: cannot read {record['interval_start']!r}") from None
        if start.tzinfo is not None:
            # Planning works in the center's wall-clock time: a weekday and an hour of the day.
            start = start.astimezone(zone).replace(tzinfo=None)
        rows.append((start, calls))
        lines.append(number)
    return rows, lines


def _read_forecast_csv(
    path: Path, key: str | None = None, zone: tzinfo | None = None
) -> tuple[list[tuple[datetime, float]], list[int]]:
    """The ``(interval start, calls)`` rows of a CSV and the file line of each.

    Either two columns, interval start and calls (a header line is allowed), or the interval report's
    CSV, whose ``offered`` column is taken for the calls (one group: ``key``) with its UTC times
    converted to ``zone``.
    """
    rows: list[tuple[datetime, float]] = []
    lines: list[int] = []
    with path.open(newline="", encoding="utf-8") as handle:
        records = list(enumerate(csv.reader(handle), start=1))
    if records and all(column in records[0][1] for column in _REPORT_COLUMNS):
        header = records[0][1]
        named = [(n, dict(zip(header, r, strict=False))) for n, r in records[1:] if r]
        rows, lines = _read_report_csv(path, named, key, zone)
        records = []
    elif key is not None:
        raise click.BadParameter("only an interval report CSV has groups to choose from", param_hint="--key")
    for number, record in records:
        if not record or not record[0].strip() or record[0].lstrip().startswith("#"):
            continue
        if len(record) < 2:
            raise click.ClickException(f"{path}:{number}: expected 'interval start, calls'")
        try:
            calls = float(record[1])
            rows.append((datetime.fromisoformat(record[0].strip()), calls))
        except ValueError:
            if number == 1 and not rows:
                continue  # a header row
            raise click.ClickException(f"{path}:{number}: cannot read {record[:2]!r}") from None
        lines.append(number)
    for (start, calls), number in zip(rows, lines, strict=True):
        if not (calls >= 0.0 and math.isfinite(calls)):
            raise click.ClickException(f"{path}:{number}: calls must be a finite number >= 0")
        if (start.tzinfo is None) != (rows[0][0].tzinfo is None):
            raise click.ClickException(
                f"{path}:{number}: give every start with a time zone offset, or none (line {lines[0]} "
                f"{'has' if rows[0][0].tzinfo else 'has none'})"
            )
    if not rows:
        raise click.ClickException(f"{path}: no intervals")
    return rows, lines


def _missing_warnings(
    path: Path, rows: Sequence[tuple[datetime, float]], lines: Sequence[int], missing: Sequence[datetime]
) -> list[str]:
    """One warning per run of missing intervals, naming the line that follows the gap."""
    starts = sorted((start, line) for (start, _), line in zip(rows, lines, strict=True))
    runs: dict[int, list[datetime]] = {}
    for gap in missing:
        following = next(line for start, line in starts if start > gap)
        runs.setdefault(following, []).append(gap)
    return [
        f"warning: {path}:{line}: no rows from {gaps[0].strftime('%Y-%m-%d %H:%M')} to "
        f"{gaps[-1].strftime('%Y-%m-%d %H:%M')} ({len(gaps)} intervals): not planned; "
        "give them with 0 calls if the center is closed then"
        for line, gaps in runs.items()
    ]


@plan.command()
@click.argument("forecast", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_staffing_options
@click.option(
    "--interval", type=click.IntRange(min=1), help="Interval length, minutes (default: from the timestamps)."
)
@click.option("--blocking", type=Share(zero=False), default="1%", show_default=True, help="Lines target.")
@click.option("--ivr", type=NON_NEGATIVE, default=0.0, show_default=True, help="Mean time in the IVR, s.")
@click.option(
    "--wrap", type=NON_NEGATIVE, default=0.0, show_default=True, help="Wrap-up part of AHT (no line), s."
)
def day(
    forecast: Path,
    aht: float,
    sl: tuple[float, float] | None,
    asa: float | None,
    abandon: float | None,
    patience: float | None,
    max_occupancy: float | None,
    shrinkage: float,
    interval: int | None,
    blocking: float,
    ivr: float,
    wrap: float,
) -> None:
    """Agents and lines per interval from FORECAST, a CSV of 'interval start, calls'."""
    rows, lines = _read_forecast_csv(forecast)
    target = _target(sl, asa, abandon, max_occupancy, shrinkage)
    if interval is None and len(rows) == 1:
        raise click.UsageError(f"{forecast}: one interval alone does not say how long it is: give --interval")
    try:
        result = plan_day(
            rows,
            aht,
            target,
            interval_s=None if interval is None else interval * 60,
            patience_s=patience,
            blocking=blocking,
            ivr_s=ivr,
            wrap_s=wrap,
        )
    except IntervalError as exc:
        raise click.ClickException(f"{forecast}:{lines[exc.row]}: {exc}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    console = _console()
    for warning in _missing_warnings(forecast, rows, lines, result.missing):
        console.print(warning, soft_wrap=True)
    table = Table(title=f"Day plan, {result.interval_s // 60}-minute intervals")
    columns = (
        "interval",
        "calls",
        "Erl",
        "agents",
        "scheduled",
        "SL",
        "ASA s",
        "abandon",
        "occupancy",
        "lines",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "interval" else "right", no_wrap=True)
    for r in result.intervals:
        table.add_row(
            r.start.strftime("%Y-%m-%d %H:%M"),
            f"{r.calls:g}",
            f"{r.traffic:.1f}",
            str(r.agents),
            str(r.scheduled),
            _pct(r.service_level),
            _secs(r.asa_s),
            _pct(r.p_abandon),
            _pct(r.occupancy),
            str(r.lines),
        )
    console.print(table)
    totals = Table(title="Totals")
    totals.add_column("figure")
    totals.add_column("value", justify="right")
    totals.add_row("calls", f"{result.total_calls:g}")
    totals.add_row("agent-hours on the phones", f"{result.agent_hours:.1f}")
    totals.add_row("scheduled agent-hours", f"{result.scheduled_hours:.1f}")
    totals.add_row("peak agents / scheduled", f"{result.peak_agents} / {result.peak_scheduled}")
    totals.add_row("lines for the day (largest interval)", str(result.lines))
    totals.add_row("service level (call-weighted)", _pct(result.service_level))
    totals.add_row("ASA (call-weighted), s", _secs(result.asa_s))
    totals.add_row("abandonment (call-weighted)", _pct(result.p_abandon))
    console.print(totals)


def _parse_dates(text: str | None) -> frozenset[date]:
    if not text:
        return frozenset()
    try:
        return frozenset(date.fromisoformat(part.strip()) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@plan.command(name="forecast")
@click.argument("history", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--start", "start_text", help="First day to forecast, YYYY-MM-DD (default: the day after the history)."
)
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True, help="Days to forecast.")
@click.option("--method", type=click.Choice(METHODS), default="seasonal_average", show_default=True)
@click.option(
    "--weeks",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Recent weeks in a weekday profile.",
)
@click.option("--holidays", help="Holiday dates, comma-separated YYYY-MM-DD.")
@click.option(
    "--backtest-weeks",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Held-out weeks to score (0: none).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the forecast CSV here."
)
@click.option("--key", help="The group to forecast from an interval report CSV with several (a queue id...).")
@click.option(
    "--tz",
    "time_zone",
    envvar="FRONTOFFICE_TIME_ZONE",
    default="UTC",
    show_default=True,
    help="IANA time zone of the center, for a report's UTC times (as FRONTOFFICE_TIME_ZONE).",
)
def forecast_command(
    history: Path,
    start_text: str | None,
    days: int,
    method: str,
    weeks: int,
    holidays: str | None,
    backtest_weeks: int,
    output: Path | None,
    key: str | None,
    time_zone: str,
) -> None:
    """Forecast calls per interval from HISTORY; the output feeds 'plan day'.

    HISTORY is a CSV of 'interval start, calls' or the interval report's CSV
    (/api/v1/stats/report?format=csv, e.g. grouped 'overall' with 15-minute intervals).
    """
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"no time zone {time_zone!r}", param_hint="--tz") from None
    rows, _ = _read_forecast_csv(history, key, zone)
    holiday_set = _parse_dates(holidays)
    try:
        start = (
            date.fromisoformat(start_text)
            if start_text
            else max(t for t, _ in rows).date() + timedelta(days=1)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--start") from None
    console = _console()
    try:
        if backtest_weeks > 0:
            bt = backtest(
                rows, holidays=holiday_set, holdout_weeks=backtest_weeks, method=method, weeks=weeks
            )
            table = Table(title=f"Backtest, {method}")
            for column in ("week from", "MAPE", "WAPE"):
                table.add_column(column, justify="right")
            for w in bt.weeks:
                table.add_row(w.week_start.isoformat(), _pct(w.mape), _pct(w.wape))
            table.add_row("all", _pct(bt.mape), _pct(bt.wape))
            console.print(table)
        fc = forecast_calls(rows, start, days, holidays=holiday_set, method=method, weeks=weeks)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    by_day: dict[date, float] = {}
    for item in fc.intervals:
        by_day[item.start.date()] = by_day.get(item.start.date(), 0.0) + item.calls
    table = Table(title=f"Forecast from {start.isoformat()}, {fc.interval_s // 60}-minute intervals")
    table.add_column("day")
    table.add_column("calls", justify="right")
    table.add_column("note")
    for d, total in by_day.items():
        note = (
            "holiday, no holiday history"
            if d in fc.unprofiled_holidays
            else ("holiday" if d in holiday_set else "")
        )
        table.add_row(f"{d.isoformat()} {d.strftime('%a')}", f"{total:.0f}", note)
    console.print(table)
    if output is not None:
        with output.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["interval_start", "calls"])
            for item in fc.intervals:
                writer.writerow([item.start.isoformat(timespec="minutes"), f"{item.calls:.2f}"])
        console.print(f"Wrote {len(fc.intervals)} intervals to {output}")


# The cost model's shares, read like every other share; the rest are amounts, hours or seconds.
_COST_TYPES: dict[str, click.ParamType[Any, Any]] = {
    "currency": click.STRING,
    "payroll_tax_rate": Share(),
    "shrinkage": Share(),
    "max_occupancy": Share(zero=False, one=True),
    "talk_share": Share(zero=False, one=True),
    "service_level": Share(zero=False, one=True),
    "paid_hours_per_month": Number(min=0.0, min_open=True, max=744.0),
    "open_hours_per_month": Number(min=0.0, min_open=True, max=744.0),
    "supervisor_ratio": POSITIVE,
    "talk_time_s": POSITIVE,
}
# Short names kept from before the talk time and open hours were cost inputs.
_COST_ALIASES = {"talk_time_s": ("--talk",), "open_hours_per_month": ("--hours",)}


def _cost_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for field in reversed(dataclasses.fields(CostInputs)):
        func = click.option(
            "--" + field.name.replace("_", "-"),
            *_COST_ALIASES.get(field.name, ()),
            field.name,
            type=_COST_TYPES.get(field.name, NON_NEGATIVE),
            default=field.default,
            show_default=True,
            help=field.metadata.get("help"),
        )(func)
    return func


@plan.command()
@click.option("--talk-minutes", type=NON_NEGATIVE, help="Operator talk minutes per month to compare at.")
@click.option("--calls", type=RATE, help="Or a call rate during the open hours (with --talk and --hours).")
@click.option(
    "--sl", type=SERVICE_LEVEL, help="Service target X/T, short for --service-level and --answer-time-s."
)
@_cost_options
def cost(
    talk_minutes: float | None, calls: float | None, sl: tuple[float, float] | None, **fields: Any
) -> None:
    """Own center versus an outsourcer's price per talk minute; break-even volume and operators.

    The own center is sized with Erlang C for its volume and service target (positions on the
    phones during the open hours, occupancy at most the ceiling), then staffed with operators
    for the open hours after shrinkage.
    """
    if talk_minutes is not None and calls is not None:
        raise click.UsageError("give --talk-minutes or --calls, not both")
    if sl is not None:
        fields["service_level"], fields["answer_time_s"] = sl
    try:
        inputs = CostInputs(**fields)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if calls is not None:
        talk_minutes = calls * inputs.open_hours_per_month * 3600.0 * inputs.talk_time_s / 60.0
    money = inputs.currency
    console = _console(140)  # the cost table's ten columns
    console.print(
        f"Amounts in {money}. At the {_pct(inputs.max_occupancy)} occupancy ceiling one operator delivers "
        f"{inputs.minutes_per_operator:,.0f} talk minutes a month and costs {inputs.operator_cost:,.2f} "
        f"({inputs.operator_cost / inputs.minutes_per_operator:.3f} per talk minute before supervision, "
        "telephony and overhead); a smaller center needs spare capacity to answer "
        f"{_pct(inputs.service_level)} within {inputs.answer_time_s:g} s (Erlang C).",
        soft_wrap=True,
    )
    volumes: Sequence[float] = [talk_minutes] if talk_minutes is not None else []
    try:
        be = break_even(inputs)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if be is None:
        console.print(
            f"At {inputs.outsourcer_price_per_minute:.3f} {money} per talk minute the outsourcer is cheaper "
            "at every volume."
        )
    else:
        console.print(
            f"Break-even: {be.talk_minutes:,.0f} talk minutes a month ({be.operators} operators, "
            f"{be.supervisors} supervisors); from there on the own center is never dearer."
        )
        volumes = [*volumes, be.talk_minutes]
    table = Table(title=f"Monthly cost, {money}")
    for column in (
        "talk minutes",
        "Erl",
        "positions",
        "occupancy",
        "operators",
        "supervisors",
        "own total",
        "own per minute",
        "outsourced",
        "cheaper",
    ):
        table.add_column(column, justify="right")
    for v in volumes:
        c = own_cost(inputs, v)
        cheaper = "own" if c.total < c.outsourced else ("equal" if c.total == c.outsourced else "outsourcer")
        table.add_row(
            f"{v:,.0f}",
            f"{inputs.traffic(v):.2f}",
            str(c.positions),
            _pct(c.occupancy),
            str(c.operators),
            str(c.supervisors),
            f"{c.total:,.2f}",
            f"{c.per_talk_minute:.3f}",
            f"{c.outsourced:,.2f}",
            cheaper,
        )
    if volumes:
        console.print(table)


def _read_scenario(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise click.ClickException(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a table (TOML) or an object (JSON) at the top")
    return data


def _interval(e: Any, fmt: Callable[[float], str]) -> tuple[str, str]:
    """``(mean, 95 % interval)`` cells of an estimate. Every figure is >= 0 and a share <= 1, so the
    symmetric t-interval is shown clipped to that range."""
    if e.n == 0 or not math.isfinite(e.mean):
        return "—", ""
    if not math.isfinite(e.half_width):
        return fmt(e.mean), "(one replication)"
    high = min(e.high, 1.0) if fmt is _pct else e.high
    return fmt(e.mean), f"{fmt(max(e.low, 0.0))} … {fmt(high)}"


def _print_simulation(console: Console, result: SimulationResult, formula: dict[str, float] | None) -> None:
    sc = result.scenario
    t = sc.answer_time_s
    rows: list[tuple[str, Any, Callable[[float], str], str]] = [
        (f"service level ({t:g} s)", result.overall.service_level, _pct, "service_level"),
        (
            "service level among answered",
            result.overall.service_level_answered,
            _pct,
            "service_level_answered",
        ),
        ("ASA, s", result.overall.asa_s, lambda x: f"{x:.1f}", "asa_s"),
        ("abandoned", result.overall.abandon_rate, _pct, "p_abandon"),
        ("occupancy", result.occupancy, _pct, "occupancy"),
        ("contacts offered per replication", result.overall.offered, lambda x: f"{x:,.0f}", ""),
        ("waiting when arrivals stopped", result.waiting_at_horizon, lambda x: f"{x:,.1f}", ""),
        ("still waiting at the end", result.waiting_at_end, lambda x: f"{x:,.1f}", ""),
    ]
    if result.overall.overflow_rate.mean:
        rows.append(("overflowed", result.overall.overflow_rate, _pct, ""))
    table = Table(title=f"Simulation: {result.replications} replications, 95 % confidence intervals")
    table.add_column("figure")
    table.add_column("mean", justify="right")
    table.add_column("95 % interval", justify="right")
    if formula is not None:
        table.add_column("formula", justify="right")
    for label, est, fmt, key in rows:
        mean, interval = _interval(est, fmt)
        cells = [label, mean, interval]
        if formula is not None:
            cells.append(fmt(formula[key]) if key in formula else "")
        table.add_row(*cells)
    console.print(table)
    if len(result.queues) > 1:
        per = Table(title="By queue of arrival")
        for column in ("queue", "offered", "SL", "ASA s", "abandoned", "overflowed"):
            per.add_column(column, justify="left" if column == "queue" else "right")
        for queue_id, q in result.queues.items():
            per.add_row(queue_id, *_queue_cells(q))
        console.print(per)
    if len(result.group_occupancy) > 1:
        groups = Table(title="Occupancy by agent group")
        groups.add_column("group")
        groups.add_column("agents", justify="right")
        groups.add_column("occupancy", justify="right")
        groups.add_column("95 % interval", justify="right")
        for g in sc.agents:
            groups.add_row(g.name, str(g.count), *_interval(result.group_occupancy[g.name], _pct))
        console.print(groups)
    if result.overflow_moves:
        moves = Table(title="Overflow moves per replication")
        moves.add_column("from")
        moves.add_column("to")
        moves.add_column("contacts", justify="right")
        moves.add_column("95 % interval", justify="right")
        for (a, b), e in sorted(result.overflow_moves.items()):
            moves.add_row(a, b, *_interval(e, lambda x: f"{x:,.1f}"))
        console.print(moves)


def _queue_cells(q: QueueEstimates) -> list[str]:
    def cell(e: Any, fmt: Callable[[float], str]) -> str:
        mean, interval = _interval(e, fmt)
        return mean if not interval or interval.startswith("(") else f"{mean} ({interval})"

    return [
        f"{q.offered.mean:,.0f}",
        cell(q.service_level, _pct),
        cell(q.asa_s, lambda x: f"{x:.1f}"),
        cell(q.abandon_rate, _pct),
        cell(q.overflow_rate, _pct),
    ]


@click.command(name="simulate")
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A TOML or JSON scenario (several queues, skills, overflow); see docs/planning.md.",
)
@click.option("--calls", type=RATE, help="Call rate: 100/min, 6000/h, 100/30min.")
@click.option("--aht", type=POSITIVE, default=180.0, show_default=True, help="Average handling time, s.")
@click.option(
    "--agents", type=click.IntRange(min=1), help="Agents (default: the Erlang C/A minimum for --sl)."
)
@click.option(
    "--patience", type=POSITIVE, help="Mean caller patience, s (exponential); default: callers wait."
)
@click.option(
    "--sl",
    type=SERVICE_LEVEL,
    default="80/20",
    show_default=True,
    help="Service level X/T: T is the answer-time threshold; X sizes --agents by default.",
)
@click.option(
    "--handling",
    type=click.Choice(["exponential", "lognormal", "fixed"]),
    default="exponential",
    show_default=True,
    help="Handling time distribution.",
)
@click.option(
    "--handling-cv",
    type=POSITIVE,
    default=1.0,
    show_default=True,
    help="Coefficient of variation (lognormal).",
)
@click.option("--wrap", type=NON_NEGATIVE, default=0.0, show_default=True, help="Wrap-up part of AHT, s.")
@click.option(
    "--hours", type=POSITIVE, help="Simulated hours per replication [default: 8, or the scenario's]."
)
@click.option(
    "--warmup", type=NON_NEGATIVE, help="Seconds not measured at the start (default: 10 AHT, max 10 %)."
)
@click.option(
    "--replications",
    type=click.IntRange(1, 100_000),
    help="Independent replications [default: 20; 3 with --outbound].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same result.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
@click.option(
    "--outbound",
    is_flag=True,
    help="Simulate an outbound campaign: progressive and predictive dialling through the real pacer.",
)
@click.option(
    "--mode",
    type=click.Choice(["progressive", "predictive", "both"]),
    help="Outbound: which dialling mode(s) [default: both].",
)
@click.option(
    "--answer-rate", type=Share(zero=False, one=True), help="Outbound: live answers per call [0.25]."
)
@click.option("--ring-s", type=POSITIVE, help="Outbound: mean ring time before an answer, s [20].")
@click.option("--ring-timeout-s", type=POSITIVE, help="Outbound: ring timeout, s [2 × ring, at least 30].")
@click.option("--talk-s", type=POSITIVE, help="Outbound: mean talk time, s (exponential) [120].")
@click.option("--wrap-s", type=NON_NEGATIVE, help="Outbound: wrap-up after each call, s [10].")
@click.option(
    "--cap", type=Share(zero=True, one=True), help="Outbound: abandon-rate cap, share of answered calls [3%]."
)
def simulate(
    scenario_path: Path | None,
    calls: float | None,
    aht: float,
    agents: int | None,
    patience: float | None,
    sl: tuple[float, float],
    handling: str,
    handling_cv: float,
    wrap: float,
    hours: float | None,
    warmup: float | None,
    replications: int | None,
    seed: int,
    as_json: bool,
    outbound: bool,
    mode: str | None,
    answer_rate: float | None,
    ring_s: float | None,
    ring_timeout_s: float | None,
    talk_s: float | None,
    wrap_s: float | None,
    cap: float | None,
) -> None:
    """Simulate the contact center through the real routing engine, with confidence intervals.

    Either one queue (--calls, --aht, --agents, --patience), compared with Erlang C or A, or a
    --scenario file with several queues, skills, overflow and channels; or, with --outbound, an
    outbound campaign dialled by the real pacer (progressive and predictive on the same contacts).
    """
    outbound_options = (mode, answer_rate, ring_s, ring_timeout_s, talk_s, wrap_s, cap)
    if outbound:
        if scenario_path is not None or calls is not None or patience is not None:
            raise click.UsageError("--outbound takes no --scenario, --calls or --patience")
        if cap is not None and cap > DEFAULT_ABANDON_CAP:
            raise click.BadParameter(
                f"the regulators' ceiling is {_pct(DEFAULT_ABANDON_CAP)}; a campaign may set a lower cap",
                param_hint="--cap",
            )
        try:
            campaign = OutboundScenario(
                agents=50 if agents is None else agents,
                answer_rate=0.25 if answer_rate is None else answer_rate,
                ring_s=20.0 if ring_s is None else ring_s,
                ring_timeout_s=ring_timeout_s,
                talk=Duration("exponential", 120.0 if talk_s is None else talk_s),
                wrap_s=10.0 if wrap_s is None else wrap_s,
                hours=8.0 if hours is None else hours,
                abandon_cap=DEFAULT_ABANDON_CAP if cap is None else cap,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        _simulate_outbound(
            campaign, mode or "both", 3 if replications is None else replications, seed, as_json
        )
        return
    if any(option is not None for option in outbound_options):
        raise click.UsageError(
            "--mode, --answer-rate, --ring-s, --talk-s, --wrap-s and --cap need --outbound"
        )
    if replications is None:
        replications = 20
    level, answer_s = sl
    formula: dict[str, float] | None = None
    console = _console()
    try:
        if scenario_path is not None:
            data = _read_scenario(scenario_path)
            if hours is not None:
                data = {k: v for k, v in data.items() if k not in ("hours", "horizon_s")} | {"hours": hours}
            if warmup is not None:
                data["warmup_s"] = warmup
            scenario: Scenario = scenario_from_dict(data)
        else:
            if calls is None:
                raise click.UsageError("give --calls (e.g. 100/min) or --scenario FILE")
            traffic = calls * aht
            if agents is None:
                staffing = required_agents(traffic, aht, StaffingTarget(level, answer_s), patience)
                agents = staffing.agents
                console.print(
                    f"{agents} agents: the {'Erlang A' if patience else 'Erlang C'} minimum for "
                    f"{_pct(level)} in {answer_s:g} s at {traffic:.1f} Erl."
                )
            if patience is None and agents <= traffic:
                console.print(
                    f"warning: {agents} agents for {traffic:.1f} Erl and callers who never hang up: the "
                    "queue never empties, so every figure below grows with --hours. Give --patience "
                    "or more agents than erlangs.",
                    soft_wrap=True,
                )
            scenario = single_queue_scenario(
                calls,
                aht,
                agents,
                hours=8.0 if hours is None else hours,
                warmup_s=warmup,
                patience_s=patience,
                answer_time_s=answer_s,
                handling=handling,  # type: ignore[arg-type]
                handling_cv=handling_cv,
                wrap_up_s=wrap,
            )
            exponential = handling == "exponential" and wrap == 0.0
            if exponential and patience is not None:
                m = erlang_a_metrics(traffic, agents, aht, patience, answer_s)
                formula = {
                    "service_level": m.service_level,
                    "service_level_answered": m.service_level_answered,
                    "asa_s": m.asa_s,
                    "p_abandon": m.p_abandon,
                    "occupancy": m.occupancy,
                }
            elif exponential and agents > traffic:
                c = erlang_c_metrics(traffic, agents, aht, answer_s)
                formula = {
                    "service_level": c.service_level,
                    "service_level_answered": c.service_level,
                    "asa_s": c.asa_s,
                    "p_abandon": 0.0,
                    "occupancy": c.occupancy,
                }
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task(
            f"{replications} × {scenario.horizon_s / 3600:g} h, {scenario.agent_count} agents",
            total=replications,
        )
        try:
            result = run_simulation(
                scenario, replications, seed, progress=lambda done: bar.update(task, completed=done)
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    _print_simulation(console, result, formula)
    if formula is not None:
        console.print(
            "formula: " + ("Erlang A" if patience is not None else "Erlang C") + " for the same inputs "
            "(steady state); the simulation should agree within its intervals."
        )


def _simulate_outbound(
    scenario: OutboundScenario, which: str, replications: int, seed: int, as_json: bool
) -> None:
    modes = OUTBOUND_MODES if which == "both" else (DialMode(which),)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    total = replications * len(modes)
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=as_json) as bar:
        task = bar.add_task(f"{total} × {scenario.hours:g} h, {scenario.agents} agents", total=total)
        result = compare_outbound(
            scenario, modes, replications, seed, progress=lambda done: bar.update(task, completed=done)
        )
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    _print_outbound(_console(), result)


def _print_outbound(console: Console, result: OutboundComparison) -> None:
    sc = result.scenario
    console.print(
        f"{sc.agents} agents, {sc.hours:g} h; {_pct(sc.answer_rate)} of calls answered after {sc.ring_s:g} s "
        f"on average (ring timeout {sc.timeout_s:g} s); talk {sc.talk.mean_s:g} s, wrap-up {sc.wrap_s:g} s; "
        f"abandon cap {_pct(sc.abandon_cap)}. Every mode dials the same contact list.",
        soft_wrap=True,
    )
    table = Table(title=f"Outbound simulation: {result.replications} replications, 95 % confidence intervals")
    table.add_column("figure")
    for mode in result.runs:
        table.add_column(mode.value, justify="right")
    one = lambda x: f"{x:.1f}"  # noqa: E731
    count = lambda x: f"{x:,.0f}"  # noqa: E731
    rows: list[tuple[str, Callable[[Any], float], Callable[[float], str]]] = [
        ("talk minutes per agent hour", lambda r: r.talk_min_per_agent_hour, one),
        ("abandon rate (of answered calls)", lambda r: r.abandon_ratio, _pct),
        ("calls placed", lambda r: float(r.calls_placed), count),
        ("calls answered", lambda r: float(r.live_answers), count),
        ("agent occupancy (talk + wrap-up)", lambda r: r.occupancy, _pct),
        ("minutes dialled progressively at the cap", lambda r: r.fallback_s / 60.0, one),
    ]
    for label, figure, fmt in rows:
        cells = []
        for mode in result.runs:
            mean, interval = _interval(result.estimate(mode, figure), fmt)
            cells.append(mean if not interval or interval.startswith("(") else f"{mean} ({interval})")
        table.add_row(label, *cells)
    console.print(table)
    gain = result.predictive_gain_ratio
    if gain is not None:
        console.print(f"predictive gain: {gain:.2f} × the talk time of progressive dialling")
