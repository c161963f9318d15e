"""The Kubernetes target: a real cluster through a kubeconfig context the plan allows.

client      connect with the allowed-context check; pin chaosk8s to the same context
facts       what the cluster is, for result.json's "target"
probes      control-plane sampling into controlplane.jsonl while a scenario runs
target      the engine's Target (open, close, configuration, heal, ground truth, observe)
lease       the run Lease: one run per namespace at a time
dryrun      what each experiment activity would touch, read but not touched
selectors   label selector text: parse, match, build
preflight   `harness preflight`: can the plan run here? (permissions: what each activity needs;
            awscheck: the AWS half; checklist: its lines and exit code)

Tested against the kmock Kubernetes API emulator only (no container engine where the suite
runs): the API calls and the context safety are real, the cluster's behaviour is the tests'.
"""

from harness.kubernetes import preflight
from harness.kubernetes.client import Connection, ContextPin, check_experiment_secrets, connect
from harness.kubernetes.dryrun import dry_run, render
from harness.kubernetes.probes import ControlPlaneSampler, open_sampler
from harness.kubernetes.target import KubernetesTarget

__all__ = [
    "Connection",
    "ContextPin",
    "ControlPlaneSampler",
    "KubernetesTarget",
    "check_experiment_secrets",
    "connect",
    "dry_run",
    "open_sampler",
    "preflight",
    "render",
]
