"""help desk: the users @mentioned in a ticket's notes, each mention listed on their desk until seen

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "ticket_mentions",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("post_id", ID, nullable=False),
        sa.Column("by_id", ID, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("seen_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ticket_mentions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_mentions_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["ticket_posts.id"], name=op.f("fk_ticket_mentions_post_id_ticket_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["by_id"], ["users.id"], name=op.f("fk_ticket_mentions_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_mentions")),
    )
    op.create_index("ix_ticket_mentions_user_seen", "ticket_mentions", ["user_id", "seen_at", "id"])
    op.create_index(op.f("ix_ticket_mentions_ticket_id"), "ticket_mentions", ["ticket_id"])
    op.create_index(op.f("ix_ticket_mentions_post_id"), "ticket_mentions", ["post_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_mentions_post_id"), table_name="ticket_mentions")
    op.drop_index(op.f("ix_ticket_mentions_ticket_id"), table_name="ticket_mentions")
    op.drop_index("ix_ticket_mentions_user_seen", table_name="ticket_mentions")
    op.drop_table("ticket_mentions")
