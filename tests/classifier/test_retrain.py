"""Retraining mechanics on the tiny corpus: training set, split, gate, promotion, force, locks."""
import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from classifier import artifacts
from classifier.feedback import FeedbackStore, Label
from classifier.gate import GateMargins, compare
from classifier.retrain import (RetrainBusy, RetrainOptions, build_training_set, content_key, retrain,
                                split_feedback)
from classifier.train import TrainParams
from classifier.types import Post
from tests.conftest import tiny_examples

FAST = TrainParams(folds=3, min_df=1)
T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with path.open("w") as f:
        for e in tiny_examples():
            f.write(json.dumps({"id": e.post.id, "title": e.post.title, "body": e.post.body,
                                "category": e.post.category, "label": e.label, "promo": list(e.promo)}) + "\n")
    return [path]


def add_labels(store, n=10, *, start=T0, source="forum"):
    """n spam and n ok labels with increasing times."""
    for i in range(n):
        store.add(Label(Post(f"s{i}", "Storage deal", f"Vexmora Vault storage plan number {i}, best price for labs.",
                             "3D Segmentation"), "spam", source, at=start + timedelta(minutes=2 * i)))
        store.add(Label(Post(f"o{i}", "Stitching", f"How do I stitch tile {i} of my light-sheet volume in BigStitcher?",
                             "3D Segmentation"), "ok", source, at=start + timedelta(minutes=2 * i + 1)))


def options(**kw):
    kw.setdefault("params", FAST)
    kw.setdefault("margins", GateMargins(min_labels=3))
    return RetrainOptions(**kw)


def test_time_split_holds_out_the_newest_labels(database):
    store = FeedbackStore(database)
    add_labels(store, 10)
    train, held, how = split_feedback(list(store.latest()), 0.2, seed=0)
    assert how.startswith("time-based") and len(held) == 4 and len(train) == 16
    assert max(x.created_at for x in train) < min(x.created_at for x in held)


def test_labels_without_distinct_times_get_a_grouped_split(database):
    store = FeedbackStore(database)
    add_labels(store, 10, start=T0)
    same_time = [x for x in store.latest()]
    for x in same_time:
        object.__setattr__(x, "created_at", T0)
    train, held, how = split_feedback(same_time, 0.25, seed=0)
    assert how.startswith("grouped") and len(held) == 5 and len(train) == 15
    keys = lambda items: {content_key(x.post.title, x.post.body) for x in items}  # noqa: E731
    assert not keys(train) & keys(held)


def test_training_set_dedupes_and_moderators_win(database, corpus):
    store = FeedbackStore(database)
    spam_text = tiny_examples()[12].post  # a corpus spam post a moderator says is fine
    store.add(Label(Post("x1", spam_text.title, spam_text.body, spam_text.category), "ok", "forum", at=T0))
    store.add(Label(Post("x2", spam_text.title.upper(), spam_text.body, None), "off_topic", "other", at=T0 + timedelta(1)))
    add_labels(store, 10, start=T0 - timedelta(days=5))
    data = build_training_set(corpus, list(store.latest()), options(feedback_weight=2.5))
    same = [e for e in data.examples if content_key(e.post.title, e.post.body) == content_key(spam_text.title, spam_text.body)]
    held = [x for x in data.heldout if content_key(x.post.title, x.post.body) == content_key(spam_text.title, spam_text.body)]
    assert len(same) + len(held) == 1  # one post, however many copies
    assert (same or held)[0].label == "off_topic"  # the newest moderator label, not the corpus's spam
    assert data.counts["corpus_replaced_by_feedback"] == 1 and data.counts["feedback_same_text_merged"] == 1
    assert {e.weight for e in data.examples if e.source == "feedback"} == {2.5}
    assert not {content_key(x.post.title, x.post.body) for x in data.heldout} & {
        content_key(e.post.title, e.post.body) for e in data.examples}


@pytest.fixture()
def models(tiny_model, tmp_path):
    from tests.conftest import save_for_test

    path = save_for_test(tiny_model, tmp_path / "models")
    artifacts.set_active(tmp_path / "models", path.name)
    return tmp_path / "models"


def test_retrain_saves_a_gated_candidate_with_its_lineage(database, corpus, models):
    store = FeedbackStore(database)
    add_labels(store, 10)
    parent = artifacts.active_version(models)
    result = retrain(models, store, corpus, options(margins=GateMargins(min_labels=3, spam_recall_at_block=1,
                                                                        block_precision=1, off_topic_roc_auc=1),
                                                    requested_by="ann"))
    manifest = artifacts.read_manifest(result.path)
    assert result.promoted and artifacts.active_version(models) == result.version
    assert manifest["parent"] == parent and manifest["created_by"] == "ann"
    assert manifest["gate"]["passed"] is True and manifest["gate"]["active_version"] == parent
    assert manifest["retraining"]["counts"]["feedback_heldout"]["spam"] + \
        manifest["retraining"]["counts"]["feedback_train"]["spam"] == 10
    assert len(manifest["training_data"]["sha256"]) == 64
    assert manifest["corpus_files"] and all("/" not in name for name in manifest["corpus_files"])
    assert result.backtest["against"] == parent and result.backtest["scored"] == 20
    assert result.backtest["scope"] == "every labelled post"
    # the gate's numbers are the candidate's on exactly the held-out labels
    from classifier.gate import heldout_metrics
    from classifier.retrain import build_training_set

    data = build_training_set(corpus, store.latest(), options())
    candidate = artifacts.load_model(result.path)
    assert result.gate["candidate"] == heldout_metrics(candidate, [x.post for x in data.heldout],
                                                       [x.label for x in data.heldout])


def test_many_labels_backtest_only_the_held_out_ones_in_the_report(database, corpus, models):
    store = FeedbackStore(database)
    add_labels(store, 10)
    result = retrain(models, store, corpus, options(report_backtest_labels=19, force=True))
    held = sum(result.training["counts"]["feedback_heldout"].values())
    assert 0 < held < 20 and result.backtest["scored"] == held
    assert "held-out" in result.backtest["scope"] and "postsieve backtest" in result.backtest["scope"]
    assert "held-out labels" in (result.path / "report.html").read_text()


def test_a_failed_gate_keeps_the_candidate_inactive_unless_forced(database, corpus, models):
    store = FeedbackStore(database)
    add_labels(store, 2)  # 4 labels: 1 held out, below min_labels
    before = artifacts.active_version(models)
    refused = retrain(models, store, corpus, options(margins=GateMargins(min_labels=10)))
    assert not refused.promoted and artifacts.active_version(models) == before
    assert "held-out labels; the gate needs at least 10" in refused.gate["failures"][0]
    assert (models / refused.version).is_dir()  # kept for inspection and backtests
    forced = retrain(models, store, corpus, options(margins=GateMargins(min_labels=10), force=True))
    assert forced.promoted and artifacts.active_version(models) == forced.version
    assert artifacts.read_manifest(forced.path)["gate"]["forced"] is True


def test_no_promote_never_activates(database, corpus, models):
    store = FeedbackStore(database)
    add_labels(store, 10)
    before = artifacts.active_version(models)
    result = retrain(models, store, corpus, options(promote=False, force=True))
    assert not result.promoted and artifacts.active_version(models) == before


def test_two_retrains_never_run_at_once(database, corpus, models):
    import fcntl

    with open(models / ".retrain.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RetrainBusy, match="another retraining run"):
            retrain(models, FeedbackStore(database), corpus, options())


def test_a_crash_mid_training_leaves_no_half_written_version(database, corpus, models, monkeypatch):
    store = FeedbackStore(database)
    add_labels(store, 10)
    (models / ".retrain.lock").touch()
    before = sorted(p.name for p in models.iterdir())

    def boom(*args, **kwargs):
        raise MemoryError("killed mid-save")

    monkeypatch.setattr("classifier.artifacts.joblib.dump", boom)
    with pytest.raises(MemoryError):
        retrain(models, store, corpus, options())
    assert sorted(p.name for p in models.iterdir()) == before


def test_gate_compares_each_metric_with_its_margin():
    margins = GateMargins(min_labels=1)
    active = {"n": 50, "spam_recall_at_block": 0.80, "block_precision": 1.0, "off_topic_roc_auc": 0.9}
    better = dict(active, spam_recall_at_block=0.9)
    worse = dict(active, spam_recall_at_block=0.7, block_precision=0.95)
    assert compare(better, active, margins)["passed"]
    verdict = compare(worse, active, margins)
    assert not verdict["passed"] and len(verdict["failures"]) == 2
    assert "spam_recall_at_block fell from 0.800 to 0.700" in verdict["failures"][0]
    unmeasurable = compare(dict(active, off_topic_roc_auc=None), dict(active, off_topic_roc_auc=None), margins)
    assert unmeasurable["passed"] and "off_topic_roc_auc" in unmeasurable["skipped"][0]


def test_rescoring_in_worker_processes_equals_scoring_in_order(tiny_model, monkeypatch):
    import numpy as np

    from classifier import retrain as retrain_module
    from classifier.retrain import rescore

    monkeypatch.setattr(retrain_module, "_RESCORE_CHUNK", 5)  # several chunks over two workers
    posts = [e.post for e in tiny_examples()]
    one, = rescore([tiny_model], posts, jobs=1)
    two, same_again = rescore([tiny_model, tiny_model], posts, jobs=2)
    expected = tiny_model.score(posts, explain=False)
    assert one.decisions == two.decisions == same_again.decisions == [s.decision for s in expected]
    np.testing.assert_array_equal(two.probabilities, tiny_model.predict_proba(posts))
    np.testing.assert_array_equal(one.probabilities, two.probabilities)
