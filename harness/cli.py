"""The `harness` command: parse flags, call one function, map errors to exit codes.

Exit codes: 0 passed, 1 a gate failed, 2 bad input or usage, 3 the run could not complete.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from harness import __version__, bundle, redaction
from harness.errors import HarnessError, InputError

app = typer.Typer(
    name="harness",
    help="Resilience Harness: chaos experiments under real-looking load, scored for what users felt.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app_cmd = typer.Typer(help="The reference subscription service.", no_args_is_help=True)
load_cmd = typer.Typer(help="Load tests with Locust and the timeline recorder.", no_args_is_help=True)
timeline_cmd = typer.Typer(help="Read timelines.", no_args_is_help=True)
testbed_cmd = typer.Typer(
    help="The local testbed: etcd, nodes, HAProxy, fault proxies.", no_args_is_help=True
)
app.add_typer(app_cmd, name="app")
app.add_typer(testbed_cmd, name="testbed")
app.add_typer(load_cmd, name="load")
app.add_typer(timeline_cmd, name="timeline")

# No markup: messages carry paths, log lines and user text in which "[...]" is not a style.
err = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, markup=False)

DEFAULT_LOCUSTFILE = bundle.LOCUSTFILE
DEFAULT_REPORTS = Path("reports")
"""Run folders go under the working directory, as a CI job's artifacts do, not where the harness is installed."""


def _version(value: bool) -> None:
    if value:
        out.print(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Resilience Harness."""


@app_cmd.command("serve")
def app_serve(
    db: Annotated[str, typer.Option(help="sqlite:///PATH (WAL) or postgresql://USER@HOST:PORT/DB")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    payment_latency_ms: Annotated[float, typer.Option(min=0, help="Mean simulated payment latency.")] = 50.0,
    payment_failure_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of charges the provider fails.")
    ] = 0.0,
    admin_token: Annotated[
        str | None, typer.Option(envvar="HARNESS_ADMIN_TOKEN", help="Require this token on /v1/admin.")
    ] = None,
    db_timeout_s: Annotated[float, typer.Option(min=0.1, help="Database wait before answering 503.")] = 2.0,
) -> None:
    """Serve the reference subscription service until SIGTERM."""
    from pydantic import ValidationError

    from harness.app.server import serve
    from harness.app.settings import AppSettings

    try:
        settings = AppSettings(
            db=db,
            payment_latency_ms=payment_latency_ms,
            payment_failure_rate=payment_failure_rate,
            admin_token=admin_token,
            db_timeout_s=db_timeout_s,
        )
    except ValidationError as exc:
        raise InputError(f"--db: {exc.errors()[0]['msg']} (got {redaction.text(repr(db))})") from None
    serve(settings, host, port, workers)


@load_cmd.command("run")
def load_run(
    host: Annotated[
        str | None, typer.Option(help="Base URL of the service; default: start a local reference service.")
    ] = None,
    locustfile: Annotated[
        Path, typer.Option(help="Locust file with the user journeys.")
    ] = DEFAULT_LOCUSTFILE,
    users: Annotated[int, typer.Option(min=1, help="Simulated users.")] = 20,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="Users started per second.")] = 10.0,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of load.")] = 15.0,
    processes: Annotated[int, typer.Option(min=1, max=64, help="Locust worker processes.")] = 1,
    bucket: Annotated[float, typer.Option(min=0.1, max=60, help="Timeline bucket width, seconds.")] = 1.0,
    pacing: Annotated[float | None, typer.Option(min=0, help="Seconds between a user's task starts.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder; default reports/<id>/.")
    ] = None,
) -> None:
    """Run a short load test and print where its timeline is."""
    from harness.load import process
    from harness.timeline import load_series

    if not locustfile.is_file():
        raise InputError(f"--locustfile: {locustfile} does not exist")
    run_id = dt.datetime.now(dt.UTC).strftime("load-%Y%m%dT%H%M%SZ")
    out_dir = out_dir or DEFAULT_REPORTS / run_id
    out_dir.mkdir(parents=True, exist_ok=True)

    def run(url: str) -> process.LoadResult:
        spec = process.LoadSpec(
            locustfile=locustfile,
            host=url,
            users=users,
            spawn_rate=spawn_rate,
            run_time_s=duration,
            processes=processes,
            bucket_s=bucket,
            pacing_s=pacing,
        )
        err.print(f"load: {users} users against {url} for {duration:.0f} s ({processes} process(es))")
        return process.run_load(spec, out_dir)

    if host is None:
        from harness.app.launcher import open_service

        db = f"sqlite:///{out_dir / 'service.db'}"
        with open_service(db, log_path=out_dir / "service.log") as service:
            result = run(service.url)
    else:
        result = run(host)
    if not result.timeline.exists():
        raise HarnessError(f"Locust wrote no timeline; see {result.log}")
    series = load_series(result.timeline)
    total = series.window_at(0, len(series))
    pct, cor = total.latency_ms, total.latency_corrected_ms
    out.print(
        f"requests {total.requests}, failures {total.failures}, "
        f"subscriptions completed {total.kpi}, p95 {_ms(pct['p95'])} (corrected {_ms(cor['p95'])}), "
        f"p99 {_ms(pct['p99'])} (corrected {_ms(cor['p99'])})"
    )
    out.print(f"timeline: {result.timeline}")


@load_cmd.command("worker")
def load_worker(
    master: Annotated[str, typer.Option(help="The harness's Locust master, HOST:PORT (load.workers.bind).")],
    locustfile: Annotated[
        Path, typer.Option(help="Locust file, the same as the plan's load.locustfile.")
    ] = DEFAULT_LOCUSTFILE,
    processes: Annotated[int, typer.Option(min=1, max=64, help="Locust worker processes here.")] = 1,
    runs: Annotated[int, typer.Option(min=0, help="Stop after this many worker runs; 0: until stopped.")] = 0,
    log: Annotated[
        Path | None, typer.Option(help="Append the workers' output here; default: this command's output.")
    ] = None,
) -> None:
    """Make load for a harness run from this machine: a Locust worker that joins the run's master,
    again for every scenario, until SIGTERM or Ctrl-C."""
    from harness.load import process

    host, sep, port = master.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"--master: expected HOST:PORT, such as gameday.example:5557 (got {master!r})")
    if not locustfile.is_file():
        raise InputError(f"--locustfile: {locustfile} does not exist")
    err.print(f"load worker: joining the master at {host}:{port} ({processes} process(es))")
    process.run_workers(locustfile, (host.strip("[]"), int(port)), log, processes=processes, runs=runs)


@timeline_cmd.command("summary")
def timeline_summary(
    path: Annotated[Path, typer.Argument(help="A timeline.jsonl file.")],
    window: Annotated[float, typer.Option(min=0.1, help="Window width in seconds.")] = 5.0,
) -> None:
    """Print counts and percentiles per window of a timeline."""
    from rich.table import Table

    from harness.timeline import load_series

    series = load_series(path)
    if not len(series):
        raise InputError(f"{path}: the timeline has no buckets")
    table = Table("start (s)", "requests", "failures", "kpi", "p50 ms", "p99 ms", "p99 corrected ms")
    start, end = float(series.t[0]), float(series.t[-1] + series.dt[-1])
    t = start
    while t < end:
        w = series.window(t, t + window)
        p, c = w.latency_ms, w.latency_corrected_ms
        table.add_row(
            f"{t - start:.1f}",
            str(w.requests),
            str(w.failures),
            str(w.kpi),
            _ms(p["p50"]),
            _ms(p["p99"]),
            _ms(c["p99"]),
        )
        t += window
    out.print(table)


DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Testbed folder (default: $HARNESS_TESTBED_DIR or ~/.cache/harness/testbed)."),
]


def _testbed_dir(path: Path | None) -> Path:
    from harness.testbed import state

    return (path or state.default_dir()).expanduser()


@testbed_cmd.command("up")
def testbed_up(
    profile: Annotated[
        str, typer.Option(help="self-managed (1 etcd member) or managed (3 members, 3 zones).")
    ] = "managed",
    dir: DirOption = None,
    lb_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Load balancer port; default: a free one.")
    ] = None,
    lb_health_checks: Annotated[
        bool,
        typer.Option(
            help="HAProxy checks /readyz itself (a cloud load balancer) instead of following endpoints."
        ),
    ] = False,
) -> None:
    """Start the testbed (or report the one already running) and print where it serves."""
    from harness import runlock
    from harness.testbed import cluster, profiles

    if profile not in [p.value for p in profiles.ProfileName]:
        raise InputError(f"--profile: expected self-managed or managed, got {profile!r}")
    runlock.refuse_if_held(_testbed_dir(dir), "up")
    started = time.monotonic()
    state = cluster.up(
        profiles.builtin(profile, lb_health_checks=lb_health_checks), _testbed_dir(dir), lb_port=lb_port
    )
    out.print(
        f"testbed {state.profile.name} up in {time.monotonic() - started:.1f} s: {state.lb_url} ({state.dir})"
    )


@testbed_cmd.command("status")
def testbed_status(
    dir: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show etcd members, nodes, replicas and endpoints."""
    import json as jsonlib

    from harness import runlock
    from harness.testbed import cluster
    from harness.testbed import state as tbstate

    try:
        info = cluster.status(_testbed_dir(dir))
    except tbstate.NotRunningError as exc:
        if holder := runlock.holder(_testbed_dir(dir)):  # a run holds the folder, bringing its testbed up
            raise tbstate.NotRunningError(
                f"{exc}; the folder is held by {runlock.describe(holder)}"
            ) from None
        raise
    if as_json:
        print(jsonlib.dumps(info, indent=2))
        return
    cp = info["etcd"]
    out.print(
        f"{info['profile']} testbed at {info['lb_url']} ({'running' if info['running'] else 'NOT running'})"
    )
    out.print(f"etcd: quorum {cp['quorum']}, leader {cp['leader']}")
    for m in cp["members"]:
        out.print(
            f"  {m['name']:8s} {m['zone']:8s} {'healthy' if m['healthy'] else 'DOWN'}{' leader' if m['leader'] else ''}"
        )
    for n in info["nodes"]:
        out.print(
            f"  {n['name']:8s} {n['zone']:8s} {'Ready' if n['ready'] else 'NotReady'} {', '.join(n['replicas'])}"
        )
    out.print(f"endpoints: {len(info['endpoints'])}")
    out.print(f"run lock: {'held by ' + info['lock']['described'] if info['lock'] else 'free'}")


ForceOption = Annotated[
    bool, typer.Option("--force", help="Act even though a live run holds the testbed's run lock.")
]


@testbed_cmd.command("down")
def testbed_down(
    dir: DirOption = None,
    keep: Annotated[bool, typer.Option(help="Keep the folder (logs, events, data).")] = False,
    force: ForceOption = False,
) -> None:
    """Stop every testbed process and remove its folder."""
    from harness import runlock
    from harness.testbed import cluster

    runlock.refuse_if_held(_testbed_dir(dir), "down", force)
    started = time.monotonic()
    if cluster.down(_testbed_dir(dir), keep=keep):
        out.print(f"testbed down in {time.monotonic() - started:.1f} s")
    else:
        out.print("no testbed was running")


@app.command("cleanup")
def cleanup(
    dir: DirOption = None,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan",
            help="Clean up this plan's target instead of the testbed: for a Kubernetes target, undo what "
            "harness activities left marked in the cluster, then run every experiment's rollbacks.",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="The cluster name the killed run used (its --cluster): AWS marks are this cluster's only.",
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Undo every fault a crashed or killed run left applied (the testbed, or a plan's cluster)."""
    from harness.engine import commands

    raise typer.Exit(commands.clean_up(_testbed_dir(dir), plan, cluster, _OUTPUT, force=force))


ReportsOption = Annotated[Path, typer.Option("--reports", help="Where run folders are written.")]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Validate the plan and print what each experiment would touch (pods, nodes, instances), "
        "touching nothing.",
    ),
]
KeepOption = Annotated[bool, typer.Option(help="Leave a testbed this run started running afterwards.")]
HistoryOption = Annotated[
    str | None,
    typer.Option(
        "--history",
        metavar="URL|FILE",
        help="History store: an SQLAlchemy URL, or an SQLite file's path such as a CI cache's "
        "ci-cache/history.sqlite (default: $HARNESS_HISTORY_URL, else history.sqlite in --reports).",
    ),
]
TrialsOption = Annotated[
    int | None,
    typer.Option(
        "--trials",
        min=1,
        max=100,
        help="Run every scenario this many times (overrides the plan), for comparisons with power.",
    ),
]

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        max=86400,
        help="When another run holds the target (testbed folder or Kubernetes namespace), wait up to "
        "this long for it instead of failing at once with exit 2.",
    ),
]

ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="This cluster's name in the history and in comparisons (sets target.cluster): one plan "
        "file run in several clusters, each under its own name.",
    ),
]


ProfileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--profile",
        metavar="PROFILE",
        help="Run on the testbed with this profile (self-managed or managed) instead of the plan's. "
        "Repeat it to run the plan on each, trials interleaved (one run folder per side, one batch "
        "id); each side's testbed is in DIR-PROFILE beside --dir.",
    ),
]
ContextOption = Annotated[
    list[str] | None,
    typer.Option(
        "--context",
        metavar="CONTEXT=URL",
        help="Run on this kubeconfig context (one of the plan's allowed_contexts), its load at URL "
        "(default: the plan's load.host). Repeat it to run the plan on each cluster, trials "
        "interleaved; each then needs its URL.",
    ),
]


@app.command("run")
def run(
    plan: Annotated[
        str | None, typer.Argument(help="Plan file or bundled plan name (default: local-gameday).")
    ] = None,
    reports: ReportsOption = DEFAULT_REPORTS,
    dir: DirOption = None,
    keep_testbed: KeepOption = False,
    trials: TrialsOption = None,
    history: HistoryOption = None,
    dry_run: DryRunOption = False,
    cluster: ClusterOption = None,
    wait: WaitOption = 0.0,
    profile: ProfileOption = None,
    context: ContextOption = None,
) -> None:
    """Run a plan: load, faults, observation, scores, gates; writes reports/<run-id>/.

    With several --profile or --context: the plan on each target, trials interleaved, to compare."""
    _run_plan(plan, reports, dir, keep_testbed, trials, history, cluster, wait, quiet=False, dry_run=dry_run,
              profiles=tuple(profile or ()), contexts=tuple(context or ()))  # fmt: skip


@app.command("gate")
def gate(
    plan: Annotated[str, typer.Argument(help="Plan file or bundled plan name.")],
    reports: ReportsOption = DEFAULT_REPORTS,
    dir: DirOption = None,
    keep_testbed: KeepOption = False,
    trials: TrialsOption = None,
    history: HistoryOption = None,
    cluster: ClusterOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """The same run with terse output for CI: exit 1 when a gate fails, 3 when it could not complete."""
    _run_plan(plan, reports, dir, keep_testbed, trials, history, cluster, wait, quiet=True)


def _run_plan(
    plan: str | None,
    reports: Path,
    dir: Path | None,
    keep_testbed: bool,
    trials: int | None,
    history: str | None,
    cluster: str | None,
    wait: float,
    *,
    quiet: bool,
    dry_run: bool = False,
    profiles: tuple[str, ...] = (),
    contexts: tuple[str, ...] = (),
) -> NoReturn:
    from harness.engine import commands

    request = commands.RunRequest(
        plan,
        reports,
        _testbed_dir(dir),
        keep_testbed,
        quiet=quiet,
        trials=trials,
        history_url=history,
        dry_run=dry_run,
        cluster=cluster,
        wait_s=wait,
        profiles=profiles,
        contexts=contexts,
    )
    raise typer.Exit(commands.run_plan(request, _OUTPUT))


RunDirArgument = Annotated[Path, typer.Argument(help="A run folder (reports/<run-id>).")]


@app.command("score")
def score(run_dir: RunDirArgument, history: HistoryOption = None) -> None:
    """Score a finished run again from its folder alone and rewrite result.json, summary.md, junit.xml."""
    from harness.engine import commands

    raise typer.Exit(commands.score_run(run_dir, history, _OUTPUT))


@app.command("report")
def report(run_dir: RunDirArgument, history: HistoryOption = None) -> None:
    """Render report.html (and summary.md, junit.xml) again from a run folder's result.json."""
    from harness.engine import commands

    raise typer.Exit(commands.render_run(run_dir, history, _OUTPUT))


@app.command("findings")
def findings_cmd(
    run_dir: RunDirArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """List a run's findings (docs/findings.md): what each rule read, the change it recommends, its effect."""
    from harness.engine import commands

    raise typer.Exit(commands.list_findings(run_dir, as_json, _OUTPUT))


@app.command("compare")
def compare_cmd(
    run_dirs: Annotated[
        list[Path] | None, typer.Argument(help="Run folders; the first side is the baseline.")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", metavar="NAME=RUN_DIR", help="Name a side; repeat a NAME to pool runs."),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=0.0001, max=0.5, help="The page's chance of any false better/worse."),
    ] = 0.05,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="Compare this metric (dotted names); repeatable.")
    ] = None,
    correction: Annotated[
        str | None,
        typer.Option(
            "--correction",
            metavar="holm|bh",
            help="How secondary metrics share the level (default: the plan's compare.correction, holm).",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for compare.html and compare.md (default: reports/compare-<time>)."
        ),
    ] = None,
    own_thresholds: Annotated[
        bool,
        typer.Option(
            "--own-thresholds",
            help="Keep each trial's metrics as scored on its own baseline's thresholds "
            "(default: every trial scored again on one scale per scenario).",
        ),
    ] = False,
    reports: ReportsOption = DEFAULT_REPORTS,
) -> None:
    """Put runs side by side: medians with exact intervals, shifts, exact rank tests, a verdict per metric."""
    from harness import compare

    labels = compare.parse_label_options(label or [])
    report = compare.compare_runs(
        run_dirs or [],
        labels or None,
        alpha=alpha,
        metrics=metric or None,
        correction=correction,
        own_thresholds=own_thresholds,
    )
    folder = out_dir or reports / f"compare-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    html, md = compare.write_comparison(report, folder)
    out.print(md.read_text(), highlight=False)
    out.print(f"comparison: {html}")


@app.command("history")
def history_list(
    plan: Annotated[str | None, typer.Option("--plan", help="Only runs of this plan.")] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Only runs on this target (testbed/managed, kubernetes/CTX)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs, newest first.")] = 20,
    reports: ReportsOption = DEFAULT_REPORTS,
    history: HistoryOption = None,
) -> None:
    """Past runs from the history store, newest first."""
    from harness.store import history as history_store

    with history_store.open_history(history, reports) as store:
        rows = store.runs(plan=plan, target=target, limit=limit)
    if not rows:
        out.print("history: no runs recorded" + (f" for plan {plan}" if plan else ""))
        return
    # Plain aligned lines, never wrapped: a run id is copied whole, and the output is grep-able.
    rows_text = [
        (
            dt.datetime.fromtimestamp(row.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            row.run_id,
            row.target,
            row.status,
            "passed" if row.passed else "not passed",
        )
        for row in rows
    ]
    header = ("started (UTC)", "run", "target", "status", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows_text]) for i in range(len(header))]
    for line in [header, *rows_text]:
        out.print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip(),
                  highlight=False, overflow="ignore", crop=False)  # fmt: skip


@app.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Plan or experiment files, or bundled plans' names.")],
) -> None:
    """Check plans and experiments without running anything; exit 2 on the first problem."""
    from harness.engine import commands

    raise typer.Exit(commands.validate(files, _OUTPUT))


@app.command("preflight")
def preflight_cmd(plan: Annotated[str, typer.Argument(help="Plan file or bundled plan name.")]) -> None:
    """Check, reading only, that a Kubernetes plan can run: context, API server, permissions, CRDs,
    selector, AWS; exit 2 when something blocks, 3 when the cluster cannot be reached."""
    from harness.kubernetes import preflight

    raise typer.Exit(preflight.run(plan, out))


@app.command("list")
def list_bundled() -> None:
    """The bundled plans and experiments, with their descriptions."""
    from rich.table import Table

    from harness.plan import catalog

    for section, entries in catalog.bundled().items():
        table = Table(title=section, title_justify="left", box=None, show_header=False, pad_edge=False)
        table.add_column(no_wrap=True)
        table.add_column()
        for entry in entries:
            table.add_row(entry.name, entry.summary)
        out.print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _error(message: object) -> None:
    """Every error goes through harness.redaction: no secret reaches the terminal."""
    err.print(Text.assemble(("error", "red"), f": {redaction.text(message)}"), highlight=False)


def _warning(message: object) -> None:
    """Something the user should know that does not stop the command (a plan lint)."""
    err.print(Text.assemble(("warning", "yellow"), f": {redaction.text(message)}"), highlight=False)


class _ConsoleOutput:
    """harness.engine.commands.Output on the terminal: results on stdout, everything else on stderr."""

    def print(self, text: str, *, highlight: bool = True, end: str = "\n") -> None:
        out.print(text, highlight=highlight, end=end)

    def note(self, text: str) -> None:
        err.print(text)

    def warning(self, message: object) -> None:
        _warning(message)

    def error(self, message: object) -> None:
        _error(message)


_OUTPUT = _ConsoleOutput()


def main() -> None:
    """Console entry point: HarnessError → message and its exit code, no traceback.

    Typer (standalone) already turns usage errors into a message and exit 2.
    """
    try:
        app()
    except HarnessError as exc:
        _error(exc)
        sys.exit(exc.exit_code)
