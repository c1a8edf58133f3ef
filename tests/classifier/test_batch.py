import gzip
import json
import sys
from pathlib import Path

import pytest

from classifier import batch, checkpoint
from classifier.dataset import FieldMap
from classifier.errors import ClassifierError, ColumnMappingError, CorpusError, MissingExtra, ResumeError
from classifier.progress import ProgressLog
from classifier.workers import OrderedPool

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

BODIES = ["Watershed splits my nuclei, would h-maxima help?", "Buy cheap pills at medsnow.shop now",
          "My espresso runs too fast, which grinder?", "Thanks, lowering sigma fixed it.",
          "Call the helpline now toll free 1 8 0 0 5 5 5 0 1 9 9"]


def posts(n):
    return [{"id": i, "title": f"post {i}", "body": BODIES[i % len(BODIES)] + f" ({i})", "category": "Fiji / ImageJ"}
            for i in range(n)]


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def read_output(path):
    name = str(path)
    if name.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    with (gzip.open(path, "rt", newline="") if name.endswith(".gz") else open(path, newline="")) as f:
        if ".csv" in name:
            import csv

            return list(csv.DictReader(f))
        return [json.loads(line) for line in f]


def options(src, out, **kw):
    fmt = "parquet" if str(out).endswith(".parquet") else ("csv" if ".csv" in str(out) else "jsonl")
    return batch.BatchOptions(input_path=str(src), output_path=str(out), out_fmt=fmt, chunk_size=7, **kw)


class StopAfter:
    """A stop flag that turns true once `n` chunks are written (what Ctrl-C does, at a known point)."""

    def __init__(self, n):
        self.n = n
        self.chunks = 0

    def __call__(self):
        return self.chunks > self.n

    def progress(self, summary, position, total):
        self.chunks += 1


def stopped_run(model, opts, n):
    stop = StopAfter(n)
    return batch.run_batch(model, opts, stop=stop, on_progress=stop.progress)


def test_two_jobs_keep_input_order_and_match_one_job(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", posts(60))
    one = batch.run_batch(tiny_model, options(src, tmp_path / "one.jsonl", jobs=1))
    two = batch.run_batch(tiny_model, options(src, tmp_path / "two.jsonl", jobs=2))
    assert [r["id"] for r in read_output(tmp_path / "two.jsonl")] == list(range(60))
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert one.scored == two.scored == 60 and one.decisions == two.decisions


def test_only_filters_the_output_but_counts_everything(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", posts(30))
    summary = batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", only=frozenset({"block", "review"})))
    rows = read_output(tmp_path / "o.jsonl")
    assert {r["decision"] for r in rows} <= {"block", "review"}
    assert summary.scored == 30 and summary.written == len(rows) < 30
    assert "written" in summary.format()


@pytest.mark.parametrize("value", ["block,nope", ",", "allow;block"])
def test_parse_only_rejects_unknown_decisions(value):
    with pytest.raises(ClassifierError, match="--only takes decisions among allow, review, block"):
        batch.parse_only(value)


@pytest.mark.parametrize("name", ["o.jsonl", "o.jsonl.gz", "o.csv", "o.csv.gz", "o.parquet"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_stop_then_resume_equals_an_uninterrupted_run(tiny_model, tmp_path, name, jobs):
    src = write_jsonl(tmp_path / "in.jsonl", posts(50))
    batch.run_batch(tiny_model, options(src, tmp_path / ("full-" + name), jobs=jobs))
    out = tmp_path / name
    first = stopped_run(tiny_model, options(src, out, jobs=jobs), 2)
    assert first.stopped and first.scored == 21  # three chunks of seven
    # the output is valid up to the last full chunk, and the checkpoint says where that is
    assert [str(r["id"]) for r in read_output(out)] == [str(i) for i in range(21)]
    saved = checkpoint.Checkpoint.load(str(out))
    assert saved.records_done == 21 and not saved.complete
    second = batch.run_batch(tiny_model, options(src, out, jobs=jobs, resume=True))
    assert second.resumed == 21 and second.scored == 50 and not second.stopped
    assert read_output(out) == read_output(tmp_path / ("full-" + name))
    assert checkpoint.Checkpoint.load(str(out)).complete
    again = batch.run_batch(tiny_model, options(src, out, jobs=jobs, resume=True))
    assert again.already_complete and again.scored == 50


def test_resume_cuts_a_partly_written_chunk(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", posts(30))
    batch.run_batch(tiny_model, options(src, tmp_path / "full.jsonl"))
    out = tmp_path / "o.jsonl"
    stopped_run(tiny_model, options(src, out), 1)
    with out.open("a") as f:
        f.write('{"id": 14, "label": "ok", "deci')  # a kill in the middle of a write
    batch.run_batch(tiny_model, options(src, out, resume=True))
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()


def test_resume_with_skipped_bad_rows_and_only(tiny_model, tmp_path):
    records = posts(40)
    records[3] = "{broken"
    records[20] = {"id": 20, "title": "", "body": 5}
    src = write_jsonl(tmp_path / "in.jsonl", records)
    kw = dict(skip_bad=True, only=frozenset({"allow"}))
    full = batch.run_batch(tiny_model, options(src, tmp_path / "full.jsonl", **kw))
    out = tmp_path / "o.jsonl"
    stopped_run(tiny_model, options(src, out, **kw), 1)
    resumed = batch.run_batch(tiny_model, options(src, out, resume=True, **kw))
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()
    assert (resumed.scored, resumed.bad, resumed.written) == (full.scored, full.bad, full.written) == (38, 2, full.written)


def test_resume_refuses_changed_settings_or_foreign_output(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", posts(30))
    out = tmp_path / "o.jsonl"
    stopped_run(tiny_model, options(src, out), 0)
    with pytest.raises(ResumeError, match="only was none, now block"):
        batch.run_batch(tiny_model, options(src, out, resume=True, only=frozenset({"block"})))
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text("{}\n")
    with pytest.raises(ResumeError, match="has no checkpoint"):
        batch.run_batch(tiny_model, options(src, foreign, resume=True))
    with pytest.raises(ResumeError, match="needs an output file"):
        batch.run_batch(tiny_model, options(src, "-", resume=True))


def test_bad_row_stops_at_its_line_and_skip_bad_counts(tiny_model, tmp_path):
    records = posts(20)
    records[11] = "{broken"
    src = write_jsonl(tmp_path / "in.jsonl", records)
    with pytest.raises(CorpusError, match=r"in.jsonl:12: malformed JSON.*--skip-bad"):
        batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", jobs=2))
    assert len(read_output(tmp_path / "o.jsonl")) == 7  # the chunk before the bad one
    seen = []
    summary = batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", skip_bad=True), on_bad=seen.append)
    assert summary.bad == 1 and summary.scored == 19 and [b.line for b in seen] == [12]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_bytes_that_are_not_utf8_make_a_bad_row_at_their_line(tiny_model, tmp_path, fmt):
    """They stopped the run even with --skip-bad, at an offset into the decoder's buffer."""
    if fmt == "jsonl":
        lines = [json.dumps(p).encode() for p in posts(12)]
        lines[8] = lines[8].replace(b"post 8", b"caf\xe9 8")
        src = tmp_path / "in.jsonl"
    else:
        lines = [b"id,title,body"] + [f'{p["id"]},{p["title"]},"{p["body"]}"'.encode() for p in posts(12)]
        lines[9] = lines[9].replace(b"post 8", b"caf\xe9 8")
        src = tmp_path / "in.csv"
    src.write_bytes(b"\n".join(lines) + b"\n")
    line = 9 if fmt == "jsonl" else 10
    with pytest.raises(CorpusError, match=rf"in.{fmt}:{line}: not UTF-8 text \(byte 0xe9 at character \d+\)"):
        batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", in_fmt=fmt))
    seen = []
    summary = batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", in_fmt=fmt, skip_bad=True),
                              on_bad=seen.append)
    assert summary.scored == 11 and [b.line for b in seen] == [line]
    assert 8 not in [r["id"] for r in read_output(tmp_path / "o.jsonl")]


def test_csv_rows_after_blank_lines_are_named_by_their_own_line(tiny_model, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,title,body\n\n1,a,hello\n\n\n2,b,"two\nlines"\n\n3,c,x,extra\n')
    seen = []
    batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", in_fmt="csv", skip_bad=True), on_bad=seen.append)
    assert [(b.line, b.error) for b in seen] == [(9, "more fields than the header has")]  # was line 6
    assert [r["id"] for r in read_output(tmp_path / "o.jsonl")] == ["1", "2"]


def test_jsonl_mapping_checked_against_the_first_record(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", ["", {"pid": 1, "subject": "s", "text": "hello"}])
    with pytest.raises(ColumnMappingError, match="in.jsonl:2: missing column.*body; fields found in the first record: pid, subject, text"):
        batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", fields=FieldMap(id="pid", title="subject")))
    batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", fields=FieldMap(id="pid", title="subject", body="text")))
    assert read_output(tmp_path / "o.jsonl")[0]["id"] == 1


@pytest.mark.parametrize("out_name", ["done.jsonl", "done.csv", "done.parquet"])
def test_a_mistyped_mapping_leaves_a_finished_output_and_its_checkpoint_alone(tiny_model, tmp_path, out_name):
    """The mapping is checked before the output is opened: it used to be emptied, its checkpoint deleted."""
    src = write_jsonl(tmp_path / "in.jsonl", posts(20))
    out = tmp_path / out_name
    batch.run_batch(tiny_model, options(src, out))
    before = out.read_bytes(), Path(checkpoint.path_for(str(out))).read_bytes()
    with pytest.raises(ColumnMappingError, match="missing column"):
        batch.run_batch(tiny_model, options(src, out, fields=FieldMap(body="message")))
    assert (out.read_bytes(), Path(checkpoint.path_for(str(out))).read_bytes()) == before
    assert batch.run_batch(tiny_model, options(src, out, resume=True)).already_complete


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("out_name", ["o.jsonl", "o.csv"])
def test_a_run_stopped_before_its_first_chunk_can_be_resumed(tiny_model, tmp_path, jobs, out_name):
    """It left an empty output without a checkpoint, which --resume refused as not written by score."""
    src = write_jsonl(tmp_path / "in.jsonl", posts(20))
    full = tmp_path / ("full" + out_name[1:])
    batch.run_batch(tiny_model, options(src, full))
    out = tmp_path / out_name
    stopped = batch.run_batch(tiny_model, options(src, out, jobs=jobs), stop=lambda: True)
    assert stopped.stopped and stopped.scored == (7 if jobs == 1 else 0)  # one job finishes the chunk in hand
    resumed = batch.run_batch(tiny_model, options(src, out, jobs=jobs, resume=True))
    assert resumed.scored == 20 and out.read_bytes() == full.read_bytes()


def test_explicit_category_mapping_must_exist(tiny_model, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", posts(2))
    with pytest.raises(ColumnMappingError, match="missing column.*forum"):
        batch.run_batch(tiny_model, options(src, tmp_path / "o.jsonl", fields=FieldMap(category="forum")))


def test_parquet_input_with_mapping_nulls_and_bad_rows(tiny_model, tmp_path):
    table = pa.table({"pid": [1, 2, 3, 4], "subject": ["a", None, "c", "d"],
                      "message": ["hello there", "second post", None, "fourth"], "extra": [0, 0, 0, 0]})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src, row_group_size=2)
    fields = FieldMap(id="pid", title="subject", body="message")
    seen = []
    summary = batch.run_batch(tiny_model, batch.BatchOptions(str(src), str(tmp_path / "o.jsonl"), in_fmt="parquet",
                                                             fields=fields, skip_bad=True, chunk_size=3),
                              on_bad=seen.append)
    assert [r["id"] for r in read_output(tmp_path / "o.jsonl")] == [1, 2, 4]
    assert summary.bad == 1 and seen[0].line == 3 and "body is required" in seen[0].error
    with pytest.raises(ColumnMappingError, match="columns found: pid, subject, message, extra"):
        batch.run_batch(tiny_model, batch.BatchOptions(str(src), str(tmp_path / "o.jsonl"), in_fmt="parquet"))


def test_parquet_resume_reads_from_the_right_row(tiny_model, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(posts(40)), src, row_group_size=9)
    kw = dict(in_fmt="parquet", out_fmt="jsonl", chunk_size=5)
    batch.run_batch(tiny_model, batch.BatchOptions(str(src), str(tmp_path / "full.jsonl"), **kw))
    out = tmp_path / "o.jsonl"
    stopped_run(tiny_model, batch.BatchOptions(str(src), str(out), **kw), 3)
    batch.run_batch(tiny_model, batch.BatchOptions(str(src), str(out), resume=True, **kw))
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()


def test_parquet_batches_after_a_skip_are_the_rows_after_it(tmp_path):
    """Every skip over row groups of unequal size (the last one smaller): the rows read are exactly
    those after the skip, numbered from it. A smaller last group once looked skippable on its own:
    a resumed run lost it and wrote the rows before the offset twice."""
    from classifier import parquet

    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(posts(23)), src, row_group_size=6)  # groups of 6, 6, 6, 5
    ids = [r["id"] for r in posts(23)]
    for skip in range(0, 25):
        got, numbers = [], []
        for first_row, record_batch in parquet.batches(str(src), FieldMap(), path="in.parquet", batch_size=4,
                                                       skip=skip):
            rows = record_batch.to_pylist()
            numbers.extend(range(first_row, first_row + len(rows)))
            got.extend(r["id"] for r in rows)
        assert got == ids[skip:], skip
        assert numbers == list(range(skip + 1, 24))[:len(got)], skip


def test_missing_pyarrow_is_one_clear_error(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    src = write_jsonl(tmp_path / "in.jsonl", posts(2))
    with pytest.raises(MissingExtra, match=r"pip install 'postsieve\[parquet\]'"):
        batch.run_batch(tiny_model, options(src, tmp_path / "o.parquet"))


def _double(x):
    if x == 13:
        raise ValueError("unlucky")
    return 2 * x


def test_ordered_pool_keeps_order_and_raises_worker_errors():
    with OrderedPool(_double, 2, in_flight=3) as pool:
        assert list(pool.map(range(12))) == [2 * x for x in range(12)]
    with pytest.raises(ValueError, match="unlucky"), OrderedPool(_double, 2) as pool:
        list(pool.map(range(20)))


def test_progress_log_lines_are_spaced_and_carry_an_eta():
    now = [0.0]
    lines = []
    log = ProgressLog(lines.append, interval=10, clock=lambda: now[0])
    summary = batch.BatchSummary()
    for step in range(1, 7):
        now[0] = step * 4.0
        summary.scored = step * 100
        log(summary, step * 100, 1000)
    assert len(lines) == 2  # at 12 s and 24 s, not in between
    assert "300 posts" in lines[0] and "30 % of the input" in lines[0] and "ETA 0m28s" in lines[0]


def test_file_formats_ignore_the_case_of_extensions():
    from classifier.dataset import file_format
    from classifier.errors import CorpusError as Error

    assert [file_format(n) for n in ("A.CSV", "a.JSONL.GZ", "a.Csv.gz", "x.PARQUET")] == ["csv", "jsonl", "csv", "parquet"]
    with pytest.raises(Error, match="drop the .gz"):
        file_format("x.parquet.GZ")


def test_an_empty_only_is_refused_not_taken_as_no_filter():
    with pytest.raises(ClassifierError, match="--only takes decisions"):
        batch.parse_only("")
    assert batch.parse_only(None) is None


def test_an_os_error_is_laid_on_the_output_only_when_it_names_the_output():
    from classifier.cli import _os_error_line

    denied = PermissionError(13, "Permission denied", "scored_old.jsonl")
    assert _os_error_line(denied, "scored_old.jsonl", "scored") == "scored_old.jsonl: Permission denied"
    partial = OSError(30, "Read-only file system", "out.parquet.partial")
    assert _os_error_line(partial, "in.jsonl", "out.parquet") == "out.parquet: Read-only file system"
