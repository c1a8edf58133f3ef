"""Bulk import and export of moderator labels."""
import io
import json

import pytest

from classifier.errors import CorpusError
from classifier.feedback import FeedbackStore
from classifier.feedback_io import export_labels, import_labels, read_label_records

ROWS = [
    {"id": 1, "title": "Buy now", "body": "Cheap pills at medsnow.shop", "label": "spam", "moderator": "ann",
     "time": "2026-03-01T10:00:00Z"},
    {"id": 2, "title": "Stitching", "body": "How do I stitch tiles in BigStitcher?", "label": "ok"},
    {"id": 3, "title": "", "body": "Sourdough starter smells of acetone", "label": "off_topic", "category": "Fiji"},
]


def jsonl(rows, extra_lines=()):
    return io.StringIO("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra_lines))


def test_import_counts_added_changed_unchanged_and_rejected(database):
    store = FeedbackStore(database)
    first = import_labels(store, read_label_records(jsonl(ROWS, ["{broken\n", '{"id": 4, "body": "x", "label": "ham"}\n']),
                                                    "jsonl"), source="forum")
    assert (first.added, first.changed, first.unchanged) == (3, 0, 0)
    assert [(b.line, b.error[:20]) for b in first.rejected] == [(4, "malformed JSON (Expe"), (5, "label must be one of")]
    again = import_labels(store, read_label_records(jsonl([ROWS[0], dict(ROWS[1], label="spam")]), "jsonl"),
                          source="forum")
    assert (again.added, again.changed, again.unchanged) == (0, 1, 1)
    [spam] = [x for x in store.latest() if x.post.id == "1"]
    assert spam.moderator == "ann" and spam.channel == "import" and spam.created_at.isoformat() == "2026-03-01T10:00:00+00:00"


def test_dry_run_writes_nothing_but_reports_the_same(database):
    store = FeedbackStore(database)
    dry = import_labels(store, read_label_records(jsonl(ROWS + [ROWS[0]]), "jsonl"), source="forum", dry_run=True)
    assert (dry.added, dry.unchanged) == (3, 1) and dry.dry_run
    assert list(store.latest()) == []


def test_csv_import_and_clear_errors(database):
    store = FeedbackStore(database)
    text = "id,title,body,label,time\n1,T,Cheap pills,spam,2026-01-01\n2,,,ok,\n3,T,ok text,spam,yesterday\n"
    summary = import_labels(store, read_label_records(io.StringIO(text), "csv"), source="forum")
    assert summary.added == 1
    assert [(b.line, b.error[:30]) for b in summary.rejected] == [
        (3, "title or body is needed to lea"), (4, "time must be ISO 8601 (2026-03")]
    with pytest.raises(CorpusError, match="missing column.s. label; columns found: id, body"):
        list(read_label_records(io.StringIO("id,body\n1,x\n"), "csv"))


def test_export_round_trips_the_newest_labels_or_the_history(database):
    store = FeedbackStore(database)
    import_labels(store, read_label_records(jsonl(ROWS), "jsonl"), source="forum")
    import_labels(store, read_label_records(jsonl([dict(ROWS[0], label="ok")]), "jsonl"), source="forum")
    out = io.StringIO()
    assert export_labels(store, out, "jsonl") == 3
    newest = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {(r["id"], r["label"]) for r in newest} == {("1", "ok"), ("2", "ok"), ("3", "off_topic")}
    history = io.StringIO()
    assert export_labels(store, history, "csv", history=True) == 4
    assert history.getvalue().splitlines()[0].startswith("source,id,title,body")
    # what was exported imports again without changing anything
    again = import_labels(store, read_label_records(io.StringIO(out.getvalue()), "jsonl"), source="forum")
    assert (again.added, again.changed, again.unchanged) == (0, 0, 3)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_history_export_imports_again_without_changing_anything(database, dry_run):
    """Each revision carries its time: one already stored is a repeat, not a new revision (the
    store only compared a row with the post's newest label, so re-importing a history of spam
    then ok added spam and ok once more)."""
    store = FeedbackStore(database)
    import_labels(store, read_label_records(jsonl(ROWS), "jsonl"), source="forum")
    import_labels(store, read_label_records(jsonl([dict(ROWS[0], label="ok", time="2026-03-02T09:00:00Z")]), "jsonl"),
                  source="forum")
    history = io.StringIO()
    export_labels(store, history, "jsonl", history=True)
    again = import_labels(store, read_label_records(io.StringIO(history.getvalue()), "jsonl"), source="forum",
                          dry_run=dry_run)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 4)
    assert [h.label for h in store.history("forum", "1")] == ["spam", "ok"]
    # a file labelling one post twice, imported twice, adds its two revisions once
    twice = [dict(ROWS[1], id=9, time="2026-03-03T08:00:00Z"), dict(ROWS[1], id=9, label="spam", time="2026-03-03T09:00:00Z")]
    import_labels(store, read_label_records(jsonl(twice), "jsonl"), source="forum")
    repeat = import_labels(store, read_label_records(jsonl(twice), "jsonl"), source="forum", dry_run=dry_run)
    assert (repeat.added, repeat.changed, repeat.unchanged) == (0, 0, 2)
    assert [h.label for h in store.history("forum", "9")] == ["ok", "spam"]
