"""Request and response shapes of the ACD: queues, agents, entry points, contacts, agent actions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from frontoffice.domain import routing as r
from frontoffice.domain.model import Channel

from .chat_settings import ChatSettings
from .email_settings import EmailSettings
from .messaging_settings import SmsSettings, TelegramSettings
from .schemas import BLANK, N_, Input, InteractionOut, Output, blank_field

Seconds = Annotated[float, Field(ge=0, le=7 * 86400)]
SkillLevels = dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[int, Field(ge=1, le=10)]]


class EscalationIn(Input):
    after_s: Seconds
    relax_levels: int = Field(default=0, ge=0, le=10)
    add_queues: list[int] = Field(default_factory=list, max_length=20)


class QueueSettings(Input):
    """Routing settings of a queue; every field has a sensible default."""

    strategy: Literal[
        "longest_idle",
        "round_robin",
        "fewest_contacts",
        "least_occupied",
        "best_skill",
        "random_weighted",
        "ring_all",
    ] = "longest_idle"
    required_skills: SkillLevels = Field(default_factory=dict)
    weight: float = Field(default=1.0, gt=0, le=100)
    offer_timeout_s: float = Field(default=20.0, gt=0, le=3600)
    wrap_up_s: Seconds = 0.0
    sticky_s: Seconds = 0.0
    max_wait_s: Seconds | None = None
    max_length: int | None = Field(default=None, ge=0, le=1_000_000)
    overflow_queue_id: int | None = None
    fallback_action: Literal["voicemail", "callback", "ticket", "message_and_disconnect"] | None = None
    no_agents_action: Literal["join", "refuse", "overflow"] = "join"
    closed_action: Literal["join", "refuse", "overflow"] = "overflow"
    escalations: list[EscalationIn] = Field(default_factory=list, max_length=10)
    calendar_id: int | None = None
    sl_threshold_s: float = Field(default=20.0, gt=0, le=3600, description="Service-level answer target")
    disposition_required: bool = False
    closed_message: str = Field(
        default="",
        max_length=1000,
        description="told to a contact turned away with message_and_disconnect (empty: a default text)",
    )


class QueueIn(Input):
    name: str = Field(min_length=1, max_length=200)
    project_id: int | None = None
    settings: QueueSettings = Field(default_factory=QueueSettings)


class QueuePatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    project_id: int | None = None
    settings: QueueSettings | None = None


class QueueOut(BaseModel):
    id: int
    name: str
    project_id: int | None
    settings: QueueSettings
    queue_names: dict[int, str] = Field(
        default_factory=dict,
        description="the names of the queues the settings name by id (overflow, escalations), by id",
    )

    def referenced_queue_ids(self) -> set[int]:
        """The queues this queue's settings name: its overflow queue and its escalations' queues."""
        ids = {queue_id for step in self.settings.escalations for queue_id in step.add_queues}
        if self.settings.overflow_queue_id is not None:
            ids.add(self.settings.overflow_queue_id)
        return ids

    def with_queue_names(self, names: Mapping[int, str]) -> QueueOut:
        """This queue with ``queue_names`` filled from ``names`` (every queue's name by id)."""
        found = {qid: names[qid] for qid in sorted(self.referenced_queue_ids()) if qid in names}
        return self.model_copy(update={"queue_names": found})


class AgentProfileIn(Input):
    skills: SkillLevels = Field(default_factory=dict)
    queues: dict[int, Annotated[int, Field(ge=0, le=100)]] = Field(
        default_factory=dict, description="queue id -> tier (lower tiers are offered first)"
    )
    capacity: dict[Channel, Annotated[int, Field(ge=0, le=50)]] = Field(
        default_factory=lambda: {Channel(c): n for c, n in r.DEFAULT_CAPACITY.items()}
    )
    weight: float = Field(default=1.0, gt=0, le=100)


class AgentProfileOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    skills: dict[str, int]
    queues: dict[int, int]
    capacity: dict[str, int]
    weight: float
    state: str
    state_reason: str | None
    state_since: datetime | None


class RuleIn(Input):
    rule: str = Field(min_length=1, max_length=2000)
    queue_id: int


class EntryPointIn(Input):
    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    address: str = Field(min_length=1, max_length=320, description="number, address, widget or source id")
    project_id: int | None = None
    default_queue_id: int | None = None
    rules: list[RuleIn] = Field(default_factory=list, max_length=100)
    priority: int = Field(default=0, ge=-100, le=100)
    email: EmailSettings | None = Field(
        default=None, description="email entry points (and web forms answered by email): docs/outbox.md"
    )
    chat: ChatSettings | None = Field(default=None, description="web chat entry points: docs/chat.md")
    sms: SmsSettings | None = Field(
        default=None, description="SMS entry points (SMPP or HTTP gateway): docs/sms.md"
    )
    telegram: TelegramSettings | None = Field(
        default=None, description="Telegram bot entry points (channel messenger): docs/telegram.md"
    )


class EntryPointOut(BaseModel):
    id: int
    name: str
    channel: Channel
    address: str
    project_id: int | None
    default_queue_id: int | None
    rules: list[RuleIn]
    priority: int
    email: EmailSettings | None = None
    chat: ChatSettings | None = None
    sms: SmsSettings | None = None
    telegram: TelegramSettings | None = None
    secrets_set: list[str] = Field(
        default_factory=list, description="stored write-only secrets (their values are never shown)"
    )


class CustomerFields(Input):
    """Who the contact is from; looked up by phone, email or chat id, created if unknown."""

    first_name: str = Field(default="", max_length=200)
    last_name: str = Field(default="", max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    email: EmailStr | None = None
    chat_id: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")


# Contact attributes that name an agent for sticky routing (see routing.Contact.preferred_agent).
AGENT_ATTRIBUTES = ("preferred_agent_id", "last_agent_id")


class ContactIn(Input):
    """A new inbound contact (web form, external system). Routed by its entry point's rules."""

    channel: Channel = Channel.WEBFORM
    entry_point: str | None = Field(default=None, max_length=320, description="the entry point's address")
    entry_point_id: int | None = None
    subject: str = Field(default="", max_length=500)
    body: str = Field(default="", max_length=100_000)
    priority: int = Field(default=0, ge=-100, le=100)
    customer: CustomerFields = Field(default_factory=CustomerFields)
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)
    external_ref: str | None = Field(default=None, max_length=500)

    @field_validator("attributes")
    @classmethod
    def _agent_attributes(
        cls, attributes: dict[str, str | int | float | bool | None]
    ) -> dict[str, str | int | float | bool | None]:
        """The attributes naming an agent (sticky routing) hold a user id: a positive whole number,
        given as a number (as user ids are everywhere in the API) or as its digits; stored as a number.
        Anything else is refused, naming the attribute, rather than silently routing without it."""
        errors: list[InitErrorDetails] = []
        normal = dict(attributes)
        for key in AGENT_ATTRIBUTES:
            value = attributes.get(key)
            if value is None:
                continue
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                normal[key] = value
                continue
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("user_id", "must be a user id (a positive whole number)"),
                    loc=(key,),
                    input=attributes[key],
                )
            )
        if errors:
            raise ValidationError.from_exception_data("attributes", errors)
        return normal

    @model_validator(mode="after")
    def _entry(self) -> ContactIn:
        if self.entry_point is None and self.entry_point_id is None:
            raise ValueError("give entry_point (its address) or entry_point_id")
        return self

    @model_validator(mode="after")
    def _says_something(self) -> ContactIn:
        """A contact with no subject, no body and nobody to answer is an empty record: refused,
        naming the subject (the field a form shows first)."""
        c = self.customer
        anyone = c.first_name or c.last_name or c.phone or c.email or c.chat_id
        if not (self.subject or self.body or anyone):
            raise blank_field("ContactIn", "subject", N_("Give the contact a subject or say who it is from"))
        return self


class ContactCreated(BaseModel):
    interaction: InteractionOut
    created: bool = Field(description="false when an earlier request with the same Idempotency-Key made it")


class LoginIn(Input):
    state: Literal["available", "not_ready"] = "available"
    reason: str | None = Field(default=None, max_length=64)
    queues: list[int] | None = Field(
        default=None, max_length=500, description="the queue ids to take contacts from; null: all of mine"
    )


class QueueChoiceIn(Input):
    queues: list[int] = Field(min_length=1, max_length=500, description="queue ids, a subset of mine")


class StateIn(Input):
    state: Literal["available", "not_ready", "offline"]
    reason: str | None = Field(default=None, max_length=64)


class CompleteIn(Input):
    disposition: str | None = Field(default=None, max_length=64)
    notes: str = Field(default="", max_length=20_000, description="empty for no note; only spaces is refused")
    callback_at: datetime | None = None

    @field_validator("notes", mode="before")
    @classmethod
    def _notes_not_blank(cls, notes: Any) -> Any:
        """Spaces only would be stored as an empty note with the contact: say so instead."""
        if isinstance(notes, str) and notes and not notes.strip():
            raise PydanticCustomError(BLANK, N_("The note is empty"))
        return notes


class TransferIn(Input):
    queue_id: int | None = None
    agent_id: int | None = None

    @model_validator(mode="after")
    def _one(self) -> TransferIn:
        if (self.queue_id is None) == (self.agent_id is None):
            raise ValueError("give exactly one of queue_id and agent_id")
        return self


class PriorityIn(Input):
    priority: int = Field(ge=-100, le=100)


CodeName = Annotated[str, Field(min_length=1, max_length=200)]


class CodeIn(Input):
    """A disposition or not-ready reason: its code, and its name per language (``en``, ``ru``).

    ``name`` is the name for a language without its own (and the name of codes saved before names per
    language); with neither, the code itself is shown.
    """

    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    name: str = Field(default="", max_length=200)
    names: dict[Literal["en", "ru"], CodeName] = Field(default_factory=dict)
    active: bool = True

    def stored_names(self) -> dict[str, str]:
        """``names`` as stored (a JSON object)."""
        return {str(language): name for language, name in self.names.items()}


class CodeOut(Output):
    code: str
    name: str = Field(
        description="the name in the request's language: its own, else the default, else the code"
    )
    names: dict[str, str] = Field(default_factory=dict)
    active: bool

    def in_language(self, language: str) -> CodeOut:
        """This code with ``name`` in ``language`` (falling back to the default name, then the code)."""
        return self.model_copy(update={"name": self.names.get(language) or self.name or self.code})


class QueueLive(BaseModel):
    queue_id: int
    name: str
    open: bool
    waiting: int
    longest_wait_s: float
    agents_logged_in: int
    agents_available: int
    agents_on_contact: int
    agents_wrap_up: int
    agents_not_ready: int
    #: agents configured for the queue, signed in or not; 0 is shown as critical on the wallboard.
    members: int = 0
    offered_today: int = 0
    answered_today: int = 0
    abandoned_today: int = 0
    service_level_today: float | None = None
    asa_today_s: float | None = None
    longest_wait_today_s: float | None = None
    turned_away_today: int = 0
    overflowed_in_today: int = 0
    overflowed_out_today: int = 0
    #: moved to another queue while waiting (by a supervisor).
    transferred_today: int = 0


class AgentLive(BaseModel):
    agent_id: int
    username: str
    display_name: str
    state: str
    reason: str | None
    #: takes new offers once it has room. False while ``on_contact``/``wrap_up``: not ready (with
    #: ``reason``) is pending, and applies when the agent's contacts are done.
    ready: bool = False
    since: float
    time_in_state_s: float
    contact_ids: list[int]
    offered_contact_ids: list[int]
    contacts_today: int


class Wallboard(BaseModel):
    at: float
    queues: list[QueueLive]
    agents: list[AgentLive]
    stats: dict[str, Any] = Field(default_factory=dict)
