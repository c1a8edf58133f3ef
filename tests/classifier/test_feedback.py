"""The feedback store on SQLite and on a real PostgreSQL server."""
import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from classifier.errors import InvalidFeedback
from classifier.feedback import FeedbackStore, Label, label_from_dict
from classifier.types import Post


def label(post_id="42", text="Watershed splits my nuclei", value="spam", source="forum-a", **kw):
    return Label(Post(post_id, "Title", text, "3D Segmentation"), value, source, **kw)


def test_first_label_is_created_and_repeats_change_nothing(database):
    store = FeedbackStore(database)
    first = store.add(label())
    again = store.add(label())
    assert (first.status, first.revision) == ("created", 1)
    assert (again.status, again.revision, again.row_id) == ("unchanged", 1, first.row_id)
    assert len(store.history("forum-a", "42")) == 1


def test_latest_label_wins_and_history_is_kept(database):
    store = FeedbackStore(database)
    store.add(label(value="spam", moderator="ann"))
    changed = store.add(label(value="ok", moderator="bob", note="false alarm"))
    assert (changed.status, changed.revision) == ("changed", 2)
    history = store.history("forum-a", "42")
    assert [h.label for h in history] == ["spam", "ok"]
    assert [h.moderator for h in history] == ["ann", "bob"]
    latest = list(store.latest())
    assert len(latest) == 1 and latest[0].label == "ok" and latest[0].note == "false alarm"


def test_an_edited_post_with_the_same_label_is_a_new_revision(database):
    store = FeedbackStore(database)
    store.add(label(text="first text"))
    assert store.add(label(text="edited text")).status == "changed"
    assert list(store.latest())[0].post.body == "edited text"


def test_sources_never_overwrite_each_other(database):
    store = FeedbackStore(database)
    store.add(label(source="forum-a", value="spam"))
    store.add(label(source="forum-b", value="ok"))
    assert sorted((x.source, x.label) for x in store.latest()) == [("forum-a", "spam"), ("forum-b", "ok")]
    assert [x.label for x in store.latest(source="forum-b")] == ["ok"]
    assert store.counts() == {"ok": 1, "spam": 1, "off_topic": 0, "history_rows": 2}


def test_concurrent_copies_of_one_label_store_one_row(database):
    store = FeedbackStore(database)
    results, barrier = [], threading.Barrier(8)

    def send():
        barrier.wait()
        results.append(store.add(label()).status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["unchanged"] * 7
    assert len(store.history("forum-a", "42")) == 1


def test_awkward_text_round_trips(database):
    store = FeedbackStore(database)
    body = "zero\u200bwidth \u202eright-to-left\u202c, emoji \U0001F600, NUL\x00byte, lone \ud800 surrogate"
    author = {"id": 7, "name": "Zoë", "trust_level": 1}
    store.add(Label(Post(9, "", body, None, author), "off_topic", "forum-a", channel="akismet"))
    [row] = store.latest()
    assert row.post.id == "9" and row.post.author == author and row.channel == "akismet"
    assert "\x00" not in row.post.body and "\U0001F600" in row.post.body and "\u202e" in row.post.body


def test_times_are_kept_in_utc(database):
    store = FeedbackStore(database)
    at = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    store.add(label(at=at))
    [row] = store.latest()
    assert row.created_at == at and row.to_dict()["time"] == "2026-03-01T12:30:00+00:00"


@pytest.mark.parametrize("kwargs, message", [
    ({"value": "ham"}, "label must be one of ok, spam, off_topic"),
    ({"text": "  "}, "title or body is needed"),
    ({"source": ""}, "source must be"),
])
def test_bad_labels_are_refused(kwargs, message):
    with pytest.raises(InvalidFeedback, match=message):
        if kwargs.get("text") == "  ":
            Label(Post("1", "", "  "), "spam", "forum")
        else:
            label(**kwargs)


@pytest.mark.parametrize("record, message", [
    ({"id": "1", "body": "x"}, "label is required"),
    ({"id": "1", "body": "x", "label": 3}, "label must be one of"),
    ({"id": "1", "label": "spam"}, "body is required"),
    ({"id": "1", "body": "x", "label": "spam", "moderator": ["a"]}, "moderator must be a string"),
    ([], "feedback must be a JSON object"),
])
def test_feedback_records_are_validated(record, message):
    with pytest.raises(InvalidFeedback, match=message):
        label_from_dict(record, source="forum")


def test_sqlite_runs_in_wal_mode(tmp_path):
    from classifier.database import Database

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2  # FULL
