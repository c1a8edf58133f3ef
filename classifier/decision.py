"""Turn calibrated scores into allow / review / block, and pick the cut-offs from held-out data.

Deciding is kept apart from scoring (as SpamBayes keeps ham_cutoff and spam_cutoff apart from its
classifier) so thresholds can be chosen, stored and changed without touching the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs on calibrated probabilities.

    A post is blocked when P(spam) >= spam_block; it goes to review when P(spam) >= spam_review
    or P(off_topic) >= off_topic_review; otherwise it is allowed. Off-topic posts are honest, so
    they are never blocked, only sent to review.
    """

    spam_block: float
    spam_review: float
    off_topic_review: float

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.spam_review > self.spam_block:
            raise ValueError(
                f"spam_review must be <= spam_block, got {self.spam_review} > {self.spam_block}"
            )

    def to_dict(self) -> dict[str, float]:
        """Plain numbers for the manifest and the API."""
        return asdict(self)


def decide(scores: Mapping[str, float], thresholds: Thresholds) -> str:
    """Return 'block', 'review' or 'allow' for one post's probabilities."""
    spam = scores["spam"]
    if spam >= thresholds.spam_block:
        return "block"
    if spam >= thresholds.spam_review or scores["off_topic"] >= thresholds.off_topic_review:
        return "review"
    return "allow"


def decide_all(probabilities, thresholds: Thresholds) -> list[str]:
    """`decide` for every row of an (n, 3) array of ok, spam, off_topic probabilities."""
    return [decide({"ok": ok, "spam": spam, "off_topic": off}, thresholds)
            for ok, spam, off in np.asarray(probabilities, dtype=float).reshape(-1, 3).tolist()]


def threshold_for_precision(y_true, scores, target: float, floor: float = 0.5) -> float:
    """Lowest cut-off whose positives, and those of every higher cut-off, reach `target` precision.

    Walking down from the top score, the precision of "everything at or above here" is computed
    at every distinct score; the cut-off is the lowest one before precision first drops below the
    target. With no positive above the floor the floor is returned, so a weak model blocks little.
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    s_sorted, y_sorted = scores[order], y_true[order]
    tp = np.cumsum(y_sorted)
    precision = tp / np.arange(1, len(y_sorted) + 1)
    # only evaluate at the last index of each run of equal scores (ties are decided together)
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    best = None
    for i in np.flatnonzero(last_of_run):
        if precision[i] < target:
            break
        best = s_sorted[i]
    if best is None:
        return 1.0
    return float(max(best, floor))


def threshold_for_recall(y_true, scores, target: float, floor: float = 0.05) -> float:
    """Highest cut-off that still catches `target` of the positives (never below `floor`)."""
    y_true = np.asarray(y_true, dtype=bool)
    positives = np.sort(np.asarray(scores, dtype=float)[y_true])[::-1]
    if len(positives) == 0:
        return 1.0
    k = int(np.ceil(target * len(positives))) - 1
    return float(max(positives[min(k, len(positives) - 1)], floor))


def choose_thresholds(
    labels,
    probabilities,
    *,
    block_precision: float = 0.995,
    review_recall: float = 0.9,
    off_topic_precision: float = 0.8,
) -> Thresholds:
    """Pick the three cut-offs from held-out labels and calibrated probabilities.

    Block at the lowest spam cut-off with `block_precision` on held-out posts; review spam at
    the cut-off that still catches `review_recall` of held-out spam; review off-topic at the
    lowest cut-off with `off_topic_precision`.

    Parameters
    ----------
    labels : sequence of str
        True labels ('ok', 'spam', 'off_topic') of held-out posts.
    probabilities : array of shape (n, 3)
        Calibrated probabilities in the order ok, spam, off_topic.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    is_spam = labels == "spam"
    block = threshold_for_precision(is_spam, probabilities[:, 1], block_precision)
    review = min(threshold_for_recall(is_spam, probabilities[:, 1], review_recall), block)
    # Off-topic posts are honest: send one to review only when it is likely off-topic (a target
    # precision, never below P = 0.5), so the review queue is not filled with legitimate posts.
    off = threshold_for_precision(labels == "off_topic", probabilities[:, 2], off_topic_precision, floor=0.5)
    return Thresholds(spam_block=block, spam_review=review, off_topic_review=off)


@dataclass(frozen=True)
class TrustPolicy:
    """Authors the forum already trusts are never blocked outright, only sent to review.

    Every mature forum does this (Discourse trust levels, Stack Exchange reputation): a false
    block of a regular costs far more than a moment of a moderator's time. `None` disables a rule.
    """

    trust_level: float | None = 3
    reputation: float | None = 1000

    def is_trusted(self, author: Mapping | None) -> bool:
        if not author:
            return False
        level, reputation = author.get("trust_level"), author.get("reputation")
        return ((self.trust_level is not None and isinstance(level, (int, float)) and level >= self.trust_level)
                or (self.reputation is not None and isinstance(reputation, (int, float))
                    and reputation >= self.reputation))

    def apply(self, decision: str, author: Mapping | None) -> str:
        """The decision after the policy: 'block' becomes 'review' for a trusted author."""
        return "review" if decision == "block" and self.is_trusted(author) else decision
