"""help desk work lists: a ticket's queue, tags and merge target; saved views; a deal's expected
close day; the indexes of every built-in ticket and deal view

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0010"
# The lead re-chains this after 0009 at merge time.
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_id", ID, nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_queue_id_queues"), "queues", ["queue_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_merged_into_id_tickets"),
            "tickets",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # (assignee_id, status) is a prefix of the new work-list index.
        batch_op.drop_index("ix_tickets_assignee_status")
        batch_op.create_index(
            "ix_tickets_assignee_status_updated", ["assignee_id", "status", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_queue_status_updated", ["queue_id", "status", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_project_status_updated", ["project_id", "status", "updated_at", "id"], unique=False
        )
        batch_op.create_index("ix_tickets_status_updated", ["status", "updated_at", "id"], unique=False)

    op.create_table(
        "ticket_tags",
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_tags_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "tag", name=op.f("pk_ticket_tags")),
    )
    op.create_index("ix_ticket_tags_tag_ticket", "ticket_tags", ["tag", "ticket_id"], unique=False)

    op.create_table(
        "saved_views",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("filters", JSON, nullable=False),
        sa.Column("sort", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_saved_views_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
    )
    op.create_index("ix_saved_views_kind_owner", "saved_views", ["kind", "owner_id"], unique=False)

    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_close_on", sa.Date(), nullable=True))
        batch_op.create_index("ix_deals_stage_updated", ["stage", "updated_at", "id"], unique=False)
        batch_op.create_index("ix_deals_owner_updated", ["owner_id", "updated_at", "id"], unique=False)
        batch_op.create_index("ix_deals_expected_close", ["expected_close_on", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_expected_close")
        batch_op.drop_index("ix_deals_owner_updated")
        batch_op.drop_index("ix_deals_stage_updated")
        batch_op.drop_column("expected_close_on")
    op.drop_index("ix_saved_views_kind_owner", table_name="saved_views")
    op.drop_table("saved_views")
    op.drop_index("ix_ticket_tags_tag_ticket", table_name="ticket_tags")
    op.drop_table("ticket_tags")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_updated")
        batch_op.drop_index("ix_tickets_project_status_updated")
        batch_op.drop_index("ix_tickets_queue_status_updated")
        batch_op.drop_index("ix_tickets_assignee_status_updated")
        batch_op.create_index("ix_tickets_assignee_status", ["assignee_id", "status"], unique=False)
        batch_op.drop_constraint(batch_op.f("fk_tickets_merged_into_id_tickets"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tickets_queue_id_queues"), type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("queue_id")
