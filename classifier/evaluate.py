"""Measure a model on labelled posts; every result is plain numbers (stored in manifests as JSON)."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score, roc_curve

from .dataset import Example
from .decision import Thresholds, decide_all
from .types import DECISIONS, LABELS


def finite(value):
    """Replace NaN and infinities (undefined metrics, e.g. ROC-AUC of an absent label) by None,
    so reports are valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def recall_at_fpr(y_true, scores, max_fpr: float) -> float:
    """Highest recall reachable while the false-positive rate stays at or below `max_fpr`."""
    y_true = np.asarray(y_true, dtype=bool)
    if y_true.all() or not y_true.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(y_true, scores)
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def precision_recall_at(y_true, scores, cutoffs) -> list[dict]:
    """Precision and recall of "flag every post scoring at or above the cut-off", per cut-off.

    The same rule `decide` applies, so the rows say what a threshold would do on these posts.
    Precision is None where nothing is flagged, recall None when there are no positives.

    Parameters
    ----------
    y_true : sequence of bool, True for the positive label
    scores : that label's probabilities, same length
    cutoffs : the thresholds to tabulate, in the order wanted

    Returns
    -------
    list of dict with keys ``cutoff``, ``flagged``, ``true_positives``, ``precision``, ``recall``
    """
    y_true = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    if y_true.shape != scores.shape:
        raise ValueError(f"y_true and scores must have the same length, got {len(y_true)} and {len(scores)}")
    positives = int(y_true.sum())
    rows = []
    for cutoff in cutoffs:
        flagged = scores >= cutoff
        n, tp = int(flagged.sum()), int((flagged & y_true).sum())
        rows.append({"cutoff": float(cutoff), "flagged": n, "true_positives": tp,
                     "precision": tp / n if n else None, "recall": tp / positives if positives else None})
    return rows


def expected_calibration_error(y_true, scores, bins: int = 10) -> float:
    """Mean gap between predicted probability and observed frequency, over equal-width bins."""
    y_true = np.asarray(y_true, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if len(scores) == 0:
        return float("nan")
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap += mask.mean() * abs(scores[mask].mean() - y_true[mask].mean())
    return float(gap)


def _auc(y_true, scores) -> float:
    y_true = np.asarray(y_true, dtype=bool)
    if y_true.all() or not y_true.any():
        return float("nan")
    return float(roc_auc_score(y_true, scores))


def report_from_probabilities(labels: Sequence[str], probabilities, thresholds: Thresholds,
                              kinds: Sequence[str] | None = None) -> dict:
    """Per-label precision/recall/F1 and ROC-AUC, spam recall at 1 % FPR, decisions, per-kind recall.

    Parameters
    ----------
    labels : true labels
    probabilities : array (n, 3), columns ok, spam, off_topic
    thresholds : the decision cut-offs to report decisions with
    kinds : optional kind per row, for recall per spam kind
    """
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=float).reshape(-1, len(LABELS))
    predicted = np.array(LABELS)[p.argmax(axis=1)] if len(p) else np.array([], dtype=str)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=list(LABELS), zero_division=0)
    per_label = {
        label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i]), "roc_auc": _auc(y == label, p[:, i])}
        for i, label in enumerate(LABELS)
    }
    decisions = decide_all(p, thresholds)
    by_label = {label: Counter() for label in LABELS}
    for label, decision in zip(y, decisions):
        by_label[label][decision] += 1
    decisions_arr = np.array(decisions)
    is_spam = y == "spam"
    blocked = decisions_arr == "block"
    flagged = decisions_arr != "allow"
    report = {
        "n": int(len(y)),
        "accuracy": float((predicted == y).mean()) if len(y) else float("nan"),
        "per_label": per_label,
        "spam_roc_auc": per_label["spam"]["roc_auc"],
        "spam_recall_at_1pct_fpr": recall_at_fpr(is_spam, p[:, 1], 0.01),
        "off_topic_roc_auc": per_label["off_topic"]["roc_auc"],
        "calibration": {label: {"brier": float(np.mean((p[:, i] - (y == label)) ** 2)) if len(y) else float("nan"),
                                "ece": expected_calibration_error(y == label, p[:, i])}
                        for i, label in enumerate(LABELS)},
        "confusion_matrix": {"labels": list(LABELS),
                             "matrix": confusion_matrix(y, predicted, labels=list(LABELS)).tolist()},
        "decisions": {label: {d: int(by_label[label][d]) for d in DECISIONS} for label in LABELS},
        "block_precision": float(is_spam[blocked].mean()) if blocked.any() else float("nan"),
        "block_recall": float(blocked[is_spam].mean()) if is_spam.any() else float("nan"),
        "legit_blocked_rate": float(blocked[~is_spam].mean()) if (~is_spam).any() else float("nan"),
        "spam_flagged_recall": float(flagged[is_spam].mean()) if is_spam.any() else float("nan"),
        "thresholds": thresholds.to_dict(),
    }
    if kinds is not None:
        per_kind = defaultdict(lambda: Counter())
        for label, kind, decision in zip(y, kinds, decisions):
            if label == "spam":
                per_kind[kind or "-"][decision] += 1
        report["spam_recall_by_kind"] = {
            kind: {"n": sum(c.values()), "blocked": c["block"] / sum(c.values()),
                   "flagged": (c["block"] + c["review"]) / sum(c.values())}
            for kind, c in sorted(per_kind.items())
        }
    return finite(report)


def evaluate(model, examples: Sequence[Example]) -> dict:
    """Score labelled examples with `model` and report (see `report_from_probabilities`)."""
    probabilities = model.predict_proba([e.post for e in examples])
    report = report_from_probabilities([e.label for e in examples], probabilities, model.thresholds,
                                       kinds=[e.kind for e in examples])
    report["model_version"] = model.version
    return report


def _f(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict) -> str:
    """A plain-text table of a report, for the terminal."""
    lines = [f"{'label':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'roc_auc':>8} {'support':>8}"]
    for label, m in report["per_label"].items():
        lines.append(f"{label:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} "
                     f"{_f(m['roc_auc']):>8} {m['support']:>8d}")
    lines.append("")
    lines.append(f"spam recall at 1% FPR: {_f(report['spam_recall_at_1pct_fpr'])}   calibration (ECE): " +
                 ", ".join(f"{label} {_f(m['ece'])}" for label, m in report["calibration"].items()))
    lines.append(f"block precision: {_f(report['block_precision'], '.4f')}   block recall: "
                 f"{_f(report['block_recall'])}   legitimate posts blocked: {_f(report['legit_blocked_rate'], '.4f')}")
    cm = report["confusion_matrix"]
    lines.append("")
    lines.append("confusion matrix (rows: true label, columns: predicted)")
    lines.append(f"  {'':<10}" + "".join(f"{label:>10}" for label in cm["labels"]))
    for label, row in zip(cm["labels"], cm["matrix"]):
        lines.append(f"  {label:<10}" + "".join(f"{v:>10d}" for v in row))
    lines.append("")
    lines.append("decisions by true label: " + ", ".join(
        f"{label}: " + "/".join(str(report['decisions'][label][d]) for d in DECISIONS) for label in LABELS)
        + "  (allow/review/block)")
    if report.get("spam_recall_by_kind"):
        lines.append("")
        lines.append(f"{'spam kind':<24} {'n':>5} {'blocked':>8} {'flagged':>8}")
        for kind, m in report["spam_recall_by_kind"].items():
            lines.append(f"{kind:<24} {m['n']:>5d} {m['blocked']:>8.3f} {m['flagged']:>8.3f}")
    return "\n".join(lines)
