"""Describe labelled posts as the model sees them: lengths, readable feature terms, and the terms
that set one label apart from the others. Plain data for notebooks and reports; nothing here
trains or scores.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from . import features
from .text import find_urls
from .types import LABELS, Post

#: The measures `post_lengths` returns, in order.
LENGTH_MEASURES = ("words", "sentences", "links")

# Character n-grams of words ("c:") and of domain parts ("lc:") are most of a post's features
# but unreadable on their own, so `post_terms` leaves them out.
_CHAR_GRAM_PREFIXES = ("c:", "lc:")


def post_lengths(post: Post) -> dict[str, int]:
    """Words, sentences and links in a post's body.

    Words are whitespace-separated (as the data card counts them); sentences are the body's
    segments as `features.segments` cuts them, so a lone link line counts with the sentence
    before it, as the model scores it; links are what `text.find_urls` finds, bare domains included.
    """
    sentences = sum(1 for seg in features.segments(post) if seg.field == "body")
    return {"words": len(post.body.split()), "sentences": sentences, "links": len(find_urls(post.body))}


def post_terms(post: Post) -> list[str]:
    """The post's feature tokens without character n-grams, one entry per occurrence.

    Words, word bigrams, link, contact and promotional tokens (``link:``, ``tld:``, ``email``,
    ``promo:...``) and the post-level tokens (``links:``, ``words:``, ``link_at_end``): the
    vocabulary a reason can name, built by the same code as training's tokens.
    """
    segs = features.segments(post)
    parts = features.segments_parts([seg.text for seg in segs])
    terms: list[str] = []
    for ws, extra in parts:
        # features.expand_words adds each word's character n-grams; bigrams are the same here
        terms.extend(ws)
        terms.extend(f"{a} {b}" for a, b in zip(ws, ws[1:]))
        terms.extend(t for t in extra if not t.startswith(_CHAR_GRAM_PREFIXES))
    terms.extend(features.post_level_tokens(segs, [extra for _, extra in parts]))
    return terms


class TermScore(NamedTuple):
    """A term that marks one label: its z-score and in how many posts of each side it occurs."""

    term: str
    z: float
    posts_in_label: int
    posts_elsewhere: int


def distinctive_terms(term_lists: Sequence[Sequence[str]], labels: Sequence[str], *, top: int = 15,
                      min_posts: int = 5, prior: float = 1000.0) -> dict[str, list[TermScore]]:
    """The terms most typical of each label against all other labels, strongest first.

    Each post counts once per term (presence, so one long post cannot carry a term). The score
    is the log-odds ratio of a term in the label's posts against the rest, smoothed by a
    Dirichlet prior proportional to the term's share of the whole corpus, divided by its
    standard error (the "informative prior" z-score of Monroe, Colaresi and Quinn, 2008). Rare
    terms are pulled towards zero, so a word that occurs in three spam posts does not outrank
    one that occurs in three hundred.

    Parameters
    ----------
    term_lists : one list of terms per post (e.g. from `post_terms`)
    labels : the label of each post
    top : how many terms to return per label
    min_posts : ignore terms found in fewer posts than this
    prior : total weight of the prior, in term occurrences; larger pulls rare terms harder

    Returns
    -------
    dict label -> list of TermScore, labels in LABELS order first, then any others sorted
    """
    labels = np.asarray(labels)
    if len(labels) != len(term_lists):
        raise ValueError(f"term_lists and labels must have the same length, got {len(term_lists)} and {len(labels)}")
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    vectorizer = CountVectorizer(analyzer=features.tokens_identity, binary=True, min_df=min_posts)
    presence = vectorizer.fit_transform(term_lists).tocsr()
    terms = vectorizer.get_feature_names_out()
    total = np.asarray(presence.sum(axis=0), dtype=float).ravel()
    alpha = prior * total / total.sum()
    known = [label for label in LABELS if label in set(labels)]
    out: dict[str, list[TermScore]] = {}
    for label in known + sorted(set(labels) - set(known)):
        inside = np.asarray(presence[labels == label].sum(axis=0), dtype=float).ravel()
        outside = total - inside
        log_odds_in = np.log((inside + alpha) / (inside.sum() + prior - inside - alpha))
        log_odds_out = np.log((outside + alpha) / (outside.sum() + prior - outside - alpha))
        z = (log_odds_in - log_odds_out) / np.sqrt(1.0 / (inside + alpha) + 1.0 / (outside + alpha))
        best = np.argsort(-z, kind="stable")[:top]
        out[str(label)] = [TermScore(str(terms[i]), float(z[i]), int(inside[i]), int(outside[i])) for i in best]
    return out
