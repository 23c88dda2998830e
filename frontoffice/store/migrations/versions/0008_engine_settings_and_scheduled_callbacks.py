"""site-wide settings (the routing engine's, editable by an administrator); scheduled callbacks; what
a queue's fallback action did with a contact

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("updated_by", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_site_settings_updated_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_settings")),
    )
    op.create_table(
        "scheduled_callbacks",
        sa.Column("id", ID, nullable=False),
        sa.Column("interaction_id", ID, nullable=False),
        sa.Column("queue_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("callback_interaction_id", ID, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("fired_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_scheduled_callbacks_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["callback_interaction_id"],
            ["interactions.id"],
            name=op.f("fk_scheduled_callbacks_callback_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_scheduled_callbacks_queue_id_queues"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_scheduled_callbacks_agent_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_callbacks")),
        sa.UniqueConstraint("interaction_id", name="uq_scheduled_callbacks_interaction_id"),
    )
    with op.batch_alter_table("scheduled_callbacks", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_callbacks_state_due", ["state", "due_at"], unique=False)
    op.create_table(
        "fallback_outcomes",
        sa.Column("interaction_id", ID, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("callback_id", ID, nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_fallback_outcomes_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_fallback_outcomes_ticket_id_tickets"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["scheduled_callbacks.id"],
            name=op.f("fk_fallback_outcomes_callback_id_scheduled_callbacks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_fallback_outcomes")),
    )


def downgrade() -> None:
    op.drop_table("fallback_outcomes")
    with op.batch_alter_table("scheduled_callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_callbacks_state_due")
    op.drop_table("scheduled_callbacks")
    op.drop_table("site_settings")
