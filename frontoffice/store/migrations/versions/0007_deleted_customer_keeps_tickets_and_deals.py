"""a deleted customer's tickets and deals stay, with no customer (ON DELETE SET NULL)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CASES = ("tickets", "deals")


def upgrade() -> None:
    for table in CASES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_customer_id_customers", type_="foreignkey")
            batch_op.alter_column("customer_id", existing_type=ID, nullable=True)
            batch_op.create_foreign_key(
                f"fk_{table}_customer_id_customers", "customers", ["customer_id"], ["id"], ondelete="SET NULL"
            )


def downgrade() -> None:
    # A case whose customer was deleted has nowhere to go back to: it goes, as it did before.
    for table in CASES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE customer_id IS NULL"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_customer_id_customers", type_="foreignkey")
            batch_op.alter_column("customer_id", existing_type=ID, nullable=False)
            batch_op.create_foreign_key(
                f"fk_{table}_customer_id_customers", "customers", ["customer_id"], ["id"], ondelete="CASCADE"
            )
