"""outbound campaigns: campaigns, their contact lists, the dial attempts log, do-not-call lists

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("queue_id", ID, nullable=True),
        sa.Column("caller_id", sa.String(length=32), nullable=False),
        sa.Column("trunk", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("starts_at", TIME, nullable=True),
        sa.Column("ends_at", TIME, nullable=True),
        sa.Column("windows", JSON, nullable=False),
        sa.Column("retry", JSON, nullable=False),
        sa.Column("dispositions", JSON, nullable=False),
        sa.Column("message", JSON, nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("state_changed_at", TIME, nullable=False),
        _fk("campaigns", "project_id", "projects", "SET NULL"),
        _fk("campaigns", "queue_id", "queues", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.create_index("ix_campaigns_state", ["state"], unique=False)
        batch.create_index(batch.f("ix_campaigns_project_id"), ["project_id"], unique=False)
    op.create_table(
        "campaign_contacts",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("time_zone", sa.String(length=400), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=True),
        sa.Column("last_outcome", sa.String(length=32), nullable=True),
        sa.Column("last_attempt_at", TIME, nullable=True),
        sa.Column("abandoned_at", TIME, nullable=True),
        sa.Column("disposition", sa.String(length=64), nullable=True),
        sa.Column("callback_at", TIME, nullable=True),
        sa.Column("callback_agent_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("confirmation", sa.String(length=16), nullable=True),
        sa.Column("skip_reason", sa.String(length=200), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        _fk("campaign_contacts", "campaign_id", "campaigns", "CASCADE"),
        _fk("campaign_contacts", "customer_id", "customers", "SET NULL"),
        _fk("campaign_contacts", "callback_agent_id", "users", "SET NULL"),
        _fk("campaign_contacts", "agent_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_contacts")),
        sa.UniqueConstraint("campaign_id", "phone", name=op.f("uq_campaign_contacts_campaign_id_phone")),
    )
    with op.batch_alter_table("campaign_contacts") as batch:
        batch.create_index("ix_campaign_contacts_due", ["campaign_id", "state", "next_attempt_at"], unique=False)
        batch.create_index(
            "ix_campaign_contacts_callback_agent", ["callback_agent_id", "state"], unique=False
        )
        batch.create_index(batch.f("ix_campaign_contacts_customer_id"), ["customer_id"], unique=False)
    op.create_table(
        "dial_attempts",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("trunk", sa.String(length=64), nullable=True),
        sa.Column("call_id", sa.String(length=200), nullable=True),
        sa.Column("interaction_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("dnc_result", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", TIME, nullable=False),
        sa.Column("answered_at", TIME, nullable=True),
        sa.Column("connected_at", TIME, nullable=True),
        sa.Column("ended_at", TIME, nullable=True),
        _fk("dial_attempts", "campaign_id", "campaigns", "CASCADE"),
        _fk("dial_attempts", "contact_id", "campaign_contacts", "CASCADE"),
        _fk("dial_attempts", "interaction_id", "interactions", "SET NULL"),
        _fk("dial_attempts", "agent_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dial_attempts")),
    )
    with op.batch_alter_table("dial_attempts") as batch:
        batch.create_index("ix_dial_attempts_campaign_claimed", ["campaign_id", "claimed_at"], unique=False)
        batch.create_index("ix_dial_attempts_state", ["state"], unique=False)
        batch.create_index("ix_dial_attempts_contact", ["contact_id"], unique=False)
    op.create_table(
        "dnc_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("added_by", ID, nullable=True),
        sa.Column("added_at", TIME, nullable=False),
        _fk("dnc_entries", "project_id", "projects", "CASCADE"),
        _fk("dnc_entries", "added_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnc_entries")),
        sa.UniqueConstraint("phone", "scope", name=op.f("uq_dnc_entries_phone_scope")),
    )


def downgrade() -> None:
    op.drop_table("dnc_entries")
    op.drop_table("dial_attempts")
    op.drop_table("campaign_contacts")
    op.drop_table("campaigns")
