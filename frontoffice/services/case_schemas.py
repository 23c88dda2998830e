"""Request and response shapes of tickets (help desk) and deals (sales pipeline)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from frontoffice.domain.cases import DealStage, TicketPriority, TicketStatus

from .schemas import Input

__all__ = [
    "DealIn",
    "DealOut",
    "DealPatch",
    "TicketIn",
    "TicketLinkIn",
    "TicketOut",
    "TicketPatch",
]

# The largest amount a deal may carry (in major units): far above any real deal, far below the
# 64-bit minor-unit column's limit even for currencies with three decimals.
MAX_DEAL_AMOUNT = Decimal(10) ** 13


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

    _due = field_validator("due_at")(_aware)


class TicketLinkIn(Input):
    interaction_id: int


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


class DealIn(Input):
    customer_id: int
    title: str = Field(min_length=1, max_length=300)
    stage: DealStage = DealStage.LEAD
    amount: Decimal = Field(default=Decimal(0), ge=0, lt=MAX_DEAL_AMOUNT, description="in major units")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. RUB, EUR")
    owner_id: int | None = None
    project_id: int | None = Field(
        default=None, description="the client project; by default the only project of a user limited to one"
    )


class DealPatch(Input):
    """Fields to change; null clears ``owner_id``. ``amount`` and ``currency`` may change together."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    stage: DealStage | None = None
    amount: Decimal | None = Field(default=None, ge=0, lt=MAX_DEAL_AMOUNT)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    owner_id: int | None = None


class DealOut(BaseModel):
    id: int
    customer_id: int | None = Field(description="null: the customer was deleted")
    project_id: int | None
    title: str
    stage: DealStage
    amount: Decimal = Field(description="in major units, as a decimal string")
    currency: str
    owner_id: int | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
