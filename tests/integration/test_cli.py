"""The `frontoffice` command as a user runs it: init, serve, config, users."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ..conftest import free_port, wait_until_serving

FRONTOFFICE = [sys.executable, "-m", "frontoffice"]


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FRONTOFFICE + args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FRONTOFFICE_")}
    return base | {"FRONTOFFICE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}


def test_init_prints_a_generated_admin_password_once_and_keeps_data(
    env: dict[str, str], tmp_path: Path
) -> None:
    first = run(["init"], env)
    assert first.returncode == 0, first.stderr
    match = re.search(r"admin\s+(\S+)", first.stdout)
    assert match and len(match.group(1)) >= 12
    assert (tmp_path / "data" / "frontoffice.db").exists()
    second = run(["init"], env)
    assert second.returncode == 0
    assert "nothing reset" in second.stdout and match.group(1) not in second.stdout
    other = run(["init"], env | {"FRONTOFFICE_DATA_DIR": str(tmp_path / "other")})
    assert re.search(r"admin\s+(\S+)", other.stdout).group(1) != match.group(1)  # type: ignore[union-attr]


def test_sqlite_database_is_in_wal_mode(env: dict[str, str], tmp_path: Path) -> None:
    assert run(["init", "--no-demo"], env).returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "frontoffice.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_serve_refuses_an_unmigrated_database(env: dict[str, str]) -> None:
    result = run(["serve", "--port", str(free_port())], env, timeout=60)
    assert result.returncode == 3
    assert "frontoffice db upgrade" in result.stderr


def test_bad_setting_fails_at_start_naming_it(env: dict[str, str]) -> None:
    result = run(["serve"], env | {"FRONTOFFICE_HTTP_PORT": "99999"})
    assert result.returncode == 2
    assert "http_port" in result.stderr and "FRONTOFFICE_HTTP_PORT" in result.stderr


def test_config_show_masks_secrets(env: dict[str, str]) -> None:
    result = run(
        ["config", "show"],
        env
        | {
            "FRONTOFFICE_SECRET_KEY": "top-secret-value",
            "FRONTOFFICE_DATABASE_URL": "postgresql+asyncpg://u:pw123@h/db",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "top-secret-value" not in result.stdout and "pw123" not in result.stdout
    assert "default_region" in result.stdout and "RU" in result.stdout


def test_user_add_and_passwd(env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], env).returncode == 0
    added = run(["user", "add", "olga", "--role", "supervisor"], env)
    assert added.returncode == 0 and "password (shown once)" in added.stdout
    assert run(["user", "add", "olga"], env).returncode == 1
    changed = run(["user", "passwd", "olga", "--password", "a-new-password-1"], env)
    assert changed.returncode == 0
    assert "olga" in run(["user", "list"], env).stdout
    assert run(["user", "passwd", "nobody"], env).returncode == 1


def test_user_projects_shows_and_checks_the_limit(env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], env).returncode == 0
    assert run(["user", "add", "lena", "--role", "supervisor"], env).returncode == 0
    shown = run(["user", "projects", "lena"], env)
    assert shown.returncode == 0 and "lena: all projects" in shown.stdout
    unknown = run(["user", "projects", "lena", "no-such-code"], env)
    assert unknown.returncode == 1 and "No such project" in unknown.stderr
    assert run(["user", "projects", "nobody", "--all"], env).returncode == 1
    assert "all" in run(["user", "list"], env).stdout


def test_user_token_takes_scopes_and_refuses_unknown_ones(env: dict[str, str]) -> None:
    assert run(["db", "upgrade"], env).returncode == 0
    assert run(["user", "add", "shop", "--role", "agent"], env).returncode == 0
    made = run(["user", "token", "shop", "--name", "site", "--scope", "contacts:create"], env)
    assert made.returncode == 0, made.stderr
    assert "token (shown once): fo_" in made.stdout and "scopes: contacts:create" in made.stdout
    full = run(["user", "token", "shop"], env)
    assert full.returncode == 0 and "scopes: admin" in full.stdout
    assert run(["user", "token", "shop", "--scope", "everything"], env).returncode == 2


def test_serve_answers_with_demo_data(env: dict[str, str]) -> None:
    init = run(["init"], env)
    password = re.search(r"admin\s+(\S+)", init.stdout).group(1)  # type: ignore[union-attr]
    port = free_port()
    server = subprocess.Popen(
        [*FRONTOFFICE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(server, port)
        with httpx.Client(base_url=base) as client:
            assert (
                client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": password}
                ).status_code
                == 200
            )
            customers = client.get("/api/v1/customers").json()["items"]
            assert len(customers) >= 10
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in out
    assert '"event": "request"' in err  # structured JSON log lines when not on a terminal


def test_plan_forecast_reads_the_interval_report_csv(env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from frontoffice.domain.metrics import InteractionEventRecord, compute_report
    from frontoffice.services.stats import report_csv, report_rows

    moscow = timezone(timedelta(hours=3))
    monday = datetime(2026, 3, 2, tzinfo=moscow)
    events = []
    contact = 0
    # Two weeks, 09:00–10:00 local: 3 calls in the first quarter-hour on Mondays, 1 on other days;
    # each answered after 5 s and handled for a minute.
    for day in range(14):
        for quarter in range(4):
            calls = 3 if day % 7 == 0 and quarter == 0 else 1
            for k in range(calls):
                contact += 1
                at = monday + timedelta(days=day, hours=9, minutes=15 * quarter + k)
                for offset, kind in (
                    (0, "queued"),
                    (1, "offered"),
                    (5, "connected"),
                    (65, "wrap_up"),
                    (70, "done"),
                ):
                    agent = None if kind == "queued" else 7
                    events.append(
                        InteractionEventRecord(
                            contact,
                            (at + timedelta(seconds=offset)).astimezone(UTC),
                            kind,
                            1,
                            agent,
                            None,
                            "voice",
                        )
                    )
    report = compute_report(
        events, start=monday, end=monday + timedelta(days=14), interval_s=900, group_by="queue"
    )
    history = tmp_path / "report.csv"
    # As /stats/report?format=csv gives it: names next to ids, local times with their offset.
    csv_text = report_csv(report_rows(report), group_by="queue", names={1: "Sales"}, zone=moscow)
    history.write_text(csv_text, encoding="utf-8")
    output = tmp_path / "forecast.csv"
    result = run(
        [
            "plan",
            "forecast",
            str(history),
            "--days",
            "1",
            "--weeks",
            "2",
            "--backtest-weeks",
            "0",
            "--tz",
            "Europe/Moscow",
            "--output",
            str(output),
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    rows = output.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "interval_start,calls"
    forecast = dict(row.split(",") for row in rows[1:])
    # The Monday after the history, in Moscow time: 3 calls at 09:00, then 1 a quarter-hour, none at 08:45.
    assert [forecast[f"2026-03-16T{t}"] for t in ("08:45", "09:00", "09:15", "09:30", "09:45", "10:00")] == [
        "0.00",
        "3.00",
        "1.00",
        "1.00",
        "1.00",
        "0.00",
    ]
