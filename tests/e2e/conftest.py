"""End-to-end fixtures: a real ``frontoffice serve`` on loopback and Debian's headless Chromium.

The demo data is initialised once per run (``frontoffice init`` prints the demo passwords once; they are
parsed from its output) and the data directory is copied for every test, so each test gets a fresh
server. Without Chromium or Playwright the tests are skipped locally and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import IN_CI, free_port, require_tool

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DOCS_IMG = ROOT / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous upper bounds for waiting on a UI element or event; tests never assert on durations.
WAIT_MS = 30_000


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    env.update(
        FRONTOFFICE_DATA_DIR=str(data_dir),
        FRONTOFFICE_LOG_FORMAT="console",
        FRONTOFFICE_LOG_LEVEL="WARNING",
        FRONTOFFICE_TIME_ZONE="Europe/Moscow",
    )
    return env


def _frontoffice(data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "frontoffice", *args],
        env=_env(data_dir) | {"COLUMNS": "200"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@dataclass
class DemoSite:
    data_dir: Path
    passwords: dict[str, str]
    admin_token: str


@dataclass
class Server:
    url: str
    passwords: dict[str, str]
    admin_token: str
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """Stop the server (an outage, as the browser sees it); the fixture's teardown copes with it."""
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=15)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )

    def post_contact(self, subject: str, **customer: Any) -> dict[str, Any]:
        body = {
            "entry_point": "website",
            "subject": subject,
            "body": f"{subject}.\nPlease help.",
            "customer": customer,
        }
        with self.api() as client:
            r = client.post("/interactions", json=body)
            r.raise_for_status()
            interaction: dict[str, Any] = r.json()["interaction"]
            return interaction

    def queue_id(self, name: str) -> int:
        with self.api() as client:
            return next(q["id"] for q in client.get("/queues").json() if q["name"] == name)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = require_tool("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "playwright is not installed (pip install -e '.[dev]')"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> DemoSite:
    data_dir = tmp_path_factory.mktemp("demo-site")
    out = _frontoffice(data_dir, "init")
    passwords = dict(re.findall(r"^\s+(admin|supervisor|agent\d)\s+(\S+)\s*$", out, flags=re.M))
    assert {"admin", "supervisor", "agent1", "agent2"} <= set(passwords), out
    token = re.search(r"(fo_\S+)", _frontoffice(data_dir, "user", "token", "admin", "--name", "e2e"))
    assert token is not None
    return DemoSite(data_dir, passwords, token.group(1))


@pytest.fixture
def server_env() -> dict[str, str]:
    """Extra environment of the server a test starts (a test module overrides it: a relay, SMTP in)."""
    return {}


@pytest.fixture
def server(demo_site: DemoSite, tmp_path: Path, server_env: dict[str, str]) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    shutil.copytree(demo_site.data_dir, data_dir)
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "frontoffice", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(data_dir) | server_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("the server did not start:\n" + (tmp_path / "server.log").read_text())
        time.sleep(0.1)
    try:
        yield Server(url, demo_site.passwords, demo_site.admin_token, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop marked as running on
    # this thread while it is open, which would break the asyncio tests that pytest runs afterwards.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Make isolated browser contexts (one per person), closed after the test. When the test failed,
    every open page is saved first under test-artifacts/e2e/failures/ (what the browser showed)."""
    contexts: list[Any] = []

    def make(locale: str = "en-GB", viewport: tuple[int, int] = (1366, 768)) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": viewport[0], "height": viewport[1]})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        failures = ARTIFACTS / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for n, page in enumerate(page for context in contexts for page in context.pages):
            page.screenshot(path=str(failures / f"{request.node.name[:80]}-{n}.png"), full_page=True)
    for context in contexts:
        context.close()


def sign_in(context: Any, server: Server, username: str, expect_path: str) -> Any:
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", server.passwords[username])
    page.click("button[type=submit]")
    page.wait_for_url(f"**{expect_path}")
    page.wait_for_selector('#conn[data-state="open"]') if expect_path in ("/desk", "/wallboard") else None
    return page


def screenshot(page: Any, name: str, *, for_docs: bool = True) -> Path:
    """Save the screen under test-artifacts/ (git-ignored); with ``E2E_UPDATE_DOCS_IMG=1`` also copy it
    into docs/img/ for the user guide (opt-in, so ordinary runs leave the docs untouched)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if for_docs and os.environ.get("E2E_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / f"{name}.png")
    return path


def wait_for(check: Any, what: str, page: Any) -> Any:
    """Poll ``check`` while the browser keeps its own pace (the page's event loop, not a sleep)."""
    for _ in range(WAIT_MS // 100):
        value = check()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"never happened: {what}")
