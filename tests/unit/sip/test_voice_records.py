"""Pure pieces of the in-call features: call-leg records, announcement sentences (Russian numerals)
and the recorder that puts both directions on one time line."""

from __future__ import annotations

import wave
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from frontoffice.channels.voice.announcements import announcement_text, russian_number, russian_plural
from frontoffice.channels.voice.call_records import CallLeg, cause_of_status
from frontoffice.channels.voice.media import SAMPLE_RATE, THIRD_PARTY_TRACK, Recorder

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_a_leg_records_ringing_answer_end_and_durations() -> None:
    leg = CallLeg("agent", "abc@host", T0, peer="sip:ivanova@10.0.0.5", agent_id=7, interaction_id=3)
    leg.ringing(T0 + timedelta(seconds=1))
    leg.answered(T0 + timedelta(seconds=4))
    assert leg.end(T0 + timedelta(seconds=64), "bye_agent")
    assert not leg.end(T0 + timedelta(seconds=99), "bye_caller")  # the first end wins
    data = leg.data()
    assert data["status"] == 200 and data["cause"] == "bye_agent"
    assert (data["ring_s"], data["talk_s"], data["duration_s"]) == (4.0, 60.0, 64.0)
    assert data["setup_at"] == T0.isoformat() and data["agent_id"] == 7


def test_an_unanswered_leg_keeps_the_reason_it_was_cancelled_for() -> None:
    leg = CallLeg("agent", "abc@host", T0)
    leg.pending_cause = "no_answer"  # the ring timeout sent CANCEL; the phone answers 487 later
    leg.end(T0 + timedelta(seconds=15), cause_of_status(487), 487)
    data = leg.data()
    assert (data["status"], data["cause"], data["talk_s"], data["ring_s"]) == (487, "no_answer", None, 15.0)


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (486, "busy"),
        (600, "busy"),
        (480, "unavailable"),
        (408, "unavailable"),
        (603, "declined"),
        (487, "cancelled"),
        (500, "failed"),
    ],
)
def test_final_statuses_map_to_causes(status: int, cause: str) -> None:
    assert cause_of_status(status) == cause


@pytest.mark.parametrize(
    ("n", "masculine", "feminine"),
    [
        (0, "ноль", "ноль"),
        (1, "один", "одна"),
        (2, "два", "две"),
        (11, "одиннадцать", "одиннадцать"),
        (21, "двадцать один", "двадцать одна"),
        (42, "сорок два", "сорок две"),
        (100, "сто", "сто"),
        (115, "сто пятнадцать", "сто пятнадцать"),
        (1000, "одна тысяча", "одна тысяча"),
        (2001, "две тысячи один", "две тысячи одна"),
        (5300, "пять тысяч триста", "пять тысяч триста"),
        (21000, "двадцать одна тысяча", "двадцать одна тысяча"),
    ],
)
def test_russian_numbers_in_words(n: int, masculine: str, feminine: str) -> None:
    assert russian_number(n) == masculine
    assert russian_number(n, feminine=True) == feminine


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (1, "минута"),
        (2, "минуты"),
        (4, "минуты"),
        (5, "минут"),
        (11, "минут"),
        (14, "минут"),
        (21, "минута"),
        (22, "минуты"),
        (25, "минут"),
        (111, "минут"),
    ],
)
def test_russian_plural_after_a_number(n: int, form: str) -> None:
    assert russian_plural(n, "минута", "минуты", "минут") == form


def test_announcements_in_english_and_russian() -> None:
    assert announcement_text("en", 3, None) == "You are number 3 in the queue."
    assert announcement_text("en", 1, 20.0).endswith("The expected wait is less than a minute.")
    assert announcement_text("en", 2, 65.0).endswith("about 1 minute.")
    assert announcement_text("en", 5, 150.0).endswith("about 2 minutes.")  # 2.5 min rounds to even
    assert announcement_text("ru", 2, None) == "Ваш номер в очереди: два."
    assert announcement_text("ru", 21, 21 * 60.0) == (
        "Ваш номер в очереди: двадцать один. Примерное время ожидания: двадцать одна минута."
    )
    assert announcement_text("ru", 3, 300.0).endswith("пять минут.")
    assert announcement_text("ru", 1, 10.0).endswith("меньше минуты.")
    # Very long waits are capped: "about an hour" is already the message.
    assert announcement_text("en", 400, 10 * 3600.0).endswith("about 60 minutes.")


def _frames(path: Path) -> tuple[int, array[int]]:
    with wave.open(str(path), "rb") as wav:
        return wav.getnchannels(), array("h", wav.readframes(wav.getnframes()))


def test_recorder_aligns_both_directions_with_silence_for_gaps_and_mixes_them(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "7.wav", tmp_path / "7-stereo.wav", started=100.0)
    frame = 160  # 20 ms
    caller = array("h", [1000] * frame).tobytes()
    agent = array("h", [-300] * frame).tobytes()
    # The caller talks for the first 100 ms; the agent only from 1 s on (a gap of silence before).
    for n in range(1, 6):
        recorder.write("caller", caller, 100.0 + n * 0.02)
    for n in range(1, 6):
        recorder.write("agent", agent, 101.0 + n * 0.02)
    recorder.finish()
    channels, mixed = _frames(tmp_path / "7.wav")
    assert channels == 1
    assert len(mixed) == SAMPLE_RATE + 5 * frame  # the agent's last packet ends at 1.1 s
    assert set(mixed[: 5 * frame]) == {1000}
    assert set(mixed[5 * frame : SAMPLE_RATE]) == {0}
    assert set(mixed[SAMPLE_RATE:]) == {-300}
    channels, stereo = _frames(tmp_path / "7-stereo.wav")
    assert channels == 2
    left, right = stereo[0::2], stereo[1::2]
    assert len(left) == len(right) == len(mixed)
    assert set(left[: 5 * frame]) == {1000} and set(right[: 5 * frame]) == {0}
    assert set(right[SAMPLE_RATE:]) == {-300} and set(left[SAMPLE_RATE:]) == {0}
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_a_third_party_is_recorded_on_the_agent_side_with_the_agent(tmp_path: Path) -> None:
    # A conference's third party (or the colleague after a hand-over) talks over the agent: both are
    # on the right, summed; the caller alone is on the left.
    recorder = Recorder(tmp_path / "3.wav", tmp_path / "3-stereo.wav", started=0.0)
    frame = 160
    for n in range(1, 6):
        recorder.write("caller", array("h", [1000] * frame).tobytes(), n * 0.02)
        recorder.write("agent", array("h", [-300] * frame).tobytes(), n * 0.02)
        recorder.write(THIRD_PARTY_TRACK, array("h", [200] * frame).tobytes(), 0.1 + n * 0.02)
    recorder.finish()
    _, stereo = _frames(tmp_path / "3-stereo.wav")
    left, right = stereo[0::2], stereo[1::2]
    assert len(left) == 10 * frame  # the third party's last packet ends at 200 ms
    assert set(left[: 5 * frame]) == {1000} and set(left[5 * frame :]) == {0}
    assert set(right[: 5 * frame]) == {-300} and set(right[5 * frame :]) == {200}
    _, mixed = _frames(tmp_path / "3.wav")
    assert list(mixed) == [a + b for a, b in zip(left, right, strict=True)]
    assert not list(tmp_path.glob(".*"))


def test_recorder_clips_instead_of_wrapping(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "1.wav", None, started=0.0)
    loud = array("h", [30000] * 160).tobytes()
    recorder.write("caller", loud, 0.02)
    recorder.write("agent", loud, 0.02)
    recorder.finish()
    _, mixed = _frames(tmp_path / "1.wav")
    assert set(mixed) == {32767}
    assert not (tmp_path / "1-stereo.wav").exists()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (486, "486"),
        ("-12.5", "-12.5"),
        ("+74951234567", "+74951234567"),
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("@sum", "'@sum"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ],
)
def test_call_record_csv_cells_never_run_as_spreadsheet_formulas(value: object, cell: str) -> None:
    from frontoffice.services.csv_safe import safe_cell

    assert safe_cell(value) == cell
