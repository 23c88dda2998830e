"""help desk: tickets as routed work (waits for an agent, its work item, pending sync), re-route on an
SLA breach, satisfaction surveys, the unassigned list by SLA time left read in index order

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import frontoffice.store.tables

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = frontoffice.store.tables.UTCDateTime()
#: The ticket capacity agents get (domain.routing.DEFAULT_TICKET_CAPACITY when this was written).
TICKET_CAPACITY = 3


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("awaits_agent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("work_item_id", ID, nullable=True))
        batch.add_column(sa.Column("work_sync", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_foreign_key(
            op.f("fk_tickets_work_item_id_interactions"),
            "interactions",
            ["work_item_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_tickets_work_sync", ["work_sync"])
        batch.create_index("ix_tickets_assignee_status_sla_due", ["assignee_id", "status", "sla_due_at", "id"])
    with op.batch_alter_table("sla_policies") as batch:
        batch.add_column(sa.Column("breach_queue_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_sla_policies_breach_queue_id_queues"),
            "queues",
            ["breach_queue_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "csat_surveys",
        sa.Column("id", ID, nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("queue_id", ID, nullable=True),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sent_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_csat_surveys_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_csat_surveys_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_csat_surveys_agent_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queues.id"], name=op.f("fk_csat_surveys_queue_id_queues"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_csat_surveys_project_id_projects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
        sa.UniqueConstraint("ticket_id", name="uq_csat_surveys_ticket_id"),
    )
    op.create_index("ix_csat_surveys_sent", "csat_surveys", ["sent_at"])
    # Agents saved before the ticket channel existed get the default ticket capacity (as a new
    # profile does), so that ticket work queued in their queues is offered to them.
    profiles = sa.table("agent_profiles", sa.column("user_id", ID), sa.column("capacity", JSON))
    conn = op.get_bind()
    for user_id, capacity in conn.execute(sa.select(profiles.c.user_id, profiles.c.capacity)).all():
        if capacity and "ticket" not in capacity:
            conn.execute(
                profiles.update()
                .where(profiles.c.user_id == user_id)
                .values(capacity={**capacity, "ticket": TICKET_CAPACITY})
            )


def downgrade() -> None:
    op.drop_index("ix_csat_surveys_sent", table_name="csat_surveys")
    op.drop_table("csat_surveys")
    with op.batch_alter_table("sla_policies") as batch:
        batch.drop_constraint(op.f("fk_sla_policies_breach_queue_id_queues"), type_="foreignkey")
        batch.drop_column("breach_queue_id")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_assignee_status_sla_due")
        batch.drop_index("ix_tickets_work_sync")
        batch.drop_constraint(op.f("fk_tickets_work_item_id_interactions"), type_="foreignkey")
        batch.drop_column("work_sync")
        batch.drop_column("work_item_id")
        batch.drop_column("awaits_agent")
