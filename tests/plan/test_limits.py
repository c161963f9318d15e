"""Hostile plan, experiment and gate text: exit 2 with file, line and what was expected; never a
traceback, a hang or an impossible value accepted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli
from harness.chaos import experiment as chaos_experiment
from harness.errors import InputError
from harness.plan import gates, loading

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "experiments" / "plans" / "local-quick.yaml"
EXPERIMENT = ROOT / "experiments" / "local" / "replica-kill.yaml"

MINIMAL = f"""\
name: t
load: {{locustfile: {ROOT / "loadtests" / "subscriptions.py"}}}
scenarios:
  - {{name: replica-kill, experiment: {EXPERIMENT}}}
"""


def harness(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the console entry point in this process: any exception but the documented ones
    escapes and fails the test with its traceback."""
    argv = sys.argv
    sys.argv = ["harness", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def laughs(levels: int) -> str:
    """A "billion laughs": each level an anchor holding nine aliases of the one before."""
    text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for level in range(1, levels + 1):
        text += f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]\n"
    return text


BAD_FILES: dict[str, tuple[str, str, str]] = {
    # name: (file name, text, expected in the message, after "file:line: ")
    "control-character": (
        "plan.yaml",
        QUICK.read_text() + "\x01\n",
        f":{len(QUICK.read_text().splitlines()) + 1}: control character U+0001 at column 1",
    ),
    "nul": ("plan.yaml", QUICK.read_text().replace("\n", "\n\x00", 1), ":2: a NUL character at column 1"),
    "recursive-alias": ("plan.yaml", "x: &a [*a]\n", ":1: expected no recursive alias"),
    "recursive-merge": ("plan.yaml", "x: &a {<<: *a}\n", ":1: expected no recursive alias"),
    "deep-yaml-lists": ("plan.yaml", "x: " + "[" * 500 + "]" * 500 + "\n", ":1: expected at most 64 levels"),
    "deep-yaml-mappings": (
        "plan.yaml",
        "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n",
        ":64: expected at most 64 levels",
    ),
    "deep-json": ("plan.json", "[" * 2000 + "]" * 2000, ":1: expected at most 64 levels"),
    "deep-json-lines": ("plan.json", '{"a":\n' * 100 + "1" + "}" * 100, ":65: expected at most 64 levels"),
    "deep-through-aliases": (
        "plan.yaml",
        "a0: &a0 "
        + "[" * 40
        + "]" * 40
        + "\n"
        + "".join(f"a{i}: &a{i} {'[' * 40}*a{i - 1}{']' * 40}\n" for i in range(1, 4)),
        ":2: expected at most 64 levels",
    ),
    "billion-laughs": ("plan.yaml", laughs(8), "expected at most 100,000 values once aliases are expanded"),
    "huge-integer": (
        "plan.yaml",
        MINIMAL + "cost: {per_hour_usd: " + "9" * 5000 + "}\n",
        ":5: cannot read the value",
    ),
    "huge-json-integer": ("plan.json", '{"name": ' + "9" * 5000 + "}", "Exceeds the limit"),
    "impossible-date": (
        "plan.yaml",
        MINIMAL + "description: 2020-13-45\n",
        ":5: cannot read the value '2020-13-45' (month must be in 1..12)",
    ),
    "not-utf8": (
        "plan.yaml",
        "name: t\ndescription: caf\udce9\n",
        ": cannot read the file: not UTF-8 text (byte 0xe9)",
    ),
}


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


class TestHostileFilesAtTheCommandLine:
    """`harness validate` and `harness run --dry-run`: exit 2 naming file and line, in well
    under a second, for files that used to raise a traceback or hang."""

    @pytest.mark.parametrize("case", BAD_FILES, ids=str)
    @pytest.mark.parametrize("command", [["validate"], ["run", "--dry-run"]], ids=["validate", "run"])
    def test_exit_2_with_file_and_line(
        self, case: str, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        name, text, expected = BAD_FILES[case]
        path = write(tmp_path / name, text)
        started = time.monotonic()
        code, output = harness(*command, str(path), capsys=capsys)
        assert time.monotonic() - started < 5
        assert code == 2, output
        assert f"{path}{expected}" in output or (expected in output and str(path) in output), output
        assert "Traceback" not in output

    @pytest.mark.parametrize("case", ["control-character", "deep-yaml-lists", "deep-json", "billion-laughs"])
    def test_experiment_files_too(
        self, case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An experiment is read by the same loader: alone (`validate`), named by a plan, and
        when the engine loads it to run."""
        name, text, expected = BAD_FILES[case]
        experiment = write(tmp_path / name.replace("plan", "experiment"), text)
        code, output = harness("validate", str(experiment), capsys=capsys)
        assert code == 2 and expected in output and str(experiment) in output, output
        plan = write(tmp_path / "plan.yaml", MINIMAL.replace(str(EXPERIMENT), str(experiment)))
        code, output = harness("validate", str(plan), capsys=capsys)
        assert code == 2 and expected in output and str(experiment) in output, output
        with pytest.raises(InputError, match=re.escape(expected.lstrip(":0123456789 "))):
            chaos_experiment.load(experiment)

    def test_fifo_is_refused_at_once(self, tmp_path: Path) -> None:
        """A named pipe given as the plan (or experiment) is refused before anything waits on it."""
        fifo = tmp_path / "plan.yaml"
        os.mkfifo(fifo)
        for args in (["validate", str(fifo)], ["run", "--dry-run", str(fifo)]):
            result = subprocess.run(
                [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=30
            )
            assert result.returncode == 2, result.stderr
            assert str(fifo) in result.stderr and "Traceback" not in result.stderr
        with pytest.raises(loading.FileProblemsError, match=r"expected a regular file \(got a named pipe"):
            loading.read_data(fifo)
        with pytest.raises(InputError, match="named pipe"):
            chaos_experiment.load(fifo)

    def test_device_is_refused(self) -> None:
        with pytest.raises(loading.FileProblemsError, match=r"got a character device"):
            loading.read_data(Path("/dev/zero"))

    def test_file_too_large(self, tmp_path: Path) -> None:
        big = write(tmp_path / "plan.yaml", "# " + "x" * loading.MAX_FILE_BYTES + "\n")
        with pytest.raises(loading.PlanError, match="larger than 1,048,576 bytes"):
            loading.load_plan(big)


class TestHostilePaths:
    @pytest.mark.parametrize(
        ("arg", "validate", "run"),
        [
            ("a" * 300 + ".yaml", "a name in the path is 305 bytes long; at most 255", None),
            ("/".join(["abcdefghij"] * 500), "the path is 5499 bytes long; at most 4095", None),
            # typer refuses a NUL in a FILES argument itself (no shell can pass one anyway)
            ("plan\x00.yaml", "embedded null byte", "the path contains a NUL character"),
            ("~no-such-user-here/plan.yaml", "No such file or directory", "does not exist"),
        ],
        ids=["long-name", "long-path", "nul", "unknown-home"],
    )
    def test_plan_argument(
        self, arg: str, validate: str, run: str | None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for command, expected in ((["validate"], validate), (["run", "--dry-run"], run or validate)):
            code, output = harness(*command, arg, capsys=capsys)
            assert code == 2, output
            assert expected in output
            assert "Traceback" not in output

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ('"' + "a" * 300 + '.yaml"', "expected a file path: a name in the path is 305 bytes long"),
            ('"experiments/\\0x.yaml"', "expected a file path: the path contains a NUL character"),
            ('"experiments/\\ud800.yaml"', "expected a file path: the path contains a character no file"),
            ("~no-such-user-here/x.yaml", "file '~no-such-user-here/x.yaml' not found"),
        ],
        ids=["long-name", "nul", "surrogate", "unknown-home"],
    )
    def test_paths_inside_a_plan(
        self, value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plan = write(tmp_path / "plan.yaml", MINIMAL.replace(str(EXPERIMENT), value))
        for command in (["validate"], ["run", "--dry-run"]):
            code, output = harness(*command, str(plan), capsys=capsys)
            assert code == 2, output
            assert f"{plan}:4: scenarios.0.experiment: {expected}" in output, output
            assert "Traceback" not in output


IMPOSSIBLE = [
    # (key path in the plan, value, line it is reported at, expected)
    ("windows", "{observe_s: .inf}", "windows.observe_s: expected a finite number"),
    ("windows", "{observe_s: 1e308}", "windows.observe_s: expected a number <= 86400"),
    ("windows", "{baseline_s: .inf}", "windows.baseline_s: expected a finite number"),
    ("windows", "{warmup_s: 1e308}", "windows.warmup_s: expected a number <= 3600"),
    ("windows", "{stability_s: .nan}", "windows.stability_s: expected a finite number"),
    (
        "load",
        "{locustfile: loadtests/subscriptions.py, pacing_s: .inf}",
        "load.pacing_s: expected a finite number",
    ),
    (
        "load",
        "{locustfile: loadtests/subscriptions.py, pacing_s: 1e308}",
        "load.pacing_s: expected a number <= 3600",
    ),
    (
        "load",
        "{locustfile: loadtests/subscriptions.py, users: 1000000000}",
        "load.users: expected a number <= 100000",
    ),
    (
        "load",
        "{locustfile: loadtests/subscriptions.py, spawn_rate: .inf}",
        "load.spawn_rate: expected a finite number",
    ),
    ("abort", "[{metric: error_rate, above: 0.5, for_s: .inf}]", "abort.0.for_s: expected a finite number"),
    (
        "abort",
        "[{metric: error_rate, above: 0.5, for_s: 1e308}]",
        "abort.0.for_s: expected a number <= 86400",
    ),
    ("abort", "[{metric: error_rate, above: .nan}]", "abort.0.above: expected a finite number"),
    ("abort", "[{metric: p95_ms, below: -.inf}]", "abort.0.below: expected a finite number"),
    (
        "abort",
        "[{metric: error_rate, above: 2}]",
        "abort.0.above: expected a number <= 1: error_rate is a share",
    ),
    ("abort", "[{metric: p95_ms, above: -5}]", "abort.0.above: expected a number >= 0"),
    ("cost", "{per_hour_usd: .inf}", "cost.per_hour_usd: expected a finite number"),
    ("cost", "{per_hour_usd: 1e300}", "cost.per_hour_usd: expected a number <= 1e+12"),
    ("slo", "{p95_ms: .inf}", "slo.p95_ms: expected a finite number"),
    ("slo", "{error_rate: .nan}", "slo.error_rate: expected a finite number"),
]


class TestImpossibleValues:
    """Every number in a plan is finite and within a range that can mean something."""

    @pytest.mark.parametrize(
        ("key", "value", "expected"), IMPOSSIBLE, ids=[c[2].split(":")[0] + c[1][-12:] for c in IMPOSSIBLE]
    )
    def test_refused_at_its_line(self, key: str, value: str, expected: str, tmp_path: Path) -> None:
        text = MINIMAL if key != "load" else MINIMAL.replace(MINIMAL.splitlines()[1], "")
        plan = write(tmp_path / "plan.yaml", text.rstrip("\n") + f"\n{key}: {value}\n")
        line = len(plan.read_text().splitlines())
        with pytest.raises(loading.PlanError) as caught:
            loading.load_plan(plan)
        assert f"{plan}:{line}: {expected}" in str(caught.value)

    def test_non_finite_variable_refused(self, tmp_path: Path) -> None:
        plan = write(
            tmp_path / "plan.yaml",
            MINIMAL.replace("replica-kill, experiment", "replica-kill, vars: {x: .nan}, experiment"),
        )
        with pytest.raises(
            loading.PlanError, match=r"plan.yaml:4: scenarios\.0\.vars\.x: expected a finite number"
        ):
            loading.load_plan(plan)

    @pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
    def test_json_non_finite_numbers_refused(self, literal: str, tmp_path: Path) -> None:
        """JSON's parser accepts NaN, Infinity and 1e400 (as inf); the plan does not."""
        data = {
            "name": "t",
            "load": {"locustfile": str(ROOT / "loadtests" / "subscriptions.py")},
            "scenarios": [{"name": "replica-kill", "experiment": str(EXPERIMENT)}],
            "cost": {"per_hour_usd": "X"},
        }
        plan = write(tmp_path / "plan.json", json.dumps(data, indent=1).replace('"X"', literal))
        with pytest.raises(loading.PlanError, match=r"cost\.per_hour_usd: expected a finite number"):
            loading.load_plan(plan)

    def test_the_bounds_allow_the_bundled_plans(self) -> None:
        for plan in loading.bundled_plans():
            loading.load_plan(plan)


class TestHostileGates:
    @pytest.mark.parametrize(
        ("text", "column", "expected"),
        [
            ("(" * 200 + "error_rate" + ")" * 200 + " < 1", 33, "at most 32 levels of nesting"),
            ("-" * 400 + "error_rate < 1", 33, "at most 32 levels of nesting"),
            ("error_rate" + " + error_rate" * 32 + " < 1", 1, "at most 32 levels of nesting"),
            ("f(" * 100 + "1" + ")" * 100 + " < 1", 66, "at most 32 levels of nesting"),
            ("error_rate" + " + 1" * 1000 + " < 1", 501, "at most 500 characters"),
            ("-" * 1000 + "error_rate < 1", 501, "at most 500 characters"),
            ("error_rate < 1e999", 14, "a finite number"),
            ("error_rate < " + "9" * 400, 14, "a finite number"),
        ],
        ids=[
            "parentheses",
            "unary-minus",
            "chained-plus",
            "calls",
            "long-chain",
            "long-minus",
            "1e999",
            "many-digits",
        ],
    )
    def test_refused_with_column(self, text: str, column: int, expected: str) -> None:
        with pytest.raises(gates.GateSyntaxError) as caught:
            gates.parse(text)
        assert (caught.value.column, caught.value.expected.startswith(expected)) == (column, True)
        assert len(str(caught.value)) < 400  # the gate is shortened in the message, not echoed whole

    def test_the_deepest_allowed_gate_parses_renders_and_evaluates(self) -> None:
        text = "error_rate" + " + 1" * (gates.MAX_GATE_DEPTH - 1) + " < 100"
        gate = gates.parse(text)
        assert gates.parse(f"{gates.render(gate.left)} < 100") == gates.Gate(
            f"{gates.render(gate.left)} < 100", "<", gate.left, gate.right
        )
        assert gates.evaluate(gate, {"error_rate": 0.5}).passed

    def test_large_finite_numbers_read_back(self) -> None:
        gate = gates.parse("error_rate < 1.7e308")
        assert gates.parse(f"error_rate < {gates.render(gate.right)}").right == gate.right

    @pytest.mark.parametrize(
        "gate",
        [
            "(" * 300 + "error_rate" + ")" * 300 + " < 1",
            "error_rate" + " + 1" * 1000 + " < 1",
            "error_rate < 1e999",
        ],
        ids=["parentheses", "chain", "1e999"],
    )
    def test_in_a_plan_exit_2_at_its_line(
        self, gate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        plan = write(tmp_path / "plan.yaml", MINIMAL + f"gates:\n  - {gate!r}\n")
        for command in (["validate"], ["run", "--dry-run"]):
            code, output = harness(*command, str(plan), capsys=capsys)
            assert code == 2, output
            assert f"{plan}:6: gates.0: gate " in output and "Traceback" not in output
