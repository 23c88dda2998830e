"""The API answers a client's mistake with a 4xx that says what is wrong, never a 500 or a wrong
status (issue 19, holes 6 and 9): taken names and unknown projects, database errors without an
SQLSTATE, chunked bodies over the limit, NaN and Infinity, NUL characters, over-long email local
parts, and what the OpenAPI document says about errors, 405 and CSV answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from .test_acd_api import API


async def _queue(client: httpx.AsyncClient, admin: dict[str, str], name: str) -> int:
    r = await client.post(f"{API}/queues", json={"name": name}, headers=admin)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _entry(address: str, queue_id: int, **extra: object) -> dict[str, object]:
    return {"name": address, "channel": "webform", "address": address, "default_queue_id": queue_id, **extra}


# ------------------------------------------------------------------ hole 6
async def test_changing_a_queue_to_a_taken_name_or_an_unknown_project_is_409_or_404_not_500(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await _queue(client, admin_headers, "first")
    second = await _queue(client, admin_headers, "second")

    r = await client.patch(f"{API}/queues/{second}", json={"name": "first"}, headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "queue-name-taken", r.text
    r = await client.patch(f"{API}/queues/{second}", json={"project_id": 999_999}, headers=admin_headers)
    assert r.status_code == 404, r.text
    assert r.json()["error_id"] == "no-such-project"
    assert r.json()["details"] == {"project_id": 999_999, "field": "project_id"}
    # Its own name again is no conflict; the queue is unchanged by the refusals.
    r = await client.patch(f"{API}/queues/{second}", json={"name": "second"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["project_id"] is None


async def test_entry_points_with_a_taken_address_or_an_unknown_project_are_409_or_404_not_500(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await _queue(client, admin_headers, "support")
    assert (
        await client.post(f"{API}/entry-points", json=_entry("a", queue), headers=admin_headers)
    ).is_success
    r = await client.post(f"{API}/entry-points", json=_entry("b", queue), headers=admin_headers)
    assert r.status_code == 201, r.text
    b = r.json()["id"]

    r = await client.put(f"{API}/entry-points/{b}", json=_entry("a", queue), headers=admin_headers)
    assert r.status_code == 409 and r.json()["error_id"] == "entry-point-taken", r.text
    r = await client.put(
        f"{API}/entry-points/{b}", json=_entry("b", queue, project_id=999_999), headers=admin_headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-project", r.text
    assert r.json()["details"]["field"] == "project_id"
    # Creating one for an unknown project names the project, not a taken entry point.
    r = await client.post(
        f"{API}/entry-points", json=_entry("c", queue, project_id=999_999), headers=admin_headers
    )
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-project", r.text
    assert r.json()["details"]["project_id"] == 999_999


async def test_an_id_beyond_64_bits_is_a_client_error_on_every_database(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    # PostgreSQL's driver refuses the value itself (a database error without any SQLSTATE): the
    # error handler read ``sqlstate`` as a string and crashed with a 500.
    for path in (f"/customers/{2**64}", f"/interactions/{2**63}", f"/tickets/{2**70}"):
        r = await client.get(f"{API}{path}", headers=admin_headers)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert r.json()["error_id"] in (
            "value-out-of-range",
            "no-such-customer",
            "no-such-interaction",
            "no-such-ticket",
        )


# ------------------------------------------------------------------ hole 9
async def test_an_oversized_chunked_body_is_413_like_one_with_a_content_length(
    client: httpx.AsyncClient, admin_headers: dict[str, str], container
) -> None:
    limit = container.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"first_name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    headers = admin_headers | {"Content-Type": "application/json"}
    r = await client.post(f"{API}/customers", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers  # really chunked
    assert r.status_code == 413, r.text
    assert r.json()["error_id"] == "body-too-large" and r.json()["details"] == {"max_bytes": limit}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"first_name": "Ivan", "custom": {"score": NaN}}',
        b'{"first_name": "Ivan", "custom": {"score": Infinity}}',
        b'{"first_name": "Ivan", "custom": {"score": -Infinity}}',
        b'{"first_name": "Ivan", "custom": {"score": 1e999}}',
    ],
)
async def test_nan_and_infinity_are_refused_with_422_naming_the_field(
    client: httpx.AsyncClient, admin_headers: dict[str, str], raw: bytes
) -> None:
    headers = admin_headers | {"Content-Type": "application/json"}
    r = await client.post(f"{API}/customers", content=raw, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error_id"] == "validation-failed"
    (error,) = r.json()["details"]["errors"]
    assert error["type"] == "finite_number" and error["loc"] == ["body", "custom", "score"]
    assert (await client.get(f"{API}/customers", headers=admin_headers)).json()["items"] == []


async def test_a_nul_character_is_refused_with_a_clear_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post(f"{API}/customers", json={"first_name": "Iv\u0000an"}, headers=admin_headers)
    assert r.status_code == 422, r.text
    (error,) = r.json()["details"]["errors"]
    assert error == {
        "loc": ["body", "first_name"],
        "message": "Text must not contain the NUL character (U+0000)",
        "type": "nul_character",
    }
    r = await client.get(f"{API}/customers", params={"q": "Iv\u0000an"}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["details"]["errors"][0]["type"] == "nul_character"
    # A backslash followed by "u0000" is text, not a NUL.
    r = await client.post(f"{API}/customers", json={"first_name": "C:\\u0000"}, headers=admin_headers)
    assert r.status_code == 201, r.text


async def test_an_email_local_part_over_64_characters_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    long_local = "a" * 65 + "@example.com"
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Ivan", "identities": [{"kind": "email", "value": long_local}]},
        headers=admin_headers,
    )
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-email", r.text
    just_fits = "a" * 64 + "@example.com"
    r = await client.post(
        f"{API}/customers",
        json={"first_name": "Ivan", "identities": [{"kind": "email", "value": just_fits}]},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text


async def test_a_method_a_path_does_not_support_is_405_with_every_method_it_does_in_allow(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    queue = await _queue(client, admin_headers, "support")
    r = await client.delete(f"{API}/queues/{queue}", headers=admin_headers)
    assert r.status_code == 405 and r.json()["error_id"] == "method-not-allowed"
    assert set(r.headers["allow"].split(", ")) == {"GET", "PATCH"}


async def test_the_openapi_document_names_the_error_answers_and_the_csv_ones(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error_id", "message", "details"}
    ref = {"$ref": "#/components/schemas/Error"}
    patch_queue = schema["paths"]["/api/v1/queues/{queue_id}"]["patch"]["responses"]
    for code in ("400", "401", "403", "404", "409", "413", "422"):
        assert patch_queue[code]["content"]["application/json"]["schema"] == ref, code
    assert "Allow" in patch_queue["405"]["headers"]
    login = schema["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]
    assert "413" not in schema["paths"]["/api/v1/queues"]["get"]["responses"]
    for path in ("/api/v1/customers/export", "/api/v1/stats/report", "/api/v1/voice/call-records.csv"):
        assert "text/csv" in schema["paths"][path]["get"]["responses"]["200"]["content"], path


async def test_a_database_error_without_an_sqlstate_is_answered_not_a_crash_of_the_error_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """asyncpg's own errors (a broken connection, an operation in progress) reach the handler through
    SQLAlchemy's adapter with ``sqlstate = None``; the handler read it as a string and crashed (an
    ``AttributeError`` logged as an unhandled error, the database error itself lost from the log)."""
    from fastapi import FastAPI
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.exc import InterfaceError

    from frontoffice.web.errors import install_error_handlers

    def adapted(cause: Exception) -> InterfaceError:
        try:
            raise AsyncAdapt_asyncpg_dbapi.InterfaceError(str(cause), cause) from cause
        except AsyncAdapt_asyncpg_dbapi.InterfaceError as driver_error:
            return InterfaceError("SELECT 1", {}, driver_error)

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/broken")
    async def broken() -> None:
        raise adapted(asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"))

    assert getattr(adapted(asyncpg.exceptions.InterfaceError("x")).orig, "sqlstate", "missing") is None
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/broken")
    assert r.status_code == 500
    assert r.json()["error_id"] == "internal-error"
    logged = [(rec.getMessage(), rec.exc_info[0] if rec.exc_info else None) for rec in caplog.records]
    assert ("database error", InterfaceError) in logged, logged
    assert not [m for m, kind in logged if kind is AttributeError], logged
