"""Outgoing webhooks: subscriptions, their deliveries through the outbox, signing, the delivery log,
disabling and replay (``docs/webhooks.md``).

How an event travels:

1. **Queued with the change, in its transaction.** A change already writes a log row in the
   transaction that makes it (the interaction event log, the audit log: ``store/append_log.py``).
   :class:`WebhookRecorder` is a ``before_commit`` hook of the session class: it maps the
   transaction's log rows to webhook events (the pure :mod:`frontoffice.domain.webhooks`), matches
   them with the enabled subscriptions (event type, project) and inserts one ``outbox`` row per
   (event, subscription) — channel ``webhook``, subject key ``webhook:<subscription>:<object>``. The
   change and its webhooks commit together or not at all, so a ``kill -9`` after the commit loses
   nothing: the rows are in the database and the worker delivers them after the restart. (A
   subscriber of the commit outlet would run *after* the commit: a crash between the two would lose
   the events of that transaction.)
2. **Delivered by the outbox worker** (``services/outbox_delivery.py``) with :class:`WebhookSender`:
   at least once, in order per subject (one object's events to one subscription), retried with
   exponential back-off for 24 hours. Each attempt is signed per Standard Webhooks and written to the
   delivery log (``webhook_attempts``: request and response, bodies cut to :data:`LOG_BODY_CHARS`).
3. **Disabled after persistent failure**: when a delivery is given up after 24 hours and the
   subscription had no successful attempt in those 24 hours (or at once when the receiver answers
   ``410 Gone``), the subscription is disabled, the change is audited and administrators get a live
   notice (``webhook_disabled``). Its remaining deliveries fail with "subscription disabled"; after
   re-enabling, ``replay`` sends them again.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx
from sqlalchemy import Table, and_, delete, event, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from frontoffice import __version__
from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain import webhooks as wh
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.i18n import gettext
from frontoffice.store.append_log import transaction_rows
from frontoffice.store.tables import (
    AuditEntry,
    Customer,
    CustomerProject,
    Deal,
    Interaction,
    InteractionEvent,
    OutboxItem,
    Project,
    Ticket,
    WebhookAttempt,
    WebhookSubscription,
)

from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .egress import AddressRefused, EgressPolicy, GuardedTransport, refused_reason, url_refused
from .notices import queue_admin_notice
from .outbox import OutboxState, enqueue, enqueue_rows
from .outbox_delivery import GIVE_UP_AFTER, Delivery, GivenUp, PermanentFailure, TemporaryFailure
from .schemas import N_, Page
from .webhook_schemas import (
    EventTypeOut,
    ReplayOut,
    RotateSecretIn,
    WebhookAttemptOut,
    WebhookCreated,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
    WebhookSecretOut,
)

__all__ = [
    "CHANNEL",
    "LOG_BODY_CHARS",
    "SUBSCRIPTIONS_TTL_S",
    "TIMEOUT_S",
    "WebhookRecorder",
    "WebhookSender",
    "Webhooks",
    "record_event",
]

log = logging.getLogger("frontoffice.webhooks")

# The outbox channel of webhook deliveries.
CHANNEL = "webhook"
# How long the recorder trusts its copy of the enabled subscriptions. A change made on this node
# applies at once (the service clears the copy); one made on another node within this time. Reading
# them on every commit would add a query to each ACD transaction.
SUBSCRIPTIONS_TTL_S = 2.0
# Standard Webhooks recommends a request time-out between 15 and 30 s: a receiver gets time to
# store the event; a hung one does not hold a worker slot for long.
TIMEOUT_S = 15.0
# The delivery log keeps this much of each body (a payload is a few hundred bytes; an error page of
# a receiver can be megabytes).
LOG_BODY_CHARS = 4096
# A receiver's Retry-After is honoured up to this (a longer one would outlast the 24-hour window).
MAX_RETRY_AFTER_S = 6 * 3600.0
# Random bytes of a new secret (Standard Webhooks: 24 to 64).
SECRET_BYTES = 32
# The most deliveries one "replay failed since" call queues again (the rest: call it again).
MAX_REPLAY = 10_000

_INTERACTION_EVENTS = cast(Table, InteractionEvent.__table__)
_AUDIT_LOG = cast(Table, AuditEntry.__table__)
_SUBS = cast(Table, WebhookSubscription.__table__)
_EVENTS = "frontoffice.webhooks.events"


def record_event(session: AsyncSession | Session, webhook_event: wh.WebhookEvent) -> None:
    """Raise ``webhook_event`` in the session's transaction, for events no log row carries: it is
    queued for its subscribers when the transaction commits (and dropped by a rollback)."""
    session.info.setdefault(_EVENTS, []).append(webhook_event)


def _subject_range(subscription_id: int) -> tuple[str, str]:
    # Subject keys of one subscription: "webhook:<id>:<object>". ';' follows ':' in ASCII, so the
    # range is exactly that prefix, and the outbox's (subject_key, id) index serves it.
    return f"webhook:{subscription_id}:", f"webhook:{subscription_id};"


def _subject_key(subscription_id: int, subject: str) -> str:
    return f"webhook:{subscription_id}:{subject}"


def _new_webhook_id() -> str:
    # Standard Webhooks: unique per message, the same on every retry, no '.' (it delimits the
    # signed content).
    return f"msg_{uuid.uuid4().hex}"


def _message(subscription_id: int, webhook_event: wh.WebhookEvent) -> dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "webhook_id": _new_webhook_id(),
        "event": webhook_event.body(),
    }


@dataclass(frozen=True, slots=True)
class _Subscription:
    id: int
    event_types: frozenset[str]
    project_id: int | None


class WebhookRecorder:
    """Queues the webhooks of a transaction's changes in that transaction (see the module docstring).
    ``install`` it on the session class once (``bootstrap.py``)."""

    def __init__(self, *, clock: Clock = system_clock, ttl_s: float = SUBSCRIPTIONS_TTL_S) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self._cached: tuple[float, list[_Subscription]] | None = None

    def install(self, session_class: type[Session]) -> None:
        event.listen(session_class, "before_commit", self._before_commit)
        event.listen(session_class, "after_soft_rollback", self._rolled_back)

    def invalidate(self) -> None:
        """Read the subscriptions again at the next commit (one was created, changed or deleted)."""
        self._cached = None

    def _subscriptions(self, session: Session) -> list[_Subscription]:
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.ttl_s:
            return self._cached[1]
        rows = session.connection().execute(
            select(_SUBS.c.id, _SUBS.c.event_types, _SUBS.c.project_id).where(_SUBS.c.enabled.is_(True))
        )
        subs = [_Subscription(i, frozenset(types or ()), p) for i, types, p in rows]
        self._cached = (now, subs)
        return subs

    @staticmethod
    def _rolled_back(session: Session, previous: Any) -> None:
        if previous.parent is None:
            session.info.pop(_EVENTS, None)

    def _before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint's release: the transaction's rows are queued at its commit
        try:
            self._queue(session)
        except SQLAlchemyError:
            raise  # the transaction cannot commit anyway (PostgreSQL aborted it)
        except Exception:
            # A fault in building the events must not refuse the change itself (a contact, a card):
            # its webhooks are lost, loudly.
            log.exception("the webhooks of a transaction could not be queued")

    def _queue(self, session: Session) -> None:
        events: list[wh.WebhookEvent] = session.info.pop(_EVENTS, [])
        interaction_rows = transaction_rows(session, _INTERACTION_EVENTS)
        audit_rows = transaction_rows(session, _AUDIT_LOG)
        if not events and not interaction_rows and not audit_rows:
            return
        # Without subscriptions (the usual case) a commit of the contact path costs one look at the
        # cached list, no mapping of its rows.
        subs = self._subscriptions(session)
        if not subs:
            return
        for row in interaction_rows:
            events += wh.interaction_events(row)
        for row in audit_rows:
            events += wh.audit_events(row)
        wanted = {t for s in subs for t in s.event_types}
        events = [
            e for e in events if e.type in wanted or (e.type == "call.ended" and "recording.ready" in wanted)
        ]
        if not events:
            return
        # The objects' rows as this transaction leaves them: ORM changes not flushed yet go out first
        # (the commit would flush them anyway, right after this hook).
        session.flush()
        events, projects = self._enrich(session, events)
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for e in events:
            in_projects = projects.get(e.subject, set())
            for sub in subs:
                if e.type not in sub.event_types:
                    continue
                if sub.project_id is not None and sub.project_id not in in_projects:
                    continue
                rows.append((CHANNEL, _subject_key(sub.id, e.subject), _message(sub.id, e)))
        enqueue_rows(session, rows, self.clock())

    def _enrich(
        self, session: Session, events: list[wh.WebhookEvent]
    ) -> tuple[list[wh.WebhookEvent], dict[str, set[int]]]:
        """The events with their objects' current fields, and each subject's projects."""
        conn = session.connection()
        projects: dict[str, set[int]] = {}
        for e in events:
            if e.project_id is not None:
                projects.setdefault(e.subject, set()).add(e.project_id)
            for p in e.data.get("project_ids", ()) if e.object_type == "customer" else ():
                projects.setdefault(e.subject, set()).add(int(p))

        def ids(object_type: str, *types: str) -> list[int]:
            return sorted({e.object_id for e in events if e.object_type == object_type and e.type in types})

        fields: dict[str, dict[str, Any]] = {}
        customer_ids = ids("customer", "customer.created", "customer.updated", "customer.merged")
        if customer_ids:
            for row in conn.execute(
                select(
                    Customer.id,
                    Customer.first_name,
                    Customer.middle_name,
                    Customer.last_name,
                    Customer.company_id,
                    Customer.language,
                    Customer.vip,
                    Customer.custom,
                    Customer.updated_at,
                ).where(Customer.id.in_(customer_ids))
            ):
                values = row._asdict()
                values["updated_at"] = _iso(values["updated_at"])
                fields[wh.subject_of("customer", row.id)] = values
            for customer_id, project_id in conn.execute(
                select(CustomerProject.customer_id, CustomerProject.project_id).where(
                    CustomerProject.customer_id.in_(customer_ids)
                )
            ):
                projects.setdefault(wh.subject_of("customer", customer_id), set()).add(project_id)
        ticket_ids = ids("ticket", "ticket.created", "ticket.updated")
        if ticket_ids:
            for row in conn.execute(
                select(
                    Ticket.id,
                    Ticket.subject,
                    Ticket.status,
                    Ticket.priority,
                    Ticket.customer_id,
                    Ticket.project_id,
                    Ticket.assignee_id,
                    Ticket.queue_id,
                ).where(Ticket.id.in_(ticket_ids))
            ):
                fields[wh.subject_of("ticket", row.id)] = row._asdict()
                if row.project_id is not None:
                    projects.setdefault(wh.subject_of("ticket", row.id), set()).add(row.project_id)
        deal_ids = ids("deal", "deal.created", "deal.updated")
        if deal_ids:
            for row in conn.execute(
                select(
                    Deal.id,
                    Deal.title,
                    Deal.stage,
                    Deal.amount_minor,
                    Deal.currency,
                    Deal.customer_id,
                    Deal.project_id,
                    Deal.owner_id,
                ).where(Deal.id.in_(deal_ids))
            ):
                fields[wh.subject_of("deal", row.id)] = row._asdict()
                if row.project_id is not None:
                    projects.setdefault(wh.subject_of("deal", row.id), set()).add(row.project_id)
        out: list[wh.WebhookEvent] = []
        call_ids = ids("interaction", "call.ended")
        recordings: dict[int, list[str]] = {}
        if call_ids:
            for interaction_id, attributes in conn.execute(
                select(Interaction.id, Interaction.attributes).where(Interaction.id.in_(call_ids))
            ):
                files = [os.path.basename(str(p)) for p in (attributes or {}).get("recordings", [])]
                if files:
                    recordings[interaction_id] = files
        for e in events:
            current = fields.get(e.subject)
            if current is not None:
                e = wh.WebhookEvent(
                    e.type, e.at, e.object_type, e.object_id, {**e.data, **current}, e.project_id
                )
            out.append(e)
            if e.type == "call.ended" and e.object_id in recordings:
                # The caller's leg is logged once the call's media closed: the files are complete.
                files = recordings[e.object_id]
                out.append(
                    wh.WebhookEvent(
                        "recording.ready",
                        e.at,
                        e.object_type,
                        e.object_id,
                        {
                            "interaction_id": e.object_id,
                            "project_id": e.project_id,
                            "recordings": [
                                {
                                    "name": name,
                                    "path": f"/api/v1/voice/calls/{e.object_id}/recordings/{name}",
                                }
                                for name in files
                            ],
                        },
                        e.project_id,
                    )
                )
        return out, projects


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or an HTTP date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.isdigit() else (parsedate_to_datetime(value) - now).total_seconds()
    except (TypeError, ValueError, OverflowError):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def _cut(text: str) -> str:
    return text if len(text) <= LOG_BODY_CHARS else text[:LOG_BODY_CHARS] + "…"


# Why a subscription was disabled (catalog messages: the administrators' email is in their language).
GONE = N_("the receiver answered 410 Gone")
GAVE_UP = N_("no successful delivery for 24 hours: {detail}")


@dataclass(frozen=True, slots=True)
class DisableReason:
    """Why a subscription was disabled: a catalog message, and the last failure it names (as the
    delivery log has it: ``HTTP 500``, ``no answer within 15 s``; not translated)."""

    message: str
    detail: str = ""

    def text(self, language: str) -> str:
        return gettext(self.message, language).format(detail=self.detail)


@dataclass(frozen=True, slots=True)
class WebhookDisabledNotice:
    """The administrators' email about a disabled subscription: what, why, and how to recover
    (:class:`~frontoffice.services.notices.AdminNotice`)."""

    subscription_id: int
    name: str
    url: str
    reason: DisableReason
    at: datetime
    public_url: str = ""

    def subject(self, language: str) -> str:
        return gettext('Webhook "{name}" was disabled', language).format(name=self.name)

    def body(self, language: str) -> str:
        def _(message: str) -> str:
            return gettext(message, language)

        console = _("the console: Admin, Webhooks")
        if self.public_url:
            console = f"{self.public_url}/admin#webhooks"
        paragraphs = [
            _('The webhook subscription "{name}" (id {id}) was disabled at {at}.').format(
                name=self.name, id=self.subscription_id, at=self.at.strftime("%Y-%m-%d %H:%M UTC")
            ),
            _("Receiver: {url}").format(url=self.url)
            + "\n"
            + _("Reason: {reason}").format(reason=self.reason.text(language)),
            _(
                "Its events are no longer sent. Once the receiver works again, enable the subscription "
                "and send the failed deliveries again (replay failed since the outage):"
            )
            + "\n"
            + console,
            _("The delivery log shows each attempt with the receiver's answer."),
        ]
        return "\n\n".join(paragraphs) + "\n"


class WebhookSender:
    """The outbox sender of channel ``webhook``: signs and POSTs one delivery, logs the attempt.
    ``transport``: the httpx transport (a test passes its own; by default httpx's, connecting only to
    addresses ``egress`` allows: :mod:`frontoffice.services.egress`)."""

    channel = CHANNEL

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: InProcessBus | None = None,
        *,
        clock: Clock = system_clock,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = TIMEOUT_S,
        recorder: WebhookRecorder | None = None,
        egress: EgressPolicy | None = None,
        public_url: str = "",
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.timeout_s = timeout_s
        self.recorder = recorder
        self._transport = transport if transport is not None else GuardedTransport(egress or EgressPolicy())
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=self.timeout_s,
                # Standard Webhooks: a redirect is a failure (the receiver should update the URL).
                follow_redirects=False,
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, delivery: Delivery) -> str | None:
        payload = delivery.payload
        subscription_id = int(payload["subscription_id"])
        async with self.sessions() as s:
            sub = await s.get(WebhookSubscription, subscription_id)
        if sub is None:
            raise PermanentFailure("the subscription was deleted")
        if not sub.enabled:
            raise PermanentFailure("the subscription is disabled")
        now = self.clock()
        timestamp = int(now.timestamp())
        webhook_id = str(payload["webhook_id"])
        body = json.dumps(payload["event"], separators=(",", ":"), ensure_ascii=False).encode()
        secrets = [sub.secret]
        if sub.previous_secret and sub.previous_secret_until and sub.previous_secret_until > now:
            secrets.append(sub.previous_secret)
        headers = {
            "content-type": "application/json",
            "user-agent": f"Frontoffice-Webhooks/{__version__}",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": wh.signature_header(secrets, webhook_id, timestamp, body),
        }
        started = time.perf_counter()
        response: httpx.Response | None = None
        error: str | None = None
        refused: str | None = None
        try:
            response = await self._http().post(sub.url, content=body, headers=headers)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout_s:g} s"
        except httpx.HTTPError as exc:
            # The address the name resolved to at this attempt is internal (DNS rebinding, a URL stored
            # before the check existed, or an allowed network taken out of the setting): nothing is
            # sent. Retried like any failure: the operator may allow the network (a LAN's 1C server
            # after an upgrade) within the day and lose nothing; if not, the day's failures disable
            # the subscription and the administrators are told.
            refused = refused_reason(exc)
            error = refused or (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        duration_ms = round((time.perf_counter() - started) * 1000)
        ok = response is not None and 200 <= response.status_code < 300
        if response is not None and not ok:
            error = f"HTTP {response.status_code}"
            if 300 <= response.status_code < 400:
                error += " (redirects are not followed: update the URL)"
        gone = response is not None and response.status_code == 410
        async with self.sessions.begin() as s:
            await s.execute(
                insert(WebhookAttempt).values(
                    subscription_id=subscription_id,
                    outbox_id=delivery.item_id,
                    webhook_id=webhook_id,
                    event_type=str(payload["event"].get("type", "")),
                    attempt=delivery.attempt,
                    at=now,
                    url=sub.url,
                    request_headers=headers,
                    request_body=_cut(body.decode()),
                    response_status=None if response is None else response.status_code,
                    response_headers={} if response is None else dict(response.headers),
                    response_body="" if response is None else _cut(response.text),
                    duration_ms=duration_ms,
                    outcome="sent" if ok else "refused" if refused else "failed",
                    error=error,
                )
            )
            if gone:
                # Standard Webhooks: 410 Gone means the receiver wants no more: disable the endpoint.
                await self._disable(s, subscription_id, DisableReason(GONE), now)
        if ok:
            return None
        if refused is not None:
            log.warning(
                "webhook delivery %s of subscription %s %s", delivery.item_id, subscription_id, refused
            )
            raise TemporaryFailure(refused)
        if gone:
            raise PermanentFailure(error or "HTTP 410")
        retry_after = None if response is None else _retry_after_s(response.headers.get("retry-after"), now)
        raise TemporaryFailure(error or "failed", retry_after_s=retry_after)

    async def given_up(self, session: AsyncSession, items: Sequence[GivenUp]) -> None:
        """A delivery failed for a day: disable its subscription unless another of its deliveries
        succeeded meanwhile (then the receiver works and only that message is refused)."""
        now = self.clock()
        for subscription_id in sorted({int(i.payload["subscription_id"]) for i in items}):
            succeeded = await session.scalar(
                select(WebhookAttempt.id)
                .where(
                    WebhookAttempt.subscription_id == subscription_id,
                    WebhookAttempt.outcome == "sent",
                    WebhookAttempt.at >= now - GIVE_UP_AFTER,
                )
                .limit(1)
            )
            if succeeded is None:
                reason = next(i.reason for i in items if int(i.payload["subscription_id"]) == subscription_id)
                await self._disable(session, subscription_id, DisableReason(GAVE_UP, reason), now)

    async def _disable(
        self, s: AsyncSession, subscription_id: int, why: DisableReason, now: datetime
    ) -> None:
        reason = why.text("en")  # stored, audited and in the API as the delivery log is: in English
        result = await s.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id, WebhookSubscription.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason[:2000], disabled_at=now, updated_at=now)
            .returning(WebhookSubscription.name, WebhookSubscription.project_id, WebhookSubscription.url)
        )
        row = result.first()
        if row is None:
            return  # already disabled (or deleted)
        log.warning("webhook subscription %s disabled: %s", subscription_id, reason)
        audit(s, Actor.system(), "webhook.disabled", "webhook", subscription_id, now, reason=reason[:500])
        # Administrators not watching the console hear of it by email (each in their language),
        # queued with the change.
        await queue_admin_notice(
            s,
            WebhookDisabledNotice(subscription_id, row.name, row.url, why, now, self.public_url),
            subject_key=f"notice:webhook:{subscription_id}",
            now=now,
            project_id=row.project_id,
        )
        if self.recorder is not None:
            self.recorder.invalidate()
        if self.bus is not None:
            notice = BusMessage(
                type="webhook_disabled",
                data={"subscription_id": subscription_id, "name": row.name, "reason": reason},
                audience=("supervisors",),
                project_id=row.project_id,
            )
            bus = self.bus

            def tell(_: Session) -> None:
                bus.publish(notice)

            # The administrators hear of it once it is committed.
            event.listen(s.sync_session, "after_commit", tell, once=True)


def _delivery_out(row: OutboxItem) -> WebhookDeliveryOut:
    payload = dict(row.payload or {})
    return WebhookDeliveryOut(
        id=row.id,
        webhook_id=str(payload.get("webhook_id", "")),
        event_type=str((payload.get("event") or {}).get("type", "")),
        state=row.state,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.state == OutboxState.QUEUED else None,
        created_at=row.created_at,
        sent_at=row.sent_at,
        replay_of=payload.get("replay_of"),
        payload=payload.get("event") or {},
    )


class Webhooks:
    """Subscriptions, the delivery list and log, secret rotation and replay (admin: ``webhooks.manage``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        recorder: WebhookRecorder,
        *,
        clock: Clock = system_clock,
        random_bytes: Any = os.urandom,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.recorder = recorder
        self.clock = clock
        self.random_bytes = random_bytes
        self.egress = egress or EgressPolicy()

    def _secret(self) -> str:
        return wh.encode_secret(self.random_bytes(SECRET_BYTES))

    @staticmethod
    def event_types() -> list[EventTypeOut]:
        return [EventTypeOut(type=t, description=d) for t, d in wh.EVENT_TYPES.items()]

    async def _get(self, s: AsyncSession, subscription_id: int) -> WebhookSubscription:
        sub = await s.get(WebhookSubscription, subscription_id)
        if sub is None:
            raise NotFound("No such webhook", error_id="no-such-webhook", webhook_id=subscription_id)
        return sub

    @staticmethod
    async def _check_project(s: AsyncSession, project_id: int | None) -> None:
        if project_id is not None and await s.get(Project, project_id) is None:
            raise NotFound(
                "No such project", error_id="no-such-project", project_id=project_id, field="project_id"
            )

    async def _check_url(self, url: str) -> None:
        """Refuse a URL whose host is or resolves to an internal address (422 at ``url``)."""
        try:
            await self.egress.check_url(url)
        except AddressRefused as exc:
            raise url_refused(exc) from None

    async def list_all(self, actor: Actor) -> list[WebhookOut]:
        actor.require("webhooks.manage")
        async with self.sessions() as s:
            rows = await s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
            return [WebhookOut.model_validate(r) for r in rows]

    async def get(self, actor: Actor, subscription_id: int) -> WebhookOut:
        actor.require("webhooks.manage")
        async with self.sessions() as s:
            return WebhookOut.model_validate(await self._get(s, subscription_id))

    async def create(self, actor: Actor, data: WebhookIn) -> WebhookCreated:
        actor.require("webhooks.manage")
        now = self.clock()
        await self._check_url(data.url)
        async with self.sessions.begin() as s:
            await self._check_project(s, data.project_id)
            sub = WebhookSubscription(
                name=data.name,
                url=data.url,
                event_types=list(data.event_types),
                project_id=data.project_id,
                enabled=data.enabled,
                secret=self._secret(),
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
            )
            s.add(sub)
            await s.flush()
            audit(
                s, actor, "webhook.create", "webhook", sub.id, now, url=data.url, event_types=data.event_types
            )
            created = WebhookCreated.model_validate(sub)
        self.recorder.invalidate()
        return created

    async def update(self, actor: Actor, subscription_id: int, patch: WebhookPatch) -> WebhookOut:
        actor.require("webhooks.manage")
        now = self.clock()
        changes = patch.model_dump(exclude_unset=True)
        for key in ("name", "url", "event_types", "enabled"):
            if key in changes and changes[key] is None:
                raise InvalidInput(f"{key} cannot be null", error_id="invalid-field", field=key)
        if "url" in changes:
            await self._check_url(changes["url"])
        async with self.sessions.begin() as s:
            sub = await self._get(s, subscription_id)
            if "project_id" in changes:
                await self._check_project(s, changes["project_id"])
            for key, value in changes.items():
                setattr(sub, key, value)
            if changes.get("enabled") is True:
                sub.disabled_reason = None
                sub.disabled_at = None
            elif changes.get("enabled") is False and sub.disabled_at is None:
                sub.disabled_reason = "disabled by an administrator"
                sub.disabled_at = now
            sub.updated_at = now
            audit(s, actor, "webhook.update", "webhook", subscription_id, now, fields=sorted(changes))
            await s.flush()
            out = WebhookOut.model_validate(sub)
        self.recorder.invalidate()
        return out

    async def delete(self, actor: Actor, subscription_id: int) -> None:
        """Delete a subscription, its log and its deliveries not yet sent (cancelled)."""
        actor.require("webhooks.manage")
        now = self.clock()
        lo, hi = _subject_range(subscription_id)
        async with self.sessions.begin() as s:
            await self._get(s, subscription_id)
            await s.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.subject_key >= lo,
                    OutboxItem.subject_key < hi,
                    OutboxItem.state == OutboxState.QUEUED,
                )
                .values(state=OutboxState.CANCELLED, last_error="the subscription was deleted")
            )
            await s.execute(delete(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription_id))
            await s.execute(delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id))
            audit(s, actor, "webhook.delete", "webhook", subscription_id, now)
        self.recorder.invalidate()

    async def secret(self, actor: Actor, subscription_id: int) -> WebhookSecretOut:
        actor.require("webhooks.manage")
        async with self.sessions() as s:
            return WebhookSecretOut.model_validate(await self._get(s, subscription_id))

    async def rotate_secret(
        self, actor: Actor, subscription_id: int, data: RotateSecretIn
    ) -> WebhookSecretOut:
        """A new secret signs from now on; the current one also signs for ``overlap_hours``."""
        actor.require("webhooks.manage")
        now = self.clock()
        async with self.sessions.begin() as s:
            sub = await self._get(s, subscription_id)
            if data.overlap_hours > 0:
                sub.previous_secret = sub.secret
                sub.previous_secret_until = now + timedelta(hours=data.overlap_hours)
            else:
                sub.previous_secret = None
                sub.previous_secret_until = None
            sub.secret = self._secret()
            sub.updated_at = now
            audit(
                s,
                actor,
                "webhook.rotate_secret",
                "webhook",
                subscription_id,
                now,
                overlap_hours=data.overlap_hours,
            )
            await s.flush()
            return WebhookSecretOut.model_validate(sub)

    async def send_test(self, actor: Actor, subscription_id: int) -> WebhookDeliveryOut:
        """Queue a ``webhook.test`` event to the (enabled) subscription."""
        actor.require("webhooks.manage")
        now = self.clock()
        async with self.sessions.begin() as s:
            sub = await self._get(s, subscription_id)
            self._require_enabled(sub)
            test = wh.WebhookEvent(
                wh.TEST_EVENT, now, "webhook", subscription_id, {"subscription_id": sub.id, "name": sub.name}
            )
            item_id = await self._enqueue(s, sub.id, test.subject, _message(sub.id, test), now)
            row = await s.get(OutboxItem, item_id)
            assert row is not None
            return _delivery_out(row)

    @staticmethod
    def _require_enabled(sub: WebhookSubscription) -> None:
        if not sub.enabled:
            raise Conflict(
                "The webhook is disabled: enable it first", error_id="webhook-disabled", webhook_id=sub.id
            )

    @staticmethod
    async def _enqueue(
        s: AsyncSession, subscription_id: int, subject: str, payload: dict[str, Any], now: datetime
    ) -> int:
        return await enqueue(s, CHANNEL, None, _subject_key(subscription_id, subject), payload, now=now)

    async def deliveries(
        self,
        actor: Actor,
        subscription_id: int,
        *,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookDeliveryOut]:
        """The subscription's deliveries, newest first (``state``: queued, sending, sent, failed)."""
        actor.require("webhooks.manage")
        lo, hi = _subject_range(subscription_id)
        async with self.sessions() as s:
            await self._get(s, subscription_id)
            stmt = select(OutboxItem).where(OutboxItem.subject_key >= lo, OutboxItem.subject_key < hi)
            if state is not None:
                stmt = stmt.where(OutboxItem.state == state)
            if cursor is not None:
                stmt = stmt.where(OutboxItem.id < decode_id_cursor(cursor))
            rows = list(await s.scalars(stmt.order_by(OutboxItem.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, _delivery_out)

    async def attempts(
        self,
        actor: Actor,
        subscription_id: int,
        *,
        delivery_id: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WebhookAttemptOut]:
        """The delivery log: the subscription's HTTP attempts (of one delivery), newest first."""
        actor.require("webhooks.manage")
        async with self.sessions() as s:
            await self._get(s, subscription_id)
            stmt = select(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription_id)
            if delivery_id is not None:
                stmt = stmt.where(WebhookAttempt.outbox_id == delivery_id)
            if cursor is not None:
                stmt = stmt.where(WebhookAttempt.id < decode_id_cursor(cursor))
            rows = list(await s.scalars(stmt.order_by(WebhookAttempt.id.desc()).limit(limit + 1)))
        return id_page(rows, limit, WebhookAttemptOut.model_validate)

    async def _delivery(self, s: AsyncSession, subscription_id: int, delivery_id: int) -> OutboxItem:
        lo, hi = _subject_range(subscription_id)
        row = await s.get(OutboxItem, delivery_id)
        if row is None or row.channel != CHANNEL or not lo <= row.subject_key < hi:
            raise NotFound(
                "No such webhook delivery", error_id="no-such-webhook-delivery", delivery_id=delivery_id
            )
        return row

    async def replay(self, actor: Actor, subscription_id: int, delivery_id: int) -> ReplayOut:
        """Send one delivery again, as a new delivery with the same ``webhook-id`` (the receiver's
        idempotency key) and payload, after the subject's pending ones."""
        actor.require("webhooks.manage")
        now = self.clock()
        async with self.sessions.begin() as s:
            sub = await self._get(s, subscription_id)
            self._require_enabled(sub)
            row = await self._delivery(s, subscription_id, delivery_id)
            new_id = await self._requeue(s, row, now)
            audit(s, actor, "webhook.replay", "webhook", subscription_id, now, delivery_ids=[delivery_id])
        return ReplayOut(queued=1, delivery_ids=[new_id])

    async def replay_failed(self, actor: Actor, subscription_id: int, since: datetime) -> ReplayOut:
        """Send again every delivery of the subscription that failed, created at ``since`` or later
        (after an outage of the receiver), oldest first."""
        actor.require("webhooks.manage")
        now = self.clock()
        lo, hi = _subject_range(subscription_id)
        async with self.sessions.begin() as s:
            sub = await self._get(s, subscription_id)
            self._require_enabled(sub)
            rows = list(
                await s.scalars(
                    select(OutboxItem)
                    .where(
                        OutboxItem.subject_key >= lo,
                        OutboxItem.subject_key < hi,
                        OutboxItem.state == OutboxState.FAILED,
                        OutboxItem.created_at >= since,
                    )
                    .order_by(OutboxItem.id)
                    .limit(MAX_REPLAY)
                )
            )
            ids = [await self._requeue(s, row, now) for row in rows]
            audit(
                s,
                actor,
                "webhook.replay",
                "webhook",
                subscription_id,
                now,
                since=since.isoformat(),
                count=len(ids),
            )
        return ReplayOut(queued=len(ids), delivery_ids=ids)

    @staticmethod
    async def _requeue(s: AsyncSession, row: OutboxItem, now: datetime) -> int:
        payload = {**(row.payload or {}), "replay_of": row.id}
        return await enqueue(s, CHANNEL, None, row.subject_key, payload, now=now)

    async def pending_count(self, subscription_id: int) -> int:
        """Deliveries of the subscription not yet sent nor given up (for tests and the console)."""
        lo, hi = _subject_range(subscription_id)
        async with self.sessions() as s:
            count = await s.scalar(
                select(func.count()).where(
                    and_(
                        OutboxItem.subject_key >= lo,
                        OutboxItem.subject_key < hi,
                        OutboxItem.state.in_((OutboxState.QUEUED, OutboxState.SENDING)),
                    )
                )
            )
        return int(count or 0)
