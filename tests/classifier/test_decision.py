import numpy as np
import pytest

from classifier.decision import Thresholds, choose_thresholds, decide, threshold_for_precision, threshold_for_recall

T = Thresholds(spam_block=0.9, spam_review=0.5, off_topic_review=0.6)


@pytest.mark.parametrize("scores, expected", [
    ({"ok": 0.05, "spam": 0.95, "off_topic": 0.0}, "block"),
    ({"ok": 0.1, "spam": 0.9, "off_topic": 0.0}, "block"),        # at the cut-off blocks
    ({"ok": 0.4, "spam": 0.6, "off_topic": 0.0}, "review"),
    ({"ok": 0.3, "spam": 0.0, "off_topic": 0.7}, "review"),        # off-topic is never blocked
    ({"ok": 0.0, "spam": 0.0, "off_topic": 1.0}, "review"),
    ({"ok": 0.9, "spam": 0.05, "off_topic": 0.05}, "allow"),
])
def test_decide(scores, expected):
    assert decide(scores, T) == expected


@pytest.mark.parametrize("kwargs, match", [
    ({"spam_block": 0.5, "spam_review": 0.9, "off_topic_review": 0.5}, "spam_review must be <= spam_block"),
    ({"spam_block": 1.5, "spam_review": 0.2, "off_topic_review": 0.5}, "spam_block must be within"),
])
def test_thresholds_validate(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Thresholds(**kwargs)


def test_precision_threshold_stops_before_first_false_positive():
    y = [1, 1, 1, 0, 1, 0, 0]
    s = [0.99, 0.97, 0.95, 0.9, 0.85, 0.3, 0.1]
    assert threshold_for_precision(y, s, 0.995, floor=0.0) == 0.95


def test_precision_threshold_respects_floor_and_no_positives():
    assert threshold_for_precision([1, 1], [0.3, 0.2], 0.99, floor=0.5) == 0.5
    assert threshold_for_precision([0, 1], [0.9, 0.2], 0.99, floor=0.5) == 1.0


def test_recall_threshold_catches_target_share():
    y = np.array([1] * 10 + [0] * 5)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15] + [0.1] * 5)
    t = threshold_for_recall(y, s, 0.9, floor=0.0)
    assert (s[y == 1] >= t).mean() >= 0.9
    assert t == 0.2


def test_choose_thresholds_orders_cutoffs():
    rng = np.random.default_rng(0)
    labels = np.array(["ok"] * 50 + ["spam"] * 50 + ["off_topic"] * 50)
    p = rng.dirichlet([1, 1, 1], size=150)
    p[50:100, 1] += 2
    p /= p.sum(axis=1, keepdims=True)
    t = choose_thresholds(labels, p)
    assert 0 <= t.spam_review <= t.spam_block <= 1
