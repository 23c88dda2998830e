"""The knowledge base: categories and articles in Russian and English, drafts and published versions,
full-text search for agents (with suggestions from a contact's subject) and a public read-only view per
project.

Search reads only published text, on each database's own full-text engine:

- **SQLite**: the FTS5 table ``kb_search`` (rowid = article id), kept in step by :meth:`publish` in
  the same transaction; words are matched as prefixes (``возврат*`` finds "возврата"), which stands in
  for the Russian stemming FTS5 lacks; ranked by bm25.
- **PostgreSQL**: ``to_tsvector('russian' | 'english', title || body)`` with a GIN expression index per
  language (migration 0014), ``plainto_tsquery``, ranked by ``ts_rank``.

A user limited to projects sees the articles of their projects and those of no project.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, column, func, literal_column, or_, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from frontoffice.domain.exceptions import InvalidInput, NotFound
from frontoffice.store.tables import Interaction, KbArticle, KbArticleVersion, KbCategory, Project, Ticket

from .context import Actor, Clock, audit, system_clock
from .schemas import Input
from .scope import check_project, visible_interaction, visible_ticket

__all__ = [
    "ArticleIn",
    "ArticleOut",
    "ArticlePatch",
    "CategoryIn",
    "CategoryOut",
    "CategoryPatch",
    "KnowledgeBase",
    "SearchHit",
]

Language = Literal["ru", "en"]
PG_CONFIGS: Final = {"ru": "russian", "en": "english"}
#: Words of a query that count: letters and digits (the rest is FTS syntax a user must not inject).
_WORD: Final = re.compile(r"\w+", re.UNICODE)
#: A query reads at most this many words (a pasted paragraph is cut, not refused).
MAX_QUERY_WORDS = 12
#: Hits per search: the agent's side panel and the public page show one screen.
SEARCH_LIMIT = 20
#: Words of a subject too short to mean anything ("a", "is", "в", "на").
MIN_WORD_LENGTH = 3


_KB_SEARCH: Final = table("kb_search", column("rowid"))
_PUBLISHED_TEXT: Final[Any] = literal_column(
    "coalesce(kb_articles.published_title, '') || ' ' || coalesce(kb_articles.published_body, '')"
)


class CategoryIn(Input):
    name: str = Field(min_length=1, max_length=200)
    project_id: int | None = None
    position: int = 0


class CategoryPatch(Input):
    """Fields to change (the project stays: move articles by giving them another category)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = None


class CategoryOut(BaseModel):
    id: int
    name: str
    project_id: int | None
    position: int
    articles: int = Field(default=0, description="articles in the category (drafts included)")


class ArticleIn(Input):
    language: Language
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(default="", max_length=200_000)
    category_id: int | None = None
    project_id: int | None = None


class ArticlePatch(Input):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, max_length=200_000)
    category_id: int | None = None


class ArticleOut(BaseModel):
    id: int
    language: str
    project_id: int | None
    category_id: int | None
    draft_title: str
    draft_body: str
    published_title: str | None
    published_body: str | None
    version: int = Field(description="0: never published")
    published_at: datetime | None


class SearchHit(BaseModel):
    id: int
    language: str
    title: str
    snippet: str
    category_id: int | None


def _article_out(a: KbArticle) -> ArticleOut:
    return ArticleOut(
        id=a.id,
        language=a.language,
        project_id=a.project_id,
        category_id=a.category_id,
        draft_title=a.draft_title,
        draft_body=a.draft_body,
        published_title=a.published_title,
        published_body=a.published_body,
        version=a.version,
        published_at=a.published_at,
    )


def _dialect(s: AsyncSession) -> str:
    return s.get_bind().dialect.name


def _words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)][:MAX_QUERY_WORDS]


def _snippet(body: str, words: list[str], width: int = 160) -> str:
    lowered = body.lower()
    at = min((i for w in words if (i := lowered.find(w)) >= 0), default=0)
    start = max(0, at - width // 4)
    return (
        ("…" if start else "")
        + body[start : start + width].strip()
        + ("…" if start + width < len(body) else "")
    )


class KnowledgeBase:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = system_clock) -> None:
        self.sessions = sessions
        self.clock = clock

    # ------------------------------------------------------------------ writing
    async def create_category(self, actor: Actor, data: CategoryIn) -> CategoryOut:
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            if data.project_id is not None:
                await check_project(s, actor, data.project_id)
            category = KbCategory(name=data.name, project_id=data.project_id, position=data.position)
            s.add(category)
            await s.flush()
            audit(s, actor, "kb_category.create", "kb_category", category.id, self.clock())
            return CategoryOut(
                id=category.id, name=category.name, project_id=category.project_id, position=category.position
            )

    async def categories(self, actor: Actor) -> list[CategoryOut]:
        actor.require("tickets.read")
        async with self.sessions() as s:
            rows = list(
                await s.scalars(
                    self._scoped(select(KbCategory), KbCategory.project_id, actor).order_by(
                        KbCategory.position, KbCategory.id
                    )
                )
            )
            counts: dict[int, int] = {}
            if rows:
                found = await s.execute(
                    select(KbArticle.category_id, func.count())
                    .where(KbArticle.category_id.in_([c.id for c in rows]))
                    .group_by(KbArticle.category_id)
                )
                counts = {k: int(n) for k, n in found if k is not None}
            return [
                CategoryOut(
                    id=c.id,
                    name=c.name,
                    project_id=c.project_id,
                    position=c.position,
                    articles=counts.get(c.id, 0),
                )
                for c in rows
            ]

    async def update_category(self, actor: Actor, category_id: int, patch: CategoryPatch) -> CategoryOut:
        """Rename or reorder a category (supervisors)."""
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            category = await self._category(s, actor, category_id)
            if patch.name is not None:
                category.name = patch.name
            if patch.position is not None:
                category.position = patch.position
            audit(
                s,
                actor,
                "kb_category.update",
                "kb_category",
                category.id,
                self.clock(),
                fields=sorted(patch.model_dump(exclude_unset=True)),
            )
            await s.flush()
            articles = await s.scalar(
                select(func.count()).select_from(KbArticle).where(KbArticle.category_id == category.id)
            )
            return CategoryOut(
                id=category.id,
                name=category.name,
                project_id=category.project_id,
                position=category.position,
                articles=int(articles or 0),
            )

    async def delete_category(self, actor: Actor, category_id: int) -> None:
        """Delete a category (supervisors); its articles stay, without a category (set here, not left
        to the foreign key, so it holds on a SQLite file opened without foreign keys too)."""
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            category = await self._category(s, actor, category_id)
            moved = await s.execute(
                update(KbArticle).where(KbArticle.category_id == category_id).values(category_id=None)
            )
            await s.delete(category)
            audit(
                s,
                actor,
                "kb_category.delete",
                "kb_category",
                category_id,
                self.clock(),
                name=category.name,
                articles=int(getattr(moved, "rowcount", 0) or 0),
            )

    async def _category(self, s: AsyncSession, actor: Actor, category_id: int) -> KbCategory:
        row: KbCategory | None = await s.scalar(
            self._scoped(select(KbCategory), KbCategory.project_id, actor).where(KbCategory.id == category_id)
        )
        if row is None:
            raise NotFound("No such category", error_id="no-such-kb-category", category_id=category_id)
        return row

    async def create_article(self, actor: Actor, data: ArticleIn) -> ArticleOut:
        """A new article: a draft until published."""
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            if data.project_id is not None:
                await check_project(s, actor, data.project_id)
            if data.category_id is not None and await s.get(KbCategory, data.category_id) is None:
                raise NotFound(
                    "No such category", error_id="no-such-kb-category", category_id=data.category_id
                )
            now = self.clock()
            article = KbArticle(
                project_id=data.project_id,
                category_id=data.category_id,
                language=data.language,
                draft_title=data.title,
                draft_body=data.body,
                version=0,
                created_at=now,
                updated_at=now,
            )
            s.add(article)
            await s.flush()
            audit(s, actor, "kb_article.create", "kb_article", article.id, now)
            return _article_out(article)

    async def update_draft(self, actor: Actor, article_id: int, patch: ArticlePatch) -> ArticleOut:
        """Change the draft; readers keep seeing the published text until the next publication."""
        actor.require("agents.supervise")
        changes = patch.model_dump(exclude_unset=True)
        async with self.sessions.begin() as s:
            article = await self._article(s, actor, article_id)
            if patch.title is not None:
                article.draft_title = patch.title
            if patch.body is not None:
                article.draft_body = patch.body
            if "category_id" in changes:
                article.category_id = patch.category_id
            article.updated_at = self.clock()
            audit(
                s,
                actor,
                "kb_article.update",
                "kb_article",
                article_id,
                article.updated_at,
                fields=sorted(changes),
            )
            await s.flush()
            return _article_out(article)

    async def publish(self, actor: Actor, article_id: int) -> ArticleOut:
        """Publish the draft as the next version (kept in the history) and index it, in one transaction."""
        actor.require("agents.supervise")
        async with self.sessions.begin() as s:
            article = await self._article(s, actor, article_id)
            now = self.clock()
            article.version += 1
            article.published_title = article.draft_title
            article.published_body = article.draft_body
            article.published_at = now
            article.updated_at = now
            s.add(
                KbArticleVersion(
                    article_id=article.id,
                    version=article.version,
                    title=article.draft_title,
                    body=article.draft_body,
                    published_at=now,
                    published_by=actor.user_id,
                )
            )
            if _dialect(s) == "sqlite":
                await s.execute(text("DELETE FROM kb_search WHERE rowid = :id"), {"id": article.id})
                await s.execute(
                    text("INSERT INTO kb_search (rowid, title, body) VALUES (:id, :title, :body)"),
                    {"id": article.id, "title": article.draft_title, "body": article.draft_body},
                )
            audit(s, actor, "kb_article.publish", "kb_article", article_id, now, version=article.version)
            await s.flush()
            return _article_out(article)

    async def get(self, actor: Actor, article_id: int) -> ArticleOut:
        actor.require("tickets.read")
        async with self.sessions() as s:
            return _article_out(await self._article(s, actor, article_id))

    # ------------------------------------------------------------------ reading
    async def search(
        self, actor: Actor, query: str, *, language: Language | None = None, any_word: bool = False
    ) -> list[SearchHit]:
        """Published articles matching every word of ``query`` (``any_word``: any of them), best first."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            return await self._search(
                s, query, language=language, any_word=any_word, actor=actor, project_id=None
            )

    async def suggestions(
        self, actor: Actor, interaction_id: int | None = None, *, ticket_id: int | None = None
    ) -> list[SearchHit]:
        """Articles for a contact or a ticket, from its subject: any of its meaningful words, best
        first, in its project."""
        actor.require("tickets.read")
        async with self.sessions() as s:
            if ticket_id is not None:
                found: Interaction | Ticket = await visible_ticket(s, actor, ticket_id)
            elif interaction_id is not None:
                found = await visible_interaction(s, actor, interaction_id)
            else:
                raise InvalidInput(
                    "Give a contact or a ticket", error_id="no-subject-given", field="interaction_id"
                )
            words = [w for w in _words(found.subject) if len(w) >= MIN_WORD_LENGTH]
            if not words:
                return []
            return await self._search(
                s,
                " ".join(words),
                language=None,
                any_word=True,
                actor=actor,
                project_id=found.project_id,
            )

    async def public_search(
        self, project_code: str, query: str = "", *, language: Language | None = None
    ) -> list[SearchHit]:
        """The public page of a project: its published articles (and those of no project); no sign-in."""
        async with self.sessions() as s:
            project = await s.scalar(select(Project).where(Project.code == project_code))
            if project is None:
                raise NotFound(
                    "No such knowledge base", error_id="no-such-knowledge-base", project=project_code
                )
            if query.strip():
                return await self._search(
                    s, query, language=language, any_word=False, actor=None, project_id=project.id
                )
            stmt = select(KbArticle).where(
                KbArticle.published_at.is_not(None),
                or_(KbArticle.project_id == project.id, KbArticle.project_id.is_(None)),
            )
            if language is not None:
                stmt = stmt.where(KbArticle.language == language)
            rows = await s.scalars(stmt.order_by(KbArticle.category_id, KbArticle.id).limit(200))
            return [self._hit(a, []) for a in rows]

    async def public_article(self, project_code: str, article_id: int) -> ArticleOut:
        async with self.sessions() as s:
            project = await s.scalar(select(Project).where(Project.code == project_code))
            article = await s.get(KbArticle, article_id)
            if (
                project is None
                or article is None
                or article.published_at is None
                or article.project_id not in (None, project.id)
            ):
                raise NotFound("No such article", error_id="no-such-kb-article", article_id=article_id)
            public = _article_out(article)
            return public.model_copy(update={"draft_title": "", "draft_body": ""})  # drafts are not public

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _scoped(stmt: Select[Any], project_column: Any, actor: Actor | None) -> Select[Any]:
        if actor is None or actor.project_ids is None:
            return stmt
        return stmt.where(or_(project_column.is_(None), project_column.in_(sorted(actor.project_ids))))

    @staticmethod
    def _hit(a: KbArticle, words: list[str]) -> SearchHit:
        return SearchHit(
            id=a.id,
            language=a.language,
            title=a.published_title or "",
            snippet=_snippet(a.published_body or "", words),
            category_id=a.category_id,
        )

    async def _search(
        self,
        s: AsyncSession,
        query: str,
        *,
        language: Language | None,
        any_word: bool,
        actor: Actor | None,
        project_id: int | None,
    ) -> list[SearchHit]:
        words = _words(query)
        if not words:
            return []
        stmt = select(KbArticle).where(KbArticle.published_at.is_not(None))
        if _dialect(s) == "sqlite":
            # Each word quoted (FTS5 syntax in a query cannot escape) and matched as a prefix.
            match = (" OR " if any_word else " AND ").join('"' + w.replace('"', "") + '"*' for w in words)
            stmt = stmt.join(_KB_SEARCH, _KB_SEARCH.c.rowid == KbArticle.id).where(
                text("kb_search MATCH :match").bindparams(match=match)
            )
            stmt = stmt.order_by(text("bm25(kb_search)"))
        else:
            conditions = []
            ranks = []
            for lang, config in PG_CONFIGS.items():
                if language is not None and lang != language:
                    continue
                # The very expression of migration 0014's GIN index, with literals: the planner uses it.
                document = func.to_tsvector(literal_column(f"'{config}'"), _PUBLISHED_TEXT)
                # plainto_tsquery reads words only (no operators a user could inject); OR is tsquery ||.
                cfg: Any = literal_column(f"'{config}'")
                tsquery: Any
                if any_word:
                    tsquery = func.plainto_tsquery(cfg, words[0])
                    for word in words[1:]:
                        tsquery = tsquery.op("||")(func.plainto_tsquery(cfg, word))
                else:
                    tsquery = func.plainto_tsquery(cfg, " ".join(words))
                conditions.append((KbArticle.language == lang) & document.op("@@")(tsquery))
                ranks.append(func.ts_rank(document, tsquery))
            stmt = stmt.where(or_(*conditions)).order_by(
                func.greatest(*ranks).desc() if len(ranks) > 1 else ranks[0].desc()
            )
        if language is not None:
            stmt = stmt.where(KbArticle.language == language)
        if project_id is not None:
            stmt = stmt.where(or_(KbArticle.project_id == project_id, KbArticle.project_id.is_(None)))
        stmt = self._scoped(stmt, KbArticle.project_id, actor)
        rows = await s.scalars(stmt.order_by(KbArticle.id).limit(SEARCH_LIMIT))
        return [self._hit(a, words) for a in rows]

    async def _article(self, s: AsyncSession, actor: Actor, article_id: int) -> KbArticle:
        article = await s.get(KbArticle, article_id)
        if article is None or not actor.sees_project(article.project_id):
            raise NotFound("No such article", error_id="no-such-kb-article", article_id=article_id)
        return article
