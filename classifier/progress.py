"""Progress of a batch job as plain lines, for logs and pipes where a progress bar is noise."""
from __future__ import annotations

import time
from typing import Callable

from .types import DECISIONS


def counts_text(summary) -> str:
    """'1200 posts, 850/s, allow=1100 review=90 block=10': what a progress line or bar shows."""
    return (f"{summary.scored} posts, {summary.rate():.0f}/s " +
            " ".join(f"{d}={summary.decisions.get(d, 0)}" for d in DECISIONS))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLog:
    """Calls `echo` with a progress line at most every `interval` seconds.

    Its ETA comes from how fast the input position moved since the first call, so it also
    holds for a resumed run that started half-way through the file.
    """

    def __init__(self, echo: Callable[[str], None], interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.echo, self.interval, self.clock = echo, interval, clock
        self.started = clock()
        self.last = self.started
        self.first_position: int | None = None

    def __call__(self, summary, position: int, total: int) -> None:
        now = self.clock()
        if self.first_position is None:
            self.first_position = 0 if summary.resumed == 0 else position
        if now - self.last < self.interval:
            return
        self.last = now
        line = counts_text(summary)
        if total:
            line += f", {100 * position / total:.0f} % of the input"
            moved = position - self.first_position
            if moved > 0 and position < total:
                line += f", ETA {_duration((now - self.started) * (total - position) / moved)}"
        self.echo(line)
