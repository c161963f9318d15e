"""No secret in any output: the dry run, error messages and `validate`, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import redaction

ROOT = Path(__file__).resolve().parents[2]
DSN_PASSWORD = "DsnPass42x"
TOKEN = "TokSecret77abc"
VAR_PASSWORD = "VarSecret99"


def harness(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def plan(tmp: Path, experiment: Path, *, target: dict | None = None, load: dict | None = None,
         vars: dict | None = None) -> Path:  # fmt: skip
    (tmp / "locustfile.py").write_text("")
    body = {
        "name": "secrets",
        "target": target or {"kind": "testbed", "profile": "managed"},
        "load": {"locustfile": str(tmp / "locustfile.py"), "host": "auto", **(load or {})},
        "scenarios": [{"name": "s", "experiment": str(experiment), "vars": vars or {}}],
    }
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def env_experiment(tmp: Path) -> Path:
    """An activity whose arguments come from the environment: a DSN and a bearer token."""
    path = tmp / "env.yaml"
    path.write_text(yaml.safe_dump({
        "title": "env", "description": "configuration read from the environment",
        "configuration": {"db_dsn": {"type": "env", "key": "SUBS_DB_DSN"},
                          "api": {"type": "env", "key": "SUBS_API_TOKEN"}},
        "method": [{"type": "action", "name": "poke", "provider": {
            "type": "python", "module": "json", "func": "dumps",
            "arguments": {"obj": "${db_dsn}", "header": "Bearer ${api}", "admin": "${admin_password}",
                          "note": "plain"}}}],
    }))  # fmt: skip
    return path


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output, output
    assert "Traceback" not in output


def test_the_dry_run_masks_environment_secrets_and_url_passwords(tmp_path: Path) -> None:
    """The arguments are shown after substitution, but a URL's password, a `type: env` value named
    like a secret and a var named like a password are masked; the rest stays readable."""
    path = plan(tmp_path, env_experiment(tmp_path), vars={"admin_password": VAR_PASSWORD})
    env = {"SUBS_DB_DSN": f"postgresql://subs:{DSN_PASSWORD}@db.internal:5432/subs", "SUBS_API_TOKEN": TOKEN}
    result = harness("run", str(path), "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result, DSN_PASSWORD, TOKEN, VAR_PASSWORD)
    assert "postgresql://subs:***@db.internal:5432/subs" in result.stdout
    assert "header='Bearer ***'" in result.stdout
    assert "note='plain'" in result.stdout


def test_a_load_host_with_a_password_is_named_with_the_password_masked(tmp_path: Path) -> None:
    """A bad load.host is reported (field, problem, exit 2) without its password."""
    host = f"ftp://admin:{DSN_PASSWORD}@subs.example:8000"
    path = plan(tmp_path, ROOT / "experiments/local/replica-kill.yaml", load={"host": host})
    for args in (["validate", str(path)], ["run", str(path), "--dry-run"]):
        result = harness(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert_no_secret(result, DSN_PASSWORD)
        assert "load.host: expected 'auto' or an http(s) URL" in result.stderr
        assert "ftp://admin:***@subs.example:8000" in result.stderr


def test_a_bad_var_named_like_a_password_is_not_echoed(tmp_path: Path) -> None:
    path = plan(tmp_path, ROOT / "experiments/local/replica-kill.yaml", vars={"db_password": [VAR_PASSWORD]})
    result = harness("validate", str(path))
    assert result.returncode == 2
    assert_no_secret(result, VAR_PASSWORD)
    assert "scenarios.0.vars.db_password: expected a string, a number or a boolean" in result.stderr


@pytest.mark.parametrize(
    ("db", "code", "needle"),
    [
        # Port 1 on this machine: nothing listens, the database cannot be prepared.
        (f"postgresql://subs:{DSN_PASSWORD}@127.0.0.1:1/subs", 3, "postgresql://subs:***@127.0.0.1:1/subs"),
        (f"mysql://subs:{DSN_PASSWORD}@127.0.0.1:1/subs", 2, "--db: "),
    ],
)
def test_app_serve_db_errors_mask_the_password(db: str, code: int, needle: str) -> None:
    result = harness("app", "serve", "--db", db, "--db-timeout-s", "0.5")
    assert result.returncode == code, result.stderr
    assert_no_secret(result, DSN_PASSWORD)
    assert needle in result.stderr


def test_validate_refuses_secrets_that_leave_the_plans_context(tmp_path: Path) -> None:
    """What `run --dry-run` refuses, `validate` refuses too: same message, exit 2, no cluster needed."""
    experiment = tmp_path / "sneaky.yaml"
    text = (ROOT / "experiments/kubernetes/pod-kill.yaml").read_text()
    experiment.write_text(text + "\nsecrets:\n  k8s:\n    KUBERNETES_CONTEXT: production\n")
    target = {"kind": "kubernetes", "context": "test-cluster", "allowed_contexts": ["test-cluster"],
              "namespace": "subs", "selector": "app=subs"}  # fmt: skip
    path = plan(tmp_path, experiment, target=target, load={"host": "http://subs.example:8000"})
    env = {"KUBECONFIG": str(tmp_path / "no-kubeconfig")}  # nothing to reach, and nothing is reached
    validated = harness("validate", str(path), env=env)
    dry = harness("run", str(path), "--dry-run", env=env)
    assert validated.returncode == dry.returncode == 2, validated.stdout + validated.stderr
    assert "secrets.k8s.KUBERNETES_CONTEXT" in validated.stderr
    assert validated.stderr == dry.stderr
    assert "valid plan" not in validated.stdout


def test_a_journal_masks_url_passwords_and_environment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """journal.json: a run record's arguments hold the substituted values, under harmless names."""
    monkeypatch.setenv("SUBS_API_TOKEN", TOKEN)
    journal = {
        "experiment": {"configuration": {"api": {"type": "env", "key": "SUBS_API_TOKEN"}}},
        "run": [{"activity": {"provider": {"arguments": {
            "dsn": f"postgresql://subs:{DSN_PASSWORD}@db/subs", "header": f"Bearer {TOKEN}"}}},
            "output": f"connected to postgresql://subs:{DSN_PASSWORD}@db/subs"}],
    }  # fmt: skip
    text = str(redaction.journal(journal))
    assert DSN_PASSWORD not in text and TOKEN not in text
    assert "postgresql://subs:***@db/subs" in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:pw1@h:5432/x", "postgresql://u:***@h:5432/x"),
        ("u:pw1@h", "u:***@h"),
        ("?sslmode=require&password=pw1", "?sslmode=require&password=***"),
        ("db_password='pw1', qty=1", "db_password='***', qty=1"),
        ("http://h:8000/path and selector app=subs", "http://h:8000/path and selector app=subs"),
    ],
)
def test_text_masks_passwords_and_leaves_the_rest(text: str, shown: str) -> None:
    assert redaction.text(text) == shown


def test_a_tag_key_is_not_a_secret_but_an_api_key_is() -> None:
    """`Key` of an AWS tag or a selector requirement names something; an api_key holds a secret."""
    scrubbed = redaction.scrub({"tags": [{"Key": "team", "Value": "subs"}], "api_key": "k"})
    assert scrubbed == {"tags": [{"Key": "team", "Value": "subs"}], "api_key": redaction.REDACTED}


class _Stop(Exception):
    pass


def test_the_run_folders_plan_masks_secrets_and_still_rescores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan.json (read by `harness score` and `compare`) keeps no var named like a password and no
    password in load.host; it still loads as a plan."""
    from harness.engine import runner
    from harness.engine.progress import Progress
    from harness.plan import loading
    from harness.plan.models import Plan
    from harness.store import rundir

    host = f"http://subs:{DSN_PASSWORD}@subs.example:8000"
    path = plan(tmp_path, ROOT / "experiments/local/replica-kill.yaml", load={"host": host},
                vars={"db_password": VAR_PASSWORD})  # fmt: skip
    engine = runner.Engine(
        loading.load_plan(path), tmp_path / "reports", tmp_path / "testbed", Progress(quiet=True)
    )

    def stop(self: object) -> None:
        raise _Stop  # plan.json is written; nothing else is needed

    monkeypatch.setattr(runner.Engine, "checkpoint", stop)
    with pytest.raises(_Stop):
        engine.run()
    text = (engine.run_dir / rundir.PLAN).read_text()
    assert DSN_PASSWORD not in text and VAR_PASSWORD not in text
    kept = Plan.model_validate(rundir.read_json(engine.run_dir / rundir.PLAN))
    assert kept.load.host == "http://subs:***@subs.example:8000"
    assert kept.scenarios[0].vars == {"db_password": redaction.REDACTED}


def test_a_gate_is_not_taken_for_a_password_query() -> None:
    assert redaction.text("tokens_used==0 and password=x") == "tokens_used==0 and password=***"
