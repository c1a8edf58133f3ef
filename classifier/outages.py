"""A failure that every call meets (a database that is away) logged as a few lines, not one a call.

The decision log uses it for its writes, and the HTTP layer for key checks and /readyz.
"""
from __future__ import annotations

import logging
import threading
import time

from .errors import StoreError


def describe_failure(exc: BaseException) -> str:
    """One line naming a database failure for the log: its type and the driver's own message.

    SQLAlchemy's text of an error adds the SQL and its parameters, so only the first line of the
    driver's exception (`orig`) is quoted (PostgreSQL's next lines quote the statement); a
    StoreError raised `from None` still holds its cause in `__context__`. Neither holds the
    database URL, so a password in it never reaches the log.
    """
    cause = exc
    if isinstance(exc, StoreError) and (exc.__cause__ or exc.__context__) is not None:
        cause = exc.__cause__ or exc.__context__
    detail = getattr(cause, "orig", None)
    lines = str(cause if detail is None else detail).strip().splitlines()
    text = " ".join(lines[0].split())[:300] if lines else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class OutageLog:
    """Logs a failure that every call meets (a database that is away) as a few lines, not one a call.

    A line when it starts or its reason changes, a reminder at most every `remind_every` seconds
    while it lasts (counting the failures not logged), and a line when it works again: at
    thousands of requests a second, an outage otherwise buries the log, or leaves no trace at all.
    The lines are warnings, so they show where nobody configured logging (gunicorn's stderr).
    """

    def __init__(self, what: str, logger: logging.Logger, *, remind_every: float = 60.0):
        self.what = what
        self.logger = logger
        self.remind_every = remind_every
        self._lock = threading.Lock()
        self._reason: str | None = None  # None while it works
        self._logged_at = 0.0
        self._unlogged = 0

    def failed(self, exc: BaseException) -> None:
        reason = describe_failure(exc)
        now = time.monotonic()
        with self._lock:
            if reason == self._reason and now - self._logged_at < self.remind_every:
                self._unlogged += 1
                return
            unlogged, self._unlogged = self._unlogged, 0
            self._reason, self._logged_at = reason, now
        since = f" ({unlogged} more times since the last line)" if unlogged else ""
        self.logger.warning("%s failed: %s%s", self.what, reason, since)

    def recovered(self) -> None:
        if self._reason is None:  # the usual case, without taking the lock
            return
        with self._lock:
            if self._reason is None:
                return
            self._reason, self._unlogged = None, 0
        self.logger.warning("%s works again", self.what)
