"""The registrar (RFC 3261 §10.3) for agents' phones, with throttling and a ban list. Sans-IO: every
method takes ``now``; account look-ups are done by the caller and passed in.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .sip import (
    AuthOutcome,
    AuthResult,
    Destination,
    DigestAuthenticator,
    DigestCredentials,
    DigestError,
    NameAddress,
    Request,
    Response,
    SipParseError,
    Via,
    build_request,
    build_response,
    parse_name_addr,
)
from .sip.headers import split_list

__all__ = ["Binding", "Registrar", "RegistrationLimits"]

# User-Agent prefixes of SIP scanners seen in the wild (SIPVicious, sipcli, VaxSIPUserAgent...):
# they brute-force extensions, so their requests are dropped unanswered.
SCANNER_USER_AGENTS = ("friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "sip-scan", "sipsak")


@dataclass(frozen=True, slots=True)
class RegistrationLimits:
    """Registrar policy; the defaults follow common practice (Kamailio, Asterisk)."""

    # RFC 3261 §10.2.1.1: 3600 s is the suggested default when the phone names none.
    default_expires: int = 3600
    # RFC 3261 §10.3 step 7: we may answer 423 below a floor; 60 s keeps NAT-keepalive re-registers.
    min_expires: int = 60
    max_expires: int = 3600
    # Failed authentications from one address within ``failure_window_s`` before it is banned.
    max_failures: int = 5
    failure_window_s: float = 60.0
    ban_s: float = 600.0
    # Phones of one agent (desk phone + softphone); more is a misconfiguration or an attack.
    max_bindings_per_agent: int = 5


@dataclass(slots=True)
class Binding:
    """One registered contact of an agent's phone."""

    user_id: int
    username: str
    contact: NameAddress
    source: Destination
    expires_at: float
    call_id: str
    cseq: int
    # When this phone registered (a refresh - same Call-ID, RFC 3261 §10.2.4 - keeps the time).
    registered_at: float = 0.0
    # Qualify (OPTIONS keepalive): whether the phone answered the last one, and whether one is out.
    reachable: bool = True
    qualifying: bool = False


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)


class Registrar:
    """Bindings of agents' phones plus the authentication policy around REGISTER."""

    def __init__(
        self,
        authenticator: DigestAuthenticator,
        *,
        limits: RegistrationLimits | None = None,
        banned_networks: Iterable[str] = (),
    ) -> None:
        self.authenticator = authenticator
        self.limits = limits or RegistrationLimits()
        self._bindings: dict[int, list[Binding]] = {}
        self._failures: dict[str, _Failures] = {}
        self._banned_until: dict[str, float] = {}
        self._networks = [ipaddress.ip_network(n, strict=False) for n in banned_networks]
        self._unreachable_agents: set[int] = set()

    # ------------------------------------------------------------ bans and throttling
    def is_banned(self, host: str, now: float) -> bool:
        """True if requests from ``host`` must be dropped unanswered."""
        until = self._banned_until.get(host)
        if until is not None:
            if until > now:
                return True
            del self._banned_until[host]
            self._failures.pop(host, None)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    @staticmethod
    def is_scanner(request: Request) -> bool:
        agent = (request.headers.get("User-Agent") or "").lower()
        return agent.startswith(SCANNER_USER_AGENTS)

    def ban(self, host: str, now: float) -> None:
        self._banned_until[host] = now + self.limits.ban_s

    def record_failure(self, host: str, now: float) -> bool:
        """Count a failed authentication; True when ``host`` is now banned."""
        entry = self._failures.setdefault(host, _Failures())
        entry.times.append(now)
        while entry.times and entry.times[0] <= now - self.limits.failure_window_s:
            entry.times.popleft()
        if len(entry.times) >= self.limits.max_failures:
            self.ban(host, now)
            return True
        return False

    # ------------------------------------------------------------ REGISTER
    @staticmethod
    def claimed_username(request: Request) -> str | None:
        """The username in the request's credentials, to look the account up before :meth:`register`."""
        for value in request.headers.get_all("Authorization"):
            try:
                return DigestCredentials.parse(value).username
            except DigestError:
                continue
        return None

    def authenticate(
        self, request: Request, now: float, ha1: dict[str, str] | None, username: str
    ) -> AuthResult:
        """Check the credentials against the account's stored HA1 values."""

        def lookup(user: str, algorithm: str) -> str | None:
            return ha1.get(algorithm) if ha1 is not None and user == username else None

        if not request.headers.get_all("Authorization"):
            return AuthResult(AuthOutcome.FAILED, reason="No credentials")
        return self.authenticator.authenticate(request, now, ha1_for=lookup)

    def challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        return self.authenticator.challenge_response(request, now, stale=stale)

    def register(
        self, request: Request, source: Destination, user_id: int, username: str, now: float
    ) -> Response:
        """Apply an authenticated REGISTER (RFC 3261 §10.3 steps 6-8) and build the answer."""
        try:
            to_user = request.to.uri.user
            contacts_raw = request.headers.get_all("Contact")
            header_expires = _expires(request.headers.get("Expires"))
        except SipParseError as exc:
            return build_response(request, 400, exc.reason)
        if to_user != username:
            # §10.3 step 6: the authenticated user must be allowed to register this address of record.
            return build_response(request, 403, "Not your address of record")
        bindings = [b for b in self._bindings.get(user_id, []) if b.expires_at > now]
        if contacts_raw == ["*"]:
            # §10.3 step 6: "*" removes every binding, only with Expires: 0.
            if header_expires != 0:
                return build_response(request, 400, "Wildcard needs Expires: 0")
            self._bindings.pop(user_id, None)
            return build_response(request, 200)
        try:
            contacts = [parse_name_addr(c) for value in contacts_raw for c in split_list(value)]
        except SipParseError as exc:
            return build_response(request, 400, exc.reason)
        for contact in contacts:
            expires = _expires(contact.param("expires"))
            if expires is None:
                expires = header_expires if header_expires is not None else self.limits.default_expires
            previous = [b for b in bindings if b.contact.uri.equivalent(contact.uri)]
            registered_at = now
            if previous and previous[0].call_id == request.call_id:
                registered_at = previous[0].registered_at  # a refresh, not a new registration
            bindings = [b for b in bindings if not b.contact.uri.equivalent(contact.uri)]
            if expires == 0:
                continue
            if expires < self.limits.min_expires:
                return build_response(
                    request, 423, extra_headers=[("Min-Expires", str(self.limits.min_expires))]
                )
            expires = min(expires, self.limits.max_expires)
            bindings.append(
                Binding(
                    user_id=user_id,
                    username=username,
                    contact=contact.without_params(),
                    source=source,
                    expires_at=now + expires,
                    call_id=request.call_id,
                    cseq=request.cseq.seq,
                    registered_at=registered_at,
                )
            )
        if len(bindings) > self.limits.max_bindings_per_agent:
            bindings = bindings[-self.limits.max_bindings_per_agent :]
        if bindings:
            self._bindings[user_id] = bindings
            if any(b.reachable for b in bindings):
                self._unreachable_agents.discard(user_id)  # a phone that registers is there
        else:
            self._bindings.pop(user_id, None)
        # §10.3 step 8: the 200 lists every current binding with its remaining lifetime.
        extra = [
            ("Contact", str(b.contact.with_param("expires", str(max(0, int(b.expires_at - now))))))
            for b in bindings
        ]
        return build_response(request, 200, extra_headers=extra)

    def restore(self, bindings: Iterable[Binding], now: float) -> None:
        """Take registrations made with another voice node (or before a restart), read from the
        database: the phones are served without a new REGISTER. A binding this registrar already has
        for the same contact is kept (it is at least as recent)."""
        for binding in bindings:
            if binding.expires_at <= now:
                continue
            mine = self._bindings.setdefault(binding.user_id, [])
            if any(b.contact.uri.equivalent(binding.contact.uri) for b in mine):
                continue
            if len(mine) < self.limits.max_bindings_per_agent:
                mine.append(binding)

    # ------------------------------------------------------------ look-ups
    def bindings(self, user_id: int, now: float) -> list[Binding]:
        """The agent's live bindings, the most recently registered phone first (not the longest
        lived: an old desk phone with a long Expires must not outrank a softphone registered later).
        The B2BUA rings them all at once; the order is the order the INVITEs leave in."""
        live = [b for b in self._bindings.get(user_id, []) if b.expires_at > now]
        return sorted(live, key=lambda b: b.registered_at, reverse=True)

    def has_binding_from(self, host: str, now: float) -> bool:
        """True when some live registration came from ``host`` (a phone may call from there)."""
        return any(
            b.source.host == host and b.expires_at > now
            for bindings in self._bindings.values()
            for b in bindings
        )

    # ------------------------------------------------------------ qualify (OPTIONS to each phone)
    def qualify_due(self, now: float) -> list[Binding]:
        """Live bindings to send an OPTIONS to now (one at a time per binding), marked as qualifying."""
        due = [
            b
            for bindings in self._bindings.values()
            for b in bindings
            if b.expires_at > now and not b.qualifying
        ]
        for binding in due:
            binding.qualifying = True
        return due

    @staticmethod
    def options_for(binding: Binding, via: Via, from_addr: NameAddress) -> Request:
        """The OPTIONS that asks ``binding``'s phone whether it is there (RFC 3261 §11.1: any response
        will do; its absence within the transaction timeout, Timer F, means unreachable)."""
        return build_request(
            "OPTIONS", binding.contact.uri, from_addr=from_addr, to_addr=binding.contact, via=via
        )

    def qualified(self, binding: Binding, reachable: bool) -> None:
        """The phone of ``binding`` answered its OPTIONS (``reachable``) or did not."""
        binding.qualifying = False
        binding.reachable = reachable

    def reachability_changes(self, now: float) -> list[tuple[int, bool]]:
        """Agents whose phones became all unreachable (``False``) or reachable again (``True``) since
        the last call. An agent without live bindings keeps the state they had: a registration that
        lapsed does not make an unreachable phone reachable; a new REGISTER does (it is reachable)."""
        changes: list[tuple[int, bool]] = []
        for user_id, bindings in self._bindings.items():
            live = [b for b in bindings if b.expires_at > now]
            if not live:
                continue
            unreachable = not any(b.reachable for b in live)
            if unreachable and user_id not in self._unreachable_agents:
                self._unreachable_agents.add(user_id)
                changes.append((user_id, False))
            elif not unreachable and user_id in self._unreachable_agents:
                self._unreachable_agents.discard(user_id)
                changes.append((user_id, True))
        return changes

    def is_reachable(self, user_id: int) -> bool:
        """False while every live phone of the agent failed to answer its last OPTIONS."""
        return user_id not in self._unreachable_agents

    def expire(self, now: float) -> None:
        """Drop expired bindings and bans."""
        for user_id in list(self._bindings):
            live = [b for b in self._bindings[user_id] if b.expires_at > now]
            if live:
                self._bindings[user_id] = live
            else:
                del self._bindings[user_id]
        for host in [h for h, until in self._banned_until.items() if until <= now]:
            del self._banned_until[host]


def _expires(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():
        raise SipParseError("Bad expires value")
    # RFC 3261 §20.19: values above 2**32-1 are treated as 2**32-1; we cap far lower anyway.
    return min(int(text), 2**32 - 1)
