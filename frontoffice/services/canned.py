"""Canned answers (reply templates with variables, per language, shared or personal) and macros.

Shared answers and macros (``owner_id`` None) are written by supervisors; personal ones by their
owner. The desk's ``/`` picker calls :meth:`CannedService.search`; a macro is applied to a ticket by
:meth:`frontoffice.services.tickets.TicketService.apply_macro` in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.canned import render
from frontoffice.domain.cases import TicketPriority, TicketStatus
from frontoffice.domain.exceptions import Conflict, NotFound
from frontoffice.store.tables import CannedAnswer, Customer, Macro, Ticket, User

from .case_schemas import Tag
from .context import Actor, Clock, audit, system_clock
from .schemas import Input
from .scope import visible_ticket

__all__ = [
    "CannedAnswerIn",
    "CannedAnswerOut",
    "CannedAnswerPatch",
    "CannedService",
    "MacroActions",
    "MacroIn",
    "MacroOut",
    "MacroPatch",
    "RenderedAnswer",
    "answer_values",
    "visible_answer",
]

#: The picker shows a screenful; typing more letters narrows it.
SEARCH_LIMIT = 20
#: The editor's page lists every answer at once: a desk has hundreds, not thousands.
MAX_LIST = 500


class CannedAnswerIn(Input):
    shortcut: str = Field(min_length=1, max_length=64, pattern=r"^[^\s/]+$", description="typed after /")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(
        min_length=1, max_length=20_000, description="with {{customer.name}}, {{ticket.number}}, ..."
    )
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    shared: bool = Field(default=False, description="for everyone (supervisors); else personal")


class CannedAnswerPatch(Input):
    """Fields to change. ``shared`` moves a personal answer to everyone (supervisors) or a shared one
    to the editor's own answers."""

    shortcut: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^\s/]+$")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    shared: bool | None = None


class CannedAnswerOut(BaseModel):
    id: int
    shortcut: str
    title: str
    body: str
    language: str
    shared: bool
    owner_id: int | None
    updated_at: datetime


class RenderedAnswer(BaseModel):
    answer_id: int
    text: str
    missing: list[str] = Field(description="placeholders left as written (unknown or without a value)")


class MacroActions(Input):
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    assignee_id: int | None = None
    add_tags: list[Tag] = Field(default_factory=list)
    remove_tags: list[Tag] = Field(default_factory=list)
    canned_answer_id: int | None = None


class MacroIn(Input):
    name: str = Field(min_length=1, max_length=200)
    actions: MacroActions
    shared: bool = False


class MacroPatch(Input):
    """Fields to change; ``actions`` replaces the macro's actions as a whole."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    actions: MacroActions | None = None
    shared: bool | None = None


class MacroOut(BaseModel):
    id: int
    name: str
    actions: MacroActions
    shared: bool
    owner_id: int | None


def _answer_out(a: CannedAnswer) -> CannedAnswerOut:
    return CannedAnswerOut(
        id=a.id,
        shortcut=a.shortcut,
        title=a.title,
        body=a.body,
        language=a.language,
        shared=a.owner_id is None,
        owner_id=a.owner_id,
        updated_at=a.updated_at,
    )


def _macro_out(m: Macro) -> MacroOut:
    return MacroOut(
        id=m.id,
        name=m.name,
        actions=MacroActions.model_validate(m.actions),
        shared=m.owner_id is None,
        owner_id=m.owner_id,
    )


def _usable(owner_column: Any, actor: Actor) -> ColumnElement[bool]:
    shared = owner_column.is_(None)
    return shared if actor.user_id is None else or_(shared, owner_column == actor.user_id)


async def visible_answer(s: AsyncSession, actor: Actor, answer_id: int) -> CannedAnswer:
    answer = await s.get(CannedAnswer, answer_id)
    if answer is None or (answer.owner_id is not None and answer.owner_id != actor.user_id):
        raise NotFound("No such canned answer", error_id="no-such-canned-answer", answer_id=answer_id)
    return answer


async def answer_values(s: AsyncSession, actor: Actor, ticket: Ticket) -> dict[str, str]:
    """The variables of a canned answer for ``ticket`` answered by ``actor``."""
    values = {"ticket.number": str(ticket.id), "ticket.subject": ticket.subject}
    customer = None if ticket.customer_id is None else await s.get(Customer, ticket.customer_id)
    if customer is not None:
        name = " ".join(p for p in (customer.first_name, customer.last_name) if p)
        if name:
            values["customer.name"] = name
        if customer.first_name:
            values["customer.first_name"] = customer.first_name
    agent = None if actor.user_id is None else await s.get(User, actor.user_id)
    if agent is not None:
        values["agent.name"] = agent.display_name or agent.username
    return values


class CannedService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create_answer(self, actor: Actor, data: CannedAnswerIn) -> CannedAnswerOut:
        actor.require("tickets.write")
        if data.shared:
            actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            now = self.clock()
            answer = CannedAnswer(
                owner_id=None if data.shared else actor.user_id,
                language=data.language,
                shortcut=data.shortcut,
                title=data.title,
                body=data.body,
                created_at=now,
                updated_at=now,
            )
            s.add(answer)
            await s.flush()
            audit(s, actor, "canned_answer.create", "canned_answer", answer.id, now, shared=data.shared)
            return _answer_out(answer)

    async def update_answer(self, actor: Actor, answer_id: int, patch: CannedAnswerPatch) -> CannedAnswerOut:
        """Change an answer: one's own personal answers, or (supervisors) the shared ones."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            answer = await self._writable_answer(s, actor, answer_id)
            if patch.shared is not None and patch.shared != (answer.owner_id is None):
                if patch.shared:
                    actor.require("agents.supervise")
                answer.owner_id = None if patch.shared else actor.user_id
            changes = patch.model_dump(exclude_unset=True, exclude={"shared"})
            for field in ("shortcut", "title", "body", "language"):
                value = changes.get(field)
                if value is not None:
                    setattr(answer, field, value)
            now = self.clock()
            answer.updated_at = now
            audit(
                s,
                actor,
                "canned_answer.update",
                "canned_answer",
                answer.id,
                now,
                fields=sorted(patch.model_dump(exclude_unset=True)),
            )
            await s.flush()
            return _answer_out(answer)

    async def delete_answer(self, actor: Actor, answer_id: int) -> None:
        """Delete an answer (as :meth:`update_answer` allows); refused (409) while a macro inserts it,
        so no macro is left pointing at nothing."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            answer = await self._writable_answer(s, actor, answer_id)
            users = [
                m.id
                for m in await s.scalars(select(Macro).order_by(Macro.id))
                if (m.actions or {}).get("canned_answer_id") == answer_id
            ]
            if users:
                raise Conflict(
                    "A macro inserts this answer: change or delete the macro first",
                    error_id="canned-answer-in-use",
                    answer_id=answer_id,
                    macro_ids=users,
                )
            await s.delete(answer)
            audit(s, actor, "canned_answer.delete", "canned_answer", answer_id, self.clock())

    async def _writable_answer(self, s: AsyncSession, actor: Actor, answer_id: int) -> CannedAnswer:
        answer = await visible_answer(s, actor, answer_id)
        if answer.owner_id is None:
            actor.require("agents.supervise")
        return answer

    async def search(
        self, actor: Actor, q: str = "", *, language: str | None = None, limit: int = SEARCH_LIMIT
    ) -> list[CannedAnswerOut]:
        """Shared and own answers whose shortcut starts with ``q`` or whose title contains it (case
        does not matter), shortcut matches first; a desk has hundreds of answers, not millions, so
        this reads the (language, owner) index and filters the few rows."""
        actor.require("tickets.read")
        stmt = select(CannedAnswer).where(_usable(CannedAnswer.owner_id, actor))
        if language is not None:
            stmt = stmt.where(CannedAnswer.language == language)
        key = q.strip().lower()
        async with self.sessions() as s:
            rows = list(await s.scalars(stmt.order_by(func.lower(CannedAnswer.shortcut), CannedAnswer.id)))
        if key:
            starts = [a for a in rows if a.shortcut.lower().startswith(key)]
            inside = [a for a in rows if a not in starts and key in a.title.lower()]
            rows = starts + inside
        return [_answer_out(a) for a in rows[: max(1, min(limit, MAX_LIST))]]

    async def render(self, actor: Actor, answer_id: int, ticket_id: int) -> RenderedAnswer:
        """The answer's text for the ticket: its variables filled."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            answer = await visible_answer(s, actor, answer_id)
            ticket = await visible_ticket(s, actor, ticket_id)
            text, missing = render(answer.body, await answer_values(s, actor, ticket))
        return RenderedAnswer(answer_id=answer_id, text=text, missing=missing)

    async def create_macro(self, actor: Actor, data: MacroIn) -> MacroOut:
        actor.require("tickets.write")
        if data.shared:
            actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            if data.actions.canned_answer_id is not None:
                await visible_answer(s, actor, data.actions.canned_answer_id)
            now = self.clock()
            macro = Macro(
                owner_id=None if data.shared else actor.user_id,
                name=data.name,
                actions=data.actions.model_dump(mode="json", exclude_unset=True),
                created_at=now,
                updated_at=now,
            )
            s.add(macro)
            await s.flush()
            audit(s, actor, "macro.create", "macro", macro.id, now, shared=data.shared)
            return _macro_out(macro)

    async def update_macro(self, actor: Actor, macro_id: int, patch: MacroPatch) -> MacroOut:
        """Change my own macro or (supervisors) a shared one; ``shared`` moves it as for answers."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            macro = await self._writable_macro(s, actor, macro_id)
            if patch.shared is not None and patch.shared != (macro.owner_id is None):
                if patch.shared:
                    actor.require("agents.supervise")
                macro.owner_id = None if patch.shared else actor.user_id
            if patch.name is not None:
                macro.name = patch.name
            if patch.actions is not None:
                if patch.actions.canned_answer_id is not None:
                    await visible_answer(s, actor, patch.actions.canned_answer_id)
                macro.actions = patch.actions.model_dump(mode="json", exclude_unset=True)
            now = self.clock()
            macro.updated_at = now
            fields = sorted(patch.model_dump(exclude_unset=True))
            audit(s, actor, "macro.update", "macro", macro.id, now, fields=fields)
            await s.flush()
            return _macro_out(macro)

    async def delete_macro(self, actor: Actor, macro_id: int) -> None:
        """Delete my own macro or (supervisors) a shared one."""
        actor.require("tickets.write")
        async with self.sessions.begin() as s:
            macro = await self._writable_macro(s, actor, macro_id)
            await s.delete(macro)
            audit(s, actor, "macro.delete", "macro", macro_id, self.clock(), name=macro.name)

    async def _writable_macro(self, s: AsyncSession, actor: Actor, macro_id: int) -> Macro:
        macro = await s.get(Macro, macro_id)
        if macro is None or (macro.owner_id is not None and macro.owner_id != actor.user_id):
            raise NotFound("No such macro", error_id="no-such-macro", macro_id=macro_id)
        if macro.owner_id is None:
            actor.require("agents.supervise")
        return macro

    async def macros(self, actor: Actor) -> list[MacroOut]:
        actor.require("tickets.read")
        async with self.sessions() as s:
            rows = await s.scalars(
                select(Macro).where(_usable(Macro.owner_id, actor)).order_by(Macro.name, Macro.id)
            )
            return [_macro_out(m) for m in rows]
