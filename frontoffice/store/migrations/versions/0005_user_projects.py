"""the projects a user is limited to

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_projects",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_user_projects_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_projects_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "project_id", name=op.f("pk_user_projects")),
    )
    with op.batch_alter_table("user_projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_projects_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("user_projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_projects_project_id"))
    op.drop_table("user_projects")
