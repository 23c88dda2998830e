"""help desk: a ticket's reply links to the outbound message that carries it (its delivery state is the
message's)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("ticket_posts") as batch:
        batch.add_column(sa.Column("message_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_ticket_posts_message_id_messages"),
            "messages",
            ["message_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_posts") as batch:
        batch.drop_constraint(op.f("fk_ticket_posts_message_id_messages"), type_="foreignkey")
        batch.drop_column("message_id")
