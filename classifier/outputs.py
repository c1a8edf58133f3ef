"""Batch output: encode a chunk of scored posts (in a worker) and write it (in the parent).

Every chunk is encoded to a whole number of records, and with .gz to a whole gzip member of its
own (a gzip file may hold many members one after the other; every reader joins them). So the
file can be cut at any chunk boundary and appended to, which is what `--resume` does. Parquet
cannot be appended to: its sink writes a temporary file and renames it when it closes.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
from typing import IO

from . import parquet
from .dataset import is_gzip
from .errors import ClassifierError

CSV_COLUMNS = ["id", "label", "decision", "score_ok", "score_spam", "score_off_topic",
               "highlights", "reasons", "model_version", "truncated"]
#: gzip level for output chunks: 6 (gzip's default) compressed forum JSON 4.5x at a fraction of
#: the cost of scoring it.
GZIP_LEVEL = 6


def json_line(record: dict) -> str:
    """One output contract record as a JSONL line."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def csv_fields(record: dict) -> list:
    """The output contract flattened to CSV_COLUMNS; highlights and reasons as JSON text."""
    return [record["id"], record["label"], record["decision"], record["scores"]["ok"], record["scores"]["spam"],
            record["scores"]["off_topic"], json.dumps(record["highlights"]),
            json.dumps(record["reasons"], ensure_ascii=False), record["model_version"], int(record["truncated"])]


def _text_bytes(text: str, gz: bool) -> bytes:
    # a lone surrogate in an id (from an escaped JSON input) is written escaped, never a crash
    data = text.encode("utf-8", "backslashreplace")
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if gz and data else data


def encode(records: list[dict], fmt: str, *, gz: bool = False):
    """Bytes of the records in `fmt` ('jsonl', 'csv'), or an Arrow table for 'parquet'."""
    if fmt == "parquet":
        return parquet.table_of(records)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for record in records:
            writer.writerow(csv_fields(record))
        return _text_bytes(buffer.getvalue(), gz)
    return _text_bytes("".join(json_line(r) for r in records), gz)


def csv_header(*, gz: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_COLUMNS)
    return _text_bytes(buffer.getvalue(), gz)


class ByteSink:
    """JSONL or CSV chunks to a file or stdout ('-').

    `resume_at` (a byte offset at a chunk boundary) truncates an existing file there and
    appends; otherwise the file is created (a CSV header first).
    """

    durable_per_chunk = True  # each flushed chunk leaves a valid file: checkpoint after every one

    def __init__(self, path: str, fmt: str, *, resume_at: int | None = None):
        self.path = path
        if path == "-":
            self.stream: IO[bytes] = sys.stdout.buffer
            self.position = 0
        elif resume_at is not None:
            self.stream = open(path, "r+b")
            self.stream.truncate(resume_at)
            self.stream.seek(resume_at)
            self.position = resume_at
        else:
            self.stream = open(path, "wb")
            self.position = 0
        if resume_at is None and fmt == "csv":
            self.write(csv_header(gz=is_gzip(path)))

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.position += len(data)

    def commit(self) -> int:
        """Flush what was written; return the byte offset a resume may cut the file at."""
        if not self.stream.closed:
            self.stream.flush()
        return self.position

    def close(self) -> None:
        if self.path == "-":
            self.stream.flush()
        else:
            self.stream.close()


class ParquetSink:
    """Chunks as row groups of a Parquet file, written under a temporary name until closed.

    Resuming copies the row groups of the existing file (one at a time: memory stays flat) into
    the new one, because a closed Parquet file cannot be appended to.
    """

    durable_per_chunk = False  # only a closed file is valid: checkpoint when it is closed

    def __init__(self, path: str, *, resume_rows: int | None = None):
        if path == "-":
            raise ClassifierError("Parquet output needs a file name (it is finished at its end): not stdout")
        _, pq = parquet.require_pyarrow()
        self.path, self.partial = path, path + ".partial"
        self.rows = 0
        self.writer = pq.ParquetWriter(self.partial, parquet.output_schema())
        if resume_rows is not None:
            self._copy_existing(pq, resume_rows)

    def _copy_existing(self, pq, expected: int) -> None:
        try:
            old = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for a file without its footer
            self.writer.close()
            os.unlink(self.partial)
            raise ClassifierError(f"{self.path}: not a readable Parquet file ({exc}); the interrupted run did "
                                  "not get to close it, so start again without --resume") from None
        if old.metadata.num_rows != expected:
            self.writer.close()
            os.unlink(self.partial)
            raise ClassifierError(f"{self.path}: holds {old.metadata.num_rows} rows but its checkpoint says "
                                  f"{expected}; start again without --resume")
        for i in range(old.metadata.num_row_groups):
            self.write(old.read_row_group(i, columns=None).cast(parquet.output_schema()))

    def write(self, table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def commit(self) -> int:
        return self.rows

    def close(self) -> None:
        self.writer.close()
        os.replace(self.partial, self.path)


class PartWriter:
    """A whole output file written chunk by chunk to an open binary file (Dask part files)."""

    def __init__(self, stream: IO[bytes], fmt: str):
        self.stream, self.fmt = stream, fmt
        self.parquet_writer = None
        if fmt == "parquet":
            _, pq = parquet.require_pyarrow()
            self.parquet_writer = pq.ParquetWriter(stream, parquet.output_schema())
        elif fmt == "csv":
            stream.write(csv_header())

    def write(self, data) -> None:
        if self.parquet_writer is not None:
            self.parquet_writer.write_table(data)
        else:
            self.stream.write(data)

    def close(self) -> None:
        if self.parquet_writer is not None:
            self.parquet_writer.close()


def open_sink(path: str, fmt: str, *, resume_at: int | None = None):
    """The sink for an output path and format; `resume_at` continues an earlier run (bytes, or
    rows for Parquet)."""
    if fmt == "parquet":
        return ParquetSink(path, resume_rows=resume_at)
    return ByteSink(path, fmt, resume_at=resume_at)
