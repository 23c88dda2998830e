"""activities: tasks and reminders with due times on deals, tickets and customers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "activities",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("owner_id", ID, nullable=True),
        sa.Column("deal_id", ID, nullable=True),
        sa.Column("ticket_id", ID, nullable=True),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("done_at", TIME, nullable=True),
        sa.Column("notify_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_activities_owner_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_activities_deal_id_deals"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_activities_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_activities_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    op.create_index("ix_activities_owner_done_due", "activities", ["owner_id", "done_at", "due_at", "id"])
    op.create_index("ix_activities_notify", "activities", ["notify_at"])
    op.create_index("ix_activities_deal", "activities", ["deal_id"])
    op.create_index("ix_activities_ticket", "activities", ["ticket_id"])
    op.create_index("ix_activities_customer", "activities", ["customer_id"])


def downgrade() -> None:
    for name in ("customer", "ticket", "deal", "notify", "owner_done_due"):
        op.drop_index(f"ix_activities_{name}", table_name="activities")
    op.drop_table("activities")
