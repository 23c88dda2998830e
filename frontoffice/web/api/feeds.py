"""The change feeds' routes (``GET /{resource}/changes``), one per resource.

Each is added to the router that serves the resource's ``/{resource}/{id}`` routes, before them, so
``/customers/changes`` is never taken for a customer id (and no two routers answer one path:
tests/integration/test_api_routes.py)."""

# No ``from __future__ import annotations``: the route is defined in a function, and FastAPI reads
# its annotations (``requires(f"{resource}.read")`` names a local) as objects, not strings.
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from frontoffice.services.change_feeds import Resource
from frontoffice.services.context import Actor
from frontoffice.services.schemas import ChangePage

from ..security import container, requires

__all__ = ["add_change_feed"]


def add_change_feed(router: APIRouter, resource: Resource) -> None:
    """Add ``GET /{resource}/changes`` to ``router``: needs the resource's read permission (and, for
    a token, a scope that grants it: ``crm:read`` or ``tickets:read``)."""

    @router.get(
        f"/{resource}/changes",
        response_model=ChangePage,
        tags=["change feeds"],
        name=f"{resource}_changes",
        summary=f"Changed {resource} (sync)",
        responses={
            410: {
                "description": "cursor-expired: the cursor is older than the deletions kept "
                "(change_feed_retention_days); read everything again without a cursor",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        },
    )
    async def changes(
        request: Request,
        actor: Annotated[Actor, Depends(requires(f"{resource}.read"))],
        cursor: Annotated[
            str | None, Query(max_length=200, description="next_cursor of the last page")
        ] = None,
        updated_since: Annotated[
            datetime | None, Query(description="start at this time (ISO 8601 with a zone) instead")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> ChangePage:
        """Records changed after the cursor (or since ``updated_since``), oldest first by
        ``(updated_at, id)``; deleted ones as tombstones (``deleted: true``). At least once: apply by
        id. See docs/integrations.md, "Change feeds"."""
        return await container(request).change_feeds.changes(
            actor, resource, cursor=cursor, updated_since=updated_since, limit=limit
        )
