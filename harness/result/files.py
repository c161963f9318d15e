"""Reading and writing result.json: a malformed file is refused naming the file and the field.

Every reader (report, compare, history, `harness score`) goes through `read`, so a file that is
not a harness.result/v1 result stops at the door with an InputError (exit 2) rather than a
KeyError inside a renderer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import FileInputError
from harness.result.model import SCHEMA, Result, Scenario

_SHOWN_PROBLEMS = 3
"""Problems listed in one message: enough to fix a hand-edited file, short enough to read."""


class ResultFileError(FileInputError):
    """result.json is missing, not JSON, of another schema, or a field is missing or of the wrong type."""


def read(path: Path) -> Result:
    """The Result in `path`; ResultFileError naming the file (and line or field) otherwise."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultFileError(path, "missing (is this a run directory?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(path, f"cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    return parse(data, path)


def parse(data: Any, path: Path | str = "result.json") -> Result:
    """A Result from result.json's decoded content; ResultFileError naming the field at fault."""
    if not isinstance(data, dict):
        raise ResultFileError(path, f"expected a JSON object (got {type(data).__name__})")
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ResultFileError(path, f"field 'schema': expected {SCHEMA!r} (got {schema!r})")
    try:
        return Result.model_validate(data)
    except ValidationError as exc:
        raise ResultFileError(path, _describe(exc)) from None


def as_result(result: Result | Mapping[str, Any]) -> Result:
    """result.json's content as the model, as it is when it already is one (renderers and the
    history store are handed either); ResultFileError naming the field at fault otherwise."""
    return result if isinstance(result, Result) else parse(result)


def parse_scenario(data: Any, path: Path | str) -> Scenario:
    """One scenario trial's entry (the engine's scenario.json plus its scores); ResultFileError otherwise."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ResultFileError(path, _describe(exc)) from None


def dumps(result: Result) -> str:
    """result.json's text, as the engine has always written it."""
    return json.dumps(result.to_json(), indent=2, sort_keys=False, default=str) + "\n"


def field_path(loc: tuple[int | str, ...]) -> str:
    """`scenarios[0].metrics.error_rate` from pydantic's location tuple."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(exc: ValidationError) -> str:
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        where = field_path(_without_union_tags(loc))
        if where in problems:
            continue  # the other members of a union failed too: the first says enough
        if error["type"] == "missing":
            problems[where] = f"field {where!r} is missing"
        elif error["type"] == "extra_forbidden":
            problems[where] = f"field {where!r} is not a result.json field"
        else:
            got = repr(error.get("input"))
            shown = got if len(got) <= 60 else got[:57] + "..."
            numeric = loc and loc[-1] in ("int", "float")
            expected = "expected a number" if numeric else error["msg"].lower()
            problems[where] = f"field {where!r}: {expected} (got {shown})"
    listed = list(problems.values())
    more = len(listed) - _SHOWN_PROBLEMS
    text = "; ".join(listed[:_SHOWN_PROBLEMS])
    return text + (f"; and {more} more" if more > 0 else "")


_UNION_TAGS = {"int", "float", "none", "bool", "str", "function-after", "nullable"}


def _without_union_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Pydantic names the union member that failed (`...error_rate.int`); the user's field is the
    part before it."""
    return tuple(p for p in loc if not (isinstance(p, str) and p in _UNION_TAGS))
