"""What the audit commands print with: a progress line on a terminal, JSON elsewhere."""

from __future__ import annotations

import sys
import time

import msgspec

JSON = msgspec.json.Encoder()


class Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, what: str) -> None:
        self.enabled = enabled
        self.what = what
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.shown < 0.1:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        if total:
            width = 30
            filled = min(width, int(width * done / total))
            bar = "█" * filled + "·" * (width - filled)
            text = f"{self.what} {bar} {done:,}/{total:,} {rate:,.0f}/s"
        else:
            text = f"{self.what} {done:,} {rate:,.0f}/s"
        print(f"\r{text}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
