"""Dialogs (RFC 3261 §12), in-dialog requests, CANCEL (§9.1), redirects (§8.1.3.4), REFER
(RFC 3515) and session timers (RFC 4028)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from .builders import IdGenerator, new_branch, random_id
from .exceptions import DialogError, SipParseError
from .headers import WSP, NameAddress, Via, parse_params, parse_uint
from .message import Headers, Request, Response
from .sdp import SessionDescription, with_direction
from .uri import Uri

__all__ = [
    "Dialog",
    "DialogId",
    "DialogState",
    "SessionExpires",
    "SessionTimer",
    "build_cancel",
    "parse_min_se",
    "parse_session_expires",
    "redirect_targets",
    "session_timer_headers",
    "uas_session_expires",
]

# RFC 3261 §12.1: methods whose 2xx/1xx-with-tag creates a dialog (INVITE; SUBSCRIBE/REFER via 6665).
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
# RFC 3261 §12.2: target refresh requests replace the remote target (plus UPDATE, RFC 3311).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
DEFAULT_MAX_FORWARDS = 70


class DialogState(Enum):
    """RFC 3261 §12: early (1xx with To tag), confirmed (2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus local and remote tags (RFC 3261 §12)."""

    call_id: str
    local_tag: str
    remote_tag: str


def _bare(address: NameAddress) -> NameAddress:
    return address.without_params()


def _local_via(via: Via) -> Via:
    # Keep only what identifies us; branch, received and rport belong to one request.
    return Via(transport=via.transport, host=via.host, port=via.port)


@dataclass(eq=False)
class Dialog:
    """The state of one dialog and the construction of requests within it."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddress
    remote_uri: NameAddress
    remote_target: Uri
    via: Via
    route_set: list[NameAddress] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    local_contact: NameAddress | None = None
    secure: bool = False
    state: DialogState = DialogState.EARLY

    @property
    def id(self) -> DialogId:
        """The dialog identifier."""
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # ------------------------------------------------------------ creation

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAC gets from a 1xx (with To tag) or 2xx to its request (§12.1.2)."""
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if remote_tag is None or local_tag is None or not 100 < response.status < 300:
            raise DialogError("Response does not establish a dialog")
        contacts = response.contacts
        local_contacts = request.contacts
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_bare(request.from_),
            remote_uri=_bare(request.to),
            remote_target=contacts[0].uri if contacts else request.uri,
            via=_local_via(request.top_via),
            # §12.1.2: the route set is the Record-Route of the response, in reverse order.
            route_set=list(reversed(response.record_routes)),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_contact=local_contacts[0] if local_contacts else None,
            secure=request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    @classmethod
    def from_uas(cls, request: Request, response: Response, *, via: Via) -> Dialog:
        """The dialog a UAS gets when it answers ``request`` with ``response`` (§12.1.1).

        ``via`` is our own sent-by and transport for requests we will send in the dialog.
        """
        local_tag = response.to.tag
        remote_tag = request.from_.tag
        if local_tag is None or not 100 < response.status < 300:
            raise DialogError("Response does not establish a dialog")
        if remote_tag is None:
            # RFC 2543 peers may omit the From tag; the dialog then has an empty remote tag (§12.1.1).
            remote_tag = ""
        contacts = request.contacts
        if not contacts:
            raise DialogError("Dialog-creating request lacks Contact", status_code=400)
        local_contacts = response.contacts
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_bare(request.to),
            remote_uri=_bare(request.from_),
            remote_target=contacts[0].uri,
            via=_local_via(via),
            route_set=request.record_routes,  # §12.1.1: in order
            local_seq=0,
            remote_seq=request.cseq.seq,
            local_contact=local_contacts[0] if local_contacts else None,
            secure=request.uri.scheme == "sips",
            state=DialogState.CONFIRMED if response.is_success else DialogState.EARLY,
        )

    # ------------------------------------------------------------ matching and updates

    def matches_response(self, response: Response) -> bool:
        """True if ``response`` (to our request) belongs to this dialog."""
        try:
            return (
                response.call_id == self.call_id
                and response.from_.tag == self.local_tag
                and (response.to.tag or "") == self.remote_tag
            )
        except SipParseError:
            return False

    def matches_request(self, request: Request) -> bool:
        """True if ``request`` (from the peer) belongs to this dialog (§12.2.2)."""
        try:
            return (
                request.call_id == self.call_id
                and request.to.tag == self.local_tag
                and (request.from_.tag or "") == self.remote_tag
            )
        except SipParseError:
            return False

    def update_from_response(self, response: Response) -> None:
        """Apply a response to a request we sent in (or while establishing) this dialog."""
        method = response.cseq.method
        if self.state is DialogState.EARLY and method == "INVITE":
            if response.is_success:
                # RFC 3261 §13.2.2.4: the 2xx confirms the dialog and recomputes the route set.
                self.state = DialogState.CONFIRMED
                self.route_set = list(reversed(response.record_routes))
            elif response.is_final:
                self.state = DialogState.TERMINATED
                return
        if response.status == 481 or response.status == 408:
            # RFC 3261 §12.2.1.2: the dialog is gone at the peer.
            self.state = DialogState.TERMINATED
            return
        if method in TARGET_REFRESH and 100 < response.status < 300:
            contacts = response.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        if method == "BYE" and response.is_final:
            self.state = DialogState.TERMINATED

    def receive_request(self, request: Request) -> None:
        """Check and apply a request from the peer (§12.2.2).

        Raises :class:`DialogError` with status 500 when the CSeq is lower than the last one seen.
        """
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                raise DialogError("CSeq out of order", status_code=500)
            self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        if request.method == "BYE":
            self.state = DialogState.TERMINATED

    # ------------------------------------------------------------ building requests

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
        ids: IdGenerator = random_id,
    ) -> Request:
        """A request within the dialog (§12.2.1.1).

        CSeq is the next local number, except for ACK (pass the INVITE's number as ``cseq``).
        """
        if self.state is DialogState.TERMINATED and method not in ("ACK", "BYE"):
            raise DialogError("Dialog is terminated")
        if method == "ACK":
            if cseq is None:
                raise DialogError("ACK needs the CSeq of its INVITE")
            seq = cseq
        else:
            self.local_seq = self.local_seq + 1 if cseq is None else cseq
            seq = self.local_seq
        uri, routes = self._request_target()
        headers = Headers()
        headers.add("Via", str(self.via.with_param("branch", new_branch(ids))))
        headers.add("Max-Forwards", str(DEFAULT_MAX_FORWARDS))
        for route in routes:
            headers.add("Route", str(route))
        headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        remote = self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if self.local_contact is not None and method in TARGET_REFRESH:
            headers.add("Contact", str(self.local_contact))
        for name, value in extra_headers:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        return Request(method=method, uri=uri, headers=headers, body=body)

    def _request_target(self) -> tuple[Uri, list[NameAddress]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if first.uri.has_param("lr"):
            # Loose routing (§12.2.1.1): Request-URI is the remote target, Route is the route set.
            return self.remote_target, list(self.route_set)
        # Strict routing: the first route becomes the Request-URI, the target goes last in Route.
        return first.uri.without_headers(), [*self.route_set[1:], NameAddress(self.remote_target)]

    def ack(
        self,
        invite_cseq: int,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        ids: IdGenerator = random_id,
    ) -> Request:
        """The ACK for a 2xx to INVITE (§13.2.2.4): same CSeq number, its own branch."""
        return self.create_request("ACK", body=body, content_type=content_type, cseq=invite_cseq, ids=ids)

    def bye(self, *, ids: IdGenerator = random_id, reason: str | None = None) -> Request:
        """BYE (§15.1.1); ``reason`` becomes a Reason header (RFC 3326) such as ``Q.850;cause=16``."""
        extra = [("Reason", reason)] if reason else []
        return self.create_request("BYE", extra_headers=extra, ids=ids)

    def reinvite(self, sdp: SessionDescription, *, ids: IdGenerator = random_id) -> Request:
        """A re-INVITE carrying ``sdp`` as the new offer (§14.1)."""
        return self.create_request("INVITE", body=sdp.serialize(), content_type="application/sdp", ids=ids)

    def hold(
        self, local_sdp: SessionDescription, *, inactive: bool = False, ids: IdGenerator = random_id
    ) -> tuple[Request, SessionDescription]:
        """Put the peer on hold: re-INVITE with ``a=sendonly`` (we play music) or ``a=inactive``
        (RFC 3264 §8.4). Returns the request and the new local SDP to remember."""
        sdp = with_direction(local_sdp, "inactive" if inactive else "sendonly")
        return self.reinvite(sdp, ids=ids), sdp

    def resume(
        self, local_sdp: SessionDescription, *, ids: IdGenerator = random_id
    ) -> tuple[Request, SessionDescription]:
        """Take the peer off hold: re-INVITE with ``a=sendrecv``."""
        sdp = with_direction(local_sdp, "sendrecv")
        return self.reinvite(sdp, ids=ids), sdp

    def refer(
        self,
        target: Uri | NameAddress,
        *,
        referred_by: NameAddress | None = None,
        ids: IdGenerator = random_id,
    ) -> Request:
        """REFER for a blind transfer (RFC 3515 §2.4.1; Referred-By from RFC 3892)."""
        refer_to = target if isinstance(target, NameAddress) else NameAddress(target)
        extra = [("Refer-To", str(refer_to))]
        if referred_by is not None:
            extra.append(("Referred-By", str(referred_by)))
        return self.create_request("REFER", extra_headers=extra, ids=ids)

    def notify_refer_progress(
        self,
        status: int,
        reason: str,
        *,
        expires: int = 60,
        ids: IdGenerator = random_id,
    ) -> Request:
        """NOTIFY reporting the referred call's progress as ``message/sipfrag`` (RFC 3515 §2.4.4-5).

        A final status terminates the implicit subscription.
        """
        final = status >= 200
        state = "terminated;reason=noresource" if final else f"active;expires={expires}"
        body = f"SIP/2.0 {status} {reason}\r\n".encode()
        return self.create_request(
            "NOTIFY",
            body=body,
            content_type="message/sipfrag;version=2.0",
            extra_headers=[("Event", "refer"), ("Subscription-State", state)],
            ids=ids,
        )

    def options(self, *, ids: IdGenerator = random_id) -> Request:
        """An in-dialog OPTIONS, used as a keepalive to detect a dead peer (481/408 ends the dialog)."""
        return self.create_request("OPTIONS", ids=ids)


def build_cancel(request: Request) -> Request:
    """CANCEL for a pending ``request`` (RFC 3261 §9.1).

    Same Request-URI, Call-ID, To, From and CSeq number; one Via equal to the request's top Via (so
    it matches the same server transaction); Route copied.
    """
    if request.method == "ACK":
        raise DialogError("ACK cannot be cancelled")
    headers = Headers()
    headers.add("Via", str(request.top_via))
    headers.add("Max-Forwards", str(DEFAULT_MAX_FORWARDS))
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", request.headers.get("To") or "")
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{request.cseq.seq} CANCEL")
    return Request(method="CANCEL", uri=request.uri, headers=headers)


def _q_value(address: NameAddress) -> float:
    raw = address.param("q")
    try:
        q = float(raw) if raw is not None else 1.0
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def redirect_targets(response: Response) -> list[Uri]:
    """Contacts of a 3xx, highest q first, ties in message order (RFC 3261 §8.1.3.4, §16.6)."""
    if not 300 <= response.status < 400:
        raise DialogError("Not a redirect response")
    contacts = response.contacts
    ordered = sorted(enumerate(contacts), key=lambda item: (-_q_value(item[1]), item[0]))
    return [address.uri.without_headers() for _, address in ordered]


# RFC 4028 §4: Session-Expires MUST NOT be below 90 seconds; a higher Min-SE may raise the floor.
MIN_SESSION_EXPIRES = 90


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """``Session-Expires: delta-seconds[;refresher=uac|uas]`` (RFC 4028 §4)."""

    interval: int
    refresher: str | None = None

    def __str__(self) -> str:
        return f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)


def parse_session_expires(value: str) -> SessionExpires:
    """Parse a Session-Expires (or compact ``x``) value."""
    head, semi, rest = value.partition(";")
    interval = parse_uint(head, "Session-Expires", 2**32 - 1)
    refresher: str | None = None
    if semi:
        for name, param in parse_params(rest):
            if name.lower() == "refresher":
                if param is None or param.lower() not in ("uac", "uas"):
                    raise SipParseError("Invalid refresher")
                refresher = param.lower()
    return SessionExpires(interval, refresher)


def uas_session_expires(request: Request) -> SessionExpires | None:
    """The session timer a UAS's 2xx to ``request`` (INVITE, re-INVITE, UPDATE) agrees to (RFC 4028
    §9): the interval asked for (raised to our minimum) and the refresher it asked for, else the UAC
    (a UAS that supports timers may pick either; the UAC's choice is kept). ``None`` when the request
    asked for no session timer (then there is none: §9, also for a re-INVITE without one)."""
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    try:
        asked = parse_session_expires(value)
    except SipParseError:
        return None
    return SessionExpires(max(asked.interval, MIN_SESSION_EXPIRES), asked.refresher or "uac")


def session_timer_headers(request: Request) -> list[tuple[str, str]]:
    """What a UAS's 2xx to ``request`` (INVITE, UPDATE) says about session timers (RFC 4028 §9): the
    timer :func:`uas_session_expires` agrees to, and ``Require: timer`` when the UAC supports them.
    Nothing when it asked for no timer."""
    agreed = uas_session_expires(request)
    if agreed is None:
        return []
    headers = [("Session-Expires", str(agreed))]
    supported = (
        ",".join(request.headers.get_all("Supported")) + "," + ",".join(request.headers.get_all("Require"))
    )
    if "timer" in {tag.strip().lower() for tag in supported.split(",")}:
        headers.append(("Require", "timer"))
    return headers


def parse_min_se(value: str) -> int:
    """Parse a Min-SE value (delta-seconds, params ignored)."""
    return parse_uint(value.partition(";")[0].strip(WSP), "Min-SE", 2**32 - 1)


@dataclass(eq=False)
class SessionTimer:
    """When to refresh a session, or give up on it (RFC 4028 §10).

    ``we_refresh`` says whether we are the refresher. Call :meth:`refreshed` whenever a refresh
    (re-INVITE or UPDATE) succeeds.
    """

    interval: int
    we_refresh: bool
    last_refresh: float

    def refreshed(self, now: float, interval: int | None = None) -> None:
        """Record a successful refresh at ``now``, possibly with a renegotiated interval."""
        self.last_refresh = now
        if interval is not None:
            self.interval = interval

    def refresh_at(self) -> float:
        """RFC 4028 §10: the refresher sends its refresh at half the interval."""
        return self.last_refresh + self.interval / 2

    def expires_at(self) -> float:
        """RFC 4028 §10: without a refresh, BYE at interval minus min(32 s, interval/3)."""
        return self.last_refresh + self.interval - min(32.0, self.interval / 3)

    def refresh_due(self, now: float) -> bool:
        """True when we are the refresher and it is time to refresh."""
        return self.we_refresh and now >= self.refresh_at()

    def expired(self, now: float) -> bool:
        """True when the session has not been refreshed in time and should be torn down."""
        return now >= self.expires_at()

    def next_deadline(self) -> float:
        """The next instant at which :meth:`refresh_due` or :meth:`expired` can change."""
        return self.refresh_at() if self.we_refresh else self.expires_at()

    @classmethod
    def for_uas(cls, request: Request, *, now: float) -> SessionTimer | None:
        """The timer our 2xx to ``request`` agrees to (:func:`uas_session_expires`): we refresh when
        the agreed refresher is the UAS; ``None`` without one."""
        agreed = uas_session_expires(request)
        if agreed is None:
            return None
        return cls(interval=agreed.interval, we_refresh=agreed.refresher == "uas", last_refresh=now)

    @classmethod
    def negotiate(
        cls, response: Response, *, we_are_uac: bool, now: float, default_interval: int = 1800
    ) -> SessionTimer | None:
        """The timer agreed by a 2xx (RFC 4028 §7.2, §9): ``None`` when the peer did not use timers."""
        value = response.headers.get("Session-Expires")
        if value is None:
            return None
        se = parse_session_expires(value)
        interval = max(se.interval, MIN_SESSION_EXPIRES) if se.interval else default_interval
        refresher = se.refresher or "uac"
        return cls(interval=interval, we_refresh=(refresher == "uac") == we_are_uac, last_refresh=now)
