"""one campaign dialler per cluster: the dialler lease's fencing epoch, and the node of each dial attempt

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    # One row: the epoch (fencing token) of the voice node that runs the campaign dialler.
    op.create_table(
        "cluster_dialler",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("since", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_dialler")),
    )
    op.execute("INSERT INTO cluster_dialler (id, epoch, node) VALUES (1, 0, '')")
    # Added only (expand): a node of the previous version keeps writing attempts without it.
    with op.batch_alter_table("dial_attempts") as batch:
        batch.add_column(sa.Column("node", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.drop_column("node")
    op.drop_table("cluster_dialler")
