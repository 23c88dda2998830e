"""Request and response shapes of tickets (help desk) and deals (sales pipeline)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from frontoffice.domain.cases import TicketPriority, TicketStatus
from frontoffice.domain.sla import ClockState, SlaMetric

from .schemas import Input

__all__ = [
    "BuiltinTicketView",
    "CsatOut",
    "DealFilters",
    "DealIn",
    "DealOut",
    "DealPatch",
    "DealSort",
    "ForecastRow",
    "PipelineIn",
    "PipelineOut",
    "PipelineStageIn",
    "SavedViewIn",
    "SavedViewOut",
    "SavedViewPatch",
    "TicketBulkIn",
    "TicketBulkOut",
    "TicketFilters",
    "TicketIn",
    "TicketLinkIn",
    "TicketMergeIn",
    "TicketOut",
    "TicketPatch",
    "TicketSort",
    "TicketSplitIn",
    "ViewCount",
    "aware_utc",
]

# A ticket's tags: enough for any real triage scheme, small enough to keep the tag index tight.
MAX_TAGS = 20
TAG_PATTERN = r"^[^\s,]{1,64}$"
# How many tickets one bulk action changes: a page of the largest work list, in one transaction short
# enough not to hold locks an agent's single edit would wait on.
MAX_BULK = 500
STAGE_KEY = r"^[a-z0-9_]{1,32}$"

Tag = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=TAG_PATTERN)]

# The largest amount a deal may carry (in major units): far above any real deal, far below the
# 64-bit minor-unit column's limit even for currencies with three decimals.
MAX_DEAL_AMOUNT = Decimal(10) ** 13


def aware_utc(value: datetime | None) -> datetime | None:
    """Pydantic validator: an instant must carry its offset; stored in UTC."""
    return _aware(value)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give the time with a time zone offset")
    return None if value is None else value.astimezone(UTC)


class TicketIn(Input):
    customer_id: int
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    priority: TicketPriority = TicketPriority.NORMAL
    due_at: datetime | None = None
    assignee_id: int | None = Field(default=None, description="a user; null: unassigned")
    source_interaction_id: int | None = Field(
        default=None, description="the contact the ticket is opened from; it is linked to the ticket"
    )
    queue_id: int | None = Field(default=None, description="the queue whose team works the ticket")
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    project_id: int | None = Field(
        default=None,
        description="the client project; by default the source contact's, or the only project of a "
        "user limited to one",
    )

    _due = field_validator("due_at")(_aware)


class TicketPatch(Input):
    """Fields to change; null clears ``due_at`` and ``assignee_id``."""

    subject: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    due_at: datetime | None = None
    assignee_id: int | None = None
    queue_id: int | None = None
    project_id: int | None = Field(default=None, description="move the ticket to a project I work for")
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS, description="replaces the tags")

    _due = field_validator("due_at")(_aware)


class TicketLinkIn(Input):
    interaction_id: int


class CsatOut(BaseModel):
    """A ticket's survey, as the ticket shows it."""

    survey_id: int
    url: str = Field(description="the customer's public link (no sign-in)")
    sent_at: datetime
    expires_at: datetime
    rating: int | None = None
    comment: str | None = None
    answered_at: datetime | None = None


class SlaClockOut(BaseModel):
    """One SLA metric's clock on a ticket, read at the time of the answer."""

    metric: SlaMetric
    state: ClockState = Field(
        description="off: not started; paused: pending on the customer; met / breached: stopped in or "
        "after time (breached also while running past the deadline)"
    )
    target_s: int = Field(description="the policy's target in business seconds")
    warn_before_s: int
    remaining_s: float = Field(description="business seconds left (negative: past the deadline)")
    due_at: datetime | None = Field(description="when a running clock breaches (null: not running)")
    stopped_at: datetime | None = Field(description="when it was met or breached by an answer")


class TicketOut(BaseModel):
    id: int
    customer_id: int | None = Field(description="null: the customer was deleted")
    project_id: int | None
    subject: str
    description: str
    status: TicketStatus
    priority: TicketPriority
    assignee_id: int | None
    source_interaction_id: int | None
    interaction_ids: list[int] = Field(description="the contacts linked to the ticket, oldest first")
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    solved_at: datetime | None
    queue_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    merged_into_id: int | None = Field(default=None, description="the ticket this one was merged into")
    sla_policy_id: int | None = None
    follow_up_of_id: int | None = Field(default=None, description="the closed ticket this one follows up")
    sla_due_at: datetime | None = Field(
        default=None, description="the earliest deadline of a running SLA clock (null: none running)"
    )
    awaits_agent: bool = Field(
        default=False, description="the ticket waits for an agent (new, or the customer replied): routed work"
    )
    work_item_id: int | None = Field(
        default=None, description="its live work item in the ACD (an interaction on the ticket channel)"
    )
    csat: CsatOut | None = Field(
        default=None, description="its satisfaction survey (made when solved; on the ticket, not in lists)"
    )
    sla_clocks: list[SlaClockOut] = Field(
        default_factory=list,
        description="each SLA metric's clock: state, due time, time left (on the ticket, not in lists)",
    )


class DealIn(Input):
    customer_id: int
    title: str = Field(min_length=1, max_length=300)
    stage: str | None = Field(
        default=None,
        pattern=STAGE_KEY,
        description="a stage key of the pipeline; default: its first open stage",
    )
    pipeline_id: int | None = Field(
        default=None, description="default: the project's first pipeline, else the default one"
    )
    close_reason: str | None = Field(default=None, max_length=200, description="why it was won or lost")
    amount: Decimal = Field(default=Decimal(0), ge=0, lt=MAX_DEAL_AMOUNT, description="in major units")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. RUB, EUR")
    owner_id: int | None = None
    expected_close_on: date | None = Field(default=None, description="the day the owner expects to close it")
    project_id: int | None = Field(
        default=None, description="the client project; by default the only project of a user limited to one"
    )


class DealPatch(Input):
    """Fields to change; null clears ``owner_id``. ``amount`` and ``currency`` may change together."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    stage: str | None = Field(default=None, pattern=STAGE_KEY)
    close_reason: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, lt=MAX_DEAL_AMOUNT)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    owner_id: int | None = None
    expected_close_on: date | None = None


class DealOut(BaseModel):
    id: int
    customer_id: int | None = Field(description="null: the customer was deleted")
    project_id: int | None
    title: str
    stage: str = Field(description="a stage key of the deal's pipeline")
    pipeline_id: int | None = Field(default=None, description="null: the default pipeline")
    close_reason: str | None = None
    amount: Decimal = Field(description="in major units, as a decimal string")
    currency: str
    owner_id: int | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    expected_close_on: date | None = None


# ---------------------------------------------------------------------- work lists
class TicketSort(StrEnum):
    """The orders of a ticket work list; each reads an index in its order (docs/helpdesk.md)."""

    UPDATED_DESC = "-updated_at"
    UPDATED = "updated_at"
    CREATED_DESC = "-created_at"
    CREATED = "created_at"
    DUE = "due_at"  # soonest first, tickets without a due time last
    SLA_DUE = "sla_due_at"  # least SLA time left first, tickets without a running clock last


class BuiltinTicketView(StrEnum):
    MINE = "mine"
    TEAM = "team"
    UNASSIGNED = "unassigned"
    OPEN = "open"
    PENDING = "pending"
    OVERDUE = "overdue"
    SOLVED = "solved"


class TicketFilters(Input):
    """What a ticket work list keeps. Every filter narrows; several values of one filter are "any of"."""

    view: BuiltinTicketView | None = Field(default=None, description="a built-in view to start from")
    assignee: str | None = Field(
        default=None, pattern=r"^(me|none|[0-9]{1,18})$", description="me, none or a user id"
    )
    team: bool = Field(default=False, description="tickets of the queues the user serves")
    status: list[TicketStatus] = Field(default_factory=list)
    priority: list[TicketPriority] = Field(default_factory=list)
    queue_id: list[int] = Field(default_factory=list)
    project_id: list[int] = Field(default_factory=list)
    tag: list[Tag] = Field(default_factory=list, description="tickets with any of these tags")
    due_before: datetime | None = None
    due_after: datetime | None = None

    _due = field_validator("due_before", "due_after")(_aware)


class DealSort(StrEnum):
    UPDATED_DESC = "-updated_at"
    CREATED_DESC = "-created_at"
    EXPECTED_CLOSE = "expected_close_on"


class DealFilters(Input):
    owner: str | None = Field(default=None, pattern=r"^(me|none|[0-9]{1,18})$")
    stage: list[Annotated[str, StringConstraints(pattern=STAGE_KEY)]] = Field(default_factory=list)
    open: bool = Field(default=False, description="leave out won and lost deals")
    pipeline_id: int | None = None
    project_id: list[int] = Field(default_factory=list)
    close_month: str | None = Field(
        default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM of expected_close_on"
    )


class ViewCount(BaseModel):
    view: str = Field(description="a built-in view's name or saved:<id>")
    name: str
    count: int
    capped: bool = Field(description="true: there are at least this many (counting stops there)")


class SavedViewIn(Input):
    name: str = Field(min_length=1, max_length=200)
    shared: bool = Field(default=False, description="seen by every user (supervisors and admins only)")
    filters: TicketFilters = Field(default_factory=TicketFilters)
    sort: TicketSort = TicketSort.UPDATED_DESC


class SavedViewPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    shared: bool | None = None
    filters: TicketFilters | None = None
    sort: TicketSort | None = None


class SavedViewOut(BaseModel):
    id: int
    kind: Literal["tickets"]
    name: str
    shared: bool
    owner_id: int | None
    filters: TicketFilters
    sort: TicketSort
    created_at: datetime
    updated_at: datetime


class TicketBulkIn(Input):
    """Changes applied to every ticket listed, all or none (one transaction)."""

    ticket_ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    assignee_id: int | None = Field(default=None, description="null with the key given: unassign")
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    add_tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    remove_tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)


class TicketBulkOut(BaseModel):
    ticket_ids: list[int]


class TicketMergeIn(Input):
    """Merge these tickets (of the same customer) into the one in the path."""

    ticket_ids: list[int] = Field(min_length=1, max_length=MAX_BULK)


class TicketSplitIn(Input):
    """Contacts of a ticket to move to a new ticket of the same customer."""

    interaction_ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    subject: str = Field(min_length=1, max_length=500)


class ForecastRow(BaseModel):
    """The deals expected to close in one month, of one owner, in one currency."""

    month: str = Field(description="YYYY-MM of expected_close_on")
    owner_id: int | None
    currency: str
    deals: int
    amount: Decimal = Field(description="the open and won deals' amounts, in major units")
    weighted_amount: Decimal = Field(description="each amount times its stage's probability, rounded down")
    won_amount: Decimal


class PipelineStageIn(Input):
    key: str = Field(pattern=STAGE_KEY)
    name: str = Field(min_length=1, max_length=100)
    probability_pct: int = Field(ge=0, le=100)
    kind: Literal["open", "won", "lost"] = "open"


class PipelineIn(Input):
    """Stages in board order: exactly one won (100 %) and one lost (0 %), at least one open."""

    name: str = Field(min_length=1, max_length=200)
    project_id: int | None = None
    stages: list[PipelineStageIn] = Field(min_length=2, max_length=20)
    won_reasons: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list
    )
    lost_reasons: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list
    )


class PipelineOut(PipelineIn):
    id: int | None = Field(description="null: the default pipeline of deals without one")
