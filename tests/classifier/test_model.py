import numpy as np
import pytest

from classifier import LABELS, Post
from classifier.features import post_tokens
from classifier.model import COMBINER_FEATURES

from tests.conftest import tiny_examples

POSTS = [e.post for e in tiny_examples()] + [
    Post("x1", "", ""),
    Post("x2", "Only a title", ""),
    Post("x3", "", "<p>HTML body with <a href='https://github.com/a/b'>a link</a></p><p>Second para.</p>"),
    Post("x4", "Long", " ".join(["word"] * 3000) + ". Visit bestessays.com now."),
]


def test_fast_path_matches_scikit_learn(tiny_model):
    for post in POSTS:
        segs, lists, whole = post_tokens(post)
        fast_segs, fast = tiny_model.segment_logits(post)
        reference = tiny_model.reference_logits(lists + [whole])
        assert [s.text for s in fast_segs] == [s.text for s in segs]
        # base logits for every row; category logits are computed for the whole post only
        np.testing.assert_allclose(fast[:, :3], reference[:, :3], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fast[-1], reference[-1], rtol=1e-9, atol=1e-9)


def test_fast_counts_equal_plain_token_counts(tiny_model):
    """The packed-key counting gives, row by row, exactly the counts of the reference tokens.

    Exact integer equality, not a tolerance: the TF-IDF sums run over these arrays in this
    order, so equal arrays are what keeps scores bit-identical when the counting changes.
    """
    from collections import Counter

    vocab = tiny_model.vocabulary_
    for post in POSTS + [Post("x5", "Call +1 (555) 010-0199", "Mail a@b.com. See www.x.com/p. " * 40)]:
        _, lists, whole = post_tokens(post)
        _, counts, _ = tiny_model._numpy_count_logits(post)
        expected = []
        for row, tokens in enumerate(lists + [whole]):
            found = Counter(vocab[t] - 1 for t in tokens if t in vocab)
            expected.extend((row, i, found[i]) for i in sorted(found))
        got = list(zip(counts.rows.tolist(), counts.idx.tolist(), counts.cnt.tolist()))
        assert got == expected
        assert counts.n_whole == sum(1 for row, _, _ in expected if row == len(lists))
        present = sorted({row for row, _, _ in expected})
        assert counts.rows[counts.starts].tolist() == present
        assert counts.lengths.tolist() == [sum(1 for r, _, _ in expected if r == row) for row in present]


def test_probabilities_sum_to_one_and_contract(tiny_model):
    for scored in tiny_model.score(POSTS):
        assert set(scored.scores) == set(LABELS)
        assert abs(sum(scored.scores.values()) - 1) < 1e-9
        d = scored.to_dict()
        assert list(d) == ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"]
        assert d["label"] == max(d["scores"], key=d["scores"].get)


def test_reasons_are_exact_contributions(tiny_model, monkeypatch):
    """All contributions plus the intercepts give the label's log-odds exactly."""
    import classifier.model as model_module

    monkeypatch.setattr(model_module, "MAX_REASONS", 10**9)
    post = POSTS[18]  # a spam post with two sentences
    scored = tiny_model.score_one(post)
    a = LABELS.index(scored.label)
    r = 1 if a == 0 else 0
    segs, z = tiny_model.segment_logits(post)
    phi = tiny_model.combiner_inputs(post)
    coef, bias = tiny_model.combiner_coef_, tiny_model.combiner_bias_
    target = (coef[a] - coef[r]) @ phi + bias[a] - bias[r]
    alpha = coef[a] - coef[r]
    b = tiny_model.bias_
    assert len(segs) > 1
    # each sentence logit and the post logits carry the base intercepts; the combiner adds its own
    intercepts = (alpha[0] * (b[1] - b[0]) + alpha[1] * (b[2] - b[0]) + alpha[2] * (b[1] - b[0])
                  + alpha[5] * (b[1] - b[0]) + bias[a] - bias[r])
    total = sum(reason.weight for reason in scored.reasons) + intercepts
    assert total == pytest.approx(target, abs=1e-6)


def test_highlight_spans_point_into_the_original_text(tiny_model):
    for post in POSTS:
        for h in tiny_model.score_one(post).highlights:
            text = post.title if h.field == "title" else post.body
            assert 0 <= h.start < h.end <= len(text)
            assert text[h.start:h.end].strip() == text[h.start:h.end]
            assert 0.5 <= h.score <= 1 or tiny_model.score_one(post).label == "spam"


def test_long_posts_are_never_allowed_outright(tiny_model):
    scored = tiny_model.score_one(Post("l", "", "Thanks, lowering the sigma fixed it. " * 1000))
    assert scored.truncated and scored.decision != "allow"


def test_category_matches_case_insensitively(tiny_model):
    # a Fiji question filed under tracking: a real mismatch, whatever the spelling
    body = "My macro runs setAutoThreshold on each file but the results table is empty. " * 4
    idx = COMBINER_FEATURES.index("category_mismatch")
    a = tiny_model.combiner_inputs(Post("c", "Macro", body, "Cell Tracking"))
    b = tiny_model.combiner_inputs(Post("c", "Macro", body, " cell TRACKING "))
    assert a[idx] > 0
    np.testing.assert_array_equal(a, b)
