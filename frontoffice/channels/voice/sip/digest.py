"""HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760): server and client.

The server is stateless about challenges: a nonce is ``timestamp.random.mac`` where the MAC is an
HMAC of the rest under a secret we hold, so any node with the secret can check it and its age without
a shared store (RFC 7616 §3.3 suggests exactly this construction). The only state is the highest
nonce-count seen per live nonce, which is what stops replays (RFC 7616 §3.4.1, §5.4).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from .builders import IdGenerator, build_response, new_branch, random_id
from .exceptions import DigestError, SipParseError
from .headers import WSP, parse_cseq, quote, split_list, unquote
from .message import Headers, Request, Response
from .uri import parse_uri

__all__ = [
    "AuthOutcome",
    "AuthResult",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "answer_challenge",
    "authorize_request",
    "digest_ha1",
    "digest_response",
    "select_challenge",
]

# RFC 8760 §2 / RFC 7616 §3.7: the algorithms we compute, strongest first (our client preference).
_HASHES: dict[str, Callable[[bytes], str]] = {
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
    "SHA-256-SESS": lambda data: hashlib.sha256(data).hexdigest(),
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "MD5-SESS": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
}
_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")

# RFC 7616 §5.7 leaves nonce lifetime to the server; five minutes covers a REGISTER retried after a
# 401 on a slow link while keeping a captured nonce useless soon after.
DEFAULT_NONCE_LIFETIME = 300.0
# A nonce-count is 8 hex digits (RFC 7616 §3.4).
_NC_DIGITS = 8


def _hash(algorithm: str, text: str) -> str:
    return _HASHES[algorithm.upper()](text.encode("utf-8"))


def digest_ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)`` (RFC 7616 §3.4.2): what a registrar may store instead of the
    password, one value per algorithm (RFC 8760 §2.1 names MD5 and SHA-256 for SIP)."""
    algo = algorithm.upper().removesuffix("-SESS")
    if algo not in _HASHES:
        raise DigestError(f"Unsupported digest algorithm {algorithm}")
    return _hash(algo, f"{username}:{realm}:{password}")


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str | None = None,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    ha1: str | None = None,
) -> str:
    """Compute the ``response`` value (RFC 7616 §3.4.1-3.4.3; RFC 2617 §3.2.2 for no qop).

    Give either ``password`` or a precomputed ``ha1`` (see :func:`digest_ha1`).
    """
    algo = algorithm.upper()
    if algo not in _HASHES:
        raise DigestError(f"Unsupported digest algorithm {algorithm}")
    if ha1 is None:
        if password is None:
            raise DigestError("Need a password or an HA1")
        ha1 = _hash(algo, f"{username}:{realm}:{password}")
    if algo.endswith("-SESS"):
        if cnonce is None:
            raise DigestError("Session algorithm needs a cnonce")
        ha1 = _hash(algo, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _hash(algo, f"{method}:{uri}")
    if qop is None:
        # RFC 2069 compatibility, kept by RFC 2617/3261 for legacy MD5 phones.
        return _hash(algo, f"{ha1}:{nonce}:{ha2}")
    if qop != "auth":
        raise DigestError(f"Unsupported qop {qop}")
    if nc is None or cnonce is None:
        raise DigestError("qop=auth needs nc and cnonce")
    return _hash(algo, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


ResponseFunction = Callable[..., str]
"""Computes a digest ``response`` from keyword arguments: :func:`digest_response`, or in tests a
wrapper that records what it was given (to show both failure paths do the same work)."""


def _same_uri(a: str, b: str) -> bool:
    """Digest-uri versus Request-URI: equal text, or equivalent URIs (RFC 3261 §19.1.4)."""
    if a == b:
        return True
    try:
        return parse_uri(a).equivalent(parse_uri(b))
    except SipParseError:
        return False


def _parse_auth_params(value: str, what: str) -> dict[str, str]:
    scheme, _, rest = value.strip(WSP).partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"{what} is not a Digest {what.lower()}")
    params: dict[str, str] = {}
    try:
        for item in split_list(rest):
            name, eq, raw = item.partition("=")
            if not eq:
                raise DigestError(f"Malformed {what} parameter")
            params[name.strip(WSP).lower()] = unquote(raw.strip(WSP))
    except SipParseError as exc:
        raise DigestError(f"Malformed {what}: {exc.reason}") from None
    return params


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        """Parse a challenge header value; raise :class:`DigestError` if it is not a usable Digest."""
        params = _parse_auth_params(value, "Challenge")
        if "realm" not in params or "nonce" not in params:
            raise DigestError("Challenge lacks realm or nonce")
        qop = tuple(q.strip(WSP) for q in params["qop"].split(",")) if "qop" in params else ()
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=params.get("algorithm", "MD5"),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}", f"algorithm={self.algorithm}"]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An ``Authorization``/``Proxy-Authorization`` Digest credential."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        """Parse a credential header value."""
        p = _parse_auth_params(value, "Credentials")
        try:
            return cls(
                username=p["username"],
                realm=p["realm"],
                nonce=p["nonce"],
                uri=p["uri"],
                response=p["response"],
                algorithm=p.get("algorithm", "MD5"),
                qop=p.get("qop"),
                nc=p.get("nc"),
                cnonce=p.get("cnonce"),
                opaque=p.get("opaque"),
            )
        except KeyError as exc:
            raise DigestError(f"Credentials lack {exc.args[0]}") from None

    def __str__(self) -> str:
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


class AuthOutcome(Enum):
    """Result of checking a credential."""

    OK = "ok"
    STALE = "stale"  # right password, old or unknown nonce: re-challenge with stale=true
    FAILED = "failed"  # wrong, malformed, replayed or missing: re-challenge (or 403)


@dataclass(frozen=True, slots=True)
class AuthResult:
    """What :meth:`DigestAuthenticator.verify` decided, and why."""

    outcome: AuthOutcome
    username: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the request is authenticated."""
        return self.outcome is AuthOutcome.OK


PasswordLookup = Callable[[str], str | None]
Ha1Lookup = Callable[[str, str], str | None]
"""``(username, algorithm) -> HA1 hex`` for registrars that store HA1 values instead of passwords."""


class DigestAuthenticator:
    """Digest server side: issue challenges and verify credentials for one realm.

    ``secret`` signs nonces (keep it stable across nodes and restarts); ``ids`` supplies the random
    part of nonces and ``now`` is always passed in, so tests are deterministic.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        nonce_lifetime: float = DEFAULT_NONCE_LIFETIME,
        allow_legacy: bool = True,
        ids: IdGenerator = random_id,
        compute_response: ResponseFunction = digest_response,
    ) -> None:
        self.realm = realm
        self.algorithms = tuple(a.upper() for a in algorithms)
        for algorithm in self.algorithms:
            if algorithm not in _HASHES or algorithm.endswith("-SESS"):
                raise DigestError(f"Unsupported server algorithm {algorithm}")
        self.nonce_lifetime = nonce_lifetime
        self.allow_legacy = allow_legacy
        self._secret = secret
        self._ids = ids
        self._compute_response = compute_response
        # An unknown user is checked against a dummy HA1 of the same algorithm and size as a real one,
        # so "no such user" costs the same hashing as "wrong password" and the answer's timing does not
        # tell which usernames exist. Derived from the secret: not guessable, the same on every node.
        self._dummy_ha1 = {
            algorithm: _hash(
                algorithm, hmac.new(secret, f"dummy-ha1:{algorithm}".encode(), "sha256").hexdigest()
            )
            for algorithm in self.algorithms
        }
        self._seen_nc: dict[str, tuple[int, float]] = {}
        self._next_prune = float("-inf")

    def _mac(self, stamp: str, salt: str) -> str:
        message = f"{stamp}:{salt}:{self.realm}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:32]

    def new_nonce(self, now: float) -> str:
        """A fresh signed nonce carrying ``now`` (milliseconds, hex)."""
        stamp = format(max(0, int(now * 1000)), "x")
        salt = self._ids().replace(".", "-")
        return f"{stamp}.{salt}.{self._mac(stamp, salt)}"

    def _nonce_issued_at(self, nonce: str) -> float | None:
        parts = nonce.split(".")
        if len(parts) != 3:
            return None
        stamp, salt, mac = parts
        if not hmac.compare_digest(mac, self._mac(stamp, salt)):
            return None
        try:
            return int(stamp, 16) / 1000
        except ValueError:
            return None

    def challenges(self, now: float, *, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per algorithm, preferred first (RFC 8760 §2.4), sharing one nonce."""
        nonce = self.new_nonce(now)
        return [
            DigestChallenge(realm=self.realm, nonce=nonce, algorithm=a, qop=("auth",), stale=stale)
            for a in self.algorithms
        ]

    def challenge_response(
        self, request: Request, now: float, *, proxy: bool = False, stale: bool = False
    ) -> Response:
        """A 401 (or 407 for a proxy) carrying the challenges (RFC 3261 §22.1)."""
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        return build_response(
            request,
            407 if proxy else 401,
            extra_headers=[(header, str(c)) for c in self.challenges(now, stale=stale)],
            ids=self._ids,
        )

    def _prune(self, now: float) -> None:
        # Expired nonces are answered "stale" before this table is consulted, so their counts can go;
        # sweeping once per lifetime keeps the table at about two lifetimes of issued nonces.
        if now < self._next_prune:
            return
        self._next_prune = now + self.nonce_lifetime
        expired = [n for n, (_, until) in self._seen_nc.items() if until <= now]
        for nonce in expired:
            del self._seen_nc[nonce]

    def verify(
        self,
        value: str,
        *,
        method: str,
        password_for: PasswordLookup | None = None,
        now: float,
        request_uri: str | None = None,
        ha1_for: Ha1Lookup | None = None,
    ) -> AuthResult:
        """Check one credential header value for ``method``.

        Secrets come from ``password_for`` (plain passwords) or ``ha1_for`` (stored HA1 per algorithm).
        """
        try:
            cred = DigestCredentials.parse(value)
        except DigestError as exc:
            return AuthResult(AuthOutcome.FAILED, reason=str(exc))
        user = cred.username
        algorithm = cred.algorithm.upper()
        if cred.realm != self.realm:
            return AuthResult(AuthOutcome.FAILED, user, "Wrong realm")
        if algorithm not in self.algorithms:
            return AuthResult(AuthOutcome.FAILED, user, "Algorithm not offered")
        if request_uri is not None and not _same_uri(cred.uri, request_uri):
            # RFC 7616 §3.4.6: the digest-uri must be the request target.
            return AuthResult(AuthOutcome.FAILED, user, "URI mismatch")
        issued = self._nonce_issued_at(cred.nonce)
        if issued is None:
            return AuthResult(AuthOutcome.FAILED, user, "Nonce not ours")
        password = password_for(user) if password_for is not None else None
        ha1 = ha1_for(user, algorithm) if ha1_for is not None and password is None else None
        known = password is not None or ha1 is not None
        if not known:
            ha1 = self._dummy_ha1[algorithm]  # same work as a wrong password (see __init__)
        if cred.qop is None:
            if not self.allow_legacy or algorithm != "MD5":
                return AuthResult(AuthOutcome.FAILED, user, "qop required")
            nc_value = 0
        elif cred.qop != "auth":
            return AuthResult(AuthOutcome.FAILED, user, "Unsupported qop")
        elif (
            cred.nc is None
            or len(cred.nc) != _NC_DIGITS
            or not all(c in "0123456789abcdefABCDEF" for c in cred.nc)
            or not cred.cnonce
        ):
            return AuthResult(AuthOutcome.FAILED, user, "Bad nc or cnonce")
        else:
            nc_value = int(cred.nc, 16)
        try:
            expected = self._compute_response(
                algorithm=algorithm,
                username=user,
                realm=self.realm,
                password=password,
                method=method,
                uri=cred.uri,
                nonce=cred.nonce,
                qop=cred.qop,
                nc=cred.nc,
                cnonce=cred.cnonce,
                ha1=ha1,
            )
        except DigestError as exc:
            return AuthResult(AuthOutcome.FAILED, user, str(exc))
        matches = hmac.compare_digest(expected.lower(), cred.response.lower())
        if not known:
            return AuthResult(AuthOutcome.FAILED, user, "Unknown user")
        if not matches:
            return AuthResult(AuthOutcome.FAILED, user, "Wrong response")
        # The password is right from here on; freshness decides between OK and STALE (RFC 7616 §3.3).
        if now - issued > self.nonce_lifetime or issued > now + 1.0:
            return AuthResult(AuthOutcome.STALE, user, "Nonce expired")
        if cred.qop is None:
            return AuthResult(AuthOutcome.OK, user)
        self._prune(now)
        seen = self._seen_nc.get(cred.nonce)
        if seen is None:
            if nc_value != 1:
                # We lost track of this nonce (restart, other node): make the client take a new one.
                return AuthResult(AuthOutcome.STALE, user, "Unknown nonce count")
        elif nc_value <= seen[0]:
            return AuthResult(AuthOutcome.FAILED, user, "Replayed nonce count")
        self._seen_nc[cred.nonce] = (nc_value, issued + self.nonce_lifetime)
        return AuthResult(AuthOutcome.OK, user)

    def authenticate(
        self,
        request: Request,
        now: float,
        password_for: PasswordLookup | None = None,
        *,
        proxy: bool = False,
        ha1_for: Ha1Lookup | None = None,
    ) -> AuthResult:
        """Verify the credential in ``request`` meant for our realm (RFC 3261 §22.4)."""
        header = "Proxy-Authorization" if proxy else "Authorization"
        values = request.headers.get_all(header)
        if not values:
            return AuthResult(AuthOutcome.FAILED, reason="No credentials")
        result = AuthResult(AuthOutcome.FAILED, reason="No credentials for our realm")
        for value in values:
            try:
                realm = DigestCredentials.parse(value).realm
            except DigestError:
                continue
            if realm == self.realm:
                result = self.verify(
                    value,
                    method=request.method,
                    password_for=password_for,
                    now=now,
                    request_uri=str(request.uri),
                    ha1_for=ha1_for,
                )
                if result.ok:
                    return result
        return result


def select_challenge(values: Iterable[str]) -> DigestChallenge:
    """Pick the challenge to answer: the strongest algorithm we support (SHA-256 over MD5).

    RFC 8760 §2.4 has the UAC take the topmost supported challenge "unless a local policy dictates
    otherwise"; our policy is the strongest algorithm, so a middlebox reordering the challenges cannot
    downgrade us to MD5 while SHA-256 is offered. Unparseable or foreign challenges are skipped.
    """
    best: tuple[int, DigestChallenge] | None = None
    for value in values:
        try:
            challenge = DigestChallenge.parse(value)
        except DigestError:
            continue
        algorithm = challenge.algorithm.upper()
        if algorithm not in _PREFERENCE or (challenge.qop and "auth" not in challenge.qop):
            continue
        rank = _PREFERENCE.index(algorithm)
        if best is None or rank < best[0]:
            best = (rank, challenge)
    if best is None:
        raise DigestError("No supported Digest challenge")
    return best[1]


def answer_challenge(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> DigestCredentials:
    """Compute credentials for ``challenge`` (qop=auth when offered, else legacy RFC 2069 form)."""
    qop = "auth" if "auth" in challenge.qop else None
    nc_text = f"{nc:08x}" if qop else None
    response = digest_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop or challenge.algorithm.upper().endswith("-SESS") else None,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop else None,
        opaque=challenge.opaque,
    )


def authorize_request(
    request: Request,
    challenge_response: Response,
    *,
    username: str,
    password: str,
    ids: IdGenerator = random_id,
) -> Request:
    """The retry of ``request`` answering a 401/407 (RFC 3261 §22.2, §8.1.3.5).

    Same Call-ID, From tag and To; CSeq incremented; a new branch since it is a new transaction.
    """
    if challenge_response.status == 407:
        challenge_header, credential_header = "Proxy-Authenticate", "Proxy-Authorization"
    elif challenge_response.status == 401:
        challenge_header, credential_header = "WWW-Authenticate", "Authorization"
    else:
        raise DigestError("Not a 401/407 response")
    challenge = select_challenge(challenge_response.headers.get_all(challenge_header))
    uri = str(request.uri)
    credentials = answer_challenge(
        challenge, username=username, password=password, method=request.method, uri=uri, cnonce=ids()
    )
    headers = Headers()
    cseq = parse_cseq(request.headers.get("CSeq") or "")
    for name, value in request.headers:
        if name == "Via" and not any(n == "Via" for n, _ in headers):
            top = request.top_via
            headers.add("Via", str(top.with_param("branch", new_branch(ids))))
        elif name == "Via":
            continue
        elif name == "CSeq":
            headers.add("CSeq", f"{cseq.seq + 1} {cseq.method}")
        elif name == credential_header:
            # Replace credentials for the same realm, keep others (several proxies may challenge).
            try:
                if DigestCredentials.parse(value).realm == challenge.realm:
                    continue
            except DigestError:
                pass
            headers.add(name, value)
        else:
            headers.add(name, value)
    headers.add(credential_header, str(credentials))
    return Request(method=request.method, uri=request.uri, headers=headers, body=request.body)
