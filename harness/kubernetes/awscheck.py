"""The AWS half of `harness preflight`: credentials, region, EC2 dry runs, the IAM policy. Reads only.

- credentials and region resolve as the run resolves them (target.aws: region, profile,
  role_arn), proven by STS GetCallerIdentity;
- each EC2 action the experiments call is sent with `DryRun=True`: `DryRunOperation` means
  allowed, `UnauthorizedOperation` denied. The mutating ones name resource ids that cannot
  exist (`i-00000000000000000`), so an endpoint that ignored DryRun would still change nothing;
  an answer that is neither (a NotFound checked before the permission) leaves the action to
  the IAM simulation;
- the identity is simulated (`iam:SimulatePrincipalPolicy`) for every IAM action the
  experiments need, EC2, SSM, FIS and Auto Scaling alike; where the identity may not simulate,
  that check is a warning and the dry runs stand alone;
- each needed action is in the shipped policy `deploy/iam/harness-policy.json`, which the fix
  messages point to, with the role's trust policy `deploy/iam/*trust*.json`.

Only botocore's own retries are turned off (one attempt each, short timeouts): a preflight
should answer in seconds, and a denied call is not made allowed by asking again.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.kubernetes.checklist import Check, Status

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IAM_DIR = PROJECT_ROOT / "deploy" / "iam"
POLICY = IAM_DIR / "harness-policy.json"

_NO_INSTANCE = "i-00000000000000000"
_NO_ACL = "acl-00000000000000000"
_PREFLIGHT_TAG = "resilience-harness:preflight"
DRY_RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "ec2:DescribeInstances": ("describe_instances", {}),
    "ec2:DescribeSubnets": ("describe_subnets", {}),
    "ec2:DescribeNetworkAcls": ("describe_network_acls", {}),
    "ec2:TerminateInstances": ("terminate_instances", {"InstanceIds": [_NO_INSTANCE]}),
    "ec2:CreateTags": (
        "create_tags",
        {"Resources": [_NO_INSTANCE], "Tags": [{"Key": _PREFLIGHT_TAG, "Value": "dry-run"}]},
    ),
    "ec2:DeleteTags": ("delete_tags", {"Resources": [_NO_INSTANCE], "Tags": [{"Key": _PREFLIGHT_TAG}]}),
    "ec2:CreateNetworkAcl": ("create_network_acl", {"VpcId": "vpc-00000000000000000"}),
    "ec2:ReplaceNetworkAclAssociation": (
        "replace_network_acl_association",
        {"AssociationId": "aclassoc-00000000000000000", "NetworkAclId": _NO_ACL},
    ),
    "ec2:DeleteNetworkAcl": ("delete_network_acl", {"NetworkAclId": _NO_ACL}),
    "ec2:CreateNetworkAclEntry": (
        "create_network_acl_entry",
        {
            "NetworkAclId": _NO_ACL,
            "RuleNumber": 1,
            "Protocol": "-1",
            "RuleAction": "deny",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
        },
    ),
    "ec2:DescribeNatGateways": ("describe_nat_gateways", {}),
    "ec2:DescribeVpcEndpoints": ("describe_vpc_endpoints", {}),
    "ec2:DescribeTransitGatewayVpcAttachments": ("describe_transit_gateway_vpc_attachments", {}),
}
"""EC2 actions the catalog calls that take DryRun, and the call that asks for each."""
_DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")
"""EC2 answers UnauthorizedOperation; moto, the test emulator, AccessDenied."""


def trust_files(iam_dir: Path = IAM_DIR) -> list[Path]:
    """The trust policies of the harness's own role (not the FIS or scheduler roles it passes)."""
    return sorted(iam_dir.glob("harness-trust*.json")) or sorted(iam_dir.glob("*trust*.json"))


def fix_text(policy: Path = POLICY) -> str:
    trusts = ", ".join(_shown(p) for p in trust_files(policy.parent)) or _shown(
        policy.parent / "*trust*.json"
    )
    return (
        f"attach {_shown(policy)} to the role the harness runs as; that role's trust policy, which lets "
        f"the harness assume it, is {trusts}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def dry_run_outcome(code: str | None) -> Status | None:
    """What an EC2 error code says of a DryRun call: OK, BLOCKED, or None (undecided)."""
    if code == "DryRunOperation":
        return Status.OK
    if code in _DENIED:
        return Status.BLOCKED
    return None


def policy_actions(policy: Mapping[str, Any]) -> list[str]:
    """The actions an IAM policy document allows (patterns such as `ec2:Describe*` kept)."""
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    out: list[str] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action") or []
        out.extend([actions] if isinstance(actions, str) else actions)
    return out


def missing_from_policy(needed: list[str], allowed: list[str]) -> list[str]:
    """Needed actions no Allow pattern covers (IAM matches action names case-insensitively)."""
    return [a for a in needed if not any(fnmatch.fnmatchcase(a.lower(), p.lower()) for p in allowed)]


def principal_arn(caller_arn: str) -> str:
    """The ARN SimulatePrincipalPolicy takes: an assumed-role session's role (path not known)."""
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"{parts[0]}:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller_arn


def check(
    settings: Any, actions: Mapping[str, list[str]], policy: Path = POLICY, session_factory: Any = None
) -> Iterator[Check]:
    """The AWS checks of the module docstring; `actions` maps each IAM action to who needs it."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    fix = fix_text(policy)
    known_region = True
    if settings is None:
        yield Check("AWS", Status.BLOCKED,
                    f"the experiments call AWS ({len(actions)} action(s)) but the plan has no target.aws",
                    "add target.aws with the cluster's region")  # fmt: skip
        return
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=15)
    factory = session_factory or boto3.Session
    try:
        session = factory(profile_name=settings.profile, region_name=settings.region)
        known_region = settings.region in session.get_available_regions("ec2")
        if not known_region:  # a region newer than botocore, or a typo: STS below tells which
            yield Check("AWS region", Status.WARNING, f"{settings.region!r} is not a region botocore knows",
                        "check target.aws.region")  # fmt: skip
        sts = session.client("sts", config=config)
        if settings.role_arn:
            creds = sts.assume_role(RoleArn=settings.role_arn, RoleSessionName="harness-preflight")[
                "Credentials"
            ]
            session = factory(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=settings.region,
            )
            sts = session.client("sts", config=config)
        caller = sts.get_caller_identity()
    except NoCredentialsError:
        yield Check("AWS credentials", Status.BLOCKED,
                    "no credentials found (environment, shared files, web identity, instance role)",
                    "in the cluster, the ServiceAccount's IAM role (IRSA annotation); from a workstation, "
                    f"target.aws.profile or AWS_PROFILE; then {fix}")  # fmt: skip
        return
    except EndpointConnectionError as exc:
        if not known_region:
            yield Check("AWS region", Status.BLOCKED, f"{settings.region!r} is unknown and has no STS endpoint: {exc}",
                        "correct target.aws.region")  # fmt: skip
        else:
            yield Check("AWS credentials", Status.UNREACHABLE, f"STS does not answer: {exc}",
                        "check the network path to AWS (proxy, VPC endpoint for STS)")  # fmt: skip
        return
    except (ClientError, BotoCoreError) as exc:
        yield Check("AWS credentials", Status.BLOCKED, f"the credentials do not work: {exc}", fix)
        return
    arn = caller["Arn"]
    yield Check(
        "AWS credentials", Status.OK, f"{arn} (account {caller['Account']}), region {settings.region}"
    )
    if not actions:
        return

    undecided: list[str] = []
    ec2 = session.client("ec2", config=config)
    allowed_by_dry_run = 0
    for action in sorted(a for a in actions if a in DRY_RUNS):
        method, kwargs = DRY_RUNS[action]
        try:
            getattr(ec2, method)(DryRun=True, **kwargs)
            code: str | None = "DryRunOperation" if method.startswith("describe_") else "no DryRunOperation"
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
        except EndpointConnectionError as exc:
            yield Check(
                "AWS EC2", Status.UNREACHABLE, f"EC2 does not answer: {exc}", "check the network path to AWS"
            )
            return
        except Exception as exc:  # an answer botocore cannot parse (moto's 500 here): undecided
            code = type(exc).__name__
        outcome = dry_run_outcome(code)
        if outcome is Status.OK:
            allowed_by_dry_run += 1
        elif outcome is Status.BLOCKED:
            yield Check("AWS EC2", Status.BLOCKED,
                        f"{action} denied to {arn} (dry run: {code}); needed by {'; '.join(actions[action])}", fix)  # fmt: skip
        else:
            undecided.append(f"{action} ({code})")
    if allowed_by_dry_run:
        yield Check("AWS EC2", Status.OK, f"{allowed_by_dry_run} EC2 action(s) allowed by dry run")
    if undecided:
        yield Check("AWS EC2", Status.WARNING,
                    f"the dry run could not decide {', '.join(undecided)}; they are left to the IAM simulation")  # fmt: skip

    yield from _shipped_policy(sorted(actions), policy)
    yield from simulate_checks(session.client("iam", config=config), arn, actions, fix)


def _shipped_policy(needed: list[str], policy: Path) -> Iterator[Check]:
    try:
        document = json.loads(policy.read_text())
    except FileNotFoundError:
        yield Check("AWS IAM policy", Status.WARNING, f"{_shown(policy)} is not there to compare with")
        return
    except (OSError, json.JSONDecodeError) as exc:
        yield Check("AWS IAM policy", Status.WARNING, f"{_shown(policy)} cannot be read: {exc}")
        return
    missing = missing_from_policy(needed, policy_actions(document))
    if missing:
        yield Check("AWS IAM policy", Status.WARNING,
                    f"{_shown(policy)} does not allow {', '.join(missing)}, which the experiments call",
                    f"add them to {_shown(policy)}")  # fmt: skip
    else:
        yield Check(
            "AWS IAM policy",
            Status.OK,
            f"{_shown(policy)} allows all {len(needed)} action(s) the experiments call",
        )


def simulate_checks(iam: Any, caller_arn: str, actions: Mapping[str, list[str]], fix: str) -> Iterator[Check]:
    """One blocked line per needed action the simulation does not allow; one ok line if none."""
    principal = principal_arn(caller_arn)
    names = sorted(actions)
    results: list[dict[str, Any]] = []
    try:
        for start in range(0, len(names), 100):
            kwargs: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": names[start : start + 100]}
            while True:
                page = iam.simulate_principal_policy(**kwargs)
                results.extend(page.get("EvaluationResults", []))
                if not page.get("IsTruncated"):
                    break
                kwargs["Marker"] = page["Marker"]
    except Exception as exc:  # denied, not implemented (moto), unparseable: the simulation is unavailable
        yield Check("AWS IAM simulation", Status.WARNING,
                    f"could not simulate {principal} ({_error_text(exc)}): actions no dry run decided (SSM, FIS, Auto Scaling, ...) are unchecked",
                    "allow iam:SimulatePrincipalPolicy on the role itself to have them checked")  # fmt: skip
        return
    denied = [r for r in results if r.get("EvalDecision") != "allowed"]
    for r in denied:
        action = r.get("EvalActionName", "?")
        yield Check("AWS IAM simulation", Status.BLOCKED,
                    f"{action} is {r.get('EvalDecision')} for {principal}; needed by {'; '.join(actions.get(action, []))}",
                    fix)  # fmt: skip
    if not denied:
        yield Check("AWS IAM simulation", Status.OK, f"{principal} is allowed all {len(results)} action(s)")


def _error_text(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and response.get("Error"):
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message', '')}".strip()
    return type(exc).__name__
