import io
import json

import pytest

from classifier.dataset import BadRow, FieldMap, file_format, load_corpus, read_posts
from classifier.errors import CorpusError
from classifier.types import Post


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def rec(i, label="ok", **extra):
    return json.dumps({"id": f"p{i}", "title": "t", "body": "b", "category": "Fiji / ImageJ", "label": label, **extra})


def test_load_corpus_counts_and_hash(tmp_path):
    write(tmp_path / "a.jsonl", [rec(1), rec(2, "spam", kind="casino", promo=["b"]), "", rec(3, "off_topic")])
    corpus = load_corpus([tmp_path])
    assert corpus.label_counts() == {"ok": 1, "spam": 1, "off_topic": 1}
    assert corpus.examples[1].promo == ("b",)
    again = load_corpus([tmp_path / "a.jsonl"])
    assert again.sha256 == corpus.sha256
    write(tmp_path / "a.jsonl", [rec(1), rec(2, "spam")])
    assert load_corpus([tmp_path]).sha256 != corpus.sha256


def test_repeated_texts_are_found_whatever_their_case_and_spacing(tmp_path):
    write(tmp_path / "a.jsonl", [
        json.dumps({"id": "a", "title": "", "body": "Which Fiji version?  Help > About.", "label": "ok"}),
        json.dumps({"id": "b", "title": "", "body": "which fiji version? help > about.", "label": "spam"}),
        json.dumps({"id": "c", "title": "Which Fiji version?", "body": "Help > About.", "label": "ok"}),
        json.dumps({"id": "d", "title": "", "body": "Something else entirely.", "label": "ok"}),
    ])
    assert load_corpus([tmp_path]).repeated_texts() == [["a", "b"]]


def test_the_bundled_corpus_holds_no_text_twice():
    """A copy in another fold is scored by a model trained on its twin (one was found, and rewritten)."""
    from classifier.dataset import bundled_corpus_dir

    assert load_corpus([bundled_corpus_dir()]).repeated_texts() == []


@pytest.mark.parametrize("line, match", [
    ("{not json", r"a.jsonl:2: malformed JSON"),
    (json.dumps({"id": "x", "title": "t", "body": "b", "label": "ham"}), r"a.jsonl:2: label must be one of"),
    (json.dumps({"id": "x", "title": "t", "label": "ok"}), r"a.jsonl:2: body is required"),
    (json.dumps({"id": "x", "title": 3, "body": "b", "label": "ok"}), r"a.jsonl:2: title must be a string"),
    (rec(1), r"a.jsonl:2: duplicate id 'p1'"),
    (rec(9, "spam", promo=["visit our shop"]), r"a.jsonl:2: promo 'visit our shop' is not in the post's title or body"),
])
def test_load_corpus_names_file_and_line(tmp_path, line, match):
    write(tmp_path / "a.jsonl", [rec(1), line])
    with pytest.raises(CorpusError, match=match):
        load_corpus([tmp_path])


def test_load_corpus_missing_path(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus([tmp_path / "nope.jsonl"])


def test_read_jsonl_yields_bad_rows_with_line_numbers():
    stream = io.StringIO('{"id": 1, "title": "", "body": "x"}\nnot json\n\n{"id": 2, "title": "", "body": 5}\n')
    rows = list(read_posts(stream, "jsonl"))
    assert isinstance(rows[0], Post) and rows[0].id == 1
    assert rows[1] == BadRow(2, rows[1].error) and "malformed JSON" in rows[1].error
    assert isinstance(rows[2], BadRow) and rows[2].line == 4 and "body must be a string" in rows[2].error


def test_read_csv_with_field_map():
    stream = io.StringIO("post_id,subject,message,forum\n7,Hi,hello there,Fiji / ImageJ\n")
    fields = FieldMap(id="post_id", title="subject", body="message", category="forum")
    (post,) = read_posts(stream, "csv", fields=fields)
    assert post == Post("7", "Hi", "hello there", "Fiji / ImageJ")


def test_read_csv_missing_column_fails_at_once_naming_columns():
    stream = io.StringIO("id,text\n1,hello\n")
    with pytest.raises(CorpusError, match="missing column.*body.*columns found: id, text"):
        list(read_posts(stream, "csv", path="x.csv"))


@pytest.mark.parametrize("name, expected", [("a.jsonl", "jsonl"), ("a.csv.gz", "csv"), ("-", "jsonl"), ("a.ndjson", "jsonl")])
def test_file_format(name, expected):
    assert file_format(name) == expected


def test_file_format_unknown():
    with pytest.raises(CorpusError, match="cannot tell the format"):
        file_format("posts.txt")


def test_csv_bad_quoting_is_a_bad_row_with_its_line():
    stream = io.StringIO('id,title,body\n1,t,fine\n2,t,"quoted" then text\n3,t,also fine\n')
    rows = list(read_posts(stream, "csv", path="x.csv"))
    assert [r.id for r in rows if isinstance(r, Post)] == ["1", "3"]
    (bad,) = [r for r in rows if isinstance(r, BadRow)]
    assert bad.line == 3 and "malformed CSV" in bad.error


def test_csv_unterminated_quote_does_not_swallow_rows_silently():
    stream = io.StringIO('id,title,body\n1,t,"open quote\n2,t,second\n')
    rows = list(read_posts(stream, "csv", path="x.csv"))
    assert any(isinstance(r, BadRow) and r.line == 2 for r in rows)


def test_csv_long_field_and_bom():
    long = "x" * 200_000
    stream = io.StringIO("\ufeffid,title,body\n1,t," + long + "\n")
    (post,) = read_posts(stream, "csv")
    assert post.id == "1" and len(post.body) == 200_000


@pytest.mark.parametrize("line, message", [
    ("[" * 100_000 + "]" * 100_000, "unreadable JSON"),
    ('{"id": ' + "9" * 5000 + ', "title": "", "body": ""}', "unreadable JSON"),
])
def test_jsonl_hostile_lines_are_bad_rows(line, message):
    (row,) = read_posts(io.StringIO(line + "\n"), "jsonl")
    assert isinstance(row, BadRow) and message in row.error


def test_corpus_line_separators_inside_strings_are_fine(tmp_path):
    write(tmp_path / "a.jsonl", [json.dumps({"id": "u", "title": "t", "body": "a\u2028b\u2029c", "label": "ok"}, ensure_ascii=False)])
    assert load_corpus([tmp_path]).examples[0].post.body == "a\u2028b\u2029c"


@pytest.mark.parametrize("content, match", [(b"\xff\xfe garbage", "not UTF-8"), (b"\n\n", "no labelled posts")])
def test_corpus_unreadable_or_empty(tmp_path, content, match):
    (tmp_path / "a.jsonl").write_bytes(content)
    with pytest.raises(CorpusError, match=match):
        load_corpus([tmp_path])


def test_promo_must_be_a_list(tmp_path):
    write(tmp_path / "a.jsonl", [rec(1, "spam", promo=5)])
    with pytest.raises(CorpusError, match="promo must be a list"):
        load_corpus([tmp_path])


def test_every_kind_of_the_bundled_corpus_is_a_family_not_a_typo():
    """A kind is free text: a misspelt one silently starts a kind of its own (DATACARD.md counts
    it, training reports recall for it). Every kind here names at least ten posts of one label."""
    from classifier.dataset import bundled_corpus_dir

    counts = load_corpus([bundled_corpus_dir()]).kind_counts()
    labels_of: dict[str, list[str]] = {}
    for label, kinds in counts.items():
        for kind, n in kinds.items():
            assert n >= 10, f"kind {kind!r} ({label}) has only {n} posts: a typo?"
            labels_of.setdefault(kind, []).append(label)
    assert {kind: labels for kind, labels in labels_of.items() if len(labels) > 1} == {}
