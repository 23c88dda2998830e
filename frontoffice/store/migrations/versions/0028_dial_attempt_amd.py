"""answering-machine detection: its decision, cause, time and audio on each dial attempt

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.add_column(sa.Column("amd_decision", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("amd_cause", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("amd_ms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("amd_audio", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.drop_column("amd_audio")
        batch.drop_column("amd_ms")
        batch.drop_column("amd_cause")
        batch.drop_column("amd_decision")
