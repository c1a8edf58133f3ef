"""Read labelled corpora and unlabelled post files, line by line, with errors that name the line.

A labelled record is a post (`id`, `title`, `body`, `category`) plus `label` and, for spam and
off-topic, a `kind`. Spam records may carry `promo`: the exact promotional substrings, which
training uses as sentence-level examples and evaluation uses to check highlights. `group` ties
variants of one source text together so a split never separates them (default: the id).
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import ColumnMappingError, CorpusError, InvalidPost
from .types import LABELS, Post

def bundled_corpus_dir() -> Path:
    """The bundled training_data/: beside the package in a checkout, else where pip installed it."""
    checkout = Path(__file__).resolve().parent.parent / "training_data"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "postsieve" / "training_data"


@dataclass(frozen=True)
class Example:
    """A post with its label: the unit of training and evaluation."""

    post: Post
    label: str
    kind: str = ""
    promo: tuple[str, ...] = ()
    group: str = ""
    weight: float = 1.0
    source: str = ""  # "corpus", "augmented", "feedback", ...

    @property
    def group_key(self) -> str:
        return self.group or str(self.post.id)


@dataclass
class Corpus:
    """Examples read from files, with the SHA-256 of the bytes read (the manifest's data hash)."""

    examples: list[Example]
    sha256: str
    files: list[str] = field(default_factory=list)

    def label_counts(self) -> dict[str, int]:
        counts = Counter(e.label for e in self.examples)
        return {label: counts.get(label, 0) for label in LABELS}

    def repeated_texts(self) -> list[list[str]]:
        """Ids of posts that share a title and body (case and spacing aside), one list per text.

        Copies can land in different folds of the out-of-fold evaluation, where one is scored
        by a model trained on the other: the held-out numbers then flatter the model.
        """
        ids: dict[tuple[str, str], list[str]] = {}
        for e in self.examples:
            text = (" ".join(e.post.title.casefold().split()), " ".join(e.post.body.casefold().split()))
            ids.setdefault(text, []).append(str(e.post.id))
        return [group for group in ids.values() if len(group) > 1]

    def kind_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter] = {label: Counter() for label in LABELS}
        for e in self.examples:
            out[e.label][e.kind or "-"] += 1
        return {label: dict(sorted(c.items())) for label, c in out.items()}


def example_from_record(record: dict) -> Example:
    """Validate one labelled record and build an Example (raises InvalidPost)."""
    post = Post.from_dict(record)
    label = record.get("label")
    if label not in LABELS:
        raise InvalidPost(f"label must be one of {', '.join(LABELS)}, got {label!r}")
    promo = record.get("promo") or ()
    if isinstance(promo, str):
        promo = (promo,)
    if not isinstance(promo, (list, tuple)) or not all(isinstance(p, str) for p in promo):
        raise InvalidPost("promo must be a list of strings")
    for p in promo:  # a promo sentence is lent to other posts by augmentation: one not in its post is a typo
        if p not in post.title and p not in post.body:
            raise InvalidPost(f"promo {p[:60]!r} is not in the post's title or body")
    return Example(post=post, label=label, kind=str(record.get("kind") or ""), promo=tuple(promo),
                   group=str(record.get("group") or ""), source="corpus")


def corpus_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into their *.jsonl files (sorted, so the data hash is stable)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.jsonl")))
        elif p.exists():
            out.append(p)
        else:
            raise CorpusError("no such file or directory", path=p)
    if not out:
        raise CorpusError("no *.jsonl corpus files found", path=", ".join(map(str, paths)))
    return out


def load_corpus(paths: Iterable[str | Path]) -> Corpus:
    """Read labelled JSONL files; any bad line stops with a CorpusError naming file and line."""
    files = corpus_files(paths)
    digest = hashlib.sha256()
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for path in files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"not UTF-8 text (byte {exc.start})", path=path) from None
        # split on "\n" only: U+2028 and friends are legal inside JSON strings
        for lineno, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                example = example_from_record(_parse_json(line))
            except ValueError as exc:
                raise CorpusError(str(exc), path=path, line=lineno) from None
            if example.post.id in seen:
                raise CorpusError(f"duplicate id {example.post.id!r} (first in {seen[example.post.id]})",
                                  path=path, line=lineno)
            seen[example.post.id] = f"{path.name}"
            examples.append(example)
    if not examples:
        raise CorpusError("no labelled posts found", path=", ".join(map(str, files)))
    return Corpus(examples=examples, sha256=digest.hexdigest(), files=[str(f) for f in files])


def _parse_json(line: str):
    """json.loads with every failure (syntax, nesting bombs, huge integers) as one ValueError."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"unreadable JSON ({type(exc).__name__}: {str(exc)[:80]})") from None


# -- unlabelled post files for scoring -----------------------------------------------------

@dataclass(frozen=True)
class FieldMap:
    """Which input columns hold the post's fields (exports name them differently)."""

    id: str = "id"
    title: str = "title"
    body: str = "body"
    category: str = "category"


@dataclass(frozen=True)
class BadRow:
    """A line that could not be read as a post: kept so it is counted, never silently dropped."""

    line: int
    error: str


#: Input and output formats `postsieve score` reads and writes; Parquet needs the `parquet` extra.
FORMATS = ("jsonl", "csv", "parquet")


def is_gzip(path: str) -> bool:
    """Whether a file is gzipped, by its name (exports from other systems say .GZ too)."""
    return path.lower().endswith(".gz")


def file_format(path: str, explicit: str | None = None) -> str:
    """'jsonl', 'csv' or 'parquet', from an explicit choice or the file name (.gz ignored);
    '-' means JSONL."""
    if explicit:
        if explicit not in FORMATS:
            raise CorpusError(f"format must be one of {', '.join(FORMATS)}, got {explicit!r}", path=path)
        return explicit
    name = path.lower()  # exports from other systems say .CSV, .JSONL.GZ
    name = name[:-3] if is_gzip(name) else name
    if name == "-" or name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        if is_gzip(path):
            raise CorpusError("Parquet compresses inside the file: drop the .gz", path=path)
        return "parquet"
    raise CorpusError("cannot tell the format from the name; use .jsonl, .csv or .parquet, "
                      "or --input-format/--output-format", path=path)


def check_columns(found: Iterable[str], fields: FieldMap, *, path: str, what: str = "columns found",
                  line: int = 1) -> None:
    """Raise ColumnMappingError, naming the columns found, when a mapped column is missing.

    id, title and body are required; category only when it was mapped to another name (a
    mapping the user asked for that matches nothing is a mistake, not an absent category).
    """
    found = list(found)
    required = [fields.id, fields.title, fields.body]
    if fields.category != FieldMap().category:
        required.append(fields.category)
    missing = [c for c in required if c not in found]
    if missing:
        raise ColumnMappingError(f"missing column(s) {', '.join(missing)}; {what}: {', '.join(found) or '(none)'}",
                                 path=path, line=line)


def read_posts(stream: IO[str], fmt: str, *, fields: FieldMap = FieldMap(), path: str = "-") -> Iterator[Post | BadRow]:
    """Yield a Post per input row, or a BadRow for a line that cannot be one.

    A missing column in a CSV header is an error for the whole file (raised at once), because
    every row would fail the same way.
    """
    if fmt == "csv":
        yield from _read_csv(stream, fields, path)
    else:
        yield from _read_jsonl(stream, fields, path)


def _mapped(record: dict, fields: FieldMap) -> dict:
    if fields == FieldMap():
        return record
    out = dict(record)
    for target in ("id", "title", "body", "category"):
        source = getattr(fields, target)
        if source in record:
            out[target] = record[source]
    return out


def _read_jsonl(stream, fields: FieldMap, path: str) -> Iterator[Post | BadRow]:
    checked = False
    for lineno, line in enumerate(stream, 1):
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        row = jsonl_row(lineno, line, fields)
        if not checked:
            checked = check_first_json_record(line, fields, path=path, lineno=lineno)
        yield row


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def undecodable(text: str) -> str | None:
    """What is wrong with text read with surrogateescape that held bytes which are not UTF-8, or
    None. Valid UTF-8 never decodes to these code points, and a JSON "\\udc80" escape is still
    six characters here, so only an undecodable byte is found."""
    found = _ESCAPED_BYTE.search(text)
    if found is None:
        return None
    return f"not UTF-8 text (byte 0x{ord(found.group()) - 0xDC00:02x} at character {found.start() + 1})"


def jsonl_row(lineno: int, line: str, fields: FieldMap) -> Post | BadRow:
    """One JSONL line as a Post, or a BadRow naming what is wrong with it."""
    problem = undecodable(line)
    if problem is not None:
        return BadRow(lineno, problem)
    try:
        record = _parse_json(line)
    except ValueError as exc:
        return BadRow(lineno, str(exc))
    try:
        return Post.from_dict(_mapped(record, fields) if isinstance(record, dict) else record)
    except InvalidPost as exc:
        return BadRow(lineno, str(exc))


def check_first_json_record(line: str, fields: FieldMap, *, path: str, lineno: int = 1) -> bool:
    """Check the field mapping against the first JSON object of a file (raises ColumnMappingError).

    Returns whether the line was an object (and so the check was made); lines that are not
    objects are left to be reported as bad rows.
    """
    try:
        record = _parse_json(line)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    check_columns(record, fields, path=path, what="fields found in the first record", line=lineno)
    return True


# Forum exports hold long posts; the csv module's default limit is 128 KiB a field.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


def _read_csv(stream, fields: FieldMap, path: str) -> Iterator[Post | BadRow]:
    for lineno, record in csv_records(stream, fields, path):
        yield record if isinstance(record, BadRow) else csv_row(lineno, record)


def csv_records(stream, fields: FieldMap, path: str) -> Iterator[tuple[int, dict | BadRow]]:
    """(line, record with the post's field names) per CSV row, or (line, BadRow).

    Split from building the Post so the batch scorer can parse CSV in one process and build
    and score posts in others. Checks the header against the field mapping first.
    """
    for started, row in csv_rows(stream, path, lambda header: check_columns(header, fields, path=path)):
        if isinstance(row, BadRow):
            yield started, row
        else:
            yield started, {"id": row.get(fields.id), "title": row.get(fields.title) or "",
                            "body": row.get(fields.body), "category": row.get(fields.category) or None}


def csv_row(lineno: int, record: dict) -> Post | BadRow:
    """A record from `csv_records` as a Post, or a BadRow."""
    try:
        return Post.from_dict(record)
    except InvalidPost as exc:
        return BadRow(lineno, str(exc))


def csv_rows(stream, path: str, check_header) -> Iterator[tuple[int, dict | BadRow]]:
    """(line, row as a dict by column) per CSV row, or (line, BadRow); `check_header(columns)`
    raises CorpusError for a header the caller cannot use."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    # csv.reader, not DictReader: DictReader skips blank lines inside next(), so the line a row
    # starts on could not be known, and rows after a blank line were reported a line early.
    reader = csv.reader(_strip_bom(stream), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise CorpusError(f"unreadable CSV header ({exc})", path=path, line=1) from None
    problem = undecodable(",".join(header))
    if problem is not None:
        raise CorpusError(f"the header is {problem}", path=path, line=1)
    check_header(header)
    while True:
        started = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # strict mode: bad quoting is a bad row (reported, skippable), not rows silently
            # swallowed into one field; the reader resumes on the next physical line
            yield started, BadRow(started, f"malformed CSV ({exc})")
            continue
        if not values:  # a blank line
            continue
        if len(values) > len(header):
            yield started, BadRow(started, "more fields than the header has")
            continue
        problems = [f"{problem} in column {name}" for name, value in zip(header, values)
                    for problem in [undecodable(value)] if problem is not None]
        if problems:
            yield started, BadRow(started, problems[0])
            continue
        yield started, dict(zip(header, values))


def _strip_bom(stream):
    first = True
    for line in stream:
        if first:
            line = line.lstrip("\ufeff")
            first = False
        yield line
