"""outbox: index for the delivery order per subject (is an earlier item of the subject pending?)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_subject_key_id", "outbox", ["subject_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_subject_key_id", table_name="outbox")
