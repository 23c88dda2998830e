"""Background jobs (imports, exports, personal data exports): their state, progress and result file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from frontoffice.services.context import Actor
from frontoffice.services.jobs import JobOut
from frontoffice.services.schemas import Page

from ..security import container, requires

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=Page[JobOut])
async def list_jobs(
    request: Request,
    actor: Annotated[Actor, Depends(requires("self.read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[JobOut]:
    """Your jobs, newest first (an administrator's list has everyone's)."""
    return await container(request).jobs.list_jobs(actor, limit=limit, cursor=cursor)


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"description": "No such job"}})
async def get_job(
    request: Request, job_id: int, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> JobOut:
    """A job's state (queued, running, succeeded, failed), progress of total, result or error."""
    return await container(request).jobs.get(actor, job_id)


@router.get(
    "/jobs/{job_id}/result",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/zip": {}}, "description": "The job's file"},
        404: {"description": "No such job, or it has no file (yet)"},
    },
)
async def job_result(
    request: Request, job_id: int, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> FileResponse:
    """Download the file a finished job made (an export's CSV, a personal data ZIP)."""
    path, name, media_type = await container(request).jobs.result_file(actor, job_id)
    return FileResponse(path, media_type=media_type, filename=name)
