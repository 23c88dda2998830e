"""the projects a customer card was created in; the project of a deal; indexes for who sees what

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_projects",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_projects_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_customer_projects_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "project_id", name=op.f("pk_customer_projects")),
    )
    with op.batch_alter_table("customer_projects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_projects_project_customer", ["project_id", "customer_id"], unique=False
        )

    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("project_id", ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deals_project_id_projects"),
            "projects",
            ["project_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_deals_project_customer", ["project_id", "customer_id"], unique=False)

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_project_customer", ["project_id", "customer_id"], unique=False)

    # The project's customers read from the index alone; it also serves every look-up by project,
    # so it replaces the index on the project alone (no extra index to write per contact).
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_project_id")
        batch_op.create_index("ix_interactions_project_customer", ["project_id", "customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_project_customer")
        batch_op.create_index("ix_interactions_project_id", ["project_id"], unique=False)

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_project_customer")

    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_project_customer")
        batch_op.drop_constraint(batch_op.f("fk_deals_project_id_projects"), type_="foreignkey")
        batch_op.drop_column("project_id")

    with op.batch_alter_table("customer_projects", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_projects_project_customer")
    op.drop_table("customer_projects")
