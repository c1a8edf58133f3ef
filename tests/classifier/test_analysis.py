from collections import Counter

import pytest

from classifier import Post, features
from classifier.analysis import LENGTH_MEASURES, distinctive_terms, post_lengths, post_terms
from tests.conftest import tiny_examples


def test_post_lengths_counts_words_sentences_and_links():
    post = Post("1", "Drift", "Register the stack first. Then track it.\nGuide: https://imagej.net/plugins/trackmate "
                "and mirror.org/trackmate too.")
    lengths = post_lengths(post)
    assert tuple(lengths) == LENGTH_MEASURES
    assert lengths["words"] == len(post.body.split())
    assert lengths["links"] == 2
    # the title is not a body sentence; the link line is one sentence of its own words
    assert lengths["sentences"] == sum(1 for s in features.segments(post) if s.field == "body") == 3


def test_post_lengths_of_an_empty_body():
    assert post_lengths(Post("1", "Only a title", "")) == {"words": 0, "sentences": 0, "links": 0}


@pytest.mark.parametrize("example", tiny_examples(), ids=lambda e: str(e.post.id))
def test_post_terms_are_the_model_tokens_without_character_ngrams(example):
    whole = features.post_tokens(example.post)[2]
    expected = Counter(t for t in whole if not t.startswith(("c:", "lc:")))
    assert Counter(post_terms(example.post)) == expected


def test_post_terms_are_readable():
    terms = post_terms(Post("1", "", "Buy cheap pills now at medsnow.shop, call 555 0100 toll free."))
    assert {"cheap", "cheap pills", "tld:shop", "link:medsnow.shop", "promo:buy_now", "links:<=1"} <= set(terms)
    assert not [t for t in terms if t.startswith(("c:", "lc:"))]


def test_distinctive_terms_ranks_each_labels_own_terms_first():
    docs = ([["cheap", "pills", "the"]] * 20 + [["nuclei", "stack", "the"]] * 20
            + [["espresso", "the"]] * 10 + [["rare", "cheap"]] * 1)
    labels = ["spam"] * 20 + ["ok"] * 20 + ["off_topic"] * 10 + ["spam"]
    out = distinctive_terms(docs, labels, top=2, min_posts=2)
    assert list(out) == ["ok", "spam", "off_topic"]
    assert {t.term for t in out["spam"]} == {"cheap", "pills"}
    assert {t.term for t in out["ok"]} == {"nuclei", "stack"}
    assert out["off_topic"][0].term == "espresso"
    cheap = next(t for t in out["spam"] if t.term == "cheap")
    assert (cheap.posts_in_label, cheap.posts_elsewhere) == (21, 0)
    assert all(t.z > 0 for terms in out.values() for t in terms)
    # "rare" occurs in one post: below min_posts, never ranked
    assert "rare" not in {t.term for terms in distinctive_terms(docs, labels, min_posts=2).values() for t in terms}


def test_distinctive_terms_a_shared_term_scores_near_zero():
    docs = [["the", "a"]] * 10 + [["the", "b"]] * 10
    out = distinctive_terms(docs, ["ok"] * 10 + ["spam"] * 10, top=3, min_posts=1)
    the = next(t for t in out["ok"] if t.term == "the")
    assert abs(the.z) < 1e-9


def test_distinctive_terms_rejects_mismatched_input():
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        distinctive_terms([["a"], ["b"]], ["ok"])
    with pytest.raises(ValueError, match="prior must be > 0"):
        distinctive_terms([["a"]], ["ok"], prior=0)
