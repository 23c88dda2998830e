"""SQLAlchemy 2 table mappings. Column choices are portable between SQLite and PostgreSQL.

Every query a screen or a routing decision runs is backed by an index declared here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AgentEvent",
    "AgentProfile",
    "ApiToken",
    "AuditEntry",
    "BackgroundJob",
    "Base",
    "BusinessCalendar",
    "Campaign",
    "CampaignContact",
    "ClusterDialler",
    "ClusterLeader",
    "ClusterNode",
    "Company",
    "Customer",
    "CustomerMergeSuggestion",
    "CustomerProject",
    "CustomerTag",
    "Deal",
    "DeletedRecord",
    "DialAttempt",
    "Disposition",
    "DoNotCallEntry",
    "EmailReceipt",
    "EntryPoint",
    "FallbackOutcome",
    "IdempotencyKey",
    "IdempotentRequest",
    "Identity",
    "ImapMailboxState",
    "Interaction",
    "InteractionEvent",
    "Message",
    "NotReadyReason",
    "Note",
    "Project",
    "Queue",
    "ScheduledCallback",
    "SiteSetting",
    "Ticket",
    "TicketInteraction",
    "TicketPost",
    "TicketWatcher",
    "User",
    "UserProject",
    "WebForm",
    "WebSession",
    "WebhookAttempt",
    "WebhookSubscription",
]

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC on every backend (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: Json}


class Project(Base):
    """A client company of an outsourcing center; a dimension on entry points, queues, interactions."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Retention (docs/privacy.md): call recordings and the content of messages of this project's
    # contacts are deleted by the server this many days after the contact; None keeps them.
    recordings_retention_days: Mapped[int | None] = mapped_column(Integer)
    messages_retention_days: Mapped[int | None] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="en")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserProject(Base):
    """A project a user is limited to. A user without rows sees every project (administrators
    always do): supervisors and agents of one client team in an outsourcing center get rows."""

    __tablename__ = "user_projects"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # No cascade: deleting a project must not silently widen a user limited to it to every project.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True, index=True)


class WebSession(Base):
    """A browser sign-in. The cookie carries the signed id; revoking the row signs the browser out."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    """An integration token; only its SHA-256 is stored, the secret is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # What the token may do (domain/permissions.py SCOPES; ["admin"]: its owner's full rights, what
    # tokens made before scopes were given), until when, and in which projects (None: the owner's).
    scopes: Mapped[list[str]] = mapped_column(Json, default=lambda: ["admin"])
    expires_at: Mapped[datetime | None] = mapped_column()
    project_ids: Mapped[list[int] | None] = mapped_column(Json)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    # An object's history (a ticket page's "history of changes") reads its entries by this index.
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    # The client project the action concerns (an import for a project, an erasure of one of its
    # customers): a user limited to projects reads the entries of their projects and their own.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)


class BackgroundJob(Base):
    """Long work run off the request path (services/jobs.py): CSV imports and exports, a customer's
    personal data export, the daily retention sweep. ``state``: queued, running, succeeded, failed.
    ``checkpoint`` is what a resumed job continues from (committed with each batch); ``result`` the
    answer (an import's report), ``result_file`` a file under ``<data_dir>/jobs`` to download."""

    __tablename__ = "jobs"
    __table_args__ = (
        # Every POST is safe to repeat: one job per user and Idempotency-Key (and one retention
        # sweep per day: created_by NULL, key "retention:<date>"; see the partial index in 0025).
        UniqueConstraint("created_by", "idempotency_key"),
        Index("ix_jobs_state_id", "state", "id"),
        Index("ix_jobs_created_by_id", "created_by", "id"),
        Index(
            "uq_jobs_system_key",
            "idempotency_key",
            unique=True,
            sqlite_where=text("created_by IS NULL"),
            postgresql_where=text("created_by IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checkpoint: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[dict[str, Any] | None] = mapped_column()
    result_file: Mapped[str | None] = mapped_column(String(300))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The node running it holds it until then (renewed with every batch); after it, the job is free
    # to be resumed by another node (or this one after a restart).
    lease_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Company(Base):
    __tablename__ = "companies"
    # The change feed reads in (updated_at, id) order (services/change_feeds.py).
    __table_args__ = (Index("ix_companies_updated", "updated_at", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), index=True)
    website: Mapped[str | None] = mapped_column(String(300))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Customer(Base):
    """A person the center talks to. ``search_key`` is the lower-cased name for fragment search."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_updated", "updated_at", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    last_name: Mapped[str] = mapped_column(String(200), default="")
    middle_name: Mapped[str] = mapped_column(String(200), default="")
    search_key: Mapped[str] = mapped_column(String(700), index=True, default="")
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    company: Mapped[Company | None] = relationship(lazy="raise")
    identities: Mapped[list[Identity]] = relationship(
        back_populates="customer", lazy="raise", order_by="Identity.id"
    )
    tags: Mapped[list[CustomerTag]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CustomerTag.tag"
    )


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class CustomerProject(Base):
    """A project a customer card was created in or imported into, so the client team of that project
    sees it before the customer's first contact. A card also belongs to every project it has had a
    contact, ticket or deal in; that is read from those rows, not copied here (``services/scope.py``)."""

    __tablename__ = "customer_projects"
    __table_args__ = (Index("ix_customer_projects_project_customer", "project_id", "customer_id"),)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    # Cascade: without its project the link grants nothing, and a card of no project is shown to
    # limited users only through its contacts, tickets and deals.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)


class Identity(Base):
    """A phone (E.164), email, chat visitor id or messenger id; unique per kind, so it names one customer.

    The unique index on (kind, value) is the one indexed query every incoming contact runs.
    """

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities", lazy="raise")


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (Index("ix_notes_customer_created", "customer_id", "created_at"),)


class Queue(Base):
    """An ACD queue. ``config`` holds routing settings (strategy, SL target, wrap-up, ...)."""

    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntryPoint(Base):
    """Where contacts come in: a phone number, email address, chat widget, SMS number, API source."""

    __tablename__ = "entry_points"
    __table_args__ = (UniqueConstraint("channel", "address"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    default_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Voice menu played before the queue (timeout, choices, repeats); None: straight to the queue.
    voice_ivr: Mapped[dict[str, Any] | None] = mapped_column()


class WebForm(Base):
    """The public web form of an entry point (``webform`` channel): a website posts to
    ``/api/v1/public/forms/{public_key}`` without a user token. ``allowed_origins``: the sites whose
    pages may post (CORS); ``captcha``: check the form's captcha token with the configured service."""

    __tablename__ = "web_forms"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entry_point_id: Mapped[int] = mapped_column(
        ForeignKey("entry_points.id", ondelete="CASCADE"), unique=True
    )
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    allowed_origins: Mapped[list[str]] = mapped_column(Json, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    captcha: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeletedRecord(Base):
    """A tombstone for the change feeds: a customer, company, interaction, ticket or deal that was
    deleted (or erased), written in the same transaction as the deletion. A merged customer is not
    here: its row stays with ``merged_into_id`` and the feed shows it as deleted from there."""

    __tablename__ = "deleted_records"
    __table_args__ = (Index("ix_deleted_records_resource_deleted", "resource", "deleted_at", "record_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(BigInteger)
    # NULL: the row unrestricted readers see; else one row per project the record belonged to, for
    # users limited to projects (not a foreign key: a tombstone outlives its project).
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    merged_into_id: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Interaction(Base):
    """One contact with a customer on one channel — the common record for every channel."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_created", "customer_id", "created_at"),
        Index("ix_interactions_state_queue", "state", "queue_id"),
        Index("ix_interactions_external_ref", "channel", "external_ref"),
        Index("ix_interactions_agent_created", "agent_id", "created_at"),
        Index("ix_interactions_created", "created_at"),
        # A project's contacts, and its customers read from the index alone (who sees what:
        # services/scope.py).
        Index("ix_interactions_project_customer", "project_id", "customer_id"),
        # The change feed (services/change_feeds.py).
        Index("ix_interactions_updated", "updated_at", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    entry_point_id: Mapped[int | None] = mapped_column(ForeignKey("entry_points.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disposition: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(500), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to_address: Mapped[str] = mapped_column(String(320), default="")
    external_ref: Mapped[str | None] = mapped_column(String(500))
    # The text channels' conversation this contact is a turn of (email thread, chat, SMS thread).
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The ACD's place in line (epoch seconds of entering the line, and the tie-break sequence);
    # persisted so a restarted engine puts waiting contacts back in exactly the same order.
    route_enqueued_at: Mapped[float | None] = mapped_column(Float)
    route_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column()
    offered_at: Mapped[datetime | None] = mapped_column()
    connected_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # Every UPDATE of the table (the ACD's Core statements included) sets it: the change feed's order.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Thread(Base):
    """A conversation on a text channel (an email thread, a chat, an SMS thread): the messages that
    belong together, whatever interaction (turn) each arrived in. ``token`` is the public number a
    subject carries (``[#1234]``) so a reply that lost its headers still finds its thread."""

    __tablename__ = "threads"
    __table_args__ = (
        Index("ix_threads_customer_last", "customer_id", "last_message_at"),
        Index("ix_threads_entry_point_last", "entry_point_id", "last_message_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    token: Mapped[int] = mapped_column(BigInteger, unique=True)
    entry_point_id: Mapped[int | None] = mapped_column(ForeignKey("entry_points.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(998), default="")
    # The agent who last answered: the next turn is routed to them first (sticky).
    last_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """A message of a text channel (email, chat, SMS, messenger, web form body).

    Inbound or outbound (``direction``). Email messages keep their RFC 5322 identity
    (``rfc_message_id``, ``in_reply_to``, ``reference_ids``) and say why they joined their thread
    (``thread_reason``). An outbound message's delivery is tracked here (``delivery_state``: queued,
    sending, sent, delivered, failed) and carried out by the outbox (:class:`OutboxItem`).
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_interaction_created", "interaction_id", "created_at"),
        Index("ix_messages_thread_created", "thread_id", "created_at"),
        Index("ix_messages_rfc_message_id", "rfc_message_id"),
        # Counting the auto-acknowledgements sent to one address (the per-sender limit).
        Index("ix_messages_external_id_created", "external_id", "created_at"),
        # Is a raw message's blob still used (erasure and retention delete blobs nobody refers to)?
        Index("ix_messages_raw_sha256", "raw_sha256"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"))
    thread_id: Mapped[int | None] = mapped_column(ForeignKey("threads.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(320), default="")
    # Recipients as the message named them: {"to": [...], "cc": [...], "bcc": [...], "reply_to": [...]}.
    recipients: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subject: Mapped[str] = mapped_column(String(998), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(100), default="text/plain")
    # Sanitised HTML for display (remote images blocked until the agent allows them); None: text only.
    html_body: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(500))
    # RFC 5322 Message-ID without angle brackets (998: the line length limit of §2.1.1).
    rfc_message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    reference_ids: Mapped[str] = mapped_column(Text, default="")
    # Why the message joined its thread: in-reply-to, references, subject-token, plus-address,
    # new-thread, split, merge (shown to the agent).
    thread_reason: Mapped[str | None] = mapped_column(String(32))
    # Parse problems, auto-reply / bounce marks, remote images allowed...; the raw message's blob.
    flags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    delivery_state: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Blob(Base):
    """Content stored once by its SHA-256 (attachments, inline images, raw messages, faxes); the bytes
    live in ``<data_dir>/blobs`` (:mod:`frontoffice.store.blobs`)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageAttachment(Base):
    """A file of a message: its name and type as the message gave them, its content in a blob."""

    __tablename__ = "message_attachments"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256", ondelete="RESTRICT"), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger)
    # Inline images are referenced from the HTML by Content-ID.
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxItem(Base):
    """Something to deliver to the outside world, committed with the action that caused it and then
    delivered by its channel with retries (email, SMS, chat, messenger, webhooks): DESIGN.md, "The
    outbox". ``state``: queued, sending, sent, failed (given up), cancelled."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_due", "state", "next_attempt_at"),
        # Is an earlier delivery of the same subject still pending? (the worker's order per subject)
        Index("ix_outbox_subject_key_id", "subject_key", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    # Deliveries of one subject go out in order (a thread's messages, a customer's webhooks).
    subject_key: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    # A worker's claim (several nodes: the claimer and until when it holds the item).
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class EmailReceipt(Base):
    """An inbound email taken in by a mailbox (entry point), by its Message-ID (or the SHA-256 of
    its bytes when it has none): a second delivery of the same message to the same mailbox (SMTP
    retry, IMAP re-fetch after a crash) finds this row and creates nothing. Also counts the
    auto-acknowledgements sent to a sender (a per-sender limit breaks mail loops)."""

    __tablename__ = "email_receipts"
    __table_args__ = (
        UniqueConstraint("entry_point_id", "rfc_message_id"),
        Index("ix_email_receipts_sender_received", "sender", "received_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entry_point_id: Mapped[int] = mapped_column(ForeignKey("entry_points.id", ondelete="CASCADE"))
    rfc_message_id: Mapped[str] = mapped_column(String(998))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    sender: Mapped[str] = mapped_column(String(320), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    auto_acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)


class ImapMailboxState(Base):
    """How far an IMAP mailbox has been read: its UIDVALIDITY and the highest UID committed
    (RFC 3501 §2.3.1.1: UIDs are stable while UIDVALIDITY is; a new UIDVALIDITY means start over,
    and the receipts' dedupe keeps that from duplicating anything)."""

    __tablename__ = "imap_mailbox_state"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerMergeSuggestion(Base):
    """A pair of customer cards that look like one person, found on the contact path (an email from
    a new address signed with the name and phone of a known customer); the duplicate review lists
    them with the pairs it finds itself."""

    __tablename__ = "customer_merge_suggestions"
    __table_args__ = (UniqueConstraint("customer_id", "other_customer_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    other_customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InteractionEvent(Base):
    """Append-only log of interaction state changes; statistics, audit and recovery read it."""

    __tablename__ = "interaction_events"
    __table_args__ = (
        Index("ix_interaction_events_interaction", "interaction_id", "id"),
        Index("ix_interaction_events_at", "at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(16))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[int | None] = mapped_column(Integer)
    project_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class IdempotencyKey(Base):
    """Remembers the answer to a create request so a retried POST returns the same resource."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[int] = mapped_column(Id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class IdempotentRequest(Base):
    """One API request sent with an ``Idempotency-Key`` by one user, and the answer it got.

    ``status_code`` is NULL while the first request runs (a repeat then answers 409
    ``idempotency-key-in-progress``); afterwards the stored answer is replayed to repeats.
    """

    __tablename__ = "idempotent_requests"
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)


class AgentProfile(Base):
    """ACD settings and last known state of a user who takes contacts.

    ``queues`` maps queue id (as text) to tier; ``skills`` skill name to level 1–10; ``capacity``
    channel to the number of simultaneous contacts. ``state`` is what a restarted engine restores.
    """

    __tablename__ = "agent_profiles"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)
    queues: Mapped[dict[str, Any]] = mapped_column(default=dict)
    capacity: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    state: Mapped[str] = mapped_column(String(16), default="offline")
    state_reason: Mapped[str | None] = mapped_column(String(64))
    state_since: Mapped[float] = mapped_column(Float, default=0.0)
    wrap_up_until: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The agent's SIP phone account (voice channel registrar). The password itself is never stored:
    # only the digest HA1 = H(username:realm:password) for each algorithm phones use (RFC 8760), and
    # the realm they were computed for (changing the realm invalidates them).
    sip_username: Mapped[str | None] = mapped_column(String(64), unique=True)
    sip_realm: Mapped[str | None] = mapped_column(String(128))
    sip_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    # The queue ids (of ``queues``) the agent signed in to for this session; None: all of them.
    signed_in_queues: Mapped[list[int] | None] = mapped_column(Json)


class AgentEvent(Base):
    """Append-only log of agent state changes (occupancy, utilization, audit of presence)."""

    __tablename__ = "agent_events"
    __table_args__ = (Index("ix_agent_events_agent_at", "agent_id", "at"), Index("ix_agent_events_at", "at"))
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    agent_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))


class Disposition(Base):
    """A wrap-up code an agent picks when completing a contact ("resolved", "sale", ...)."""

    __tablename__ = "dispositions"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name per language ({"en": "Lunch", "ru": "Обед"}); ``name`` is the one for other languages.
    names: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class NotReadyReason(Base):
    """A reason an agent may give for being not ready (lunch, training, ...)."""

    __tablename__ = "not_ready_reasons"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The name per language ({"en": "Lunch", "ru": "Обед"}); ``name`` is the one for other languages.
    names: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class BusinessCalendar(Base):
    """Opening hours, holidays and special days; ``definition`` is validated by domain.calendars."""

    __tablename__ = "calendars"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    """A case of the help desk: one customer's question or problem, worked on over several contacts.

    ``source_interaction_id`` is the contact it was opened from; every contact about it is linked in
    ``ticket_interactions``. ``due_at`` is where SLA targets will plug in.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_customer_status", "customer_id", "status"),
        Index("ix_tickets_status_due", "status", "due_at"),
        Index("ix_tickets_project_customer", "project_id", "customer_id"),
        # The work lists (docs/helpdesk.md, "Indexes"): each built-in view filters on one column and
        # one status and reads its page in index order (updated_at, id), so no view sorts rows.
        Index("ix_tickets_assignee_status_updated", "assignee_id", "status", "updated_at", "id"),
        Index("ix_tickets_queue_status_updated", "queue_id", "status", "updated_at", "id"),
        Index("ix_tickets_project_status_updated", "project_id", "status", "updated_at", "id"),
        Index("ix_tickets_status_updated", "status", "updated_at", "id"),
        # The SLA job wakes for tickets whose next warning or breach is due; lists sort by time left.
        Index("ix_tickets_sla_check", "sla_check_at"),
        Index("ix_tickets_status_sla_due", "status", "sla_due_at", "id"),
        # "Unassigned" (and "mine") by SLA time left: read in index order, not sorted (a million-ticket
        # desk has tens of thousands of unassigned open tickets).
        Index("ix_tickets_assignee_status_sla_due", "assignee_id", "status", "sla_due_at", "id"),
        # Tickets whose work item in the ACD must be brought in line with them (services/ticket_work.py).
        Index("ix_tickets_work_sync", "work_sync"),
        # The change feed (services/change_feeds.py).
        Index("ix_tickets_updated", "updated_at", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # None: the customer was deleted; the case stays in the help desk's history.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column()
    solved_at: Mapped[datetime | None] = mapped_column()
    # The queue whose team works the ticket (None: no queue; "my team's" view is by queue).
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    # Set when the ticket was merged into another one (it is then closed; its contacts moved there).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    # The SLA policy chosen when the ticket was opened, its clocks (domain.sla.TicketSla as JSON), the
    # earliest deadline of a running clock (time left in the lists) and when the SLA job looks next.
    sla_policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    # The closed ticket (or the solved one past its reopen period) a customer's reply followed up.
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    sla: Mapped[dict[str, Any] | None] = mapped_column(Json)
    sla_due_at: Mapped[datetime | None] = mapped_column()
    sla_check_at: Mapped[datetime | None] = mapped_column()
    # Routed work (services/ticket_work.py): the ticket waits for an agent (new, or the customer
    # replied; cleared by an agent's reply, pending, solved, or the agent completing its work item);
    # its live work item in the ACD (an interaction on the ``ticket`` channel); and whether the work
    # item must still be brought in line with the ticket (set in the ticket's transaction, cleared by
    # the ACD command that does it: a crash between the two is repaired at the next start).
    awaits_agent: Mapped[bool] = mapped_column(Boolean, default=False)
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))
    work_sync: Mapped[bool] = mapped_column(Boolean, default=False)


class SlaPolicyRow(Base):
    """An SLA policy (domain.sla.SlaPolicy): conditions as JSON lists (empty: any), targets in
    business seconds on ``calendar_id`` (None: around the clock), and what a breach escalates to."""

    __tablename__ = "sla_policies"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    project_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    queue_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    priorities: Mapped[list[str]] = mapped_column(Json, default=list)
    customer_tags: Mapped[list[str]] = mapped_column(Json, default=list)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id", ondelete="SET NULL"))
    first_response_s: Mapped[int | None] = mapped_column(Integer)
    next_response_s: Mapped[int | None] = mapped_column(Integer)
    resolution_s: Mapped[int | None] = mapped_column(Integer)
    warn_before_s: Mapped[int] = mapped_column(Integer, default=0)
    breach_priority: Mapped[str | None] = mapped_column(String(16))
    # Re-route on breach: the ticket (and its work item in the ACD) moves to this queue.
    breach_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    notify_supervisors: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """A task or reminder with a due time on a deal, a ticket or a customer, owned by a user who is
    notified when it falls due (``notify_at``: until then; None once notified or done)."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_owner_done_due", "owner_id", "done_at", "due_at", "id"),
        Index("ix_activities_notify", "notify_at"),
        Index("ix_activities_deal", "deal_id"),
        Index("ix_activities_ticket", "ticket_id"),
        Index("ix_activities_customer", "customer_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    note: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column()
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    done_at: Mapped[datetime | None] = mapped_column()
    notify_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedAnswer(Base):
    """A reply template in one language, shared (``owner_id`` None) or personal; the desk's ``/``
    picker finds it by its shortcut or title."""

    __tablename__ = "canned_answers"
    __table_args__ = (Index("ix_canned_answers_language_owner", "language", "owner_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    shortcut: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Macro(Base):
    """One click on a ticket: set fields, add and remove tags, put a canned answer in the reply box.
    ``actions`` holds {status, priority, assignee_id, add_tags, remove_tags, canned_answer_id}."""

    __tablename__ = "macros"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbCategory(Base):
    """A category of knowledge-base articles, of one project (None: every project's)."""

    __tablename__ = "kb_categories"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)


class KbArticle(Base):
    """A knowledge-base article in one language: the draft being written and the published text
    (what agents and the public page see, and what search reads). Every publication is kept in
    ``kb_article_versions``. Full-text search: an FTS5 table ``kb_search`` on SQLite, GIN expression
    indexes per language on PostgreSQL (migration 0014)."""

    __tablename__ = "kb_articles"
    __table_args__ = (Index("ix_kb_articles_project_language", "project_id", "language", "category_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("kb_categories.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(8))
    draft_title: Mapped[str] = mapped_column(String(300))
    draft_body: Mapped[str] = mapped_column(Text, default="")
    published_title: Mapped[str | None] = mapped_column(String(300))
    published_body: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KbArticleVersion(Base):
    __tablename__ = "kb_article_versions"
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column()
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TicketTag(Base):
    """A tag on a ticket; (tag, ticket_id) serves the work list's tag filter."""

    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag_ticket", "tag", "ticket_id"),)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class SavedView(Base):
    """A work list a user saved: its filters and sort, for themselves or shared with everyone."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_kind_owner", "kind", "owner_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "tickets" or "deals"
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sort: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketInteraction(Base):
    """A contact that belongs to a ticket (several contacts can belong to one ticket)."""

    __tablename__ = "ticket_interactions"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketPost(Base):
    """What agents write on a ticket: an internal note (``kind="note"``, seen by agents only, with the
    users it @mentions) or a reply to the customer (``kind="reply"``). A reply is carried by one outbound
    message (``message_id``: an email or a chat/SMS/messenger message in the outbox), whose
    ``delivery_state`` says how far it got; ``delivery`` keeps ``awaiting_outbox`` only for replies
    written before replies were sent (migration 0021)."""

    __tablename__ = "ticket_posts"
    __table_args__ = (Index("ix_ticket_posts_ticket_created", "ticket_id", "created_at", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # "note" or "reply"
    body: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[int]] = mapped_column(Json, default=list)
    delivery: Mapped[str] = mapped_column(String(32), default="internal")
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketWatcher(Base):
    """A user who follows a ticket (added by hand, or by being @mentioned in one of its notes)."""

    __tablename__ = "ticket_watchers"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketMention(Base):
    """A user @mentioned in a ticket's note: what their desk lists until they have seen it
    (``seen_at``). Read by (user, seen_at, id): "my unseen mentions, newest first"."""

    __tablename__ = "ticket_mentions"
    __table_args__ = (Index("ix_ticket_mentions_user_seen", "user_id", "seen_at", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("ticket_posts.id", ondelete="CASCADE"), index=True)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None] = mapped_column()


class Deal(Base):
    """An opportunity of the sales pipeline with a customer. ``amount_minor`` is in the currency's minor
    unit (kopecks, cents; ISO 4217 exponent), so sums are exact on every database."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_customer_stage", "customer_id", "stage"),
        Index("ix_deals_owner_stage", "owner_id", "stage"),
        Index("ix_deals_project_customer", "project_id", "customer_id"),
        # The deal lists: by stage and by owner in index order (updated_at, id); by close month.
        Index("ix_deals_stage_updated", "stage", "updated_at", "id"),
        Index("ix_deals_owner_updated", "owner_id", "updated_at", "id"),
        Index("ix_deals_expected_close", "expected_close_on", "id"),
        Index("ix_deals_updated", "updated_at", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # None: the customer was deleted; the deal stays in the pipeline's history.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # The client project the deal is made for (None: the customer's, seen by whoever sees the customer).
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    stage: Mapped[str] = mapped_column(String(32), default="lead")
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    # The day the owner expects to close the deal (the forecast's close month).
    expected_close_on: Mapped[date | None] = mapped_column(Date)
    # The deal's pipeline (None: the default one, domain.pipelines.DEFAULT_PIPELINE) and why it was
    # won or lost.
    pipeline_id: Mapped[int | None] = mapped_column(ForeignKey("pipelines.id", ondelete="RESTRICT"))
    close_reason: Mapped[str | None] = mapped_column(String(200))


class PipelineRow(Base):
    """A sales pipeline of a project: ``stages`` a list of {key, name, probability_pct, kind} in board
    order, validated by domain.pipelines.Pipeline; the reasons a deal may be won or lost."""

    __tablename__ = "pipelines"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    stages: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    won_reasons: Mapped[list[str]] = mapped_column(Json, default=list)
    lost_reasons: Mapped[list[str]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SiteSetting(Base):
    """A site-wide setting an administrator edits (e.g. ``acd.engine``: the routing engine's settings),
    stored as one JSON document per key."""

    __tablename__ = "site_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class CsatSurvey(Base):
    """A satisfaction survey of a solved ticket (services/csat.py): one per ticket, sent when it is
    first solved; answered through a signed, expiring public link (1–5 and a comment; a later answer
    within the window replaces the earlier one). Who and what it rates (agent, queue, project) are
    copied at sending, so reports group by them even after the ticket moves."""

    __tablename__ = "csat_surveys"
    __table_args__ = (
        UniqueConstraint("ticket_id", name="uq_csat_surveys_ticket_id"),
        # The report reads the surveys sent in a period.
        Index("ix_csat_surveys_sent", "sent_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(8), default="en")
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column()


class ScheduledCallback(Base):
    """A promise to call a customer back at ``due_at``: made at wrap-up (``callback_at``) or by a
    queue's ``callback`` fallback. The scheduler turns it into a callback contact in the ACD once
    (``state``: scheduled → queued; cancelled when its source contact is gone) and survives restarts.
    """

    __tablename__ = "scheduled_callbacks"
    __table_args__ = (
        # The scheduler's query: the earliest due callbacks still scheduled.
        Index("ix_scheduled_callbacks_state_due", "state", "due_at"),
        # One promise per contact: a second wrap-up of the same contact moves it instead.
        UniqueConstraint("interaction_id", name="uq_scheduled_callbacks_interaction_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    callback_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column()


class FallbackOutcome(Base):
    """What a queue's fallback action did with a contact the ACD turned away (services/fallback.py):
    a row of its own, not the interaction's attributes, which the channel may be updating meanwhile
    (a voicemail's recording)."""

    __tablename__ = "fallback_outcomes"
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_callbacks.id", ondelete="SET NULL"))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookSubscription(Base):
    """An outgoing webhook endpoint (services/webhooks.py): the event types it receives, limited to
    one project or not, its signing secret (Standard Webhooks ``whsec_...``) and, during a rotation,
    the previous secret that still signs until ``previous_secret_until``. ``enabled`` false: nothing
    is sent (an administrator switched it off, or it was disabled after failing for a day:
    ``disabled_reason``)."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(Json, default=list)
    # No cascade: deleting a project must not widen a subscription to every project's events.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column()
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------------------------------- campaigns
class Campaign(Base):
    """An outbound campaign (services/campaigns.py): whom it calls (its contacts), through which trunk
    with which caller id, into which queue, in which mode, when (windows in each contact's local time,
    start and end dates) and what it does after each outcome (``retry``). ``state``: draft → running ⇄
    paused → stopped | finished. ``message``: what an abandoned call hears (and, in notification mode,
    what every answered call hears): ``{"text": ..., "language": ..., "wav": <blob sha256>}``."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), index=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    caller_id: Mapped[str] = mapped_column(String(32), default="")
    trunk: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    windows: Mapped[dict[str, Any]] = mapped_column(default=dict)
    retry: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dispositions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignContact(Base):
    """One entry of a campaign's list: a number (E.164) to call, the customer it belongs to, where it
    stands (``state``: pending → dialling → pending (retry) | done | skipped | dnc | failed; ``preview``
    while an agent holds it), when it may be tried next and who promised a callback."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        # The dialler's claim: a campaign's pending contacts due first.
        Index("ix_campaign_contacts_due", "campaign_id", "state", "next_attempt_at"),
        Index("ix_campaign_contacts_callback_agent", "callback_agent_id", "state"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    # One IANA zone, or several separated by spaces (domain/dialer: a prefix that spans zones).
    time_zone: Mapped[str] = mapped_column(String(400), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    # When the number was last abandoned (no agent within 2 s): not redialled for 72 h after it.
    abandoned_at: Mapped[datetime | None] = mapped_column()
    disposition: Mapped[str | None] = mapped_column(String(64))
    callback_at: Mapped[datetime | None] = mapped_column()
    callback_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Preview mode: the agent who holds the contact on their desk.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Notification mode: what the called party pressed (confirmed / operator).
    confirmation: Mapped[str | None] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    line: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """The delivery log: one HTTP attempt of one webhook (an ``outbox`` row of channel ``webhook``),
    with the request and the response as sent and received (bodies cut to a few KiB)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        # A subscription's log, newest first; an outbox row's attempts.
        Index("ix_webhook_attempts_subscription_id", "subscription_id", "id"),
        Index("ix_webhook_attempts_outbox_id", "outbox_id", "id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    # The outbox row (no foreign key: the log outlives a clean-up of delivered rows).
    outbox_id: Mapped[int] = mapped_column(Id)
    webhook_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    url: Mapped[str] = mapped_column(String(2000))
    request_headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    request_body: Mapped[str] = mapped_column(Text, default="")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    response_body: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    # sent (a 2xx), failed (anything else); ``error``: why, when there was no answer or a bad one.
    outcome: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class DialAttempt(Base):
    """One try of a campaign contact, written in the transaction that claims the contact, before the
    INVITE leaves: the do-not-call check and its result, then the call's outcome. ``state``: dialling →
    answered → ended (``outcome`` says how); an attempt found ``dialling`` or ``answered`` after a restart
    ended as ``unknown``. ``node``: the node that placed the call (several voice nodes in a cluster); its
    own attempts in flight are ended at its restart, a silent node's by the routing leader."""

    __tablename__ = "dial_attempts"
    __table_args__ = (
        Index("ix_dial_attempts_campaign_claimed", "campaign_id", "claimed_at"),
        Index("ix_dial_attempts_state", "state"),
        Index("ix_dial_attempts_contact", "contact_id"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    trunk: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(200))
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32))
    sip_status: Mapped[int | None] = mapped_column(Integer)
    dnc_result: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    connected_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    # Answering-machine detection, when the campaign has it on: HUMAN / MACHINE / NOTSURE, the cause
    # (initialsilence, longgreeting, ...), the audio it analysed (ms) and the WAV of that audio (the
    # file's name in the recordings directory, listed in the interaction's recordings too).
    amd_decision: Mapped[str | None] = mapped_column(String(16))
    amd_cause: Mapped[str | None] = mapped_column(String(32))
    amd_ms: Mapped[int | None] = mapped_column(Integer)
    amd_audio: Mapped[str | None] = mapped_column(String(200))
    node: Mapped[str | None] = mapped_column(String(200))


class DoNotCallEntry(Base):
    """A number not to be called: on the global list (``project_id`` None, ``scope`` "global") or a
    project's (``scope`` "project:<id>"). ``source``: agent (the customer asked on a call), import,
    opt_out (the customer opted out on another channel)."""

    __tablename__ = "dnc_entries"
    __table_args__ = (UniqueConstraint("phone", "scope"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClusterLeader(Base):
    """The routing leader's fencing token (one row, ``id`` 1): ``epoch`` is incremented by each node
    that becomes leader (store/leader_lease.py), and every transaction of the leader's ACD checks it
    under a row lock, so a leader that lost its lease cannot commit after the next one started."""

    __tablename__ = "cluster_leader"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    node: Mapped[str] = mapped_column(String(200), default="")
    since: Mapped[datetime | None] = mapped_column()


class ClusterDialler(Base):
    """The campaign dialler's fencing token (one row, ``id`` 1), as ``cluster_leader`` is routing's:
    incremented by each voice node that takes the dialler lease (store/leader_lease.py, ``DIALLING``);
    every claim of campaign contacts by the dialler checks it, so a voice node that lost the lease
    claims nothing after the next one started dialling. ``node``: who took it last, ``since``: when."""

    __tablename__ = "cluster_dialler"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    node: Mapped[str] = mapped_column(String(200), default="")
    since: Mapped[datetime | None] = mapped_column()


class ClusterNode(Base):
    """A serving node of a cluster and its last heartbeat (``frontoffice cluster status``)."""

    __tablename__ = "cluster_nodes"
    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    http_url: Mapped[str] = mapped_column(String(300))
    version: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(16))  # leader, standby
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    bus: Mapped[str] = mapped_column(String(16))  # connected, disconnected
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()


class SipRegistration(Base):
    """A registered contact of an agent's phone (channels/voice/registrar.py), kept so that a voice
    node that starts or takes the SIP address over serves phones registered with another one without
    a new REGISTER. One row per binding; a REGISTER replaces its agent's rows."""

    __tablename__ = "sip_registrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(1000))  # the Contact name-address, without parameters
    transport: Mapped[str] = mapped_column(String(8))  # where it registered from: UDP, TCP, TLS
    host: Mapped[str] = mapped_column(String(100))
    port: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[str] = mapped_column(String(500))
    cseq: Mapped[int] = mapped_column(BigInteger)
    registered_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column(index=True)
