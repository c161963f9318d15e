"""The local testbed: a small cluster of real parts on one machine.

etcd (control plane), node agents running replicas of the reference service, a
controller, HAProxy in front, a fault proxy per node, and a ground-truth event log.
`cluster` brings it up and down, `faults` breaks it and mends it (`faultproxy` is the network
fault each node's proxy applies), `etcd` talks to the control plane, `state` and `profiles`
say what a testbed is made of, `groundtruth` reads its event log, `sampler` samples its control
plane while a scenario runs (controlplane.jsonl), `backups` is the scheduled etcd snapshot job and
the catalogue of what it saved. See docs/testbed.md.

The public modules are not imported here: the node agents and the controller run as their own
processes (`python -m harness.testbed.agent`) and load only what they use.
"""

__all__ = [
    "backups",
    "cluster",
    "etcd",
    "faultproxy",
    "faults",
    "groundtruth",
    "profiles",
    "sampler",
    "state",
]
