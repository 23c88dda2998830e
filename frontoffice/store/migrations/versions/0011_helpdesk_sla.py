"""help desk SLA: policies, a ticket's clocks, its earliest deadline and the SLA job's next look; the
ticket a customer's late reply follows up

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("project_ids", JSON, nullable=False),
        sa.Column("queue_ids", JSON, nullable=False),
        sa.Column("priorities", JSON, nullable=False),
        sa.Column("customer_tags", JSON, nullable=False),
        sa.Column("calendar_id", ID, nullable=True),
        sa.Column("first_response_s", sa.Integer(), nullable=True),
        sa.Column("next_response_s", sa.Integer(), nullable=True),
        sa.Column("resolution_s", sa.Integer(), nullable=True),
        sa.Column("warn_before_s", sa.Integer(), nullable=False),
        sa.Column("breach_priority", sa.String(length=16), nullable=True),
        sa.Column("notify_supervisors", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"], ["calendars.id"], name=op.f("fk_sla_policies_calendar_id_calendars"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_policy_id", ID, nullable=True))
        batch_op.add_column(sa.Column("sla", JSON, nullable=True))
        batch_op.add_column(sa.Column("sla_due_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("sla_check_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("follow_up_of_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_follow_up_of_id_tickets"), "tickets", ["follow_up_of_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_sla_policy_id_sla_policies"),
            "sla_policies",
            ["sla_policy_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_tickets_sla_check", ["sla_check_at"], unique=False)
        batch_op.create_index("ix_tickets_status_sla_due", ["status", "sla_due_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_sla_due")
        batch_op.drop_index("ix_tickets_sla_check")
        batch_op.drop_constraint(batch_op.f("fk_tickets_sla_policy_id_sla_policies"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_tickets_follow_up_of_id_tickets"), type_="foreignkey")
        batch_op.drop_column("follow_up_of_id")
        batch_op.drop_column("sla_check_at")
        batch_op.drop_column("sla_due_at")
        batch_op.drop_column("sla")
        batch_op.drop_column("sla_policy_id")
    op.drop_table("sla_policies")
