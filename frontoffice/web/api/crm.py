"""Customers, companies, notes, identities lookup, merge, duplicates, CSV import/export."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from frontoffice.domain.model import IdentityKind
from frontoffice.services.context import Actor
from frontoffice.services.crm_csv import ImportMode, OnErrors, export_customers_csv
from frontoffice.services.jobs import JobOut
from frontoffice.services.privacy import ErasureOut
from frontoffice.services.schemas import (
    CompanyIn,
    CompanyOut,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    DuplicateSuggestion,
    IdentityIn,
    MergeIn,
    NoteIn,
    NoteOut,
    Page,
    TimelineItem,
)

from ..errors import ApiError
from ..security import container, requires
from .feeds import add_change_feed

router = APIRouter(tags=["customers"])
# Before the /{id} routes: see web/api/feeds.py.
add_change_feed(router, "customers")
add_change_feed(router, "companies")

Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/customers", response_model=Page[CustomerOut])
async def search_customers(
    request: Request,
    actor: Annotated[Actor, Depends(requires("customers.read"))],
    q: Annotated[str, Query(max_length=200, description="Name, company, phone fragment or email")] = "",
    tag: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> Page[CustomerOut]:
    return await container(request).crm.search(actor, q, limit=limit, cursor=cursor, tag=tag)


@router.post("/customers", response_model=CustomerOut, status_code=201)
async def create_customer(
    request: Request, body: CustomerIn, actor: Annotated[Actor, Depends(requires("customers.write"))]
) -> CustomerOut:
    return await container(request).crm.create_customer(actor, body)


@router.get("/customers/lookup", response_model=CustomerOut)
async def lookup_customer(
    request: Request,
    actor: Annotated[Actor, Depends(requires("customers.read"))],
    kind: IdentityKind,
    value: Annotated[str, Query(min_length=1, max_length=320)],
) -> CustomerOut:
    card = await container(request).crm.find_by_identity(actor, kind, value)
    if card is None:
        raise ApiError(404, "no-such-customer", "No customer has this identity", kind=kind.value)
    return card


@router.get("/customers/duplicates", response_model=list[DuplicateSuggestion])
async def duplicate_customers(
    request: Request, actor: Annotated[Actor, Depends(requires("customers.read"))], limit: Limit = 100
) -> list[DuplicateSuggestion]:
    return await container(request).crm.duplicates(actor, limit=limit)


@router.post("/customers/merge", response_model=CustomerOut)
async def merge_customers(
    request: Request, body: MergeIn, actor: Annotated[Actor, Depends(requires("customers.merge"))]
) -> CustomerOut:
    return await container(request).crm.merge(actor, body.keep_id, body.merge_id)


class ImportModeParam(StrEnum):
    """``create``, ``update`` or ``upsert``; ``all_or_nothing`` and ``valid_rows`` (the error
    handling, now ``on_errors``) are still accepted here and mean ``create`` with that handling."""

    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


def accepted(response: Response, job: JobOut) -> JobOut:
    """A job's ``202 Accepted``: ``Location`` is where its state is read."""
    response.status_code = 202
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return job


@router.post(
    "/customers/import",
    response_model=JobOut,
    status_code=202,
    responses={202: {"description": "The import job; follow Location for its progress and report"}},
)
async def import_customers(
    request: Request,
    response: Response,
    file: UploadFile,
    actor: Annotated[Actor, Depends(requires("customers.import"))],
    dry_run: bool = True,
    mode: ImportModeParam = ImportModeParam.CREATE,
    on_errors: OnErrors | None = None,
    project_id: Annotated[
        int | None,
        Query(description="the client project the customers are imported for (its team sees them)"),
    ] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    """Upload a CSV as multipart field ``file``; the import runs as a job (``202``, ``Location``:
    ``/api/v1/jobs/{id}``, whose ``result`` is the report). ``dry_run=true`` (the default) only
    validates. See docs/integrations.md, "CSV import and export"."""
    if mode in (ImportModeParam.ALL_OR_NOTHING, ImportModeParam.VALID_ROWS):
        on_errors, import_mode = OnErrors(mode.value), ImportMode.CREATE
    else:
        import_mode = ImportMode(mode.value)
    job = await container(request).customer_csv.start_import(
        actor,
        file.file,
        dry_run=dry_run,
        mode=import_mode,
        on_errors=on_errors or OnErrors.ALL_OR_NOTHING,
        project_id=project_id,
        idempotency_key=idempotency_key,
    )
    return accepted(response, job)


@router.post("/customers/export", response_model=JobOut, status_code=202)
async def start_customer_export(
    request: Request,
    response: Response,
    actor: Annotated[Actor, Depends(requires("customers.export"))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    """Export every customer you may see to a CSV file, as a job: download it from the job's
    ``result_url`` when it has succeeded."""
    return accepted(response, await container(request).customer_csv.start_export(actor, idempotency_key))


@router.get(
    "/customers/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The customers as CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def export_customers(
    request: Request, actor: Annotated[Actor, Depends(requires("customers.export"))]
) -> StreamingResponse:
    """Stream the same CSV as the export job, read in batches (for small bases and scripts)."""
    stream = export_customers_csv(container(request).crm, actor)
    return StreamingResponse(
        stream,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@router.get("/customers/{customer_id}", response_model=CustomerOut)
async def get_customer(
    request: Request, customer_id: int, actor: Annotated[Actor, Depends(requires("customers.read"))]
) -> CustomerOut:
    return await container(request).crm.get_customer(actor, customer_id)


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
async def update_customer(
    request: Request,
    customer_id: int,
    body: CustomerPatch,
    actor: Annotated[Actor, Depends(requires("customers.write"))],
) -> CustomerOut:
    return await container(request).crm.update_customer(actor, customer_id, body)


@router.delete("/customers/{customer_id}", status_code=204)
async def delete_customer(
    request: Request, customer_id: int, actor: Annotated[Actor, Depends(requires("customers.delete"))]
) -> Response:
    """Delete the card, its identities, notes, tags and custom fields; its contacts, tickets and
    deals stay with no customer."""
    await container(request).crm.delete_customer(actor, customer_id)
    return Response(status_code=204)


@router.post("/customers/{customer_id}/identities", response_model=CustomerOut, status_code=201)
async def add_identity(
    request: Request,
    customer_id: int,
    body: IdentityIn,
    actor: Annotated[Actor, Depends(requires("customers.write"))],
) -> CustomerOut:
    return await container(request).crm.add_identity(actor, customer_id, body)


@router.delete("/customers/{customer_id}/identities/{identity_id}", response_model=CustomerOut)
async def remove_identity(
    request: Request,
    customer_id: int,
    identity_id: int,
    actor: Annotated[Actor, Depends(requires("customers.write"))],
) -> CustomerOut:
    return await container(request).crm.remove_identity(actor, customer_id, identity_id)


@router.post("/customers/{customer_id}/notes", response_model=NoteOut, status_code=201)
async def add_note(
    request: Request,
    customer_id: int,
    body: NoteIn,
    actor: Annotated[Actor, Depends(requires("customers.write"))],
) -> NoteOut:
    return await container(request).crm.add_note(actor, customer_id, body.body)


@router.post("/customers/{customer_id}/personal-data", response_model=JobOut, status_code=202)
async def export_personal_data(
    request: Request,
    response: Response,
    customer_id: int,
    actor: Annotated[Actor, Depends(requires("customers.export"))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    """Export everything stored about the customer (a ZIP: JSON, recordings, attachments) as a job;
    audited. See docs/privacy.md."""
    job = await container(request).privacy.start_export(actor, customer_id, idempotency_key)
    return accepted(response, job)


@router.post("/customers/{customer_id}/erase", response_model=ErasureOut)
async def erase_customer(
    request: Request, customer_id: int, actor: Annotated[Actor, Depends(requires("customers.delete"))]
) -> ErasureOut:
    """Erase the customer: card, identities, notes, recordings, message content and attachments go;
    contacts keep their times, queue and agent for the statistics. Audited. See docs/privacy.md."""
    return await container(request).privacy.erase(actor, customer_id)


@router.get("/customers/{customer_id}/timeline", response_model=Page[TimelineItem])
async def customer_timeline(
    request: Request,
    customer_id: int,
    actor: Annotated[Actor, Depends(requires("customers.read"))],
    limit: Limit = 50,
    cursor: str | None = None,
) -> Page[TimelineItem]:
    return await container(request).crm.timeline(actor, customer_id, limit=limit, cursor=cursor)


@router.get("/companies", response_model=Page[CompanyOut], tags=["companies"])
async def list_companies(
    request: Request,
    actor: Annotated[Actor, Depends(requires("companies.read"))],
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Limit = 50,
    cursor: str | None = None,
) -> Page[CompanyOut]:
    return await container(request).crm.list_companies(actor, q, limit=limit, cursor=cursor)


@router.post("/companies", response_model=CompanyOut, status_code=201, tags=["companies"])
async def create_company(
    request: Request, body: CompanyIn, actor: Annotated[Actor, Depends(requires("companies.write"))]
) -> CompanyOut:
    return await container(request).crm.create_company(actor, body)


@router.get("/companies/{company_id}", response_model=CompanyOut, tags=["companies"])
async def get_company(
    request: Request, company_id: int, actor: Annotated[Actor, Depends(requires("companies.read"))]
) -> CompanyOut:
    return await container(request).crm.get_company(actor, company_id)
