"""deploy/iam/ against the code: every AWS call the activities, the catalog's chaosaws functions,
the dry run, the sampler's instance states and the preflight make is allowed by harness-policy.json, and the policy allows
nothing else; every document is a well-formed IAM policy (or trust policy) document."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import boto3
import pytest
from chaoslib.loader import load_experiment

ROOT = Path(__file__).parents[2]
IAM = ROOT / "deploy" / "iam"
SOURCES = (
    ROOT / "harness" / "chaos" / "activities" / "aws.py",
    ROOT / "harness" / "kubernetes" / "dryrun.py",
    ROOT / "harness" / "kubernetes" / "instances.py",  # the sampler's instance states
)
CHAOSAWS = {
    # the chaosaws functions the catalog calls directly, and the calls they make
    ("chaosaws.asg.probes", "desired_equals_healthy"): {"autoscaling:DescribeAutoScalingGroups"},
}
PREFLIGHT = {"sts:GetCallerIdentity", "iam:SimulatePrincipalPolicy"}
"""What `harness preflight` calls besides the experiments' actions (it simulates the identity's
permissions for those, and DryRun-calls the EC2 ones, which need the same actions)."""
IMPLIED = {
    # a call that needs a second permission besides its own
    "scheduler:CreateSchedule": {"iam:PassRole"},  # the schedule's target RoleArn
    "scheduler:UpdateSchedule": {"iam:PassRole"},
    "fis:StartExperiment": {"fis:TagResource"},  # the run's tags
}
_CLIENT = re.compile(r"""^\s*(\w+)\s*=\s*(?:aws_client|ctx\.boto)\(\s*"(\w+)"[^)\n]*\)\s*$""", re.M)
_INLINE = re.compile(r"""(?:aws_client|ctx\.boto)\(\s*"(\w+)"[^)]*\)\s*\.\s*(\w+)\(""")


def code_actions() -> set[str]:
    """The IAM actions of the boto3 calls in our AWS code: each client variable's service, each call
    on it (and get_paginator's operation), mapped through botocore's own method-to-API table."""
    found: set[tuple[str, str]] = set()
    for path in SOURCES:
        text = path.read_text()
        found |= set(_INLINE.findall(text))
        for var, service in set(_CLIENT.findall(text)):
            for method in re.findall(rf"\b{var}\s*\.\s*(\w+)\(", text):
                found.add((service, method))
            for method in re.findall(rf"\b{var}\s*\.\s*get_paginator\(\s*\"(\w+)\"", text):
                found.add((service, method))
    actions = set()
    for service, method in found:
        if method == "get_paginator":
            continue
        client = boto3.client(
            service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        api = client.meta.method_to_api_mapping[method]
        actions.add(
            f"{client.meta.service_model.signing_name if service == 'autoscaling' else service}:{api}"
        )
    return actions | {implied for a in list(actions) for implied in IMPLIED.get(a, ())}


def catalog_chaosaws() -> set[tuple[str, str]]:
    used = set()
    for path in [
        *(ROOT / "experiments" / "aws").glob("*.yaml"),
        *(ROOT / "experiments" / "kubernetes").glob("*.yaml"),
    ]:
        experiment = load_experiment(str(path))
        for a in [
            *experiment["steady-state-hypothesis"]["probes"],
            *experiment["method"],
            *experiment["rollbacks"],
        ]:
            if a["provider"].get("module", "").startswith("chaosaws."):
                used.add((a["provider"]["module"], a["provider"]["func"]))
    return used


def _document(name: str) -> dict[str, Any]:
    text = (IAM / name).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", text))
    assert placeholders <= {"ACCOUNT_ID", "REGION", "OIDC_PROVIDER", "NAMESPACE"}, placeholders
    filled = string.Template(text).substitute(ACCOUNT_ID="123456789012", REGION="eu-west-1", NAMESPACE="subs",
                                              OIDC_PROVIDER="oidc.eks.eu-west-1.amazonaws.com/id/ABC")  # fmt: skip
    return json.loads(filled)


def _actions(document: dict[str, Any]) -> set[str]:
    out = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        out |= {actions} if isinstance(actions, str) else set(actions)
    return out


def test_the_harness_policy_allows_exactly_what_the_code_calls() -> None:
    """Nothing the code calls is missing (a live run would stop on AccessDenied mid-fault), and
    nothing is granted that no code calls."""
    assert catalog_chaosaws() <= CHAOSAWS.keys(), "a chaosaws function the catalog calls is not listed"
    needed = code_actions() | {a for f in catalog_chaosaws() for a in CHAOSAWS[f]} | PREFLIGHT
    granted = _actions(_document("harness-policy.json"))
    assert {"ec2:CreateNetworkAclEntry", "scheduler:CreateSchedule", "ssm:SendCommand", "fis:StartExperiment",
            "ec2:TerminateInstances", "iam:PassRole"} <= needed, "the scan found the calls"  # fmt: skip
    assert needed - granted == set(), "calls the policy does not allow"
    assert granted - needed == set(), "grants no code needs"


@pytest.mark.parametrize("name", sorted(p.name for p in IAM.glob("*.json")))
def test_every_document_is_a_well_formed_iam_policy(name: str) -> None:
    """Version 2012-10-17; each statement allows named actions (service:Action) on a resource, or, in
    a trust policy, to a principal; no wildcard actions."""
    document = _document(name)
    assert document["Version"] == "2012-10-17" and document["Statement"]
    trust = "trust" in name
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and statement.get("Sid")
        actions = _actions({"Statement": [statement]})
        assert all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", a) for a in actions), actions
        if trust:
            assert "Principal" in statement and "Resource" not in statement
            assert actions <= {"sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"}
        else:
            assert "Resource" in statement and "Principal" not in statement


def test_the_timed_undo_role_can_do_what_its_schedules_ask() -> None:
    """The scheduler role allows the one call the blackhole's schedules make, and the schedules run
    as the role the harness may pass."""
    from harness.chaos.activities import aws

    policy = _actions(_document("scheduler-restore-role-policy.json"))
    assert policy == {"ec2:DeleteNetworkAclEntry"}
    assert (
        "aws-sdk:ec2:deleteNetworkAclEntry"
        in (ROOT / "harness" / "chaos" / "activities" / "aws.py").read_text()
    )
    (passrole,) = [
        s for s in _document("harness-policy.json")["Statement"] if s["Action"] == ["iam:PassRole"]
    ]
    assert passrole["Resource"].endswith(f":role/{aws.RESTORE_ROLE_NAME}")
    trust = _document("scheduler-restore-role-trust.json")["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
