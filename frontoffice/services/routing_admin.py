"""Routing administration: queues, agents' routing profiles, entry points and codes. Changes apply
live: those the engine needs go through the ACD as commands."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict, InvalidInput, NotFound
from frontoffice.domain.model import Channel
from frontoffice.store.tables import (
    AgentProfile,
    BusinessCalendar,
    Disposition,
    EntryPoint,
    NotReadyReason,
    Project,
    Queue,
    User,
)
from frontoffice.store.unit_of_work import UnitOfWork

from .acd import AcdService, QueueInfo, agent_config, queue_config
from .acd_commands import (
    AcdCommand,
    CommandHandler,
)
from .acd_schemas import (
    AgentProfileIn,
    AgentProfileOut,
    CodeIn,
    CodeOut,
    ContactIn,
    EntryPointIn,
    EntryPointOut,
    QueueIn,
    QueueOut,
    QueuePatch,
    QueueSettings,
    RuleIn,
)
from .chat_settings import chat_settings
from .context import Actor, Clock, audit, system_clock
from .egress import AddressRefused, EgressPolicy, host_refused, url_refused
from .email_settings import email_settings
from .messaging_settings import (
    SmsSettings,
    TelegramSettings,
    fill_template,
    keep_secrets,
    redact_secrets,
    secrets_set,
)
from .rules_adapter import compile_rules, rule_context

log = logging.getLogger("frontoffice.routing")

__all__ = ["CreateQueue", "RoutingAdmin", "SaveAgentProfile", "UpdateQueue"]


class RoutingAdmin:
    """Administrators' (and supervisors' read) use cases over the routing configuration."""

    def __init__(
        self, acd: AcdService, *, clock: Clock = system_clock, egress: EgressPolicy | None = None
    ) -> None:
        self.acd = acd
        self.sessions = acd.sessions
        self.clock = clock
        # Where an SMS gateway's or a Bot API server's URL may point (services/egress.py).
        self.egress = egress or EgressPolicy()
        # Moves after every change to an entry point (see entry_points_changed). Caches of entry
        # points keep what they read with the version it was read at and drop it when this moves.
        self.entry_points_version = 0
        # Called (awaited) after an entry point was created or changed: the SMS links and Telegram
        # bots pick up their settings without a restart (bootstrap registers them).
        self.entry_point_listeners: list[Callable[[], Awaitable[None]]] = []
        acd.register(CreateQueue, _SaveQueueHandler(acd))
        acd.register(UpdateQueue, _SaveQueueHandler(acd))
        acd.register(SaveAgentProfile, _SaveAgentProfileHandler(clock))

    def entry_points_changed(self) -> None:
        """Invalidate in-memory caches of entry points (``VoiceCalls.entry_for``). Called after the
        change is committed (or failed): a cache filled from a read that ran while the change was in
        flight holds the version it started with, and is therefore discarded.

        In-process only: it is correct on a single node; with several nodes, another node's change
        reaches this node's cache only when this node changes an entry point too or restarts.
        """
        self.entry_points_version += 1

    async def create_queue(self, actor: Actor, data: QueueIn) -> QueueOut:
        actor.require("routing.write")
        return await self.acd.execute(CreateQueue(actor, data))

    async def update_queue(self, actor: Actor, queue_id: int, patch: QueuePatch) -> QueueOut:
        actor.require("routing.write")
        return await self.acd.execute(UpdateQueue(actor, queue_id, patch))

    async def list_queues(self, actor: Actor) -> list[QueueOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            queues = await s.scalars(select(Queue).order_by(Queue.name))
            # A user limited to some projects sees their queues and those of no project.
            return [_queue_out(q) for q in queues if actor.sees_project(q.project_id)]

    async def get_queue(self, actor: Actor, queue_id: int) -> QueueOut:
        actor.require("routing.read")
        async with self.sessions() as s:
            queue = await s.get(Queue, queue_id)
            if queue is None or not actor.sees_project(queue.project_id):
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
            return _queue_out(queue)

    async def set_agent_profile(self, actor: Actor, user_id: int, data: AgentProfileIn) -> AgentProfileOut:
        actor.require("routing.write")
        await self.acd.execute(SaveAgentProfile(actor, user_id, data))
        return await self.get_agent_profile(actor, user_id)

    async def get_agent_profile(self, actor: Actor, user_id: int) -> AgentProfileOut:
        if actor.user_id != user_id:
            actor.require("routing.read")
        async with self.sessions() as s:
            row = (
                await s.execute(
                    select(AgentProfile, User)
                    .join(User, User.id == AgentProfile.user_id)
                    .where(AgentProfile.user_id == user_id)
                )
            ).first()
        if row is None:
            raise NotFound("This user is not an agent", error_id="not-an-agent", user_id=user_id)
        return _profile_out(*row)

    async def list_agents(self, actor: Actor) -> list[AgentProfileOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            rows = await s.execute(
                select(AgentProfile, User).join(User, User.id == AgentProfile.user_id).order_by(User.username)
            )
            return [_profile_out(p, u) for p, u in rows]

    async def create_entry_point(self, actor: Actor, data: EntryPointIn) -> EntryPointOut:
        actor.require("routing.write")
        await self._check_addresses(data)
        try:
            out = await self._create_entry_point(actor, data)
        finally:
            self.entry_points_changed()
        await self._notify_listeners()
        return out

    async def _notify_listeners(self) -> None:
        for listener in self.entry_point_listeners:
            try:
                await listener()
            except Exception:  # the change is committed; a link that cannot start logs and retries
                log.exception("an entry point listener failed")

    async def _create_entry_point(self, actor: Actor, data: EntryPointIn) -> EntryPointOut:
        async with self.sessions.begin() as s:
            await self._check_entry(s, data)
            entry = EntryPoint(
                name=data.name,
                channel=data.channel.value,
                address=data.address,
                project_id=data.project_id,
                default_queue_id=data.default_queue_id,
                config=_checked_secrets(_entry_config(data)),
                created_at=self.clock(),
            )
            s.add(entry)
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict(
                    "An entry point with this channel and address exists", error_id="entry-point-taken"
                ) from None
            audit(s, actor, "entry_point.create", "entry_point", entry.id)
            return _entry_out(entry)

    async def update_entry_point(self, actor: Actor, entry_id: int, data: EntryPointIn) -> EntryPointOut:
        actor.require("routing.write")
        await self._check_addresses(data)
        try:
            out = await self._update_entry_point(actor, entry_id, data)
        finally:
            self.entry_points_changed()
        await self._notify_listeners()
        return out

    async def _update_entry_point(self, actor: Actor, entry_id: int, data: EntryPointIn) -> EntryPointOut:
        async with self.sessions.begin() as s:
            entry = await s.get(EntryPoint, entry_id)
            if entry is None:
                raise NotFound("No such entry point", error_id="no-such-entry-point", entry_point_id=entry_id)
            await self._check_entry(s, data)
            entry.name, entry.channel, entry.address = data.name, data.channel.value, data.address
            entry.project_id, entry.default_queue_id = data.project_id, data.default_queue_id
            entry.config = _checked_secrets(keep_secrets(_entry_config(data), dict(entry.config or {})))
            try:
                await s.flush()
            except IntegrityError:
                raise Conflict(
                    "An entry point with this channel and address exists", error_id="entry-point-taken"
                ) from None
            audit(s, actor, "entry_point.update", "entry_point", entry_id)
            return _entry_out(entry)

    async def _check_addresses(self, data: EntryPointIn) -> None:
        """Refuse (422 at the field) an SMS gateway URL, an SMPP link's SMS center or a Bot API
        server URL on an internal address: the server would connect there (SSRF). Resolved before
        the transaction, so a slow DNS answer holds no lock; checked again at each connection (DNS
        rebinding)."""
        if data.sms is not None and data.sms.smpp is not None:
            # Whatever the gateway: the block is stored as sent, and an admin input all the same.
            smpp = data.sms.smpp
            try:
                await self.egress.check_host(smpp.host, smpp.port)
            except AddressRefused as exc:
                raise host_refused(exc, ("sms", "smpp", "host")) from None
        urls: list[tuple[str, tuple[str, ...]]] = []
        if data.sms is not None and data.sms.http is not None:
            # The template's variables stand for values; only the host matters here.
            urls.append((fill_template(data.sms.http.url, "0"), ("sms", "http", "url")))
        if data.telegram is not None and data.telegram.base_url is not None:
            urls.append((str(data.telegram.base_url), ("telegram", "base_url")))
        for url, field in urls:
            try:
                await self.egress.check_url(url)
            except AddressRefused as exc:
                raise url_refused(exc, field) from None

    async def _check_entry(self, s: AsyncSession, data: EntryPointIn) -> None:
        compile_rules([rule.model_dump() for rule in data.rules], data.default_queue_id)
        if data.project_id is not None:
            await _check_project(s, data.project_id)
        for queue_id in {rule.queue_id for rule in data.rules} | (
            {data.default_queue_id} if data.default_queue_id is not None else set()
        ):
            if await s.get(Queue, queue_id) is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)

    async def list_entry_points(self, actor: Actor) -> list[EntryPointOut]:
        actor.require("routing.read")
        async with self.sessions() as s:
            entries = list(await s.scalars(select(EntryPoint).order_by(EntryPoint.id)))
            if actor.project_ids is None:
                return [_entry_out(e) for e in entries]
            queues = await _queue_projects(s)
            return [_entry_out(e) for e in entries if actor.sees_project(_entry_project(e, queues))]

    async def test_route(self, actor: Actor, entry_id: int, sample: ContactIn) -> dict[str, Any]:
        """Which queue would a sample contact reach? (nothing is stored)"""
        actor.require("routing.read")
        async with self.sessions() as s:
            entry = await s.get(EntryPoint, entry_id)
            hidden = (
                entry is not None
                and actor.project_ids is not None
                and not actor.sees_project(_entry_project(entry, await _queue_projects(s)))
            )
            if entry is None or hidden:
                raise NotFound("No such entry point", error_id="no-such-entry-point")
            customer_ctx: dict[str, Any] = {"known": False, "tags": [], "vip": False, "custom": {}}
            ctx = rule_context(sample, entry, customer_ctx)
            rules = compile_rules(entry.config.get("rules", []), entry.default_queue_id)
            return {"queue_id": rules.route(ctx), "matched_rule": rules.matched_index(ctx), "context": ctx}

    async def set_code(self, actor: Actor, kind: str, data: CodeIn) -> CodeOut:
        actor.require("routing.write")
        table: type[Disposition] | type[NotReadyReason] = (
            Disposition if kind == "dispositions" else NotReadyReason
        )
        async with self.sessions.begin() as s:
            row: Disposition | NotReadyReason | None = await s.get(table, data.code)
            if row is None:
                row = table(code=data.code, name=data.name, names=data.stored_names(), active=data.active)
                s.add(row)
            else:
                row.name, row.names, row.active = data.name, data.stored_names(), data.active
            audit(s, actor, f"{kind}.set", kind, data.code)
            await s.flush()
            return CodeOut.model_validate(row)

    async def list_codes(self, actor: Actor, kind: str) -> list[CodeOut]:
        actor.require("interactions.read")
        table = Disposition if kind == "dispositions" else NotReadyReason
        async with self.sessions() as s:
            return [CodeOut.model_validate(c) for c in await s.scalars(select(table).order_by(table.code))]


@dataclass(frozen=True, slots=True)
class CreateQueue(AcdCommand[QueueOut]):
    """An administrator adds a queue; it routes at once."""

    actor: Actor
    data: QueueIn


@dataclass(frozen=True, slots=True)
class UpdateQueue(AcdCommand[QueueOut]):
    """An administrator changes a queue; the change applies live."""

    actor: Actor
    queue_id: int
    patch: QueuePatch


class _SaveQueueHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, acd: AcdService) -> None:
        self.acd = acd

    async def prepare(self, uow: UnitOfWork, command: CreateQueue | UpdateQueue) -> Queue:
        s, actor = uow.session, command.actor
        if isinstance(command, CreateQueue):
            data = command.data
            await _check_queue_refs(s, data.settings, data.project_id, None)
            if await s.scalar(select(Queue.id).where(Queue.name == data.name)) is not None:
                raise Conflict("A queue with this name exists", error_id="queue-name-taken")
            queue = Queue(name=data.name, project_id=data.project_id, config=_stored(data.settings))
            s.add(queue)
            await s.flush()
            audit(s, actor, "queue.create", "queue", queue.id, name=data.name)
            return queue
        queue_id, patch = command.queue_id, command.patch
        found = await s.get(Queue, queue_id)
        if found is None:
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
        if patch.name is not None and patch.name != found.name:
            taken = await s.scalar(select(Queue.id).where(Queue.name == patch.name, Queue.id != queue_id))
            if taken is not None:
                raise Conflict("A queue with this name exists", error_id="queue-name-taken")
            found.name = patch.name
        if "project_id" in patch.model_fields_set:
            if patch.project_id is not None:
                await _check_project(s, patch.project_id)
            found.project_id = patch.project_id
        if patch.settings is not None:
            await _check_queue_refs(s, patch.settings, found.project_id, queue_id)
            found.config = _stored(patch.settings)
        try:
            await s.flush()
        except IntegrityError:  # a queue of that name committed after the check above
            raise Conflict("A queue with this name exists", error_id="queue-name-taken") from None
        audit(s, actor, "queue.update", "queue", queue_id, fields=sorted(patch.model_fields_set))
        return found

    def decide(self, engine: r.RoutingEngine, command: Any, prepared: Queue, now: float) -> list[r.Output]:
        outputs = engine.upsert_queue(queue_config(prepared), now) or []
        self.acd.queue_info[prepared.id] = QueueInfo.of(prepared)
        return outputs

    async def finish(
        self, uow: UnitOfWork, command: Any, outputs: list[r.Output], prepared: Queue
    ) -> QueueOut:
        return _queue_out(prepared)


async def _queue_projects(s: AsyncSession) -> dict[int, int | None]:
    return {
        queue_id: project_id for queue_id, project_id in await s.execute(select(Queue.id, Queue.project_id))
    }


def _entry_project(entry: EntryPoint, queue_projects: dict[int, int | None]) -> int | None:
    """The project an entry point's contacts belong to: its own, else its default queue's (as an
    interaction's project is fixed: services/intake.py); who may see the entry point follows it."""
    if entry.project_id is not None or entry.default_queue_id is None:
        return entry.project_id
    return queue_projects.get(entry.default_queue_id)


async def _check_queue_refs(
    s: AsyncSession, settings: QueueSettings, project_id: int | None, own_id: int | None
) -> None:
    refs = [settings.overflow_queue_id] if settings.overflow_queue_id is not None else []
    refs += [q for step in settings.escalations for q in step.add_queues]
    for ref in refs:
        if ref == own_id and ref == settings.overflow_queue_id:
            raise InvalidInput("A queue cannot overflow to itself", error_id="overflow-to-self")
        if await s.get(Queue, ref) is None:
            raise NotFound("No such queue", error_id="no-such-queue", queue_id=ref)
    if settings.calendar_id is not None and await s.get(BusinessCalendar, settings.calendar_id) is None:
        raise NotFound("No such calendar", error_id="no-such-calendar", calendar_id=settings.calendar_id)
    if project_id is not None:
        await _check_project(s, project_id)


async def _check_project(s: AsyncSession, project_id: int) -> None:
    """404 ``no-such-project`` naming the ``project_id`` field for a project that does not exist
    (before the write: the foreign key would fail at the flush, which is a 500)."""
    if await s.get(Project, project_id) is None:
        raise NotFound(
            "No such project", error_id="no-such-project", project_id=project_id, field="project_id"
        )


@dataclass(frozen=True, slots=True)
class SaveAgentProfile(AcdCommand[list[r.Output]]):
    """An administrator sets an agent's skills, queues, capacity and weight; applies live."""

    actor: Actor
    user_id: int
    data: AgentProfileIn


class _SaveAgentProfileHandler(CommandHandler[Any]):
    prepares = True

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def prepare(self, uow: UnitOfWork, command: SaveAgentProfile) -> r.AgentConfig:
        s, user_id, data = uow.session, command.user_id, command.data
        user = await s.get(User, user_id)
        if user is None:
            raise NotFound("No such user", error_id="no-such-user", user_id=user_id)
        for queue_id in data.queues:
            if await s.get(Queue, queue_id) is None:
                raise NotFound("No such queue", error_id="no-such-queue", queue_id=queue_id)
        profile = await s.get(AgentProfile, user_id)
        if profile is None:
            profile = AgentProfile(user_id=user_id, state="offline", state_since=uow.now)
            s.add(profile)
        profile.skills = dict(data.skills)
        profile.queues = {str(k): v for k, v in data.queues.items()}
        profile.capacity = {k.value: v for k, v in data.capacity.items()}
        profile.weight = data.weight
        profile.updated_at = self.clock()
        await s.flush()
        audit(s, command.actor, "agent.profile", "agent", user_id)
        return agent_config(profile)

    def decide(
        self, engine: r.RoutingEngine, command: SaveAgentProfile, prepared: r.AgentConfig, now: float
    ) -> list[r.Output]:
        return engine.upsert_agent(prepared, now) or []

    async def finish(
        self, uow: UnitOfWork, command: SaveAgentProfile, outputs: list[r.Output], prepared: Any
    ) -> list[r.Output]:
        return outputs


def _stored(settings: QueueSettings) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(settings.model_dump_json())
    return stored


def _queue_out(queue: Queue) -> QueueOut:
    return QueueOut(
        id=queue.id, name=queue.name, project_id=queue.project_id, settings=QueueSettings(**queue.config)
    )


def _profile_out(p: AgentProfile, u: User) -> AgentProfileOut:
    from datetime import UTC

    return AgentProfileOut(
        user_id=p.user_id,
        username=u.username,
        display_name=u.display_name,
        skills=dict(p.skills),
        queues={int(k): int(v) for k, v in p.queues.items()},
        capacity=dict(p.capacity),
        weight=p.weight,
        state=p.state,
        state_reason=p.state_reason,
        state_since=datetime.fromtimestamp(p.state_since, UTC) if p.state_since else None,
    )


def _entry_config(data: EntryPointIn) -> dict[str, Any]:
    config: dict[str, Any] = {"rules": [rule.model_dump() for rule in data.rules], "priority": data.priority}
    if data.email is not None:
        config["email"] = data.email.model_dump(mode="json", exclude_none=True)
    if data.chat is not None:
        config["chat"] = data.chat.model_dump(mode="json", exclude_none=True)
    if data.sms is not None:
        config["sms"] = data.sms.model_dump(mode="json", exclude_none=True)
    if data.telegram is not None:
        config["telegram"] = data.telegram.model_dump(mode="json", exclude_none=True)
    return config


# The secrets a gateway cannot work without: (config path, the field error's location, message).
_REQUIRED_SECRETS = (
    (("sms", "smpp"), "password", "the SMSC account's password"),
    (("sms", "http"), "webhook_secret", "the shared secret inbound webhooks are signed with"),
    (("telegram",), "token", "the bot's token from @BotFather"),
)


def _checked_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """Refuse a gateway block whose required secret is neither sent nor stored (a field error)."""
    for path, name, what in _REQUIRED_SECRETS:
        node: Any = config
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and not node.get(name):
            field = ".".join((*path, name))
            raise InvalidInput(
                "This secret is required: it is neither sent nor stored",
                error_id="secret-required",
                field=field,
                needed=what,
            )
    tg = config.get("telegram")
    if (
        isinstance(tg, dict)
        and tg.get("mode") == "webhook"
        and not (tg.get("webhook_secret") and tg.get("webhook_url"))
    ):
        raise InvalidInput(
            "Webhook mode needs telegram.webhook_url and telegram.webhook_secret",
            error_id="secret-required",
            field="telegram.webhook_secret" if tg.get("webhook_url") else "telegram.webhook_url",
        )
    return config


def _entry_out(e: EntryPoint) -> EntryPointOut:
    shown = redact_secrets(dict(e.config or {}))
    return EntryPointOut(
        id=e.id,
        name=e.name,
        channel=Channel(e.channel),
        address=e.address,
        project_id=e.project_id,
        default_queue_id=e.default_queue_id,
        rules=[RuleIn(**rule) for rule in e.config.get("rules", [])],
        priority=int(e.config.get("priority", 0)),
        email=email_settings(e.config) if "email" in e.config else None,
        chat=chat_settings(e.config) if "chat" in e.config else None,
        sms=SmsSettings.model_validate(shown["sms"]) if isinstance(shown.get("sms"), dict) else None,
        telegram=TelegramSettings.model_validate(shown["telegram"])
        if isinstance(shown.get("telegram"), dict)
        else None,
        secrets_set=secrets_set(e.config),
    )
