"""A one-line progress bar on stderr, redrawn at most ten times a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``Progress(total, label)``; ``advance(n)`` steps the bar, ``note(text)`` sets the trailing text."""

    def __init__(
        self, total: int, label: str = "", enabled: bool = True, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.text = ""
        self.started = time.monotonic()
        self._last = 0.0
        self.redraws = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._maybe_draw()

    def note(self, text: str) -> None:
        self.text = text
        self._maybe_draw()

    def _maybe_draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self.started
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {self.text} {elapsed:.1f}s\x1b[K")
        self.stream.flush()
        self.redraws += 1

    def close(self) -> None:
        if self.enabled:
            self._maybe_draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
