import numpy as np
import pytest

from classifier import TrainParams, train_model
from classifier.augment import CATEGORY_KIND, PROMO_KIND, insert_sentence, promo_inserts, wrong_categories
from classifier.dataset import Example
from classifier.train import _assign_folds, augment_by_fold
from tests.conftest import tiny_examples


def test_training_is_deterministic():
    a = train_model(tiny_examples(), TrainParams(folds=3, min_df=1, seed=1))
    b = train_model(tiny_examples(), TrainParams(folds=3, min_df=1, seed=1))
    np.testing.assert_array_equal(a.model.weights_, b.model.weights_)
    np.testing.assert_array_equal(a.model.combiner_coef_, b.model.combiner_coef_)
    assert a.model.thresholds == b.model.thresholds
    assert a.report["per_label"] == b.report["per_label"]


def test_training_reports_held_out_metrics_and_counts(tiny_model):
    result = train_model(tiny_examples(), TrainParams(folds=3, min_df=1))
    assert result.label_counts == {"ok": 12, "spam": 10, "off_topic": 10}
    assert set(result.augmented_counts) <= {PROMO_KIND, CATEGORY_KIND}
    for key in ("per_label", "spam_recall_at_1pct_fpr", "confusion_matrix", "spam_recall_by_kind", "thresholds"):
        assert key in result.report
    assert "out-of-fold" in result.report["evaluated_on"]


def test_training_keeps_the_out_of_fold_scores_its_thresholds_come_from():
    from classifier.decision import choose_thresholds
    from classifier.evaluate import report_from_probabilities

    result = train_model(tiny_examples(), TrainParams(folds=3, min_df=1))
    assert result.oof.shape == (len(result.y), 3) and len(result.y) >= len(tiny_examples())
    np.testing.assert_allclose(result.oof.sum(axis=1), 1.0)
    assert choose_thresholds(result.y, result.oof) == result.model.thresholds
    assert report_from_probabilities(result.y, result.oof, result.model.thresholds)["per_label"] == \
        result.report["per_label"]


def test_training_needs_every_label():
    only_ok = [e for e in tiny_examples() if e.label != "spam"]
    with pytest.raises(ValueError, match="none for spam"):
        train_model(only_ok, TrainParams(folds=3, min_df=1))


def test_params_are_validated():
    with pytest.raises(ValueError, match="folds must be >= 2"):
        TrainParams(folds=1)
    with pytest.raises(ValueError, match="block_precision must be in"):
        TrainParams(block_precision=1.5)


def test_augmented_variants_stay_in_their_sources_fold():
    """No variant of a text, nor a promo sentence it borrowed, straddles a train/test split."""
    import random

    examples = tiny_examples()
    params = TrainParams(folds=3)
    fold_of = _assign_folds(examples, params)
    cats = sorted({e.post.category for e in examples})
    all_examples, fold_ids, counts = augment_by_fold(examples, fold_of, cats, params, random.Random(0))
    assert sum(counts.values()) == len(all_examples) - len(examples) > 0
    fold_of_promo = {p: fold_of[e.group_key] for e in examples for p in e.promo}
    for e, fold in zip(all_examples, fold_ids):
        assert fold == fold_of[e.group_key]
        if e.kind == PROMO_KIND:
            assert fold_of_promo[e.promo[0]] == fold


def test_large_training_sets_deal_groups_to_folds_by_label(monkeypatch):
    import dataclasses
    from collections import Counter

    from classifier import train as train_module

    # groups of one or two posts with one label, as a text and its variants are
    seen: Counter = Counter()
    examples = []
    for e in tiny_examples():
        seen[e.label] += 1
        examples.append(dataclasses.replace(e, group=f"{e.label}{seen[e.label] // 2}"))
    params = TrainParams(folds=3, large_data_posts=10)
    monkeypatch.setattr(train_module, "StratifiedGroupKFold", None)  # the large-data path must not use it
    fold_of = _assign_folds(examples, params)
    assert fold_of == _assign_folds(examples, params)  # seeded
    assert set(fold_of) == {e.group_key for e in examples}
    assert len(fold_of) < len(examples)
    per_label = Counter((e.label, fold_of[e.group_key]) for e in examples)
    biggest_group = max(Counter(e.group_key for e in examples).values())
    for label in {e.label for e in examples}:
        counts = [per_label[label, k] for k in range(3)]
        assert max(counts) - min(counts) <= biggest_group, (label, counts)
    assert fold_of != _assign_folds(examples, TrainParams(folds=3, large_data_posts=10, seed=1))


def test_insert_sentence_keeps_host_text():
    import random

    body = "First sentence here. Second sentence follows. Third one ends."
    for seed in range(20):
        out = insert_sentence(body, "Visit Promo official website.", random.Random(seed))
        assert "Visit Promo official website." in out
        for word in ("First", "Second", "Third"):
            assert word in out


def test_augmentations_are_labelled_and_grouped_with_their_host():
    import random

    examples = tiny_examples()
    inserts = promo_inserts(examples, 0.5, random.Random(0))
    assert inserts and all(e.label == "spam" and e.kind == PROMO_KIND for e in inserts)
    for e in inserts:
        assert e.promo[0] in e.post.body
        assert e.group_key == e.post.id.split("~")[0]
    moved = wrong_categories(examples, ["3D Segmentation", "Cell Tracking", "Fiji / ImageJ"], 0.5, random.Random(0))
    originals = {e.post.id: e for e in examples}
    for e in moved:
        assert e.label == "off_topic" and e.kind == CATEGORY_KIND
        assert e.post.category != originals[e.group_key].post.category
        assert e.post.body == originals[e.group_key].post.body


def test_worker_processes_do_not_change_the_model(monkeypatch):
    from classifier import train as train_module

    one = train_model(tiny_examples(), TrainParams(folds=3, min_df=1, seed=2), jobs=1)
    monkeypatch.setattr(train_module, "_TOKENISE_CHUNK", 5)  # vocabularies of many chunks merged
    two = train_model(tiny_examples(), TrainParams(folds=3, min_df=1, seed=2), jobs=2)
    np.testing.assert_array_equal(one.model.weights_, two.model.weights_)
    np.testing.assert_array_equal(one.oof, two.oof)
    assert one.model.vectorizer.vocabulary_ == two.model.vectorizer.vocabulary_


def test_count_matrix_is_the_one_countvectorizer_builds():
    from sklearn.feature_extraction.text import CountVectorizer

    from classifier import features
    from classifier.train import _count_matrix, _FlatRows, _packed, _row_store, _rows, _Vocabulary

    docs = [["b", "a", "a", "c:xy"], ["a", "zz"], ["c:xy", "b", "b", "q"], ["only-once"], []]
    vocabulary = _Vocabulary()
    rows = _FlatRows()
    for doc in docs:
        rows.flat.extend(vocabulary.encode(doc))
        rows.lengths.append(len(doc))
    packed = _packed(rows, len(vocabulary.ids))
    store = _row_store([np.diff(packed.indptr)], [packed.indices], [packed.data], len(vocabulary.ids))
    matrix, vectorizer, term_ids = _count_matrix(_rows(store, [2, 0, 1, 3, 4]), list(vocabulary.ids), min_df=2)
    reference = CountVectorizer(analyzer=features.tokens_identity, min_df=2, dtype=np.float64)
    docs = [docs[i] for i in (2, 0, 1, 3, 4)]  # rows are taken in any order
    expected = reference.fit_transform(docs)
    assert [list(vocabulary.ids)[i] for i in term_ids] == sorted(reference.vocabulary_)
    assert vectorizer.vocabulary_ == reference.vocabulary_
    np.testing.assert_array_equal(matrix.toarray(), expected.toarray())
    assert matrix.dtype == np.float64 and _indices_sorted(matrix)
    np.testing.assert_array_equal(vectorizer.transform(docs).toarray(), expected.toarray())


def _indices_sorted(matrix) -> bool:
    return all((np.diff(matrix.indices[a:b]) > 0).all() for a, b in zip(matrix.indptr, matrix.indptr[1:]))


def test_weighted_labels_converge():
    # saga ran into max_iter (3,000 epochs, 10x the time) on this eighth of the corpus with
    # every other post weighted 3, as moderator labels are in retraining
    import dataclasses

    from classifier.dataset import bundled_corpus_dir, load_corpus

    examples = load_corpus([bundled_corpus_dir()]).examples[::8]
    weighted = [dataclasses.replace(e, weight=3.0) if i % 2 else e for i, e in enumerate(examples)]
    result = train_model(weighted, TrainParams(folds=2))
    assert result.model.base.n_iter_.max() < 1000


def test_large_training_sets_use_fewer_folds():
    params = TrainParams(folds=3, min_df=1, large_data_posts=20, large_data_folds=2)
    assert params.folds_for(20) == 3 and params.folds_for(21) == 2
    result = train_model(tiny_examples(), params, jobs=2)  # 32 examples
    assert "2 grouped folds" in result.report["evaluated_on"]
    assert result.report["effective_params"] == {"folds": 2, "tol": params.large_data_tol,
                                                 "sentences_per_post": params.large_data_sentences_per_post}
    # the result does not depend on the worker processes, and the model fits its training posts
    again = train_model(tiny_examples(), params, jobs=1)
    np.testing.assert_array_equal(result.model.weights_, again.model.weights_)
    scored = result.model.score([e.post for e in tiny_examples()], explain=False)
    assert sum(s.label == e.label for s, e in zip(scored, tiny_examples())) >= 28
    assert params.tol_for(21) == params.large_data_tol > params.tol_for(20)
    with pytest.raises(ValueError):
        TrainParams(large_data_folds=1)


def test_out_of_fold_inputs_in_bulk_equal_the_scoring_path():
    import random

    from classifier.train import _combiner_inputs_of, _fit_base, _Fitting, _tokenise_all

    examples = tiny_examples()
    params = TrainParams(folds=3, min_df=1)
    tokenised, store, terms = _tokenise_all(examples, random.Random(0), 6, 1, lambda message: None)
    categories = sorted({e.post.category for e in examples if e.label == "ok" and e.post.category})
    fitting = _Fitting(examples, tokenised, store, terms, categories, params, np.zeros(len(examples), dtype=int), 1e-4)
    model = _fit_base(fitting, np.arange(len(examples)))
    bulk = _combiner_inputs_of(fitting, model, np.arange(len(examples)))
    one_by_one = np.array([model.combiner_inputs(e.post) for e in examples])
    assert np.abs(one_by_one[:, 4]).max() > 0  # the category mismatch input is exercised
    np.testing.assert_allclose(bulk, one_by_one, rtol=1e-9, atol=1e-12)
