"""The evaluation gate: a candidate goes live only if it is not worse than the active model on
labels neither was trained on.

Both models are scored on the same held-out moderator labels, each with its own thresholds.
The candidate fails when it loses more than a margin on any of: spam recall at the block
threshold, precision of its blocks, off-topic ROC-AUC, and spam ROC-AUC. The last is not in the
issue's list; it is there because a candidate that blocks nothing has no block precision and,
when the active model blocked little of the held-out spam either, loses nothing on recall at
block: a model trained on flipped labels passed the first three (measured in the flipped-label
test) and fails on spam ROC-AUC. A metric the held-out labels cannot
measure (no off-topic posts, say) is skipped and said so; with fewer than `min_labels`
held-out labels the gate cannot judge and does not pass.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from .decision import decide_all
from .model import Model
from .types import Post

GATE_METRICS = ("spam_recall_at_block", "block_precision", "off_topic_roc_auc", "spam_roc_auc")


@dataclass(frozen=True)
class GateMargins:
    """How much a candidate may lose on each metric (absolute, on a 0-1 scale)."""

    spam_recall_at_block: float = 0.02
    block_precision: float = 0.01
    off_topic_roc_auc: float = 0.02
    spam_roc_auc: float = 0.02
    min_labels: int = 20

    def __post_init__(self):
        for name in GATE_METRICS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"margin {name} must be within [0, 1], got {getattr(self, name)}")
        if self.min_labels < 1:
            raise ValueError(f"min_labels must be >= 1, got {self.min_labels}")


def heldout_metrics(model: Model, posts: list[Post], labels: list[str], probabilities=None) -> dict:
    """Gate metrics (and a few context numbers) of one model on labelled posts; pass the model's
    `probabilities` of those posts when they were computed already."""
    y = np.asarray(labels)
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=float).reshape(-1, 3)
    else:
        p = model.predict_proba(posts) if posts else np.zeros((0, 3))
    decisions = np.array(decide_all(p, model.thresholds)) if len(p) else np.array([], dtype=str)
    spam, blocked = y == "spam", decisions == "block"
    off = y == "off_topic"
    return {
        "n": int(len(y)),
        "spam_recall_at_block": float((blocked & spam).sum() / spam.sum()) if spam.any() else None,
        "block_precision": float((blocked & spam).sum() / blocked.sum()) if blocked.any() else None,
        "off_topic_roc_auc": float(roc_auc_score(off, p[:, 2])) if 0 < off.sum() < len(y) else None,
        "spam_roc_auc": float(roc_auc_score(spam, p[:, 1])) if 0 < spam.sum() < len(y) else None,
        "honest_blocked": int((blocked & ~spam).sum()),
    }


def compare(candidate: dict, active: dict | None, margins: GateMargins) -> dict:
    """The gate's verdict: passed, the failures and skipped metrics, both sides' numbers."""
    result = {"passed": False, "forced": False, "margins": {m: getattr(margins, m) for m in GATE_METRICS},
              "candidate": candidate, "active": active, "failures": [], "skipped": []}
    if candidate["n"] < margins.min_labels:
        result["failures"].append(f"only {candidate['n']} held-out labels; the gate needs at least "
                                  f"{margins.min_labels} to judge (label more posts, or --force)")
        return result
    if active is None:
        result["passed"] = True
        result["skipped"].append("no active model to compare with")
        return result
    for metric in GATE_METRICS:
        new, old = candidate.get(metric), active.get(metric)
        if old is None:
            result["skipped"].append(f"{metric}: the held-out labels cannot measure it for the active model")
            continue
        if new is None:
            if metric == "block_precision":  # the candidate blocks nothing: its recall says the rest
                continue
            result["skipped"].append(f"{metric}: the held-out labels cannot measure it")
            continue
        margin = getattr(margins, metric)
        if new < old - margin:
            result["failures"].append(f"{metric} fell from {old:.3f} to {new:.3f} (allowed loss {margin:.3f})")
    result["passed"] = not result["failures"]
    return result


def margins_dict(margins: GateMargins) -> dict:
    return asdict(margins)
