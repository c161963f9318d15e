"""result.json's model: real results read and written back byte for byte; malformed ones refused
naming the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from harness import result as result_model
from harness.errors import InputError
from harness.result import files

RUNS = sorted((Path(__file__).parents[1] / "fixtures" / "runs").iterdir())


def _fixture() -> dict[str, Any]:
    return json.loads((RUNS[0] / "result.json").read_text())


class TestRoundTrip:
    @pytest.mark.parametrize("run_dir", RUNS, ids=lambda p: p.name)
    def test_recorded_results_are_written_back_byte_for_byte(self, run_dir: Path) -> None:
        """Reading a real result.json and writing it gives the same bytes: key order, nulls, numbers."""
        text = (run_dir / "result.json").read_text()
        assert files.dumps(files.read(run_dir / "result.json")) == text

    def test_numbers_keep_their_type(self) -> None:
        """An int stays an int and a float a float (`10` is not rewritten as `10.0`)."""
        data = _fixture()
        metrics = data["scenarios"][0]["metrics"]
        metrics["kpi_lost"] = 3
        metrics["resilience_score"] = 100.0
        out = files.parse(data).to_json()["scenarios"][0]["metrics"]
        assert out["kpi_lost"] == 3 and type(out["kpi_lost"]) is int
        assert type(out["resilience_score"]) is float

    def test_absent_keys_stay_absent(self) -> None:
        """A key the file leaves out is not written as null (an older result has no generator_late_share)."""
        data = _fixture()
        del data["scenarios"][0]["metrics"]["generator_late_share"]
        del data["scenarios"][0]["load"]
        out = files.parse(data).to_json()["scenarios"][0]
        assert "generator_late_share" not in out["metrics"] and "load" not in out

    def test_target_keeps_backend_facts_in_order(self) -> None:
        """Target facts the model does not name (a lock, a cluster) are kept as written."""
        data = _fixture()
        data["target"]["lock"] = {"kind": "lease", "holder": "ci-7"}
        parsed = files.parse(data)
        assert parsed.target.fact("lock") == {"kind": "lease", "holder": "ci-7"}
        assert list(parsed.to_json()["target"]) == list(data["target"])

    def test_a_not_applicable_scenario_keeps_its_reason(self) -> None:
        """A scenario the target could not run: status not-applicable and why, written back as
        read; it is not applicable, where a recorded scenario without the key is."""
        data = _fixture()
        data["scenarios"].append(
            {"name": "etcd-member-stop", "experiment": "experiments/kubernetes/etcd-member-stop.yaml",
             "trial": 1, "status": "not-applicable", "not_applicable": "managed control plane: eks runs etcd",
             "started": 1.0, "ended": 1.0, "metrics": None, "gates": [], "passed": True}
        )  # fmt: skip
        parsed = files.parse(data)
        skipped = parsed.scenarios[-1]
        assert not skipped.applicable and skipped.not_applicable == "managed control plane: eks runs etcd"
        assert parsed.scenarios[0].applicable and "not_applicable" not in parsed.to_json()["scenarios"][0]
        assert files.parse(json.loads(files.dumps(parsed))) == parsed

    def test_attributes_read_the_run(self) -> None:
        """Readers get typed attributes, not dictionaries."""
        parsed = files.read(RUNS[0] / "result.json")
        scenario = parsed.scenarios[0]
        assert parsed.schema_ == result_model.SCHEMA
        assert scenario.metrics is not None and scenario.metrics.latency_ms is not None
        assert scenario.metrics.latency_ms.recovery is not None
        assert isinstance(scenario.metrics.latency_ms.recovery.p99, float)
        assert scenario.gates[0].expression == "recovery_time_s < 30"


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_fixture())
    change(data)
    return data


class TestRefusals:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda d: d["scenarios"][0].pop("passed"), "field 'scenarios[0].passed' is missing"),
            (lambda d: d.pop("run_id"), "field 'run_id' is missing"),
            (
                lambda d: d["scenarios"][0]["metrics"].update(error_rate="high"),
                "field 'scenarios[0].metrics.error_rate': expected a number (got 'high')",
            ),
            (
                lambda d: d["scenarios"][0]["metrics"]["latency_ms"]["fault"].update(p99=[1]),
                "field 'scenarios[0].metrics.latency_ms.fault.p99': expected a number",
            ),
            (lambda d: d.update(passed="yes"), "field 'passed': input should be a valid boolean"),
            (lambda d: d["scenarios"][0].update(trial="1"), "field 'scenarios[0].trial'"),
            (lambda d: d.update(schema="harness.result/v2"), "field 'schema': expected 'harness.result/v1'"),
            (lambda d: d.pop("schema"), "field 'schema': expected 'harness.result/v1' (got None)"),
            (
                lambda d: d["scenarios"][0]["metrics"].update(recovery_s=1.0),
                "field 'scenarios[0].metrics.recovery_s' is not a result.json field",
            ),
        ],
    )
    def test_malformed_field_is_named(self, tmp_path: Path, change: Any, message: str) -> None:
        """A missing field, a wrong type, another schema or an unknown field: InputError naming file and field."""
        path = tmp_path / "result.json"
        path.write_text(json.dumps(_broken(change)))
        with pytest.raises(InputError) as caught:
            files.read(path)
        assert str(caught.value).startswith(f"{path}: ")
        assert message in str(caught.value)
        assert caught.value.exit_code == 2

    def test_not_json_names_file_and_line(self, tmp_path: Path) -> None:
        """A file cut short is refused with its line."""
        path = tmp_path / "result.json"
        path.write_text('{\n  "schema": "harness.result/v1",\n  "run_id": \n')
        with pytest.raises(files.ResultFileError, match=rf"^{path}:4: not valid JSON"):
            files.read(path)

    def test_not_an_object(self, tmp_path: Path) -> None:
        """A JSON list is not a result."""
        path = tmp_path / "result.json"
        path.write_text("[]")
        with pytest.raises(files.ResultFileError, match="expected a JSON object"):
            files.read(path)

    def test_many_problems_are_counted(self) -> None:
        """Many broken fields: the first few are named and the rest counted, so the message stays short."""
        data = _fixture()
        for key in ("run_id", "status", "passed", "started", "scenarios"):
            data.pop(key)
        with pytest.raises(files.ResultFileError, match=r"; and 2 more$"):
            files.parse(data)
