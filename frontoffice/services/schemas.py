"""Input and output shapes of the use cases; the REST API uses them as its request and response bodies.

Inputs forbid unknown fields so a misspelt field is an error, not silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from frontoffice.domain.model import Channel, Direction, IdentityKind, InteractionState, Role

T = TypeVar("T")

Name = Annotated[str, Field(max_length=200)]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\-.:]+$")]
# Custom fields are a flat map of short scalar values; nested documents belong in a ticket or a note.
MAX_CUSTOM_FIELDS = 100


def N_(message: str) -> str:
    """Mark ``message`` for the gettext catalogs (``make messages``); the API translates it where it
    answers (a 422's ``details.errors[].message`` follows the request's language)."""
    return message


BLANK = "blank"  # the ``type`` of a 422 error for a field that must not be empty


def blank_field(model: str, field: str, message: str, value: Any = "") -> ValidationError:
    """A validation error naming ``field`` (as the request spells it) that is empty but must not be."""
    details = InitErrorDetails(type=PydanticCustomError(BLANK, message), loc=(field,), input=value)
    return ValidationError.from_exception_data(model, [details])


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def check_custom_fields(value: dict[str, Any]) -> dict[str, Any]:
    """A record's custom fields (customers, companies): how many, key names and value sizes."""
    if len(value) > MAX_CUSTOM_FIELDS:
        raise ValueError(f"at most {MAX_CUSTOM_FIELDS} custom fields")
    for key, item in value.items():
        if not key or len(key) > 64:
            raise ValueError("custom field names are 1–64 characters")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise ValueError(f"custom field {key!r} must be a string, number, boolean or null")
        if isinstance(item, str) and len(item) > 2000:
            raise ValueError(f"custom field {key!r} is longer than 2000 characters")
    return value


class IdentityIn(Input):
    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)
    label: str = Field(default="", max_length=64)


class IdentityOut(Output):
    id: int
    kind: IdentityKind
    value: str
    label: str


class CustomerIn(Input):
    first_name: Name = ""
    last_name: Name = ""
    middle_name: Name = ""
    company_id: int | None = None
    company_name: str | None = Field(default=None, max_length=300)
    owner_id: int | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    vip: bool = False
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    custom: dict[str, Any] = Field(default_factory=dict)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    project_id: int | None = Field(
        default=None,
        description="the client project the card is created in, so that project's team sees it; "
        "a user limited to projects who gives none creates it in all of theirs",
    )
    interaction_id: int | None = Field(
        default=None,
        description="a contact (from an unknown sender) to link to the new card in the same transaction; "
        "if it cannot be linked, no card is created",
    )

    _custom = field_validator("custom")(check_custom_fields)

    @model_validator(mode="after")
    def _not_blank(self) -> CustomerIn:
        """A card with no name, no company and no identity is nobody: refuse it rather than make a
        blank record (tags, VIP and custom fields do not say who the customer is)."""
        named = self.first_name or self.last_name or self.middle_name
        if not (named or self.company_id is not None or self.company_name or self.identities):
            raise blank_field(
                "CustomerIn", "first_name", N_("Give the customer a name, a company, a phone or an email")
            )
        return self


class CustomerPatch(Input):
    first_name: Name | None = None
    last_name: Name | None = None
    middle_name: Name | None = None
    company_id: int | None = None
    owner_id: int | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    vip: bool | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    custom: dict[str, Any] | None = None
    add_identities: list[IdentityIn] | None = Field(
        default=None,
        max_length=50,
        description="identities to add to the card with the other changes, in the same transaction: "
        "one taken by another customer or malformed refuses the whole edit",
    )

    @field_validator("custom")
    @classmethod
    def _custom(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_custom_fields(value)


class CompanyRef(Output):
    id: int
    name: str


class CustomerOut(Output):
    id: int
    first_name: str
    last_name: str
    middle_name: str
    display_name: str
    company: CompanyRef | None
    owner_id: int | None
    language: str | None
    vip: bool
    tags: list[str]
    custom: dict[str, Any]
    identities: list[IdentityOut]
    created_at: datetime
    updated_at: datetime


class CompanyIn(Input):
    name: str = Field(min_length=1, max_length=300)
    website: str | None = Field(default=None, max_length=300)
    custom: dict[str, Any] = Field(default_factory=dict)

    _custom = field_validator("custom")(check_custom_fields)


class CompanyOut(Output):
    id: int
    name: str
    website: str | None
    custom: dict[str, Any]
    created_at: datetime


class NoteIn(Input):
    body: str = Field(max_length=20_000, description="the note; blank (only spaces) is refused")

    @field_validator("body")
    @classmethod
    def _not_blank(cls, body: str) -> str:
        if not body:  # inputs are stripped: only spaces arrive empty
            raise PydanticCustomError(BLANK, N_("The note is empty"))
        return body


class NoteOut(Output):
    id: int
    customer_id: int
    author_id: int | None
    body: str
    created_at: datetime


class MergeIn(Input):
    keep_id: int
    merge_id: int


class DuplicateSuggestion(BaseModel):
    customer_ids: tuple[int, int]
    reason: str
    detail: str


class TimelineItem(BaseModel):
    kind: str  # "interaction", "note", "ticket" (at its opening) or "deal" (at its creation)
    id: int
    at: datetime
    channel: str | None = None
    direction: str | None = None
    state: str | None = None  # an interaction's state, a ticket's status, a deal's stage
    subject: str = ""
    summary: str = ""
    agent_id: int | None = (
        None  # the interaction's agent, the note's author, the ticket's assignee, the deal's owner
    )
    agent_name: str | None = None  # the display name (or username) of agent_id, for interactions and notes
    disposition: str | None = None
    notes: str = ""  # an interaction's wrap-up notes (first 300 characters)
    amount: Decimal | None = None  # deals: in major units of ``currency``
    currency: str | None = None


class Page(BaseModel, Generic[T]):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next page (None at the end)."""

    items: list[T]
    next_cursor: str | None


class ImportRowError(BaseModel):
    line: int
    field: str
    message: str


class ImportReport(BaseModel):
    """A CSV import's answer (the result of its job): ``errors`` lists the first 1,000 bad rows by
    line, ``errors_total`` counts them all; ``applied``: rows were written."""

    dry_run: bool
    mode: str
    on_errors: str = "all_or_nothing"
    rows: int
    valid: int
    created: int
    updated: int = 0
    errors: list[ImportRowError]
    errors_total: int = 0
    applied: bool


class ProjectIn(Input):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1, max_length=200)


class ProjectOut(Output):
    id: int
    code: str
    name: str


class UserIn(Input):
    username: str = Field(min_length=2, max_length=64, pattern=r"^[a-zA-Z0-9_.\-]+$")
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    role: Role
    language: str = Field(default="en", pattern=r"^(en|ru)$")
    password: str = Field(min_length=10, max_length=200)


class UserPatch(Input):
    display_name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    language: str | None = Field(default=None, pattern=r"^(en|ru)$")
    is_active: bool | None = None


class UserOut(Output):
    id: int
    username: str
    display_name: str
    email: str | None
    role: Role
    language: str
    is_active: bool
    created_at: datetime
    project_ids: list[int] | None = Field(
        default=None, description="The projects the user is limited to; null: all projects"
    )


class UserProjectsIn(Input):
    """The projects a user is limited to; ``null`` lifts the limit (all projects)."""

    project_ids: list[Annotated[int, Field(ge=1, lt=2**63)]] | None = Field(min_length=1, max_length=1000)


class UserProjectsOut(Output):
    project_ids: list[int] | None


class PasswordChange(Input):
    current_password: str | None = Field(default=None, max_length=200)
    new_password: str = Field(min_length=10, max_length=200)


class PasswordReset(Input):
    """An administrator's reset of another user's password."""

    new_password: str = Field(min_length=10, max_length=200)


TokenScope = Literal[
    "contacts:create",
    "crm:read",
    "crm:write",
    "tickets:read",
    "tickets:write",
    "reports:read",
    "webhooks:manage",
    "admin",
]


def _full_rights() -> list[TokenScope]:
    return ["admin"]


class TokenIn(Input):
    """A new API token. ``scopes`` narrow what it may do below its owner's role (docs/integrations.md,
    "API tokens and scopes"); left out: ``["admin"]``, the owner's full rights."""

    name: str = Field(min_length=1, max_length=200)
    scopes: list[TokenScope] = Field(default_factory=_full_rights, min_length=1, max_length=8)
    expires_at: datetime | None = Field(default=None, description="null: never expires")
    project_ids: list[int] | None = Field(
        default=None, max_length=500, description="limit to these projects (null: the owner's projects)"
    )

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (for example 2027-01-31T00:00:00Z)")
        return value


class TokenOut(Output):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    project_ids: list[int] | None = None
    user_id: int | None = None
    username: str | None = Field(default=None, description="the owner (in the list of every token)")


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown only in this response")


class WebFormIn(Input):
    """A public web form's settings. ``allowed_origins``: the sites (``https://shop.example``) whose
    pages may post to it; empty: no browser page may (a server without an ``Origin`` still can)."""

    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    enabled: bool = True
    captcha: bool = Field(default=False, description="check a captcha token (needs captcha_verify_url)")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        from .web_forms import normalize_origin  # the one definition of an origin's form

        return sorted({normalize_origin(origin) for origin in value})


class WebFormOut(Output):
    entry_point_id: int
    public_key: str
    allowed_origins: list[str]
    enabled: bool
    captcha: bool
    action_url: str = Field(description="where the form posts")
    html_snippet: str = Field(description="HTML to paste into the site's page")
    updated_at: datetime


class FormAnswer(BaseModel):
    """The answer to a public form submission that was accepted (committed)."""

    accepted: bool = True
    reference: str = Field(description="the contact's number, for the customer to quote")
    created: bool = Field(description="false when an earlier submission with the same key made it")


class ChangeItem(BaseModel):
    """One change of a feed: the record as it is now, or a tombstone (``deleted``; ``record`` null;
    ``merged_into_id`` when a customer was merged into another)."""

    id: int
    updated_at: datetime = Field(description="when it changed (for a tombstone: was deleted)")
    deleted: bool = False
    merged_into_id: int | None = None
    record: dict[str, Any] | None = None


class ChangePage(BaseModel):
    """A page of a change feed. Pass ``next_cursor`` back as ``cursor``; it is always given (poll
    with it later for new changes). ``has_more``: more changes are waiting now."""

    items: list[ChangeItem]
    next_cursor: str
    has_more: bool


class AuditOut(Output):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]
    ip: str | None
    project_id: int | None = None


class MessageIn(Input):
    body: str = Field(min_length=1, max_length=100_000)
    content_type: str = Field(default="text/plain", pattern=r"^text/(plain|html)$")
    sender: str = Field(default="", max_length=320)


class InteractionOut(Output):
    id: int
    channel: Channel
    direction: Direction
    customer_id: int | None
    entry_point_id: int | None
    queue_id: int | None
    project_id: int | None
    priority: int
    state: InteractionState
    agent_id: int | None
    disposition: str | None
    subject: str
    from_address: str
    to_address: str
    external_ref: str | None
    # The text channels' conversation (email thread) this contact is a turn of.
    thread_id: int | None = None
    attributes: dict[str, Any]
    created_at: datetime
    queued_at: datetime | None
    offered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    closed_at: datetime | None


class MessageAttachmentOut(Output):
    """A file of a message; downloaded from ``GET /api/v1/threads/attachments/{id}`` (or its alias
    ``/api/v1/attachments/{id}``)."""

    id: int
    filename: str
    content_type: str
    size: int
    inline: bool = False


class MessageOut(Output):
    id: int
    interaction_id: int
    direction: Direction
    sender: str
    body: str
    content_type: str
    created_at: datetime
    # Text channels (email): the thread, addresses, identity, why it joined its thread, delivery.
    thread_id: int | None = None
    subject: str = ""
    recipients: dict[str, list[str]] = Field(default_factory=dict)
    html_body: str | None = None
    rfc_message_id: str | None = None
    in_reply_to: str | None = None
    thread_reason: str | None = None
    flags: dict[str, Any] = Field(default_factory=dict)
    author_id: int | None = None
    delivery_state: str | None = None
    delivery_error: str | None = None
    delivered_at: datetime | None = None
    attachments: list[MessageAttachmentOut] = Field(default_factory=list)


class InteractionEventOut(Output):
    id: int
    interaction_id: int
    at: datetime
    type: str
    state: str | None
    queue_id: int | None
    agent_id: int | None
    data: dict[str, Any]
