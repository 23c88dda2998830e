"""knowledge base: categories, articles with drafts and published versions, full-text search (an FTS5
table on SQLite, GIN expression indexes per language on PostgreSQL)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import frontoffice.store.tables

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = frontoffice.store.tables.UTCDateTime()
# The text search configuration of each article language (frontoffice.services.knowledge_base).
PG_CONFIGS = {"ru": "russian", "en": "english"}


def upgrade() -> None:
    op.create_table(
        "kb_categories",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_kb_categories_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_categories")),
    )
    op.create_index(op.f("ix_kb_categories_project_id"), "kb_categories", ["project_id"])
    op.create_table(
        "kb_articles",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("category_id", ID, nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("draft_title", sa.String(length=300), nullable=False),
        sa.Column("draft_body", sa.Text(), nullable=False),
        sa.Column("published_title", sa.String(length=300), nullable=True),
        sa.Column("published_body", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_kb_articles_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["kb_categories.id"], name=op.f("fk_kb_articles_category_id_kb_categories"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
    )
    op.create_index("ix_kb_articles_project_language", "kb_articles", ["project_id", "language", "category_id"])
    op.create_table(
        "kb_article_versions",
        sa.Column("article_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", TIME, nullable=False),
        sa.Column("published_by", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"], ["kb_articles.id"], name=op.f("fk_kb_article_versions_article_id_kb_articles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["users.id"], name=op.f("fk_kb_article_versions_published_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("article_id", "version", name=op.f("pk_kb_article_versions")),
    )
    if op.get_bind().dialect.name == "sqlite":
        # rowid = the article's id; only published text is indexed. unicode61 folds case and
        # diacritics (ё/е stay distinct); prefix queries stand in for Russian stemming.
        op.execute(
            "CREATE VIRTUAL TABLE kb_search USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        for language, config in PG_CONFIGS.items():
            op.execute(
                f"CREATE INDEX ix_kb_articles_fts_{language} ON kb_articles USING gin "
                f"(to_tsvector('{config}', coalesce(published_title, '') || ' ' || coalesce(published_body, ''))) "
                f"WHERE language = '{language}'"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE kb_search")
    else:
        for language in PG_CONFIGS:
            op.execute(f"DROP INDEX ix_kb_articles_fts_{language}")
    op.drop_table("kb_article_versions")
    op.drop_index("ix_kb_articles_project_language", table_name="kb_articles")
    op.drop_table("kb_articles")
    op.drop_index(op.f("ix_kb_categories_project_id"), table_name="kb_categories")
    op.drop_table("kb_categories")
