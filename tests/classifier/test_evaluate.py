import numpy as np
import pytest

from classifier.decision import Thresholds
from classifier.evaluate import (evaluate, expected_calibration_error, format_report, precision_recall_at,
                                 recall_at_fpr, report_from_probabilities)
from tests.conftest import tiny_examples

T = Thresholds(spam_block=0.9, spam_review=0.5, off_topic_review=0.5)


def test_recall_at_fpr():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.4, 0.3, 0.5, 0.2, 0.1, 0.1, 0.05, 0.0])
    assert recall_at_fpr(y, s, 0.0) == 0.5
    assert recall_at_fpr(y, s, 0.2) == 1.0


def test_report_counts_and_per_kind():
    labels = ["ok", "spam", "spam", "off_topic"]
    p = np.array([[0.9, 0.05, 0.05], [0.02, 0.95, 0.03], [0.3, 0.6, 0.1], [0.2, 0.1, 0.7]])
    r = report_from_probabilities(labels, p, T, kinds=["", "casino", "pharma", "news"])
    assert r["accuracy"] == 1.0
    assert r["decisions"]["spam"] == {"allow": 0, "review": 1, "block": 1}
    assert r["block_precision"] == 1.0 and r["block_recall"] == 0.5
    assert r["spam_recall_by_kind"]["casino"]["blocked"] == 1.0
    assert r["spam_recall_by_kind"]["pharma"]["flagged"] == 1.0
    assert r["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    text = format_report(r)
    assert "spam recall at 1% FPR" in text and "casino" in text


def test_evaluate_on_model(tiny_model):
    r = evaluate(tiny_model, tiny_examples())
    assert r["n"] == 32
    assert 0 <= r["per_label"]["spam"]["roc_auc"] <= 1


def test_expected_calibration_error():
    assert expected_calibration_error([1, 0, 1, 0], [1.0, 0.0, 1.0, 0.0]) == 0.0
    assert expected_calibration_error([0, 0], [0.95, 0.95]) == pytest.approx(0.95)


def test_undefined_metrics_are_none_not_nan():
    import json

    r = report_from_probabilities(["ok", "ok"], np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1]]), T)
    assert r["per_label"]["spam"]["roc_auc"] is None
    json.dumps(r, allow_nan=False)
    assert "-" in format_report(r)


def test_precision_recall_at_cutoffs():
    y = [True, True, False, True, False]
    s = [0.9, 0.8, 0.7, 0.4, 0.1]
    rows = precision_recall_at(y, s, [0.95, 0.8, 0.5, 0.0])
    assert [r["cutoff"] for r in rows] == [0.95, 0.8, 0.5, 0.0]
    assert rows[0] == {"cutoff": 0.95, "flagged": 0, "true_positives": 0, "precision": None, "recall": 0.0}
    # at or above the cut-off, the rule decide() applies
    assert rows[1]["flagged"] == 2 and rows[1]["precision"] == 1.0 and rows[1]["recall"] == pytest.approx(2 / 3)
    assert rows[2]["precision"] == pytest.approx(2 / 3)
    assert rows[3] == {"cutoff": 0.0, "flagged": 5, "true_positives": 3, "precision": 0.6, "recall": 1.0}


def test_precision_recall_at_agrees_with_the_chosen_threshold():
    from classifier.decision import threshold_for_precision

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    s = np.clip(y * 0.35 + rng.random(300) * 0.65, 0, 1)
    cut = threshold_for_precision(y, s, 0.95)
    assert precision_recall_at(y, s, [cut])[0]["precision"] >= 0.95


def test_precision_recall_at_without_positives_or_with_bad_lengths():
    assert precision_recall_at([False, False], [0.2, 0.9], [0.5])[0]["recall"] is None
    with pytest.raises(ValueError, match="same length, got 2 and 3"):
        precision_recall_at([True, False], [0.1, 0.2, 0.3], [0.5])
