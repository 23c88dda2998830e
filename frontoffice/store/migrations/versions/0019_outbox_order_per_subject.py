"""outbox: index for the delivery order per subject (is an earlier item of the subject pending?);
messages by external id and time (auto-acknowledgements sent to one address)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_subject_key_id", "outbox", ["subject_key", "id"])
    op.create_index("ix_messages_external_id_created", "messages", ["external_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_external_id_created", table_name="messages")
    op.drop_index("ix_outbox_subject_key_id", table_name="outbox")
