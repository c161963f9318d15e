"""Plan files: YAML text → a validated Plan, with every problem reported at its file and line.

The engine calls `load_plan`; `harness run` turns its PLAN argument into a path with
`resolve_plan_arg`. PyYAML's node tree gives the line of every key; pydantic's errors give
the key path; the two meet in `_Document.locate`. All problems are collected before anything
is raised, so one round of editing fixes a plan.

Relative paths in a plan (load.locustfile, scenarios[].experiment) are tried against the
plan's folder, then the working directory, then the project root, so the bundled plans work
from anywhere and a plan next to its own experiments works too.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

import harness
from harness import redaction
from harness.errors import FileInputError, InputError
from harness.plan import models

PROJECT_ROOT = Path(harness.__file__).resolve().parents[1]
PLANS_DIR = PROJECT_ROOT / "experiments" / "plans"
DEFAULT_PLAN = PLANS_DIR / "local-gameday.yaml"
"""What `harness run` runs without a PLAN: the local game day on the testbed (DESIGN.md)."""

type Key = tuple[str | int, ...]


# --- errors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, at a line when known."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


class FileProblemsError(FileInputError):
    """One or more problems, each naming its file and line; `problems` lists them."""

    def __init__(self, path: str | Path, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            only = self.problems[0]
            super().__init__(only.path, only.message, only.line)
        else:
            listing = "\n".join(f"  {p}" for p in self.problems)
            super().__init__(path, f"{len(self.problems)} problems:\n{listing}")


class PlanError(FileProblemsError):
    """A plan (or an experiment it names) is invalid; raised before anything runs."""


# --- YAML with line numbers ---------------------------------------------------------------


@dataclass
class _Document:
    """A parsed YAML or JSON file and the line of every key path in it."""

    path: Path
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Duplicate keys: YAML keeps the last silently, which hides a mistake."""

    def locate(self, key: Iterable[str | int]) -> tuple[Key, int | None]:
        """The deepest part of `key` present in the file, and its line.

        Parts not in the file are skipped: pydantic puts union tags in its error locations
        (`target.kubernetes.context`), and a missing key is found at its parent.
        """
        matched: Key = ()
        for part in key:
            if (*matched, part) in self.lines:
                matched = (*matched, part)
        return matched, self.lines.get(matched)

    def index(self, node: yaml.Node, prefix: Key = ()) -> None:
        self.lines.setdefault(prefix, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in first and key != "<<":
                    self.problems.append(
                        Problem(
                            self.path,
                            line,
                            f"{_dotted((*prefix, key))}: duplicate key (first at line {first[key]}); "
                            "YAML would keep only this one",
                        )
                    )
                first.setdefault(key, line)
                self.lines[(*prefix, key)] = line
                self.index(value_node, (*prefix, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.index(item, (*prefix, i))


def _read_document(path: Path, error: type[FileProblemsError]) -> _Document:
    """Read and parse a YAML (or JSON) file; a syntax error is raised as `error` with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(path, [Problem(path, None, f"cannot read the file: {reason}")]) from None
    if path.suffix == ".json":
        # JSON's own parser decides what is valid JSON; YAML only supplies the line numbers.
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                path, [Problem(path, exc.lineno, f"JSON syntax: {exc.msg} (column {exc.colno})")]
            ) from None
        document = _Document(path, data)
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        if node is not None:
            document.index(node)
        return document
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark is not None else None
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise error(path, [Problem(path, line, f"YAML syntax: {what}{column}")]) from None
    except yaml.YAMLError as exc:
        raise error(path, [Problem(path, None, f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    document = _Document(path, data)
    if node is not None:
        document.index(node)
    return document


# --- pydantic errors → problems -----------------------------------------------------------


def _dotted(key: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in key) or "(top level)"


def _show(value: Any) -> str:
    """A value as the plan would spell it, shortened."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float | list | dict):
        text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _value_at(data: Any, key: Key) -> Any:
    """The raw value at a key path, or None when there is none."""
    for part in key:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return None
        data = data[part]
    return data


def _annotation_at(key: Key) -> Any:
    """The type a key path leads to in Plan (following lists, dicts and `kind` tags)."""
    current: Any = models.Plan
    for part in key:
        current = _one_model(current, part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                continue  # a union tag such as `kubernetes`, consumed by _one_model
            current = info.annotation
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    return current


def _model_at(key: Key) -> type[BaseModel] | None:
    """The model a key path leads to, for the keys it allows."""
    model = _one_model(_annotation_at(key), None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _kinds_at(key: Key) -> list[str]:
    """The `kind` values a union of models at a key path accepts."""
    annotation = _annotation_at(key)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return []
    kinds = []
    for member in typing.get_args(annotation):
        info = (
            member.model_fields.get("kind")
            if isinstance(member, type) and issubclass(member, BaseModel)
            else None
        )
        kinds += [repr(k) for k in typing.get_args(info.annotation)] if info is not None else []
    return kinds


def _one_model(annotation: Any, tag: str | int | None) -> Any:
    """From a union of models, the one whose `kind` is `tag`, or the only one; else unchanged."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    members = [m for m in typing.get_args(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    for member in members:
        kind = member.model_fields.get("kind")
        if kind is not None and tag in typing.get_args(kind.annotation):
            return member
    return members[0] if len(members) == 1 else annotation


def _expected(error: Any) -> str:
    """What pydantic's error says was expected, in the plan's words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    match kind:
        case "missing":
            return "required key is missing"
        case "union_tag_not_found":
            kinds = _kinds_at(tuple(error["loc"]))
            return (
                f"required key is missing: expected one of {', '.join(kinds)}"
                if kinds
                else "required key is missing"
            )
        case "value_error" | "assertion_error" if "error" in ctx:
            return str(ctx["error"])
        case "greater_than":
            return f"expected a number > {ctx['gt']:g}"
        case "greater_than_equal":
            return f"expected a number >= {ctx['ge']:g}"
        case "less_than":
            return f"expected a number < {ctx['lt']:g}"
        case "less_than_equal":
            return f"expected a number <= {ctx['le']:g}"
        case "model_type" | "model_attributes_type" | "dict_type":
            return "expected a mapping"
        case "list_type":
            return "expected a list"
        case "too_short":
            return f"expected at least {ctx['min_length']} item(s)"
        case "union_tag_invalid":
            return f"expected kind {ctx['expected_tags']}"
        case "int_type" | "int_parsing" | "int_from_float":
            return "expected a whole number"
        case "float_type" | "float_parsing":
            return "expected a number"
        case "string_type":
            return "expected a string"
        case "bool_type" | "bool_parsing":
            return "expected true or false"
        case "literal_error":
            return f"expected {ctx['expected']}"
        case "path_type":
            return "expected a path"
    message = str(error["msg"])
    return (
        "expected " + message.removeprefix("Input should be ")
        if message.startswith("Input should be ")
        else message
    )


def _quoted_in(value: Any, message: str) -> bool:
    """Whether a message already quotes the string it is about (a gate's text, a name)."""
    return isinstance(value, str) and repr(value) in message


def _masked(message: str, key: Key, document: _Document) -> str:
    """The message with URL passwords masked, and the value itself when its key looks like a secret."""
    value = _value_at(document.data, key)
    shown = str(value)
    secret = (
        isinstance(value, str | int | float)
        and not isinstance(value, bool)
        and len(shown) >= redaction.MIN_KNOWN
    )
    return redaction.text(
        message, [shown] if secret and redaction.field(key, value) == redaction.REDACTED else []
    )


def _problem(document: _Document, error: Any) -> tuple[Key, Problem]:
    """One pydantic error as a problem at the line of the key it is about."""
    loc: Key = tuple(error["loc"])
    kind = error["type"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, models._KeyedValueError):
        # The model named the key at fault below the one pydantic reports.
        key = (*document.locate(loc)[0], *cause.key)
        _, line = document.locate((*loc, *cause.key))
        message = str(cause)
        if key in document.lines and not _quoted_in(_value_at(document.data, key), message):
            message += f" (got {_show(redaction.field(key, _value_at(document.data, key)))})"
        return key, Problem(document.path, line, f"{_dotted(key)}: {_masked(message, key, document)}")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "kind")  # point at the kind key itself when there is one
    matched, line = document.locate(loc)
    if kind == "missing" or (kind == "union_tag_not_found" and matched[-1:] != ("kind",)):
        key = (*matched, loc[-1])
        return key, Problem(document.path, line, f"{_dotted(key)}: {_expected(error)}")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed: {', '.join(model.model_fields)}" if model is not None else ""
        return matched, Problem(document.path, line, f"{_dotted(matched)}: unknown key {loc[-1]!r}{allowed}")
    message = _expected(error)
    value = _value_at(document.data, matched) if kind == "union_tag_invalid" else error["input"]
    if not _quoted_in(value, message):
        message += f" (got {_show(redaction.field(loc, value))})"
    return matched, Problem(document.path, line, f"{_dotted(matched)}: {_masked(message, loc, document)}")


# --- loading ------------------------------------------------------------------------------


def _resolve(value: str, plan_dir: Path) -> tuple[Path | None, list[Path]]:
    """The first existing file among the candidates for a relative path, and all tried."""
    given = Path(value).expanduser()
    bases = [Path()] if given.is_absolute() else [plan_dir, Path.cwd(), PROJECT_ROOT]
    tried: list[Path] = []
    for base in bases:
        candidate = (base / given).resolve()
        if candidate in tried:
            continue
        tried.append(candidate)
        if candidate.is_file():
            return candidate, tried
    return None, tried


@dataclass
class _Loaded:
    """What loading a plan found, valid or not; validation goes on to the experiments."""

    document: _Document
    plan: models.Plan | None
    problems: list[Problem]
    files: dict[Key, Path]
    """Resolved paths by key, such as ("scenarios", 0, "experiment")."""


def _load(path: Path) -> _Loaded:
    path = Path(path).expanduser()
    document = _read_document(path, PlanError)
    problems = list(document.problems)
    data = document.data
    if not isinstance(data, dict):
        got = "the file is empty" if data is None else f"got {_show(data)}"
        problems.append(Problem(path, 1, f"expected a mapping with name, load and scenarios ({got})"))
        return _Loaded(document, None, problems, {})

    plan: models.Plan | None = None
    bad_keys: set[Key] = set()
    try:
        plan = models.Plan.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            key, problem = _problem(document, error)
            bad_keys.add(key)
            problems.append(problem)

    # Files are looked for even when other keys are wrong, so one pass reports everything.
    wanted: list[Key] = [("load", "locustfile")]
    scenarios = data.get("scenarios")
    if isinstance(scenarios, list):
        wanted += [("scenarios", i, "experiment") for i in range(len(scenarios))]
    files: dict[Key, Path] = {}
    plan_dir = path.resolve().parent
    for key in wanted:
        value = _value_at(data, key)
        if not isinstance(value, str) or key in bad_keys:
            continue
        found, tried = _resolve(value, plan_dir)
        if found is not None:
            files[key] = found
            continue
        _, line = document.locate(key)
        listing = ", ".join(str(t) for t in tried)
        problems.append(Problem(path, line, f"{_dotted(key)}: file {value!r} not found (tried {listing})"))

    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    if problems or plan is None:
        return _Loaded(document, None, problems, files)
    load = plan.load.model_copy(update={"locustfile": files[("load", "locustfile")]})
    scenarios_resolved = [
        s.model_copy(update={"experiment": files[("scenarios", i, "experiment")]})
        for i, s in enumerate(plan.scenarios)
    ]
    plan = plan.model_copy(update={"load": load, "scenarios": scenarios_resolved})
    return _Loaded(document, plan, problems, files)


def load_plan(path: Path) -> models.Plan:
    """Read and validate a plan file; its file paths come back absolute.

    Raises PlanError listing every problem with file and line.
    """
    loaded = _load(path)
    if loaded.problems or loaded.plan is None:
        raise PlanError(path, loaded.problems)
    return loaded.plan


def bundled_plans() -> list[Path]:
    """The plans shipped in experiments/plans/, for `harness list`."""
    return sorted(PLANS_DIR.glob("*.yaml"))


def resolve_plan_arg(arg: str | None) -> Path:
    """The plan file a PLAN argument means: none → the local game day; a bare name such as
    `local-quick` → that bundled plan; else the path as given."""
    if arg is None:
        return DEFAULT_PLAN
    given = Path(arg).expanduser()
    if given.name == arg and not given.suffix:
        bundled = PLANS_DIR / f"{arg}.yaml"
        if bundled.is_file():
            return bundled
    if given.is_file():
        return given
    names = ", ".join(p.stem for p in bundled_plans())
    reason = "is not a file" if given.exists() else "does not exist"
    raise InputError(f"PLAN: {arg} {reason} (bundled plans: {names})")
