"""Progress of long commands: a bar on a terminal, plain lines otherwise.

On a terminal (stderr is a TTY) a ``tqdm`` bar. Anywhere else (CI logs, ``nohup``, a
pipe) a bar's carriage returns make a mess, and silence makes people think the command
hangs, so a plain line is written every :data:`EVERY_SECONDS`, and one at the end:
``scoring: 12,000/50,000 incidents (24%), 4,010/s``. Always to stderr, so a command's
output on stdout stays clean. No personal data: only counts and labels.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")

EVERY_SECONDS = 5.0


class Progress:
    """Count work done: ``with Progress("verifying", total=n, unit="events") as p:
    p.update(k)``."""

    def __init__(
        self,
        label: str,
        *,
        total: int | None = None,
        unit: str = "items",
        stream: IO[str] | None = None,
        every: float = EVERY_SECONDS,
        enabled: bool = True,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.enabled = enabled
        self.done = 0
        self._started = time.monotonic()
        self._last = self._started
        self._bar: tqdm[None] | None = None
        if enabled and _is_terminal(self.stream):
            self._bar = tqdm(
                total=total, desc=label, unit=f" {unit}", file=self.stream, mininterval=0.2
            )

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if self.enabled and now - self._last >= self.every:
            self._last = now
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled:
            self._line(final=True)
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _line(self, *, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        of = f"/{self.total:,}" if self.total is not None else ""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f"{self.done / elapsed:,.0f}/s"
        tail = f"done in {elapsed:.1f} s, {rate}" if final else rate
        self.stream.write(f"{self.label}: {self.done:,}{of} {self.unit}{share}, {tail}\n")
        self.stream.flush()


def track(
    items: Iterable[T],
    label: str,
    *,
    total: int | None = None,
    unit: str = "items",
    enabled: bool = True,
) -> Iterator[T]:
    """``items``, counted as they are consumed (see :class:`Progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(label, total=total, unit=unit, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.update()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False
