"""integrations: API token scopes, expiry and project limit; public web forms; change feeds
(interactions.updated_at, (updated_at, id) indexes, deleted_records tombstones)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    # Tokens made before scopes keep their owner's full rights: the ``admin`` scope.
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scopes", JSON, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("project_ids", JSON, nullable=True))
    op.execute("UPDATE api_tokens SET scopes = '[\"admin\"]'")
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scopes", existing_type=JSON, nullable=False)

    op.create_table(
        "web_forms",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_point_id", ID, nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("allowed_origins", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("captcha", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_point_id"],
            ["entry_points.id"],
            name=op.f("fk_web_forms_entry_point_id_entry_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_forms")),
        sa.UniqueConstraint("entry_point_id", name=op.f("uq_web_forms_entry_point_id")),
        sa.UniqueConstraint("public_key", name=op.f("uq_web_forms_public_key")),
    )

    op.create_table(
        "deleted_records",
        sa.Column("id", ID, nullable=False),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("merged_into_id", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_records")),
    )
    op.create_index(
        "ix_deleted_records_resource_deleted", "deleted_records", ["resource", "deleted_at", "record_id"]
    )

    # Interactions get the time of their last change; existing rows their latest known time.
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE interactions SET updated_at = "
        "COALESCE(closed_at, ended_at, connected_at, offered_at, queued_at, created_at)"
    )
    with op.batch_alter_table("interactions") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
    for table in ("customers", "companies", "interactions", "tickets", "deals"):
        op.create_index(f"ix_{table}_updated", table, ["updated_at", "id"])


def downgrade() -> None:
    for table in ("customers", "companies", "interactions", "tickets", "deals"):
        op.drop_index(f"ix_{table}_updated", table_name=table)
    with op.batch_alter_table("interactions") as batch:
        batch.drop_column("updated_at")
    op.drop_index("ix_deleted_records_resource_deleted", table_name="deleted_records")
    op.drop_table("deleted_records")
    op.drop_table("web_forms")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("project_ids")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
