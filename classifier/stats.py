"""Decisions served, and how many of them moderators later overturned.

The HTTP layer records what it answered for each post (`DecisionLog`, written in batches off the
request path, so a classify call never waits for the database). `overturn_stats` joins those
decisions with the newest moderator label of the same post and counts, per model version and
day (UTC), the blocks moderators said were not spam (false positives) and the allows they said
were spam (false negatives), as Discourse's spam dashboard and Akismet's key reports do.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from itertools import chain

import sqlalchemy as sa

from .database import Database, storable_text
from .errors import StoreError
from .outages import OutageLog
from .schema import decisions, feedback

#: What a buffered decision holds, in the order of the INSERT's columns.
ROW_COLUMNS = ("source", "post_id", "model_version", "label", "decision", "spam_score", "created_at")
#: The DB-API placeholder of each paramstyle the supported drivers use (sqlite3; psycopg).
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

log = logging.getLogger(__name__)

STAT_FIELDS = ("classified", "allow", "review", "block", "labelled", "false_positives", "false_negatives",
               "review_spam", "review_not_spam", "missed_off_topic")


class DecisionLog:
    """Buffers decisions and writes them every `interval` seconds or `batch` rows, whichever first.

    A graceful stop of `postsieve serve` writes what each worker holds, while the database takes
    writes (if it does not, the rows are lost with a warning): gunicorn's `worker_exit` hook calls
    `flush_at_exit`. Another server should call it as it stops; it is not left to the interpreter's
    exit handlers, which would keep every log ever made alive and write to databases long gone
    when a test run or a tool that built many apps ends. A crash or SIGKILL loses
    what arrived since the last write, about the last second while the database takes writes;
    never a label (labels are written by the feedback store before it answers). The writer
    thread belongs to the process that started it, so a forked gunicorn worker starts its own on
    first use.
    """

    def __init__(self, database: Database, *, interval: float = 1.0, batch: int = 500, max_buffer: int = 100_000):
        self.database = database
        self.interval = interval
        self.batch = batch
        self.max_buffer = max_buffer
        self._rows: list[tuple] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread_pid: int | None = None
        self._write_failures = OutageLog("writing decisions", log)
        self._dropping = False  # rows were dropped for want of room since writing last worked
        self.dropped = 0
        self.last_error: str | None = None

    def record(self, source: str, scored_list, *, at: datetime | None = None) -> None:
        """Queue one row per scored post (a dict of the output contract or a Scored)."""
        now = at or datetime.now(timezone.utc)
        # Classify echoes any id; one with NUL or a lone surrogate cannot be stored as it is (and
        # can never match a label, whose ids refuse those characters), so it is stored altered.
        source = storable_text(source[:200])
        rows = []
        for s in scored_list:
            d = s if isinstance(s, dict) else s.to_dict()
            rows.append((source, storable_text(str(d["id"])[:200]), d["model_version"], d["label"], d["decision"],
                         float(d["scores"]["spam"]), now))
        with self._lock:
            room = len(self._rows) + len(rows) <= self.max_buffer
            if room:
                self._rows.extend(rows)
            else:  # the database is down for long: keep memory bounded
                self.dropped += len(rows)
            full = len(self._rows) >= self.batch
        if not room:
            self._report_dropping()
            return
        self._ensure_writer()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is buffered now; return the number of rows written.

        Flushes take turns (the writer thread, /v1/stats and a stopping process all call this): a
        caller that comes while another flush is writing waits for it, then writes what is left,
        including rows that flush put back, so none is lost at exit or written twice.
        """
        with self._flushing:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                with self.database.engine.begin() as conn:
                    _insert(conn, rows)
            except (sa.exc.SQLAlchemyError, ValueError) as exc:
                self.last_error = type(exc).__name__
                if not _refused_as_data(exc):  # away, read-only, out of connections: try again later
                    self._write_failures.failed(exc)
                    self._keep(rows)
                    return 0
                # The database refused some row as data: that row would fail again forever and hold
                # back every later one, so the rows go in one by one and only the refused are dropped.
                return self._write_one_by_one(rows)
            self.last_error = None
            self._writing_works()
            return len(rows)

    def flush_at_exit(self) -> int:
        """Write what this process still buffers, as it stops; warn about any rows left unwritten.

        Does nothing in a process that never started a writer: a forked child's copy of its
        parent's buffer holds the parent's rows, which are the parent's to write.
        """
        if self._thread_pid != os.getpid():
            return 0
        written = self.flush()
        if self._rows:
            log.warning("%d decisions could not be written before exit and are lost (%s)",
                        len(self._rows), self.last_error)
        return written

    def _keep(self, rows: list[tuple]) -> None:
        """Put rows back in front of the buffer for the next attempt, within the bound (the
        oldest beyond it are dropped and counted)."""
        with self._lock:
            kept = rows + self._rows
            overflow = max(0, len(kept) - self.max_buffer)
            self.dropped += overflow
            self._rows = kept[-self.max_buffer:]
        if overflow:
            self._report_dropping()

    def _write_one_by_one(self, rows: list[tuple]) -> int:
        """Insert rows one at a time, dropping (and counting) those the database refuses."""
        written = 0
        for i, row in enumerate(rows):
            try:
                with self.database.engine.begin() as conn:
                    _insert(conn, [row])
                written += 1
            except (sa.exc.SQLAlchemyError, ValueError) as exc:
                if not _refused_as_data(exc):  # not this row's fault: keep the rest for later
                    self._write_failures.failed(exc)
                    self._keep(rows[i:])
                    return written
                self.dropped += 1
                log.warning("dropped a decision row the database refused (%s)", type(exc).__name__)
        self._writing_works()
        return written

    def _writing_works(self) -> None:
        """Note that the database takes writes: say so once if it did not, and forget past drops."""
        self._write_failures.recovered()
        self._dropping = False

    def _report_dropping(self) -> None:
        """Warn when rows start being dropped for want of room (once until writing works again)."""
        with self._lock:
            first, self._dropping = not self._dropping, True
        if first:
            log.warning("dropping decisions: %d wait for the database, the most this process keeps "
                        "(%d dropped so far)", self.max_buffer, self.dropped)

    def _ensure_writer(self) -> None:
        if self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread_pid == os.getpid():
                return
            self._thread_pid = os.getpid()
        threading.Thread(target=self._run, name="postsieve-decision-log", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer must outlive any one batch, or statistics stop silently
                log.exception("writing decisions failed")


def _refused_as_data(exc: Exception) -> bool:
    """True when an error says the database refused a value (text it cannot store, a constraint),
    which the same row would meet again; anything else (unreachable, read-only, out of
    connections) may pass and is worth retrying."""
    return isinstance(exc, (sa.exc.DataError, sa.exc.IntegrityError, ValueError))


def _insert(conn, rows: list[tuple]) -> None:
    """Insert buffered rows as multi-row INSERT statements of a hundred rows each.

    Tuples go to the driver as they are, after the dialect's own conversion of each column
    (SQLite's text form of a datetime), so the stored values are those `decisions.insert()`
    stores; SQLAlchemy's per-row handling of parameter dicts cost more than the insert itself
    (7.2 against 5.0 us a row into SQLite). One statement for many rows, not executemany: the
    sqlite3 module lets go of the GIL for every row it steps, and in a gunicorn worker each of
    those hand-offs waited for the thread serving requests (a flush of 500 rows took 74 ms and
    9.4 ms of CPU there; now 12 ms and 6.3 ms).
    """
    dialect = conn.dialect
    placeholder = _PLACEHOLDERS.get(dialect.paramstyle)
    if placeholder is None:  # a driver with named parameters: the general path
        conn.execute(decisions.insert(), [dict(zip(ROW_COLUMNS, row)) for row in rows])
        return
    processors = [decisions.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in ROW_COLUMNS]
    if any(processors):
        rows = [tuple([v if p is None else p(v) for p, v in zip(processors, row)]) for row in rows]
    head = f"INSERT INTO {decisions.name} ({', '.join(ROW_COLUMNS)}) VALUES "
    one = f"({', '.join([placeholder] * len(ROW_COLUMNS))})"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(chain.from_iterable(chunk)))


#: Rows per INSERT statement: 700 parameters, within the 999 of SQLite builds before 3.32.
_ROWS_PER_STATEMENT = 100


def _day(column, dialect: str):
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    return sa.func.strftime("%Y-%m-%d", column)


def overturn_stats(database: Database, *, days: int = 30, source: str | None = None,
                   now: datetime | None = None) -> list[dict]:
    """Rows of {model_version, day, classified, allow, review, block, labelled, false_positives, ...}."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    newest = (sa.select(feedback.c.source, feedback.c.post_id, sa.func.max(feedback.c.seq).label("seq"))
              .group_by(feedback.c.source, feedback.c.post_id).subquery())
    labels = (sa.select(feedback.c.source, feedback.c.post_id, feedback.c.label)
              .join(newest, sa.and_(feedback.c.source == newest.c.source, feedback.c.post_id == newest.c.post_id,
                                    feedback.c.seq == newest.c.seq)).subquery())
    day = _day(decisions.c.created_at, database.url.get_backend_name()).label("day")
    label = labels.c.label

    def count(condition):
        return sa.func.sum(sa.case((condition, 1), else_=0))

    query = (sa.select(
        decisions.c.model_version, day, sa.func.count().label("classified"),
        count(decisions.c.decision == "allow").label("allow"),
        count(decisions.c.decision == "review").label("review"),
        count(decisions.c.decision == "block").label("block"),
        count(label.is_not(None)).label("labelled"),
        count(sa.and_(decisions.c.decision == "block", label.in_(["ok", "off_topic"]))).label("false_positives"),
        count(sa.and_(decisions.c.decision == "allow", label == "spam")).label("false_negatives"),
        count(sa.and_(decisions.c.decision == "review", label == "spam")).label("review_spam"),
        count(sa.and_(decisions.c.decision == "review", label.in_(["ok", "off_topic"]))).label("review_not_spam"),
        count(sa.and_(decisions.c.decision == "allow", label == "off_topic")).label("missed_off_topic"),
    ).select_from(decisions.outerjoin(labels, sa.and_(labels.c.source == decisions.c.source,
                                                      labels.c.post_id == decisions.c.post_id)))
        .where(decisions.c.created_at >= since)
        .group_by(decisions.c.model_version, day).order_by(day, decisions.c.model_version))
    if source is not None:
        query = query.where(decisions.c.source == source)
    try:
        with database.engine.connect() as conn:
            rows = conn.execute(query).all()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read statistics: {type(exc).__name__}") from None
    out = []
    for row in rows:
        item = {"model_version": row.model_version, "day": row.day}
        item.update({name: int(getattr(row, name) or 0) for name in STAT_FIELDS})
        blocked, allowed = item["block"], item["allow"]
        item["false_positive_rate"] = round(item["false_positives"] / blocked, 4) if blocked else None
        item["false_negative_rate"] = round(item["false_negatives"] / allowed, 4) if allowed else None
        out.append(item)
    return out

