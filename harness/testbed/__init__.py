"""The local testbed: a small cluster of real parts on one machine.

etcd (control plane), node agents running replicas of the reference service, a
controller, HAProxy in front, a fault proxy per node, and a ground-truth event log.
`cluster` brings it up and down, `faults` breaks it and mends it. See docs/testbed.md.
"""
