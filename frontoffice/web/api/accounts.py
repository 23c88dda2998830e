"""Sign-in, the current user, users, API tokens, projects and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from frontoffice.services.context import Actor
from frontoffice.services.schemas import (
    AuditOut,
    Input,
    Page,
    PasswordChange,
    PasswordReset,
    ProjectIn,
    ProjectOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
    UserProjectsIn,
    UserProjectsOut,
)
from frontoffice.services.ticket_conversation import MAX_MENTIONABLE, MENTIONABLE_DEFAULT, MentionableUserOut

from ..security import (
    SESSION_COOKIE,
    client_ip,
    container,
    current_actor,
    requires,
    session_id_from_cookie,
    session_serializer,
)

router = APIRouter()


class LoginIn(Input):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class LoginOut(Input):
    user: UserOut
    csrf_token: str


@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
async def login(request: Request, response: Response, body: LoginIn) -> LoginOut:
    """Sign in a browser: sets an HttpOnly session cookie and returns the CSRF token for later writes."""
    c = container(request)
    result = await c.auth.sign_in(body.username, body.password, ip=client_ip(request))
    set_session_cookie(request, response, result.session_id)
    return LoginOut(user=result.user, csrf_token=result.csrf_token)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    c = container(request)
    response.set_cookie(
        SESSION_COOKIE,
        session_serializer(c.settings.ensure_secret_key()).dumps(session_id),
        max_age=c.settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=c.settings.secure_cookies,
        path="/",
    )


@router.post("/auth/logout", status_code=204, tags=["auth"])
async def logout(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    c = container(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    session_id = session_id_from_cookie(c, cookie) if cookie else None
    if session_id is not None:
        await c.auth.sign_out(session_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserOut, tags=["auth"])
async def me(request: Request, actor: Annotated[Actor, Depends(requires("self.read"))]) -> UserOut:
    assert actor.user_id is not None
    return await container(request).auth.get_user(actor, actor.user_id)


@router.post("/me/password", status_code=204, tags=["auth"])
async def change_my_password(
    request: Request, body: PasswordChange, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> Response:
    await container(request).auth.set_password(
        actor, actor.username, body.new_password, current_password=body.current_password
    )
    return Response(status_code=204)


@router.get("/me/tokens", response_model=list[TokenOut], tags=["tokens"])
async def my_tokens(
    request: Request, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> list[TokenOut]:
    return await container(request).auth.list_tokens(actor)


@router.post("/me/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"])
async def create_my_token(
    request: Request, body: TokenIn, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> TokenCreated:
    """Create an API token for yourself. The ``token`` field is shown once; store it now.

    ``scopes`` narrow the token below your role (default ``["admin"]``: your full rights),
    ``expires_at`` ends it, ``project_ids`` limit it to some of your projects."""
    return await container(request).auth.create_token(actor, body)


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
async def all_tokens(
    request: Request, actor: Annotated[Actor, Depends(requires("tokens.write"))]
) -> list[TokenOut]:
    """Every user's tokens, newest first, with scopes, expiry and last use (never the secret)."""
    return await container(request).auth.all_tokens(actor)


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
async def revoke_token(
    request: Request, token_id: int, actor: Annotated[Actor, Depends(requires("self.read"))]
) -> Response:
    await container(request).auth.revoke_token(actor, token_id)
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], tags=["users"])
async def list_users(
    request: Request, actor: Annotated[Actor, Depends(requires("users.read"))]
) -> list[UserOut]:
    return await container(request).auth.list_users(actor)


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
async def create_user(
    request: Request, body: UserIn, actor: Annotated[Actor, Depends(requires("users.write"))]
) -> UserOut:
    return await container(request).auth.create_user(actor, body)


# Declared before /users/{user_id}, which would take "mentionable" for an id.
@router.get("/users/mentionable", response_model=list[MentionableUserOut], tags=["users"])
async def mentionable_users(
    request: Request,
    actor: Annotated[Actor, Depends(requires("tickets.write"))],
    q: Annotated[str, Query(max_length=200, description="what was typed after @")] = "",
    ticket_id: Annotated[
        int | None, Query(ge=1, lt=2**63, description="only colleagues who may see this ticket")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_MENTIONABLE)] = MENTIONABLE_DEFAULT,
) -> list[MentionableUserOut]:
    """The colleagues a note may @mention whose username or display name (or a word of it) starts
    with ``q``, in any case: active users, not me; of a user limited to projects only those who work
    in one of them; with ``ticket_id`` only those who may see that ticket. Only the id, username and
    display name: what the note box's picker shows (docs/helpdesk.md)."""
    return await container(request).conversation.mentionable(actor, q, ticket_id=ticket_id, limit=limit)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
async def get_user(
    request: Request, user_id: int, actor: Annotated[Actor, Depends(requires("users.read"))]
) -> UserOut:
    return await container(request).auth.get_user(actor, user_id)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(
    request: Request, user_id: int, body: UserPatch, actor: Annotated[Actor, Depends(requires("users.write"))]
) -> UserOut:
    return await container(request).auth.update_user(actor, user_id, body)


@router.post("/users/{user_id}/password", status_code=204, tags=["users"])
async def reset_password(
    request: Request,
    user_id: int,
    body: PasswordReset,
    actor: Annotated[Actor, Depends(requires("users.write"))],
) -> Response:
    """Set another user's password (administrators); that user's browser sessions end. Audited."""
    await container(request).auth.reset_password(actor, user_id, body.new_password)
    return Response(status_code=204)


@router.get("/users/{user_id}/projects", response_model=UserProjectsOut, tags=["users"])
async def get_user_projects(
    request: Request, user_id: int, actor: Annotated[Actor, Depends(requires("users.read"))]
) -> UserProjectsOut:
    """The projects the user is limited to; ``null``: all projects."""
    return await container(request).auth.user_projects(actor, user_id)


@router.put("/users/{user_id}/projects", response_model=UserProjectsOut, tags=["users"])
async def set_user_projects(
    request: Request,
    user_id: int,
    body: UserProjectsIn,
    actor: Annotated[Actor, Depends(requires("users.write"))],
) -> UserProjectsOut:
    """Limit a user (agent or supervisor) to some projects, or lift the limit with ``null``. The live
    stream, the wallboard and waiting lists then show only those projects' queues and contacts."""
    return await container(request).auth.set_user_projects(actor, user_id, body)


@router.post("/users/{user_id}/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"])
async def create_user_token(
    request: Request, user_id: int, body: TokenIn, actor: Annotated[Actor, Depends(requires("tokens.write"))]
) -> TokenCreated:
    """Create a token for another user (an integration's service account); shown once."""
    return await container(request).auth.create_token(actor, body, user_id=user_id)


@router.get("/projects", response_model=list[ProjectOut], tags=["projects"])
async def list_projects(
    request: Request, actor: Annotated[Actor, Depends(requires("projects.read"))]
) -> list[ProjectOut]:
    return await container(request).interactions.list_projects(actor)


@router.post("/projects", response_model=ProjectOut, status_code=201, tags=["projects"])
async def create_project(
    request: Request, body: ProjectIn, actor: Annotated[Actor, Depends(requires("projects.write"))]
) -> ProjectOut:
    return await container(request).interactions.create_project(actor, body)


@router.get("/audit", response_model=Page[AuditOut], tags=["audit"])
async def audit_log(
    request: Request,
    actor: Annotated[Actor, Depends(requires("audit.read"))],
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[AuditOut]:
    return await container(request).auth.audit_log(actor, limit=limit, cursor=cursor, action=action)
