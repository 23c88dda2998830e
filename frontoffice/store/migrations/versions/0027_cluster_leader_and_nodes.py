"""several nodes: the routing leader's fencing epoch and the nodes' heartbeats

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = frontoffice.store.tables.UTCDateTime()


def upgrade() -> None:
    # One row: the epoch (fencing token) of the routing leader, incremented by each new leader.
    op.create_table(
        "cluster_leader",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("since", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster_leader")),
    )
    op.execute("INSERT INTO cluster_leader (id, epoch, node) VALUES (1, 0, '')")
    op.create_table(
        "cluster_nodes",
        sa.Column("node", sa.String(length=200), nullable=False),
        sa.Column("http_url", sa.String(length=300), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=True),
        sa.Column("bus", sa.String(length=16), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("node", name=op.f("pk_cluster_nodes")),
    )


def downgrade() -> None:
    op.drop_table("cluster_nodes")
    op.drop_table("cluster_leader")
