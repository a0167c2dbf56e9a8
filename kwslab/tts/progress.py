"""A build's progress on stderr that reads well everywhere: a bar on a terminal, a few plain lines elsewhere.

tqdm redraws its bar with a carriage return up to ten times a second, which a log file (CI, ``nohup``, ``| tee``)
keeps as thousands of lines. When the stream is not a terminal, :class:`Progress` writes instead::

    data/synthetic_keywords/tts/keywords: 768 clips to make
    data/synthetic_keywords/tts/keywords: 77/768 clips (10%), 1 s, 53.1 clips/s
    ...
    data/synthetic_keywords/tts/keywords: 768/768 clips in 14.4 s (53.5 clips/s)

a line as each further tenth is done, or as an item finishes ``every`` seconds (60) after the last line (a slow
build still shows that it is alive), and a last line: at most 11 lines, plus one a minute, whatever the build's size.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

__all__ = ["Progress", "is_terminal"]


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (False for a file, a pipe, a closed stream or an object without isatty)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Counts finished items (clips) of ``total`` and shows it on ``stream`` (default: ``sys.stderr`` now).

    Args:
        total: items to do. label: what is being made (the output folder), the start of every plain line.
        enabled: False shows nothing. every: seconds after which a plain line is written even without a new tenth.
        clock: seconds, monotonic (tests pass a fake).
    """

    def __init__(self, total: int, label: str, enabled: bool = True, stream: TextIO | None = None,
                 every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.every, self.clock = total, label, every, clock
        self.stream = stream if stream is not None else sys.stderr
        self.done = self.failed = 0
        self.bar = None
        self.lines = enabled and total > 0 and not is_terminal(self.stream)
        if enabled and total > 0 and not self.lines:
            from tqdm import tqdm

            class _Bar(tqdm):  # no monitor thread: the espeak engine forks, which is safest single-threaded
                monitor_interval = 0

            self.bar = _Bar(total=total, file=self.stream, unit="clip", dynamic_ncols=True)
        self.start = self.last = clock()
        self.next_tenth = 1
        if self.lines:
            self._write(f"{total} clips to make")

    def update(self, ok: bool = True) -> None:
        """One more item finished (``ok`` False: it failed)."""
        self.done += 1
        self.failed += not ok
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines and self.done < self.total:
            now, tenth = self.clock(), self.done * 10 // self.total
            if tenth >= self.next_tenth or now - self.last >= self.every:
                self.next_tenth = max(self.next_tenth, tenth + 1)
                elapsed = now - self.start
                self._write(f"{self.done}/{self.total} clips ({100 * self.done // self.total}%), {elapsed:.0f} s, "
                            f"{self._rate(elapsed)}{self._failures()}", now)

    def close(self) -> None:
        """Close the bar, or write the last line (also when the build stopped early). Idempotent."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.lines:
            self.lines = False
            now = self.clock()
            elapsed = now - self.start
            head = "" if self.done >= self.total else "stopped after "
            self._write(f"{head}{self.done}/{self.total} clips in {elapsed:.1f} s ({self._rate(elapsed)})"
                        f"{self._failures()}", now)

    def _rate(self, elapsed: float) -> str:
        return f"{self.done / elapsed:.1f} clips/s" if elapsed > 0 else "- clips/s"

    def _failures(self) -> str:
        return f", {self.failed} failed" if self.failed else ""

    def _write(self, text: str, now: float | None = None) -> None:
        self.last = self.clock() if now is None else now
        try:
            self.stream.write(f"{self.label}: {text}\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken log must not stop the build
            pass
