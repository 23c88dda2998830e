"""Planning over HTTP: staffing, lines, day plans, costs, the bounded simulation and the Planning page."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role

from ..conftest import TEST_PASSWORD, make_user, token_headers

API = "/api/v1/planning"


async def test_staff_gives_the_erlang_c_minimum_and_the_curve_around_it(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/staff",
        json={"calls_per_hour": 6000, "aht_s": 180, "service_level": 0.8, "answer_time_s": 20},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == "erlang_c" and data["agents"] == 309 and data["traffic"] == pytest.approx(300)
    levels = [p["agents"] for p in data["curve"]]
    assert 309 in levels and min(levels) < 309 < max(levels)
    assert all(n > 300 for n in levels)  # Erlang C has no answer at or below the traffic
    sl = [p["service_level"] for p in data["curve"]]
    assert sl == sorted(sl)


async def test_staff_with_patience_uses_erlang_a_and_shrinkage(client, admin_headers) -> None:
    body = {"traffic_erlangs": 300, "aht_s": 180, "patience_s": 120, "shrinkage": 0.3}
    data = (await client.post(f"{API}/staff", json=body, headers=admin_headers)).json()
    assert data["model"] == "erlang_a" and data["agents"] == 276 and data["scheduled"] == 395


async def test_lines_plain_with_retries_and_behind_agents(client, admin_headers) -> None:
    r = await client.post(
        f"{API}/lines", json={"traffic_erlangs": 5.5, "blocking": 0.03, "retry": 0.5}, headers=admin_headers
    )
    data = r.json()
    assert r.status_code == 200 and data["lines"] == 10 and data["retry_lines"] == 11
    assert data["trunk"] is None
    blocking = [p["blocking"] for p in data["curve"]]
    assert blocking == sorted(blocking, reverse=True)
    body = {"calls_per_hour": 6000, "aht_s": 180, "agents": 309, "ivr_s": 20}
    data = (await client.post(f"{API}/lines", json=body, headers=admin_headers)).json()
    assert data["trunk"]["line_hold_s"] > 180 and data["lines"] > 309


async def test_day_plan_returns_the_staffing_curve(client, admin_headers) -> None:
    start = datetime(2026, 3, 2, 8, 0)
    calls = [100, 400, 900, 1500, 1200, 600]
    intervals = [
        {"start": (start + timedelta(minutes=30 * i)).isoformat(), "calls": c} for i, c in enumerate(calls)
    ]
    body = {"intervals": intervals, "aht_s": 180, "shrinkage": 0.3, "max_occupancy": 0.85}
    r = await client.post(f"{API}/day", json=body, headers=admin_headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["interval_s"] == 1800 and len(data["intervals"]) == 6
    assert data["peak_agents"] == max(i["agents"] for i in data["intervals"])
    assert all(i["scheduled"] >= i["agents"] for i in data["intervals"])
    duplicate = {**body, "intervals": intervals + intervals[:1]}
    r = await client.post(f"{API}/day", json=duplicate, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_id"] == "duplicate-interval"


async def test_cost_compares_with_the_outsourcer(client, admin_headers) -> None:
    data = (await client.post(f"{API}/cost", json={"talk_minutes": 200_000}, headers=admin_headers)).json()
    assert data["break_even"]["talk_minutes"] > 0
    assert data["at_volume"]["cheaper"] in {"own", "outsourcer", "equal"}
    cheap = (
        await client.post(f"{API}/cost", json={"outsourcer_price_per_minute": 0.01}, headers=admin_headers)
    ).json()
    assert cheap["break_even"] is None and cheap["at_volume"] is None


async def test_simulate_a_single_queue_next_to_the_formula(client, admin_headers) -> None:
    body = {"calls_per_hour": 480, "aht_s": 60, "agents": 10, "hours": 1, "replications": 4, "seed": 3}
    r = await client.post(f"{API}/simulate", json=body, headers=admin_headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["replications"] == 4 and data["agents"] == 10
    assert data["formula"]["model"] == "erlang_c"
    sl = data["overall"]["service_level"]
    assert 0 <= sl["low"] <= sl["mean"] <= sl["high"] <= 1.5
    for run in data["conservation"]:
        assert run["arrivals"] == run["answered"] + run["abandoned"] + run["refused"] + run["waiting_at_end"]


async def test_simulate_a_multi_skill_scenario(client, admin_headers) -> None:
    scenario = {
        "hours": 1,
        "queues": [{"id": "a", "skills": {"x": 1}, "max_wait_s": 20, "overflow": "b"}, {"id": "b"}],
        "agents": [
            {"name": "x", "count": 2, "skills": {"x": 5}, "queues": {"a": 1}},
            {"name": "y", "count": 2, "queues": {"b": 1}},
        ],
        "arrivals": [{"queue": "a", "rate_per_min": 1, "aht_s": 120, "patience_s": 90}],
    }
    r = await client.post(
        f"{API}/simulate", json={"scenario": scenario, "replications": 3}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["formula"] is None and data["overflow_moves"][0]["from"] == "a"


@pytest.mark.parametrize(
    ("body", "status", "error_id"),
    [
        (
            {"calls_per_hour": 360_000, "aht_s": 180, "agents": 1000, "hours": 24, "replications": 50},
            400,
            "simulation-too-large",
        ),
        ({"scenario": {"queues": [{"id": "a"}], "agents": [], "arrivals": []}}, 400, "invalid-scenario"),
        ({"scenario": {"colour": "red"}}, 400, "invalid-scenario"),
        ({"calls_per_hour": 100}, 422, "validation-failed"),
        ({"calls_per_hour": 100, "agents": 5, "hours": 48}, 422, "validation-failed"),
        ({"calls_per_hour": 100, "agents": 5, "surprise": 1}, 422, "validation-failed"),
    ],
)
async def test_simulate_refuses_bad_or_oversized_requests(
    client, admin_headers, body, status, error_id
) -> None:
    r = await client.post(f"{API}/simulate", json=body, headers=admin_headers)
    assert r.status_code == status, r.text
    assert r.json()["error_id"] == error_id


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("staff", {"aht_s": 180}),  # neither calls nor traffic
        ("staff", {"calls_per_hour": 100, "traffic_erlangs": 5}),  # both
        ("staff", {"calls_per_hour": -1}),
        ("staff", {"calls_per_hour": 100, "service_level": 1.5}),
        ("staff", {"calls_per_hour": 100, "unknown": True}),
        ("lines", {"traffic_erlangs": 5, "blocking": 0}),
        ("day", {"intervals": []}),
        ("cost", {"shrinkage": 1}),
    ],
)
async def test_bad_input_is_a_clear_4xx(client, admin_headers, path, body) -> None:
    r = await client.post(f"{API}/{path}", json=body, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error_id"] == "validation-failed" and r.json()["details"]["errors"]


async def test_targets_the_model_cannot_meet_are_400(client, admin_headers) -> None:
    body = {"traffic_erlangs": 10, "service_level": None}
    r = await client.post(f"{API}/staff", json=body, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_id"] == "invalid-planning-input"


@pytest.mark.parametrize("path", ["staff", "lines", "day", "cost", "simulate"])
async def test_agents_may_not_plan(client, agent_headers, path) -> None:
    r = await client.post(f"{API}/{path}", json={}, headers=agent_headers)
    assert r.status_code == 403


async def test_supervisors_may_plan(client, container: Container) -> None:
    headers = await token_headers(container, "sup", Role.SUPERVISOR)
    r = await client.post(f"{API}/staff", json={"traffic_erlangs": 10}, headers=headers)
    assert r.status_code == 200 and r.json()["agents"] == 14  # CRAN ErlangC: 13 give 79.6 %


async def _sign_in(client: httpx.AsyncClient, username: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 200
    return str(r.json()["csrf_token"])


async def test_planning_page_for_supervisors_with_csrf_for_its_calls(client, container: Container) -> None:
    assert (await client.get("/planning")).headers["location"] == "/login"
    await make_user(container, "olga", Role.SUPERVISOR)
    csrf = await _sign_in(client, "olga")
    page = await client.get("/planning")
    assert page.status_code == 200
    html = page.text
    assert f'content="{csrf}"' in html
    assert "/static/planning.js" in html and 'id="staff-chart"' in html and 'id="day-chart"' in html
    assert (await client.get("/static/planning.js")).status_code == 200
    # The page's script calls the API with the session and its CSRF token.
    r = await client.post(f"{API}/staff", json={"traffic_erlangs": 10}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200


async def test_planning_page_sends_agents_to_sign_in(client, container: Container) -> None:
    await make_user(container, "ivan", Role.AGENT)
    await _sign_in(client, "ivan")
    r = await client.get("/planning")
    assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_planning_page_speaks_russian(client, container: Container) -> None:
    await make_user(container, "sveta", Role.ADMIN)
    await _sign_in(client, "sveta")
    client.cookies.set("fo_lang", "ru")
    r = await client.get("/planning")
    assert r.status_code == 200 and 'lang="ru"' in r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("staff", {"traffic_erlangs": 0}),
        ("staff", {"traffic_erlangs": 0, "patience_s": 60}),
        ("staff", {"traffic_erlangs": 0.01, "patience_s": 60, "abandon_rate": 0.05}),
        ("lines", {"traffic_erlangs": 0}),
        ("lines", {"traffic_erlangs": 0, "agents": 3}),
        ("lines", {"traffic_erlangs": 20, "agents": 10}),  # Erlang C has no wait with 10 agents
        ("day", {"intervals": [{"start": "2026-03-02T08:00:00", "calls": 0}], "interval_s": 900}),
        ("cost", {"talk_minutes": 0}),
    ],
)
async def test_edge_inputs_answer_without_a_server_error(client, admin_headers, path, body) -> None:
    r = await client.post(f"{API}/{path}", json=body, headers=admin_headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error_id"] == "invalid-planning-input" and r.json()["message"]


async def test_a_simulation_that_never_ends_is_refused(client, admin_headers) -> None:
    scenario = {
        "hours": 2,
        "queues": [
            {"id": "a", "max_wait_s": 1, "overflow": "b"},
            {"id": "b", "max_wait_s": 1, "overflow": "a"},
        ],
        "agents": [{"name": "nobody", "count": 0, "queues": {"a": 1}}],
        "arrivals": [{"queue": "a", "rate_per_min": 5}],
    }
    r = await client.post(
        f"{API}/simulate", json={"scenario": scenario, "replications": 2}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "simulation-too-large"


async def test_day_plan_names_the_interval_off_the_grid_and_lists_missing_ones(client, admin_headers) -> None:
    start = datetime(2026, 3, 2, 8, 0)
    minutes = [0, 15, 35]
    intervals = [{"start": (start + timedelta(minutes=m)).isoformat(), "calls": 50} for m in minutes]
    r = await client.post(f"{API}/day", json={"intervals": intervals}, headers=admin_headers)
    assert r.status_code == 400, r.text
    assert r.json()["error_id"] == "invalid-interval" and r.json()["details"]["interval"] == 2
    intervals[2]["start"] = (start + timedelta(minutes=60)).isoformat()
    r = await client.post(f"{API}/day", json={"intervals": intervals}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["missing"] == [(start + timedelta(minutes=m)).isoformat() for m in (30, 45)]
    one = {"intervals": intervals[:1]}
    r = await client.post(f"{API}/day", json=one, headers=admin_headers)
    assert r.status_code == 400 and r.json()["details"]["interval"] == 0


async def test_simulate_warns_when_the_queue_never_empties(client, admin_headers) -> None:
    body = {"calls_per_hour": 600, "aht_s": 60, "agents": 10, "hours": 1, "replications": 2}
    data = (await client.post(f"{API}/simulate", json=body, headers=admin_headers)).json()
    assert data["warnings"] == ["queue-never-empties"]
    assert data["waiting_at_horizon"]["mean"] >= 0 and "waiting_at_end" in data
    body["agents"] = 12
    data = (await client.post(f"{API}/simulate", json=body, headers=admin_headers)).json()
    assert data["warnings"] == []


async def test_cost_sizes_a_small_center_with_erlang_c_and_names_the_currency(client, admin_headers) -> None:
    body = {"talk_minutes": 20_000, "currency": "RUB"}
    data = (await client.post(f"{API}/cost", json=body, headers=admin_headers)).json()
    assert data["currency"] == "RUB"
    assert data["at_volume"]["positions"] == 4 and data["at_volume"]["operators"] == 9
