"""Open a local HTML file in Debian's chromium (playwright), offline, and say what happened.

Every request the page makes is routed: file:, data: and blob: URLs load, anything else is
aborted and recorded, so a test can assert that a report never reaches the network. Console
errors and uncaught page errors are collected, and a screenshot is taken. Reports use it to
check that they draw; any page that must work offline can.

    with open_browser() as browser:
        visit = browser.visit(path, screenshot=tmp / "shot.png")
        assert not visit.blocked and not visit.errors
"""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL_SCHEMES = ("file:", "data:", "blob:")


@dataclass
class Visit:
    """What happened while a page loaded: requests refused, errors, and the screenshot."""

    url: str
    blocked: list[str] = field(default_factory=list)
    """URLs the page tried to reach that are not local (file:, data:, blob:)."""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def errors(self) -> list[str]:
        return self.console_errors + self.page_errors


class Browser:
    """A chromium page factory; each visit uses a fresh page with the routing and listeners set."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def visit(
        self,
        path: Path,
        screenshot: Path | None = None,
        viewport: tuple[int, int] = (1280, 900),
        full_page: bool = False,
        check: Callable[[Any], None] | None = None,
        media: str | None = None,
    ) -> Visit:
        """Load the file, wait for it to settle, run `check(page)` if given, take the screenshot."""
        page = self._browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        visit = Visit(url=Path(path).resolve().as_uri())

        def route(r: Any) -> None:
            url = r.request.url
            if url.startswith(LOCAL_SCHEMES):
                r.continue_()
            else:
                visit.blocked.append(url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
        try:
            if media:
                page.emulate_media(media=media)
            page.goto(visit.url, wait_until="load")
            page.wait_for_timeout(300)  # let the charts' first frame paint
            if check is not None:
                check(page)
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=full_page)
                visit.screenshot = screenshot
        finally:
            page.close()
        return visit

    def pdf(self, path: Path, out: Path) -> Path:
        """Print the page to PDF (print media) the way a reader's "Save as PDF" would."""
        page = self._browser.new_page()
        try:
            page.route(
                "**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL_SCHEMES) else r.abort()
            )
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)
            page.pdf(path=str(out), format="A4", print_background=True)
        finally:
            page.close()
        return out


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Chromium (Debian's, no download) through playwright; skips the test when either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield Browser(browser)
        finally:
            browser.close()


# --- reading a screenshot (PNG) without an image library --------------------------------------
def read_png(path: Path) -> np.ndarray:
    """The pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what chromium writes), as (h, w, c) uint8."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
    if header is None:
        raise ValueError(f"{path} has no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read here")
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.int32)
    previous = np.zeros(width * bpp, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:  # Up
            row = (line + previous) & 0xFF
        else:  # Average and Paeth depend on the pixel just decoded: pixel by pixel
            row = line.copy()
            for x in range(width * bpp):
                a = row[x - bpp] if x >= bpp else 0
                b = previous[x]
                if kind == 3:
                    row[x] = (row[x] + ((a + b) >> 1)) & 0xFF
                else:
                    c = previous[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    row[x] = (row[x] + pred) & 0xFF
        out[y] = row
        previous = row
    return out.reshape(height, width, bpp).astype(np.uint8)
