"""Erlang B against published tables, exact rational recursions and the M/M/N/N chain."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from frontoffice.wfm import (
    erlang_b,
    extended_erlang_b,
    extended_lines_for_blocking,
    lines_for_blocking,
    traffic_for_blocking,
)
from tests.unit.wfm.chains import stationary


def exact_erlang_b(traffic: float, lines: int) -> float:
    """The recursion in exact rational arithmetic: no rounding at all."""
    a = Fraction(traffic)
    b = Fraction(1)
    for n in range(1, lines + 1):
        b = a * b / (n + a * b)
    return float(b)


@pytest.mark.parametrize(
    ("traffic", "lines", "expected"),
    [
        (2, 5, 0.0366972),
        (5, 10, 0.0183846),
        (10, 10, 0.2145823),
        (10, 14, 0.0568191),
        (10, 15, 0.0364969),
        (123, 132, 0.0312428),
    ],
)
def test_blocking_matches_published_vectors(traffic: float, lines: int, expected: float) -> None:
    assert erlang_b(traffic, lines) == pytest.approx(expected, abs=5e-8)


@pytest.mark.parametrize(
    ("lines", "carried"),
    [(10, 4.461), (15, 8.108), (20, 12.031), (30, 20.337), (50, 37.901), (100, 84.064)],
)
def test_traffic_at_one_percent_matches_erlang_tables(lines: int, carried: float) -> None:
    assert traffic_for_blocking(lines, 0.01) == pytest.approx(carried, abs=5e-4)
    # And the inverse is consistent: the tabled traffic needs exactly these lines.
    assert lines_for_blocking(traffic_for_blocking(lines, 0.01), 0.01) == lines


def test_extended_erlang_b_with_retrials_needs_eleven_lines_in_the_erlang_com_example() -> None:
    assert lines_for_blocking(5.5, 0.03) == 10
    assert extended_lines_for_blocking(5.5, 0.03, 0.5) == 11
    assert extended_erlang_b(5.5, 10, 0.5) > 0.03 >= extended_erlang_b(5.5, 11, 0.5)


def test_extended_erlang_b_without_retrials_is_erlang_b() -> None:
    assert extended_erlang_b(7.3, 9, 0.0) == pytest.approx(erlang_b(7.3, 9), rel=1e-13)


@pytest.mark.parametrize(
    ("traffic", "lines"),
    [
        (0.37, 3),
        (4.2, 7),
        (47.5, 55),
        (300.0, 301),
        (300.0, 280),
        (612.25, 650),
        (1234.5, 1300),
        (2000.0, 1900),
    ],
)
def test_float_result_agrees_with_exact_rational_recursion(traffic: float, lines: int) -> None:
    # Large groups start the recursion part-way (see erlang_b._recursion_start); the result must
    # still agree with the exact value to a few units in the last place.
    assert erlang_b(traffic, lines) == pytest.approx(exact_erlang_b(traffic, lines), rel=5e-15)


@pytest.mark.parametrize(("traffic", "lines"), [(2.0, 5), (7.5, 9), (12.0, 10)])
def test_blocking_is_the_full_state_probability_of_the_loss_chain(traffic: float, lines: int) -> None:
    pi = stationary(lambda i: traffic, lambda i: float(i), lines + 1)
    assert erlang_b(traffic, lines) == pytest.approx(pi[lines], rel=1e-12)


def test_lines_for_blocking_is_minimal() -> None:
    for traffic in (0.05, 1.0, 9.99, 10.0, 77.7, 300.0, 8333.0):
        for target in (0.001, 0.01, 0.05, 0.2):
            n = lines_for_blocking(traffic, target)
            assert erlang_b(traffic, n) <= target
            assert n == 0 or erlang_b(traffic, n - 1) > target


def test_edges() -> None:
    assert erlang_b(0.0, 0) == 1.0
    assert erlang_b(0.0, 3) == 0.0
    assert erlang_b(5.0, 0) == 1.0
    assert lines_for_blocking(0.0, 0.01) == 0
    assert traffic_for_blocking(0, 0.01) == 0.0
    with pytest.raises(ValueError):
        erlang_b(-1.0, 3)
    with pytest.raises(ValueError):
        erlang_b(math.nan, 3)
    with pytest.raises(ValueError):
        lines_for_blocking(3.0, 0.0)
    with pytest.raises(ValueError):
        extended_erlang_b(3.0, 3, 1.0)


@pytest.mark.parametrize("traffic", [0.01, 0.5, 3.0, 99.9, 1e4, 5e5, 1e6])
def test_no_overflow_or_nan_across_the_range(traffic: float) -> None:
    for lines in (
        1,
        int(traffic) // 2,
        int(traffic),
        int(traffic) + 1,
        int(traffic * 1.1) + 5,
        int(traffic * 3) + 50,
    ):
        b = erlang_b(traffic, lines)
        assert 0.0 <= b <= 1.0
        assert not math.isnan(b)
