"""The fitted model: scores posts and their sentences, explains the scores, decides.

Two stages, both logistic regressions:

1. The *base* model, TF-IDF (word 1-2-grams, character 3-5-grams, link, contact and promotional
   tokens) + multinomial logistic regression over ok / spam / off_topic. It is trained on whole
   posts and on single sentences, so it can score either. A second logistic regression on the
   same vector predicts the category a post belongs in.
2. The *combiner*, a small logistic regression over five numbers per post: the base model's
   spam and off-topic log-odds for the whole post, the highest spam log-odds of any one sentence,
   the number of sentences, and how badly the filed category fits the text. It is fitted on
   out-of-fold base scores, which is what makes its probabilities calibrated, and it is how one
   promotional sentence makes a long legitimate-looking article spam.

Scoring does not go through scikit-learn's transform: it counts each sentence's vocabulary
indices once (words cached per model), derives the post vector from the sentence counts and does
the TF-IDF and dot products in numpy. `reference_logits` keeps the scikit-learn path, and a test
checks that both give the same numbers.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from . import features
from .decision import Thresholds, decide
from .errors import NotFittedError
from .types import LABELS, Highlight, Post, Reason, Scored

OK, SPAM, OFF = 0, 1, 2
#: Names of the combiner's inputs, in order; they appear in reasons.
COMBINER_FEATURES = ("post_spam_logit", "post_off_topic_logit", "best_sentence_spam_logit",
                     "log_sentences", "category_mismatch")
#: A sentence is highlighted when its own spam probability reaches this.
HIGHLIGHT_MIN = 0.5
MAX_HIGHLIGHTS = 3
MAX_REASONS = 10
_WORD_CACHE_LIMIT = 300_000


class Model:
    """A trained postsieve model.

    Built by `train.train_model`; saved and loaded by `artifacts`. Holds the fitted
    scikit-learn parts (for the reference path and for retraining code) and the arrays the fast
    path uses.
    """

    def __init__(self, *, vectorizer, tfidf, base, category_model, combiner, thresholds: Thresholds,
                 version: str = "", metadata: dict | None = None):
        self.vectorizer = vectorizer
        self.tfidf = tfidf
        self.base = base
        self.category_model = category_model
        self.combiner = combiner
        self.thresholds = thresholds
        self.version = version
        self.metadata = dict(metadata or {})
        self._prepare()

    # -- fitted arrays ---------------------------------------------------------------------
    def _prepare(self):
        """Derive the fast path's arrays from the fitted scikit-learn parts."""
        order = [list(self.base.classes_).index(label) for label in LABELS]
        base_w = self.base.coef_[order].T
        base_b = self.base.intercept_[order]
        if self.category_model is not None:
            self.categories = [str(c) for c in self.category_model.classes_]
            cat_w, cat_b = self.category_model.coef_.T, self.category_model.intercept_
        else:
            self.categories = []
            cat_w = np.zeros((base_w.shape[0], 0))
            cat_b = np.zeros(0)
        self.vocabulary_ = self.vectorizer.vocabulary_
        self.idf_ = np.asarray(self.tfidf.idf_, dtype=np.float64)
        self.weights_ = np.ascontiguousarray(np.hstack([base_w, cat_w]), dtype=np.float64)
        self.bias_ = np.concatenate([base_b, cat_b]).astype(np.float64)
        if self.combiner is not None:  # None only while training computes out-of-fold inputs
            comb_order = [list(self.combiner.classes_).index(label) for label in LABELS]
            self.combiner_coef_ = self.combiner.coef_[comb_order].astype(np.float64)
            self.combiner_bias_ = self.combiner.intercept_[comb_order].astype(np.float64)
        self._category_index = {c: i for i, c in enumerate(self.categories)}
        self._feature_names = None
        self._word_cache: dict[str, tuple[int, ...]] = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        for derived in ("vocabulary_", "idf_", "weights_", "bias_", "combiner_coef_", "combiner_bias_",
                        "_category_index", "_feature_names", "_word_cache", "categories"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._prepare()

    @property
    def feature_names(self) -> np.ndarray:
        """Vocabulary terms by column index (built on first use: only explanations need it)."""
        if self._feature_names is None:
            self._feature_names = self.vectorizer.get_feature_names_out()
        return self._feature_names

    # -- public scoring API ----------------------------------------------------------------
    def score(self, posts: Iterable[Post], *, explain: bool = True) -> list[Scored]:
        """Score posts: label, decision, probabilities, highlights and (if `explain`) reasons."""
        return [self.score_one(post, explain=explain) for post in posts]

    def score_one(self, post: Post, *, explain: bool = True) -> Scored:
        """Score one post; see `score`."""
        segs, rows = self._rows(post)
        z = self._logits(rows)
        phi, best = self._combiner_inputs(post, segs, z)
        probs = _softmax(self.combiner_coef_ @ phi + self.combiner_bias_)
        scores = {label: float(p) for label, p in zip(LABELS, probs)}
        label = LABELS[int(np.argmax(probs))]
        highlights = self._highlights(segs, z, label)
        reasons = self._reasons(rows, z, phi, best, int(np.argmax(probs)), post) if explain else ()
        truncated = len(post.title) > features.MAX_FIELD_CHARS or len(post.body) > features.MAX_FIELD_CHARS
        return Scored(id=post.id, label=label, decision=decide(scores, self.thresholds), scores=scores,
                      highlights=highlights, reasons=reasons, model_version=self.version,
                      truncated=truncated)

    def predict_proba(self, posts: Iterable[Post]) -> np.ndarray:
        """Calibrated probabilities, shape (n, 3), columns ok, spam, off_topic."""
        out = []
        for post in posts:
            segs, rows = self._rows(post)
            phi, _ = self._combiner_inputs(post, segs, self._logits(rows))
            out.append(_softmax(self.combiner_coef_ @ phi + self.combiner_bias_))
        return np.array(out).reshape(-1, len(LABELS))

    def combiner_inputs(self, post: Post) -> np.ndarray:
        """The five numbers the combiner sees for one post (used by training and tests)."""
        segs, rows = self._rows(post)
        return self._combiner_inputs(post, segs, self._logits(rows))[0]

    def reference_logits(self, token_lists: Sequence[list[str]]) -> np.ndarray:
        """Base and category logits through scikit-learn's own transform (the slow, trusted path)."""
        x = self.tfidf.transform(self.vectorizer.transform(token_lists))
        return np.asarray(x @ self.weights_) + self.bias_

    def segment_logits(self, post: Post) -> tuple[list[features.Segment], np.ndarray]:
        """Segments of a post and the fast path's logits per row (segments, then the whole post)."""
        segs, rows = self._rows(post)
        return segs, self._logits(rows)

    # -- fast path -------------------------------------------------------------------------
    def _rows(self, post: Post) -> tuple[list[features.Segment], list[dict[int, int]]]:
        """Vocabulary counts per segment and for the whole post (last row)."""
        segs = features.segments(post)
        rows, extras = [], []
        for seg in segs:
            counts, extra = self._segment_counts(seg.text)
            rows.append(counts)
            extras.append(extra)
        whole: dict[int, int] = {}
        for counts in rows:
            for i, c in counts.items():
                whole[i] = whole.get(i, 0) + c
        vocab = self.vocabulary_
        for tok in features.post_level_tokens(segs, extras):
            i = vocab.get(tok)
            if i is not None:
                whole[i] = whole.get(i, 0) + 1
        rows.append(whole)
        return segs, rows

    def _segment_counts(self, text: str) -> tuple[dict[int, int], list[str]]:
        """Count vocabulary indices of one segment; word terms are cached per word."""
        ws, extra = features.segment_parts(text)
        vocab, cache = self.vocabulary_, self._word_cache
        counts: dict[int, int] = {}
        for w in ws:
            idxs = cache.get(w)
            if idxs is None:
                idxs = tuple(i for i in map(vocab.get, features.word_terms(w)) if i is not None)
                if len(cache) < _WORD_CACHE_LIMIT:
                    cache[w] = idxs
            for i in idxs:
                counts[i] = counts.get(i, 0) + 1
        for a, b in zip(ws, ws[1:]):
            i = vocab.get(a + " " + b)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        for tok in extra:
            i = vocab.get(tok)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        return counts, extra

    def _logits(self, rows: list[dict[int, int]]) -> np.ndarray:
        """TF-IDF (sublinear tf, l2 norm) and the linear layer for every row at once."""
        n_rows, width = len(rows), self.weights_.shape[1]
        z = np.tile(self.bias_, (n_rows, 1))
        nonempty = [r for r, counts in enumerate(rows) if counts]
        if not nonempty:
            return z
        idx = np.fromiter((i for r in nonempty for i in rows[r]), dtype=np.int64)
        cnt = np.fromiter((c for r in nonempty for c in rows[r].values()), dtype=np.float64)
        lengths = np.fromiter((len(rows[r]) for r in nonempty), dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        w = (1.0 + np.log(cnt)) * self.idf_[idx]
        norms = np.sqrt(np.add.reduceat(w * w, starts))
        sums = np.add.reduceat(self.weights_[idx] * w[:, None], starts, axis=0)
        z[nonempty] += sums / norms[:, None]
        return z

    def _combiner_inputs(self, post: Post, segs, z: np.ndarray) -> tuple[np.ndarray, int]:
        """The combiner's five inputs, and the row index of the most spam-like segment (-1: none)."""
        whole = z[-1]
        seg_spam = z[:-1, SPAM] - z[:-1, OK]
        if len(seg_spam):
            best = int(np.argmax(seg_spam))
            best_spam = float(seg_spam[best])
        else:
            best, best_spam = -1, float(whole[SPAM] - whole[OK])
        mismatch = 0.0
        ci = self._category_index.get(post.category) if post.category else None
        if ci is not None:
            p = _softmax(whole[3:])
            mismatch = float(1.0 - p[ci] / p.max())
        phi = np.array([whole[SPAM] - whole[OK], whole[OFF] - whole[OK], best_spam,
                        math.log1p(len(segs)), mismatch])
        return phi, best

    def _highlights(self, segs, z: np.ndarray, label: str) -> tuple[Highlight, ...]:
        """Sentences whose own spam probability is high, best first."""
        if not segs:
            return ()
        base = z[:-1, :3]
        p_spam = _softmax_rows(base)[:, SPAM]
        order = np.argsort(-p_spam, kind="stable")
        chosen = [i for i in order[:MAX_HIGHLIGHTS] if p_spam[i] >= HIGHLIGHT_MIN]
        if not chosen and label == "spam":
            chosen = [int(order[0])]
        return tuple(Highlight(segs[i].field, segs[i].start, segs[i].end, float(p_spam[i])) for i in chosen)

    def _reasons(self, rows, z, phi, best: int, label_index: int, post: Post) -> tuple[Reason, ...]:
        """Exact additive contributions to log-odds(label vs reference), biggest first.

        The reference is 'ok' for spam and off_topic, and 'spam' for ok. Summed with the
        intercepts, all contributions (not only the top ones) give that log-odds exactly.
        """
        ref = SPAM if label_index == OK else OK
        alpha = self.combiner_coef_[label_index] - self.combiner_coef_[ref]
        w = self.weights_
        contrib: dict[int, float] = {}
        for r, a_spam, a_off in ((len(rows) - 1, alpha[0], alpha[1]), (best, alpha[2], 0.0)):
            if r < 0 or not rows[r]:
                continue
            idx = np.fromiter(rows[r].keys(), dtype=np.int64)
            cnt = np.fromiter(rows[r].values(), dtype=np.float64)
            x = (1.0 + np.log(cnt)) * self.idf_[idx]
            x /= np.sqrt(np.dot(x, x))
            wi = w[idx]
            coefs = a_spam * (wi[:, SPAM] - wi[:, OK]) + a_off * (wi[:, OFF] - wi[:, OK])
            for i, v in zip(idx.tolist(), (x * coefs).tolist()):
                contrib[i] = contrib.get(i, 0.0) + v
        names = self.feature_names
        items = [(str(names[i]), v) for i, v in contrib.items()]
        items.append(("sentence count", float(alpha[3] * phi[3])))
        if phi[4]:
            items.append((f"category mismatch ({post.category})", float(alpha[4] * phi[4])))
        items.sort(key=lambda kv: -abs(kv[1]))
        return tuple(Reason(name, float(v)) for name, v in items[:MAX_REASONS] if v != 0.0)


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def _softmax_rows(m: np.ndarray) -> np.ndarray:
    e = np.exp(m - m.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def require_fitted(model) -> "Model":
    """Raise NotFittedError unless `model` is a trained Model."""
    if not isinstance(model, Model):
        raise NotFittedError("this model has not been trained; run `postsieve train` first")
    return model
