"""jobs (imports, exports, personal data exports, the retention sweep) run off the request path;
retention days per project; the project an audit entry concerns; messages by raw blob

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("params", JSON, nullable=False),
        sa.Column("checkpoint", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("result_file", sa.String(300), nullable=True),
        sa.Column(
            "created_by",
            ID,
            sa.ForeignKey("users.id", ondelete="SET NULL", name=op.f("fk_jobs_created_by_users")),
            nullable=True,
        ),
        sa.Column(
            "project_id",
            ID,
            sa.ForeignKey("projects.id", ondelete="SET NULL", name=op.f("fk_jobs_project_id_projects")),
            nullable=True,
        ),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("created_by", "idempotency_key", name=op.f("uq_jobs_created_by_idempotency_key")),
    )
    op.create_index("ix_jobs_state_id", "jobs", ["state", "id"])
    op.create_index("ix_jobs_created_by_id", "jobs", ["created_by", "id"])
    op.create_index(
        "uq_jobs_system_key",
        "jobs",
        ["idempotency_key"],
        unique=True,
        sqlite_where=sa.text("created_by IS NULL"),
        postgresql_where=sa.text("created_by IS NULL"),
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("recordings_retention_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("messages_retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project_id", ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_audit_log_project_id_projects"), "projects", ["project_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_audit_log_project_id", ["project_id"])
    op.create_index("ix_messages_raw_sha256", "messages", ["raw_sha256"])


def downgrade() -> None:
    op.drop_index("ix_messages_raw_sha256", table_name="messages")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_project_id")
        batch.drop_constraint(op.f("fk_audit_log_project_id_projects"), type_="foreignkey")
        batch.drop_column("project_id")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("messages_retention_days")
        batch.drop_column("recordings_retention_days")
    op.drop_index("uq_jobs_system_key", table_name="jobs")
    op.drop_index("ix_jobs_created_by_id", table_name="jobs")
    op.drop_index("ix_jobs_state_id", table_name="jobs")
    op.drop_table("jobs")
