"""Moderator labels in bulk: import a forum's export into the feedback store, export it back.

An import file is JSONL or CSV (gzip too) with `id`, `title`, `body`, `label` and optionally
`category`, `moderator`, `note`, `time` (ISO 8601; when the moderator decided) and `source`.
Every row is checked before anything is written; a bad row is reported with its line and
skipped, never half-stored. `dry_run` reports what would be added, changed and left unchanged
without writing.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Iterable, Iterator

from .dataset import BadRow, _parse_json, csv_rows
from .errors import CorpusError, InvalidFeedback
from .feedback import FeedbackStore, Label, content_sha256, label_from_dict

EXPORT_COLUMNS = ["source", "id", "title", "body", "category", "label", "revision", "moderator", "note",
                  "channel", "time"]


@dataclass
class ImportSummary:
    """What an import did (or, in a dry run, would do)."""

    dry_run: bool = False
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: list[BadRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "added": self.added, "changed": self.changed, "unchanged": self.unchanged,
                "rejected": len(self.rejected),
                "rejected_rows": [{"line": b.line, "error": b.error} for b in self.rejected[:100]]}


def read_label_records(stream: IO[str], fmt: str, *, path: str = "-") -> Iterator[tuple[int, dict] | BadRow]:
    """(line, record) per row of a JSONL or CSV export, or a BadRow for an unreadable line."""
    if fmt == "csv":
        yield from _csv_records(stream, path)
        return
    for lineno, line in enumerate(stream, 1):
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        try:
            record = _parse_json(line)
        except ValueError as exc:
            yield BadRow(lineno, str(exc))
            continue
        yield (lineno, record) if isinstance(record, dict) else BadRow(lineno, "a row must be a JSON object")


def _csv_records(stream, path: str):
    def check_header(header):
        missing = [c for c in ("id", "body", "label") if c not in header]
        if missing:
            raise CorpusError(f"missing column(s) {', '.join(missing)}; columns found: "
                              f"{', '.join(header) or '(none)'}", path=path, line=1)

    for started, row in csv_rows(stream, path, check_header):
        if isinstance(row, BadRow):
            yield row
        else:
            yield started, {k: v for k, v in row.items() if v not in (None, "") or k in ("title", "body")}


def parse_time(value) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidFeedback(f"time must be an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFeedback(f"time must be ISO 8601 (2026-03-01T12:30:00Z), got {value[:40]!r}") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def label_from_record(record: dict, *, source: str) -> Label:
    """A Label from an export row (the feedback API's fields plus `time`)."""
    label = label_from_dict(record, source=source, channel="import")
    at = parse_time(record.get("time"))
    if at is None:
        return label
    return Label(post=label.post, label=label.label, source=label.source, moderator=label.moderator,
                 note=label.note, channel="import", at=at)


def import_labels(store: FeedbackStore, rows: Iterable[tuple[int, dict] | BadRow], *, source: str,
                  dry_run: bool = False) -> ImportSummary:
    """Add every good row to the store (idempotently); count added, changed, unchanged and rejected."""
    summary = ImportSummary(dry_run=dry_run)
    seen: dict[tuple[str, str], tuple[str, str]] = {}  # the dry run's view of each post's newest label
    dry_revisions: set = set()  # and of the revisions this file has added
    for row in rows:
        if isinstance(row, BadRow):
            summary.rejected.append(row)
            continue
        lineno, record = row
        try:
            label = label_from_record(record, source=source)
        except InvalidFeedback as exc:
            summary.rejected.append(BadRow(lineno, str(exc)))
            continue
        if dry_run:
            key = (label.source, str(label.post.id))
            newest = seen.get(key) or store.newest(*key)
            state = (label.label, content_sha256(label.post))
            revision = (key, state, label.at)  # a timed row repeats a revision it matches (as `add` decides)
            if newest == state or (label.at is not None and (revision in dry_revisions or store.has_revision(label))):
                status = "unchanged"
            else:
                status = "created" if newest is None else "changed"
                seen[key] = state
                dry_revisions.add(revision)
        else:
            status = store.add(label).status
        if status == "created":
            summary.added += 1
        elif status == "changed":
            summary.changed += 1
        else:
            summary.unchanged += 1
    return summary


def export_labels(store: FeedbackStore, stream: IO[str], fmt: str, *, history: bool = False) -> int:
    """Write the newest label of every post (or, with `history`, every revision); return the rows written."""
    rows = store.all() if history else store.latest()
    writer = csv.writer(stream) if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_COLUMNS)
    count = 0
    for item in rows:
        d = item.to_dict()
        if writer:
            writer.writerow([d[c] if c != "id" else d["id"] for c in EXPORT_COLUMNS])
        else:
            stream.write(json.dumps(d, ensure_ascii=False) + "\n")
        count += 1
    return count
