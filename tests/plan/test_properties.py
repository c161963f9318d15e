"""Generated plans and gates: nothing but the documented errors (PlanError, GateError; exit 2).

Bounded so that the whole set runs in seconds: few examples, a deadline, no example database.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.plan import gates, loading, models

BUNDLED = [p.read_text() for p in loading.bundled_plans()]
BOUNDED = settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FOLDER = Path(tempfile.mkdtemp(prefix="plan-properties-"))


def load(text: str, suffix: str = ".yaml") -> models.Plan | None:
    """Load a plan from text; None for a PlanError with exit code 2, anything else escapes."""
    path = FOLDER / f"plan{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        plan = loading.load_plan(path)
    except loading.PlanError as exc:
        assert exc.exit_code == 2 and str(path) in str(exc)
        return None
    for model in _models(plan):
        for name, value in model:
            if isinstance(value, float):
                assert math.isfinite(value), (name, value)
    return plan


def _models(model: models.BaseModel) -> list[models.BaseModel]:
    found = [model]
    for _, value in model:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, models.BaseModel):
                found += _models(item)
    return found


YAML_PIECES = st.sampled_from(
    [
        ":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "&b ", "*b", "!!binary ", "!!python/name:os.system",
        "<<: ", "? ", "|", ">", "'", '"', "#", "\n", "\n  ", "\t", " ", "\x00", "\x01", "\ufeff", "\ud800",
        ".inf", "-.inf", ".nan", "1e308", "1e999", "-1", "0", "9" * 50, "~", "null", "true", "2020-13-45",
        "name", "load", "scenarios", "gates", "windows", "observe_s", "users", "abort", "cost",
        "locustfile", "experiment", "a", "é", "\\0", "\\ud800",
    ]
)  # fmt: skip
YAML_TEXT = st.lists(YAML_PIECES, max_size=60).map("".join)


@BOUNDED
@given(text=st.one_of(YAML_TEXT, st.text(max_size=200)))
def test_generated_yaml_text(text: str) -> None:
    load(text)


@BOUNDED
@given(text=st.one_of(YAML_TEXT, st.text(alphabet='[]{}":,0123456789.eE-+ \ntruefalsnNaIiy', max_size=200)))
def test_generated_json_text(text: str) -> None:
    load(text, ".json")


@st.composite
def mutated_plan(draw: st.DrawFn) -> str:
    """A bundled plan with a few cuts, insertions and replaced lines."""
    text = draw(st.sampled_from(BUNDLED))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(text)))
        match draw(st.sampled_from(["insert", "delete", "value", "line"])):
            case "insert":
                text = text[:where] + draw(YAML_PIECES) + text[where:]
            case "delete":
                text = text[:where] + text[where + draw(st.integers(1, 20)) :]
            case "value":  # replace what follows the next ": " on a line
                lines = text.split("\n")
                index = draw(st.integers(0, len(lines) - 1))
                key, sep, _ = lines[index].partition(": ")
                if sep:
                    lines[index] = key + sep + draw(st.one_of(YAML_TEXT, YAML_PIECES))
                text = "\n".join(lines)
            case "line":  # duplicate a line elsewhere
                lines = text.split("\n")
                lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(lines)))
                text = "\n".join(lines)
    return text


@BOUNDED
@given(text=mutated_plan())
def test_mutated_bundled_plans(text: str) -> None:
    load(text)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def plan_with_a_value(draw: st.DrawFn) -> str:
    """A bundled plan with one key's value replaced by generated data (NaN, inf, huge numbers,
    lists, mappings), written back as YAML."""
    data = yaml.safe_load(draw(st.sampled_from(BUNDLED[2:4])))  # the testbed plans
    section = draw(
        st.sampled_from(["load", "windows", "slo", "cost", "abort", "scenarios", "gates", "target"])
    )
    value = draw(JSONISH)
    if isinstance(data.get(section), dict) and draw(st.booleans()):
        key = draw(st.sampled_from([*data[section], "observe_s", "users", "pacing_s", "per_hour_usd"]))
        data[section] = {**data[section], key: value}
    elif section == "abort":
        metric = draw(st.sampled_from(["error_rate", "p95_ms"]))
        data["abort"] = [{"metric": metric, draw(st.sampled_from(["above", "below", "for_s"])): value}]
    else:
        data[section] = value
    return yaml.safe_dump(data, allow_unicode=True)


@BOUNDED
@given(text=plan_with_a_value())
def test_plans_with_generated_values(text: str) -> None:
    load(text)


GATE_PIECES = st.sampled_from(
    [
        "error_rate", "recovery_time_s", "latency_ms.fault.p95", "median_last", "inf", "nan", "x",
        "(", ")", ",", "-", "+", "*", "/", "<", "<=", ">", ">=", "==", "!=", "=", " ",
        "0", "1", "1.5", ".5", "1e3", "1e999", "1e-999", "9" * 400, "\x00", "é",
    ]
)  # fmt: skip
GATE_TEXT = st.lists(GATE_PIECES, max_size=80).map("".join)


@settings(BOUNDED, max_examples=300, deadline=500)
@given(text=st.one_of(GATE_TEXT, st.text(max_size=100)), value=st.one_of(st.none(), st.floats()))
def test_generated_gates(text: str, value: float | None) -> None:
    """A gate parses, or fails with GateError; a parsed gate renders to text that reads back as
    the same tree, and evaluates to a result for any metric values."""
    try:
        gate = gates.parse(text)
        gates.validate_names(gate, gates.METRIC_NAMES)
    except gates.GateError as exc:
        assert exc.exit_code == 2
        return
    for side in (gate.left, gate.right):
        assert gates.parse(f"{gates.render(side)} == 0").left == side
    metrics = {name: value for name in gates.METRIC_NAMES}
    result = gates.evaluate(gate, metrics, {f: lambda n: value for f in gates.HISTORY_FUNCTIONS})
    assert isinstance(result.passed, bool)
