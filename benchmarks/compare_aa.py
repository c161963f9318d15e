"""Simulate whole `harness compare` pages: how often an A/A page claims anything, how often a real
shift is found, and how the former rule (every metric at alpha, trials pooled) fared.

    .venv/bin/python benchmarks/compare_aa.py [--pages 1000] [--seed 20261203] [--cases 0,2,5]

Pages come from tests/compare/simulation.py (10 correlated metrics a scenario, two censored,
two counts with ties; run or time-slot effects at half the variance) and are judged by
harness.compare.page exactly as `harness compare` judges run folders. Target: at most 5 % of A/A
pages with any "better" or "worse". Results: a Markdown table on stdout and JSON in
benchmarks/results/compare_aa.json; the numbers are quoted in docs/compare.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.compare import simulation  # noqa: E402  (the project root is put on the path above)

CASES: tuple[tuple[str, str, dict[str, object]], ...] = (
    ("A/A", "7 scenarios, 5 trials a side, one batch (interleaved)", {"scenarios": 7, "trials": 5}),
    ("A/A", "7 scenarios, 8 trials a side, one batch", {"scenarios": 7, "trials": 8}),
    ("A/A", "1 scenario, 5 trials a side, one batch", {"scenarios": 1, "trials": 5}),
    ("A/A", "7 scenarios, 5 trials, one separate run a side", {"scenarios": 7, "trials": 5, "interleaved": False}),
    ("A/A", "1 scenario, 4 separate runs of 2 trials a side",
     {"scenarios": 1, "trials": 8, "runs_per_side": 4, "interleaved": False}),
    ("A/A former rule", "7 scenarios, 5 trials, one separate run a side; every metric at alpha, pooled",
     {"scenarios": 7, "trials": 5, "interleaved": False, "naive": True}),
    ("power", "1 scenario, 5 trials a side, one batch, shift 2 SD", {"scenarios": 1, "trials": 5, "shift_sd": 2.0}),
    ("power", "7 scenarios, 8 trials a side, one batch, shift 2 SD in one",
     {"scenarios": 7, "trials": 8, "shift_sd": 2.0}),
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--cases", help="Comma-separated case numbers (from 0) to run; all by default.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare_aa.json")
    args = parser.parse_args()
    chosen = {int(c) for c in args.cases.split(",")} if args.cases else set(range(len(CASES)))
    rows = []
    print("| kind | pages | share | seconds |\n| --- | --- | ---: | ---: |")
    for index, (kind, words, settings) in enumerate(CASES):
        if index not in chosen:
            continue
        started = time.perf_counter()
        if kind == "power":
            share = simulation.power(args.pages, args.seed + index, **settings)
        else:
            share = simulation.pages_with_claims(args.pages, args.seed + index, **settings)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "index": index,
                "kind": kind,
                "case": words,
                "pages": args.pages,
                "share": share,
                "seconds": round(seconds, 1),
            }
        )
        what = "found" if kind == "power" else "with a claim"
        print(f"| {kind}: {words} | {args.pages} | {100 * share:.1f} % {what} | {seconds:.0f} |", flush=True)
    args.out.write_text(json.dumps({"seed": args.seed, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
