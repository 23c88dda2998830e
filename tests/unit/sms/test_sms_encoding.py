"""GSM 03.38 / UCS-2 text, segment counting, UDH concatenation and reassembly (pure)."""

from __future__ import annotations

import pytest

from frontoffice.channels.sms.encoding import (
    EncodingError,
    Reassembler,
    count_segments,
    decode,
    encode_gsm,
    parse_udh,
    split_message,
)


def test_gsm_text_counts_160_then_153_a_segment_and_extension_characters_count_twice() -> None:
    assert count_segments("a" * 160).segments == 1
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2 and count_segments("a" * 307).segments == 3
    euro = count_segments("€" * 80)
    assert (euro.encoding, euro.units, euro.segments) == ("gsm7", 160, 1)
    assert count_segments("€" * 81).segments == 2


def test_cyrillic_is_ucs2_70_then_67_a_segment_and_an_emoji_takes_two_units() -> None:
    assert count_segments("ж" * 70).segments == 1
    c = count_segments("ж" * 71)
    assert (c.encoding, c.segments, c.per_segment, c.remaining) == ("ucs2", 2, 67, 63)
    assert count_segments("🙂" * 35).segments == 1 and count_segments("🙂" * 36).segments == 2


def test_gsm_round_trip_with_the_extension_table() -> None:
    text = "Hello {world} [1] ~ \\ | ^ € @£$¥"
    assert decode(encode_gsm(text), 0) == text
    with pytest.raises(EncodingError):
        encode_gsm("Привет")


def test_a_long_message_splits_without_cutting_an_escape_or_a_surrogate_pair() -> None:
    text = "x" * 152 + "€" + "y" * 10
    parts = split_message(text, 7)
    assert [p.short_message[:6] for p in parts] == [bytes((5, 0, 3, 7, 2, 1)), bytes((5, 0, 3, 7, 2, 2))]
    assert len(parts[0].short_message) - 6 == 152  # the € (ESC + code) moved to the next part
    emoji = "ж" * 66 + "🙂" + "ж" * 10
    ucs = split_message(emoji, 1)
    assert decode(ucs[0].short_message[6:], 8) == "ж" * 66


def test_parts_reassemble_in_any_order_and_a_missing_part_times_out_with_what_came() -> None:
    text = "Ж" * 150
    parts = split_message(text, 42)
    r = Reassembler(timeout_s=10)
    got = []
    for i, p in reversed(list(enumerate(parts))):
        concat, data = parse_udh(p.short_message)
        assert concat is not None
        got += r.add(0.0, "+7916", "+7495", concat, p.data_coding, data, str(i))
    assert [m.text for m in got] == [text] and got[0].complete
    concat, data = parse_udh(parts[0].short_message)
    assert concat is not None
    assert r.add(1.0, "+7916", "+7495", concat, 8, data, "x") == []
    assert r.next_timer() == 11.0 and r.expire(5.0) == []
    late = r.expire(11.0)
    assert [(m.text, m.complete) for m in late] == [("Ж" * 67, False)] and len(r) == 0


def test_too_many_parts_are_refused() -> None:
    with pytest.raises(EncodingError):
        split_message("ж" * 1000, 1)
