"""Plain data shared by every stage: the input post and the scored result.

`Scored.to_dict()` is the output contract used by `postsieve score`, `classify --json` and the
HTTP API, so all three stay identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from .errors import InvalidPost

LABELS = ("ok", "spam", "off_topic")
DECISIONS = ("allow", "review", "block")


@dataclass(frozen=True)
class Post:
    """One forum post as a forum sends it; `category` is where it was filed."""

    id: str | int
    title: str
    body: str
    category: str | None = None
    author: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Post":
        """Validate a JSON-like record and build a Post, naming the first bad field."""
        if not isinstance(record, Mapping):
            raise InvalidPost(f"a post must be a JSON object, got {type(record).__name__}")
        errors = []
        post_id = record.get("id")
        if post_id is None or post_id == "":
            errors.append("id is required")
        elif isinstance(post_id, bool) or not isinstance(post_id, (str, int)):
            errors.append(f"id must be a string or an integer, got {type(post_id).__name__}")
        for name in ("title", "body"):
            value = record.get(name)
            if value is None:
                errors.append(f"{name} is required")
            elif not isinstance(value, str):
                errors.append(f"{name} must be a string, got {type(value).__name__}")
        category = record.get("category")
        if category is not None and not isinstance(category, str):
            errors.append(f"category must be a string, got {type(category).__name__}")
        author = record.get("author")
        if author is not None and not isinstance(author, Mapping):
            errors.append(f"author must be an object, got {type(author).__name__}")
        elif author is not None:
            errors.extend(_author_errors(author))
        if errors:
            raise InvalidPost("; ".join(errors))
        return cls(
            id=post_id,  # echoed as given: an integer id stays an integer
            title=record["title"],
            body=record["body"],
            category=category or None,
            author=author,
        )


#: Author fields postsieve reads (others are kept and ignored), with the JSON types they must have.
AUTHOR_FIELDS = {"id": (str, int), "name": (str,), "trust_level": (int, float), "reputation": (int, float),
                 "account_age_days": (int, float)}


def _author_errors(author: Mapping[str, Any]) -> list[str]:
    errors = []
    for name, kinds in AUTHOR_FIELDS.items():
        value = author.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            wanted = ("a number" if float in kinds else
                      " or ".join("a string" if k is str else "an integer" for k in kinds))
            errors.append(f"author.{name} must be {wanted}, got {type(value).__name__}")
    return errors


# Highlight and Reason are named tuples rather than frozen dataclasses: a post makes up to
# thirteen of them, and a frozen dataclass costs several times more to construct.
class Highlight(NamedTuple):
    """A sentence span that drives the spam score; offsets index the original field text."""

    field: str
    start: int
    end: int
    score: float


class Reason(NamedTuple):
    """One exact additive contribution to the log-odds of the predicted label."""

    feature: str
    weight: float


@dataclass(frozen=True)
class Scored:
    """The full answer for one post: label, decision, probabilities and why."""

    id: str | int
    label: str
    decision: str
    scores: Mapping[str, float]
    highlights: tuple[Highlight, ...] = field(default_factory=tuple)
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    model_version: str = ""
    #: True when a field was longer than features.MAX_FIELD_CHARS and only its prefix was scored.
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the output contract as plain JSON-ready data."""
        return {
            "id": self.id,
            "label": self.label,
            "decision": self.decision,
            "scores": {label: round(float(self.scores[label]), 6) for label in LABELS},
            "highlights": [
                {"field": h.field, "start": h.start, "end": h.end, "score": round(h.score, 6)}
                for h in self.highlights
            ],
            "reasons": [{"feature": r.feature, "weight": round(r.weight, 6)} for r in self.reasons],
            "model_version": self.model_version,
            "truncated": self.truncated,
        }
