"""The public web forms' pure checks: origins as browsers send them, the per-address rate limit."""

from __future__ import annotations

import pytest

from frontoffice.domain.exceptions import Throttled
from frontoffice.services.web_forms import FormRateLimit, PublicForm, normalize_origin


def test_origins_are_compared_as_browsers_send_them() -> None:
    assert normalize_origin("HTTPS://Shop.Example/") == "https://shop.example"
    assert normalize_origin("http://localhost:8000") == "http://localhost:8000"
    for bad in ("shop.example", "ftp://shop.example", "https://shop.example/contact", "https://"):
        with pytest.raises(ValueError):
            normalize_origin(bad)
    form = PublicForm(
        id=1, entry_point_id=1, allowed_origins=("https://shop.example",), enabled=True, captcha=False
    )
    assert form.allows_origin("https://shop.example")
    assert not form.allows_origin("https://shop.example.evil.example")
    assert not form.allows_origin("http://shop.example")  # another scheme is another origin
    assert not form.allows_origin("garbage")


def test_the_rate_limit_counts_per_address_in_a_sliding_window() -> None:
    now = [1000.0]
    limit = FormRateLimit(2, 60, monotonic=lambda: now[0])
    limit.hit("198.51.100.1")
    limit.hit("198.51.100.1")
    with pytest.raises(Throttled) as refused:
        limit.hit("198.51.100.1")
    assert refused.value.error_id == "too-many-submissions" and refused.value.retry_after_s == 61
    limit.hit("198.51.100.2")  # another address has its own count
    now[0] += 30
    with pytest.raises(Throttled):  # a refused submission is not counted, the first two still are
        limit.hit("198.51.100.1")
    now[0] += 31
    limit.hit("198.51.100.1")
