"""The ACD over HTTP: contacts in (web forms, integrations), agent actions, supervision, configuration."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ValidationError

from frontoffice.bootstrap import Container
from frontoffice.i18n import current_language
from frontoffice.services.acd_schemas import (
    AgentLive,
    AgentProfileIn,
    AgentProfileOut,
    CodeIn,
    CodeOut,
    CompleteIn,
    ContactIn,
    EntryPointIn,
    EntryPointOut,
    LoginIn,
    PriorityIn,
    QueueIn,
    QueueOut,
    QueuePatch,
    StateIn,
    TransferIn,
    Wallboard,
)
from frontoffice.services.context import Actor
from frontoffice.services.fallback import ContactAnswer
from frontoffice.services.schemas import InteractionOut

from ..fast_routes import Declined, Handler, json_body
from ..idempotency import checked_key
from ..security import allowed, container, requires

router = APIRouter()
M = TypeVar("M", bound=BaseModel)


async def _contact_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1 to 200 characters, the client's own: a repeat by the same user returns "
            "the first contact (docs/api.md); empty or longer is 400 invalid-idempotency-key",
        ),
    ] = None,
) -> str | None:
    return None if key is None else checked_key(key)


IdempotencyKey = Annotated[str | None, Depends(_contact_key)]
Agent = Annotated[Actor, Depends(requires("interactions.write"))]
Supervisor = Annotated[Actor, Depends(requires("agents.supervise"))]
# Taking in a contact is its own permission, so a website's token (scope contacts:create) can do
# only that.
ContactCreator = Annotated[Actor, Depends(requires("contacts.create"))]


def _answer(model: BaseModel, status_code: int) -> Response:
    """The answer of a handler that built its route's response model itself, serialised by the model
    (FastAPI would validate it again against the route's ``response_model`` and then encode it; the
    model stays in the decorator for the OpenAPI schema). Used on the contact path's requests."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


@router.post("/interactions", response_model=ContactAnswer, status_code=201, tags=["contacts"])
async def create_contact(
    request: Request,
    body: ContactIn,
    actor: ContactCreator,
    idempotency_key: IdempotencyKey,
) -> Response:
    """A new inbound contact from a web form or an external system; routed by the entry point's rules.

    ``outcome`` says whether it waits for an agent (``queued``) or was turned away (``fallback``, with
    what the queue's fallback action did in ``fallback``: a ticket, a callback, a message; ``refused``).

    Send an ``Idempotency-Key`` header so that retrying after a timeout cannot create a second contact:
    a repeat returns the first interaction with ``created: false`` (status 200).
    """
    c = container(request)
    result = await c.intake.create_contact(actor, body, idempotency_key)
    return _answer(await c.fallback.answer(result), 201 if result.created else 200)


@router.post("/interactions/{interaction_id}/abandon", status_code=204, tags=["contacts"])
async def abandon(request: Request, interaction_id: int, actor: Agent) -> Response:
    """The customer left while waiting (closed the form session, hung up)."""
    await container(request).desk.withdraw(actor, interaction_id)
    return Response(status_code=204)


@router.post("/interactions/{interaction_id}/callback", status_code=204, tags=["contacts"])
async def request_callback(request: Request, interaction_id: int, actor: Agent) -> Response:
    """Turn a waiting contact into a callback that keeps its place in line."""
    await container(request).desk.request_callback(actor, interaction_id)
    return Response(status_code=204)


@router.post("/agent/login", status_code=204, tags=["agent"])
async def agent_login(request: Request, body: LoginIn, actor: Agent) -> Response:
    """Sign in to the ACD (``queues``: a subset of the agent's queues; default all); when signed in
    already, change the state and the queues."""
    await container(request).desk.agent_login(actor, body.state, body.reason, body.queues)
    return Response(status_code=204)


@router.post("/agent/state", status_code=204, tags=["agent"])
async def agent_state(request: Request, body: StateIn, actor: Agent) -> Response:
    await container(request).desk.set_state(actor, body.state, body.reason)
    return Response(status_code=204)


@router.get("/agent/status", response_model=AgentLive, tags=["agent"])
async def agent_status(request: Request, actor: Agent) -> AgentLive:
    return await container(request).desk.my_status(actor)


@router.post("/agent/offers/{interaction_id}/accept", status_code=204, tags=["agent"])
async def accept_offer(request: Request, interaction_id: int, actor: Agent) -> Response:
    await container(request).desk.accept(actor, interaction_id)
    return Response(status_code=204)


@router.post("/agent/offers/{interaction_id}/reject", status_code=204, tags=["agent"])
async def reject_offer(request: Request, interaction_id: int, actor: Agent) -> Response:
    await container(request).desk.reject(actor, interaction_id)
    return Response(status_code=204)


@router.post("/agent/contacts/{interaction_id}/end", status_code=204, tags=["agent"])
async def end_contact(request: Request, interaction_id: int, actor: Agent) -> Response:
    """The conversation is over; wrap-up starts."""
    await container(request).desk.end_contact(actor, interaction_id)
    return Response(status_code=204)


@router.post("/agent/contacts/{interaction_id}/complete", response_model=InteractionOut, tags=["agent"])
async def complete_contact(request: Request, interaction_id: int, body: CompleteIn, actor: Agent) -> Response:
    """Disposition and notes; ends the contact and the wrap-up."""
    return _answer(await container(request).desk.complete(actor, interaction_id, body), 200)


@router.post("/agent/contacts/{interaction_id}/transfer", status_code=204, tags=["agent"])
async def transfer_contact(request: Request, interaction_id: int, body: TransferIn, actor: Agent) -> Response:
    await container(request).desk.transfer(
        actor, interaction_id, queue_id=body.queue_id, agent_id=body.agent_id
    )
    return Response(status_code=204)


@router.get("/wallboard", response_model=Wallboard, tags=["supervisor"])
async def wallboard(request: Request, actor: Supervisor) -> Wallboard:
    c = container(request)
    return await c.wallboard.wallboard(actor, c.stats.live())


@router.post("/agents/{agent_id}/state", status_code=204, tags=["supervisor"])
async def supervise_state(request: Request, agent_id: int, body: StateIn, actor: Supervisor) -> Response:
    await container(request).desk.set_state(actor, body.state, body.reason, agent_id=agent_id)
    return Response(status_code=204)


@router.post("/interactions/{interaction_id}/move", status_code=204, tags=["supervisor"])
async def move_contact(
    request: Request, interaction_id: int, body: TransferIn, actor: Supervisor
) -> Response:
    await container(request).desk.transfer(
        actor, interaction_id, queue_id=body.queue_id, agent_id=body.agent_id
    )
    return Response(status_code=204)


@router.post("/interactions/{interaction_id}/priority", status_code=204, tags=["supervisor"])
async def set_priority(
    request: Request, interaction_id: int, body: PriorityIn, actor: Supervisor
) -> Response:
    await container(request).desk.set_priority(actor, interaction_id, body.priority)
    return Response(status_code=204)


@router.get("/queues", response_model=list[QueueOut], tags=["routing"])
async def list_queues(
    request: Request, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> list[QueueOut]:
    queues = await container(request).routing_admin.list_queues(actor)
    names = {q.id: q.name for q in queues}
    return [q.with_queue_names(names) for q in queues]


@router.post("/queues", response_model=QueueOut, status_code=201, tags=["routing"])
async def create_queue(
    request: Request, body: QueueIn, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> QueueOut:
    c = container(request)
    result = await c.routing_admin.create_queue(actor, body)
    c.calendars.changed()
    return await _with_queue_names(c, actor, result)


@router.get("/queues/{queue_id}", response_model=QueueOut, tags=["routing"])
async def get_queue(
    request: Request, queue_id: int, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> QueueOut:
    c = container(request)
    return await _with_queue_names(c, actor, await c.routing_admin.get_queue(actor, queue_id))


@router.patch("/queues/{queue_id}", response_model=QueueOut, tags=["routing"])
async def update_queue(
    request: Request,
    queue_id: int,
    body: QueuePatch,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> QueueOut:
    """Changes apply live: agents stay signed in, waiting contacts keep their order."""
    c = container(request)
    result = await c.routing_admin.update_queue(actor, queue_id, body)
    c.calendars.changed()
    return await _with_queue_names(c, actor, result)


async def _with_queue_names(c: Container, actor: Actor, queue: QueueOut) -> QueueOut:
    """The queue with the names of the queues its settings name. A read after the change: the
    routing administration builds ``QueueOut`` from the queue row alone."""
    if not queue.referenced_queue_ids():
        return queue
    names = {q.id: q.name for q in await c.routing_admin.list_queues(actor)}
    return queue.with_queue_names(names)


@router.get("/agents", response_model=list[AgentProfileOut], tags=["routing"])
async def list_agents(
    request: Request, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> list[AgentProfileOut]:
    return await container(request).routing_admin.list_agents(actor)


@router.get("/agents/{user_id}", response_model=AgentProfileOut, tags=["routing"])
async def get_agent(
    request: Request, user_id: int, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> AgentProfileOut:
    return await container(request).routing_admin.get_agent_profile(actor, user_id)


@router.put("/agents/{user_id}", response_model=AgentProfileOut, tags=["routing"])
async def set_agent(
    request: Request,
    user_id: int,
    body: AgentProfileIn,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> AgentProfileOut:
    """Skills, queue memberships with tiers, channel capacity. Applies live."""
    return await container(request).routing_admin.set_agent_profile(actor, user_id, body)


@router.get("/entry-points", response_model=list[EntryPointOut], tags=["routing"])
async def list_entry_points(
    request: Request, actor: Annotated[Actor, Depends(requires("routing.read"))]
) -> list[EntryPointOut]:
    return await container(request).routing_admin.list_entry_points(actor)


@router.post("/entry-points", response_model=EntryPointOut, status_code=201, tags=["routing"])
async def create_entry_point(
    request: Request, body: EntryPointIn, actor: Annotated[Actor, Depends(requires("routing.write"))]
) -> EntryPointOut:
    """Rules are parsed and validated when saved; a syntax error names the rule and the column."""
    return await container(request).routing_admin.create_entry_point(actor, body)


@router.put("/entry-points/{entry_id}", response_model=EntryPointOut, tags=["routing"])
async def update_entry_point(
    request: Request,
    entry_id: int,
    body: EntryPointIn,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> EntryPointOut:
    return await container(request).routing_admin.update_entry_point(actor, entry_id, body)


@router.post("/entry-points/{entry_id}/test", tags=["routing"])
async def test_entry_point(
    request: Request,
    entry_id: int,
    body: ContactIn,
    actor: Annotated[Actor, Depends(requires("routing.read"))],
) -> dict[str, object]:
    """Which queue a sample contact would reach; nothing is stored."""
    return await container(request).routing_admin.test_route(actor, entry_id, body)


CodeKind = Literal["dispositions", "not-ready-reasons"]


@router.get("/codes/{kind}", response_model=list[CodeOut], tags=["routing"])
async def list_codes(
    request: Request, kind: CodeKind, actor: Annotated[Actor, Depends(requires("interactions.read"))]
) -> list[CodeOut]:
    codes = await container(request).routing_admin.list_codes(actor, _kind(kind))
    return [code.in_language(current_language.get()) for code in codes]


@router.put("/codes/{kind}", response_model=CodeOut, tags=["routing"])
async def set_code(
    request: Request,
    kind: CodeKind,
    body: CodeIn,
    actor: Annotated[Actor, Depends(requires("routing.write"))],
) -> CodeOut:
    code = await container(request).routing_admin.set_code(actor, _kind(kind), body)
    return code.in_language(current_language.get())


def _kind(kind: str) -> str:
    return "dispositions" if kind == "dispositions" else "not_ready_reasons"


# ---------------------------------------------------------------- the contact path's fast routes
# Well-formed requests of the three requests of every contact, answered by the endpoints above
# without FastAPI's request machinery (web/fast_routes.py); anything else goes to the routes above.
def _valid(model: type[M], request: Request, body: bytes) -> M:
    """The body as FastAPI validates a body model (from the parsed JSON, Python mode)."""
    try:
        return model.model_validate(json_body(request, body), from_attributes=True)
    except ValidationError:
        raise Declined from None


async def _fast_create_contact(request: Request) -> Response:
    body = _valid(ContactIn, request, await request.body())
    actor = await allowed(request, "contacts.create")
    key = request.headers.get("idempotency-key")
    return await create_contact(request, body, actor, None if key is None else checked_key(key))


async def _fast_accept_offer(request: Request) -> Response:
    actor = await allowed(request, "interactions.write")
    return await accept_offer(request, request.path_params["interaction_id"], actor)


async def _fast_complete_contact(request: Request) -> Response:
    body = _valid(CompleteIn, request, await request.body())
    actor = await allowed(request, "interactions.write")
    return await complete_contact(request, request.path_params["interaction_id"], body, actor)


# (path pattern, the documented route's path, handler), under the API prefix.
FAST_ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("/interactions", "/interactions", _fast_create_contact),
    (
        "/agent/offers/{interaction_id:int}/accept",
        "/agent/offers/{interaction_id}/accept",
        _fast_accept_offer,
    ),
    (
        "/agent/contacts/{interaction_id:int}/complete",
        "/agent/contacts/{interaction_id}/complete",
        _fast_complete_contact,
    ),
)
