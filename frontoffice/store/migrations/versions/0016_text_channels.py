"""text channels: threads, a message's identity, recipients and delivery state, blobs and
attachments stored once by content hash, the outbox

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "threads",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("entry_point_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("last_agent_id", ID, nullable=True),
        sa.Column("merged_into_id", ID, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_message_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_threads_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["entry_point_id"],
            ["entry_points.id"],
            name=op.f("fk_threads_entry_point_id_entry_points"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_agent_id"], ["users.id"], name=op.f("fk_threads_last_agent_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["threads.id"], name=op.f("fk_threads_merged_into_id_threads"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
        sa.UniqueConstraint("token", name=op.f("uq_threads_token")),
    )
    op.create_index("ix_threads_customer_last", "threads", ["customer_id", "last_message_at"])
    op.create_index("ix_threads_entry_point_last", "threads", ["entry_point_id", "last_message_at"])

    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_interactions_thread_id"), ["thread_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_interactions_thread_id_threads"), "threads", ["thread_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", ID, nullable=True))
        batch_op.add_column(sa.Column("recipients", JSON, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("subject", sa.String(length=998), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("html_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rfc_message_id", sa.String(length=998), nullable=True))
        batch_op.add_column(sa.Column("in_reply_to", sa.String(length=998), nullable=True))
        batch_op.add_column(sa.Column("reference_ids", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("thread_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("flags", JSON, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("raw_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("author_id", ID, nullable=True))
        batch_op.add_column(sa.Column("delivery_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("delivery_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", TIME, nullable=True))
        batch_op.create_index("ix_messages_rfc_message_id", ["rfc_message_id"], unique=False)
        batch_op.create_index("ix_messages_thread_created", ["thread_id", "created_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_author_id_users"), "users", ["author_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_thread_id_threads"), "threads", ["thread_id"], ["id"], ondelete="SET NULL"
        )

    op.create_table(
        "message_attachments",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.String(length=998), nullable=True),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_attachments_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["blobs.sha256"], name=op.f("fk_message_attachments_sha256_blobs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_attachments")),
    )
    op.create_index(op.f("ix_message_attachments_message_id"), "message_attachments", ["message_id"])
    op.create_index(op.f("ix_message_attachments_sha256"), "message_attachments", ["sha256"])

    op.create_table(
        "outbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("message_id", ID, nullable=True),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_outbox_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_message_id"), "outbox", ["message_id"])
    op.create_index("ix_outbox_state_due", "outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.drop_index(op.f("ix_outbox_message_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_message_attachments_sha256"), table_name="message_attachments")
    op.drop_index(op.f("ix_message_attachments_message_id"), table_name="message_attachments")
    op.drop_table("message_attachments")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_thread_id_threads"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_messages_author_id_users"), type_="foreignkey")
        batch_op.drop_index("ix_messages_thread_created")
        batch_op.drop_index("ix_messages_rfc_message_id")
        for column in (
            "delivered_at",
            "delivery_error",
            "delivery_state",
            "author_id",
            "raw_sha256",
            "flags",
            "thread_reason",
            "reference_ids",
            "in_reply_to",
            "rfc_message_id",
            "html_body",
            "subject",
            "recipients",
            "thread_id",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_interactions_thread_id_threads"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_interactions_thread_id"))
        batch_op.drop_column("thread_id")
    op.drop_index("ix_threads_entry_point_last", table_name="threads")
    op.drop_index("ix_threads_customer_last", table_name="threads")
    op.drop_table("threads")
    op.drop_table("blobs")
