"""The CSV format of exports and imports: formulas neutralised in every export, lists with labels."""

from __future__ import annotations

import csv
import io

import pytest

from frontoffice.services.crm_csv import join_items, split_items
from frontoffice.services.csv_safe import csv_lines, safe_cell, unquote_cell
from frontoffice.services.stats import report_csv


@pytest.mark.parametrize(
    "text",
    [
        "=cmd|' /C calc'!A0",
        "+1+2",
        "-x",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "'=already quoted",
        "'plain",
        "",
        "Иван",
    ],
)
def test_a_neutralised_cell_reads_back_as_it_was(text: str) -> None:
    cell = safe_cell(text)
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert unquote_cell(cell) == text


def test_numbers_and_flags_stay_values() -> None:
    assert [safe_cell(v) for v in (-12.5, "+74951234567", 3, True, False, None)] == [
        "-12.5",
        "+74951234567",
        "3",
        "true",
        "false",
        "",
    ]


def test_a_hand_written_quote_is_kept() -> None:
    assert unquote_cell("'hello") == "'hello"


def test_the_report_csv_neutralises_queue_names() -> None:
    rows = [
        {"key": 1, "interval_start": "2026-12-07T00:00:00+00:00", "interval_end": "2026-12-08T00:00:00+00:00"}
    ]
    text = report_csv(rows, group_by="queue", names={1: '=HYPERLINK("http://x")'})
    (row,) = csv.DictReader(io.StringIO(text))
    assert row["queue_name"] == '\'=HYPERLINK("http://x")'


def test_csv_lines_writes_every_cell_through_the_safe_writer() -> None:
    assert csv_lines([["=1", "a,b"]]) == '\'=1,"a,b"\r\n'


@pytest.mark.parametrize(
    "items",
    [
        [("+74951234567", "work; main"), ("+79161112233", "mobile [personal]")],
        [("a@example.ru", ""), ("b@example.ru", "back\\slash")],
        [("telegram:1", "]")],
    ],
)
def test_identities_with_labels_round_trip_through_a_cell(items: list[tuple[str, str]]) -> None:
    assert split_items(join_items(items), ",") == items


def test_a_cell_of_a_semicolon_file_splits_on_commas() -> None:
    assert split_items("+74951234567 [work, main], +79161112233", ";") == [
        ("+74951234567", "work, main"),
        ("+79161112233", ""),
    ]
