"""A registration we keep at someone else's registrar (RFC 3261 §10.2): a carrier trunk, sans-IO.

The owner sends what :meth:`RegistrationClient.poll` returns through a client transaction and feeds
back the final response (:meth:`~RegistrationClient.on_response`) or the transaction's timeout
(:meth:`~RegistrationClient.on_timeout`). Digest challenges (401/407, MD5 or SHA-256, qop=auth) are
answered with :func:`authorize_request`; the registration is refreshed before it lapses and retried
with exponential back-off after a failure. ``now`` is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .builders import IdGenerator, build_request, new_call_id, new_tag, random_id
from .digest import authorize_request, select_challenge
from .exceptions import DigestError, SipParseError
from .headers import NameAddress, Via
from .message import Request, Response
from .uri import Uri

__all__ = ["RegistrationClient", "RegistrationState", "refresh_delay", "retry_delay"]

# Refresh this long before the granted expiry: a REGISTER with a challenge round-trip over a lossy
# link takes up to 2 × 64*T1 = 64 s (RFC 3261 §17.1.2.2 Timer F), so a minute leaves no gap.
REFRESH_MARGIN_S = 60.0
# After a failure (timeout, 403, 5xx) retry after 30 s, doubling up to 10 minutes: carriers ban
# addresses that hammer them with failing REGISTERs, and an outage rarely ends within seconds.
RETRY_BASE_S = 30.0
RETRY_MAX_S = 600.0
# Answer at most this many challenges in a row: a second 401 after our credentials means they are
# wrong, unless the carrier says the nonce was merely stale (RFC 7616 §3.3).
MAX_CHALLENGES = 2


class RegistrationState(Enum):
    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


def refresh_delay(granted: float) -> float:
    """Seconds after a 2xx to send the refresh: the margin before expiry, or half of a short grant."""
    return max(granted / 2, granted - REFRESH_MARGIN_S)


def retry_delay(failures: int) -> float:
    """Back-off after ``failures`` consecutive failures (1, 2, ...): 30, 60, 120 ... 600 s."""
    return min(RETRY_MAX_S, RETRY_BASE_S * 2.0 ** min(max(0, failures - 1), 32))


@dataclass(eq=False)
class RegistrationClient:
    """One binding of ``contact`` for ``aor`` at ``registrar``, kept alive."""

    aor: Uri
    registrar: Uri
    contact: NameAddress
    via: Via
    username: str
    password: str
    expires: int = 600
    realm: str | None = None  # answer only this realm's challenges (a proxy on the way may challenge too)
    ids: IdGenerator = random_id
    state: RegistrationState = RegistrationState.UNREGISTERED
    last_error: str | None = None
    registered_until: float | None = None
    failures: int = 0
    _call_id: str = ""
    _from_tag: str = ""
    _cseq: int = 0
    _next_at: float | None = 0.0
    _pending: Request | None = None
    _challenges: int = 0
    _stopped: bool = field(default=False)

    def __post_init__(self) -> None:
        # RFC 3261 §10.2: one Call-ID for all registrations of this UA at this registrar, CSeq rising.
        self._call_id = self._call_id or new_call_id(self.ids)
        self._from_tag = self._from_tag or new_tag(self.ids)

    # ------------------------------------------------------------------ inspection
    def is_registered(self, now: float) -> bool:
        return self.registered_until is not None and now < self.registered_until

    def next_timer(self) -> float | None:
        """When :meth:`poll` has something to send (``None`` while a request is outstanding)."""
        return None if self._pending is not None or self._stopped else self._next_at

    @property
    def call_id(self) -> str:
        return self._call_id

    # ------------------------------------------------------------------ requests
    def poll(self, now: float) -> Request | None:
        """The REGISTER to send now, if one is due."""
        if self._stopped or self._pending is not None or self._next_at is None or now < self._next_at:
            return None
        self._challenges = 0
        self.state = RegistrationState.REGISTERING
        self._pending = self._register(self.expires)
        return self._pending

    def unregister(self) -> Request | None:
        """Remove our binding (``Expires: 0``, §10.2.2) and stop refreshing; ``None`` if not registered."""
        self._stopped = True
        if self.registered_until is None:
            return None
        self._challenges = 0
        self._pending = self._register(0)
        return self._pending

    def _register(self, expires: int) -> Request:
        self._cseq += 1
        return build_request(
            "REGISTER",
            self.registrar,
            from_addr=NameAddress(self.aor).with_tag(self._from_tag),
            to_addr=NameAddress(self.aor),
            via=self.via,
            cseq=self._cseq,
            call_id=self._call_id,
            contact=self.contact,
            extra_headers=[("Expires", str(expires))],
            ids=self.ids,
        )

    # ------------------------------------------------------------------ responses
    def on_response(self, response: Response, now: float) -> Request | None:
        """Apply a response to the outstanding REGISTER; returns a request to send (a challenge answer)."""
        pending = self._pending
        if pending is None or response.is_provisional:
            return None
        self._pending = None
        unregistering = pending.headers.get("Expires") == "0"
        if response.status in (401, 407):
            retry = self._answer(pending, response)
            if retry is not None:
                self._pending = retry
                return retry
            self._fail(now, f"{response.status} {response.reason}: credentials refused")
            return None
        if unregistering:
            self.registered_until = None
            self.state = RegistrationState.UNREGISTERED
            return None
        if response.is_success:
            granted = self._granted(response)
            if granted <= 0:
                self._fail(now, "registrar removed the binding")
                return None
            self.state = RegistrationState.REGISTERED
            self.last_error = None
            self.failures = 0
            self.registered_until = now + granted
            self._next_at = now + refresh_delay(granted)
            return None
        if response.status == 423:
            # §10.2.8: Interval Too Brief: retry at once with the registrar's Min-Expires.
            try:
                minimum = int((response.headers.get("Min-Expires") or "").strip())
            except ValueError:
                minimum = 0
            if minimum > self.expires:
                self.expires = minimum
                self._next_at = now
                self.state = RegistrationState.REGISTERING
                return self.poll(now)
        self._fail(now, f"{response.status} {response.reason}")
        return None

    def on_timeout(self, now: float) -> None:
        """The REGISTER transaction timed out (Timer F): no answer from the registrar."""
        if self._pending is None:
            return
        self._pending = None
        self._fail(now, "no response (timeout)")

    def _answer(self, pending: Request, response: Response) -> Request | None:
        header = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
        try:
            challenge = select_challenge(response.headers.get_all(header))
        except DigestError:
            return None
        if self.realm is not None and challenge.realm != self.realm:
            return None
        self._challenges += 1
        if self._challenges > MAX_CHALLENGES or (self._challenges > 1 and not challenge.stale):
            return None
        try:
            retry = authorize_request(
                pending, response, username=self.username, password=self.password, ids=self.ids
            )
        except DigestError:
            return None
        self._cseq = retry.cseq.seq
        return retry

    def _granted(self, response: Response) -> int:
        """The expiry the registrar granted our contact (§10.2.4): its Contact's ``expires``, else
        the Expires header, else what we asked for."""
        try:
            for contact in response.contacts:
                if contact.uri.equivalent(self.contact.uri) or (
                    contact.uri.user == self.contact.uri.user and contact.uri.host == self.contact.uri.host
                ):
                    value = contact.param("expires")
                    if value is not None and value.strip().isdigit():
                        return int(value)
            header = response.headers.get("Expires")
            if header is not None and header.strip().isdigit():
                return int(header.strip())
        except SipParseError:
            pass
        return self.expires

    def _fail(self, now: float, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self.state = RegistrationState.FAILED
        if self.registered_until is not None and now >= self.registered_until:
            self.registered_until = None
        self._next_at = None if self._stopped else now + retry_delay(self.failures)
