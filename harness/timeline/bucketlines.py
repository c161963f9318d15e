"""Bucket lines as the recorder writes them, parsed for a whole chunk at once with numpy.

A day-long timeline of 20 request names is 1.7 million bucket lines and some 150 million
histogram bins. A JSON library makes a Python object per bin (on the 2-core machines this runs
on, orjson manages ~100 MB/s: half a minute for such a file); here the bytes are read as numpy
arrays instead. Two scans find the colons and the newlines; a colon after a quoted number ends
a bin key, and the two characters before the closing quote of any other key say which field it
is. Keys and counts are read from the bytes around each bin's colon; the line's other numbers
eight bytes at a time with SIMD-within-a-register arithmetic on uint64 windows (Lemire, "Fast
integer parsing", 2020).

Only the exact shape `Bucket.to_line` gives under `json.dumps(separators=(",", ":"))` — the
recorder's — is taken: these fields in this order, integers where the reader wants integers,
keys of bins made of digits. Every line is checked (each field once and in order, every bin well
formed and the bins filling their object exactly); a line that is not exactly that shape is handed
back untouched, for harness.timeline.loading to read with orjson like any other line. Fields that
scoring does not use (name, method, failures by kind, maxima, sums) are not checked.

Called by harness.timeline.loading only.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from harness.timeline.bins import KEY_LIMIT

PREFIX = b'{"type":"bucket","t":'
PAD = 16
"""Bytes a chunk must be followed by (the next chunk's, or padding) for the windows a parse reads."""
_NEWLINE, _QUOTE, _COLON, _COMMA, _MINUS, _DOT = (ord(c) for c in '\n":,-.')
_LBRACE, _RBRACE = ord("{"), ord("}")

_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)


_FIELDS = ("t", "dt", "requests", "failures", "kpi", "z", "b", "gen_late", "gen_lag_max_ms")
"""The fields scoring reads, in the order a bucket line has them (z and b twice: latency, corrected).
The last two, the load generator's lateness, came later: a line has both (at its end) or neither."""
_T, _DT, _REQUESTS, _FAILURES, _KPI, _Z, _B, _GEN_LATE, _GEN_MAX = range(1, 10)
_CODES = len(_FIELDS) + 1
_GEN_KEYS = {_GEN_LATE: b'"gen_late"', _GEN_MAX: b'"gen_lag_max_ms"'}
"""Keys checked in full: two characters cannot tell `"gen_lag_max_ms"` from the other `..._ms` keys."""
_MAX_FRACTION_DIGITS = 6
_MAX_LAG_MS = 10**9
"""gen_lag_max_ms is read as (integer part · 10^f + fraction) / 10^f, exact (as float() reads it) while
that numerator stays below 2^53; a value with more digits than these goes to the general path."""


def _field_codes() -> np.ndarray:
    """Field code (above; 0: another field) by the two characters before a key's closing quote.

    Indexed by `last | (before_last << 8)`. Two characters tell these keys apart from each other and
    from every other key of the shape; a stray key that happens to match makes a field appear
    twice, and its line is handed back.
    """
    table = np.zeros(1 << 16, np.uint8)
    for code, name in enumerate(_FIELDS, start=1):
        key = ('"' + name).encode()
        table[key[-1] | (key[-2] << 8)] = code
    return table  # "ms" maps to _GEN_MAX: every "..._ms" key is a candidate, checked in full


_FIELD_CODE = _field_codes()


@dataclass(frozen=True, eq=False)
class ParsedChunk:
    """The bucket lines of a chunk that had the recorder's shape, and the other lines as text."""

    lines: np.ndarray
    """Positions (0-based, in the chunk) of the lines parsed here, increasing."""
    t: np.ndarray
    dt: np.ndarray
    requests: np.ndarray
    failures: np.ndarray
    kpi: np.ndarray
    gen_late: np.ndarray
    gen_lag_max_ms: np.ndarray
    """Per parsed line: the load generator's late count and largest lag (0 for lines without them)."""
    zero: tuple[np.ndarray, np.ndarray]
    """Per parsed line: the zero-latency count of its latency and of its corrected histogram."""
    region_line: np.ndarray
    """Per bin object ("region", two a line): which parsed line (index into `lines`) it is in."""
    region_histogram: np.ndarray
    """Per region: 0 for latency_ms, 1 for latency_corrected_ms."""
    region_bins: np.ndarray
    """Per region: how many of `keys` and `counts` are its bins (they come region by region)."""
    keys: np.ndarray
    counts: np.ndarray
    others: list[tuple[int, bytes]]
    """(position, text) of every other line, in order (blank and half-written lines included)."""
    line_count: int


def parse_chunk(buf: np.ndarray, size: int) -> ParsedChunk:
    """Parse the recorder-shaped bucket lines among the first `size` bytes of `buf`.

    Those bytes are whole lines (the last may lack its newline, and is then left to the general
    path: it may be half-written); `buf` goes on for at least PAD bytes after them.
    """
    win64 = np.ndarray((buf.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
    text = buf[:size]
    colons = np.flatnonzero(text == _COLON)
    newlines = np.flatnonzero(text == _NEWLINE)
    complete = size > 0 and buf[size - 1] == _NEWLINE
    ends = newlines if complete else np.append(newlines, size)
    starts = np.concatenate(([0], ends[:-1] + 1))
    n_lines = ends.size

    ok = _has_prefix(win64, starts, ends)
    if not complete and n_lines:
        ok[-1] = False  # possibly half-written: the general path decides
    # Colons after a quote end keys: of a bin when a digit comes before the quote, else of a field.
    # (A colon at 0 to 2 reads the end of buf, padding: no match.)
    before = colons - 3
    last_char = buf[1:][before]
    closes_key = buf[2:][before] == _QUOTE
    digit = (last_char - np.uint8(48)) < 10
    bins = colons[closes_key & digit]
    named = closes_key & ~digit
    fields = colons[named]
    code = _FIELD_CODE[last_char[named] | (buf[before[named]].astype(np.uint16) << 8)]
    for gen_code, gen_key in _GEN_KEYS.items():
        candidate = np.flatnonzero(code == gen_code)
        if candidate.size:
            code[candidate[~_key_is(win64, fields[candidate], gen_key)]] = 0
    known = code > 0
    fields, code = fields[known], code[known]
    line_of = np.repeat(np.arange(n_lines), np.diff(np.searchsorted(fields, ends), prepend=0))

    # Each field once per line (z and b twice; the generator's fields both or neither), in the shape's order.
    cell = line_of * _CODES + code
    counts_of = np.bincount(cell, minlength=n_lines * _CODES).reshape(n_lines, _CODES)
    ok &= (counts_of[:, 1:_GEN_LATE] == np.array([1, 1, 1, 1, 1, 2, 2])).all(axis=1)
    has_gen = (counts_of[:, _GEN_LATE] == 1) & (counts_of[:, _GEN_MAX] == 1)
    ok &= has_gen | ((counts_of[:, _GEN_LATE] == 0) & (counts_of[:, _GEN_MAX] == 0))
    first = np.zeros(n_lines * _CODES, np.int64)
    first[cell[::-1]] = fields[::-1]  # the first occurrence in each line wins
    last = np.zeros(n_lines * _CODES, np.int64)
    last[cell] = fields
    first, last = first.reshape(n_lines, _CODES), last.reshape(n_lines, _CODES)
    z1, b1, z2, b2 = first[:, _Z], first[:, _B], last[:, _Z], last[:, _B]
    order = (first[:, _T], first[:, _DT], first[:, _REQUESTS], first[:, _FAILURES], first[:, _KPI])
    for earlier, later in pairwise((*order, z1, b1, z2, b2, ends)):
        ok &= earlier < later
    gen_late_at, gen_max_at = first[:, _GEN_LATE], first[:, _GEN_MAX]
    ok &= ~has_gen | ((b2 < gen_late_at) & (gen_late_at < gen_max_at) & (gen_max_at < ends))
    ok &= (buf[z1 - 10] == ord("y")) & (buf[z2 - 10] == ord("d"))  # "latency_ms", then "latency_corrected_ms"

    # The numbers after those colons, all in one go: requests, failures, kpi, z, z, t, dt.
    at = np.concatenate(
        [first[:, _REQUESTS], first[:, _FAILURES], first[:, _KPI], z1, z2, first[:, _T], first[:, _DT]]
    )
    numbers, length, end = _uint(win64, at + 1)
    numbers, length, end = (x.reshape(7, n_lines) for x in (numbers, length, end))
    ok &= ((length[:5] > 0) & (end[:5] == _COMMA)).all(axis=0)
    requests, failures, kpi, zero_latency, zero_corrected = numbers[:5]
    ok &= failures <= requests  # else: the general path, which refuses the line
    fraction, f_length, f_end = (
        x.reshape(2, n_lines) for x in _uint(win64, at[5 * n_lines :] + length[5:].ravel() + 2)
    )
    has_fraction = end[5:] == _DOT
    ok &= (
        (length[5:] > 0) & np.where(has_fraction, (f_length > 0) & (f_end == _COMMA), end[5:] == _COMMA)
    ).all(axis=0)
    t, dt = numbers[5:] + np.where(has_fraction, fraction / 10.0 ** np.where(has_fraction, f_length, 0), 0.0)
    ok &= (
        (dt >= 0.001) & (t < 1e12) & (buf[b1 + 1] == _LBRACE) & (buf[b2 + 1] == _LBRACE)
    )  # else: the general path
    gen_late, gen_lag_max_ms, gen_ok = _generator_fields(win64, gen_late_at, gen_max_at, has_gen)
    ok &= gen_ok

    # The two bin objects of each line ("regions"), in file order: latency, corrected, latency, ...
    # A region's bins are the key colons from its opening brace to the next field (z of the
    # corrected histogram, or the end of the line); they must fill it exactly up to its closing brace.
    region_starts = np.stack([b1 + 2, b2 + 2], axis=1).ravel()
    region_limits = np.stack([z2, ends], axis=1).ravel()
    lo = np.searchsorted(bins, region_starts)
    counts = np.where(np.repeat(ok, 2), np.searchsorted(bins, region_limits) - lo, 0)
    first_bin = np.cumsum(counts) - counts
    if counts.size == 0 or int(first_bin[-1] + counts[-1]) == bins.size:
        p = bins  # every bin colon of the chunk is in a counted region (the usual case)
    else:
        region = np.repeat(np.arange(counts.size), counts)
        p = bins[np.arange(region.size) + (lo - first_bin)[region]]
    key, key_len, key_ok = _keys(buf, p)
    count, count_len, count_end = _counts(buf, p)
    nonempty = counts > 0
    last = (first_bin + counts - 1)[nonempty]
    expected_end = np.full(p.size, _COMMA, np.uint8)
    expected_end[last] = _RBRACE
    bad = ~key_ok | (count_end != expected_end)
    filled = np.zeros(counts.size, np.int64)  # bytes of the region's bins, less 4 each (quotes, colon, comma)
    broken = np.zeros(counts.size, bool)  # any bin not well formed
    closing = region_starts.copy()  # where each region's closing brace is
    if p.size:
        starts_at = first_bin[nonempty]
        filled[nonempty] = np.add.reduceat((key_len + count_len).astype(np.int64), starts_at)
        broken[nonempty] = np.logical_or.reduceat(bad, starts_at)
        closing[nonempty] = p[last] + count_len[last] + 1
    good = ~broken & (filled + 4 * counts == np.where(nonempty, closing - region_starts + 1, 0))
    good &= (buf[closing] == _RBRACE) & (buf[closing + 1] == _RBRACE)  # the bins', then the histogram's
    ok &= good[0::2] & good[1::2]

    keep = np.flatnonzero(ok)
    region_ok = np.repeat(ok, 2)
    if not region_ok[nonempty].all():  # some line failed on its bins: drop them
        taken = np.repeat(region_ok, counts)
        key, count = key[taken], count[taken]
    others = [(int(i), bytes(buf[starts[i] : ends[i]])) for i in np.flatnonzero(~ok)]
    return ParsedChunk(
        lines=keep,
        t=t[keep],
        dt=dt[keep],
        requests=requests[keep],
        failures=failures[keep],
        kpi=kpi[keep],
        gen_late=gen_late[keep],
        gen_lag_max_ms=gen_lag_max_ms[keep],
        zero=(zero_latency[keep], zero_corrected[keep]),
        region_line=np.repeat(np.arange(keep.size), 2),
        region_histogram=np.tile(np.array([0, 1], np.uint8), keep.size),
        region_bins=counts[region_ok],
        keys=key,
        counts=count,
        others=others,
        line_count=n_lines,
    )


def _generator_fields(
    win64: np.ndarray, late_at: np.ndarray, max_at: np.ndarray, has_gen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line: gen_late (an integer followed by a comma), gen_lag_max_ms (a decimal ending the line), well formed.

    Lines without the fields (has_gen false) read 0 and 0.0 and are well formed.
    """
    late, late_length, late_end = _uint(win64, late_at + 1)
    whole, whole_length, whole_end = _uint(win64, max_at + 1)
    fraction, f_length, f_end = _uint(win64, max_at + whole_length + 2)
    has_fraction = whole_end == _DOT
    well_formed = (
        (late_length > 0)
        & (late_end == _COMMA)
        & (whole_length > 0)
        & (whole < _MAX_LAG_MS)
        & np.where(
            has_fraction,
            (f_length > 0) & (f_length <= _MAX_FRACTION_DIGITS) & (f_end == _RBRACE),
            whole_end == _RBRACE,
        )
    )
    scale = 10.0 ** np.where(has_fraction, f_length, 0)
    lag_max = (whole * scale + np.where(has_fraction, fraction, 0)) / scale  # both exact: one rounding
    return (
        np.where(has_gen, late, 0),
        np.where(has_gen, lag_max, 0.0),
        ~has_gen | well_formed,
    )


def _key_is(win64: np.ndarray, colon: np.ndarray, key: bytes) -> np.ndarray:
    """Per colon: is it right after `key` (quotes included)?"""
    start = colon - len(key)
    ok = start >= 0
    start = np.maximum(start, 0)
    for offset in range(0, len(key), 8):
        part = key[offset : offset + 8]
        want = int.from_bytes(part.ljust(8, b"\0"), "little")
        mask = int.from_bytes(b"\xff" * len(part) + b"\0" * (8 - len(part)), "little")
        ok &= (win64[start + offset] & np.uint64(mask)) == np.uint64(want)
    return ok


def _has_prefix(win64: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per line: does it start with `{"type":"bucket","t":` (and is it long enough to hold a bucket)."""
    starts = np.minimum(starts, win64.size - 24)
    ok = ends - starts > 2 * len(PREFIX)
    for offset in range(0, 24, 8):
        want = int.from_bytes(PREFIX[offset : offset + 8].ljust(8, b"\0"), "little")
        mask = int.from_bytes(
            b"\xff" * len(PREFIX[offset : offset + 8]) + b"\0" * (8 - len(PREFIX[offset : offset + 8])),
            "little",
        )
        ok &= (win64[starts + offset] & np.uint64(mask)) == np.uint64(want)
    return ok


def _digits(w: np.ndarray) -> np.ndarray:
    """High bit set in each byte of the uint64 windows that is an ASCII digit (bytes >= 0x80 are not)."""
    low = w & _LOW7
    at_least_0 = low + np.uint64(0x5050505050505050)  # 0x30 + 0x50 sets the high bit
    above_9 = low + np.uint64(0x4646464646464646)  # 0x3A + 0x46 sets it
    return at_least_0 & ~above_9 & ~w & _HIGH


def _eight_digits(w: np.ndarray) -> np.ndarray:
    """The value of eight ASCII digits (leading ones may be zero bytes), first digit in the lowest byte."""
    w = w & _NIBBLES
    w = (w * np.uint64(2561)) >> np.uint64(8)
    w = ((w & np.uint64(0x00FF00FF00FF00FF)) * np.uint64(6553601)) >> np.uint64(16)
    w = ((w & np.uint64(0x0000FFFF0000FFFF)) * np.uint64(42949672960001)) >> np.uint64(32)
    return w.astype(np.int64)


def _bit_index(x: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of each uint64 (-1 for 0); exact for the sparse masks used here."""
    return np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1


def _leading(w: np.ndarray) -> np.ndarray:
    """How many of the window's bytes, from the lowest, are digits (0 to 8)."""
    not_digit = ~_digits(w) & _HIGH
    lowest = not_digit & (~not_digit + np.uint64(1))
    return np.where(not_digit == 0, 8, _bit_index(lowest) >> 3)


def _uint(win64: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unsigned integers starting at pos (up to 15 digits): value, length (0: none) and the byte after."""
    w = win64[pos]
    n = _leading(w)
    value = _aligned(w, n)
    end = (w >> (np.minimum(n, 7) * 8).astype(np.uint64)) & np.uint64(0xFF)
    long = np.flatnonzero(n == 8)
    if long.size:  # more than 8 digits: continue in the next window
        w2 = win64[pos[long] + 8]
        n2 = _leading(w2)
        value[long] = value[long] * 10 ** np.minimum(n2, 7) + _aligned(w2, n2)
        end[long] = (w2 >> (np.minimum(n2, 7) * 8).astype(np.uint64)) & np.uint64(0xFF)
        n[long] = np.where(n2 < 8, 8 + n2, 0)  # 16 digits or more: not ours
    return value, n, end.astype(np.int64)


def _aligned(w: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Value of the first n digit bytes of each window (n from 0 to 8)."""
    shift = (np.where(n > 0, 8 - n, 0) * 8).astype(np.uint64)
    return np.where(n > 0, _eight_digits(w << shift), 0)


def _keys(buf: np.ndarray, colon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin keys ending just before `":` at each colon: value, length in bytes (sign included), well formed.

    Three-digit keys (latencies from 2.7 ms to 22 s at the default accuracy: nearly all of them) are
    read straight from the three bytes; the others by `_other_keys`.
    """
    c0, c1, c2 = buf[colon - 2], buf[colon - 3], buf[colon - 4]
    d0, d1, d2 = c0 - np.uint8(48), c1 - np.uint8(48), c2 - np.uint8(48)
    three = (buf[colon - 5] == _QUOTE) & (d0 < 10) & (d1 < 10) & (d2 < 10)
    value = d2.astype(np.int32) * np.int32(100)
    value += d1.astype(np.int32) * np.int32(10)
    value += d0
    length = np.full(colon.size, 3, np.uint8)
    ok = three
    if not three.all():
        other = np.flatnonzero(~three)
        value[other], length[other], ok[other] = _other_keys(buf, colon[other])
    return value, length, ok


def _other_keys(buf: np.ndarray, colon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys that are not three digits: up to four characters from the bytes, longer ones digit by digit."""
    c0, c1, c2, c3, c4 = (buf[colon - 2 - i] for i in range(5))  # c0 is the key's last character
    q1, q2, q3, q4 = (c == _QUOTE for c in (c1, c2, c3, c4))
    m1, m2, m3 = (c == _MINUS for c in (c1, c2, c3))
    d0, d1, d2, d3 = (c.astype(np.int64) - 48 for c in (c0, c1, c2, c3))
    n0, n1, n2, n3 = ((d >= 0) & (d < 10) for d in (d0, d1, d2, d3))
    # The key's opening quote is 1, 2, 3 or 4 bytes before its last character.
    s1 = q1
    s2 = ~q1 & q2
    s3 = ~(q1 | q2) & q3
    s4 = ~(q1 | q2 | q3) & q4
    seen = s1 | s2 | s3 | s4
    negative = (s2 & m1) | (s3 & m2) | (s4 & m3)
    ok = n0 & (s1 | (s2 & (n1 | m1)) | (s3 & n1 & (n2 | m2)) | (s4 & n1 & n2 & (n3 | m3)))
    value = d0 + d1 * 10 * ~(s1 | (s2 & m1)) + d2 * 100 * ((s3 & ~m2) | s4) + d3 * 1000 * (s4 & ~m3)
    length = s1 * 1 + s2 * 2 + s3 * 3 + s4 * 4
    long = np.flatnonzero(~seen)
    if long.size:  # five characters or more: digit by digit
        v, n, before = _slow_digits(buf, colon[long] - 2, -1)
        minus = before == _MINUS
        opening = buf[colon[long] - 2 - n - minus]
        value[long] = v
        length[long] = n + minus
        negative[long] = minus
        ok[long] = (n > 0) & (opening == _QUOTE)
    return np.where(negative, -value, value), length, ok & (value <= KEY_LIMIT)


def _counts(buf: np.ndarray, colon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin counts after each colon: value, length (0: none), and the byte after them.

    One-digit counts (most bins, at a 1 % bin width) are read from the byte directly; longer ones
    digit by digit.
    """
    b1, b2 = buf[colon + 1], buf[colon + 2]
    d1 = b1 - np.uint8(48)
    one = (d1 < 10) & ~((b2 - np.uint8(48)) < 10)
    value = d1.astype(np.int64)
    length = one.view(np.uint8).copy()
    end = b2
    longer_mask = ~one & (d1 < 10)
    if longer_mask.any():
        longer = np.flatnonzero(longer_mask)
        value[longer], length[longer], end[longer] = _slow_digits(buf, colon[longer] + 1, 1)
    return value, length, end


def _slow_digits(buf: np.ndarray, pos: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits from pos onwards (step 1) or backwards (step -1): value, how many, and the byte after them."""
    value = np.zeros(pos.size, np.int64)
    n = np.zeros(pos.size, np.int64)
    active = np.arange(pos.size)
    while active.size and n.max() < 18:
        d = buf[pos[active] + step * n[active]].astype(np.int64) - 48
        digit = (d >= 0) & (d < 10)
        active = active[digit]
        d = d[digit]
        if step > 0:
            value[active] = value[active] * 10 + d
        else:
            value[active] += d * 10 ** n[active]
        n[active] += 1
    return value, n, buf[pos + step * n].astype(np.int64)
