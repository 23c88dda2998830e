"""Users, passwords (argon2), browser sessions, API tokens and sign-in throttling."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Throttled,
    Unauthenticated,
)
from frontoffice.domain.model import Role
from frontoffice.store.tables import ApiToken, AuditEntry, Project, User, UserProject, WebSession

from . import scope
from .context import Actor, Clock, audit, decode_id_cursor, id_page, system_clock
from .schemas import (
    AuditOut,
    Page,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
    UserProjectsIn,
    UserProjectsOut,
)

__all__ = ["AuthService", "LoginThrottle", "SignIn", "generate_password"]

TOKEN_PREFIX = "fo_"
# 32 random bytes: guessing is hopeless, so a fast SHA-256 is the right hash (argon2 is for passwords).
TOKEN_BYTES = 32
TOKEN_CACHE_S = 30.0
# A token's last use is written at most this often (the token list shows it to the minute).
LAST_USED_EVERY = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of "no such user" and
# "wrong password" the same, so a sign-in attempt cannot probe which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def generate_password() -> str:
    """A random password for first-run admins: 16 URL-safe characters, about 96 bits."""
    return secrets.token_urlsafe(12)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The first wait after ``max_failures`` failed sign-ins of one (username, address) pair; each further
# failure doubles it, up to the counting window. Guessing slows to a few tries an hour, while the
# same user at another desk (another address) and other users at this address are never held up.
LOGIN_BACKOFF_BASE_S = 1.0
# Pairs remembered at most: a spraying attack (many usernames, many addresses) cannot grow memory
# without bound; the oldest forgotten pairs are those whose waits are over.
LOGIN_THROTTLE_MAX_PAIRS = 100_000


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    blocked_until: float


class LoginThrottle:
    """Slows down password guessing per (username, client address) pair, with exponential back-off.

    After ``max_failures`` failed sign-ins of one pair within ``window_s`` seconds of each other, that
    pair waits :data:`LOGIN_BACKOFF_BASE_S` before its next try, and twice as long after each further
    failure (at most ``window_s``); a success, or ``window_s`` without a failure, forgets the pair.
    There is no lock of a username alone or of an address alone: neither a stranger guessing a user's
    password from elsewhere nor a colleague mistyping behind the same proxy or NAT can lock anyone
    else out. The client address is the connection's, or the one a trusted proxy names
    (``trusted_proxies``; see ``web/client_address.py``).

    Kept in memory: it protects one node; a multi-node site should also rate-limit at its proxy.
    """

    def __init__(
        self, max_failures: int, window_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._now = monotonic
        self._pairs: dict[tuple[str, str], _Failures] = {}

    @staticmethod
    def _key(username: str, ip: str | None) -> tuple[str, str]:
        return (username.lower(), ip or "-")

    def check(self, username: str, ip: str | None) -> None:
        """Raise :class:`Throttled` (with the seconds to wait) while the pair must wait."""
        failures = self._pairs.get(self._key(username, ip))
        now = self._now()
        if failures is not None and now < failures.blocked_until:
            retry = max(1, math.ceil(failures.blocked_until - now))
            raise Throttled("Too many failed sign-in attempts; try again later", retry_after_s=retry)

    def failed(self, username: str, ip: str | None) -> None:
        key, now = self._key(username, ip), self._now()
        failures = self._pairs.get(key)
        if failures is None or now - failures.last > self.window_s:
            failures = self._pairs[key] = _Failures(0, now, now)
        failures.count += 1
        failures.last = now
        if failures.count >= self.max_failures:
            doublings = min(failures.count - self.max_failures, 62)
            delay = min(LOGIN_BACKOFF_BASE_S * 2.0**doublings, float(self.window_s))
            failures.blocked_until = now + delay
        if len(self._pairs) > LOGIN_THROTTLE_MAX_PAIRS:
            self._forget_old(now)

    def succeeded(self, username: str, ip: str | None) -> None:
        self._pairs.pop(self._key(username, ip), None)

    def _forget_old(self, now: float) -> None:
        done = [k for k, f in self._pairs.items() if f.blocked_until <= now]
        for key in done:
            del self._pairs[key]
        while len(self._pairs) > LOGIN_THROTTLE_MAX_PAIRS:  # all still waiting: drop the oldest
            del self._pairs[next(iter(self._pairs))]


class SignIn:
    """A successful sign-in: the session id (for the cookie) and its CSRF token."""

    def __init__(self, session_id: str, csrf_token: str, user: UserOut) -> None:
        self.session_id = session_id
        self.csrf_token = csrf_token
        self.user = user


class AuthService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        throttle: LoginThrottle,
        session_max_age_s: int = 12 * 3600,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.throttle = throttle
        self.session_max_age = timedelta(seconds=session_max_age_s)
        self.clock = clock
        # token hash -> (actor without ip, token id, monotonic end of caching, the token's expiry).
        # Integrations call many times a second; a revocation or user change on this node clears
        # the cache once committed (forget_tokens), on other nodes it takes effect within
        # TOKEN_CACHE_S.
        self._token_cache: dict[str, tuple[Actor, int, float, datetime | None]] = {}
        self._token_generation = 0

    # ------------------------------------------------------------------ users
    async def create_user(self, actor: Actor, data: UserIn) -> UserOut:
        actor.require("users.write")
        async with self.sessions.begin() as s:
            user = User(
                username=data.username,
                display_name=data.display_name or data.username,
                email=data.email,
                role=data.role.value,
                language=data.language,
                password_hash=_hasher.hash(data.password),
                created_at=self.clock(),
                password_changed_at=self.clock(),
            )
            s.add(user)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict(
                    "This username is taken", error_id="username-taken", username=data.username
                ) from None
            audit(s, actor, "user.create", "user", user.id, role=data.role.value, username=data.username)
            return UserOut.model_validate(user)

    async def update_user(self, actor: Actor, user_id: int, patch: UserPatch) -> UserOut:
        actor.require("users.write")
        async with self.sessions.begin() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            changes = patch.model_dump(exclude_unset=True)
            if "role" in changes and changes["role"] is not None:
                changes["role"] = changes["role"].value
            for name, value in changes.items():
                if value is not None:
                    setattr(user, name, value)
            if user.role == Role.ADMIN.value:  # administrators always see every project
                await s.execute(delete(UserProject).where(UserProject.user_id == user_id))
            if changes.get("is_active") is False:
                await s.execute(
                    update(WebSession).where(WebSession.user_id == user_id).values(expires_at=self.clock())
                )
            audit(s, actor, "user.update", "user", user_id, fields=sorted(changes))
            out = await _user_out(s, user)
        # After the commit: a look-up that read the user before it cannot cache it again (see
        # forget_tokens).
        self.forget_tokens()
        return out

    async def list_users(self, actor: Actor) -> list[UserOut]:
        actor.require("users.read")
        async with self.sessions() as s:
            users = list(await s.scalars(select(User).order_by(User.username)))
            limits: dict[int, list[int]] = {}
            for link in await s.scalars(select(UserProject).order_by(UserProject.project_id)):
                limits.setdefault(link.user_id, []).append(link.project_id)
        return [UserOut.model_validate(u).model_copy(update={"project_ids": limits.get(u.id)}) for u in users]

    async def set_own_language(self, actor: Actor, language: str) -> None:
        """Remember a signed-in user's UI language (chosen with the language switch)."""
        if language not in ("en", "ru"):
            raise InvalidInput("Unknown language", error_id="no-such-language", language=language)
        if actor.user_id is None:
            return
        async with self.sessions.begin() as s:
            await s.execute(update(User).where(User.id == actor.user_id).values(language=language))
        self.forget_tokens()

    async def get_user(self, actor: Actor, user_id: int) -> UserOut:
        if actor.user_id != user_id:
            actor.require("users.read")
        async with self.sessions() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            return await _user_out(s, user)

    async def user_projects(self, actor: Actor, user_id: int) -> UserProjectsOut:
        """The projects a user is limited to (``None``: all projects)."""
        actor.require("users.read")
        async with self.sessions() as s:
            if await s.get(User, user_id) is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            ids = await _project_ids(s, user_id)
        return UserProjectsOut(project_ids=None if ids is None else sorted(ids))

    async def set_user_projects(self, actor: Actor, user_id: int, data: UserProjectsIn) -> UserProjectsOut:
        """Limit a user to some projects, or lift the limit (``None``). Applies to the user's next
        requests and stream connections; an open WebSocket keeps the view it was opened with."""
        actor.require("users.write")
        wanted = sorted(set(data.project_ids)) if data.project_ids is not None else None
        async with self.sessions.begin() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            if wanted is not None and user.role == Role.ADMIN.value:
                raise InvalidInput(
                    "An administrator always sees all projects",
                    error_id="admin-sees-all-projects",
                    user_id=user_id,
                )
            if wanted:
                known = set(await s.scalars(select(Project.id).where(Project.id.in_(wanted))))
                missing = [p for p in wanted if p not in known]
                if missing:
                    raise NotFound("No such project", error_id="no-such-project", project_id=missing[0])
            await s.execute(delete(UserProject).where(UserProject.user_id == user_id))
            for project_id in wanted or ():
                s.add(UserProject(user_id=user_id, project_id=project_id))
            audit(s, actor, "user.projects", "user", user_id, project_ids=wanted)
        self.forget_tokens()
        return UserProjectsOut(project_ids=wanted)

    async def set_password(
        self, actor: Actor, username: str, new_password: str, *, current_password: str | None = None
    ) -> None:
        """Change a password: users change their own (with the current one); admins anyone's."""
        if len(new_password) < 10:
            raise InvalidInput("A password has at least 10 characters", error_id="password-too-short")
        async with self.sessions.begin() as s:
            user = await s.scalar(select(User).where(User.username == username))
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", username=username)
            if actor.user_id == user.id and not actor.via_token:
                if current_password is None or not _verify(user.password_hash, current_password):
                    raise Forbidden("The current password is wrong", error_id="wrong-password")
            else:
                actor.require("users.write")
            user.password_hash = _hasher.hash(new_password)
            user.password_changed_at = self.clock()
            # Changing a password signs every browser of that user out.
            await s.execute(
                update(WebSession).where(WebSession.user_id == user.id).values(expires_at=self.clock())
            )
            audit(s, actor, "user.password", "user", user.id)
        self.forget_tokens()

    async def reset_password(self, actor: Actor, user_id: int, new_password: str) -> None:
        """An administrator sets another user's password (they forgot it, or it leaked).

        Every browser session of that user ends in the same transaction, and the reset is audited as
        ``user.password_reset``. The user's API tokens stay: integrations keep running; revoke a
        leaked token separately. One's own password is changed with the current one
        (``POST /me/password``), not here (``400 own-password``).
        """
        actor.require("users.write")
        if actor.user_id == user_id:
            raise InvalidInput(
                "Change your own password with your current one, in your profile", error_id="own-password"
            )
        if len(new_password) < 10:
            raise InvalidInput("A password has at least 10 characters", error_id="password-too-short")
        async with self.sessions.begin() as s:
            user = await s.get(User, user_id)
            if user is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
            user.password_hash = _hasher.hash(new_password)
            user.password_changed_at = self.clock()
            await s.execute(
                update(WebSession).where(WebSession.user_id == user.id).values(expires_at=self.clock())
            )
            audit(s, actor, "user.password_reset", "user", user.id)

    async def count_users(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(User)) or 0)

    # ------------------------------------------------------------------ browser sessions
    async def sign_in(self, username: str, password: str, *, ip: str | None) -> SignIn:
        """Check a password; on success create a browser session. Failures never say which part was wrong."""
        self.throttle.check(username, ip)
        async with self.sessions.begin() as s:
            user = await s.scalar(select(User).where(User.username == username))
            ok = _verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
            if not ok or user is None or not user.is_active:
                self.throttle.failed(username, ip)
                raise Unauthenticated("Wrong username or password", error_id="bad-credentials")
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            self.throttle.succeeded(username, ip)
            now = self.clock()
            session = WebSession(
                id=secrets.token_urlsafe(32),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + self.session_max_age,
                ip=ip,
            )
            s.add(session)
            actor = Actor(user_id=user.id, role=Role(user.role), username=user.username, ip=ip)
            audit(s, actor, "user.sign_in", "user", user.id, now)
            return SignIn(session.id, session.csrf_token, await _user_out(s, user))

    async def session_actor(self, session_id: str, *, ip: str | None) -> tuple[Actor, str]:
        """The actor behind a browser session and its CSRF token; raises when expired or revoked."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(WebSession, User)
                    .join(User, User.id == WebSession.user_id)
                    .where(WebSession.id == session_id)
                )
            ).first()
            if row is None:
                raise Unauthenticated("Please sign in", error_id="not-authenticated")
            session, user = row
            if session.expires_at <= self.clock() or not user.is_active:
                raise Unauthenticated(
                    "Your session has expired; please sign in again", error_id="session-expired"
                )
            project_ids = await _project_ids(s, user.id, Role(user.role))
        actor = Actor(
            user_id=user.id,
            role=Role(user.role),
            username=user.username,
            ip=ip,
            language=user.language,
            project_ids=project_ids,
        )
        return actor, session.csrf_token

    async def sign_out(self, session_id: str) -> None:
        async with self.sessions.begin() as s:
            await s.execute(
                update(WebSession).where(WebSession.id == session_id).values(expires_at=self.clock())
            )

    # ------------------------------------------------------------------ API tokens
    async def create_token(
        self, actor: Actor, name: str | TokenIn, *, user_id: int | None = None
    ) -> TokenCreated:
        """Create a token for ``user_id`` (default: the actor). The secret is returned only here.

        ``name`` is the token's name or a whole :class:`TokenIn` (scopes, expiry, projects). A token
        acts with its owner's role and project limit, narrowed to its scopes and projects. A token
        may make tokens only with the ``admin`` scope, so a narrow token cannot widen itself.
        """
        data = name if isinstance(name, TokenIn) else TokenIn(name=name)
        owner = user_id if user_id is not None else actor.user_id
        if owner is None:
            raise InvalidInput("A token needs an owner", error_id="token-owner-required")
        if owner != actor.user_id:
            actor.require("tokens.write")
        if actor.scopes is not None and "admin" not in actor.scopes:
            raise Forbidden(
                "Only a token with the admin scope may create tokens",
                error_id="token-scope",
                refused="tokens.write",
            )
        if data.expires_at is not None and data.expires_at <= self.clock():
            raise InvalidInput("The expiry is in the past", error_id="token-expired-already")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        async with self.sessions.begin() as s:
            if await s.get(User, owner) is None:
                raise NotFound("No such user", error_id="no-such-user", user_id=owner)
            projects = None if data.project_ids is None else sorted(set(data.project_ids))
            if projects:
                known = set(await s.scalars(select(Project.id).where(Project.id.in_(projects))))
                missing = [p for p in projects if p not in known]
                if missing:
                    raise NotFound("No such project", error_id="no-such-project", project_id=missing[0])
            token = ApiToken(
                user_id=owner,
                name=data.name,
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                token_hash=_token_hash(secret),
                created_at=self.clock(),
                scopes=sorted(set(data.scopes)),
                expires_at=data.expires_at,
                project_ids=projects,
            )
            s.add(token)
            await s.flush()
            audit(
                s,
                actor,
                "token.create",
                "api_token",
                token.id,
                owner=owner,
                name=data.name,
                scopes=token.scopes,
                project_ids=projects,
            )
            return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)

    async def list_tokens(self, actor: Actor, *, user_id: int | None = None) -> list[TokenOut]:
        owner = user_id if user_id is not None else actor.user_id
        if owner != actor.user_id:
            actor.require("tokens.write")
        async with self.sessions() as s:
            rows = await s.scalars(select(ApiToken).where(ApiToken.user_id == owner).order_by(ApiToken.id))
            return [TokenOut.model_validate(t) for t in rows]

    async def all_tokens(self, actor: Actor) -> list[TokenOut]:
        """Every user's tokens (the admin console's list), newest first."""
        actor.require("tokens.write")
        async with self.sessions() as s:
            rows = await s.execute(
                select(ApiToken, User.username)
                .join(User, User.id == ApiToken.user_id)
                .order_by(ApiToken.id.desc())
            )
            return [
                TokenOut.model_validate(t).model_copy(update={"username": username}) for t, username in rows
            ]

    async def revoke_token(self, actor: Actor, token_id: int) -> None:
        async with self.sessions.begin() as s:
            token = await s.get(ApiToken, token_id)
            if token is None:
                raise NotFound("No such token", error_id="no-such-token", token_id=token_id)
            if token.user_id != actor.user_id:
                actor.require("tokens.write")
            elif actor.scopes is not None and "admin" not in actor.scopes and actor.token_id != token_id:
                # A narrow token may revoke itself (first aid for a leak), not its owner's others.
                raise Forbidden(
                    "Only a token with the admin scope may revoke other tokens",
                    error_id="token-scope",
                    refused="tokens.write",
                )
            token.revoked_at = token.revoked_at or self.clock()
            audit(s, actor, "token.revoke", "api_token", token_id)
        # After the commit, never before: see forget_tokens.
        self.forget_tokens()

    async def token_actor(self, secret: str, *, ip: str | None) -> Actor:
        """The actor behind an API token: its owner's role and projects, narrowed to the token's
        scopes and projects. Raises when the token is unknown, revoked, expired or its owner inactive.

        Look-ups are cached for at most :data:`TOKEN_CACHE_S` (and never past the token's expiry). A
        look-up that read the database before a revocation committed must not cache what it read
        after the revocation's :meth:`forget_tokens`: it notes the cache's generation before reading
        and keeps its result only if no forget happened since (``_token_generation``)."""
        if not secret.startswith(TOKEN_PREFIX):
            raise Unauthenticated("Invalid API token", error_id="invalid-token")
        digest = _token_hash(secret)
        cached = self._token_cache.get(digest)
        if cached is not None and cached[2] > time.monotonic():
            known, _, _, expires_at = cached
            if expires_at is None or expires_at > self.clock():
                return known if known.ip == ip else replace(known, ip=ip)
        generation = self._token_generation
        now = self.clock()
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(ApiToken, User)
                    .join(User, User.id == ApiToken.user_id)
                    .where(ApiToken.token_hash == digest)
                )
            ).first()
            if row is None or row[0].revoked_at is not None or not row[1].is_active:
                raise Unauthenticated("Invalid API token", error_id="invalid-token")
            token, user = row
            if token.expires_at is not None and token.expires_at <= now:
                raise Unauthenticated("This API token has expired", error_id="token-expired")
            owner_projects = await _project_ids(s, user.id, Role(user.role))
            # Last use is written at most once a minute per token (and only on a cache miss, which
            # a busy integration has every TOKEN_CACHE_S), so calls do not each write a row.
            stale_use = token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY
            token_id, last_used = token.id, token.last_used_at
        if stale_use:
            async with self.sessions.begin() as s:
                # Conditional: of two nodes (or two look-ups) at once only one writes.
                await s.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.id == token_id,
                        ApiToken.last_used_at.is_(None)
                        if last_used is None
                        else ApiToken.last_used_at == last_used,
                    )
                    .values(last_used_at=now)
                )
        actor = Actor(
            user_id=user.id,
            role=Role(user.role),
            username=user.username,
            ip=ip,
            language=user.language,
            via_token=True,
            project_ids=_narrow(owner_projects, token.project_ids),
            scopes=frozenset(token.scopes),
            token_id=token_id,
        )
        if generation == self._token_generation:
            if len(self._token_cache) > 10_000:
                self._token_cache.clear()
            until = time.monotonic() + TOKEN_CACHE_S
            self._token_cache[digest] = (actor, token_id, until, token.expires_at)
        return actor

    def forget_tokens(self) -> None:
        """Drop cached token look-ups; call *after* the commit of a revocation or a change to a user.

        Bumping the generation keeps a look-up that read the old rows before that commit (and
        finishes after this call) from caching them again for TOKEN_CACHE_S."""
        self._token_generation += 1
        self._token_cache.clear()

    # ------------------------------------------------------------------ audit log
    async def audit_log(
        self, actor: Actor, *, limit: int = 50, cursor: str | None = None, action: str | None = None
    ) -> Page[AuditOut]:
        """The audit log, newest first. A user limited to projects reads the entries of their
        projects (imports, exports and erasures for a project, its retention) and their own actions;
        entries of other projects and of no project are not theirs to read (docs/privacy.md)."""
        actor.require("audit.read")
        limit = max(1, min(limit, 200))
        stmt = select(AuditEntry)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        if cursor:
            stmt = stmt.where(AuditEntry.id < decode_id_cursor(cursor))
        stmt = scope.where(stmt, scope.audit_visible(actor))
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)))
        if actor.project_ids is None:
            return id_page(rows, limit, AuditOut.model_validate)

        def shown(row: AuditEntry) -> AuditOut:
            # The address a colleague acted from is personal data: a limited user sees only their own.
            out = AuditOut.model_validate(row)
            return out if row.actor_id == actor.user_id else out.model_copy(update={"ip": None})

        return id_page(rows, limit, shown)


def _narrow(owner: frozenset[int] | None, token: list[int] | None) -> frozenset[int] | None:
    """The projects a token sees: its owner's, narrowed to the token's own list (None: no limit)."""
    if token is None:
        return owner
    limited = frozenset(token)
    return limited if owner is None else owner & limited


async def _project_ids(s: AsyncSession, user_id: int, role: Role | None = None) -> frozenset[int] | None:
    """The projects a user is limited to; ``None`` when unrestricted (no rows, or an administrator)."""
    if role is Role.ADMIN:
        return None
    ids = frozenset(await s.scalars(select(UserProject.project_id).where(UserProject.user_id == user_id)))
    return ids or None


async def _user_out(s: AsyncSession, user: User) -> UserOut:
    ids = await _project_ids(s, user.id, Role(user.role))
    return UserOut.model_validate(user).model_copy(
        update={"project_ids": None if ids is None else sorted(ids)}
    )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
