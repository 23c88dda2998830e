"""Hostile input never makes the API answer 500: random JSON, wrong types, garbage CSV, bad cursors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.web.app import create_app

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "first_name",
    "last_name",
    "identities",
    "kind",
    "value",
    "tags",
    "custom",
    "company_id",
    "vip",
    "entry_point",
    "channel",
    "customer",
    "phone",
    "email",
    "subject",
    "priority",
    "attributes",
    "name",
    "settings",
    "strategy",
    "rules",
    "rule",
    "queue_id",
    "address",
    "default_queue_id",
    "offer_timeout_s",
    "customer_id",
    "status",
    "stage",
    "amount",
    "currency",
    "title",
    "due_at",
    "assignee_id",
    "queues",
]
objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
ROUTES = [
    ("POST", "/api/v1/customers"),
    ("PATCH", "/api/v1/customers/1"),
    ("POST", "/api/v1/customers/1/identities"),
    ("POST", "/api/v1/interactions"),
    ("POST", "/api/v1/queues"),
    ("PATCH", "/api/v1/queues/1"),
    ("POST", "/api/v1/entry-points"),
    ("POST", "/api/v1/customers/merge"),
    ("PUT", "/api/v1/agents/1"),
    ("POST", "/api/v1/calendars"),
    ("POST", "/api/v1/planning/staff"),
    ("POST", "/api/v1/tickets"),
    ("PATCH", "/api/v1/tickets/1"),
    ("POST", "/api/v1/deals"),
    ("PATCH", "/api/v1/deals/1"),
]


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    data = tmp_path_factory.mktemp("fuzz")
    shutil.copy(sqlite_template, data / "frontoffice.db")
    container = build_container(
        load_settings(
            data_dir=data,
            database_url=f"sqlite+aiosqlite:///{data / 'frontoffice.db'}",
            secret_key="fuzz-secret-key-0123456789",
        )
    )
    with TestClient(create_app(container)) as client:
        token = client.portal.call(_admin_token, container)  # type: ignore[union-attr]
        headers = {"Authorization": f"Bearer {token}"}
        client.post("/api/v1/customers", json={"first_name": "Seed"}, headers=headers)
        client.post("/api/v1/queues", json={"name": "seed"}, headers=headers)
        client.post("/api/v1/tickets", json={"customer_id": 1, "subject": "seed"}, headers=headers)
        client.post(
            "/api/v1/deals", json={"customer_id": 1, "title": "seed", "currency": "EUR"}, headers=headers
        )
        yield client, headers


async def _admin_token(container: Any) -> str:
    user = await container.auth.create_user(
        Actor.system(), UserIn(username="fuzzer", role=Role.ADMIN, password="fuzz-password-1")
    )
    return str((await container.auth.create_token(Actor.system(), "fuzz", user_id=user.id)).token)


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error_id", "message", "details"}, body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=st.one_of(objects, json_values))
def test_random_json_bodies_get_a_4xx_with_the_error_body_never_a_500(
    api: tuple[TestClient, dict[str, str]], route: tuple[str, str], body: Any
) -> None:
    client, headers = api
    _check(client.request(route[0], route[1], json=body, headers=headers))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), dry_run=st.booleans())
def test_garbage_csv_uploads_are_reported_never_a_500(
    api: tuple[TestClient, dict[str, str]], data: bytes, dry_run: bool
) -> None:
    client, headers = api
    r = client.post(
        "/api/v1/customers/import",
        files={"file": ("x.csv", data)},
        params={"dry_run": str(dry_run).lower()},
        headers=headers,
    )
    _check(r)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.text(max_size=30), cursor=st.text(max_size=30), limit=st.integers(-5, 500))
def test_search_parameters_never_cause_a_500(
    api: tuple[TestClient, dict[str, str]], q: str, cursor: str, limit: int
) -> None:
    client, headers = api
    _check(
        client.get("/api/v1/customers", params={"q": q, "cursor": cursor, "limit": limit}, headers=headers)
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/99999999999999999999999",
        "/api/v1/interactions/-1",
        "/api/v1/customers?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
        "/api/v1/queues/18446744073709551616",
        "/api/v1/tickets/99999999999999999999999",
        "/api/v1/deals/-1",
        "/api/v1/customers/18446744073709551616/tickets",
        "/api/v1/customers/1/deals?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
    ],
)
def test_out_of_range_ids_are_4xx(api: tuple[TestClient, dict[str, str]], path: str) -> None:
    client, headers = api
    _check(client.get(path, headers=headers))
