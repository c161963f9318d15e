"""What a run keeps in memory per finished scenario: the live reader, or its compact Series?

    .venv/bin/python benchmarks/series_retained.py RUN_FOLDER

The engine reads each scenario's timeline while it runs (a second of lines at a time) and keeps
it, for scoring and the report at every checkpoint, until the run ends. This replays every
timeline of a run folder the same way into a scratch copy, then measures with tracemalloc what
the readers hold and what their compact Series (`harness.timeline.series.compact`, what
`SeriesFiles.add` keeps) hold.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.timeline.loading import TimelineFile
from harness.timeline.series import compact

LINES_PER_UPDATE = 8
"""About a second of a scenario's lines (a few request names, a tick, a workers line)."""


def held(make: Callable[[], Any]) -> tuple[Any, int]:
    """What make() returns and the bytes it still holds once made."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    kept = make()
    gc.collect()
    return kept, tracemalloc.get_traced_memory()[0] - before


def live_readers(paths: list[Path], scratch: Path) -> list[TimelineFile]:
    """Each timeline appended a few lines at a time to a copy, read after every append."""
    readers = []
    for i, path in enumerate(paths):
        lines = path.read_bytes().splitlines(keepends=True)
        copy = scratch / f"{i}.jsonl"
        copy.write_bytes(b"")
        reader = TimelineFile(copy)
        with copy.open("ab") as fh:
            for j in range(0, len(lines), LINES_PER_UPDATE):
                fh.write(b"".join(lines[j : j + LINES_PER_UPDATE]))
                fh.flush()
                reader.update()
        reader.update(final=True)
        readers.append(reader)
    return readers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_folder", type=Path)
    args = parser.parse_args()
    paths = sorted(args.run_folder.glob("scenarios/*/timeline.jsonl"))
    if not paths:
        parser.error(f"{args.run_folder}: no scenarios/*/timeline.jsonl")
    tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="series-retained-") as scratch:
        readers, readers_b = held(lambda: live_readers(paths, Path(scratch)))
        _, compact_b = held(lambda: [compact(r.series()) for r in readers])
    n = len(paths)
    print(f"{n} scenarios: live readers {readers_b / 2**20:.2f} MB ({readers_b / n / 1024:.0f} kB each), "
          f"compact Series {compact_b / 2**20:.2f} MB ({compact_b / n / 1024:.0f} kB each)")  # fmt: skip


if __name__ == "__main__":
    main()
