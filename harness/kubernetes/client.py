"""Connect to the plan's cluster, and only to it: the allowed-context check and the context pin.

The safety rule: the harness touches no cluster whose context is not in the plan's
`allowed_contexts`. `connect` checks the context name before any request leaves the process
and builds an ApiClient for exactly that context. A plan context of None means in-cluster (the
pod's service account), never the kubeconfig's current-context: a scheduled run inside a
cluster must not follow whatever a mounted kubeconfig happens to point at.

chaosk8s activities run by chaoslib in this process make their own clients
(`chaosk8s.create_k8s_api_client`): kubeconfig from $KUBECONFIG (else ~/.kube/config), context
from a `KUBERNETES_CONTEXT` secret or environment variable, else the file's current-context;
in-cluster only when no kubeconfig file exists and CHAOSTOOLKIT_IN_POD is "true". Two traps:

- `kubernetes.config.load_kube_config()` (what chaosk8s calls) reads the file named by
  `kube_config.KUBE_CONFIG_DEFAULT_LOCATION`, which the kubernetes package computes from
  $KUBECONFIG *when it is imported*. Setting $KUBECONFIG later changes the file chaosk8s checks
  for, not the file it loads;
- an experiment's `secrets` may name another KUBERNETES_CONTEXT, and secrets win over the
  environment.

So `ContextPin` writes a kubeconfig holding the one allowed context (its cluster and user, file
paths made absolute) into a private folder, and while a scenario runs points $KUBECONFIG,
KUBE_CONFIG_DEFAULT_LOCATION and $KUBERNETES_CONTEXT at it. A chaosk8s action then cannot
reach another cluster: any other context name is simply not in the file, and loading fails.
In-cluster, the pin points $KUBECONFIG at a file that does not exist and sets
CHAOSTOOLKIT_IN_POD, so chaosk8s takes the service account too. Everything is restored on
`release`. Process-wide state: one pin at a time (a second `apply` raises).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config import kube_config

from harness.errors import HarnessError, InputError

IN_CLUSTER = "in-cluster"
"""The context name of the pod's own service account, as the plan's allowed_contexts spells it."""
CONNECT_TIMEOUT_S = 5.0
"""How long the first request (the server version) may take before the cluster counts as down."""
_PINNED_ENV = ("KUBECONFIG", "KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD")
_FILE_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}


@dataclass
class Connection:
    """A checked context and a client for it."""

    context: str
    """The context name that was checked against allowed_contexts ("in-cluster" for the pod's own)."""
    server: str
    """The API server's URL, as the kubeconfig (or the pod's environment) gives it."""
    api: k8s_client.ApiClient
    kubeconfig: Path | None
    """The single-context kubeconfig written for this connection; None in-cluster."""
    workdir: Path
    """The private folder holding `kubeconfig`; removed by `close`."""
    namespace: str

    def close(self) -> None:
        self.api.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def check_allowed(context: str, allowed: list[str]) -> None:
    """InputError unless `context` is listed; called before anything is read or sent."""
    if context not in allowed:
        raise InputError(
            f"target: context {context!r} is not in allowed_contexts ({', '.join(allowed)}); "
            "the harness touches no other cluster"
        )


def kubeconfig_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files kubectl would read: $KUBECONFIG's list, else ~/.kube/config."""
    environ = os.environ if environ is None else environ
    listed = environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in listed.split(os.pathsep) if p] if listed else []
    return paths or [Path("~/.kube/config").expanduser()]


def single_context_config(context: str, files: list[Path]) -> dict[str, Any]:
    """A kubeconfig holding only `context`, its cluster and its user, merged as kubectl does
    (the first file to name an entry wins), with relative file paths made absolute."""
    found: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {"contexts": {}, "clusters": {}, "users": {}}
    readable = []
    for path in files:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read the kubeconfig: {exc}") from exc
        readable.append(path)
        for kind in found:
            for entry in doc.get(kind) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    found[kind].setdefault(entry["name"], (entry, path))
    where = ", ".join(str(p) for p in files)
    if not readable:
        raise InputError(f"target: no kubeconfig found ({where}); set KUBECONFIG or the plan's context")
    if context not in found["contexts"]:
        raise InputError(f"target: context {context!r} is not in the kubeconfig ({where})")
    ctx_entry, _ = found["contexts"][context]
    spec = ctx_entry.get("context") or {}
    cluster_name, user_name = spec.get("cluster"), spec.get("user")
    if cluster_name not in found["clusters"]:
        raise InputError(f"target: context {context!r} names cluster {cluster_name!r}, not in ({where})")
    cluster, cluster_file = found["clusters"][cluster_name]
    users = []
    if user_name is not None:
        if user_name not in found["users"]:
            raise InputError(f"target: context {context!r} names user {user_name!r}, not in ({where})")
        user, user_file = found["users"][user_name]
        users = [_absolute(user, "user", user_file.parent)]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "contexts": [copy.deepcopy(ctx_entry)],
        "clusters": [_absolute(cluster, "cluster", cluster_file.parent)],
        "users": users,
    }


def _absolute(entry: dict[str, Any], kind: str, base: Path) -> dict[str, Any]:
    """kubectl resolves relative paths against the kubeconfig's folder; the copy lives elsewhere."""
    out = copy.deepcopy(entry)
    body = out.get(kind) or {}
    for key in _FILE_KEYS[kind]:
        if isinstance(body.get(key), str) and not os.path.isabs(body[key]):
            body[key] = str(base / body[key])
    command = (body.get("exec") or {}).get("command")
    if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
        body["exec"]["command"] = str(base / command)
    return out


def connect(target: Any, environ: Mapping[str, str] | None = None) -> Connection:
    """A client for the plan's KubernetesTarget, after the allowed-context check.

    No request is sent before the check passes; the first request (the server version) proves
    the cluster answers. InputError for a refused or unknown context, HarnessError when the
    cluster cannot be reached.
    """
    environ = os.environ if environ is None else environ
    context = target.context if target.context is not None else IN_CLUSTER
    check_allowed(context, list(target.allowed_contexts))
    workdir = Path(tempfile.mkdtemp(prefix="harness-k8s-"))
    os.chmod(workdir, 0o700)
    try:
        configuration = k8s_client.Configuration()
        if target.context is None:
            if not environ.get("KUBERNETES_SERVICE_HOST"):
                raise InputError(
                    "target: no context in the plan means in-cluster, but this process does not run "
                    "in a pod (KUBERNETES_SERVICE_HOST is unset); name a kubeconfig context"
                )
            k8s_config.load_incluster_config(client_configuration=configuration)
            kubeconfig = None
        else:
            pinned = single_context_config(target.context, kubeconfig_files(environ))
            kubeconfig = workdir / "kubeconfig"
            fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                yaml.safe_dump(pinned, out)
            contexts, active = k8s_config.list_kube_config_contexts(config_file=str(kubeconfig))
            resolved = active.get("name") if active else None
            if [c.get("name") for c in contexts] != [target.context] or resolved != target.context:
                raise InputError(
                    f"target: the kubeconfig resolved context {resolved!r}, not {target.context!r}"
                )
            check_allowed(resolved, list(target.allowed_contexts))
            k8s_config.load_kube_config(
                config_file=str(kubeconfig),
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except k8s_config.ConfigException as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise InputError(f"target: context {context!r}: {exc}") from exc
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    api = k8s_client.ApiClient(configuration)
    connection = Connection(context, configuration.host, api, kubeconfig, workdir, target.namespace)
    try:
        k8s_client.VersionApi(api).get_code(_request_timeout=(CONNECT_TIMEOUT_S, CONNECT_TIMEOUT_S))
    except Exception as exc:  # urllib3 and ApiException alike: the cluster is not there
        connection.close()
        raise HarnessError(
            f"target: context {context!r} ({connection.server}) does not answer: {exc}"
        ) from exc
    return connection


_pin_lock = threading.Lock()
_active_pin: list[ContextPin] = []


@dataclass
class ContextPin:
    """Makes chaosk8s in this process use the connection's context, until released."""

    connection: Connection
    environ: MutableMapping[str, str] = field(default_factory=lambda: os.environ)
    _saved_env: dict[str, str | None] = field(default_factory=dict, init=False)
    _saved_location: str | None = field(default=None, init=False)
    _saved_default: Any = field(default=None, init=False)

    def apply(self) -> None:
        with _pin_lock:
            if _active_pin:
                raise HarnessError("target: another Kubernetes context is already pinned in this process")
            self._saved_env = {key: self.environ.get(key) for key in _PINNED_ENV}
            self._saved_location = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
            self._saved_default = getattr(k8s_client.Configuration, "_default", None)
            if self.connection.kubeconfig is not None:
                location = str(self.connection.kubeconfig)
                self.environ["KUBECONFIG"] = location
                self.environ["KUBERNETES_CONTEXT"] = self.connection.context
                self.environ.pop("CHAOSTOOLKIT_IN_POD", None)
            else:
                location = str(self.connection.workdir / "no-kubeconfig")  # never created
                self.environ["KUBECONFIG"] = location
                self.environ.pop("KUBERNETES_CONTEXT", None)
                self.environ["CHAOSTOOLKIT_IN_POD"] = "true"
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = location
            _active_pin.append(self)

    def release(self) -> None:
        with _pin_lock:
            if self not in _active_pin:
                return
            for key, value in self._saved_env.items():
                if value is None:
                    self.environ.pop(key, None)
                else:
                    self.environ[key] = value
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = self._saved_location
            # chaosk8s replaced the process-wide default configuration with the pinned cluster's.
            k8s_client.Configuration._default = self._saved_default
            _active_pin.remove(self)


SECRET_KEYS = (
    "KUBERNETES_CONTEXT",
    "KUBERNETES_HOST",
    "KUBERNETES_API_KEY",
    "KUBERNETES_CERT_FILE",
    "KUBERNETES_USERNAME",
)
"""Secret keys with which chaosk8s could be pointed at another cluster."""


def check_experiment_secrets(experiment: Mapping[str, Any], connection_context: str, source: str) -> None:
    """InputError when an experiment's secrets name a Kubernetes cluster or context of their own.

    The pin already makes such a secret fail at run time (only the pinned context is in the
    kubeconfig); refusing it up front says why, before anything is injected.
    """
    for scope, values in (experiment.get("secrets") or {}).items():
        if not isinstance(values, Mapping):
            continue
        for key in SECRET_KEYS:
            if key in values and not (key == "KUBERNETES_CONTEXT" and values[key] == connection_context):
                raise InputError(
                    f"{source}: secrets.{scope}.{key} would point chaosk8s away from the plan's context "
                    f"{connection_context!r}; remove it (the target sets the context)"
                )
