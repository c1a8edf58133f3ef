"""Decisions served and moderators' overturns, per model version and day."""
from datetime import datetime, timedelta, timezone

import pytest

from classifier.feedback import FeedbackStore, Label
from classifier.stats import DecisionLog, overturn_stats
from classifier.types import Post

DAY1 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)


def served(post_id, decision, label="spam", version="v1", spam=0.9):
    return {"id": post_id, "label": label, "decision": decision, "model_version": version,
            "scores": {"ok": 0.0, "spam": spam, "off_topic": 0.0}}


def test_overturns_are_counted_per_version_and_day(database):
    log = DecisionLog(database, interval=60)
    log.record("forum", [served("a", "block"), served("b", "block"), served("c", "allow", "ok", spam=0.1)], at=DAY1)
    log.record("forum", [served("d", "review"), served("e", "allow", "ok", version="v2")], at=DAY2)
    assert log.flush() == 5
    store = FeedbackStore(database)
    for post_id, label in [("a", "ok"), ("b", "spam"), ("c", "spam"), ("d", "ok"), ("e", "off_topic")]:
        store.add(Label(Post(post_id, "", f"text {post_id}"), label, "forum"))
    store.add(Label(Post("a", "", "text a"), "spam", "other-forum"))  # another forum's post "a": not ours
    rows = overturn_stats(database, days=30, now=DAY2 + timedelta(hours=1))
    by_key = {(r["day"], r["model_version"]): r for r in rows}
    day1 = by_key[("2026-11-20", "v1")]
    assert (day1["classified"], day1["block"], day1["allow"], day1["labelled"]) == (3, 2, 1, 3)
    assert (day1["false_positives"], day1["false_negatives"], day1["false_positive_rate"]) == (1, 1, 0.5)
    day2 = by_key[("2026-11-21", "v1")]
    assert (day2["review"], day2["review_not_spam"]) == (1, 1)
    assert by_key[("2026-11-21", "v2")]["missed_off_topic"] == 1
    assert overturn_stats(database, days=1, now=DAY2 + timedelta(hours=1))[0]["day"] == "2026-11-21"
    assert overturn_stats(database, source="nobody", now=DAY2) == []


def test_a_large_batch_is_stored_as_sqlalchemys_own_insert_stores_it(database):
    """Rows go in as multi-row INSERT statements (one GIL hand-off a statement, not one a row);
    a batch of several statements stores every row with the values `decisions.insert()` stores."""
    import sqlalchemy as sa

    from classifier import stats as stats_module
    from classifier.schema import decisions

    n = stats_module._ROWS_PER_STATEMENT * 2 + 7
    log = DecisionLog(database, interval=60)
    log.record("forum", [served(f"p{i}", "block", spam=i / n) for i in range(n)], at=DAY1)
    assert log.flush() == n
    reference = [dict(zip(stats_module.ROW_COLUMNS, ("other", f"p{i}", "v1", "spam", "block", i / n, DAY1)))
                 for i in range(n)]
    with database.engine.begin() as conn:
        conn.execute(decisions.insert(), reference)
        stored = conn.execute(sa.select(decisions).order_by(decisions.c.id)).mappings().all()
    ours, theirs = stored[:n], stored[n:]
    assert [r["post_id"] for r in ours] == [f"p{i}" for i in range(n)]
    columns = [c for c in stats_module.ROW_COLUMNS if c != "source"]
    assert [[r[c] for c in columns] for r in ours] == [[r[c] for c in columns] for r in theirs]


def test_the_log_writes_in_the_background_and_keeps_memory_bounded(database):
    import time

    log = DecisionLog(database, interval=0.05, max_buffer=3)
    log.record("forum", [served("a", "allow", "ok")])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not overturn_stats(database):
        time.sleep(0.05)
    assert overturn_stats(database)[0]["classified"] == 1
    log.interval = 60
    log.record("forum", [served(str(i), "allow", "ok") for i in range(5)])  # more than the buffer takes
    assert log.dropped == 5


def test_ids_no_database_takes_as_they_are_are_stored_altered_and_the_rest_still_written(database):
    """Classify echoes any id; NUL (PostgreSQL refuses it) and lone surrogates (neither database
    takes one) used to stop the writer for good: its thread died on SQLite, and on PostgreSQL the
    same batch was retried forever, holding back every later decision."""
    log = DecisionLog(database, interval=60)
    log.record("forum", [served("p\x00", "block"), served("\ud800", "block"), served("fine", "allow", "ok")], at=DAY1)
    log.record("for\x00um\udfff", [served("x", "review")], at=DAY1)
    assert log.flush() == 4
    assert (log.dropped, log.last_error) == (0, None)
    assert overturn_stats(database, now=DAY1)[0]["classified"] == 4
    assert overturn_stats(database, now=DAY1, source="forum")[0]["classified"] == 3
    assert overturn_stats(database, now=DAY1, source="forum?")[0]["classified"] == 1


def test_rows_the_database_refuses_are_dropped_one_by_one_and_the_writer_lives_on(database, monkeypatch, caplog):
    import classifier.stats as stats_module

    real_insert = stats_module._insert

    def refusing_insert(conn, rows):  # one row's data is refused, as a driver refuses odd text
        if any(row[1] == "bad" for row in rows):
            raise ValueError("a value the driver cannot encode")
        real_insert(conn, rows)

    monkeypatch.setattr(stats_module, "_insert", refusing_insert)
    log = DecisionLog(database, interval=60)
    log.record("forum", [served("a", "block"), served("bad", "block"), served("c", "allow", "ok")], at=DAY1)
    assert log.flush() == 2
    assert (log.dropped, log.last_error) == (1, "ValueError")
    assert overturn_stats(database, now=DAY1)[0]["classified"] == 2
    log.record("forum", [served("d", "allow", "ok")], at=DAY1)
    assert log.flush() == 1 and log.last_error is None  # nothing held back

    calls = []

    def broken_flush():
        calls.append(1)
        raise RuntimeError("an unexpected failure")

    import time

    monkeypatch.setattr(log, "flush", broken_flush)
    monkeypatch.setattr(log, "interval", 0.01)
    log._thread_pid = None  # as in a newly forked worker: the first record starts the writer
    log._ensure_writer()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) >= 3, "the writer stopped after a failing flush"
    assert "writing decisions failed" in caplog.text


@pytest.mark.parametrize("error", ["OperationalError", "InternalError", "ProgrammingError"])
def test_a_database_that_is_away_or_refuses_writes_keeps_the_rows_for_the_next_attempt(database, monkeypatch, error):
    """Unreachable, read-only after a failover (InternalError), no permission (ProgrammingError):
    none of it is the rows' fault, so they wait for the next attempt instead of being dropped."""
    import sqlalchemy as sa

    import classifier.stats as stats_module

    real_insert = stats_module._insert
    away = [True]

    def flaky_insert(conn, rows):
        if away[0]:
            raise getattr(sa.exc, error)("INSERT", {}, Exception("cannot execute INSERT in a read-only transaction"))
        real_insert(conn, rows)

    monkeypatch.setattr(stats_module, "_insert", flaky_insert)
    log = DecisionLog(database, interval=60)
    log.record("forum", [served("a", "block"), served("b", "allow", "ok")], at=DAY1)
    assert log.flush() == 0 and log.last_error == error and log.dropped == 0
    away[0] = False
    assert log.flush() == 2
    assert overturn_stats(database, now=DAY1)[0]["classified"] == 2


def away(statement="INSERT INTO decisions VALUES (?)", params=("secret-param",)):
    """The error SQLAlchemy raises for a database it cannot reach; its text quotes the SQL and parameters."""
    import sqlalchemy as sa

    return sa.exc.OperationalError(statement, params, Exception("connection refused"))


def test_a_flush_waits_for_the_one_in_flight_so_rows_it_puts_back_are_written(database, monkeypatch):
    """A worker that stops flushes while its writer thread may be writing: the stopping flush found
    the buffer empty and returned, and the writer, failing, put its rows back into a buffer that
    nobody would write again."""
    import threading

    import classifier.stats as stats_module

    real_insert = stats_module._insert
    in_flight, release = threading.Event(), threading.Event()

    def first_insert_hangs_then_fails(conn, rows):
        if not in_flight.is_set():
            in_flight.set()
            release.wait(10)
            raise away()
        real_insert(conn, rows)

    monkeypatch.setattr(stats_module, "_insert", first_insert_hangs_then_fails)
    log = DecisionLog(database, interval=60)
    log.record("forum", [served("a", "block"), served("b", "allow", "ok")], at=DAY1)
    writer = threading.Thread(target=log.flush)
    writer.start()
    assert in_flight.wait(10)
    stopping = threading.Thread(target=log.flush_at_exit)
    stopping.start()
    stopping.join(0.3)
    release.set()
    stopping.join(10)
    writer.join(10)
    assert overturn_stats(database, now=DAY1)[0]["classified"] == 2
    assert log.flush() == 0  # nothing left over, and nothing written twice


def test_flush_at_exit_writes_the_buffer_and_says_what_it_could_not(database, monkeypatch, caplog):
    import classifier.stats as stats_module

    log = DecisionLog(database, interval=60)
    log.record("forum", [served("a", "block")], at=DAY1)
    assert log.flush_at_exit() == 1
    assert overturn_stats(database, now=DAY1)[0]["classified"] == 1

    def insert_away(conn, rows):
        raise away()

    monkeypatch.setattr(stats_module, "_insert", insert_away)
    log.record("forum", [served("b", "block"), served("c", "block")], at=DAY1)
    assert log.flush_at_exit() == 0
    assert "2 decisions could not be written before exit and are lost" in caplog.text
    monkeypatch.undo()
    assert log.flush() == 2  # no rows left for the real exit of the test run

    inherited = DecisionLog(database, interval=60)  # as a forked child holds its parent's log
    inherited._rows = [("forum", "d", "v1", "spam", "block", 0.9, DAY1)]
    assert inherited.flush_at_exit() == 0 and inherited._rows


def test_failing_writes_are_logged_when_they_start_and_stop_with_the_cause_and_no_sql(database, monkeypatch, caplog):
    """A database that was away left only `last_error`, which nothing logged: no trace of why
    statistics stopped, nor that they came back."""
    import classifier.stats as stats_module

    real_insert = stats_module._insert
    down = [True]

    def flaky_insert(conn, rows):
        if down[0]:
            raise away()
        real_insert(conn, rows)

    monkeypatch.setattr(stats_module, "_insert", flaky_insert)
    log = DecisionLog(database, interval=60)
    for post_id in "abc":
        log.record("forum", [served(post_id, "block")], at=DAY1)
        assert log.flush() == 0
    failures = [r.getMessage() for r in caplog.records if "writing decisions" in r.getMessage()]
    assert failures == ["writing decisions failed: OperationalError: connection refused"]
    assert "secret-param" not in caplog.text and "INSERT" not in caplog.text
    down[0] = False
    assert log.flush() == 3 and log.flush() == 0
    log.record("forum", [served("d", "block")], at=DAY1)
    assert log.flush() == 1
    recovered = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert recovered == ["writing decisions works again"]


def test_the_first_rows_dropped_for_want_of_room_are_logged_once(database, monkeypatch, caplog):
    import classifier.stats as stats_module

    monkeypatch.setattr(stats_module, "_insert", lambda conn, rows: (_ for _ in ()).throw(away()))
    log = DecisionLog(database, interval=60, max_buffer=2)
    log.record("forum", [served("a", "block"), served("b", "block")], at=DAY1)
    for post_id in "cde":
        log.record("forum", [served(post_id, "block")], at=DAY1)
    assert log.flush() == 0
    log.record("forum", [served("f", "block")], at=DAY1)
    assert log.dropped == 4
    dropping = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dropping decisions")]
    assert dropping == ["dropping decisions: 2 wait for the database, the most this process keeps (1 dropped so far)"]
    monkeypatch.undo()
    assert log.flush() == 2


def test_an_outage_log_reminds_while_it_lasts_and_names_a_new_cause_at_once(caplog):
    import logging
    import time

    from classifier.errors import StoreError
    from classifier.outages import OutageLog

    outage = OutageLog("checking things", logging.getLogger("test.outage"), remind_every=0.2)
    for _ in range(3):
        outage.failed(away())
    time.sleep(0.25)
    outage.failed(away())
    try:
        try:
            raise away(params=()) from None
        except Exception:
            raise StoreError("database unreachable: OperationalError") from None
    except StoreError as exc:  # the cause a StoreError hides behind `from None` is found
        outage.failed(type(exc)("x"))
        outage.failed(exc)
    outage.recovered()
    outage.recovered()
    assert [r.getMessage() for r in caplog.records] == [
        "checking things failed: OperationalError: connection refused",
        "checking things failed: OperationalError: connection refused (2 more times since the last line)",
        "checking things failed: StoreError: x",
        "checking things failed: OperationalError: connection refused",
        "checking things works again",
    ]
