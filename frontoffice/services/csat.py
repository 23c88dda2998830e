"""Customer satisfaction (CSAT): a survey when a ticket is solved, answered through a signed, expiring
public link (no sign-in), and its results in reports (docs/helpdesk.md, "Satisfaction surveys").

- :meth:`CsatService.ticket_solved` runs in the transaction that solves a ticket: the first solve of
  a ticket makes its survey (one per ticket; a ticket solved again keeps it), copying who and what it
  rates (the assignee, queue, project) and the customer's language.
- The link is ``<public_url>/csat/<token>``: the token is the survey's id signed with the node secret
  (``itsdangerous``, as the session cookie), so it cannot be guessed or altered; it expires with the
  survey (``expires_at``, from the ``csat_valid_days`` setting), checked against the stored row.
- Answering is safe to repeat: a later answer within the window **replaces** the earlier one (the
  customer changed their mind; the report counts one answer per survey); after the window it is
  refused (``409 survey-expired``).
- The survey goes to the customer through the outbox, in the transaction that solves the ticket:
  :func:`survey_email` composes the message and :func:`send_survey` hands it to the service's
  ``queue_email`` (bootstrap wires ``TicketOutbound.queue_survey`` of services/ticket_outbound.py: on
  the ticket's email thread, else a new email contact). A customer without an email address gets it
  as a message in the ticket's open chat, SMS or messenger conversation (``queue_text``). One survey
  per ticket, so a ticket solved again sends none. A customer who cannot be reached, or a site
  without an address to send from, gets no message (the survey row still records the solve; the
  ticket's history says why nothing went out).
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import Conflict, DomainError, InvalidInput, NotFound
from frontoffice.i18n import gettext
from frontoffice.store.tables import CsatSurvey, Customer, Identity, Ticket

from .case_schemas import CsatOut
from .context import Actor, Clock, audit, system_clock
from .helpdesk_settings import helpdesk_settings
from .schemas import Input
from .scope import ticket_visible, where

__all__ = [
    "CSAT_SALT",
    "CsatAnswerIn",
    "CsatGroup",
    "CsatOut",
    "CsatReport",
    "CsatService",
    "PublicSurvey",
    "QueueEmail",
    "QueueText",
    "SurveyEmail",
    "send_survey",
    "survey_email",
]

#: Salt of the survey tokens: a session cookie signed with the same key is not a survey token.
CSAT_SALT = "frontoffice.csat"
#: The longest period one report reads, a quarter (as the SLA report).
MAX_REPORT_DAYS = 92
#: Ratings: 1 (very unsatisfied) to 5 (very satisfied), as Zendesk's and Freshdesk's five-point scale.
RATINGS = (1, 2, 3, 4, 5)
#: A comment's length at most: a few paragraphs; more is a new ticket.
MAX_COMMENT = 2000


class CsatAnswerIn(Input):
    rating: int = Field(ge=1, le=5, description="1 (very unsatisfied) to 5 (very satisfied)")
    comment: str = Field(default="", max_length=MAX_COMMENT)


class PublicSurvey(BaseModel):
    """What the public page shows (nothing about the ticket but its number and subject)."""

    ticket_id: int
    subject: str
    language: str
    expires_at: datetime
    expired: bool
    rating: int | None = None
    comment: str | None = None
    answered_at: datetime | None = None


class CsatGroup(BaseModel):
    """The figures of one agent, queue or project (``key`` null: none), or of everything."""

    key: int | None
    sent: int
    answered: int
    response_rate: float | None = Field(description="answered / sent; null: nothing sent")
    average: float | None = Field(description="mean rating; null: no answer")
    distribution: dict[str, int] = Field(description='answers per rating, "1" to "5"')


class CsatReport(BaseModel):
    since: datetime
    until: datetime
    group_by: str
    total: CsatGroup
    groups: list[CsatGroup]


@dataclass(frozen=True, slots=True)
class SurveyEmail:
    """The survey message for the customer, in their language."""

    to: str | None
    subject: str
    body: str
    language: str
    ticket_id: int


class QueueEmail(Protocol):
    """The outbox's ``queue_email`` (services/outbox.py of the email channel): commit an outgoing
    message with the caller's transaction; the outbox delivers it with retries. A domain error it
    raises must come before it writes anything (the survey is then not sent; the solve goes on)."""

    def __call__(
        self, s: AsyncSession, *, to: str, subject: str, body: str, ticket_id: int
    ) -> Awaitable[Any]: ...


class QueueText(Protocol):
    """Queue a text in the ticket's open chat, SMS or messenger conversation (in the caller's
    transaction); the message's id, or ``None`` when the customer cannot be reached there."""

    def __call__(self, s: AsyncSession, *, ticket_id: int, body: str) -> Awaitable[int | None]: ...


def survey_email(survey: CsatSurvey, ticket: Ticket, url: str, to: str | None) -> SurveyEmail:
    """Compose the survey message (subject and plain text) in the survey's language."""
    language = survey.language if survey.language in ("en", "ru") else "en"
    subject = gettext("How did we do? Ticket #{number}", language).format(number=ticket.id)
    body = "\n\n".join(
        [
            gettext("Your request “{subject}” was solved.", language).format(subject=ticket.subject),
            gettext("Please rate our answer from 1 to 5 and tell us what we could do better:", language),
            url,
            gettext("The link works until {date}.", language).format(date=survey.expires_at.date()),
        ]
    )
    return SurveyEmail(to=to, subject=subject, body=body, language=language, ticket_id=ticket.id)


async def send_survey(
    s: AsyncSession, survey: CsatSurvey, ticket: Ticket, url: str, queue_email: QueueEmail
) -> SurveyEmail | None:
    """Queue the survey message to the customer's email in the caller's transaction through the
    outbox's ``queue_email``; ``None`` (nothing queued) for a customer without an email address."""
    to = None
    if ticket.customer_id is not None:
        to = await s.scalar(
            select(Identity.value)
            .where(Identity.customer_id == ticket.customer_id, Identity.kind == "email")
            .order_by(Identity.id)
            .limit(1)
        )
    message = survey_email(survey, ticket, url, to)
    if message.to is None:
        return None
    await queue_email(s, to=message.to, subject=message.subject, body=message.body, ticket_id=ticket.id)
    return message


class CsatService:
    """Surveys of solved tickets: made when solving, answered publicly, reported."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        secret: str,
        public_url: str,
        queue_email: QueueEmail | None = None,
        queue_text: QueueText | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        # The outbox's way to the customer (None: surveys are made and linked, not sent).
        self.queue_email = queue_email
        # ... and, for a customer without email, the ticket's chat/SMS/messenger conversation.
        self.queue_text = queue_text
        self.public_url = public_url.rstrip("/")
        self._signer = URLSafeSerializer(secret, salt=CSAT_SALT)

    # ------------------------------------------------------------------ links
    def token(self, survey_id: int) -> str:
        return str(self._signer.dumps(survey_id))

    def url(self, survey: CsatSurvey) -> str:
        """The customer's link, in the survey's language."""
        return f"{self.public_url}/csat/{self.token(survey.id)}?lang={survey.language}"

    def _survey_id(self, token: str) -> int:
        try:
            value = self._signer.loads(token)
        except BadSignature:
            raise NotFound("No such survey", error_id="no-such-survey") from None
        if not isinstance(value, int):
            raise NotFound("No such survey", error_id="no-such-survey")
        return value

    # ------------------------------------------------------------------ in the solving transaction
    async def ticket_solved(self, s: AsyncSession, ticket: Ticket, now: datetime) -> CsatSurvey | None:
        """Make the ticket's survey at its first solve (in the caller's transaction); ``None`` when
        surveys are off or the ticket has one already."""
        settings = await helpdesk_settings(s)
        if not settings.csat_enabled:
            return None
        if await s.scalar(select(CsatSurvey.id).where(CsatSurvey.ticket_id == ticket.id)) is not None:
            return None
        language = "en"
        if ticket.customer_id is not None:
            customer = await s.get(Customer, ticket.customer_id)
            if customer is not None and customer.language in ("en", "ru"):
                language = customer.language
        survey = CsatSurvey(
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            agent_id=ticket.assignee_id,
            queue_id=ticket.queue_id,
            project_id=ticket.project_id,
            language=language,
            sent_at=now,
            expires_at=now + timedelta(days=settings.csat_valid_days),
        )
        s.add(survey)
        await s.flush()
        sent_to, not_sent = None, None
        if self.queue_email is not None:
            try:
                # A survey that cannot go out (no address to send from: queue_email refuses before
                # writing anything) does not stop the ticket being solved.
                message = await send_survey(s, survey, ticket, self.url(survey), self.queue_email)
                sent_to = None if message is None else message.to
                not_sent = "no-customer-email" if message is None else None
            except DomainError as e:
                not_sent = e.error_id
        if sent_to is None and self.queue_text is not None:
            # No email: the survey as a message in the conversation the customer is still in.
            text = survey_email(survey, ticket, self.url(survey), None)
            try:
                queued = await self.queue_text(s, ticket_id=ticket.id, body=f"{text.subject}\n\n{text.body}")
            except DomainError as e:  # refused before writing (an SMS number that opted out)
                not_sent = e.error_id
            else:
                if queued is not None:
                    sent_to, not_sent = "conversation", None
        # The ticket's history (its timeline) shows the survey and whether it went out.
        audit(
            s,
            Actor.system(),
            "ticket.csat_survey",
            "ticket",
            ticket.id,
            now,
            survey_id=survey.id,
            sent_to=sent_to,
            not_sent=not_sent,
        )
        return survey

    async def for_ticket(self, s: AsyncSession, ticket_id: int) -> CsatOut | None:
        survey = await s.scalar(select(CsatSurvey).where(CsatSurvey.ticket_id == ticket_id))
        if survey is None:
            return None
        return CsatOut(
            survey_id=survey.id,
            url=self.url(survey),
            sent_at=survey.sent_at,
            expires_at=survey.expires_at,
            rating=survey.rating,
            comment=survey.comment,
            answered_at=survey.answered_at,
        )

    # ------------------------------------------------------------------ public
    async def public(self, token: str) -> PublicSurvey:
        """The survey a link names (404 for a token that is not ours)."""
        async with self.sessions() as s:
            survey, ticket = await self._survey(s, self._survey_id(token))
            return self._public(survey, ticket)

    async def answer(self, token: str, data: CsatAnswerIn) -> PublicSurvey:
        """Record the customer's answer; a later one within the window replaces it (one transaction)."""
        async with self.sessions.begin() as s:
            survey, ticket = await self._survey(s, self._survey_id(token))
            now = self.clock()
            if now >= survey.expires_at:
                raise Conflict(
                    "This survey is closed", error_id="survey-expired", expired_at=survey.expires_at
                )
            replaced = survey.rating
            survey.rating = data.rating
            survey.comment = data.comment.strip() or None
            survey.answered_at = now
            audit(
                s,
                Actor.system(),
                "ticket.csat_answer",
                "ticket",
                ticket.id,
                now,
                survey_id=survey.id,
                rating=data.rating,
                comment=survey.comment,
                replaced_rating=replaced,
            )
            await s.flush()
            return self._public(survey, ticket)

    async def _survey(self, s: AsyncSession, survey_id: int) -> tuple[CsatSurvey, Ticket]:
        survey = await s.get(CsatSurvey, survey_id)
        ticket = None if survey is None else await s.get(Ticket, survey.ticket_id)
        if survey is None or ticket is None:
            raise NotFound("No such survey", error_id="no-such-survey")
        return survey, ticket

    def _public(self, survey: CsatSurvey, ticket: Ticket) -> PublicSurvey:
        return PublicSurvey(
            ticket_id=ticket.id,
            subject=ticket.subject,
            language=survey.language,
            expires_at=survey.expires_at,
            expired=self.clock() >= survey.expires_at,
            rating=survey.rating,
            comment=survey.comment,
            answered_at=survey.answered_at,
        )

    # ------------------------------------------------------------------ report
    async def report(
        self,
        actor: Actor,
        since: datetime,
        until: datetime,
        *,
        group_by: Literal["agent", "queue", "project"] = "agent",
        project_id: int | None = None,
    ) -> CsatReport:
        """Surveys sent in ``[since, until)`` of the tickets the actor may see: sent, answered,
        response rate, average rating and the distribution of ratings, in total and per agent, queue
        or project (as at sending)."""
        actor.require("stats.read")
        if not since < until <= since + timedelta(days=MAX_REPORT_DAYS):
            raise InvalidInput(
                f"The period must be positive and at most {MAX_REPORT_DAYS} days",
                error_id="invalid-period",
                max_days=MAX_REPORT_DAYS,
            )
        columns = {
            "agent": CsatSurvey.agent_id,
            "queue": CsatSurvey.queue_id,
            "project": CsatSurvey.project_id,
        }
        column = columns[group_by]
        stmt = where(
            select(column, CsatSurvey.rating)
            .join(Ticket, Ticket.id == CsatSurvey.ticket_id)
            .where(CsatSurvey.sent_at >= since, CsatSurvey.sent_at < until),
            ticket_visible(actor),
        )
        if project_id is not None:
            stmt = stmt.where(CsatSurvey.project_id == project_id)
        groups: dict[int | None, list[int | None]] = {}
        everything: list[int | None] = []
        async with self.sessions() as s:
            for key, rating in await s.execute(stmt):
                groups.setdefault(key, []).append(rating)
                everything.append(rating)
        ordered = sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        return CsatReport(
            since=since,
            until=until,
            group_by=group_by,
            total=_figures(None, everything),
            groups=[_figures(key, ratings) for key, ratings in ordered],
        )


def _figures(key: int | None, ratings: list[int | None]) -> CsatGroup:
    answered = [r for r in ratings if r is not None]
    return CsatGroup(
        key=key,
        sent=len(ratings),
        answered=len(answered),
        response_rate=len(answered) / len(ratings) if ratings else None,
        average=round(statistics.fmean(answered), 3) if answered else None,
        distribution={str(n): sum(1 for r in answered if r == n) for n in RATINGS},
    )
