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

Two helpers every reader of the cluster shares: `list_all` (LIST page by page, `limit` +
`continue`, optionally from the API server's watch cache) and `measure_clock_skew` (the API
server's clock against ours, from the `Date` header of its answers).
"""

from __future__ import annotations

import copy
import email.utils
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
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
PAGE_SIZE = 500
"""Objects per LIST page: kubectl's default `--chunk-size`."""
MAX_PAGES = 2000
"""A LIST that has not ended after this many pages (a million objects) is a server bug; stop."""
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
    skew: ClockSkew | None = None
    """The API server's clock against ours, measured once by `clock_skew` (None: not yet)."""

    def clock_skew(self) -> ClockSkew:
        """The API server's clock minus ours, measured on first use and kept for the run."""
        if self.skew is None:
            self.skew = measure_clock_skew(self.api)
        return self.skew

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


def list_all(
    list_call: Callable[..., Any],
    *args: Any,
    page_size: int = PAGE_SIZE,
    resource_version: str | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Every item of a LIST, read page by page (`limit` and `continue`).

    `resource_version="0"` lets the API server answer from its watch cache (any recent state)
    instead of a quorum read from etcd: what a poller wants, since it compares states, not
    versions. The watch cache may ignore `limit` and answer everything at once (it did before
    Kubernetes 1.33's snapshots); a `continue` token is followed either way. Later pages carry
    no resourceVersion: the token pins the snapshot, and the API rejects both together.
    """
    items: list[Any] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        options = dict(kwargs, limit=page_size)
        if token:
            options["_continue"] = token
        elif resource_version is not None:
            options["resource_version"] = resource_version
        page = list_call(*args, **options)
        items.extend(page.items or [])
        token = getattr(page.metadata, "_continue", None) if page.metadata else None
        if not token:
            return items
    raise HarnessError(f"a LIST did not end after {MAX_PAGES} pages of {page_size}")


# --- the API server's clock ---------------------------------------------------------------------
SKEW_PROBE_S = 2.5
"""Longest a skew measurement may take: long enough to see the server's second tick over."""
SKEW_SPACING_S = 0.02
"""Between two probe requests: about 50 small GETs a second, for about a second."""
SKEW_TARGET_ERROR_S = 0.05
"""Stop once the skew is known to within this; the event times it corrects have 1 s resolution."""


@dataclass(frozen=True)
class ClockSkew:
    """The API server's clock minus the harness's, and how well it is known."""

    offset_s: float | None
    """Add to a harness time to get the server's; subtract from a cluster time. None: unknown."""
    error_s: float | None
    """Half the width of the interval the offset is certainly in."""
    samples: int
    note: str
    """How it was measured, or why it could not be."""

    def to_harness(self, cluster_t: float) -> float:
        """A time stamped by the cluster, on the harness's clock (unchanged if the skew is unknown)."""
        return cluster_t - (self.offset_s or 0.0)


def skew_interval(samples: Sequence[tuple[float, float, float]]) -> tuple[float, float] | None:
    """The interval certain to hold (server clock - harness clock), from (sent_t, date_t, received_t).

    A `Date` header is the server's clock truncated to the second, read at some instant between
    our send and our receipt: date_t <= server time < date_t + 1 at a harness time in [sent_t,
    received_t], so the offset is in [date_t - received_t, date_t + 1 - sent_t]. Samples on
    both sides of a server second's tick narrow the intersection to about the spacing plus the
    round trip. None if the samples contradict each other (a clock stepped, or a proxy's Date).
    """
    low, high = -float("inf"), float("inf")
    for sent_t, date_t, received_t in samples:
        low, high = max(low, date_t - received_t), min(high, date_t + 1.0 - sent_t)
    return (low, high) if samples and low <= high else None


def measure_clock_skew(
    api: k8s_client.ApiClient,
    *,
    clock: Callable[[], float] = time.time,
    max_s: float = SKEW_PROBE_S,
    spacing_s: float = SKEW_SPACING_S,
) -> ClockSkew:
    """The API server's clock against ours, from the `Date` header of `GET /version` answers.

    Cluster times (event timestamps) are compared with harness times (the scoring windows);
    this is the correction. Small GETs until the server's second has ticked over between two
    answers (or `max_s`): about a second of requests, at most.
    """
    samples: list[tuple[float, float, float]] = []
    note = ""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        sent_t = clock()
        try:
            request = api.param_serialize("GET", "/version/", auth_settings=["BearerToken"])
            response = api.call_api(*request, _request_timeout=(CONNECT_TIMEOUT_S, CONNECT_TIMEOUT_S))
            response.read()
            date = response.getheader("Date")
        except Exception as exc:  # no answer: the skew stays unknown, the run goes on
            note = f"GET /version failed: {type(exc).__name__}"
            break
        received_t = clock()
        if not date:
            note = "the API server's answers carry no Date header"
            break
        try:
            date_t = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            note = f"unreadable Date header {date!r}"
            break
        samples.append((sent_t, date_t, received_t))
        bounds = skew_interval(samples)
        if bounds is None:
            note = "the Date headers contradict each other (a clock stepped, or a proxy answers)"
            break
        ticked = len({d for _, d, _ in samples}) > 1
        if ticked or (bounds[1] - bounds[0]) / 2 <= SKEW_TARGET_ERROR_S:
            break
        time.sleep(spacing_s)
    bounds = skew_interval(samples)
    if bounds is None or note:
        return ClockSkew(None, None, len(samples), note or "no answer within the probe time")
    low, high = bounds
    return ClockSkew(
        round((low + high) / 2, 3),
        round((high - low) / 2, 3),
        len(samples),
        f"Date headers of {len(samples)} GET /version answers, bracketed by send and receipt",
    )
