"""Property tests: whatever a timeline file holds, reading it gives a Series or the documented
error (FileInputError naming the file and, where it can, the line) — never another exception.

Generated from a real recorded timeline: lines cut, dropped, duplicated, swapped, their numbers
replaced with extreme or wrong-typed values, bytes flipped. Bounded so CI stays fast."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import FileInputError
from harness.timeline import load_series

SOURCE = next(
    (Path(__file__).parents[1] / "fixtures" / "runs").glob("*local-quick*/scenarios/*/timeline.jsonl")
)
LINES = SOURCE.read_bytes().splitlines(keepends=True)[:40]
ODD_VALUES = st.sampled_from(
    [0, -1, 1e308, -1e308, 2**63, -(2**63), 1e-300, "1", None, True, [], {}, "NaN", 0.5, 10**30]
)


def _edit_number(line: bytes, key: str, value: object) -> bytes:
    try:
        obj = json.loads(line)
    except ValueError:
        return line
    if isinstance(obj, dict) and key in obj:
        obj[key] = value
    return json.dumps(obj).encode() + b"\n"


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["cut", "drop", "dup", "swap", "value", "flip", "junk"])):
            case "cut":
                lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
            case "drop" if len(lines) > 1:
                del lines[i]
            case "dup":
                lines.insert(i, lines[i])
            case "swap":
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            case "value":
                key = draw(
                    st.sampled_from(["t", "dt", "requests", "failures", "kpi", "bucket_s", "schema", "z"])
                )
                lines[i] = _edit_number(lines[i], key, draw(ODD_VALUES))
            case "flip" if lines[i]:
                k = draw(st.integers(0, len(lines[i]) - 1))
                lines[i] = lines[i][:k] + bytes([draw(st.integers(0, 255))]) + lines[i][k + 1 :]
            case "junk":
                lines.insert(i, draw(st.binary(max_size=60)) + b"\n")
            case _:
                pass
    return b"".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=damaged())
def test_a_damaged_timeline_reads_or_is_refused_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(content)
    try:
        series = load_series(path)
    except FileInputError as exc:
        assert str(path) in str(exc)
        return
    assert (series.requests >= 0).all() and (series.failures <= series.requests).all()


def test_a_bucket_whose_width_is_not_a_number_is_refused(tmp_path: Path) -> None:
    """`"dt": "NaN"` on a bucket line (found by the property above) is refused naming the file,
    not cast to an integer index with a warning."""
    first_bucket = next(i for i, line in enumerate(LINES) if b'"bucket"' in line)
    lines = list(LINES)
    lines[first_bucket] = _edit_number(lines[first_bucket], "dt", "NaN")
    path = tmp_path / "timeline.jsonl"
    path.write_bytes(b"".join(lines))
    try:
        load_series(path)
    except FileInputError as exc:
        assert str(path) in str(exc) and "dt" in str(exc)
    else:
        raise AssertionError("a bucket with dt NaN was read")
