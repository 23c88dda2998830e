"""Screen-pop lookup: when a contact is offered, ask an external system (billing, ERP, shop) about
the customer and push its answer to the agents the contact is offered to (``docs/integrations.md``).

* **Never in the way of the offer.** :meth:`ScreenPop.committed` subscribes to the commit outlet: it
  sees an offer after it was committed and handed to the agents, and only starts a task. The lookup
  runs alongside; its answer (or its failure) goes to the agents' sockets as a ``customer_lookup``
  message whenever it arrives. A slow endpoint is given up after ``timeout_s`` (1 s by default).
* **Configuration**: one endpoint for every project (settings ``screen_pop_*``) and, per project, its
  own (``PUT /api/v1/integrations/screen-pop``, stored as the site setting ``integrations.screen_pop``).
  An endpoint is a URL template with ``{phone}``, ``{email}`` or ``{value}`` (the identity,
  URL-encoded), an optional header (``Authorization: Bearer ...``) and which identity it is asked by.
* **Cache**: answers (found or not found, never failures) are kept ``cache_ttl_s`` per (endpoint,
  identity), at most ``cache_size`` of them, the least recently used going first.
* **Answer**: a JSON object (or a list: its first object); its top-level scalar fields are shown on
  the customer card's "External" section (at most :data:`MAX_FIELDS`, values cut to
  :data:`MAX_VALUE_CHARS`). A 404 or an empty answer means "not found".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.bus import BusMessage, InProcessBus
from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.store.committed import Committed
from frontoffice.store.tables import Identity, Interaction, Project, SiteSetting

from .context import Actor, Clock, audit, system_clock
from .egress import AddressRefused, EgressPolicy, GuardedTransport, refused_reason, url_refused
from .schemas import Input, Output
from .scope import visible_interaction

__all__ = [
    "LookupCache",
    "LookupConfig",
    "LookupResult",
    "ScreenPop",
    "ScreenPopConfigIn",
    "ScreenPopConfigOut",
]

log = logging.getLogger("frontoffice.screen_pop")

SETTING_KEY = "integrations.screen_pop"
# The card shows a handful of fields; an ERP answering with hundreds would bury the agent's own.
MAX_FIELDS = 30
MAX_VALUE_CHARS = 500
# An answer larger than this is not a customer record (an error page, a whole table).
MAX_ANSWER_BYTES = 256 * 1024
IDENTITIES = ("phone", "email")
# How long "no endpoint is stored" is trusted before it is read again: an endpoint set on another node
# applies to offers within this time (one set on this node applies at once).
CONFIG_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class LookupConfig:
    """One endpoint: URL template, the header to send (``Name: value``, may be empty), the identity."""

    url: str
    auth_header: str = ""
    identity: str = "phone"

    def url_for(self, value: str) -> str:
        encoded = quote(value, safe="")
        return self.url.replace("{value}", encoded).replace(f"{{{self.identity}}}", encoded)

    def headers(self) -> dict[str, str]:
        name, sep, value = self.auth_header.partition(":")
        return {name.strip(): value.strip()} if sep and name.strip() else {}


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What the endpoint said: ``status`` found / not_found / failed, its ``fields``, why it failed."""

    status: str
    fields: dict[str, Any]
    error: str | None = None
    identity: str | None = None


class ScreenPopConfigIn(Input):
    """A project's endpoint (``project_id`` None: the default for every project without its own;
    ``url`` empty: remove it)."""

    project_id: int | None = None
    url: str = Field(default="", max_length=2000)
    auth_header: str = Field(default="", max_length=2000)
    identity: str = Field(default="phone", pattern="^(phone|email)$")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("the URL must start with http:// or https://")
        return value


class ScreenPopConfigOut(Output):
    """The endpoints: the default one (settings or stored) and each project's; headers masked."""

    default: dict[str, Any] | None
    projects: dict[str, dict[str, Any]]


def _fields(answer: Any) -> dict[str, Any]:
    if isinstance(answer, list):
        answer = next((a for a in answer if isinstance(a, dict)), None)
    if not isinstance(answer, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in answer.items():
        if len(out) >= MAX_FIELDS:
            break
        if isinstance(value, bool | int | float) or value is None:
            out[str(key)[:100]] = value
        elif isinstance(value, str):
            out[str(key)[:100]] = value[:MAX_VALUE_CHARS]
    return out


class LookupCache:
    """Answers by key, each for ``ttl_s``, at most ``size``, least recently used evicted first."""

    def __init__(self, ttl_s: float, size: int, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self.now = now
        self._items: OrderedDict[tuple[str, str], tuple[float, LookupResult]] = OrderedDict()

    def get(self, key: tuple[str, str]) -> LookupResult | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self.now():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: tuple[str, str], value: LookupResult) -> None:
        if self.size <= 0 or self.ttl_s <= 0:
            return
        self._items[key] = (self.now() + self.ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ScreenPop:
    """Looks customers up in an external system when their contact is offered (module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: InProcessBus,
        *,
        default: LookupConfig | None = None,
        timeout_s: float = 1.0,
        cache_ttl_s: float = 300.0,
        cache_size: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.default = default
        self.timeout_s = timeout_s
        self.clock = clock
        self.cache = LookupCache(cache_ttl_s, cache_size, monotonic)
        # Only public addresses and the allowed networks are reached (services/egress.py).
        self.egress = egress or EgressPolicy()
        self._transport = transport if transport is not None else GuardedTransport(self.egress)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # One request per (endpoint, identity) at a time: a ring-all offer to ten agents asks once.
        self._inflight: dict[tuple[str, str], asyncio.Future[LookupResult]] = {}
        # (when read, whether any endpoint is stored): offers skip the lookup while none is.
        self._stored_cache: tuple[float, bool] | None = None

    # ------------------------------------------------------------------ the offer side
    def committed(self, committed: Committed) -> None:
        """A subscriber of the commit outlet: start a lookup for each offered contact (none while no
        endpoint is configured anywhere: the offer path pays nothing for a feature that is off)."""
        offers = [o for o in committed.outputs if isinstance(o, r.OfferContact)]
        if not offers or not self._maybe_configured():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for offer in offers:
            task = loop.create_task(self._pop(int(offer.contact_id), offer.agent_ids))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pop(self, interaction_id: int, agent_ids: tuple[str, ...]) -> None:
        try:
            found = await self.lookup_interaction(interaction_id)
            if found is None:
                return
            project_id, result = found
            self.bus.publish(
                BusMessage(
                    type="customer_lookup",
                    data={"contact_id": interaction_id, "interaction_id": interaction_id, **asdict(result)},
                    audience=tuple(f"agent:{a}" for a in agent_ids),
                    project_id=project_id,
                )
            )
        except Exception:
            log.exception("screen-pop lookup of interaction %s failed", interaction_id)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ lookups
    async def lookup_interaction(self, interaction_id: int) -> tuple[int | None, LookupResult] | None:
        """Look up the customer of an interaction; None when no endpoint applies or the contact
        carries no identity of the kind the endpoint asks by."""
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(Interaction.customer_id, Interaction.project_id, Interaction.from_address).where(
                        Interaction.id == interaction_id
                    )
                )
            ).first()
            if row is None:
                return None
            config = await self._config_for(s, row.project_id)
            if config is None:
                return None
            value = None
            if row.customer_id is not None:
                value = await s.scalar(
                    select(Identity.value)
                    .where(Identity.customer_id == row.customer_id, Identity.kind == config.identity)
                    .order_by(Identity.id)
                    .limit(1)
                )
        if value is None:
            address = (row.from_address or "").strip()
            is_email = "@" in address
            if address and is_email == (config.identity == "email"):
                value = address
        if not value:
            return None
        return row.project_id, await self.lookup(config, value)

    async def lookup(self, config: LookupConfig, value: str) -> LookupResult:
        """Ask ``config``'s endpoint about ``value`` (cached; concurrent asks share one request)."""
        key = (config.url, value)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LookupResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._fetch(config, value)
            if result.status != "failed":
                self.cache.put(key, result)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[key]

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, follow_redirects=False)
        return self._client

    async def _fetch(self, config: LookupConfig, value: str) -> LookupResult:
        try:
            # The whole exchange, not each phase, is bounded: a trickling answer is slow too.
            async with asyncio.timeout(self.timeout_s):
                response = await self._http().get(
                    config.url_for(value),
                    headers={"accept": "application/json", **config.headers()},
                    timeout=self.timeout_s,
                )
        except (TimeoutError, httpx.TimeoutException):
            return LookupResult("failed", {}, f"no answer within {self.timeout_s:g} s", value)
        except httpx.HTTPError as exc:
            refused = refused_reason(exc)
            if refused is not None:
                log.warning("screen-pop lookup %s", refused)
            return LookupResult("failed", {}, (refused or f"{type(exc).__name__}: {exc}")[:300], value)
        if response.status_code == 404:
            return LookupResult("not_found", {}, None, value)
        if not 200 <= response.status_code < 300:
            return LookupResult("failed", {}, f"HTTP {response.status_code}", value)
        if len(response.content) > MAX_ANSWER_BYTES:
            return LookupResult("failed", {}, "the answer is too large", value)
        try:
            answer = response.json() if response.content.strip() else None
        except ValueError:
            return LookupResult("failed", {}, "the answer is not JSON", value)
        fields = _fields(answer)
        return LookupResult("found" if fields else "not_found", fields, None, value)

    # ------------------------------------------------------------------ configuration
    def _maybe_configured(self) -> bool:
        """Whether an endpoint may apply: the settings name one, or the stored ones were not read
        within ``CONFIG_TTL_S`` (another node may have set one), or they name one."""
        if self.default is not None:
            return True
        cached = self._stored_cache
        return cached is None or time.monotonic() - cached[0] >= CONFIG_TTL_S or bool(cached[1])

    async def _stored(self, s: AsyncSession) -> dict[str, Any]:
        row = await s.get(SiteSetting, SETTING_KEY)
        stored = dict(row.value) if row is not None else {}
        configured = bool(stored.get("default")) or bool(stored.get("projects"))
        self._stored_cache = (time.monotonic(), configured)
        return stored

    async def _config_for(self, s: AsyncSession, project_id: int | None) -> LookupConfig | None:
        stored = await self._stored(s)
        chosen = None
        if project_id is not None:
            chosen = (stored.get("projects") or {}).get(str(project_id))
        if chosen is None:
            chosen = stored.get("default")
        if chosen:
            return LookupConfig(chosen["url"], chosen.get("auth_header", ""), chosen.get("identity", "phone"))
        return self.default

    async def get_config(self, actor: Actor) -> ScreenPopConfigOut:
        actor.require("webhooks.manage")
        async with self.sessions() as s:
            stored = await self._stored(s)
        default = stored.get("default")
        if default is None and self.default is not None:
            default = {
                "url": self.default.url,
                "auth_header": self.default.auth_header,
                "identity": self.default.identity,
            }

        def masked(c: dict[str, Any]) -> dict[str, Any]:
            header = c.get("auth_header", "")
            name = header.partition(":")[0].strip()
            return {**c, "auth_header": f"{name}: ***" if name else ""}

        return ScreenPopConfigOut(
            default=None if default is None else masked(default),
            projects={k: masked(v) for k, v in (stored.get("projects") or {}).items()},
        )

    async def set_config(self, actor: Actor, data: ScreenPopConfigIn) -> ScreenPopConfigOut:
        actor.require("webhooks.manage")
        now = self.clock()
        if data.url:
            try:
                # Resolved outside the transaction: a slow DNS answer holds no lock.
                await self.egress.check_url(LookupConfig(data.url, "", data.identity).url_for("x"))
            except AddressRefused as exc:
                raise url_refused(exc) from None
        async with self.sessions.begin() as s:
            if data.project_id is not None and await s.get(Project, data.project_id) is None:
                raise NotFound(
                    "No such project",
                    error_id="no-such-project",
                    project_id=data.project_id,
                    field="project_id",
                )
            row = await s.get(SiteSetting, SETTING_KEY, with_for_update=True)
            stored = dict(row.value) if row is not None else {}
            projects = dict(stored.get("projects") or {})
            entry = (
                {"url": data.url, "auth_header": data.auth_header, "identity": data.identity}
                if data.url
                else None
            )
            if data.url and "{" not in data.url:
                raise InvalidInput(
                    "The URL must contain {phone}, {email} or {value}",
                    error_id="invalid-url-template",
                    field="url",
                )
            if data.project_id is None:
                stored["default"] = entry
            elif entry is None:
                projects.pop(str(data.project_id), None)
            else:
                projects[str(data.project_id)] = entry
            stored["projects"] = projects
            if row is None:
                s.add(SiteSetting(key=SETTING_KEY, value=stored, updated_at=now, updated_by=actor.user_id))
            else:
                row.value = stored
                row.updated_at = now
                row.updated_by = actor.user_id
            audit(s, actor, "integrations.screen_pop", "project", data.project_id, now, url=data.url)
        self.cache = LookupCache(
            self.cache.ttl_s, self.cache.size, self.cache.now
        )  # answers of the old endpoint
        self._stored_cache = None  # offers look again at once
        return await self.get_config(actor)

    async def lookup_for(self, actor: Actor, interaction_id: int) -> LookupResult | None:
        """The lookup of a contact the actor sees (the desk asks when it opens the contact and the
        pushed answer was missed): cached answers make it cheap."""
        actor.require("interactions.read")
        async with self.sessions() as s:
            await visible_interaction(s, actor, interaction_id)
        found = await self.lookup_interaction(interaction_id)
        return None if found is None else found[1]
