"""Public web forms: a website's contact form posts to its entry point without a user token.

Each ``webform`` entry point may have one public form (``web_forms``), named by a random public key
that is safe to put in a page (it only lets anyone do what the page already lets anyone do: send a
message). A submission is checked, in this order, before anything is written:

1. the form exists and is enabled (``404 no-such-form``);
2. the page's ``Origin`` is on the form's allow-list, when the browser sent one
   (``403 origin-not-allowed``); a post without ``Origin`` (a server, curl) is not a browser's, which
   is what an origin list restricts;
3. the client address is within its rate limit (``429 too-many-submissions``, ``Retry-After``);
4. the honeypot field (``website``, hidden from people by the snippet's CSS) is empty
   (``422 spam-suspected``);
5. the captcha token verifies, when the form asks for one (``422 captcha-failed``;
   ``503 captcha-unavailable`` when the verifier cannot be reached: try again);
6. the fields are valid: an email or a phone to answer, a message (``422 invalid-form``).

Then the submission becomes an :class:`~frontoffice.services.channel_contract.InboundContact` of
the ``webform`` channel and goes through intake like any contact: customer found or created,
routed by the entry point's rules, queued — committed before the answer (``201`` with the
contact's ``reference``). An ``Idempotency-Key`` (header, or the ``idempotency_key`` field for a
plain HTML form) makes a repeat answer the first contact again (``200``), never a second contact;
keys are per form.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Throttled
from frontoffice.domain.model import Channel
from frontoffice.store.tables import EntryPoint, WebForm

from .acd_schemas import ContactCreated
from .channel_contract import CustomerIdentity, InboundContact
from .context import Actor, Clock, audit, system_clock
from .egress import EgressPolicy, GuardedTransport, refused_reason
from .intake import Intake
from .schemas import WebFormIn, WebFormOut

__all__ = [
    "HONEYPOT_FIELD",
    "CaptchaUnavailable",
    "CaptchaVerifier",
    "FormRateLimit",
    "FormSubmission",
    "WebForms",
]

log = logging.getLogger("frontoffice.web_forms")

# The hidden field people never fill and form-filling robots do. A name robots recognise and fill.
HONEYPOT_FIELD = "website"
# The field a captcha widget puts its token in (the name hCaptcha, reCAPTCHA and Turnstile use
# differs; the snippet copies it here).
CAPTCHA_FIELD = "captcha_token"
# Field lengths: a message as long as the API's contact body; names and subjects as their columns.
MAX_MESSAGE = 20_000
MAX_NAME = 200
MAX_SUBJECT = 500
MAX_KEY = 150  # stored as "webform:<form id>:<key>" in a 200-character column
# A captcha service answers in well under a second; a form must not hang on a slow one.
CAPTCHA_TIMEOUT_S = 5.0


class CaptchaUnavailable(DomainError):
    """The captcha verifier could not be asked (time-out, error): the submission is not taken; the
    page may try again. Mapped to 503 by the web layer."""

    error_id = "captcha-unavailable"


class FormRateLimit:
    """Submissions per client address in a sliding window, in memory (one node; a multi-node site
    also limits at its proxy). ``limit`` submissions per ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._now = monotonic
        self._hits: dict[str, deque[float]] = {}

    def hit(self, address: str) -> None:
        """Count one submission from ``address``; raise :class:`Throttled` when over the limit
        (a refused submission is not counted, so a blocked address recovers after the window)."""
        now = self._now()
        q = self._hits.setdefault(address, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            raise Throttled(
                "Too many submissions from this address; try again later",
                error_id="too-many-submissions",
                retry_after_s=int(q[0] + self.window_s - now) + 1,
            )
        q.append(now)
        if len(self._hits) > 100_000:  # bound memory under a flood of addresses
            for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
                del self._hits[key]


class CaptchaVerifier:
    """Asks a captcha service whether a token is good: POST ``secret``, ``response`` and ``remoteip``
    form-encoded to ``verify_url`` and read ``{"success": true}`` — the protocol hCaptcha, reCAPTCHA
    and Cloudflare Turnstile share. Off (``enabled`` false) without a URL.

    Like every outgoing integration, the service is reached only at public addresses and the
    networks ``egress`` allows (``integrations_allowed_networks``; a self-hosted verifier on the LAN
    needs its network there): a refused check answers ``503 captcha-unavailable`` and is logged.
    ``transport``: a test's own instead."""

    def __init__(
        self,
        verify_url: str,
        secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.verify_url = verify_url
        self.secret = secret
        self.transport = transport
        self.egress = egress or EgressPolicy()

    @property
    def enabled(self) -> bool:
        return bool(self.verify_url)

    async def verify(self, token: str, address: str | None) -> bool:
        data = {"secret": self.secret, "response": token}
        if address:
            data["remoteip"] = address
        # A transport of the guard per check: the client closes it.
        transport = self.transport if self.transport is not None else GuardedTransport(self.egress)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=CAPTCHA_TIMEOUT_S) as client:
                answer = await client.post(self.verify_url, data=data)
            if answer.status_code != 200:
                raise CaptchaUnavailable(
                    "The captcha service could not be asked; try again", status=answer.status_code
                )
            return answer.json().get("success") is True
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            refused = refused_reason(exc)
            if refused is not None:  # the operator's captcha_verify_url is on an address not allowed
                log.warning("captcha check %s", refused)
            raise CaptchaUnavailable("The captcha service could not be asked; try again") from None


@dataclass(frozen=True, slots=True)
class FormSubmission:
    """What a page posted, as received: the fields (form-encoded or JSON, all as text), the page's
    ``Origin`` header, the client's address and the ``Idempotency-Key`` header."""

    fields: Mapping[str, str]
    origin: str | None
    address: str | None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class PublicForm:
    """A form as the public endpoint needs it (read per request: one indexed row)."""

    id: int
    entry_point_id: int
    allowed_origins: tuple[str, ...]
    enabled: bool
    captcha: bool

    def allows_origin(self, origin: str) -> bool:
        try:
            return normalize_origin(origin) in self.allowed_origins
        except ValueError:  # not an origin at all
            return False


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` lower-cased without a trailing slash (how browsers send ``Origin``)."""
    origin = origin.strip().rstrip("/")
    if origin == "null":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
        raise ValueError(f"not an origin: {origin!r} (use scheme://host[:port])")
    return f"{parts.scheme}://{parts.netloc}".lower()


class WebForms:
    """The forms' settings (administrators) and the public submissions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        intake: Intake,
        *,
        rate_limit: FormRateLimit,
        captcha: CaptchaVerifier,
        public_url: str,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.intake = intake
        self.rate_limit = rate_limit
        self.captcha = captcha
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    # ------------------------------------------------------------------ administration
    async def get(self, actor: Actor, entry_point_id: int) -> WebFormOut:
        """An entry point's form (``404 no-such-form`` when it has none)."""
        actor.require("routing.read")
        async with self.sessions() as s:
            entry = await self._entry(s, actor, entry_point_id)
            form = await s.scalar(select(WebForm).where(WebForm.entry_point_id == entry.id))
            if form is None:
                raise NotFound("This entry point has no web form", error_id="no-such-form")
            return self._out(form)

    async def configure(self, actor: Actor, entry_point_id: int, data: WebFormIn) -> WebFormOut:
        """Create the entry point's form (with a new public key) or change its settings."""
        actor.require("routing.write")
        if data.captcha and not self.captcha.enabled:
            raise InvalidInput(
                "Set captcha_verify_url in the configuration before asking forms for a captcha",
                error_id="captcha-not-configured",
            )
        now = self.clock()
        async with self.sessions.begin() as s:
            entry = await self._entry(s, actor, entry_point_id)
            if entry.channel != Channel.WEBFORM.value:
                raise InvalidInput(
                    "Only a web form entry point has a public form",
                    error_id="not-a-webform-entry-point",
                    channel=entry.channel,
                )
            form = await s.scalar(select(WebForm).where(WebForm.entry_point_id == entry.id))
            if form is None:
                form = WebForm(entry_point_id=entry.id, public_key=_new_key(), created_at=now)
                s.add(form)
            form.allowed_origins = list(data.allowed_origins)
            form.enabled = data.enabled
            form.captcha = data.captcha
            form.updated_at = now
            await s.flush()
            audit(
                s,
                actor,
                "web_form.configure",
                "entry_point",
                entry.id,
                now,
                allowed_origins=form.allowed_origins,
                enabled=form.enabled,
                captcha=form.captcha,
            )
            return self._out(form)

    async def new_key(self, actor: Actor, entry_point_id: int) -> WebFormOut:
        """Give the form a new public key; the old one stops at once (pages must get the new snippet)."""
        actor.require("routing.write")
        async with self.sessions.begin() as s:
            entry = await self._entry(s, actor, entry_point_id)
            form = await s.scalar(select(WebForm).where(WebForm.entry_point_id == entry.id))
            if form is None:
                raise NotFound("This entry point has no web form", error_id="no-such-form")
            form.public_key = _new_key()
            form.updated_at = self.clock()
            audit(s, actor, "web_form.new_key", "entry_point", entry.id)
            return self._out(form)

    async def remove(self, actor: Actor, entry_point_id: int) -> None:
        actor.require("routing.write")
        async with self.sessions.begin() as s:
            entry = await self._entry(s, actor, entry_point_id)
            form = await s.scalar(select(WebForm).where(WebForm.entry_point_id == entry.id))
            if form is None:
                raise NotFound("This entry point has no web form", error_id="no-such-form")
            await s.delete(form)
            audit(s, actor, "web_form.remove", "entry_point", entry.id)

    async def _entry(self, s: AsyncSession, actor: Actor, entry_point_id: int) -> EntryPoint:
        entry = await s.get(EntryPoint, entry_point_id)
        if entry is None or not actor.sees_project(entry.project_id):
            raise NotFound(
                "No such entry point", error_id="no-such-entry-point", entry_point_id=entry_point_id
            )
        return entry

    def _out(self, form: WebForm) -> WebFormOut:
        return WebFormOut(
            entry_point_id=form.entry_point_id,
            public_key=form.public_key,
            allowed_origins=list(form.allowed_origins),
            enabled=form.enabled,
            captcha=form.captcha,
            action_url=self.action_url(form.public_key),
            html_snippet=self.snippet(form.public_key, captcha=form.captcha),
            updated_at=form.updated_at,
        )

    def action_url(self, public_key: str) -> str:
        return f"{self.public_url}/api/v1/public/forms/{public_key}"

    def snippet(self, public_key: str, *, captcha: bool = False) -> str:
        """The HTML to paste into a site's page: the form, its hidden honeypot, and a few lines of
        script that post it with an idempotency key (a retry never makes a second contact) and show
        whether it was accepted. Without script the form still posts (form-encoded)."""
        action = escape(self.action_url(public_key), quote=True)
        captcha_note = (
            "\n  <!-- Put your captcha widget here and copy its token into the captcha_token field. -->"
            f'\n  <input type="hidden" name="{CAPTCHA_FIELD}" value="">'
            if captcha
            else ""
        )
        return f"""<form class="fo-form" method="post" action="{action}">
  <input type="hidden" name="idempotency_key" value="">
  <p><label>Name <input name="name" maxlength="{MAX_NAME}" autocomplete="name"></label></p>
  <p><label>Email <input name="email" type="email" autocomplete="email"></label></p>
  <p><label>Phone <input name="phone" type="tel" autocomplete="tel"></label></p>
  <p><label>Subject <input name="subject" maxlength="{MAX_SUBJECT}"></label></p>
  <p><label>Message <textarea name="message" required maxlength="{MAX_MESSAGE}"></textarea></label></p>
  <p style="position:absolute;left:-10000px" aria-hidden="true"><label>Leave empty
    <input name="{HONEYPOT_FIELD}" tabindex="-1" autocomplete="off"></label></p>{captcha_note}
  <p><button type="submit">Send</button> <output class="fo-result"></output></p>
</form>
<script>
document.querySelectorAll("form.fo-form").forEach((form) => {{
  const key = form.elements.idempotency_key;
  const newKey = () =>
    window.crypto && crypto.randomUUID ? crypto.randomUUID() : Date.now() + "-" + Math.random();
  key.value = newKey();
  form.addEventListener("submit", async (event) => {{
    event.preventDefault();
    const out = form.querySelector(".fo-result");
    try {{
      const answer = await fetch(form.action, {{
        method: "POST", body: new FormData(form), headers: {{ "Idempotency-Key": key.value }},
      }});
      const body = await answer.json();
      out.textContent = answer.ok ? "Thank you! Your request number: " + body.reference : body.message;
      if (answer.ok) {{ form.reset(); key.value = newKey(); }}
    }} catch (error) {{
      out.textContent = "Could not send; please try again.";
    }}
  }});
}});
</script>
"""

    # ------------------------------------------------------------------ public submissions
    async def public_form(self, public_key: str) -> PublicForm:
        """The enabled form with this key (``404 no-such-form`` otherwise): what the CORS check and
        the submission need."""
        async with self.sessions() as s:
            form = await s.scalar(select(WebForm).where(WebForm.public_key == public_key))
        if form is None or not form.enabled:
            raise NotFound("No such form", error_id="no-such-form")
        return PublicForm(
            id=form.id,
            entry_point_id=form.entry_point_id,
            allowed_origins=tuple(form.allowed_origins),
            enabled=form.enabled,
            captcha=form.captcha,
        )

    async def submit(self, form: PublicForm, submission: FormSubmission) -> ContactCreated:
        """Take in one submission (checks in the order of the module's docstring); the contact is
        committed when this returns. ``created`` is false for a repeat of an idempotency key."""
        if submission.origin is not None and not form.allows_origin(submission.origin):
            raise Forbidden(
                "This site may not post to this form", error_id="origin-not-allowed", origin=submission.origin
            )
        fields = submission.fields
        key = (submission.idempotency_key or fields.get("idempotency_key") or "").strip() or None
        if key is not None and len(key) > MAX_KEY:
            raise InvalidInput("The idempotency key is too long", error_id="invalid-idempotency-key")
        self.rate_limit.hit(submission.address or "-")
        if fields.get(HONEYPOT_FIELD, "").strip():
            raise InvalidInput(
                "The form was filled in by a robot",
                error_id="spam-suspected",
                errors=[{"loc": [HONEYPOT_FIELD], "message": "Leave this field empty", "type": "honeypot"}],
            )
        if form.captcha and self.captcha.enabled:
            token = fields.get(CAPTCHA_FIELD, "").strip()
            if not token or not await self.captcha.verify(token, submission.address):
                raise InvalidInput(
                    "The captcha was not solved",
                    error_id="captcha-failed",
                    errors=[{"loc": [CAPTCHA_FIELD], "message": "Solve the captcha", "type": "captcha"}],
                )
        inbound = _inbound(form, submission)
        # Keys are per form: another form (or the API) using the same key is another contact.
        dedupe = None if key is None else f"webform:{form.id}:{key}"
        try:
            return await self.intake.take_in(inbound, actor=Actor.system(), dedupe_key=dedupe)
        except IntegrityError:
            raise Conflict("The submission could not be recorded; try again", error_id="try-again") from None


def _new_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def _inbound(form: PublicForm, submission: FormSubmission) -> InboundContact:
    """The submission's fields as the web form channel's inbound contact (raises ``invalid-form``
    naming every bad field)."""
    fields = submission.fields
    errors: list[dict[str, Any]] = []

    def text(name: str, limit: int) -> str:
        value = fields.get(name, "").strip()
        if len(value) > limit:
            errors.append({"loc": [name], "message": f"At most {limit} characters", "type": "too_long"})
        return value[:limit]

    name = text("name", MAX_NAME)
    email = text("email", 320)
    phone = text("phone", 64)
    subject = text("subject", MAX_SUBJECT)
    message = text("message", MAX_MESSAGE)
    if not email and not phone:
        errors.append(
            {"loc": ["email"], "message": "Give an email or a phone to answer to", "type": "missing"}
        )
    if not message:
        errors.append({"loc": ["message"], "message": "Write a message", "type": "missing"})
    if "\x00" in name + email + phone + subject + message:
        errors.append({"loc": ["message"], "message": "The text contains a NUL character", "type": "nul"})
    if errors:
        raise InvalidInput("Some fields of the form are not valid", error_id="invalid-form", errors=errors)
    first, _, last = name.partition(" ")
    attributes: dict[str, str | int | float | bool | None] = {"web_form": form.id}
    if submission.origin:
        attributes["origin"] = submission.origin
    if submission.address:
        attributes["client_address"] = submission.address
    return InboundContact(
        channel=Channel.WEBFORM,
        entry_point_id=form.entry_point_id,
        customer=CustomerIdentity(
            phone=phone or None, email=email or None, first_name=first, last_name=last.strip()
        ),
        subject=subject or (message.splitlines()[0][:100] if message else ""),
        body=message,
        attributes=attributes,
    )
