"""A bounded schemathesis run against the OpenAPI document (issue 19, hole 10): requests generated
from ``/api/openapi.json`` for every API operation, sent as an administrator to the app served on
loopback, answer no 5xx and only status codes the document names (with their content types).

Bounded and deterministic: a few examples per operation (:data:`EXAMPLES_PER_OPERATION`), Hypothesis
derandomized (the same requests every run), no shrinking; a failing operation is reported with the
request that failed (as a curl command), and every failing operation is listed at once.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from frontoffice.bootstrap import build_container
from frontoffice.config import load_settings
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.schemas import UserIn
from frontoffice.web.app import create_app

from ..conftest import TEST_PASSWORD, free_port, serve_in_task

# Examples per operation: enough to send each operation valid and edge-case input, few enough that
# the run (about 200 operations) stays well under two minutes on a loaded CI machine.
EXAMPLES_PER_OPERATION = 4
# A bound on one request (a hung request fails the run instead of stalling it), not a speed claim.
REQUEST_TIMEOUT_S = 30
# Operations left out, and why: signing out and changing users or tokens would revoke the
# administrator the run acts as (ids 1, 2... are among the first generated), making the rest 401.
SKIPPED = (
    "/api/v1/auth/logout",
    "/api/v1/users",
    "/api/v1/tokens",
    "/api/v1/me/password",
)


class LoopbackServer:
    """The app on a loopback port, with its own event loop in a thread (schemathesis calls it with
    blocking ``requests``), on a fresh SQLite database, with an administrator's API token."""

    def __init__(self, database: Path, data_dir: Path) -> None:
        self.settings = load_settings(
            data_dir=data_dir,
            database_url=f"sqlite+aiosqlite:///{database}",
            secret_key="test-secret-key-0123456789",
        )
        self.port = free_port()
        self.token = ""
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="openapi-contract-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        if not self.ready.wait(60) or self.failed is not None:
            raise AssertionError(f"the server did not start: {self.failed!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(60)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test by __enter__
            self.failed = exc
            self.ready.set()

    async def _serve(self) -> None:
        container = build_container(self.settings)
        await container.start()
        try:
            admin = await container.auth.create_user(
                Actor.system(), UserIn(username="root", role=Role.ADMIN, password=TEST_PASSWORD)
            )
            self.token = (
                await container.auth.create_token(Actor.system(), "contract", user_id=admin.id)
            ).token
            self._server = uvicorn.Server(
                uvicorn.Config(
                    create_app(container), host="127.0.0.1", port=self.port, log_config=None, lifespan="off"
                )
            )
            serving = await serve_in_task(self._server)
            self.ready.set()
            await serving
        finally:
            await container.close()


def _seed(server: LoopbackServer, session: requests.Session) -> None:
    """A few objects, so that generated ids sometimes name something real (ids start at 1)."""
    api = f"{server.url}/api/v1"
    for path, body in (
        ("/projects", {"code": "alpha", "name": "Alpha"}),
        ("/queues", {"name": "support", "project_id": 1}),
        (
            "/entry-points",
            {"name": "site", "channel": "webform", "address": "site", "default_queue_id": 1},
        ),
        ("/customers", {"first_name": "Ivan", "identities": [{"kind": "phone", "value": "+74951234001"}]}),
        ("/interactions", {"entry_point": "site", "subject": "Question", "customer": {"first_name": "Olga"}}),
    ):
        r = session.post(f"{api}{path}", json=body, timeout=REQUEST_TIMEOUT_S)
        assert r.status_code in (200, 201), (path, r.text)


def _run(operation: Any, base_url: str, session: requests.Session) -> list[str]:
    """Send :data:`EXAMPLES_PER_OPERATION` generated requests of ``operation``; the first failure."""
    found: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        if found:
            return  # one failure per operation is enough to report
        try:
            response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
            case.validate_response(
                response, checks=[not_a_server_error, status_code_conformance, content_type_conformance]
            )
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups several failures
            found.append(_failure(operation, case, exc))

    call()
    return found


def _failure(operation: Any, case: Any, exc: BaseException) -> str:
    return f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}\n  {case.as_curl_command()[:600]}"


def test_generated_requests_get_no_server_error_and_only_documented_statuses(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = tmp_path / "frontoffice.db"
    shutil.copy(sqlite_template, database)
    with LoopbackServer(database, tmp_path) as server, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {server.token}"
        _seed(server, session)
        document = session.get(f"{server.url}/api/openapi.json", timeout=REQUEST_TIMEOUT_S).json()
        schema = schemathesis.openapi.from_dict(document)
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith("/api/v1/") or operation.path.startswith(SKIPPED):
                continue
            operations += 1
            failures.extend(_run(operation, server.url, session))
        assert operations > 100  # the run covered the API, not an empty document
        assert not failures, f"{len(failures)} of {operations} operations failed:\n\n" + "\n\n".join(failures)
