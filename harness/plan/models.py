"""The plan: what load to run, against which target, which experiments, and the gates.

`loading.load_plan` builds a Plan from YAML and turns every validation error into a
problem with file and line; the engine reads the Plan. The models check only what the text
says (types, ranges, unknown keys, gate syntax); whether files exist is the loader's job.

Checks that involve more than one field raise `_KeyedValueError`, which names the key below
the model that is at fault, so the loader can point at that key's line rather than at the
enclosing block.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.errors import InputError
from harness.plan import gates
from harness.result import defaults
from harness.result import metrics as metric_registry


class _KeyedValueError(ValueError):
    """A ValueError about a key below the model being validated (`key` is its path)."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        self.key = key
        super().__init__(message)


_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            "expected a slug: lowercase letters, digits and '-', starting with a letter or digit"
        )
    return value


def _gate(text: str) -> str:
    try:
        gates.validate_names(gates.parse(text), gates.METRIC_NAMES)
    except gates.GateError as exc:
        raise ValueError(str(exc)) from None
    return text


def _scalar(value: Any) -> Any:
    # One error for a list or mapping, instead of one per member of the union below.
    if not isinstance(value, str | int | float | bool):
        raise ValueError("expected a string, a number or a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _host(value: str) -> str:
    if value == "auto":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected 'auto' or an http(s) URL such as http://subs.example:8000")
    return value


def _selector(value: str) -> str:
    if not value.strip():
        raise ValueError("expected the service's label selector, such as app=subs (empty selects every pod)")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
GateText = Annotated[str, AfterValidator(_gate)]
"""A gate expression, parsed when the plan is validated so a bad one has its file and line."""
VarValue = Annotated[str | bool | int | float, BeforeValidator(_scalar)]


class _Model(BaseModel):
    # allow_inf_nan=False: YAML's .inf and .nan (and JSON's Infinity, NaN) are refused in every
    # number field; an infinite window never ends and a NaN threshold never trips.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --- target -------------------------------------------------------------------------------


class TestbedSettings(_Model):
    """What a plan changes of its testbed profile (harness.testbed.profiles; docs/testbed.md has
    each setting's Kubernetes counterpart): a finding's recommended change tried on the testbed,
    such as the load balancer's health checks on or a shorter eviction timeout. Unset: the
    profile's value."""

    lb_health_checks: bool | None = None
    """HAProxy checks /readyz itself (a cloud load balancer's target health checks)."""
    replicas: int | None = Field(None, ge=1, le=12)
    nodes_per_zone: int | None = Field(None, ge=1, le=4)
    node_grace_s: float | None = Field(None, gt=0)
    """Heartbeat silence before a node is NotReady (node-monitor-grace-period)."""
    eviction_s: float | None = Field(None, ge=0)
    """NotReady time before its replicas are rescheduled (the pods' tolerationSeconds)."""
    heartbeat_s: float | None = Field(None, gt=0)
    readiness_period_s: float | None = Field(None, gt=0)
    readiness_failures: int | None = Field(None, ge=1)
    restart_backoff_s: float | None = Field(None, gt=0)

    PROFILE_FIELDS: ClassVar[tuple[str, ...]] = ("lb_health_checks", "replicas", "nodes_per_zone")
    """The rest are timings (harness.testbed.profiles.Timings)."""

    def overrides(self) -> dict[str, Any]:
        """The set fields as harness.testbed.profiles.builtin takes them: timings nested."""
        given = self.model_dump(exclude_none=True)
        timings = {k: v for k, v in given.items() if k not in self.PROFILE_FIELDS}
        out = {k: v for k, v in given.items() if k in self.PROFILE_FIELDS}
        return {**out, **({"timings": timings} if timings else {})}


class TestbedTarget(_Model):
    """The embedded local testbed (`harness testbed up`)."""

    kind: Literal["testbed"]
    profile: Literal["managed", "self-managed"] = "managed"
    """Three etcd members in three zones, as EKS runs its control plane: the set-up the project
    moved to, so game days run against it unless they ask for the old one."""
    settings: TestbedSettings = TestbedSettings()
    """What the plan changes of the profile; a running testbed that differs in one of them is refused."""


class AwsSettings(_Model):
    """Credentials for chaosaws activities (EC2, ASG, EKS node groups, SSM, FIS)."""

    region: str
    profile: str | None = None
    """None: the default credential chain (environment, instance role)."""
    role_arn: str | None = None
    """None: act with the credentials as they are, without assuming a role."""


class KubernetesTarget(_Model):
    """A cluster reached through a kubeconfig context (self-managed or EKS)."""

    kind: Literal["kubernetes"]
    context: str | None = None
    """None: the in-cluster service account (a scheduled run inside the cluster); list
    `in-cluster` in allowed_contexts to permit it."""
    allowed_contexts: list[str] = Field(min_length=1)
    """The contexts faults may be injected into. Required, with no default: the harness refuses
    any other context, so a stale kubeconfig cannot aim a game day at production."""
    namespace: str = "default"
    """Kubernetes' own default namespace, where a fresh deploy/ of the reference service lands."""
    selector: Annotated[str, AfterValidator(_selector)]
    """Label selector of the service under test (`app=subs`). Required, with no default: every
    experiment receives it as `label_selector`, and one left unset would replace the
    experiment's own default with nothing, so a pod kill could take any pod of the namespace."""
    aws: AwsSettings | None = None
    """None: no AWS activities (a cluster outside AWS, or only Kubernetes-level faults)."""
    cluster: Slug | None = None
    """This cluster's name in the history and in comparisons (`kubernetes/<cluster>`); None: the
    context's name. Give it for in-cluster runs, which all share the context name `in-cluster`."""

    @property
    def effective_context(self) -> str:
        """The context name checked against allowed_contexts."""
        return self.context if self.context is not None else "in-cluster"

    @model_validator(mode="after")
    def _context_allowed(self) -> KubernetesTarget:
        if self.effective_context not in self.allowed_contexts:
            raise _KeyedValueError(
                ("context",),
                f"context {self.effective_context!r} is not in allowed_contexts "
                f"({', '.join(self.allowed_contexts)})",
            )
        return self


Target = Annotated[TestbedTarget | KubernetesTarget, Field(discriminator="kind")]


# --- load and windows ---------------------------------------------------------------------


def _bind(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, such as 0.0.0.0:5557 (every interface, Locust's port)")
    return value


class LoadWorkers(_Model):
    """Locust workers on other machines (`harness load worker`, or deploy/locust's workers) that
    make the load; the engine runs only Locust's master, which merges what they measure."""

    expect: int = Field(ge=1, le=1000)
    """How many workers must join before the load starts. No default: only the plan knows how
    many machines it has; a scenario whose workers do not all join ends with exit 3."""
    bind: Annotated[str, AfterValidator(_bind)] = "0.0.0.0:5557"
    """Where the master listens for workers: every interface, so other machines reach it, on
    Locust's own master port, which deploy/locust's Services also use."""
    join_timeout_s: float = Field(60.0, gt=0, le=3600)
    """How long the engine waits for every worker. A waiting worker asks the master every 5 s
    (Locust's connect timeout) and `harness load worker` restarts one within a second of the
    previous scenario's master quitting, so a minute covers a slow start, or a worker pod being
    rescheduled, and a worker that is not coming is reported within a minute."""

    @property
    def bind_host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def bind_port(self) -> int:
        return int(self.bind.rpartition(":")[2])


class LoadSpec(_Model):
    """The traffic that flows during every scenario, as a Locust run."""

    locustfile: Path
    host: Annotated[str, AfterValidator(_host)] = "auto"
    """auto: the testbed's load balancer. A Kubernetes target has no such thing to find, so
    it must name the service's URL."""
    users: int = Field(20, ge=1, le=100_000)
    """Enough concurrent journeys for every replica to serve several requests per bucket, few
    enough for one Locust process on a laptop. At most 100,000: more than 64 Locust processes
    can simulate, so a larger number is a typo."""
    spawn_rate: float = Field(10.0, gt=0, le=100_000)
    """Users started per second: the default users are all running within the warm-up. At most
    100,000, all the users there can be in one second."""
    shape: Literal["constant", "step", "spike", "diurnal"] = "constant"
    """Constant load keeps the baseline comparable with the fault window; the other shapes
    are for load gates. A shape's profile (harness.load.shapes, with `users` as its base or peak)
    spans warm-up, baseline and observation; after it the last level holds until the load stops."""
    processes: int = Field(1, ge=1, le=64)
    """One Locust process carries the default load; raise it when Locust's CPU saturates."""
    pacing_s: float = Field(1.0, ge=0, le=3600)
    """Each user starts a task every second on a schedule, so a stall shows up as lag (the
    coordinated-omission correction) instead of as quiet; 0 runs a closed loop. At most an hour:
    a user starting a task less often sends nothing in most windows of a scenario."""
    bucket_s: float = Field(1.0, ge=0.1, le=60)
    """Timeline resolution: DESIGN asks for buckets of at most a second."""
    request_timeout_s: float = Field(5.0, gt=0, le=120)
    """How long a user waits for an answer before the request counts as a timeout. Locust's own
    default is 60 s, which hides a blackholed path as users silently stuck."""
    connect_timeout_s: float = Field(2.0, gt=0, le=60)
    """TCP connect timeout; Linux retries an unanswered SYN after 1 s, so 2 s shows a partition fast."""
    workers: LoadWorkers | None = None
    """None: the load comes from this host (`processes`). Set it when one machine cannot make
    the load: the engine runs Locust's master and waits for the workers to join."""

    @model_validator(mode="after")
    def _one_source(self) -> LoadSpec:
        if self.workers is not None and self.processes > 1:
            raise _KeyedValueError(
                ("processes",),
                "expected 1 with load.workers: the workers make the load (run "
                "`harness load worker --processes N` on a worker machine for more processes there)",
            )
        return self


class Windows(_Model):
    """How long each phase of a scenario lasts."""

    warmup_s: float = Field(5.0, ge=0, le=3600)
    """Users spawn and connection pools fill in the first seconds; those buckets are not scored.
    At most an hour, as every window below is at most a day: a scenario must end (a soak is an
    hour), and its times must stay exact when added to Unix seconds."""
    baseline_s: float = Field(20.0, gt=0, le=86_400)
    """Twenty 1-s buckets give a stable p95, error rate and KPI rate for the health tolerances."""
    observe_s: float = Field(defaults.OBSERVE_S, gt=0, le=86_400)
    """The longest the load stays on after the method ends, waiting for recovery plus
    stability: the testbed's slowest repair (30 s eviction, then a restart) fits with room. With
    `horizon_s` set, it stays on at least until the horizon has passed, recovered or not."""
    stability_s: float = Field(defaults.STABILITY_S, gt=0, le=86_400)
    """Healthy time that counts as recovered: DESIGN's default."""
    horizon_s: float | None = Field(None, gt=0, le=86_400)
    """The fixed window from the fault's start over which availability, error rate, downtime (and
    its cost) and KPI lost are counted. Set, the engine keeps the load on until it has passed;
    None: the horizon is `observe_s` (harness.result.defaults.HORIZON_S says why) and the engine
    stops at recovery plus stability as before, the horizon's rest counted healthy. Set it to
    observe relapses after a recovery, longer than the fault when a fault outlasts `observe_s`,
    and the same on both sides of a comparison."""

    @property
    def horizon(self) -> float:
        """The horizon in seconds: `horizon_s`, else `observe_s`."""
        return self.horizon_s if self.horizon_s is not None else self.observe_s

    @model_validator(mode="after")
    def _stability_fits(self) -> Windows:
        if self.stability_s > self.observe_s:
            raise _KeyedValueError(
                ("stability_s",),
                f"expected at most observe_s ({self.observe_s:g}): recovery could never be seen",
            )
        return self


# --- thresholds ---------------------------------------------------------------------------


class Slo(_Model):
    """Absolute health thresholds; a missing one is derived from the baseline."""

    error_rate: float | None = Field(None, ge=0, le=1)
    """None: unhealthy when the error rate rises clearly above the baseline's."""
    p95_ms: float | None = Field(None, gt=0, le=3_600_000)
    """None: unhealthy when p95 rises clearly above the baseline's. At most an hour: requests
    time out long before, so a larger limit could never be crossed."""
    kpi_drop: float | None = Field(None, ge=0, le=1)
    """None: unhealthy when completed subscriptions fall clearly below the baseline rate."""
    confidence: float = Field(defaults.HEALTH_CONFIDENCE, ge=0.5, lt=1)
    """How sure the evidence must be (one-sided Wilson score interval) that a bucket's error rate,
    or its share of requests slower than p95_ms, is above the threshold before the bucket breaches
    it: 95 % keeps one failed request among dozens from making a bucket unhealthy. 0.5 judges the
    raw rates."""
    impact_buckets: int = Field(defaults.IMPACT_BUCKETS, ge=1, le=3600)
    """Unhealthy buckets in a row that make an impact (and that a recovery must outlast): a lone
    bad bucket is noise, three seconds of trouble is an outage. 1: every unhealthy bucket is one."""


class Baseline(_Model):
    """The check that the load is steady before the first fault (harness.scoring.baseline)."""

    require_steady: bool = True
    """A fault injected into load that is already breaking down measures the overload, not the
    fault: such a scenario ends `baseline-not-steady` (exit 3) without injecting. False: inject
    anyway; the result then says on every page that the baseline was not steady, and why."""
    max_generator_late_share: float = Field(0.05, ge=0, le=1)
    """Health judges buckets by their p95, which the slowest 5 % of requests decide: when more
    than 5 % were sent late by the load generator itself, the generator can set that p95 and the
    load delivered is not the load planned."""


class AbortCondition(_Model):
    """Stop the experiment (rollbacks run, exit 3) when a live SLI stays past a limit."""

    metric: Literal["error_rate", "p95_ms"]
    above: float | None = Field(None, ge=0, le=3_600_000)
    """Abort when the metric stays above this; None: no upper limit (set exactly one of the two).
    From 0 to an hour in ms (and at most 1 for error_rate): a metric outside the range it can
    take never crosses the limit, so the condition could never trip."""
    below: float | None = Field(None, ge=0, le=3_600_000)
    """Abort when the metric stays below this; None: no lower limit. Bounded as `above`."""
    for_s: float = Field(defaults.STABILITY_S, gt=0, le=86_400)
    """As long as the stability window: a breach must last as long as a recovery does to count,
    so one bad bucket does not abort a game day. At most a day, the longest observation window."""

    @model_validator(mode="after")
    def _one_limit(self) -> AbortCondition:
        if (self.above is None) == (self.below is None):
            raise ValueError("expected exactly one of 'above' and 'below'")
        for side in ("above", "below"):
            limit = getattr(self, side)
            if self.metric == "error_rate" and limit is not None and limit > 1:
                raise _KeyedValueError((side,), "expected a number <= 1: error_rate is a share of requests")
        return self


class Cost(_Model):
    """What downtime costs, for downtime_cost_usd."""

    per_hour_usd: float = Field(defaults.COST_PER_HOUR_USD, ge=0, le=1e12)
    """The hourly loss the project started from: two days of downtime at about $40,000 an hour.
    At most $10^12 an hour, beyond any business's revenue, so every cost stays a finite number."""


# --- comparisons --------------------------------------------------------------------------


def _compared_metric(name: str) -> str:
    # The registry names every metric once; a typo is refused with the closest name.
    try:
        info = metric_registry.get(name, "metric")
    except InputError as exc:
        raise ValueError(str(exc).removeprefix("metric: ")) from None
    if not info.comparable:
        raise ValueError(f"{name!r} is not compared")
    return name


ComparedMetric = Annotated[str, AfterValidator(_compared_metric)]


class CompareSettings(_Model):
    """How `harness compare` judges runs of this plan (docs/compare.md)."""

    primary: ComparedMetric = "recovery_time_s"
    """The metric a decision rests on, tested first at the page's alpha; the others only after
    it, under `correction`. Recovery time: what a resilience comparison is usually about."""
    margins: dict[ComparedMetric, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}
    """Practical margins in the metric's unit (`recovery_time_s: 2.0`): a shift whose interval
    lies within ± the margin is "equivalent". None by default: what matters is the plan's call."""
    correction: Literal["holm", "bh"] = "holm"
    """Holm keeps the chance of any false "better" or "worse" on the page under alpha; "bh"
    (Benjamini-Hochberg) bounds only their expected share, and finds more."""
    metrics: tuple[ComparedMetric, ...] = ()
    """The metrics a comparison of this plan's runs reads (`harness compare` without `--metric`,
    and the comparison a several-sided `harness run` writes); empty: the registry's defaults. A
    plan about the control plane names its control-plane metrics here."""


# --- scenarios and the plan ---------------------------------------------------------------


class Requirement(StrEnum):
    """What a scenario needs of its target beyond the Kubernetes API, declared in `requires`.

    The engine checks each against the target's facts once the target is open; a scenario whose
    requirement the target does not meet is not run and is reported not applicable, with the
    reason (harness.plan.applicability)."""

    SELF_MANAGED_CONTROL_PLANE = "self-managed-control-plane"
    """The experiment acts on the control plane's own hosts (etcd and API-server static pods
    through SSM): impossible on a managed control plane (EKS, GKE, AKS), which hides them."""


def _requirement(value: Any) -> Any:
    # One clear message naming the accepted values, instead of pydantic's enum wording.
    if isinstance(value, str) and value in {r.value for r in Requirement}:
        return value
    accepted = ", ".join(r.value for r in Requirement)
    raise ValueError(f"unknown requirement {value!r}; expected one of: {accepted}")


class Scenario(_Model):
    """One experiment run under load, `trials` times."""

    name: Slug
    experiment: Path
    vars: dict[str, VarValue] = {}
    """Values for the experiment's configuration (as `chaos run --var`); none: its own defaults."""
    trials: int = Field(1, ge=1, le=100)
    """One run per game day; comparisons ask for more to get confidence intervals."""
    primary: ComparedMetric | None = None
    """This scenario's primary metric for `harness compare`; None: the plan's `compare.primary`."""
    gates: list[GateText] = []
    """Gates for this scenario. Each overrides the plan's gates on the same left side
    (`recovery_time_s < 10` replaces `recovery_time_s < 30`); the others still apply."""
    requires: list[Annotated[Requirement, BeforeValidator(_requirement)]] = []
    """What the target must offer for this scenario to apply (`self-managed-control-plane`); on
    a target without it the scenario is not run and is reported "not applicable" rather than
    failed. None: it applies everywhere, as every fault through the Kubernetes API does."""

    @model_validator(mode="after")
    def _requirements_once(self) -> Scenario:
        seen: set[Requirement] = set()
        for index, requirement in enumerate(self.requires):
            if requirement in seen:
                raise _KeyedValueError(("requires", index), f"{requirement.value!r} is listed twice")
            seen.add(requirement)
        return self


class Plan(_Model):
    """A game day, a load gate or one side of a comparison."""

    name: Slug
    description: str | None = None
    """Free text for reports; None: the name says enough."""
    target: Target = TestbedTarget(kind="testbed")
    """The embedded testbed: it runs anywhere and cannot hurt a real cluster."""
    load: LoadSpec
    windows: Windows = Windows()
    """DESIGN's stability window and phases long enough for the bundled experiments."""
    slo: Slo = Slo()
    """Every threshold derived from the baseline, so a plan works on a service it knows nothing about."""
    baseline: Baseline = Baseline()
    """A steady baseline is required before any fault, with the documented thresholds."""
    abort: list[AbortCondition] = []
    """Empty: a game day measures a bad outcome rather than cutting it short."""
    scenarios: list[Scenario] = Field(min_length=1)
    gates: list[GateText] = []
    """Gates for every scenario; none: the run reports metrics and passes."""
    cost: Cost = Cost()
    """$40,000 an hour, the figure this project started from."""
    compare: CompareSettings = CompareSettings()
    """Recovery time as the primary metric, Holm for the rest, no margins."""

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        seen: dict[str, int] = {}
        for index, scenario in enumerate(self.scenarios):
            if scenario.name in seen:
                raise _KeyedValueError(
                    ("scenarios", index, "name"),
                    f"scenario name {scenario.name!r} is already used by scenario {seen[scenario.name]}; "
                    "names must be unique (they name run directories and history entries)",
                )
            seen[scenario.name] = index
        refused = (
            (gates.KUBERNETES_ONLY_NAMES, "kubernetes targets only; the testbed has no API server to probe")
            if isinstance(self.target, TestbedTarget)
            else (gates.TESTBED_ONLY_NAMES, "the testbed only (from its etcd probes and ground truth)")
        )
        places: list[tuple[tuple[str | int, ...], list[str]]] = [(("gates",), self.gates)]
        places += [(("scenarios", i, "gates"), sc.gates) for i, sc in enumerate(self.scenarios)]
        for where, texts in places:
            for j, text in enumerate(texts):
                used = gates.parse(text).names & refused[0]
                if used:
                    raise _KeyedValueError((*where, j), f"{sorted(used)[0]} is measured on {refused[1]}")
        if isinstance(self.target, KubernetesTarget) and self.load.host == "auto":
            raise _KeyedValueError(
                ("load", "host"),
                "a kubernetes target needs the service's URL: 'auto' finds only the testbed's",
            )
        return self

    def with_trials(self, trials: int) -> Plan:
        """The same plan with every scenario run `trials` times (`harness run --trials`)."""
        scenarios = [s.model_copy(update={"trials": trials}) for s in self.scenarios]
        return self.model_copy(update={"scenarios": scenarios})

    def with_cluster(self, cluster: str) -> Plan:
        """The same plan with `target.cluster` set (`harness run --cluster`): one plan file run
        in several clusters gives each its own history key and comparison side."""
        if not isinstance(self.target, KubernetesTarget):
            raise ValueError(f"a {self.target.kind} target has no cluster name; only kubernetes targets do")
        target = self.target.model_copy(update={"cluster": _slug(cluster)})
        return self.model_copy(update={"target": target})

    def gates_for(self, scenario: Scenario) -> list[str]:
        """The gates a scenario is judged by: its own, plus the plan's on other left sides."""
        own = [gates.parse(text) for text in scenario.gates]
        subjects = {gate.subject for gate in own}
        inherited = [text for text in self.gates if gates.parse(text).subject not in subjects]
        return inherited + list(scenario.gates)
