"""A finished timeline's Series saved beside it, so that `harness report` need not parse it again.

Parsing a day of 20 request names (1.7 GB of lines) takes seconds; its Series (per-bucket arrays
and the merged histogram blocks) is a few hundred MB of numpy arrays that load in a fraction of
that. The engine saves it when a scenario ends, `harness score` when it reads a timeline whole,
and readers take it instead of the file only while it matches the file: the timeline's size and
modification time are recorded in it, and a saved Series that does not match them, or cannot be
read, is ignored (the file is then parsed as before). Small timelines are not saved: they parse
faster than a saved Series loads. The file is `timeline.series.npz`, beside the timeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from harness.timeline.bins import Block
from harness.timeline.series import LatencySeries, Series

FORMAT = 1
MIN_BYTES = 32 << 20
"""Timelines smaller than this (about 25 minutes of 20 names) are not saved: they parse in well under a second."""
_COLUMNS = ("t", "dt", "requests", "failures", "kpi", "users", "gen_late", "gen_lag_max_ms")
_PER_BUCKET = ("zero", "p50_ms", "p95_ms", "p99_ms")
_BLOCK = ("rows", "starts", "keys", "counts")


def path_for(timeline: Path) -> Path:
    """Where the Series of a timeline is saved."""
    return timeline.with_name(timeline.stem + ".series.npz")


def save(series: Series, timeline: Path, st: os.stat_result) -> Path | None:
    """Save the Series of a timeline whose stat (when read whole) was `st`; None if too small to bother."""
    if st.st_size < MIN_BYTES:
        return None
    arrays: dict[str, np.ndarray] = {name: getattr(series, name) for name in _COLUMNS}
    meta: dict[str, object] = {
        "format": FORMAT,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "bucket_s": series.bucket_s,
    }
    for field in ("latency", "latency_corrected"):
        latency: LatencySeries = getattr(series, field)
        for name in _PER_BUCKET:
            arrays[f"{field}.{name}"] = getattr(latency, name)
        for i, block in enumerate(latency.blocks):
            for name in _BLOCK:
                arrays[f"{field}.{i}.{name}"] = getattr(block, name)
        meta[field] = {
            "relative_accuracy": latency.relative_accuracy,
            "key_min": latency.key_min,
            "key_max": latency.key_max,
            "key_base": [b.key_base for b in latency.blocks],
        }
    arrays["meta"] = np.array(json.dumps(meta))
    target = path_for(timeline)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as fh:
            np.savez(fh, **arrays)  # uncompressed: loading it must be fast
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return target


def load_matches(timeline: Path, st: os.stat_result) -> bool:
    """Is there a saved Series for the timeline as it is (stat `st`)? Reads only its description."""
    try:
        with np.load(path_for(timeline), allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return False
    return _describes(meta, st)


def _describes(meta: object, st: os.stat_result) -> bool:
    """Was the saved Series with this description made from the timeline as it is (stat `st`)?"""
    return isinstance(meta, dict) and (meta.get("format"), meta.get("size"), meta.get("mtime_ns")) == (
        FORMAT,
        st.st_size,
        st.st_mtime_ns,
    )


def load(timeline: Path, st: os.stat_result) -> Series | None:
    """The saved Series of a timeline whose stat is `st`; None if there is none or it does not match."""
    try:
        with np.load(path_for(timeline), allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            if not _describes(meta, st):
                return None
            latency = {}
            for field in ("latency", "latency_corrected"):
                info = meta[field]
                blocks = tuple(
                    Block(
                        *(saved[f"{field}.{i}.{name}"] for name in ("rows", "starts", "keys")),
                        base,
                        saved[f"{field}.{i}.counts"],
                    )
                    for i, base in enumerate(info["key_base"])
                )
                latency[field] = LatencySeries(
                    relative_accuracy=float(info["relative_accuracy"]),
                    **{name: saved[f"{field}.{name}"] for name in _PER_BUCKET},
                    blocks=blocks,
                    key_min=int(info["key_min"]),
                    key_max=int(info["key_max"]),
                )
            return Series(
                **{name: saved[name] for name in _COLUMNS},
                **latency,
                bucket_s=float(meta["bucket_s"]),
            )
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        zipfile.BadZipFile,
    ):  # missing, partial or foreign: parse
        return None
