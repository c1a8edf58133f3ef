"""Batch scoring: stream posts through a model into JSONL or CSV, in input order, in chunks.

Memory stays flat: rows are read lazily, scored a chunk at a time and written straight out.
"""
from __future__ import annotations

import csv
import gzip
import io
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Callable, Iterable, Iterator

from .dataset import BadRow, FieldMap, is_gzip, read_posts
from .errors import ClassifierError
from .model import Model
from .outputs import CSV_COLUMNS, csv_fields, json_line
from .records import CountingReader
from .types import DECISIONS, LABELS, Post, Scored

@dataclass
class ScoreSummary:
    """Counts kept while scoring, printed at the end."""

    scored: int = 0
    bad: int = 0
    decisions: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    def add(self, scored: Scored) -> None:
        self.scored += 1
        self.decisions[scored.decision] += 1
        self.labels[scored.label] += 1

    def rate(self) -> float:
        return self.scored / max(time.perf_counter() - self.started, 1e-9)

    def format(self) -> str:
        decisions = ", ".join(f"{d} {self.decisions.get(d, 0)}" for d in DECISIONS)
        labels = ", ".join(f"{label} {self.labels.get(label, 0)}" for label in LABELS)
        bad = f"; {self.bad} bad row(s) skipped" if self.bad else ""
        return (f"scored {self.scored} posts in {time.perf_counter() - self.started:.1f} s "
                f"({self.rate():.0f} posts/s): {decisions}; labels: {labels}{bad}")


def open_input(path: str) -> tuple[IO[str], CountingReader | None]:
    """Open an input file as text ('-': stdin) with a byte counter on the compressed stream."""
    if path == "-":
        return sys.stdin, None
    counter = CountingReader(open(path, "rb"))
    raw: IO[bytes] = io.BufferedReader(counter)
    if is_gzip(path):
        raw = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    return io.TextIOWrapper(raw, encoding="utf-8", newline=""), counter


def open_output(path: str) -> IO[str]:
    """Open an output file as text ('-': stdout), gzip by extension."""
    if path == "-":
        # a lone surrogate in an id must not crash the run: write it escaped
        sys.stdout.reconfigure(errors="backslashreplace")
        return sys.stdout
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="", errors="backslashreplace")
    return open(path, "w", encoding="utf-8", newline="", errors="backslashreplace")


class JsonlWriter:
    """One output contract object per line."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, scored: Scored) -> None:
        self.stream.write(json_line(scored.to_dict()))


class CsvWriter:
    """The output contract flattened to columns; highlights and reasons as JSON text."""

    def __init__(self, stream: IO[str]):
        self.writer = csv.writer(stream)
        self.writer.writerow(CSV_COLUMNS)

    def write(self, scored: Scored) -> None:
        self.writer.writerow(csv_fields(scored.to_dict()))


def writer_for(stream: IO[str], fmt: str):
    return CsvWriter(stream) if fmt == "csv" else JsonlWriter(stream)


def chunks(rows: Iterable[Post | BadRow], *, path: str, skip_bad: bool, summary: ScoreSummary,
           size: int = 1000, on_bad: Callable[[BadRow], None] | None = None) -> Iterator[list[Post]]:
    """Group posts into chunks; a bad row raises unless `skip_bad` (then it is counted and reported)."""
    chunk: list[Post] = []
    for row in rows:
        if isinstance(row, BadRow):
            if not skip_bad:
                raise ClassifierError(f"{path}:{row.line}: {row.error} (use --skip-bad to skip such rows)")
            summary.bad += 1
            if on_bad:
                on_bad(row)
            continue
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_stream(model: Model, source: IO[str], in_fmt: str, writer, *, path: str = "-",
                 fields: FieldMap = FieldMap(), skip_bad: bool = False, summary: ScoreSummary | None = None,
                 on_chunk: Callable[[ScoreSummary], None] | None = None,
                 on_bad: Callable[[BadRow], None] | None = None) -> ScoreSummary:
    """Score every post of `source` into `writer`, chunk by chunk, in input order."""
    summary = summary or ScoreSummary()
    rows = read_posts(source, in_fmt, fields=fields, path=path)
    for chunk in chunks(rows, path=path, skip_bad=skip_bad, summary=summary, on_bad=on_bad):
        for scored in model.score(chunk):
            writer.write(scored)
            summary.add(scored)
        if on_chunk:
            on_chunk(summary)
    return summary
