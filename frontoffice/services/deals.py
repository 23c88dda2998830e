"""Deal use cases: a customer's opportunities moving through the sales pipeline.

Amounts are stored in the currency's minor unit (ISO 4217 exponent, from Babel's CLDR data), so a
deal of 1 500,50 RUB is 150050 kopecks on every database; the API speaks major units as decimals.
Every method is one transaction with an audit entry per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from babel.numbers import get_currency_precision, is_currency
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.pipelines import DEFAULT_PIPELINE, Pipeline, PipelineStage, StageKind
from frontoffice.store.tables import Deal, PipelineRow

from .case_schemas import (
    DealFilters,
    DealIn,
    DealOut,
    DealPatch,
    DealSort,
    ForecastRow,
    PipelineIn,
    PipelineOut,
    PipelineStageIn,
)
from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .schemas import Page
from .scope import check_project, check_user_sees, deal_visible, visible_deal, where
from .tickets import active_user, case_project, live_customer
from .work_lists import deal_conditions, deal_keyset

__all__ = ["DealService", "deal_out", "pipeline_keys", "pipeline_of_row", "to_major", "to_minor"]

MAX_PAGE = 200
#: A forecast looks at most two years ahead: beyond that expected close days are guesses.
MAX_FORECAST_MONTHS = 24


def _precision(currency: str) -> int:
    if not is_currency(currency):
        raise InvalidInput("Unknown currency", error_id="unknown-currency", currency=currency)
    return int(get_currency_precision(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """1500.5 RUB -> 150050; more decimals than the currency has is an error, not a rounding."""
    minor = amount.scaleb(_precision(currency))
    if minor != minor.to_integral_value():
        raise InvalidInput(
            "The amount has more decimals than the currency allows",
            error_id="invalid-amount",
            amount=str(amount),
            currency=currency,
        )
    return int(minor)


def to_major(amount_minor: int, currency: str) -> Decimal:
    digits = _precision(currency)
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def pipeline_of_row(row: PipelineRow) -> Pipeline:
    return Pipeline(
        tuple(
            PipelineStage(
                st["key"], st["name"], int(st["probability_pct"]), StageKind(st.get("kind", "open"))
            )
            for st in row.stages
        ),
        tuple(row.won_reasons),
        tuple(row.lost_reasons),
    )


def pipeline_keys(pipeline: Pipeline) -> set[str]:
    return {st.key for st in pipeline.stages}


def _pipeline_out(pipeline_id: int | None, name: str, project_id: int | None, p: Pipeline) -> PipelineOut:
    return PipelineOut(
        id=pipeline_id,
        name=name,
        project_id=project_id,
        stages=[
            PipelineStageIn(key=st.key, name=st.name, probability_pct=st.probability_pct, kind=st.kind.value)
            for st in p.stages
        ],
        won_reasons=list(p.won_reasons),
        lost_reasons=list(p.lost_reasons),
    )


def deal_out(deal: Deal) -> DealOut:
    return DealOut(
        id=deal.id,
        customer_id=deal.customer_id,
        project_id=deal.project_id,
        title=deal.title,
        stage=deal.stage,
        pipeline_id=deal.pipeline_id,
        close_reason=deal.close_reason,
        amount=to_major(deal.amount_minor, deal.currency),
        currency=deal.currency,
        owner_id=deal.owner_id,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
        closed_at=deal.closed_at,
        expected_close_on=deal.expected_close_on,
    )


class DealService:
    """Deals of the sales pipeline. Every method is one transaction. A user limited to projects works
    only with the deals they may see (:mod:`frontoffice.services.scope`); the others answer 404."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create(self, actor: Actor, data: DealIn) -> DealOut:
        actor.require("deals.write")
        amount_minor = to_minor(data.amount, data.currency)
        async with self.sessions.begin() as s:
            await live_customer(s, actor, data.customer_id)
            if data.owner_id is not None:
                await active_user(s, data.owner_id)
            project_id = await case_project(s, actor, data.project_id)
            if data.owner_id is not None:
                # The owner sees the deal and its customer: only someone who already may.
                await check_user_sees(
                    s,
                    data.owner_id,
                    "deal",
                    project_id=project_id,
                    customer_id=data.customer_id,
                    field="owner_id",
                )
            pipeline_id, pipeline = await self._pipeline_for(s, actor, data.pipeline_id, project_id)
            stage = pipeline.stage(data.stage) if data.stage is not None else pipeline.first_open
            closed = stage.kind is not StageKind.OPEN
            pipeline.check_reason(stage.kind, data.close_reason)
            now = self.clock()
            deal = Deal(
                customer_id=data.customer_id,
                project_id=project_id,
                pipeline_id=pipeline_id,
                title=data.title,
                stage=stage.key,
                close_reason=data.close_reason if closed else None,
                amount_minor=amount_minor,
                currency=data.currency,
                owner_id=data.owner_id,
                created_at=now,
                updated_at=now,
                closed_at=now if closed else None,
                expected_close_on=data.expected_close_on,
            )
            s.add(deal)
            await s.flush()
            audit(
                s, actor, "deal.create", "deal", deal.id, now, customer_id=data.customer_id, stage=stage.key
            )
            return deal_out(deal)

    async def get(self, actor: Actor, deal_id: int) -> DealOut:
        actor.require("deals.read")
        async with self.sessions() as s:
            return deal_out(await self._deal(s, actor, deal_id))

    async def update(self, actor: Actor, deal_id: int, patch: DealPatch) -> DealOut:
        """Move the deal to another stage (won / lost close it, any other reopens it), or change its
        title, amount, currency or owner."""
        actor.require("deals.write")
        changes = patch.model_dump(exclude_unset=True)
        for name in ("title", "stage", "amount", "currency"):
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be null", error_id="invalid-null", field=name)
        async with self.sessions.begin() as s:
            deal = await self._deal(s, actor, deal_id)
            now = self.clock()
            old = deal.stage
            pipeline = await self._pipeline_of(s, deal)
            if patch.amount is not None or patch.currency is not None:
                currency = patch.currency or deal.currency
                amount = (
                    patch.amount if patch.amount is not None else to_major(deal.amount_minor, deal.currency)
                )
                deal.amount_minor = to_minor(amount, currency)
                deal.currency = currency
            if changes.get("owner_id") is not None:
                await active_user(s, changes["owner_id"])
            if changes.get("owner_id") is not None and changes["owner_id"] != deal.owner_id:
                await check_user_sees(
                    s,
                    changes["owner_id"],
                    "deal",
                    project_id=deal.project_id,
                    customer_id=deal.customer_id,
                    field="owner_id",
                    handed_deal=deal.id,
                    deal_id=deal.id,
                )
            if "owner_id" in changes:
                deal.owner_id = changes["owner_id"]
            if patch.title is not None:
                deal.title = patch.title
            if "expected_close_on" in changes:
                deal.expected_close_on = patch.expected_close_on
            if patch.stage is not None and patch.stage != old:
                # A move between stages (the board's drag): won or lost close the deal, any other
                # stage reopens it; the move is in the audit entry below.
                new = pipeline.stage(patch.stage)
                was_closed = (
                    pipeline.stage(old).kind is not StageKind.OPEN
                    if old in pipeline_keys(pipeline)
                    else False
                )
                deal.stage = new.key
                if new.kind is StageKind.OPEN:
                    deal.closed_at = None
                    deal.close_reason = None
                elif not was_closed:
                    deal.closed_at = now
            if "close_reason" in changes:
                kind = pipeline.stage(deal.stage).kind
                if kind is StageKind.OPEN and patch.close_reason is not None:
                    raise InvalidInput(
                        "Only a won or lost deal has a close reason",
                        error_id="deal-not-closed",
                        deal_id=deal_id,
                    )
                pipeline.check_reason(kind, patch.close_reason)
                deal.close_reason = patch.close_reason
            deal.updated_at = now
            details: dict[str, object] = {"fields": sorted(changes)}
            if patch.stage is not None and patch.stage != old:
                details |= {"from_stage": old, "to_stage": patch.stage}
            audit(s, actor, "deal.update", "deal", deal_id, now, **details)
            await s.flush()
            return deal_out(deal)

    async def for_customer(
        self,
        actor: Actor,
        customer_id: int,
        *,
        stages: Sequence[str] = (),
        open_only: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[DealOut]:
        """The customer's deals, newest first; ``open_only`` leaves out won and lost ones. A user
        limited to projects gets those of their projects, of none, and owned by them."""
        actor.require("deals.read")
        limit = max(1, min(limit, MAX_PAGE))
        stmt = where(
            select(Deal).where(Deal.customer_id == customer_id),
            deal_visible(actor, customer_known_visible=True),
        )
        if stages:
            stmt = stmt.where(Deal.stage.in_(sorted(set(stages))))
        if open_only:  # whatever the pipeline: a won or lost deal has its close time
            stmt = stmt.where(Deal.closed_at.is_(None))
        if cursor:
            stmt = stmt.where(Deal.id < decode_id_cursor(cursor))
        async with self.sessions() as s:
            await live_customer(s, actor, customer_id)
            rows = list(await s.scalars(stmt.order_by(Deal.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, deal_out)

    async def work_list(
        self,
        actor: Actor,
        filters: DealFilters,
        *,
        sort: DealSort = DealSort.UPDATED_DESC,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[DealOut]:
        """Deals the actor may see that match ``filters``, in ``sort`` order, a keyset page at a time."""
        actor.require("deals.read")
        limit = max(1, min(limit, MAX_PAGE))
        keyset = deal_keyset(sort)
        stmt = where(select(Deal).where(*deal_conditions(actor, filters)), deal_visible(actor))
        if cursor:
            stmt = stmt.where(keyset.after(cursor))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(*keyset.order_by()).limit(limit + 1)))
        shown = rows[:limit]
        return Page[DealOut](
            items=[deal_out(d) for d in shown],
            next_cursor=keyset.cursor(shown[-1]) if len(rows) > limit and shown else None,
        )

    async def forecast(
        self,
        actor: Actor,
        first_month: date,
        months: int,
        *,
        project_id: int | None = None,
        owner_id: int | None = None,
    ) -> list[ForecastRow]:
        """The weighted pipeline: deals expected to close in ``months`` months from ``first_month``
        (lost ones left out), summed exactly in minor units by month, owner and currency, each open
        amount weighted by its stage's probability."""
        actor.require("deals.read")
        if not 1 <= months <= MAX_FORECAST_MONTHS:
            raise InvalidInput(
                f"Give 1 to {MAX_FORECAST_MONTHS} months",
                error_id="invalid-period",
                max_months=MAX_FORECAST_MONTHS,
            )
        start = first_month.replace(day=1)
        end_index = start.year * 12 + start.month - 1 + months
        end = date(end_index // 12, end_index % 12 + 1, 1)
        stmt = where(
            select(
                Deal.expected_close_on,
                Deal.owner_id,
                Deal.currency,
                Deal.stage,
                Deal.amount_minor,
                Deal.pipeline_id,
            ).where(Deal.expected_close_on >= start, Deal.expected_close_on < end),
            deal_visible(actor),
        )
        if project_id is not None:
            stmt = stmt.where(Deal.project_id == project_id)
        if owner_id is not None:
            stmt = stmt.where(Deal.owner_id == owner_id)
        sums: dict[tuple[str, int | None, str], list[int]] = {}
        async with self.sessions() as s:
            pipelines = {row.id: pipeline_of_row(row) for row in await s.scalars(select(PipelineRow))}
            for close_on, owner, currency, stage_key, amount, pipeline_id in await s.execute(stmt):
                pipeline = pipelines.get(pipeline_id, DEFAULT_PIPELINE) if pipeline_id else DEFAULT_PIPELINE
                stage = next((st for st in pipeline.stages if st.key == stage_key), None)
                if stage is None or stage.kind is StageKind.LOST:
                    continue
                key = (f"{close_on.year:04d}-{close_on.month:02d}", owner, currency)
                row = sums.setdefault(key, [0, 0, 0, 0])
                row[0] += 1
                row[1] += amount
                # Exact: minor units times a whole percentage, divided once per deal (rounded down).
                row[2] += amount * stage.probability_pct // 100
                row[3] += amount if stage.kind is StageKind.WON else 0
        return [
            ForecastRow(
                month=month,
                owner_id=owner,
                currency=currency,
                deals=n,
                amount=to_major(amount, currency),
                weighted_amount=to_major(weighted, currency),
                won_amount=to_major(won, currency),
            )
            for (month, owner, currency), (n, amount, weighted, won) in sorted(
                sums.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2])
            )
        ]

    # ------------------------------------------------------------------ pipelines
    async def pipelines(self, actor: Actor) -> list[PipelineOut]:
        """The default pipeline first, then those of the projects the actor sees."""
        actor.require("deals.read")
        async with self.sessions() as s:
            rows = [
                r
                for r in await s.scalars(select(PipelineRow).order_by(PipelineRow.id))
                if actor.sees_project(r.project_id)
            ]
        return [_pipeline_out(None, "Sales", None, DEFAULT_PIPELINE)] + [
            _pipeline_out(r.id, r.name, r.project_id, pipeline_of_row(r)) for r in rows
        ]

    async def save_pipeline(
        self, actor: Actor, data: PipelineIn, pipeline_id: int | None = None
    ) -> PipelineOut:
        """Create a pipeline, or replace one: a stage that deals still stand on cannot be removed."""
        actor.require("agents.supervise")
        pipeline = Pipeline(
            tuple(
                PipelineStage(st.key, st.name, st.probability_pct, StageKind(st.kind)) for st in data.stages
            ),
            tuple(data.won_reasons),
            tuple(data.lost_reasons),
        )
        async with self.sessions.begin() as s:
            if data.project_id is not None:
                await check_project(s, actor, data.project_id)
            now = self.clock()
            if pipeline_id is None:
                row = PipelineRow(created_at=now)
                s.add(row)
            else:
                found = await s.get(PipelineRow, pipeline_id)
                if found is None or not actor.sees_project(found.project_id):
                    raise NotFound("No such pipeline", error_id="no-such-pipeline", pipeline_id=pipeline_id)
                row = found
                used = set(
                    await s.scalars(select(Deal.stage).where(Deal.pipeline_id == pipeline_id).distinct())
                )
                gone = sorted(used - pipeline_keys(pipeline))
                if gone:
                    raise Conflict(
                        "Deals still stand on stages this change removes",
                        error_id="pipeline-stage-in-use",
                        stages=gone,
                    )
            row.name = data.name
            row.project_id = data.project_id
            row.stages = [st.model_dump(mode="json") for st in data.stages]
            row.won_reasons = list(data.won_reasons)
            row.lost_reasons = list(data.lost_reasons)
            row.updated_at = now
            await s.flush()
            audit(s, actor, "pipeline.save", "pipeline", row.id, now, name=row.name)
            return _pipeline_out(row.id, row.name, row.project_id, pipeline)

    async def _pipeline_for(
        self, s: AsyncSession, actor: Actor, pipeline_id: int | None, project_id: int | None
    ) -> tuple[int | None, Pipeline]:
        """A new deal's pipeline: the one given (of its project or of none), else its project's
        first, else the default."""
        if pipeline_id is not None:
            row = await s.get(PipelineRow, pipeline_id)
            if row is None or not actor.sees_project(row.project_id):
                raise NotFound("No such pipeline", error_id="no-such-pipeline", pipeline_id=pipeline_id)
            if row.project_id is not None and row.project_id != project_id:
                raise InvalidInput(
                    "The pipeline belongs to another project",
                    error_id="pipeline-of-another-project",
                    pipeline_id=pipeline_id,
                )
            return row.id, pipeline_of_row(row)
        if project_id is not None:
            row = await s.scalar(
                select(PipelineRow)
                .where(PipelineRow.project_id == project_id)
                .order_by(PipelineRow.id)
                .limit(1)
            )
            if row is not None:
                return row.id, pipeline_of_row(row)
        return None, DEFAULT_PIPELINE

    async def _pipeline_of(self, s: AsyncSession, deal: Deal) -> Pipeline:
        if deal.pipeline_id is None:
            return DEFAULT_PIPELINE
        row = await s.get(PipelineRow, deal.pipeline_id)
        return DEFAULT_PIPELINE if row is None else pipeline_of_row(row)

    async def _deal(self, s: AsyncSession, actor: Actor, deal_id: int) -> Deal:
        return await visible_deal(s, actor, deal_id)
