"""The ``plan`` command group, driven through click's CliRunner."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from frontoffice.wfm.cli import parse_rate, parse_service_level, parse_share, plan


def run(*args: str) -> str:
    result = CliRunner().invoke(plan, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_rates_shares_and_service_levels_parse() -> None:
    assert parse_rate("100/min") == pytest.approx(100 / 60)
    assert parse_rate("6000/h") == pytest.approx(100 / 60)
    assert parse_rate("100/30min") == pytest.approx(100 / 1800)
    assert parse_rate("2.5/s") == 2.5
    assert parse_rate("1200 / hour") == pytest.approx(1 / 3)
    assert parse_share("30%") == pytest.approx(0.3)
    assert parse_share("0.3") == pytest.approx(0.3)
    assert parse_share("85") == pytest.approx(0.85)
    assert parse_service_level("80/20") == (0.8, 20.0)
    assert parse_service_level("90%/15s") == (0.9, 15.0)
    with pytest.raises(ValueError):
        parse_rate("100 calls")
    with pytest.raises(ValueError):
        parse_rate("100/fortnight")


def test_staff_prints_the_minimum_and_its_neighbours() -> None:
    out = run("staff", "--calls", "100/30min", "--aht", "180", "--sl", "80/20")
    assert "10.00 Erl" in out
    assert "│     14 │" in out  # the CRAN case: 14 agents
    assert "88.8%" in out and "79.6%" in out  # 14 meets, 13 does not


def test_staff_with_shrinkage_and_occupancy_cap() -> None:
    out = run("staff", "--calls", "100/30min", "--max-occupancy", "85%", "--shrinkage", "30%")
    assert "schedule 20 for 14" in out


def test_staff_with_patience_compares_erlang_a_and_c() -> None:
    out = run("staff", "--calls", "100/min", "--aht", "180", "--sl", "80/20", "--patience", "120")
    assert "Erlang A" in out and "Erlang C" in out
    assert "276" in out and "309" in out


def test_staff_abandonment_needs_patience() -> None:
    result = CliRunner().invoke(plan, ["staff", "--calls", "100/min", "--abandon", "5%"])
    assert result.exit_code != 0
    assert "patience" in result.output


def test_bad_rate_is_a_usage_error() -> None:
    result = CliRunner().invoke(plan, ["staff", "--calls", "lots"])
    assert result.exit_code == 2
    assert "100/min" in result.output


def test_lines_erlang_b_and_retrials() -> None:
    out = run("lines", "--traffic", "5.5", "--blocking", "3%", "--retry", "50%")
    assert "│    10 │" in out and "│    11 │" in out


def test_lines_behind_agents() -> None:
    out = run("lines", "--calls", "100/min", "--aht", "180", "--agents", "310", "--ivr", "30")
    assert "lines per agent" in out
    assert "M/M/N/K" in out


def write_forecast(path: Path, calls: list[int], minutes: int = 15) -> None:
    start = datetime(2026, 3, 2, 8, 0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["interval_start", "calls"])
        for i, c in enumerate(calls):
            writer.writerow([(start + timedelta(minutes=minutes * i)).isoformat(), c])


def test_day_plan_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "forecast.csv"
    write_forecast(path, [120, 300, 450, 0])
    out = run("day", str(path), "--aht", "180", "--sl", "80/20", "--shrinkage", "30%", "--ivr", "15")
    assert "15-minute intervals" in out
    assert "2026-03-02 08:45" in out
    assert "lines for the day" in out and "Totals" in out


def test_day_plan_rejects_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("interval_start,calls\n2026-03-02T08:00,ten\n")
    result = CliRunner().invoke(plan, ["day", str(path)])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_forecast_writes_a_csv_that_day_can_read(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    start = datetime(2026, 1, 5)
    with history.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for day in range(35):
            for slot in range(24):
                calls = 50 + 10 * (slot % 5) if 8 <= slot < 20 and day % 7 < 5 else 0
                writer.writerow([(start + timedelta(days=day, hours=slot)).isoformat(), calls])
    out_csv = tmp_path / "forecast.csv"
    out = run("forecast", str(history), "--days", "2", "--holidays", "2026-02-10", "--output", str(out_csv))
    assert "WAPE" in out and "2026-02-09" in out
    assert "holiday" in out
    run("day", str(out_csv), "--aht", "200")


def test_cost_prints_the_break_even() -> None:
    out = run("cost", "--talk-minutes", "100000")
    assert "Break-even" in out and "305,667" in out
    out = run("cost", "--outsourcer-price-per-minute", "0.15")
    assert "cheaper at every volume" in out
    out = run("cost", "--calls", "100/min", "--talk", "150", "--monthly-wage", "600")
    assert "Monthly cost" in out


def fails(*args: str) -> str:
    result = CliRunner().invoke(plan, list(args))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("cost", "--talk-minutes", "-5"), "--talk-minutes"),
        (("cost", "--talk-minutes", "nan"), "--talk-minutes"),
        (("cost", "--monthly-wage", "inf"), "--monthly-wage"),
        (("cost", "--supervisor-ratio", "0"), "--supervisor-ratio"),
        (("staff", "--calls", "10/min", "--asa", "nan"), "--asa"),
        (("lines", "--traffic", "-1"), "--traffic"),
        (("lines", "--traffic", "5", "--agents", "10", "--ivr", "-3"), "--ivr"),
    ],
)
def test_every_bad_number_is_a_one_line_error_naming_the_option(args: tuple[str, ...], option: str) -> None:
    out = fails(*args)
    assert "Traceback" not in out
    assert option in out


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (("cost", "--talk-minutes", "20000"), "--shrinkage", "30%"),
        (("cost", "--talk-minutes", "20000"), "--max-occupancy", "85%"),
        (("cost", "--talk-minutes", "20000"), "--talk-share", "85%"),
        (("cost", "--talk-minutes", "20000"), "--payroll-tax-rate", "30.2%"),
        (("staff", "--calls", "10/min"), "--shrinkage", "30%"),
        (("staff", "--calls", "10/min"), "--max-occupancy", "85%"),
    ],
)
def test_percentages_are_accepted_by_every_command(command: tuple[str, ...], option: str, value: str) -> None:
    run(*command, option, value)


def test_a_share_out_of_range_names_its_option() -> None:
    assert "--shrinkage" in fails("cost", "--shrinkage", "100%")
    assert "--max-occupancy" in fails("staff", "--calls", "1/min", "--max-occupancy", "0%")


def test_a_negative_aht_is_reported_as_the_aht() -> None:
    for command in (("staff", "--calls", "100/min"), ("lines", "--calls", "100/min")):
        out = fails(*command, "--aht", "-180")
        assert "--aht" in out
        assert "traffic" not in out


def test_calls_and_traffic_together_are_refused() -> None:
    out = fails("staff", "--calls", "100/min", "--traffic", "5")
    assert "--calls" in out and "--traffic" in out
    assert "--calls" in fails("lines", "--calls", "100/min", "--traffic", "5")


def test_a_rate_may_be_written_with_an_exponent() -> None:
    assert parse_rate("1e6/min") == pytest.approx(1e6 / 60)
    assert parse_rate("1.5E3/h") == pytest.approx(1500 / 3600)
    run("lines", "--calls", "1e3/min", "--aht", "180")


def test_an_ambiguous_share_is_refused_rather_than_read_as_a_percentage() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        parse_service_level("1.5/20")
    with pytest.raises(ValueError, match="ambiguous"):
        parse_share("1.5")
    assert parse_service_level("1.5%/20") == (pytest.approx(0.015), 20.0)
    assert "--sl" in fails("staff", "--calls", "10/min", "--sl", "1.5/20")


def test_help_shows_the_default_service_target() -> None:
    out = run("staff", "--help")
    assert "80/20" in out


def test_lines_for_no_traffic_report_no_blocking() -> None:
    out = run("lines", "--traffic", "0", "--agents", "5")
    assert "100.0%" not in out
    assert "│  0.0% │" in out


def write_rows(path: Path, rows: list[tuple[str, int]]) -> None:
    path.write_text("interval_start,calls\n" + "".join(f"{t},{c}\n" for t, c in rows))


def test_day_refuses_a_duplicate_start_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    write_rows(path, [("2026-03-02T08:00", 100), ("2026-03-02T08:15", 120), ("2026-03-02T08:00", 90)])
    result = CliRunner().invoke(plan, ["day", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4:" in result.output and "twice" in result.output


def test_day_refuses_uneven_intervals_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    write_rows(path, [("2026-03-02T08:00", 100), ("2026-03-02T08:15", 120), ("2026-03-02T08:35", 90)])
    result = CliRunner().invoke(plan, ["day", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4:" in result.output


def test_day_warns_about_missing_intervals(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    write_rows(path, [("2026-03-02T08:00", 100), ("2026-03-02T08:15", 120), ("2026-03-02T09:00", 90)])
    out = run("day", str(path))
    assert "warning" in out.lower()
    assert "08:30" in out and "08:45" in out and f"{path}:4" in out


def test_day_with_one_row_asks_for_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    write_rows(path, [("2026-03-02T08:00", 100)])
    result = CliRunner().invoke(plan, ["day", str(path)])
    assert result.exit_code != 0 and "--interval" in result.output
    assert "30-minute intervals" in run("day", str(path), "--interval", "30")


def test_forecast_asks_which_group_of_a_report_to_use(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        "key,interval_start,interval_end,offered,answered\n"
        "1,2026-03-02T06:00:00+00:00,2026-03-02T06:15:00+00:00,4,4\n"
        "2,2026-03-02T06:00:00+00:00,2026-03-02T06:15:00+00:00,2,2\n"
    )
    result = CliRunner().invoke(plan, ["forecast", str(path)])
    assert result.exit_code == 1 and "--key" in result.output
    result = CliRunner().invoke(plan, ["forecast", str(path), "--key", "3"])
    assert result.exit_code == 1 and "no group '3'" in result.output


def test_cost_names_the_currency_and_explains_its_options() -> None:
    out = run("cost", "--talk-minutes", "20000", "--currency", "RUB")
    assert "RUB" in out
    assert "│         4 │     40.5% │         9 │" in out  # positions, occupancy, operators
    help_text = run("cost", "--help")
    assert "Gross monthly wage of an operator" in help_text
    assert "Outsourcer's price per operator talk minute" in help_text


def test_cost_takes_the_service_target_as_x_over_t() -> None:
    assert "│         4 │     40.5% │         9 │" in run("cost", "--talk-minutes", "20000", "--sl", "80/20")
    assert "│         4 │" not in run("cost", "--talk-minutes", "20000", "--sl", "99/5")


def test_targets_no_model_can_meet_are_refused_naming_the_option() -> None:
    assert "--sl" in fails("staff", "--calls", "10/min", "--sl", "100/20")
    assert "--retry" in fails("lines", "--traffic", "5", "--retry", "100%")


def test_day_refuses_starts_with_and_without_a_time_zone(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    write_rows(path, [("2026-03-02T08:00", 100), ("2026-03-02T08:15+03:00", 120)])
    result = CliRunner().invoke(plan, ["day", str(path)])
    assert result.exit_code == 1 and f"{path}:3:" in result.output and "time zone" in result.output
