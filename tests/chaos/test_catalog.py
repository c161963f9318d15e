"""The catalog for real clusters (experiments/kubernetes, experiments/aws) is valid Chaos Toolkit,
undoes what it does, declares every variable it uses, never selects EC2 instances by zone alone,
and ships FIS templates that AWS would accept."""

from __future__ import annotations

import json
import logging
import os
import re
import string
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from chaoslib import substitute
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment
from click.testing import CliRunner, Result

from harness.chaos.activities import aws as aws_activities

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
KUBERNETES = {
    "pod-kill", "pod-kill-percentage", "deployment-scale-down", "node-drain", "node-cordon",
    "node-loss-ssm", "network-deny-ingress", "network-deny-egress", "dns-disruption",
    "chaos-mesh-latency", "chaos-mesh-loss", "chaos-mesh-partition", "etcd-member-stop",
    "etcd-leader-stop", "apiserver-stop", "apiserver-load",
}  # fmt: skip
AWS = {
    "nodegroup-instance-terminate", "nodegroup-asg-terminate", "az-blackhole-nacl",
    "az-disrupt-connectivity-fis", "nodegroup-terminate-fis",
}  # fmt: skip
FILES = sorted(
    [EXPERIMENTS / "kubernetes" / f"{n}.yaml" for n in KUBERNETES]
    + [EXPERIMENTS / "aws" / f"{n}.yaml" for n in AWS]
)
ENGINE_VARS = {"namespace", "label_selector", "kubernetes_context"}

K8S = "harness.chaos.activities.kubernetes"
AWSMOD = "harness.chaos.activities.aws"
SELF_HEALING = "self-healing"
BOUNDED = "bounded"
UNDO: dict[tuple[str, str], set[tuple[str, str]] | str] = {
    # every method action, and what undoes it (a rollback) or why nothing needs to (a tag)
    ("chaosk8s.pod.actions", "terminate_pods"): SELF_HEALING,
    (K8S, "terminate_service_pods"): SELF_HEALING,
    ("chaosaws.ec2.actions", "terminate_instances"): SELF_HEALING,
    ("chaosaws.asg.actions", "terminate_random_instances"): SELF_HEALING,
    (K8S, "apiserver_load"): BOUNDED,
    (K8S, "scale_deployment_recording"): {(K8S, "restore_deployment_scale")},
    (K8S, "cordon_nodes_hosting"): {(K8S, "uncordon_harness_nodes")},
    (K8S, "deny_pod_traffic"): {(K8S, "allow_pod_traffic")},
    (K8S, "start_network_chaos"): {(K8S, "stop_network_chaos")},
    (AWSMOD, "stop_kubelet"): {(AWSMOD, "start_kubelet")},
    (AWSMOD, "park_static_pod"): {(AWSMOD, "restore_static_pods")},
    (AWSMOD, "blackhole_availability_zone"): {(AWSMOD, "restore_availability_zone")},
    ("chaosaws.fis.actions", "start_experiment"): {(AWSMOD, "stop_fis_experiments")},
    (AWSMOD, "terminate_node_group_instances"): SELF_HEALING,
    (AWSMOD, "terminate_asg_instances"): SELF_HEALING,
    (AWSMOD, "start_fis_experiment"): {(AWSMOD, "stop_fis_experiments")},
}
UNDOING = {u for undo in UNDO.values() if isinstance(undo, set) for u in undo} | {
    (K8S, "wait_for_deployment")
}
"""Method actions that undo (or wait out) an earlier one: the method ends with them, so that the
steady state after judges the service once the fault is gone; the rollbacks repeat them."""
UNDOING |= {
    # and, by name, what may follow a fault in the method: the undo itself, and the wait for the service
    (K8S, "wait_for_deployment"),
    (K8S, "restore_deployment_scale"),
    (K8S, "uncordon_harness_nodes"),
    (K8S, "allow_pod_traffic"),
    (K8S, "stop_network_chaos"),
    (AWSMOD, "start_kubelet"),
    (AWSMOD, "restore_static_pods"),
    (AWSMOD, "restore_availability_zone"),
    (AWSMOD, "stop_fis_experiments"),
}
NETWORK_CUTS = {(AWSMOD, "blackhole_availability_zone"), (AWSMOD, "start_fis_experiment")}
"""AWS actions that can cut a network; each must carry an undo that runs without the harness."""
JUDGED_AFTER_UNDO = {p.stem for p in FILES}
"""Every experiment of the catalog ends its method with the undo and a wait for the Deployment, so
that the steady state after is judged on the repaired service."""


def _key(activity: dict[str, Any]) -> tuple[str, str]:
    return activity["provider"]["module"], activity["provider"]["func"]


def _resolved(experiment: dict[str, Any], activity: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The activity's arguments as chaoslib would pass them, with the default configuration."""
    configuration = {**experiment["configuration"], **overrides}
    return substitute(activity["provider"].get("arguments", {}), configuration, {})


def test_catalog_has_exactly_the_documented_experiments() -> None:
    """Every experiment named in the READMEs is a file, and every file is listed here."""
    assert {p.stem for p in (EXPERIMENTS / "kubernetes").glob("*.yaml")} == KUBERNETES
    assert {p.stem for p in (EXPERIMENTS / "aws").glob("*.yaml")} == AWS
    for folder, names in (("kubernetes", KUBERNETES), ("aws", AWS)):
        readme = (EXPERIMENTS / folder / "README.md").read_text()
        assert {n for n in names if f"{n}.yaml" not in readme} == set()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_valid_for_chaoslib_with_the_real_extensions(path: Path) -> None:
    """chaoslib validates it: chaosk8s, chaosaws and our modules import, arguments match signatures."""
    experiment = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)
    assert experiment["title"] and experiment["description"] and experiment["tags"]
    assert experiment["steady-state-hypothesis"]["probes"] and experiment["method"]


VALID = "experiment syntax and semantic look valid"


def chaos_validate(path: Path) -> Result:
    """`chaos --no-log-file validate PATH` in this process: the `chaos` script's own command, with
    the chaostoolkit logger (which the command configures) and sys.modules put back as they were."""
    logger = logging.getLogger("chaostoolkit")
    saved = (logger.handlers[:], logger.filters[:], logger.level, logger.propagate, dict(sys.modules))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pythonjsonlogger's, on import
        from chaostoolkit.cli import cli

        try:
            return CliRunner().invoke(cli, ["--no-log-file", "validate", str(path)])
        finally:
            logger.handlers[:], logger.filters[:], logger.level, logger.propagate, modules = saved
            if sys.modules.get("logzero") is not modules.get("logzero"):  # chaoslib swaps it for a stub
                if "logzero" in modules:
                    sys.modules["logzero"] = modules["logzero"]
                else:
                    sys.modules.pop("logzero", None)


def test_chaos_validate_cli_accepts_every_file() -> None:
    """The `chaos validate` command (what a user runs) accepts every file: the installed `chaos`
    script in a process of its own for one file, and its command (the script's entry point,
    chaostoolkit.cli:cli) in this process for every file, which spares a Python start-up and the
    extensions' imports per file."""
    chaos = Path(sys.executable).parent / "chaos"
    env = {**os.environ, "PYTHONPATH": str(EXPERIMENTS.parent)}
    done = subprocess.run([str(chaos), "--no-log-file", "validate", str(FILES[0])],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0 and VALID in done.stdout + done.stderr, (done.stdout + done.stderr)[-800:]
    failures = {}
    for path in FILES:
        out = chaos_validate(path)
        if out.exit_code != 0 or VALID not in out.output:
            failures[path.name] = out.output[-800:] or repr(out.exception)
    assert failures == {}


def test_chaos_validate_cli_in_this_process_refuses_a_broken_file(tmp_path: Path) -> None:
    """The in-process `chaos validate` above can fail: an activity that does not exist is refused."""
    broken = tmp_path / "broken.yaml"
    text = FILES[0].read_text()
    func = re.search(r"func: (\w+)", text)
    assert func is not None
    broken.write_text(text.replace(func.group(0), "func: no_such_activity"))
    out = chaos_validate(broken)
    assert out.exit_code != 0 and "no_such_activity" in out.output and VALID not in out.output


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_action_is_undone_or_heals_itself(path: Path) -> None:
    """Each method action has its rollback in the experiment, or the experiment is tagged as
    healing itself (pod and instance kills) or as bounded (load that stops by itself)."""
    experiment = load_experiment(str(path))
    rollbacks = {_key(a) for a in experiment.get("rollbacks", [])}
    assert rollbacks, "rollbacks run with strategy always; at least wait for the service"
    for action in (a for a in experiment["method"] if a["type"] == "action" and _key(a) not in UNDOING):
        undo = UNDO.get(_key(action))
        assert undo is not None, f"{_key(action)} has no known undo: add it to UNDO with its rollback"
        if isinstance(undo, str):
            assert undo in experiment["tags"], f"{action['name']} needs the tag {undo!r}"
        else:
            assert undo & rollbacks, f"{action['name']} is not undone by any of {undo}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_variable_is_declared_with_a_default(path: Path) -> None:
    """Every ${name} used is a configuration key with a non-null default, and the engine's names are there."""
    experiment = load_experiment(str(path))
    configuration = experiment["configuration"]
    assert all(v is not None for v in configuration.values())
    assert configuration.keys() >= ENGINE_VARS
    if "aws" in experiment["tags"]:
        assert "aws_region" in configuration
    used = set(re.findall(r"\$\{(\w+)\}", path.read_text()))
    assert used - configuration.keys() == set()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_ec2_selection_by_zone_alone(path: Path) -> None:
    """EC2 instance selections name a node group and a cluster, and the steady state guards the same filters."""
    experiment = load_experiment(str(path))
    guards = [
        p
        for p in experiment["steady-state-hypothesis"]["probes"]
        if _key(p) == (AWSMOD, "instance_filters_are_scoped")
    ]
    for action in experiment["method"]:
        module = _key(action)[0]
        args = _resolved(experiment, action, cluster_name="prod", nodegroup_name="workers")
        assert module not in ("chaosaws.ec2.actions", "chaosaws.asg.actions"), (
            "chaosaws picks instances without excluding the harness's own node: use "
            "terminate_node_group_instances or terminate_asg_instances"
        )
        if _key(action) == (AWSMOD, "terminate_node_group_instances"):
            assert aws_activities.instance_filter_problems(args.get("filters") or []) == []
            raw = action["provider"]["arguments"]
            assert any(
                g["provider"]["arguments"]["filters"] == raw["filters"]
                and g["provider"]["arguments"].get("availability_zone", "")
                == raw.get("availability_zone", "")
                and g["provider"]["arguments"].get("max_instances") == raw.get("max_instances")
                for g in guards
            ), "the steady state must guard the same filters, zone and count"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_aws_network_cut_has_an_independent_timed_undo(path: Path) -> None:
    """A dead harness cannot leave a cut in place: the NACL blackhole is given its duration and
    margin (it schedules its own undo before cutting, and refuses to cut otherwise), and a FIS
    network action ends by itself after the template's duration."""
    experiment = load_experiment(str(path))
    for action in experiment["method"]:
        if _key(action) == (AWSMOD, "blackhole_availability_zone"):
            args = _resolved(experiment, action)
            assert args["duration_s"] == experiment["configuration"]["duration_s"]
            assert float(args["restore_margin_s"]) > 0 and "restore_role_arn" in args
        if _key(action) == (AWSMOD, "start_fis_experiment"):
            tag = action["provider"]["arguments"]["tags"]["resilience-harness:experiment"]
            template = json.loads((FIS / f"{tag}.json").read_text())
            for fis_action in template["actions"].values():
                if fis_action["actionId"].startswith("aws:network:"):
                    assert fis_action["parameters"].get("duration"), (
                        f"{tag}: a network action needs a duration"
                    )
        module = _key(action)[0]
        assert _key(action) in NETWORK_CUTS | UNDOING or not (
            module.startswith("chaosaws.") and ("network" in module or "vpc" in module)
        ), f"{_key(action)} may cut a network without a timed undo"


@pytest.mark.parametrize("path", [p for p in FILES if p.stem in JUDGED_AFTER_UNDO], ids=lambda p: p.stem)
def test_method_ends_with_its_undo_then_waits_for_the_service(path: Path) -> None:
    """The steady state after is judged on the repaired service: each fault's undo follows it in the
    method and the method ends waiting for the Deployment; the rollbacks still hold the undo."""
    experiment = load_experiment(str(path))
    method = [_key(a) for a in experiment["method"]]
    assert method[-1] == (K8S, "wait_for_deployment"), "the method must end waiting for the Deployment"
    rollbacks = {_key(a) for a in experiment["rollbacks"]}
    for i, key in enumerate(method):
        undo = UNDO.get(key)
        if isinstance(undo, set):
            assert undo & set(method[i + 1 :]), f"{key} is not undone in the method"
            assert undo & rollbacks, f"{key} lost its rollback backstop"
    # the method's undo and wait repeat a rollback exactly: that is how the markers tell the undo
    # (where the fault ends) from the fault
    rollback_providers = [a["provider"] for a in experiment["rollbacks"]]
    for action in experiment["method"]:
        if _key(action) in UNDOING:
            assert action["provider"] in rollback_providers, f"{action['name']} differs from its rollback"


def test_the_guard_refuses_zone_only_and_unnamed_selections() -> None:
    """The guard's pure part rejects what chaosaws would happily terminate."""
    zone_only = [{"Name": "availability-zone", "Values": ["us-east-1a"]}]
    assert len(aws_activities.instance_filter_problems(zone_only)) == 2
    empty_values = [
        {"Name": "tag:eks:cluster-name", "Values": [""]},
        {"Name": "tag:eks:nodegroup-name", "Values": [""]},
    ]
    assert len(aws_activities.instance_filter_problems(empty_values)) == 2
    scoped = [
        {"Name": "tag:kubernetes.io/cluster/prod", "Values": ["owned"]},
        {"Name": "tag:eks:nodegroup-name", "Values": ["workers"]},
    ]
    assert aws_activities.instance_filter_problems(scoped) == []


# --- FIS templates ----------------------------------------------------------------------------
FIS = EXPERIMENTS / "aws" / "fis"
TEMPLATES = {
    "az-disrupt-connectivity.json": ("aws:network:disrupt-connectivity", "aws:ec2:subnet", "Subnets"),
    "nodegroup-terminate.json": ("aws:eks:terminate-nodegroup-instances", "aws:eks:nodegroup", "Nodegroups"),
}
PLACEHOLDERS = {
    "ACCOUNT_ID": "123456789012",
    "FIS_ROLE_NAME": "resilience-harness-fis",
    "CLUSTER_NAME": "prod",
    "CLUSTER_TAG_VALUE": "owned",
    "AVAILABILITY_ZONE": "us-east-1a",
    "DURATION": "PT5M",
    "NODEGROUP_ARN": "arn:aws:eks:us-east-1:123456789012:nodegroup/prod/workers/0ec5a1b2-1111-2222-3333-444455556666",
    "PERCENTAGE": "34",
    "STOP_ALARM_ARN": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:subs-availability",
}


def fis_template(name: str) -> dict[str, Any]:
    """A template with its ${PLACEHOLDERS} filled as `envsubst` would (shared with tests/aws)."""
    text = string.Template((FIS / name).read_text()).substitute(PLACEHOLDERS)
    return json.loads(text)


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_fis_template_is_a_valid_create_request(name: str) -> None:
    """Valid JSON with the keys FIS requires, one action of the expected kind on a declared target,
    and a CreateExperimentTemplate request that botocore's service model accepts."""
    raw = json.loads((FIS / name).read_text())
    assert {"description", "roleArn", "targets", "actions", "stopConditions"} <= raw.keys()
    action_id, resource_type, target_key = TEMPLATES[name]
    (action,) = raw["actions"].values()
    assert action["actionId"] == action_id
    assert action["targets"][target_key] in raw["targets"]
    assert raw["targets"][action["targets"][target_key]]["resourceType"] == resource_type
    assert set(re.findall(r"\$\{(\w+)\}", (FIS / name).read_text())) <= PLACEHOLDERS.keys()
    model = botocore.session.get_session().get_service_model("fis")
    request = {"clientToken": "resilience-harness-test", **fis_template(name)}
    validate_parameters(request, model.operation_model("CreateExperimentTemplate").input_shape)
    assert [c["source"] for c in raw["stopConditions"]] == ["aws:cloudwatch:alarm"], "a stop condition"


def test_fis_experiments_name_their_templates() -> None:
    """Each FIS experiment tags its run with the template it expects, and that template exists."""
    for stem in ("az-disrupt-connectivity-fis", "nodegroup-terminate-fis"):
        experiment = load_experiment(str(EXPERIMENTS / "aws" / f"{stem}.yaml"))
        (start,) = [a for a in experiment["method"] if _key(a) == (AWSMOD, "start_fis_experiment")]
        tag = start["provider"]["arguments"]["tags"]["resilience-harness:experiment"]
        assert (FIS / f"{tag}.json").is_file()
        stops = [
            a
            for a in experiment["method"] + experiment["rollbacks"]
            if _key(a) == (AWSMOD, "stop_fis_experiments")
        ]
        assert len(stops) == 2
        assert all(
            stop["provider"]["arguments"]["tags"] == start["provider"]["arguments"]["tags"] for stop in stops
        )
