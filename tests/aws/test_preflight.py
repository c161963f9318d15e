"""The AWS half of `harness preflight` against moto (server mode) and the Kubernetes emulator.

What moto 5.2 can show and what it cannot:
- `DryRun=True` on TerminateInstances, CreateTags, DeleteTags and the describes answers
  `DryRunOperation`, as EC2 does. On the network-ACL actions moto ignores DryRun (it would act,
  or answer NotFound for ids that do not exist): the preflight sends those only ids that cannot
  exist, so nothing changes either way, and reports them as undecided;
- a denied action: with IAM enforcement on (`/moto-api/reset-auth`), moto answers `AccessDenied`
  where EC2 answers `UnauthorizedOperation`; both mean denied, and the test exercises the former;
- `iam:SimulatePrincipalPolicy` is not implemented (moto answers 500): the simulation's verdicts
  are tested with a double that answers as the IAM API documents, and against moto only the
  "could not simulate" warning shows.
Whether a real EC2 checks the permission before the resource id on each action, and what a
real account's SCPs or permission boundaries add, only a live account can show.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml

from harness.kubernetes import awscheck
from harness.kubernetes.checklist import Status
from harness.plan.models import AwsSettings
from tests.aws.conftest import REGION
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, clusters  # noqa: F401 (a fixture)
from tests.kubernetes.test_preflight import lines, run

ROOT = Path(__file__).resolve().parents[2]
TERMINATE = ("nodegroup-instance-terminate", "experiments/aws/nodegroup-instance-terminate.yaml")
BLACKHOLE = ("az-blackhole-nacl", "experiments/aws/az-blackhole-nacl.yaml")


def write_plan(
    tmp: Path, scenarios: tuple[tuple[str, str], ...] = (TERMINATE, BLACKHOLE), aws: bool = True
) -> Path:
    target: dict[str, Any] = {"kind": "kubernetes", "context": "test-cluster", "allowed_contexts": ["test-cluster"],
                              "namespace": NAMESPACE, "selector": SELECTOR}  # fmt: skip
    if aws:
        target["aws"] = {"region": REGION}
    variables = {"cluster_name": "prod", "nodegroup_name": "workers", "availability_zone": f"{REGION}a"}
    plan = {
        "name": "preflight-aws",
        "target": target,
        "load": {
            "locustfile": str(ROOT / "loadtests/subscriptions.py"),
            "host": "http://127.0.0.1:9",
            "users": 1,
        },
        "scenarios": [{"name": n, "experiment": str(ROOT / e), "vars": variables} for n, e in scenarios],
    }
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def ec2_state() -> tuple[int, int, list[str]]:
    ec2 = boto3.client("ec2", region_name=REGION)
    acls = ec2.describe_network_acls()["NetworkAcls"]
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    tags = [t["Key"] for t in ec2.describe_tags()["Tags"]]
    return len(acls), len(instances), tags


@pytest.fixture
def iam_enforced(moto_url: str) -> Iterator[None]:
    """moto checks every request against the caller's IAM policies while the test runs."""
    httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"0", timeout=10).raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"inf", timeout=10).raise_for_status()


def user_with(actions: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """An IAM user allowed exactly `actions`, whose keys the environment then holds; its ARN."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="harness")
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    iam.put_user_policy(UserName="harness", PolicyName="harness", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName="harness")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return "arn:aws:iam::123456789012:user/harness"


@pytest.mark.usefixtures("clusters")
class TestAgainstTheEmulators:
    def test_all_allowed_exits_0_and_changes_nothing(self, aws: dict[str, Any], tmp_path: Path) -> None:
        """Credentials resolve, EC2 dry runs pass; no instance, ACL or tag appears."""
        before = ec2_state()
        result = run(write_plan(tmp_path))
        assert result.exit_code == 0, result.output
        assert lines(result.output, "blocked") == []
        assert f"region {REGION}" in result.output
        assert "EC2 action(s) allowed by dry run" in result.output
        assert "could not simulate" in result.output  # moto has no SimulatePrincipalPolicy
        assert ec2_state() == before

    def test_missing_credentials_block(
        self, aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No credentials anywhere in the chain: exit 2, saying where they come from."""
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):  # fmt: skip
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
        result = run(write_plan(tmp_path))
        assert result.exit_code == 2, result.output
        blocked = lines(result.output, "blocked")
        assert len(blocked) == 1 and "AWS credentials: no credentials found" in blocked[0]
        assert "deploy/iam/harness-policy.json" in blocked[0]

    def test_a_denied_ec2_dry_run_blocks_naming_the_action_and_the_experiment(
        self, aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest,
    ) -> None:  # fmt: skip
        """An identity without ec2:TerminateInstances: exit 2, and the scenario that needs it."""
        user_with(["sts:GetCallerIdentity", "ec2:Describe*", "ec2:CreateTags", "ec2:DeleteTags",
                   "ec2:CreateNetworkAcl", "ec2:CreateNetworkAclEntry", "ec2:ReplaceNetworkAclAssociation",
                   "ec2:DeleteNetworkAcl"], monkeypatch)  # fmt: skip
        request.getfixturevalue("iam_enforced")
        result = run(write_plan(tmp_path))
        assert result.exit_code == 2, result.output
        blocked = lines(result.output, "blocked")
        assert len(blocked) == 1, result.output
        assert "ec2:TerminateInstances denied to arn:aws:iam::123456789012:user/harness" in blocked[0]
        assert "nodegroup-instance-terminate (nodegroup-instance-terminate.yaml): terminate" in blocked[0]
        assert "deploy/iam/harness-policy.json" in blocked[0] and "trust" in blocked[0]

    def test_aws_activities_without_target_aws_block(self, tmp_path: Path) -> None:
        """An AWS experiment in a plan with no target.aws: nowhere to take the region from."""
        result = run(write_plan(tmp_path, (TERMINATE,), aws=False))
        assert result.exit_code == 2, result.output
        assert "no target.aws" in lines(result.output, "blocked")[0]

    def test_the_shipped_policy_is_compared_with_what_the_experiments_call(
        self, aws: dict[str, Any], tmp_path: Path
    ) -> None:
        """A policy file lacking an action the experiments call is named; a complete one passes."""
        actions = {
            "ec2:TerminateInstances": ["a: b"],
            "ec2:DescribeInstances": ["a: b"],
            "fis:StopExperiment": ["c: d"],
        }
        policy = tmp_path / "harness-policy.json"
        statement = {
            "Effect": "Allow",
            "Action": ["ec2:Describe*", "ec2:TerminateInstances"],
            "Resource": "*",
        }
        policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
        checks = list(awscheck.check(AwsSettings(region=REGION), actions, policy=policy))
        shipped = [c for c in checks if c.name == "AWS IAM policy"]
        assert shipped[0].status is Status.WARNING and "fis:StopExperiment" in shipped[0].reason
        statement["Action"].append("fis:*")
        policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
        checks = list(awscheck.check(AwsSettings(region=REGION), actions, policy=policy))
        assert [c.status for c in checks if c.name == "AWS IAM policy"] == [Status.OK]


class TestWhenStsDoesNotAnswer:
    @pytest.fixture
    def closed_endpoint(self, aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
        """AWS_ENDPOINT_URL at a port nothing listens on: a network path to AWS that is down."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    @pytest.mark.usefixtures("closed_endpoint")
    def test_a_known_region_is_unreachable(self) -> None:
        """STS does not answer in a real region: could not complete (exit 3), not bad input."""
        checks = list(awscheck.check(AwsSettings(region=REGION), {"ec2:DescribeInstances": ["a: b"]}))
        assert [c.status for c in checks] == [Status.UNREACHABLE]

    @pytest.mark.usefixtures("closed_endpoint")
    def test_an_unknown_region_blocks(self) -> None:
        """A typo in target.aws.region is bad input (exit 2), not an unreachable AWS."""
        checks = list(awscheck.check(AwsSettings(region="eu-wset-1"), {"ec2:DescribeInstances": ["a: b"]}))
        assert [c.status for c in checks] == [Status.WARNING, Status.BLOCKED]
        assert "correct target.aws.region" in checks[1].fix


class FakeIam:
    """Answers simulate_principal_policy as the IAM API documents it, from a set of allowed actions."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[dict[str, Any]] = []

    def simulate_principal_policy(self, **kwargs: Any) -> dict[str, Any]:
        self.asked.append(kwargs)
        return {
            "EvaluationResults": [
                {
                    "EvalActionName": a,
                    "EvalResourceName": "*",
                    "EvalDecision": "allowed" if a in self.allowed else "implicitDeny",
                }
                for a in kwargs["ActionNames"]
            ],
            "IsTruncated": False,
        }


class TestTheIamSimulation:
    def test_a_denied_action_blocks_naming_who_needs_it_and_the_shipped_files(self) -> None:
        """An implicitDeny for fis:StartExperiment: blocked, with the policy and trust files to fix it."""
        iam = FakeIam({"ec2:TerminateInstances"})
        actions = {"ec2:TerminateInstances": ["kill: terminate"], "fis:StartExperiment": ["az: start-fis"]}
        checks = list(awscheck.simulate_checks(iam, "arn:aws:sts::1:assumed-role/harness/s", actions, "FIX"))
        assert iam.asked[0]["PolicySourceArn"] == "arn:aws:iam::1:role/harness"
        assert [
            (c.status, "fis:StartExperiment" in c.reason, "az: start-fis" in c.reason) for c in checks
        ] == [(Status.BLOCKED, True, True)]
        assert "harness-policy.json" in awscheck.fix_text() and "trust" in awscheck.fix_text()

    def test_all_allowed_is_one_ok_line(self) -> None:
        checks = list(awscheck.simulate_checks(FakeIam({"ssm:SendCommand"}), "arn:aws:iam::1:user/u",
                                               {"ssm:SendCommand": ["x"]}, "FIX"))  # fmt: skip
        assert [c.status for c in checks] == [Status.OK]

    @pytest.mark.parametrize(
        ("code", "status"),
        [
            ("DryRunOperation", Status.OK),
            ("UnauthorizedOperation", Status.BLOCKED),
            ("AccessDenied", Status.BLOCKED),
            ("InvalidInstanceID.NotFound", None),
        ],
    )
    def test_dry_run_answers(self, code: str, status: Status | None) -> None:
        """EC2's DryRun codes: allowed, denied (EC2's and moto's spelling), or undecided."""
        assert awscheck.dry_run_outcome(code) is status

    def test_policy_patterns_match_case_insensitively(self) -> None:
        assert awscheck.missing_from_policy(
            ["ec2:DescribeInstances", "ssm:SendCommand"], ["EC2:describe*"]
        ) == ["ssm:SendCommand"]


def test_the_shipped_iam_policy_allows_every_aws_action_of_the_catalog() -> None:
    """deploy/iam/harness-policy.json covers what the permission table says the bundled catalog calls."""
    from harness.kubernetes import permissions

    if not awscheck.POLICY.exists():
        pytest.skip(f"{awscheck.POLICY} is not shipped")
    needed = set()
    for path in sorted(
        [*(ROOT / "experiments/kubernetes").glob("*.yaml"), *(ROOT / "experiments/aws").glob("*.yaml")]
    ):
        experiment = yaml.safe_load(path.read_text())
        steady = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
        for activity in [*steady, *(experiment.get("method") or []), *(experiment.get("rollbacks") or [])]:
            provider = activity.get("provider") or {}
            entry = permissions.ACTIVITIES.get(f"{provider.get('module')}.{provider.get('func')}")
            needed.update(entry.aws if entry else ())
    allowed = awscheck.policy_actions(json.loads(awscheck.POLICY.read_text()))
    assert awscheck.missing_from_policy(sorted(needed), allowed) == []
