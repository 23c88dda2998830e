"""The ASGI application: REST API under ``/api/v1``, health, metrics and the sign-in pages."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from frontoffice import __version__
from frontoffice.bootstrap import Container
from frontoffice.domain.exceptions import DomainError
from frontoffice.i18n import current_language
from frontoffice.store.idempotency import IdempotentRequests
from frontoffice.store.migrate import is_up_to_date

from . import chat, csat_page, helpdesk_pages, hooks, kb_public_page, planning_page, stream, ui
from .api import (
    accounts,
    acd,
    acd_settings,
    campaigns,
    conversations,
    crm,
    deals,
    desk,
    fallback,
    interactions,
    jobs,
    planning,
    privacy,
    replies,
    stats,
    threads,
    ticket_page,
    tickets,
    voice,
    voice_trunks,
    web_forms,
    webhooks,
)
from .errors import ApiError, install_error_handlers
from .fast_routes import with_fast_routes
from .idempotency import Idempotency, document_header
from .metrics import ContactCenterCollector
from .middleware import BodyLimit, Observe, StrictJson, metrics_registry
from .openapi_errors import document_errors
from .pages import templates
from .security import SESSION_COOKIE, client_ip, current_actor

__all__ = ["ROUTERS", "create_app"]

CSRF_COOKIE = "fo_login_csrf"
# Bytes a multipart upload adds around its file: boundaries and part headers are well under this.
MULTIPART_OVERHEAD = 16 * 1024
API_PREFIX = "/api/v1"
# The application's routers with their path prefixes. A request is matched against the routes in
# this order, so the contact path's routers (contacts in, agents' offers and contacts: several
# requests per contact) come first. No path can match routes of two routers
# (tests/integration/test_api_routes.py), so the order decides only how many patterns a request is
# tried on, never which route answers it.
ROUTERS: tuple[tuple[str, APIRouter], ...] = (
    (API_PREFIX, acd.router),
    (API_PREFIX, desk.router),
    (API_PREFIX, accounts.router),
    (API_PREFIX, crm.router),
    (API_PREFIX, interactions.router),
    (API_PREFIX, stats.router),
    (API_PREFIX, acd_settings.router),
    (API_PREFIX, fallback.router),
    (API_PREFIX, voice.router),
    (API_PREFIX, voice_trunks.router),
    (API_PREFIX, campaigns.router),
    (API_PREFIX, tickets.router),
    (API_PREFIX, ticket_page.router),
    (API_PREFIX, threads.router),
    (API_PREFIX, deals.router),
    (API_PREFIX, planning.router),
    (API_PREFIX, replies.router),
    (API_PREFIX, conversations.router),
    (API_PREFIX, webhooks.router),
    (API_PREFIX, web_forms.router),
    (API_PREFIX, jobs.router),
    (API_PREFIX, privacy.router),
    ("", chat.router),
    ("", planning_page.router),
    ("", helpdesk_pages.router),
    ("", csat_page.router),
    ("", kb_public_page.router),
    ("", hooks.router),
    ("", stream.router),
    ("", ui.router),
)


# FastAPI's own OpenTelemetry hooks (newer releases) ask the OpenTelemetry API on every request
# whether a provider is configured; Frontoffice exports Prometheus metrics (/metrics) and request log
# lines instead, so they are off.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)


def create_app(container: Container, *, fast_routes: bool = True) -> FastAPI:
    """The web application of ``container``. ``fast_routes=False`` leaves the contact path's
    requests to FastAPI alone (the tests compare both answers, web/fast_routes.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        yield
        await container.close()

    app = FastAPI(
        title="Frontoffice",
        version=__version__,
        description="Omnichannel contact center with a built-in CRM. See docs/api.md.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        **_NO_NATIVE_TELEMETRY,
    )
    app.state.container = container
    registry, requests, latency = metrics_registry()
    registry.register(ContactCenterCollector(container))
    install_error_handlers(app)
    for prefix, router in ROUTERS:
        app.include_router(router, prefix=prefix)
    if fast_routes:
        # The contact path's requests, well-formed, skip FastAPI's request machinery (fast_routes.py).
        with_fast_routes(
            app.router.routes,
            [(API_PREFIX + path, API_PREFIX + doc, handler) for path, doc, handler in acd.FAST_ROUTES],
            app.router,
        )
    app.mount("/static", ui.static_files(), name="static")

    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(document_header(plain_openapi()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers. Public."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: the database answers and is migrated (in a cluster: and the node is on the
        bus; the answer names its role). Public."""
        try:
            async with container.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            migrated = await is_up_to_date(container.engine)
        except Exception as exc:  # any database failure means "not ready", with the reason
            return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
        if not migrated:
            return JSONResponse({"status": "unavailable", "database": "not migrated"}, status_code=503)
        cluster = container.cluster
        if cluster is None:
            return JSONResponse({"status": "ok"})
        # A node of a cluster serves once it is on the bus (commands reach the leader through it) and
        # leads or has the leader's engine state (the desk's checks read it).
        body = {
            "node": cluster.node,
            "role": "leader" if cluster.leading else "standby",
            "epoch": cluster.leader_epoch,
            # Whether this (voice) node runs the campaign dialler: it holds the dialler lease.
            "dialler": container.dialler.dialling,
            "bus": "connected" if cluster.bus_connected else "disconnected",
        }
        if not container.started or not cluster.ready:
            return JSONResponse({"status": "unavailable", **body}, status_code=503)
        return JSONResponse({"status": "ok", **body})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not container.settings.metrics_public:
            actor = await current_actor(request)
            actor.require("metrics.read")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request, error: str | None = None) -> Response:
        token = secrets.token_urlsafe(24)
        response = templates.TemplateResponse(
            request, "login.html", {"csrf_token": token, "error": error, "lang": current_language.get()}
        )
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", max_age=3600, path="/login")
        return response

    @app.post("/login", include_in_schema=False)
    async def login_form(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=200)],
        csrf_token: Annotated[str, Form(max_length=100)],
    ) -> Response:
        # Double-submit check: the form field must match the cookie set with the form.
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(expected, csrf_token):
            raise ApiError(403, "csrf-failed", "Missing or wrong CSRF token")
        try:
            result = await container.auth.sign_in(username, password, ip=client_ip(request))
        except DomainError as exc:
            return RedirectResponse(f"/login?error={exc.error_id}", status_code=303)
        response = RedirectResponse("/", status_code=303)
        accounts.set_session_cookie(request, response, result.session_id)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> Response:
        if not request.cookies.get(SESSION_COOKIE):
            return RedirectResponse("/login", status_code=303)
        try:
            actor = await current_actor(request)
        except DomainError:
            return RedirectResponse("/login", status_code=303)
        # A small landing page (who is signed in, links) that forwards to the role's own page.
        return templates.TemplateResponse(
            request,
            "home.html",
            {"actor": actor, "version": __version__, "home_page": ui.home_page(actor)},
        )

    @app.get("/lang/{code}", include_in_schema=False)
    async def set_language(code: str, request: Request, next: str = "/") -> Response:
        if code not in ("en", "ru"):
            raise ApiError(404, "no-such-language", "Unknown language", language=code)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        session = await ui.page_session(request)
        if session is not None:
            # Signed in: keep the choice in the profile too, so it follows the user to other browsers.
            await container.auth.set_own_language(session[0], code)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie("fo_lang", code, max_age=365 * 86400, samesite="lax", path="/")
        return response

    # Innermost: runs with the language set and the body limited; replays answers by Idempotency-Key.
    app.add_middleware(
        Idempotency,
        store=IdempotentRequests(container.sessions, clock=container.auth.clock),
        secret=container.settings.ensure_secret_key(),
    )
    # Outside the replay of answers: a body refused for NaN, Infinity or NUL is never stored.
    app.add_middleware(StrictJson)
    # Added last = outermost: Observe sees every request, including ones BodyLimit rejects.
    app.add_middleware(
        BodyLimit,
        max_bytes=container.settings.max_body_bytes,
        # A reply's file: its own limit plus the multipart envelope (boundaries, part headers).
        larger={
            "/api/v1/attachments": container.settings.attachment_max_bytes + MULTIPART_OVERHEAD,
            # A CSV import: its own limit, sized for csv_max_rows rows (saved to a file, run as a job).
            "/api/v1/customers/import": container.settings.csv_max_bytes + MULTIPART_OVERHEAD,
        },
    )
    app.add_middleware(
        Observe, requests=requests, latency=latency, default_language=container.settings.default_language
    )
    return app
