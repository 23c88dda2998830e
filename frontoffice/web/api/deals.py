"""Deals of the sales pipeline: a customer's list, create, change stage, amount or owner."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from frontoffice.services.activities import ActivityIn, ActivityOut, ActivityPatch
from frontoffice.services.case_schemas import (
    DealFilters,
    DealIn,
    DealOut,
    DealPatch,
    DealSort,
    ForecastRow,
    PipelineIn,
    PipelineOut,
)
from frontoffice.services.companies import CompanyOverview, CompanyPatch
from frontoffice.services.context import Actor
from frontoffice.services.sales_report import SalesReport
from frontoffice.services.schemas import CompanyOut, Page

from ..security import container, requires
from .feeds import add_change_feed
from .tickets import validated

router = APIRouter(tags=["deals"])
# Before the /{id} routes: see web/api/feeds.py.
add_change_feed(router, "deals")

Reader = Annotated[Actor, Depends(requires("deals.read"))]
Writer = Annotated[Actor, Depends(requires("deals.write"))]


@router.get("/customers/{customer_id}/deals", response_model=Page[DealOut])
async def customer_deals(
    request: Request,
    customer_id: int,
    actor: Reader,
    stage: Annotated[list[str] | None, Query(description="repeat to give several")] = None,
    open: Annotated[bool, Query(description="leave out won and lost deals")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[DealOut]:
    """The customer's deals, newest first."""
    return await container(request).deals.for_customer(
        actor, customer_id, stages=stage or (), open_only=open, limit=limit, cursor=cursor
    )


@router.get("/deals", response_model=Page[DealOut])
async def list_deals(
    request: Request,
    actor: Reader,
    owner: Annotated[str | None, Query(description="me, none or a user id")] = None,
    stage: Annotated[list[str] | None, Query(description="stage keys; repeat to give several")] = None,
    open: Annotated[bool, Query(description="leave out won and lost deals")] = False,
    pipeline_id: int | None = None,
    project_id: Annotated[list[int] | None, Query()] = None,
    close_month: Annotated[str | None, Query(description="YYYY-MM of the expected close day")] = None,
    sort: DealSort = DealSort.UPDATED_DESC,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[DealOut]:
    """The deal list: the deals the user may see, filtered and sorted, a page at a time."""
    filters = validated(
        DealFilters,
        owner=owner,
        stage=stage or [],
        open=open,
        pipeline_id=pipeline_id,
        project_id=project_id or [],
        close_month=close_month,
    )
    return await container(request).deals.work_list(actor, filters, sort=sort, limit=limit, cursor=cursor)


@router.get("/deals/forecast", response_model=list[ForecastRow])
async def deal_forecast(
    request: Request,
    actor: Reader,
    month: Annotated[
        # Years 1900-2999: a year 0 (or 9999 plus some months) is no calendar date (it was a 500).
        str,
        Query(pattern=r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$", description="the first month, YYYY-MM"),
    ],
    months: Annotated[int, Query(ge=1, le=24)] = 3,
    project_id: int | None = None,
    owner_id: int | None = None,
) -> list[ForecastRow]:
    """The weighted pipeline by close month, owner and currency (lost deals left out)."""
    first = date(int(month[:4]), int(month[5:]), 1)
    return await container(request).deals.forecast(
        actor, first, months, project_id=project_id, owner_id=owner_id
    )


@router.get("/reports/sales", response_model=SalesReport, tags=["deals"])
async def sales_report(
    request: Request,
    actor: Annotated[Actor, Depends(requires("stats.read"))],
    since: datetime,
    until: datetime,
    pipeline_id: Annotated[int | None, Query(description="default: the default pipeline")] = None,
    project_id: int | None = None,
) -> SalesReport:
    """Win rate and cycle time, overall and by stage, of the pipeline's deals closed (won or lost) in
    ``[since, until)`` (at most 366 days)."""
    return await container(request).sales_report.report(
        actor, since, until, pipeline_id=pipeline_id, project_id=project_id
    )


@router.patch("/companies/{company_id}", response_model=CompanyOut, tags=["companies"])
async def update_company(
    request: Request,
    company_id: int,
    body: CompanyPatch,
    actor: Annotated[Actor, Depends(requires("companies.write"))],
) -> CompanyOut:
    """Rename the company or change its website or custom fields."""
    return await container(request).companies.update(actor, company_id, body)


@router.get("/companies/{company_id}/overview", response_model=CompanyOverview, tags=["companies"])
async def company_overview(
    request: Request, company_id: int, actor: Annotated[Actor, Depends(requires("companies.read"))]
) -> CompanyOverview:
    """The company with its people, their tickets and their deals (what the user may see)."""
    return await container(request).companies.overview(actor, company_id)


@router.post("/deals", response_model=DealOut, status_code=201)
async def create_deal(request: Request, body: DealIn, actor: Writer) -> DealOut:
    return await container(request).deals.create(actor, body)


@router.get("/deals/{deal_id}", response_model=DealOut)
async def get_deal(request: Request, deal_id: int, actor: Reader) -> DealOut:
    return await container(request).deals.get(actor, deal_id)


@router.patch("/deals/{deal_id}", response_model=DealOut)
async def update_deal(request: Request, deal_id: int, body: DealPatch, actor: Writer) -> DealOut:
    """Move to another stage (won / lost close the deal, other stages reopen it) or change the title,
    amount, currency or owner."""
    return await container(request).deals.update(actor, deal_id, body)


@router.post("/activities", response_model=ActivityOut, status_code=201, tags=["activities"])
async def create_activity(
    request: Request, body: ActivityIn, actor: Annotated[Actor, Depends(requires("tickets.read"))]
) -> ActivityOut:
    """A task or reminder on a deal, a ticket or a customer; its owner is told when it falls due."""
    return await container(request).activities.create(actor, body)


@router.get("/activities", response_model=Page[ActivityOut], tags=["activities"])
async def list_activities(
    request: Request,
    actor: Annotated[Actor, Depends(requires("tickets.read"))],
    deal_id: int | None = None,
    ticket_id: int | None = None,
    customer_id: int | None = None,
    open: Annotated[bool, Query(description="leave out done ones")] = True,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[ActivityOut]:
    """The activities of a deal, ticket or customer, or (none given) my own; soonest due first."""
    return await container(request).activities.list(
        actor,
        deal_id=deal_id,
        ticket_id=ticket_id,
        customer_id=customer_id,
        open_only=open,
        limit=limit,
        cursor=cursor,
    )


@router.patch("/activities/{activity_id}", response_model=ActivityOut, tags=["activities"])
async def update_activity(
    request: Request,
    activity_id: int,
    body: ActivityPatch,
    actor: Annotated[Actor, Depends(requires("tickets.read"))],
) -> ActivityOut:
    """Change the title, note or due time, or mark it done (``{"done": true}``)."""
    return await container(request).activities.update(actor, activity_id, body)


@router.get("/pipelines", response_model=list[PipelineOut], tags=["deals"])
async def list_pipelines(request: Request, actor: Reader) -> list[PipelineOut]:
    """The default pipeline (``id: null``) and the projects' pipelines, with their stages in order."""
    return await container(request).deals.pipelines(actor)


@router.post("/pipelines", response_model=PipelineOut, status_code=201, tags=["deals"])
async def create_pipeline(request: Request, body: PipelineIn, actor: Reader) -> PipelineOut:
    """A pipeline for a project (supervisors): stages with probability and order, won and lost reasons."""
    return await container(request).deals.save_pipeline(actor, body)


@router.put("/pipelines/{pipeline_id}", response_model=PipelineOut, tags=["deals"])
async def replace_pipeline(
    request: Request, pipeline_id: int, body: PipelineIn, actor: Reader
) -> PipelineOut:
    """Replace a pipeline; a stage that deals still stand on cannot be removed (409)."""
    return await container(request).deals.save_pipeline(actor, body, pipeline_id)
