"""Plan files: YAML text → a validated Plan, with every problem reported at its file and line.

The engine calls `load_plan`; `harness run` turns its PLAN argument into a path with
`resolve_plan_arg`. PyYAML's node tree gives the line of every key; pydantic's errors give
the key path; the two meet in `_Document.locate`. All problems are collected before anything
is raised, so one round of editing fixes a plan.

Relative paths in a plan (load.locustfile, scenarios[].experiment) are tried against the
plan's folder, then the working directory, then the bundle (BUNDLE_ROOT), so a plan next to its
own experiments works and a team's plan may name the bundled ones. A bundled plan's paths are
tried against the bundle only: a folder named experiments/ where the harness is run cannot
change what `harness run local-quick` runs.
"""

from __future__ import annotations

import json
import os
import re
import stat
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness import bundle, redaction
from harness.errors import FileInputError, InputError
from harness.plan import models

BUNDLE_ROOT = bundle.ROOT
"""The folder the bundled plans' relative paths (experiments/local/..., loadtests/...) start from."""
PLANS_DIR = BUNDLE_ROOT / "experiments" / "plans"
DEFAULT_PLAN = PLANS_DIR / "local-gameday.yaml"
"""What `harness run` runs without a PLAN: the local game day on the testbed (DESIGN.md)."""

type Key = tuple[str | int, ...]

MAX_FILE_BYTES = 1_048_576
"""The largest plan or experiment file read (1 MiB): the bundled ones are a few KB, so a larger
file is a mistake (a log, a dump), and the whole file is held in memory."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists read (the bundled files nest under 15 levels): the
parsers and validators recurse, and a file nested hundreds of levels deep would exhaust the stack."""
MAX_NODES = 100_000
"""The most values (mappings, lists, scalars) a file may hold once its aliases are expanded: a
few lines of nested aliases (`b: [*a, *a, ...]`) can stand for billions of values, which would
take hours to check; a plan has a few hundred."""
_NAME_MAX = 255
"""Linux's limit on one file or folder name, in bytes."""
_PATH_MAX = 4095
"""Linux's limit on a whole path, in bytes (PATH_MAX less the terminating NUL)."""


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


def path_problem(path: str | Path) -> str | None:
    """Why a path can name no file at all (a NUL character, a name over 255 bytes), or None.

    The operating system's own errors for these surface as ValueError or OSError from places
    that do not expect them (`Path.is_file`, `Path.resolve`); checking first gives one message.
    """
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        return "the path contains a character no file name can hold (a lone surrogate)"
    if b"\0" in raw:
        return "the path contains a NUL character"
    if len(raw) > _PATH_MAX:
        return f"the path is {len(raw)} bytes long; at most {_PATH_MAX} are possible"
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > _NAME_MAX:
        return f"a name in the path is {len(longest)} bytes long; at most {_NAME_MAX} are possible"
    return None


def expanded(path: str | Path) -> Path:
    """The path with a leading `~` or `~user` expanded; as given when there is no such home."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~nosuchuser
        return Path(path)


_FILE_KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


class _Unreadable(Exception):
    """Why a file cannot be read as text, and at which line when there is one."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.line = line


def _read_text(path: Path) -> str:
    """A regular file's text (UTF-8, at most MAX_FILE_BYTES); _Unreadable says why not.

    The file is opened without blocking and checked to be a regular file before anything is
    read, so a named pipe or a device given as a plan is refused at once instead of waiting
    forever for a writer (or reading /dev/zero until memory runs out).
    """
    reason = path_problem(path)
    if reason is not None:
        raise _Unreadable(reason)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _Unreadable(exc.strerror or str(exc)) from None
    with open(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((kind for test, kind in _FILE_KINDS.items() if test(mode)), "not a regular file")
            raise _Unreadable(f"expected a regular file (got {kind})")
        try:
            data = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _Unreadable(exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable(
            f"the file is larger than {MAX_FILE_BYTES:,} bytes; a plan or experiment is a few KB"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Unreadable(f"not UTF-8 text (byte {data[exc.start]:#04x})", line) from None


def _unprintable(text: str) -> tuple[int, str] | None:
    """The line and description of the first character YAML does not allow (control
    characters other than tab and newlines, NUL), or None."""
    match = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if match is None:
        return None
    start = match.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    code = ord(match.group())
    what = "a NUL character" if code == 0 else f"control character U+{code:04X}"
    return line, (
        f"{what} at column {column}: expected text; write a special character as an escape "
        '(such as "\\t") inside a double-quoted string'
    )


_JSON_NESTING = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{}\n]')


def _json_too_deep(text: str) -> int | None:
    """The line where JSON text nests deeper than MAX_DEPTH, or None; json.loads recurses."""
    depth, line = 0, 1
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token == "\n":
            line += 1
        elif token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif token in "]}":
            depth -= 1
    return None


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML syntax, refused all the same: beyond the loader's limits, or a value Python
    cannot hold."""


def _too_deep(mark: yaml.Mark | None) -> _Refused:
    return _Refused(None, None, f"expected at most {MAX_DEPTH} levels of nested mappings and lists", mark)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with nesting bounded while composing (its composer recurses), and
    values Python cannot hold (an integer of 5,000 digits, February 30th) reported at their line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.depth >= MAX_DEPTH:
            raise _too_deep(self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            raise _Refused(
                None, None, f"cannot read the value {_show(node.value)} ({exc})", node.start_mark
            ) from None


def _shape_problem(root: yaml.Node) -> tuple[yaml.Mark, str] | None:
    """What makes a composed YAML document unsafe to expand, and where: an anchor used inside
    itself (a recursive alias), more than MAX_NODES values once aliases are expanded (a
    "billion laughs"), or nesting deeper than MAX_DEPTH through aliases.

    PyYAML composes an alias as the very node it names, so the document is a graph; it is walked
    here with a budget, without recursion, before anything expands it.
    """
    count = 0
    on_path: set[int] = set()
    # `where` is the mark reported: an alias is composed as the node it names, earlier in the
    # text, so below an alias the place it was used is kept rather than the anchor's.
    stack: list[tuple[yaml.Node, int, bool, yaml.Mark, bool]] = [(root, 1, False, root.start_mark, False)]
    while stack:
        node, depth, leaving, where, in_alias = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        if id(node) in on_path:
            return where, (
                "expected no recursive alias: this anchor is used inside its own value, which would never end"
            )
        count += 1
        if count > MAX_NODES:
            return where, (
                f"expected at most {MAX_NODES:,} values once aliases are expanded: nested aliases "
                "here multiply beyond that"
            )
        if depth > MAX_DEPTH:
            return where, _too_deep(None).problem or ""
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            continue
        on_path.add(id(node))
        stack.append((node, depth, True, where, in_alias))
        for child in reversed(children):
            aliased = in_alias or child.start_mark.index <= node.start_mark.index
            stack.append((child, depth + 1, False, where if aliased else child.start_mark, aliased))
    return None


def _compose(loader: _Loader) -> yaml.Node | None:
    """The document's node tree, checked by _shape_problem; YAMLError for any problem."""
    node = loader.get_single_node()
    if node is not None:
        found = _shape_problem(node)
        if found is not None:
            mark, message = found
            raise _Refused(None, None, message, mark)
    return node


def _syntax_problem(path: Path, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        line = mark.line + 1 if mark is not None else None
        column = f" (column {mark.column + 1})" if mark is not None else ""
        prefix = "" if isinstance(exc, _Refused) else "YAML syntax: "
        return Problem(path, line, f"{prefix}{what}{column}")
    return Problem(path, None, f"YAML syntax: {exc}")


def _read_document(path: Path, error: type[FileProblemsError]) -> _Document:
    """Read and parse a YAML (or JSON) file; any problem is raised as `error` with its line.

    Bounded, so that no file can hang or crash the loader: a regular file of at most
    MAX_FILE_BYTES, no control characters, at most MAX_DEPTH levels of nesting and MAX_NODES
    values with aliases expanded.
    """
    try:
        text = _read_text(path)
    except _Unreadable as exc:
        raise error(path, [Problem(path, exc.line, f"cannot read the file: {exc}")]) from None
    unprintable = _unprintable(text)
    if unprintable is not None:
        raise error(path, [Problem(path, *unprintable)])
    if path.suffix == ".json":
        # JSON's own parser decides what is valid JSON; YAML only supplies the line numbers.
        deep = _json_too_deep(text)
        if deep is not None:
            raise error(path, [Problem(path, deep, f"expected at most {MAX_DEPTH} levels of nesting")])
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                path, [Problem(path, exc.lineno, f"JSON syntax: {exc.msg} (column {exc.colno})")]
            ) from None
        except ValueError as exc:  # an integer of more than 4,300 digits
            raise error(path, [Problem(path, None, f"JSON: {exc}")]) from None
        document = _Document(path, data)
        loader = _Loader(text)
        try:
            node = _compose(loader)
        except yaml.YAMLError:
            node = None
        finally:
            loader.dispose()
        if node is not None:
            document.index(node)
        return document
    try:
        loader = _Loader(text)  # inside the try: PyYAML's reader checks the text as it starts
        try:
            node = _compose(loader)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise error(path, [_syntax_problem(path, exc)]) from None
    document = _Document(path, data)
    if node is not None:
        document.index(node)
    return document


def read_data(path: Path, error: type[FileProblemsError] = FileProblemsError) -> Any:
    """The content of a YAML or JSON file, read within the loader's limits; `error` (with
    file and line) when it cannot be read or parsed."""
    return _read_document(Path(path), error).data


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
    given = expanded(value)
    if given.is_absolute():
        bases = [Path()]
    elif plan_dir.is_relative_to(BUNDLE_ROOT / "experiments"):  # a bundled plan
        bases = [plan_dir, BUNDLE_ROOT]
    else:
        bases = [plan_dir, Path.cwd(), BUNDLE_ROOT]
    tried: list[Path] = []
    for base in bases:
        candidate = base / given
        if path_problem(candidate) is not None:
            continue
        try:
            candidate = candidate.resolve()
            if candidate in tried:
                continue
            tried.append(candidate)
            if candidate.is_file():
                return candidate, tried
        except (OSError, RuntimeError):  # a symlink loop, an unreadable folder on the way
            continue
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
    path = expanded(path)
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
        _, line = document.locate(key)
        reason = path_problem(value)
        if reason is not None:
            problems.append(Problem(path, line, f"{_dotted(key)}: expected a file path: {reason}"))
            continue
        found, tried = _resolve(value, plan_dir)
        if found is not None:
            files[key] = found
            continue
        listing = ", ".join(str(t) for t in tried) or "no possible path"
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


def bundled_plan(name: str) -> Path | None:
    """The bundled plan a bare name such as `local-quick` means, or None (a path, no such plan)."""
    if "/" in name or Path(name).suffix or path_problem(name) is not None:
        return None
    path = PLANS_DIR / f"{name}.yaml"
    return path if path_problem(path) is None and path.is_file() else None


def resolve_plan_arg(arg: str | None) -> Path:
    """The plan file a PLAN argument means: none → the local game day; a bare name such as
    `local-quick` → that bundled plan; else the path as given."""
    if arg is None:
        return DEFAULT_PLAN
    reason = path_problem(arg)
    if reason is not None:
        raise InputError(f"PLAN: {arg!r}: {reason}")
    given = expanded(arg)
    bundled = bundled_plan(arg)
    if bundled is not None:
        return bundled
    try:
        if given.is_file():
            return given
    except OSError as exc:
        raise InputError(f"PLAN: {arg}: {exc.strerror or exc}") from None
    names = ", ".join(p.stem for p in bundled_plans())
    try:
        reason = "is not a file" if given.exists() else "does not exist"
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
    raise InputError(f"PLAN: {arg} {reason} (bundled plans: {names})")
