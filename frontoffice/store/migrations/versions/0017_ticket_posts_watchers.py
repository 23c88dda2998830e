"""the ticket page: internal notes and replies of a ticket (ticket_posts), its watchers, and an index
on the audit log by object for a ticket's history of changes

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "ticket_posts",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("mentions", JSON, nullable=False),
        sa.Column("delivery", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_posts_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_ticket_posts_author_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_posts")),
    )
    op.create_index("ix_ticket_posts_ticket_created", "ticket_posts", ["ticket_id", "created_at", "id"])
    op.create_table(
        "ticket_watchers",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_watchers_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ticket_watchers_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "user_id", name=op.f("pk_ticket_watchers")),
    )
    op.create_index(op.f("ix_ticket_watchers_user_id"), "ticket_watchers", ["user_id"])
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_object", table_name="audit_log")
    op.drop_index(op.f("ix_ticket_watchers_user_id"), table_name="ticket_watchers")
    op.drop_table("ticket_watchers")
    op.drop_index("ix_ticket_posts_ticket_created", table_name="ticket_posts")
    op.drop_table("ticket_posts")
