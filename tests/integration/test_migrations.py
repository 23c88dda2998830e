"""The migrations build the schema the models describe: a database migrated from empty compares equal
to ``tables.Base.metadata`` (alembic's autogenerate comparison), but for the knowledge base's FTS5
tables, which only a migration creates (SQLite's virtual table and its shadow tables)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from frontoffice.store import migrate
from frontoffice.store.tables import Base


def test_a_migrated_database_has_the_models_schema(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    unexpected = [
        d for d in differences if not (d[0] == "remove_table" and d[1].name.startswith("kb_search"))
    ]
    assert unexpected == []
