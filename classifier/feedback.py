"""The feedback store: moderators' labels, kept durably with their full history.

Each label is a row; rows for one (source, post) are numbered 1, 2, ... and the newest is the one
retraining uses. Sending the same label for the same post text again changes nothing, so a forum
can retry a request safely. `source` names the forum (by default the API key's name), so two forums
that both have a post "42" never overwrite each other.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

import sqlalchemy as sa

from .database import Database, storable_text
from .errors import InvalidFeedback, StoreError
from .schema import feedback
from .types import LABELS, Post

CHANNELS = ("api", "akismet", "import")
MAX_SHORT_TEXT = 200
MAX_CATEGORY = 500
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def identifier_problem(name: str, value: str) -> str | None:
    """Ids and sources are keys: refuse what a database would alter (NUL, controls, lone surrogates)
    rather than store something other than what the forum will send next time."""
    if not value or len(value) > MAX_SHORT_TEXT:
        return f"{name} must be 1 to {MAX_SHORT_TEXT} characters"
    if _UNSTORABLE.search(value):
        return f"{name} must not hold control characters or lone surrogates"
    return None


def _length_problem(name: str, value: str | None, limit: int) -> str | None:
    return f"{name} must be at most {limit} characters" if value is not None and len(value) > limit else None


@dataclass(frozen=True)
class Label:
    """One moderator decision about one post."""

    post: Post
    label: str
    source: str
    moderator: str | None = None
    note: str | None = None
    channel: str = "api"
    at: datetime | None = None  # when the moderator decided; default: when it was stored

    def __post_init__(self):
        if self.label not in LABELS:
            raise InvalidFeedback(f"label must be one of {', '.join(LABELS)}, got {self.label!r}")
        if self.channel not in CHANNELS:
            raise InvalidFeedback(f"channel must be one of {', '.join(CHANNELS)}, got {self.channel!r}")
        problems = [p for p in (identifier_problem("source", self.source),
                                identifier_problem("id", str(self.post.id)),
                                _length_problem("moderator", self.moderator, MAX_SHORT_TEXT),
                                _length_problem("category", self.post.category, MAX_CATEGORY)) if p]
        if problems:
            raise InvalidFeedback("; ".join(problems))
        if not (self.post.title or "").strip() and not (self.post.body or "").strip():
            raise InvalidFeedback("title or body is needed to learn from a label")


@dataclass(frozen=True)
class StoredLabel:
    """A row of the store, as read back."""

    row_id: int
    source: str
    post: Post
    label: str
    seq: int
    moderator: str | None
    note: str | None
    channel: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "id": self.post.id, "title": self.post.title, "body": self.post.body,
                "category": self.post.category, "author": dict(self.post.author) if self.post.author else None,
                "label": self.label, "revision": self.seq, "moderator": self.moderator, "note": self.note,
                "channel": self.channel, "time": self.created_at.isoformat()}


@dataclass(frozen=True)
class AddResult:
    """What `add` did: "created" (first label), "changed" (a new revision) or "unchanged"."""

    status: str
    revision: int
    row_id: int


def content_sha256(post: Post) -> str:
    return hashlib.sha256(json.dumps([post.title, post.body, post.category or ""]).encode("utf-8",
                                                                                          "surrogatepass")).hexdigest()


def _utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back naive."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _row_to_label(row) -> StoredLabel:
    author = json.loads(row.author) if row.author else None
    post = Post(id=row.post_id, title=row.title, body=row.body, category=row.category, author=author)
    return StoredLabel(row.id, row.source, post, row.label, row.seq, row.moderator, row.note, row.channel,
                       _utc(row.created_at))


class FeedbackStore:
    """Moderators' labels in a SQLite or PostgreSQL database (see classifier.database)."""

    def __init__(self, database: Database):
        self.database = database

    def add(self, item: Label) -> AddResult:
        """Store a label unless the newest label for this post is the same; return what happened."""
        digest = content_sha256(item.post)
        post_id = str(item.post.id)
        for _attempt in range(5):
            try:
                return self._add_once(item, post_id, digest)
            except sa.exc.IntegrityError:
                continue  # a concurrent copy took this revision number; look again
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"cannot store the label: {type(exc).__name__}") from None
        raise StoreError("cannot store the label: too many concurrent writers for one post")

    def _add_once(self, item: Label, post_id: str, digest: str) -> AddResult:
        with self.database.engine.begin() as conn:
            newest = conn.execute(
                sa.select(feedback.c.id, feedback.c.seq, feedback.c.label, feedback.c.content_sha256)
                .where(feedback.c.source == item.source, feedback.c.post_id == post_id)
                .order_by(feedback.c.seq.desc()).limit(1)).first()
            if newest is not None and newest.label == item.label and newest.content_sha256 == digest:
                return AddResult("unchanged", newest.seq, newest.id)
            twin = self._twin(conn, item, post_id, digest)
            if twin is not None:
                return AddResult("unchanged", twin.seq, twin.id)
            seq = 1 if newest is None else newest.seq + 1
            author = json.dumps(dict(item.post.author), ensure_ascii=True) if item.post.author else None
            row_id = conn.execute(feedback.insert().values(
                source=item.source, post_id=post_id, seq=seq, label=item.label,
                title=storable_text(item.post.title), body=storable_text(item.post.body),
                category=storable_text(item.post.category), author=author, moderator=storable_text(item.moderator),
                note=storable_text(item.note), channel=item.channel,
                content_sha256=digest, created_at=(item.at or datetime.now(timezone.utc)).astimezone(timezone.utc),
            )).inserted_primary_key[0]
        return AddResult("created" if newest is None else "changed", seq, row_id)

    @staticmethod
    def _twin(conn, item: Label, post_id: str, digest: str):
        """The stored revision `item` repeats, if any: same label and text, decided at the same
        moment. Only a label that carries its time (an import) can have one; without this, a
        `feedback export --history` imported again added every earlier revision once more."""
        if item.at is None:
            return None
        return conn.execute(
            sa.select(feedback.c.id, feedback.c.seq)
            .where(feedback.c.source == item.source, feedback.c.post_id == post_id, feedback.c.label == item.label,
                   feedback.c.content_sha256 == digest,
                   feedback.c.created_at == item.at.astimezone(timezone.utc))
            .limit(1)).first()

    def has_revision(self, item: Label) -> bool:
        """Whether `item` repeats a stored revision (see `_twin`): what `add` would leave unchanged."""
        try:
            with self.database.engine.connect() as conn:
                return self._twin(conn, item, str(item.post.id), content_sha256(item.post)) is not None
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read the feedback store: {type(exc).__name__}") from None

    def newest(self, source: str, post_id: str) -> tuple[str, str] | None:
        """(label, content digest) of a post's newest label, or None if it has none."""
        try:
            with self.database.engine.connect() as conn:
                row = conn.execute(sa.select(feedback.c.label, feedback.c.content_sha256)
                                   .where(feedback.c.source == source, feedback.c.post_id == str(post_id))
                                   .order_by(feedback.c.seq.desc()).limit(1)).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read the feedback store: {type(exc).__name__}") from None
        return None if row is None else (row.label, row.content_sha256)

    def latest(self, source: str | None = None) -> Iterator[StoredLabel]:
        """The newest label of every post (the one training uses), oldest first."""
        newest = (sa.select(feedback.c.source, feedback.c.post_id, sa.func.max(feedback.c.seq).label("seq"))
                  .group_by(feedback.c.source, feedback.c.post_id))
        if source is not None:
            newest = newest.where(feedback.c.source == source)
        newest = newest.subquery()
        query = (sa.select(feedback).join(newest, sa.and_(feedback.c.source == newest.c.source,
                                                            feedback.c.post_id == newest.c.post_id,
                                                            feedback.c.seq == newest.c.seq))
                 .order_by(feedback.c.id))
        yield from self._stream(query)

    def history(self, source: str, post_id: str | int) -> list[StoredLabel]:
        """Every label one post received, oldest first."""
        query = (sa.select(feedback).where(feedback.c.source == source, feedback.c.post_id == str(post_id))
                 .order_by(feedback.c.seq))
        return list(self._stream(query))

    def all(self) -> Iterator[StoredLabel]:
        """Every row, history included, in the order stored."""
        yield from self._stream(sa.select(feedback).order_by(feedback.c.id))

    def counts(self) -> dict[str, int]:
        """Posts per newest label, plus the total number of rows kept."""
        out = {label: 0 for label in LABELS}
        for item in self.latest():
            out[item.label] += 1
        try:
            with self.database.engine.connect() as conn:
                out["history_rows"] = conn.execute(sa.select(sa.func.count()).select_from(feedback)).scalar_one()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read the feedback store: {type(exc).__name__}") from None
        return out

    def _stream(self, query) -> Iterator[StoredLabel]:
        try:
            with self.database.engine.connect() as conn:
                for row in conn.execution_options(yield_per=1000).execute(query):
                    yield _row_to_label(row)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read the feedback store: {type(exc).__name__}") from None


def label_from_dict(record: Mapping[str, Any], *, source: str, channel: str = "api") -> Label:
    """Validate a JSON feedback record (the post's fields plus label, moderator, note)."""
    if not isinstance(record, Mapping):
        raise InvalidFeedback(f"feedback must be a JSON object, got {type(record).__name__}")
    fields = dict(record)
    if fields.get("title") is None:  # replies have no title; a forum may send null or leave it out
        fields["title"] = ""
    errors = []
    try:
        post = Post.from_dict(fields)
    except ValueError as exc:  # InvalidPost
        errors.extend(str(exc).split("; "))
        post = None
    label = record.get("label")
    if label is None:
        errors.append("label is required")
    elif not isinstance(label, str) or label not in LABELS:
        errors.append(f"label must be one of {', '.join(LABELS)}, got {label!r}")
    for name in ("moderator", "note", "source"):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(f"{name} must be a string, got {type(value).__name__}")
    if errors:
        raise InvalidFeedback("; ".join(errors))
    return Label(post=post, label=label, source=record.get("source") or source,
                 moderator=record.get("moderator"), note=record.get("note"), channel=channel)
