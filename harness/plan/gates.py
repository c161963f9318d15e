"""Gate expressions such as `recovery_time_s < 30`: parsed and evaluated without `eval`.

Plans list gates as text; plan validation parses them (a bad gate is an error at its line),
and the engine evaluates them against a scenario's metrics after scoring. The grammar is
small on purpose, so a gate can only compare arithmetic over numbers, metric names and the
functions the caller hands in:

    gate   := expr OP expr                    OP: < <= > >= == !=
    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := NUMBER | NAME | NAME "(" [expr ("," expr)*] ")" | "(" expr ")" | "-" factor

A NAME is a metric (`error_rate`) or a nested one (`latency_ms.fault.p95`). A metric that
was not measured (None, such as `recovery_time_s` when the scenario never recovered) and a
division by zero fail the gate with a reason: they are results, not errors. An unknown
metric or function is an error: the gate cannot mean anything.

The functions a plan may call are the history functions (HISTORY_FUNCTIONS): `median_last(n)`,
`mean_last(n)`, `min_last(n)`, `max_last(n)` over the gate's left-side metric in the last n
earlier runs of the same plan, target and scenario (harness.store.history provides them), as in
`recovery_time_s <= 1.2 * median_last(5)`. A release gate then catches a regression, not only
an absolute breach. Such a gate's left side must be one metric name (its history is what the
functions read), and n is a whole number from 1 to 100.

A function with no value because nothing earlier was recorded raises NoHistory: the gate is
skipped, which counts as passed, with the reason. The first run of a plan on a new target must
not fail a release for lack of history; the absolute parts of the gate still apply, because the
left side is evaluated first (a null metric still fails). A function may return a
FunctionValue to say what its value rests on (how many runs); that note becomes the reason.
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from harness.errors import InputError
from harness.result import metrics as metric_registry
from harness.result.model import GateOutcome

KUBERNETES_ONLY_NAMES: frozenset[str] = metric_registry.gateable(metric_registry.Scope.KUBERNETES)
"""Measured on Kubernetes targets only (harness.scoring.controlplane); a testbed plan may not gate on them."""
TESTBED_ONLY_NAMES: frozenset[str] = metric_registry.gateable(metric_registry.Scope.TESTBED)
"""Measured on the testbed only (its etcd probes and ground truth); a Kubernetes plan may not gate on them."""
METRIC_NAMES: frozenset[str] = metric_registry.gateable()
"""The metric names a plan's gates may use: the gateable metrics of the registry (harness.result.metrics)."""

HISTORY_FUNCTIONS: frozenset[str] = frozenset({"median_last", "mean_last", "min_last", "max_last"})
"""The functions a plan's gates may call: statistics of the left-side metric over earlier runs."""
HISTORY_MAX_RUNS = 100
"""The largest n of a history function: a longer look back hides the regressions it is for."""
MAX_GATE_CHARS = 500
"""The longest gate text: a real gate is a line (`recovery_time_s <= 1.2 * median_last(5)`)."""
MAX_GATE_DEPTH = 32
"""The deepest a gate's expression may nest, counting parentheses, unary minus, calls and each
operator of a chain (`a + b + c` is two levels): parsing, rendering and evaluating recurse, and
a gate nested hundreds of levels deep would exhaust the stack."""

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<op><=|>=|==|!=|<|>|[-+*/(),])
    """,
    re.VERBOSE,
)


# --- errors -------------------------------------------------------------------------------


class GateError(InputError):
    """A gate cannot be parsed or refers to something that does not exist."""


class GateSyntaxError(GateError):
    """The gate text does not follow the grammar; the caller adds file and line."""

    def __init__(self, text: str, column: int, expected: str, got: str) -> None:
        self.text = text
        self.column = column
        self.expected = expected
        self.got = got
        shown = repr(text) if len(text) <= 100 else repr(text[:80]) + "..."
        super().__init__(f"gate {shown}: column {column}: expected {expected} (got {got})")


class GateNameError(GateError):
    """The gate uses metrics or functions that are not known."""

    def __init__(self, text: str, kind: str, unknown: Iterable[str], known: Iterable[str]) -> None:
        self.text = text
        self.kind = kind
        self.unknown = sorted(unknown)
        self.known = sorted(known)
        hints = []
        for name in self.unknown:
            close = difflib.get_close_matches(name, self.known, n=1)
            if close:
                hints.append(f"{name!r}: did you mean {close[0]!r}?")
        listed = ", ".join(repr(n) for n in self.unknown)
        plural = "s" if len(self.unknown) > 1 else ""
        message = f"gate {text!r}: unknown {kind}{plural} {listed}"
        if hints:
            message += f" ({'; '.join(hints)})"
        message += f"; known: {', '.join(self.known) or 'none'}"
        super().__init__(message)


class NoHistory(Exception):
    """Raised by a gate function that has no value because nothing earlier was recorded; the
    message says what is missing and becomes the skipped gate's reason. A signal, not an error
    (like trio's Cancelled): the gate is skipped and passes."""


class FunctionValue(NamedTuple):
    """A gate function's value with a note on what it rests on (`median_last(5) = 2.1 over 3
    earlier runs`), which the gate's result carries as its reason."""

    value: float
    note: str


# --- syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Metric:
    name: str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Negative:
    operand: Node


@dataclass(frozen=True)
class Arithmetic:
    op: str
    left: Node
    right: Node


type Node = Number | Metric | Call | Negative | Arithmetic


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case Call(args=args):
            return args
        case Negative(operand=operand):
            return (operand,)
        case Arithmetic(left=left, right=right):
            return (left, right)
    return ()


def _depth(node: Node) -> int:
    """How many levels deep an expression nests (a number or a name is one), without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(current))
    return deepest


def _walk(node: Node) -> Iterable[Node]:
    yield node
    match node:
        case Call(args=args):
            for arg in args:
                yield from _walk(arg)
        case Negative(operand=operand):
            yield from _walk(operand)
        case Arithmetic(left=left, right=right):
            yield from _walk(left)
            yield from _walk(right)


def render(node: Node) -> str:
    """Canonical text of an expression, fully parenthesised where precedence needs it."""
    match node:
        case Number(value=value):
            return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
        case Metric(name=name):
            return name
        case Call(function=function, args=args):
            return f"{function}({', '.join(render(a) for a in args)})"
        case Negative(operand=operand):
            inner = render(operand)
            return f"-{inner}" if isinstance(operand, Number | Metric | Call) else f"-({inner})"
        case Arithmetic(op=op, left=left, right=right):
            return f"{_operand(left, op, False)} {op} {_operand(right, op, True)}"
    raise AssertionError(node)  # pragma: no cover


def _operand(node: Node, op: str, right: bool) -> str:
    """An operand's text, in parentheses where reading it back would build another tree."""
    text = render(node)
    if not isinstance(node, Arithmetic):
        return text
    child, parent = _PRECEDENCE[node.op], _PRECEDENCE[op]
    # Operators associate to the left, so a right operand of the same precedence keeps its
    # parentheses: a - (b - c) is not a - b - c.
    if child < parent or (right and child == parent):
        return f"({text})"
    return text


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class Gate:
    """A parsed gate: `left OP right`, with the text it came from."""

    text: str
    op: str
    left: Node
    right: Node

    @property
    def names(self) -> frozenset[str]:
        """The metric names the gate reads."""
        return frozenset(
            n.name for side in (self.left, self.right) for n in _walk(side) if isinstance(n, Metric)
        )

    @property
    def functions(self) -> frozenset[str]:
        """The function names the gate calls."""
        return frozenset(
            n.function for side in (self.left, self.right) for n in _walk(side) if isinstance(n, Call)
        )

    @property
    def subject(self) -> str:
        """The left side in canonical form: what the gate is about (a scenario gate on the same
        subject overrides a plan gate)."""
        return render(self.left)


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, op, end
    text: str
    column: int  # 1-based


def _tokens(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            char = text[pos]
            hint = " ('==' compares)" if char == "=" else ""
            raise GateSyntaxError(
                text, pos + 1, f"a number, a metric name, an operator or a parenthesis{hint}", repr(char)
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), pos + 1))
        pos = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.nesting = 0
        """Parentheses, unary minus and calls open now: the parser recurses into each."""

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, expected: str) -> GateSyntaxError:
        token = self.current
        shown = token.text if len(token.text) <= 40 else token.text[:30] + "..."
        got = "the end of the gate" if token.kind == "end" else repr(shown)
        return GateSyntaxError(self.text, token.column, expected, got)

    def at(self, *texts: str) -> bool:
        return self.current.kind == "op" and self.current.text in texts

    def gate(self) -> Gate:
        left = self.expr()
        if not self.at(*COMPARISONS):
            raise self.fail("a comparison (<, <=, >, >=, ==, !=)")
        op = self.advance().text
        right = self.expr()
        if self.current.kind != "end":
            raise self.fail("the end of the gate (one comparison per gate)")
        depth = max(_depth(left), _depth(right))
        if depth > MAX_GATE_DEPTH:
            raise GateSyntaxError(self.text, 1, _NESTING_EXPECTED, f"{depth} levels")
        return Gate(self.text.strip(), op, left, right)

    def nest(self) -> None:
        """Enter a parenthesis, a unary minus or a call; refuse before recursing too deep."""
        self.nesting += 1
        if self.nesting > MAX_GATE_DEPTH:
            raise self.fail(_NESTING_EXPECTED)

    def expr(self) -> Node:
        node = self.term()
        while self.at("+", "-"):
            op = self.advance().text
            node = Arithmetic(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.at("*", "/"):
            op = self.advance().text
            node = Arithmetic(op, node, self.factor())
        return node

    def factor(self) -> Node:
        token = self.current
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value):
                # 1e999 would be shown as `inf`, which reads back as a metric name.
                raise self.fail(f"a finite number (at most {sys.float_info.max:.4g})")
            self.advance()
            return Number(value)
        if token.kind == "name":
            self.advance()
            if not self.at("("):
                return Metric(token.text)
            self.nest()
            self.advance()
            args: list[Node] = []
            if not self.at(")"):
                args.append(self.expr())
                while self.at(","):
                    self.advance()
                    args.append(self.expr())
            if not self.at(")"):
                raise self.fail("',' or ')'")
            self.advance()
            self.nesting -= 1
            return Call(token.text, tuple(args))
        if self.at("("):
            self.nest()
            self.advance()
            node = self.expr()
            if not self.at(")"):
                raise self.fail("')'")
            self.advance()
            self.nesting -= 1
            return node
        if self.at("-"):
            self.nest()
            self.advance()
            node = Negative(self.factor())
            self.nesting -= 1
            return node
        raise self.fail("a number, a metric name, '(' or '-'")


_NESTING_EXPECTED = (
    f"at most {MAX_GATE_DEPTH} levels of nesting (parentheses, '-', calls and chained operators)"
)


def parse(text: str) -> Gate:
    """Parse a gate; raises GateSyntaxError with the column and what was expected.

    Bounded: at most MAX_GATE_CHARS characters and MAX_GATE_DEPTH levels of nesting, and every
    number finite, so no text can exhaust the stack or read back as something else.
    """
    if len(text) > MAX_GATE_CHARS:
        raise GateSyntaxError(
            text, MAX_GATE_CHARS + 1, f"at most {MAX_GATE_CHARS} characters", f"{len(text)} characters"
        )
    return _Parser(text).gate()


def validate_names(
    gate: Gate, known: Iterable[str], functions: Iterable[str] | None = HISTORY_FUNCTIONS
) -> None:
    """Raise GateError if the gate reads metrics not in `known`, calls functions not in
    `functions` (None: any), or calls a history function wrongly; plan validation checks
    against METRIC_NAMES and HISTORY_FUNCTIONS."""
    known = set(known)
    unknown = gate.names - known
    if unknown:
        raise GateNameError(gate.text, "metric", unknown, known)
    if functions is not None:
        functions = set(functions)
        unknown = gate.functions - functions
        if unknown:
            raise GateNameError(gate.text, "function", unknown, functions)
    calls = [
        n
        for side in (gate.left, gate.right)
        for n in _walk(side)
        if isinstance(n, Call) and n.function in HISTORY_FUNCTIONS
    ]
    if calls and not isinstance(gate.left, Metric):
        raise GateError(
            f"gate {gate.text!r}: {calls[0].function}() compares with the left side's earlier values, "
            f"so the left side must be one metric name (got {gate.subject!r})"
        )
    for call in calls:
        if len(call.args) != 1 or not isinstance(call.args[0], Number):
            got = ", ".join(render(a) for a in call.args) or "nothing"
            raise GateError(f"gate {gate.text!r}: {history_runs_expected(call.function)} (got {got})")
        history_runs(call.function, call.args[0].value, gate.text)


def history_runs_expected(function: str) -> str:
    """What a history function's argument must be, for error messages."""
    return f"{function}(n) takes one whole number n of earlier runs, from 1 to {HISTORY_MAX_RUNS}"


def history_runs(function: str, n: float, text: str | None = None) -> int:
    """A history function's n as a whole number of runs; GateError unless 1..HISTORY_MAX_RUNS."""
    if not (float(n).is_integer() and 1 <= n <= HISTORY_MAX_RUNS):
        where = f"gate {text!r}: " if text else ""
        got = render(Number(float(n)))
        raise GateError(f"{where}{history_runs_expected(function)} (got {got})")
    return int(n)


# --- evaluation ---------------------------------------------------------------------------


class _Undefined(Exception):
    """A value could not be computed (null metric, division by zero); the gate fails."""


MISSING = object()
"""What `lookup` returns for a metric name that is not there at all (null is None)."""


def _leaf_names(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield from _leaf_names(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def lookup(metrics: Any, name: str) -> Any:
    """`metrics[name]`, else walk nested mappings along the dots; a null on the way is null, and a
    name that is not there is MISSING. The one reading of dotted metric names (gates, history,
    comparisons)."""
    if not isinstance(metrics, Mapping):
        return MISSING
    if name in metrics:
        return metrics[name]
    value: Any = metrics
    for part in name.split("."):
        if value is None:
            return None
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


class _Evaluator:
    def __init__(
        self, gate: Gate, metrics: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
    ) -> None:
        self.gate = gate
        self.metrics = metrics
        self.functions = functions
        self.notes: list[str] = []

    def number(self, value: Any, what: str, null_means: str) -> float:
        if value is None:
            raise _Undefined(f"{what} is null ({null_means})")
        if isinstance(value, bool):
            return float(value)
        if not isinstance(value, numbers.Real):  # numbers.Real takes numpy's scalars too
            raise _Undefined(f"{what} is not a number (got {value!r})")
        if math.isnan(value):
            raise _Undefined(f"{what} is not a number (NaN)")
        return float(value)

    def value(self, node: Node) -> float:
        match node:
            case Number(value=value):
                return value
            case Metric(name=name):
                value = lookup(self.metrics, name)
                if value is MISSING:
                    raise GateNameError(self.gate.text, "metric", [name], _leaf_names(self.metrics))
                return self.number(value, name, metric_registry.null_reason(name))
            case Call(function=function, args=args):
                if function not in self.functions:
                    raise GateNameError(self.gate.text, "function", [function], self.functions)
                values = [self.value(a) for a in args]
                result = self.functions[function](*values)
                if isinstance(result, FunctionValue):
                    self.notes.append(result.note)
                    result = result.value
                return self.number(result, render(node), "the function had no value")
            case Negative(operand=operand):
                return -self.value(operand)
            case Arithmetic(op=op, left=left, right=right):
                a, b = self.value(left), self.value(right)
                if op == "/" and b == 0:
                    raise _Undefined(f"division by zero in {render(node)}")
                # A history function can be infinite (earlier runs that never recovered), and
                # inf - inf has no value: say so rather than compare a NaN, which is never true.
                return self.number(_ARITHMETIC[op](a, b), render(node), "infinite operands")
        raise AssertionError(node)  # pragma: no cover


def evaluate(
    gate: Gate,
    metrics: Mapping[str, Any],
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> GateOutcome:
    """Evaluate a gate against one scenario's metrics.

    A null metric or a division by zero fails the gate with a reason; a function raising
    NoHistory skips it (passed, with the reason); an unknown metric or function raises
    GateNameError listing the known ones.
    """
    evaluator = _Evaluator(gate, metrics, functions or {})
    # Every name is checked before anything is computed, so a null early in the expression
    # cannot hide a typo later in it.
    for name in sorted(gate.names):
        if lookup(metrics, name) is MISSING:
            raise GateNameError(gate.text, "metric", [name], _leaf_names(metrics))
    unknown = gate.functions - set(evaluator.functions)
    if unknown:
        raise GateNameError(gate.text, "function", unknown, evaluator.functions)
    left: float | None = None
    try:
        left = evaluator.value(gate.left)
        right = evaluator.value(gate.right)
    except _Undefined as undefined:
        return GateOutcome(expression=gate.text, value=left, passed=False, reason=str(undefined))
    except NoHistory as missing:
        return GateOutcome(expression=gate.text, value=left, passed=True, skipped=True, reason=str(missing))
    reason = None
    if evaluator.notes:
        reason = "; ".join(evaluator.notes)
        if not isinstance(gate.right, Call):
            reason += f"; {render(gate.right)} = {right:.4g}"
    return GateOutcome(
        expression=gate.text, value=left, passed=COMPARISONS[gate.op](left, right), reason=reason
    )
