"""The desk's SMS counter (static/js/sms_segments.js) counts like channels/sms/encoding.py: the same
sample strings through both, compared field by field (Node runs the module)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

from frontoffice.channels.sms.encoding import count_segments
from tests.conftest import require_tool

MODULE = Path(__file__).parents[3] / "frontoffice" / "web" / "static" / "js" / "sms_segments.js"

SAMPLES = [
    "",
    "Hello",
    "a" * 160,  # one GSM-7 SMS, full
    "a" * 161,  # two parts of 153
    "a" * 306,  # exactly two parts
    "a" * 307,
    "€" * 80,  # extension characters take two septets: 160, one SMS
    "€" * 81,
    "a" * 152 + "€" + "a" * 10,  # the € would straddle the part boundary: it moves to part two
    "[{price}] ^~|\\ \f",
    "Привет",
    "П" * 70,  # one UCS-2 SMS, full
    "П" * 71,  # two parts of 67
    "Заказ приедет завтра 😀",  # an emoji outside the BMP: two UTF-16 units
    "😀" * 34,
    "a" * 66 + "😀" + "b" * 10,  # the emoji is not cut between parts
    "Café ñ Ä ß @£$¥",
    "`backtick` is not GSM",
]


def test_js_counter_matches_count_segments() -> None:
    node = require_tool("node")
    script = MODULE.read_text(encoding="utf-8") + (
        "\nconst samples = JSON.parse(process.argv[1]);\n"
        "process.stdout.write(JSON.stringify(samples.map((s) => countSegments(s))));\n"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    from_js = json.loads(out.stdout)
    expected = [dataclasses.asdict(count_segments(s)) for s in SAMPLES]
    for sample, js, py in zip(SAMPLES, from_js, expected, strict=True):
        assert js == py, (sample[:30], js, py)
