"""Where the testbed's control-plane state lives in etcd (the testbed's API objects).

/testbed/nodes/NODE/heartbeat   {"t"}                       written by the node's agent
/testbed/assignments/REPLICA    {"node"}                    written by the controller (scheduling)
/testbed/replicas/REPLICA       {"node", "port", "ready", "restarts", "t"}
                                                            written by the agent (pod status; t is
                                                            its heartbeat's clock); the controller
                                                            overwrites ready with false ("reason")
/testbed/endpoints              [{"replica", "node", "port"}]  written by the controller
/testbed/drill/N                markers written by the snapshot drill
"""

PREFIX = "/testbed/"
NODES = "/testbed/nodes/"
ASSIGNMENTS = "/testbed/assignments/"
REPLICAS = "/testbed/replicas/"
ENDPOINTS = "/testbed/endpoints"
DRILL = "/testbed/drill/"


def heartbeat_key(node: str) -> str:
    return f"{NODES}{node}/heartbeat"


def assignment_key(replica: str) -> str:
    return f"{ASSIGNMENTS}{replica}"


def replica_key(replica: str) -> str:
    return f"{REPLICAS}{replica}"
