"""email in: receipts (dedupe of a mailbox's messages by Message-ID, auto-acknowledgement counts),
IMAP mailboxes' UIDVALIDITY and last UID, customer merge suggestions found on the contact path

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "email_receipts",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_point_id", ID, nullable=False),
        sa.Column("rfc_message_id", sa.String(length=998), nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("auto_acknowledged", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_point_id"],
            ["entry_points.id"],
            name=op.f("fk_email_receipts_entry_point_id_entry_points"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_email_receipts_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_receipts")),
        sa.UniqueConstraint(
            "entry_point_id", "rfc_message_id", name=op.f("uq_email_receipts_entry_point_id_rfc_message_id")
        ),
    )
    op.create_index(op.f("ix_email_receipts_message_id"), "email_receipts", ["message_id"])
    op.create_index("ix_email_receipts_sender_received", "email_receipts", ["sender", "received_at"])
    op.create_table(
        "imap_mailbox_state",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_imap_mailbox_state")),
    )
    op.create_table(
        "customer_merge_suggestions",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("other_customer_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_merge_suggestions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_merge_suggestions_other_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merge_suggestions")),
        sa.UniqueConstraint(
            "customer_id",
            "other_customer_id",
            name=op.f("uq_customer_merge_suggestions_customer_id_other_customer_id"),
        ),
    )
    op.create_index(
        op.f("ix_customer_merge_suggestions_other_customer_id"), "customer_merge_suggestions", ["other_customer_id"]
    )


def downgrade() -> None:
    op.drop_table("customer_merge_suggestions")
    op.drop_table("imap_mailbox_state")
    op.drop_table("email_receipts")
