"""voice fail-over: agents' phone registrations in the database

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "sip_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("contact", sa.String(length=1000), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("host", sa.String(length=100), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=500), nullable=False),
        sa.Column("cseq", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sip_registrations_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_registrations")),
    )
    op.create_index(op.f("ix_sip_registrations_user_id"), "sip_registrations", ["user_id"], unique=False)
    op.create_index(op.f("ix_sip_registrations_expires_at"), "sip_registrations", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sip_registrations_expires_at"), table_name="sip_registrations")
    op.drop_index(op.f("ix_sip_registrations_user_id"), table_name="sip_registrations")
    op.drop_table("sip_registrations")
