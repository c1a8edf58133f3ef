"""Cut an input file into chunks of raw records, and turn a chunk into posts.

The batch scorer splits the work this way so that the process reading the file does almost
nothing per row: JSONL lines are passed on unparsed, CSV rows as parsed fields, Parquet as
record batches. Parsing JSON, building posts and scoring happen in the worker processes.
Every chunk knows how many input records it holds, which is what `--resume` skips.
"""
from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from typing import IO, Iterator

from . import parquet
from .dataset import BadRow, FieldMap, check_first_json_record, csv_records, csv_row, is_gzip, jsonl_row
from .errors import ClassifierError, CorpusError
from .types import Post


class CountingReader(io.RawIOBase):
    """A raw byte stream that counts what has been read from it (for progress on huge files)."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def text_stream(raw: IO[bytes], *, gz: bool) -> tuple[IO[str], CountingReader]:
    """UTF-8 text over a binary stream (gunzipped if `gz`), and the counter of raw bytes read.

    Bytes that are not UTF-8 arrive as lone surrogates (surrogateescape), so the line holding
    them becomes a bad row naming its line (`dataset.undecodable`), skippable like any other;
    strict decoding stopped the whole run with an offset into the decoder's buffer.
    """
    counter = CountingReader(raw)
    binary: IO[bytes] = io.BufferedReader(counter)
    if gz:
        binary = gzip.GzipFile(fileobj=binary)  # type: ignore[assignment]
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline=""), counter


@dataclass
class RawChunk:
    """Input records not yet parsed into posts.

    `rows` is, by format: jsonl, a list of (line number, line); csv, a list of (line number,
    record or BadRow); parquet, a record batch whose first row is number `first_row`.
    """

    fmt: str
    rows: object
    records: int
    end_pos: int  # input position after this chunk: bytes read (rows for Parquet), for progress
    first_row: int = 1


class RecordReader:
    """Iterate over an input (a path, '-' for stdin, or an open binary file) in RawChunks.

    Checks the field mapping against the header, the Parquet schema or the first JSON object
    before yielding anything. `skip` records at the start are passed over (resuming).
    """

    def __init__(self, source: str | IO[bytes], fmt: str, fields: FieldMap = FieldMap(), *,
                 name: str | None = None, chunk_size: int = 1000, skip: int = 0):
        if chunk_size < 1:
            raise ClassifierError(f"chunk size must be at least 1, got {chunk_size}")
        self.fmt, self.fields, self.chunk_size, self.skip = fmt, fields, chunk_size, skip
        self.name = name or (source if isinstance(source, str) else getattr(source, "name", "-"))
        self.total = 0  # size of the input in end_pos units, 0 if unknown (stdin)
        self._owned: IO[bytes] | None = None
        if fmt == "parquet":
            if source == "-":
                raise ClassifierError("Parquet input needs a file (it is read from its end): not stdin")
            self._source = source
            self.total = parquet.num_rows(source)
            return
        if source == "-":
            raw: IO[bytes] = os.fdopen(os.dup(0), "rb")
        elif isinstance(source, str):
            raw = open(source, "rb")
            self.total = os.fstat(raw.fileno()).st_size
        else:
            raw = source
            try:
                self.total = os.fstat(raw.fileno()).st_size
            except (AttributeError, OSError, io.UnsupportedOperation):
                self.total = getattr(raw, "size", 0) or 0
        self._owned = raw
        self._text, self._counter = text_stream(raw, gz=is_gzip(self.name))

    def close(self) -> None:
        if self._owned is not None:
            self._text.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __iter__(self) -> Iterator[RawChunk]:
        if self.fmt == "parquet":
            return self._parquet()
        return self._jsonl() if self.fmt == "jsonl" else self._csv()

    def _jsonl(self) -> Iterator[RawChunk]:
        rows: list[tuple[int, str]] = []
        seen, checked = 0, False
        for lineno, line in enumerate(self._text, 1):
            if lineno == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            if not checked:
                checked = check_first_json_record(line, self.fields, path=self.name, lineno=lineno)
            seen += 1
            if seen <= self.skip:
                continue
            rows.append((lineno, line))
            if len(rows) >= self.chunk_size:
                yield RawChunk("jsonl", rows, len(rows), self._counter.count)
                rows = []
        if rows:
            yield RawChunk("jsonl", rows, len(rows), self._counter.count)

    def _csv(self) -> Iterator[RawChunk]:
        rows: list[tuple[int, dict | BadRow]] = []
        seen = 0
        for lineno, record in csv_records(self._text, self.fields, self.name):
            seen += 1
            if seen <= self.skip:
                continue
            rows.append((lineno, record))
            if len(rows) >= self.chunk_size:
                yield RawChunk("csv", rows, len(rows), self._counter.count)
                rows = []
        if rows:
            yield RawChunk("csv", rows, len(rows), self._counter.count)

    def _parquet(self) -> Iterator[RawChunk]:
        for first, batch in parquet.batches(self._source, self.fields, path=self.name, batch_size=self.chunk_size,
                                            skip=self.skip):
            yield RawChunk("parquet", batch, batch.num_rows, first + batch.num_rows - 1, first_row=first)


def posts_of(chunk: RawChunk, fields: FieldMap) -> list[Post | BadRow]:
    """The posts of a chunk, in order, with a BadRow for each record that is not a valid post."""
    if chunk.fmt == "jsonl":
        return [jsonl_row(lineno, line, fields) for lineno, line in chunk.rows]
    if chunk.fmt == "csv":
        return [record if isinstance(record, BadRow) else csv_row(lineno, record) for lineno, record in chunk.rows]
    return parquet.posts_of_batch(chunk.first_row, chunk.rows, fields)


def where(name: str, fmt: str, line: int) -> str:
    """'file:line' for text formats, 'file: row N' for Parquet (which has no lines)."""
    return f"{name}: row {line}" if fmt == "parquet" else f"{name}:{line}"


def bad_row_error(name: str, fmt: str, row) -> CorpusError:
    """The error that stops a run at a bad row when bad rows are not skipped."""
    return CorpusError(f"{where(name, fmt, row.line)}: {row.error} (use --skip-bad to skip such rows)")
