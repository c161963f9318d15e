"""The history of runs: every run's verdict and scenario metrics, in SQLite or any SQLAlchemy database.

The engine records each run's result.json when the run ends, and `harness score` records it
again (replacing that run); `harness history` lists runs; the report draws each scenario's
trend; and gates compare with the past through `history_functions`
(`recovery_time_s <= 1.2 * median_last(5)`), so a release gate catches a regression and not
only an absolute breach.

By default the store is `reports/history.sqlite` under the working directory (beside the run
folders of `--reports`): WAL and a busy timeout let two harness processes on one machine record
into the same file. `--history` or HARNESS_HISTORY_URL name another: an SQLite file by its path
(`ci-cache/history.sqlite`, such as a file a CI cache restores between throwaway runners), or a
database URL; a team points them at PostgreSQL (`postgresql://user@host/harness`, driven by psycopg 3).

History is kept per plan name and target key (`testbed/managed`, `kubernetes/<context>`):
comparing a self-managed cluster's recovery with a managed one's is a comparison, not a trend.
One value per run and scenario is the median over that run's trials. A metric that was not
measured (null) in every trial leaves the run out, except where null is itself the outcome
(NEVER_HAPPENED: `recovery_time_s` null means the scenario did not recover): such a run is kept
with the value None, and history functions count it as infinitely long.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from harness import redaction
from harness.errors import HarnessError, InputError
from harness.plan import gates
from harness.result import files as result_files
from harness.result import metrics as metric_registry
from harness.result import model as result_model
from harness.sqlite import durable_and_shared

ENV_VAR = "HARNESS_HISTORY_URL"
FLAG = "--history"
FILE_NAME = "history.sqlite"
FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
"""A --history value without `://` ending in one of these is an SQLite file's path; any other is
taken for a mistyped URL and refused, rather than quietly starting an empty history in a new file."""

KEY_METRICS: tuple[str, ...] = metric_registry.history_defaults()
"""The metrics a trend shows by default: how long, how bad, what it cost, what was lost."""

NEVER_HAPPENED: Mapping[str, str] = metric_registry.never_happened()
"""Metrics whose null is an outcome (the event never happened within the observation window),
ordered after every number: a run that did not recover is the slowest recovery, not a gap."""

BUSY_TIMEOUT_S = 30.0
"""How long an SQLite writer waits for another harness process's write: recording a run takes
milliseconds, so this only runs out when something holds the file for good."""
CONNECT_TIMEOUT_S = 5
"""How long to wait for a PostgreSQL server before saying it cannot be reached."""
_ATTEMPTS = 5

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("plan", sa.String(200), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("ended", sa.Float, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("run_dir", sa.Text, nullable=True),
    sa.Column("harness_version", sa.String(60), nullable=True),
    sa.Index("ix_runs_plan_target_started", "plan", "target", "started"),
)

scenario_results_table = sa.Table(
    "scenario_results",
    metadata,
    sa.Column("run_id", sa.String(200), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=True),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=True),
)


@dataclass(frozen=True)
class RunRecord:
    """One recorded run, as `harness history` lists it."""

    run_id: str
    plan: str
    target: str
    started: float
    ended: float | None
    status: str
    passed: bool
    run_dir: str | None
    harness_version: str | None


# --- URLs and errors ----------------------------------------------------------------------


def _redact(text: str) -> str:
    """Text with anything that looks like a password in a URL replaced by ***."""
    return redaction.text(text)


def _show(url: sa.URL) -> str:
    return _redact(url.render_as_string(hide_password=True))


def as_url(text: str) -> str:
    """A --history or HARNESS_HISTORY_URL value as a URL: the path of an SQLite file (no `://`,
    named *.sqlite, *.sqlite3 or *.db) becomes sqlite:/// with its absolute path; else unchanged."""
    if "://" in text or not text.strip().lower().endswith(FILE_SUFFIXES):
        return text
    return f"sqlite:///{Path(text.strip()).expanduser().absolute()}"


def default_url(reports_dir: Path) -> str:
    """HARNESS_HISTORY_URL when set, else the SQLite file `reports_dir/history.sqlite`."""
    return as_url(os.environ.get(ENV_VAR) or "") or f"sqlite:///{Path(reports_dir).absolute() / FILE_NAME}"


def _parse_url(text: str, source: str) -> sa.URL:
    """The URL, with the psycopg 3 driver for plain postgresql://; InputError naming `source`."""
    expected = (
        "expected an SQLAlchemy database URL such as sqlite:///reports/history.sqlite or "
        "postgresql://user@host:5432/harness, or an SQLite file's path ending in .sqlite"
    )
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port or bracket SQLAlchemy cannot read
        raise InputError(f"{source}: {expected} (got {_redact(text)!r})") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    try:
        url.get_dialect()
    except (sa.exc.NoSuchModuleError, ImportError):
        raise InputError(
            f"{source}: no database driver for {url.drivername!r}: {expected} (got {_show(url)!r})"
        ) from None
    return url


def _detail(exc: sa.exc.DBAPIError, url: sa.URL) -> str:
    """The database's own complaint on one line, with the URL's password (if any) masked."""
    text = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    return redaction.text(text, [str(url.password)] if url.password else [])


# --- the store ----------------------------------------------------------------------------


class HistoryStore:
    """Recorded runs in a database; creates its tables when they are absent."""

    def __init__(self, url: str, source: str = f"{FLAG} / {ENV_VAR}") -> None:
        self.url = _parse_url(url, source)
        self.source = source
        try:
            self.engine = _create_engine(self.url)
        except ImportError as exc:
            raise InputError(
                f"{source}: the database driver for {self.url.drivername!r} is not installed ({exc})"
            ) from None
        except OSError as exc:  # the folder of an SQLite file cannot be created
            raise HarnessError(f"history store {_show(self.url)}: {exc}") from None
        try:
            self._check_reachable()
            self._create_tables()
        except BaseException:
            self.engine.dispose()
            raise

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"HistoryStore({_show(self.url)!r})"

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Database failures as a HarnessError that names the store but not its password."""
        try:
            yield
        except sa.exc.DBAPIError as exc:
            raise HarnessError(
                f"history store {_show(self.url)}: could not {doing}: {_detail(exc, self.url)}"
            ) from None

    def _check_reachable(self) -> None:
        try:
            with self.engine.connect():
                pass
        except sa.exc.DBAPIError as exc:
            raise HarnessError(
                f"history store {_show(self.url)} (from {self.source}) cannot be reached: "
                f"{_detail(exc, self.url)}"
            ) from None

    def _retrying(self, doing: str, work: Callable[[sa.Connection], None]) -> None:
        """Run `work` in one transaction, again when a concurrent writer got in the way."""
        for attempt in range(_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    work(conn)
                return
            except (sa.exc.OperationalError, sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # Two processes creating the tables or recording the same run at once: one
                # loses the race ("already exists", a duplicate key, SQLite's "locked" when a
                # reader tried to become a writer). The next attempt sees the winner's work.
                if attempt == _ATTEMPTS - 1:
                    with self._errors(doing):
                        raise
                time.sleep(0.1 * (attempt + 1))

    def _create_tables(self) -> None:
        def create(conn: sa.Connection) -> None:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7355609)"))
            metadata.create_all(conn, checkfirst=True)

        self._retrying("create its tables", create)

    # --- writing --------------------------------------------------------------------------

    def record(self, result: result_model.Result | Mapping[str, Any], run_dir: Path | None = None) -> None:
        """Record a run from its result.json; recording the same run_id again replaces it."""
        result = result_files.as_result(result)
        run_id = result.run_id
        run_row = {
            "run_id": run_id,
            "plan": result.plan.name or "unnamed",
            "target": target_key(result.target),
            "started": float(result.started),
            "ended": None if result.ended is None else float(result.ended),
            "status": result.status or "unknown",
            "passed": result.passed,
            "run_dir": None if run_dir is None else str(Path(run_dir).absolute()),
            "harness_version": result.environment.harness,
        }
        scenario_rows = [
            {
                "run_id": run_id,
                "name": s.name,
                "trial": s.trial,
                "status": s.status,
                "passed": s.passed,
                "metrics": None if s.metrics is None else _plain(s.metrics.as_mapping()),
            }
            for s in result.scenarios
        ]

        def write(conn: sa.Connection) -> None:
            # Deleting first takes the write lock at once (SQLite), and makes a re-score replace
            # the run's scenarios rather than add to them.
            s = scenario_results_table
            conn.execute(sa.delete(s).where(s.c.run_id == run_id))
            conn.execute(sa.delete(runs_table).where(runs_table.c.run_id == run_id))
            conn.execute(sa.insert(runs_table), [run_row])
            if scenario_rows:
                conn.execute(sa.insert(s), scenario_rows)

        self._retrying(f"record run {run_id}", write)

    # --- reading --------------------------------------------------------------------------

    def runs(self, plan: str | None = None, target: str | None = None, limit: int = 50) -> list[RunRecord]:
        """Recorded runs, newest first, optionally of one plan and one target key."""
        r = runs_table
        query = sa.select(r).order_by(r.c.started.desc(), r.c.run_id.desc()).limit(limit)
        if plan is not None:
            query = query.where(r.c.plan == plan)
        if target is not None:
            query = query.where(r.c.target == target)
        with self._errors("list runs"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [RunRecord(**row._asdict()) for row in rows]

    def _scenario_rows(
        self,
        plan: str,
        target: str,
        scenarios: Sequence[str],
        before: float | None,
        exclude_run: str | None = None,
        completed_only: bool = True,
    ) -> Iterator[tuple[str, float, str, list[tuple[Any, bool]]]]:
        """Per earlier run (newest first) and scenario: run id, start, name, [(metrics, passed)]
        of its trials."""
        r, s = runs_table, scenario_results_table
        query = (
            sa.select(r.c.run_id, r.c.started, s.c.name, s.c.metrics, s.c.passed)
            .join(s, s.c.run_id == r.c.run_id)
            .where(r.c.plan == plan, r.c.target == target, s.c.name.in_(list(scenarios)))
            .order_by(r.c.started.desc(), r.c.run_id.desc(), s.c.name, s.c.trial)
        )
        if before is not None:
            query = query.where(r.c.started < before)
        if exclude_run is not None:
            query = query.where(r.c.run_id != exclude_run)
        if completed_only:
            query = query.where(r.c.status == "completed", s.c.status == "completed")
        with self._errors("read the history"), self.engine.connect() as conn:
            rows = conn.execute(query.execution_options(yield_per=200))
            try:
                for (run_id, started, name), group in itertools.groupby(rows, key=lambda row: row[:3]):
                    yield run_id, started, name, [(row.metrics, row.passed) for row in group]
            finally:
                rows.close()  # a caller that has enough stops early; PostgreSQL's cursor is server-side

    def metric_history(
        self,
        plan: str,
        target: str,
        scenario: str,
        metric: str,
        before: float | None = None,
        limit: int = 20,
        completed_only: bool = True,
    ) -> list[tuple[str, float, float | None]]:
        """(run_id, started, value) of the last `limit` runs that started before `before`, oldest first.

        `metric` may be dotted (`latency_ms.fault.p99`). The value is the median over the run's
        trials of the scenario. Runs where the metric is null in every trial are skipped (not
        measured there). For NEVER_HAPPENED metrics a null trial counts as longer than any number
        (the scenario did not recover), and a run whose median is such a trial is kept with
        the value None. `completed_only` keeps runs and trials whose status is "completed".
        """
        found: list[tuple[str, float, float | None]] = []
        rows = self._scenario_rows(plan, target, [scenario], before, completed_only=completed_only)
        with contextlib.closing(rows):
            for run_id, started, _, trials in rows:
                value = _run_value([m for m, _ in trials], metric)
                if value is not _SKIP:
                    found.append((run_id, started, value))
                    if len(found) >= limit:
                        break
        found.reverse()
        return found

    def trends(
        self,
        result: result_model.Result | Mapping[str, Any],
        metrics: Sequence[str] = KEY_METRICS,
        limit: int = 20,
    ) -> dict[str, list[dict[str, Any]]]:
        """Per scenario of `result`: the last `limit` earlier completed runs of the same plan and
        target, then this run, oldest first, each {"run_id", "started", "passed", "metrics"}.

        A value is None where the metric was not measured (or, for NEVER_HAPPENED metrics, did
        not happen): a trend shows a gap rather than leaving the run out.
        """
        result = result_files.as_result(result)
        run_id = result.run_id
        started = float(result.started)
        plan = result.plan.name or "unnamed"
        target = target_key(result.target)
        current: dict[str, list[tuple[Any, bool]]] = {}
        for s in result.scenarios:
            trials = current.setdefault(s.name, [])
            if s.status == "completed":
                trials.append((None if s.metrics is None else s.metrics.as_mapping(), s.passed))
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in current}
        if current:
            rows = self._scenario_rows(plan, target, list(current), before=started, exclude_run=run_id)
            with contextlib.closing(rows):
                for past_id, past_started, name, trials in rows:
                    if len(out[name]) < limit:
                        out[name].append(_point(past_id, past_started, trials, metrics))
                    if all(len(points) >= limit for points in out.values()):
                        break
        for name, points in out.items():
            points.reverse()
            head = [s for s in result.scenarios if s.name == name]
            point = _point(run_id, started, current[name], metrics)
            point["passed"] = bool(head) and all(s.passed for s in head)
            points.append(point)
        return out


def _create_engine(url: sa.URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        return durable_and_shared(engine, BUSY_TIMEOUT_S)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def open_history(url: str | None, reports_dir: Path) -> HistoryStore:
    """The history store of `--history URL|FILE`, else HARNESS_HISTORY_URL, else reports_dir/history.sqlite.

    InputError for a URL that is not one (naming the flag or variable it came from);
    HarnessError for a database that cannot be reached. Use it as a context manager.
    """
    if url is not None:
        source = FLAG
    elif os.environ.get(ENV_VAR):
        source = ENV_VAR
    else:
        source = f"the default ({Path(reports_dir) / FILE_NAME}; set {FLAG} or {ENV_VAR} to change it)"
    return HistoryStore(as_url(url) if url is not None else default_url(reports_dir), source=source)


def target_key(target: result_model.Target | Mapping[str, Any]) -> str:
    """Which cluster a run ran against, from result.json's `target`: `testbed/<profile>`,
    `kubernetes/<cluster>` (the plan's `cluster` name, else the context), or the kind alone."""
    if isinstance(target, result_model.Target):
        target = target.model_dump()
    kind = str(target.get("kind") or "unknown")
    if kind == "kubernetes":
        value = target.get("cluster") or target.get("context")
    else:
        value = target.get("profile") if kind == "testbed" else None
    return f"{kind}/{value}" if value else kind


# --- values -------------------------------------------------------------------------------

_SKIP = object()


def _run_value(trials: Sequence[Any], metric: str) -> Any:
    """The median of `metric` over a run's trials: a float, None (NEVER_HAPPENED), or _SKIP."""
    values: list[float] = []
    for metrics in trials:
        value = gates.lookup(metrics, metric)
        if value is None and metric in NEVER_HAPPENED:
            values.append(math.inf)
        elif isinstance(value, numbers.Real) and not math.isnan(value):
            values.append(float(value))
    if not values:
        return _SKIP
    median = statistics.median(values)
    return None if math.isinf(median) else median


def _point(
    run_id: str, started: float, trials: Sequence[tuple[Any, bool]], metrics: Sequence[str]
) -> dict[str, Any]:
    """One run in a trend: the median of each metric over the run's trials, None where unmeasured."""
    values = {}
    for name in metrics:
        value = _run_value([m for m, _ in trials], name)
        values[name] = None if value is _SKIP else value
    return {
        "run_id": run_id,
        "started": started,
        "passed": bool(trials) and all(passed for _, passed in trials),
        "metrics": values,
    }


def _plain(value: Any) -> Any:
    """Metrics as plain JSON: numpy scalars to numbers; NaN and infinities to null, which
    PostgreSQL's json type cannot hold and which mean "no value" in result.json as well."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    return str(value)


# --- gate functions -----------------------------------------------------------------------

_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "median_last": statistics.median,
    "mean_last": statistics.fmean,
    "min_last": min,
    "max_last": max,
}


def history_functions(
    store: HistoryStore | None,
    plan: str,
    target: str,
    scenario: str,
    subject: str,
    before: float | None,
) -> dict[str, Callable[[float], gates.FunctionValue]]:
    """The gate functions median_last(n), mean_last(n), min_last(n), max_last(n) over `subject`
    (the gate's left-side metric) in the last n completed runs of this plan, target and scenario
    that started before `before` (the run being gated).

    With fewer than n earlier runs a function uses those there are and its note says how many;
    with none it raises gates.NoHistory, which skips the gate. Earlier runs that did not
    recover count as infinitely slow (NEVER_HAPPENED), so a median over them can be inf. The
    history is read once, at the first call.
    """
    cache: list[float | None] = []
    loaded = False

    def past() -> list[float | None]:
        nonlocal loaded
        if not loaded and store is not None:
            history = store.metric_history(
                plan, target, scenario, subject, before=before, limit=gates.HISTORY_MAX_RUNS
            )
            cache.extend(value for _, _, value in history)
        loaded = True
        return cache

    def function(name: str) -> Callable[[float], gates.FunctionValue]:
        reduce = _REDUCERS[name]

        def call(n: float) -> gates.FunctionValue:
            runs = gates.history_runs(name, n)
            text = f"{name}({runs})"
            if store is None:
                raise gates.NoHistory(f"no history store: {text} has no value")
            values = past()[-runs:]
            if not values:
                raise gates.NoHistory(
                    f"no earlier runs of this plan on this target ({plan} on {target}, scenario "
                    f"{scenario}, with {subject} measured): {text} has no value"
                )
            value = reduce([math.inf if v is None else v for v in values])
            plural = "s" if len(values) != 1 else ""
            note = f"{text} = {value:.4g} over {len(values)} earlier run{plural}"
            if len(values) < runs:
                note += f" (only {len(values)} recorded)"
            never = sum(v is None for v in values)
            if never:
                note += f", {never} of which {NEVER_HAPPENED.get(subject, 'had no value')}"
            return gates.FunctionValue(value, note)

        return call

    return {name: function(name) for name in sorted(gates.HISTORY_FUNCTIONS)}
