import csv
import io
import json

import pytest

from classifier import scoring
from classifier.errors import ClassifierError


def jsonl(*records):
    return io.StringIO("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def test_stream_keeps_order_and_contract(tiny_model):
    posts = [{"id": i, "title": "", "body": f"post number {i} about Fiji macros"} for i in range(25)]
    out = io.StringIO()
    summary = scoring.score_stream(tiny_model, jsonl(*posts), "jsonl", scoring.JsonlWriter(out))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in rows] == list(range(25))
    assert summary.scored == 25 and sum(summary.decisions.values()) == 25


def test_bad_row_stops_with_line_number(tiny_model):
    src = jsonl({"id": 1, "title": "", "body": "ok"}, "{broken", {"id": 3, "title": "", "body": "x"})
    with pytest.raises(ClassifierError, match=r"posts.jsonl:2: malformed JSON.*--skip-bad"):
        scoring.score_stream(tiny_model, src, "jsonl", scoring.JsonlWriter(io.StringIO()), path="posts.jsonl")


def test_skip_bad_counts_and_reports(tiny_model):
    src = jsonl({"id": 1, "title": "", "body": "ok"}, "{broken", {"id": 3, "title": "", "body": 7})
    seen = []
    out = io.StringIO()
    summary = scoring.score_stream(tiny_model, src, "jsonl", scoring.JsonlWriter(out), skip_bad=True,
                                   on_bad=seen.append)
    assert summary.scored == 1 and summary.bad == 2
    assert [b.line for b in seen] == [2, 3]
    assert "2 bad row(s) skipped" in summary.format()


def test_csv_writer_columns(tiny_model):
    out = io.StringIO()
    scoring.score_stream(tiny_model, jsonl({"id": "a", "title": "t", "body": "b"}), "jsonl", scoring.CsvWriter(out))
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == scoring.CSV_COLUMNS
    assert rows[0]["id"] == "a"
    json.loads(rows[0]["reasons"])


def test_gzip_round_trip(tiny_model, tmp_path):
    import gzip

    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt") as f:
        f.write(json.dumps({"id": 1, "title": "", "body": "hello"}) + "\n")
    stream, counter = scoring.open_input(str(src))
    with stream, scoring.open_output(str(tmp_path / "out.jsonl.gz")) as sink:
        scoring.score_stream(tiny_model, stream, "jsonl", scoring.JsonlWriter(sink))
    assert counter.count == src.stat().st_size
    with gzip.open(tmp_path / "out.jsonl.gz", "rt") as f:
        assert json.loads(f.readline())["id"] == 1
