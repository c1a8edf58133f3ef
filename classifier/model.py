"""The fitted model: scores posts and their sentences, explains the scores, decides.

Two stages of logistic regression:

1. The *base* model, TF-IDF (word 1-2-grams, character 3-4-grams, link, contact and promotional
   tokens) + multinomial logistic regression over ok / spam / off_topic. It is trained on whole
   posts and on single sentences, so it can score either. A nearest-centroid model on the same
   vector says which category a post belongs in (`category.py`).
2. The *combiner*, a small logistic regression over six numbers per post: the base model's
   spam and off-topic log-odds for the whole post, the highest spam log-odds of any one sentence,
   the number of sentences, how badly the filed category fits the text, and the mean spam
   log-odds of the sentences. It is fitted on
   out-of-fold base scores, which is what makes its probabilities calibrated, and it is how one
   promotional sentence makes a long legitimate-looking article spam.

Scoring does not go through scikit-learn's transform: it counts each sentence's vocabulary
indices once (words cached per model), derives the post vector from the sentence counts and does
the TF-IDF and dot products in one call of the compiled `_fastcount` module, or in numpy where
the package was installed without a C compiler. `reference_logits` keeps the scikit-learn path,
and tests check that all three give the same numbers.
"""
from __future__ import annotations

import math
from array import array
from itertools import starmap
from typing import Callable, Iterable, Sequence

import numpy as np

from . import features
from .compiled import fastcount as _fastcount  # None: the numpy path does the same work
from .decision import Thresholds, decide
from .errors import NotFittedError
from .types import LABELS, Highlight, Post, Reason, Scored

#: True when scoring uses the compiled counting step (GET /v1/model says so).
COMPILED = _fastcount is not None

OK, SPAM, OFF = 0, 1, 2
#: Names of the combiner's inputs, in order; they appear in reasons.
COMBINER_FEATURES = ("post_spam_logit", "post_off_topic_logit", "best_sentence_spam_logit",
                     "log_sentences", "category_mismatch", "mean_sentence_spam_logit")
#: A sentence is highlighted when its own spam probability reaches this.
HIGHLIGHT_MIN = 0.5
MAX_HIGHLIGHTS = 3
MISMATCH_FULL_WORDS = 40
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
        idf = np.asarray(self.tfidf.idf_, dtype=np.float64)
        # scikit-learn's column order, for the reference path
        self.weights_ = np.ascontiguousarray(np.hstack([base_w, cat_w]), dtype=np.float64)
        # The fast path renumbers features from the most to the least frequent (lowest idf
        # first), so the rows it gathers for common terms sit together in the CPU cache, and
        # keeps idf with the three base weights in one table (one gather instead of two).
        order = np.argsort(idf, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        # Indices are stored plus one, so `filter(None, map(vocab.get, tokens))` drops unknown
        # tokens at C speed; the counting (`_Counts.from_entries`, `count_logits`) subtracts it again.
        self.vocabulary_ = {term: int(position[i]) + 1 for term, i in self.vectorizer.vocabulary_.items()}
        self._order = order
        self.table_ = np.ascontiguousarray(np.column_stack([idf[order], self.weights_[order, :3]]))
        self.category_weights_ = np.ascontiguousarray(self.weights_[order, 3:])
        self.bias_ = np.concatenate([base_b, cat_b]).astype(np.float64)
        self.combiner_coef_ = self.combiner_bias_ = None
        if self.combiner is not None:  # None only while training computes out-of-fold inputs
            comb_order = [list(self.combiner.classes_).index(label) for label in LABELS]
            self.combiner_coef_ = self.combiner.coef_[comb_order].astype(np.float64)
            self.combiner_bias_ = self.combiner.intercept_[comb_order].astype(np.float64)
            # Python floats for the per-post arithmetic: the same IEEE operations without numpy calls
            self._combiner_lists = list(zip(self.combiner_coef_.tolist(), self.combiner_bias_.tolist()))
            self._alphas = [[(self.combiner_coef_[a] - self.combiner_coef_[b]).tolist() for b in range(len(LABELS))]
                            for a in range(len(LABELS))]
        self._category_index = {c.strip().casefold(): i for i, c in enumerate(self.categories)}
        self._feature_names = None
        self._term_list = None
        # word -> its id and entries (`_word_entries`); the compiled step's own mapping reads faster
        self._word_cache = _fastcount.WordCache() if _fastcount is not None else {}
        self._pairs: bytes | None = None  # the compiled step's bigram table, built on first use
        self._word_ids: dict[str, int] = {}
        # `_Counts.from_entries` packs (row, vocabulary index + 1) into one int64 key: the index
        # takes the low bits.
        self._row_shift = len(self.vocabulary_).bit_length()

    def __getstate__(self):
        state = self.__dict__.copy()
        for derived in ("vocabulary_", "table_", "weights_", "category_weights_", "bias_", "combiner_coef_",
                        "combiner_bias_", "_combiner_lists", "_alphas", "_order", "_category_index", "_feature_names",
                        "_term_list", "_word_cache", "_pairs", "_word_ids", "_row_shift", "categories"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._prepare()

    @property
    def feature_names(self) -> np.ndarray:
        """Vocabulary terms by the fast path's feature index (built on first use: only reasons need it)."""
        if self._feature_names is None:
            self._feature_names = self.vectorizer.get_feature_names_out()[self._order]
        return self._feature_names

    def _term_names(self) -> list[str]:
        """`feature_names` as a list of str: indexing it gives plain str at list speed."""
        if self._term_list is None:
            self._term_list = self.feature_names.tolist()
        return self._term_list

    # -- public scoring API ----------------------------------------------------------------
    def score(self, posts: Iterable[Post], *, explain: bool = True) -> list[Scored]:
        """Score posts: label, decision, probabilities, highlights and (if `explain`) reasons."""
        return [self.score_one(post, explain=explain) for post in posts]

    def score_one(self, post: Post, *, explain: bool = True) -> Scored:
        """Score one post; see `score`."""
        if self.combiner_coef_ is None:
            raise NotFittedError("this model has no combiner yet: train it with train.train_model")
        segs, counts, rows = self._score_parts(post)
        if isinstance(counts, _CompiledCounts):  # the compiled step does the next three in one call
            phi, best, probs, label_index, marked = self._compiled_combine(post, segs, rows)
            highlights = tuple(Highlight(segs[i].field, segs[i].start, segs[i].end, p) for i, p in marked)
        else:
            phi, best = self._post_phi(post, segs, rows)
            probs = self._probabilities(phi)
            label_index = probs.index(max(probs))
            highlights = self._highlights(segs, rows, LABELS[label_index])
        scores = dict(zip(LABELS, probs))
        reasons = self._reasons(counts, phi, best, label_index, post) if explain else ()
        truncated = len(post.title) > features.MAX_FIELD_CHARS or len(post.body) > features.MAX_FIELD_CHARS
        decision = decide(scores, self.thresholds)
        if truncated and decision == "allow":
            decision = "review"  # the unscored tail could hide anything: a person looks
        return Scored(id=post.id, label=LABELS[label_index], decision=decision,
                      scores=scores, highlights=highlights, reasons=reasons, model_version=self.version,
                      truncated=truncated)

    def predict_proba(self, posts: Iterable[Post]) -> np.ndarray:
        """Calibrated probabilities, shape (n, 3), columns ok, spam, off_topic."""
        if self.combiner_coef_ is None:
            raise NotFittedError("this model has no combiner yet: train it with train.train_model")
        out = []
        for post in posts:
            segs, _, rows = self._score_parts(post)
            out.append(self._probabilities(self._post_phi(post, segs, rows)[0]))
        return np.array(out).reshape(-1, len(LABELS))

    def combiner_inputs(self, post: Post) -> np.ndarray:
        """The six numbers the combiner sees for one post (used by training and tests)."""
        segs, _, rows = self._score_parts(post)
        return np.array(self._post_phi(post, segs, rows)[0])

    def reference_logits(self, token_lists: Sequence[list[str]]) -> np.ndarray:
        """Base and category logits through scikit-learn's own transform (the slow, trusted path)."""
        x = self.tfidf.transform(self.vectorizer.transform(token_lists))
        return np.asarray(x @ self.weights_) + self.bias_

    def segment_logits(self, post: Post, *, compiled: bool = True) -> tuple[list[features.Segment], np.ndarray]:
        """Segments of a post and the fast path's logits per row (segments, then the whole post).

        `compiled=False` takes the numpy path even where the compiled step is built (tests
        compare the two).
        """
        segs, _, rows = self._score_parts(post, compiled=compiled)
        return segs, np.array(rows)

    # -- fast path -------------------------------------------------------------------------
    def _score_parts(self, post: Post, *, compiled: bool = True
                     ) -> tuple[list[features.Segment], "_Counts | _CompiledCounts", list[list[float]]]:
        """Segments, sparse counts (TF-IDF values filled in) and the logits of every row of a
        post (each segment, then the whole post) as lists of floats.

        The compiled step looks the terms up in C (`_entries`' loop) and does in one more call
        what `_Counts.from_entries` and `_logits` do in about thirty numpy calls; in a server,
        where each numpy call meets cold CPU caches, those calls cost a third of scoring. Its
        results stay bytes and lists: `score_one` makes no numpy call at all on this path.
        `compiled=False` takes the numpy path (tests compare the two).
        """
        if compiled and _fastcount is not None:
            segs = features.segments(post)
            parts = features.segments_parts([seg.text for seg in segs])
            entries, lengths = _fastcount.lookup_entries(
                parts, self.vocabulary_, self._pairs or self._pair_table(), self._word_cache, self._word_entries,
                features.post_level_tokens(segs, [extra for _, extra in parts]))
            rows, *arrays = _fastcount.count_logits(entries, lengths, len(segs), self.table_,
                                                    self.category_weights_, self.bias_)
            return segs, _CompiledCounts(*arrays, n_rows=len(segs) + 1), rows
        segs, counts, z = self._numpy_count_logits(post)
        return segs, counts, z.tolist()

    def _numpy_count_logits(self, post: Post) -> tuple[list[features.Segment], "_Counts", np.ndarray]:
        """`_score_parts` in numpy, the logits as an array."""
        segs, entries, lengths, n_seg_entries = self._entries(post)
        counts = _Counts.from_entries(np.frombuffer(entries, dtype=np.int64), lengths, n_seg_entries, len(segs),
                                      self._row_shift)
        return segs, counts, self._logits(counts)

    def _word_entries(self, word: str) -> bytes:
        """The word's id in the bigram table (-1: in no bigram that is a term), then the vocabulary
        index + 1 of its terms (itself, its character n-grams), as packed int64; kept in the word
        cache while it has room."""
        if self._pairs is None and _fastcount is not None:
            self._pair_table()
        packed = array("q", (self._word_ids.get(word, -1),))
        packed.extend(filter(None, map(self.vocabulary_.get, features.word_terms(word))))
        packed = packed.tobytes()
        if len(self._word_cache) < _WORD_CACHE_LIMIT:
            self._word_cache[word] = packed
        return packed

    def _pair_table(self) -> bytes:
        """The compiled step's table of word bigrams that are terms, keyed by the two words' ids.

        Scoring's words hold no space and no ":", so "a b" is a term exactly when the table holds
        (id of a, id of b): it has every term with exactly one space but the character n-grams
        (which start with "c:" and carry spaces of padding). Built once per model (0.1 s), in the master
        before gunicorn forks (service/wsgi.py scores a post at start).
        """
        ids: dict[str, int] = {}
        keys, values = array("Q"), array("q")
        for term, index in self.vocabulary_.items():
            if term.count(" ") == 1 and not term.startswith("c:"):
                first, _, second = term.partition(" ")
                keys.append(ids.setdefault(first, len(ids)) << 32 | ids.setdefault(second, len(ids)))
                values.append(index)
        self._word_ids = ids
        self._word_cache = _fastcount.WordCache()  # entries cached before the ids existed lack them
        self._pairs = _fastcount.pair_table(keys, values)
        return self._pairs

    def _entries(self, post: Post) -> tuple[list[features.Segment], array, array, int]:
        """Segments, and vocabulary index + 1 of every token: each segment's (lengths given), then
        the post-level tokens; and how many belong to segments.

        Python only maps tokens to vocabulary indices (word terms cached per word); the counting
        is left to numpy or the compiled step, which measured 3x faster than counting in dicts.
        """
        segs = features.segments(post)
        vocab, cache = self.vocabulary_, self._word_cache
        # The compiled step's `lookup_entries` does this loop in C (`_score_parts`).
        # Entries go into one int64 array, and a cached word is the packed bytes of its indices:
        # tuples of Python ints sent the CPU to a separate object for every entry, which in a
        # server, where other work has evicted them from the caches between requests, cost
        # more than the counting itself.
        flat = array("q")
        lengths, extras = array("q"), []
        for ws, extra in features.segments_parts([seg.text for seg in segs]):
            before = len(flat)
            for w in ws:
                packed = cache.get(w)
                flat.frombytes(memoryview(self._word_entries(w) if packed is None else packed)[8:])  # past the id
            flat.extend(filter(None, map(vocab.get, map(" ".join, zip(ws, ws[1:])))))
            flat.extend(filter(None, map(vocab.get, extra)))
            lengths.append(len(flat) - before)
            extras.append(extra)
        n_seg_entries = len(flat)
        flat.extend(filter(None, map(vocab.get, features.post_level_tokens(segs, extras))))
        return segs, flat, lengths, n_seg_entries

    def _logits(self, counts: "_Counts") -> np.ndarray:
        """TF-IDF (sublinear tf, l2 norm) and the linear layer for every row at once.

        Columns: ok, spam, off_topic, then one per category. Category columns are computed for
        the whole post (last row) only and are the bare intercepts on sentence rows.
        """
        z = np.empty((counts.n_rows, len(self.bias_)))
        z[:] = self.bias_
        if len(counts.idx) == 0:
            return z
        # np.take gathers rows several times faster than fancy indexing and gives the same array
        t = np.take(self.table_, counts.idx, axis=0)
        w = (1.0 + np.log(counts.cnt)) * t[:, 0]
        starts = counts.starts
        norms = np.sqrt(np.add.reduceat(w * w, starts))
        counts.x = w / np.repeat(norms, counts.lengths)  # kept for reasons
        counts.w = t[:, 1:]
        z[counts.rows[starts], :3] += np.add.reduceat(counts.w * counts.x[:, None], starts, axis=0)
        if counts.rows[-1] == counts.n_rows - 1 and self.category_weights_.shape[1]:
            whole = slice(starts[-1], None)
            z[-1, 3:] += counts.x[whole] @ np.take(self.category_weights_, counts.idx[whole], axis=0)
        return z

    # These work on a handful of numbers per post: plain Python floats are several times
    # cheaper than numpy calls at that size.
    def combiner_inputs_from_logits(self, z: np.ndarray, category: str,
                                    n_words: Callable[[], int]) -> tuple[np.ndarray, int]:
        """The combiner's six inputs from logits rows (each segment, then the whole post; training
        computes them for many posts at once) and the post's word count, asked for only when
        the category is known; and the row index of the most spam-like segment (-1: none)."""
        phi, best = self._combiner_phi(z.tolist(), category, n_words)
        return np.array(phi), best

    def _post_phi(self, post: Post, segs: list[features.Segment], rows: list[list[float]]) -> tuple[list[float], int]:
        """`_combiner_phi` of one post (its word count is only computed when its category is known)."""
        return self._combiner_phi(rows, post.category, lambda: _word_count(segs))

    def _compiled_combine(self, post: Post, segs: list[features.Segment], rows: list[list[float]]):
        """`_fastcount.combine` for one post: (phi, best, probabilities, label index, [(segment,
        spam probability), ...] of the highlights), what `_post_phi`, `_probabilities` and
        `_highlights` give on the numpy path."""
        ci = self._category_column(post.category)
        coverage = _mismatch_coverage(_word_count(segs)) if ci is not None else 0.0
        return _fastcount.combine(rows, -1 if ci is None else ci, coverage, self._combiner_lists,
                                  HIGHLIGHT_MIN, MAX_HIGHLIGHTS)

    def _category_column(self, category: str | None) -> int | None:
        """The filed category's column among the category logits; None when unknown or not given."""
        return self._category_index.get(category.strip().casefold()) if category else None

    def _combiner_phi(self, rows: list[list[float]], category: str,
                      n_words: Callable[[], int]) -> tuple[list[float], int]:
        """`combiner_inputs_from_logits` on logits rows as lists, the six inputs as a list."""
        whole = rows[-1]
        post_spam = whole[SPAM] - whole[OK]
        seg_spam = [r[SPAM] - r[OK] for r in rows[:-1]]
        if seg_spam:
            best_spam = max(seg_spam)
            best = seg_spam.index(best_spam)
            mean_spam = _sum_in_order(seg_spam) / len(seg_spam)
        else:
            best, best_spam, mean_spam = -1, post_spam, post_spam
        mismatch = 0.0
        ci = self._category_column(category)
        if ci is not None:
            cat = whole[3:]
            # P(filed) / max P over categories, from the logits: exp(z_filed - z_max)
            ratio = math.exp(cat[ci] - max(cat))
            # A short reply ("works now, cheers") says too little about where it belongs: the
            # mismatch counts in full only from MISMATCH_FULL_WORDS words on.
            mismatch = (1.0 - ratio) * _mismatch_coverage(n_words())
        phi = [post_spam, whole[OFF] - whole[OK], best_spam, math.log1p(len(rows) - 1), mismatch, mean_spam]
        return phi, best

    def _probabilities(self, phi: list[float]) -> list[float]:
        """The combiner's softmax over ok, spam, off_topic."""
        z = [_sum_in_order(map(float.__mul__, w, phi), b) for w, b in self._combiner_lists]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total = _sum_in_order(e)
        return [v / total for v in e]

    def _highlights(self, segs, rows: list[list[float]], label: str) -> tuple[Highlight, ...]:
        """Sentences whose own spam probability is high, best first (`rows`: logits rows as lists)."""
        if not segs:
            return ()
        p_spam = []
        for row in rows[:-1]:
            ok, spam, off = row[0], row[1], row[2]
            top = max(ok, spam, off)
            e_ok, e_spam, e_off = math.exp(ok - top), math.exp(spam - top), math.exp(off - top)
            p_spam.append(e_spam / (e_ok + e_spam + e_off))
        order = sorted(range(len(p_spam)), key=lambda i: -p_spam[i])
        chosen = [i for i in order[:MAX_HIGHLIGHTS] if p_spam[i] >= HIGHLIGHT_MIN]
        if not chosen and label == "spam":
            chosen = [order[0]]
        return tuple(Highlight(segs[i].field, segs[i].start, segs[i].end, p_spam[i]) for i in chosen)

    def _reasons(self, counts: "_Counts | _CompiledCounts", phi, best: int, label_index: int,
                 post: Post) -> tuple[Reason, ...]:
        """Exact additive contributions to log-odds(label vs reference): positive ones first.

        The reference is 'ok' for spam and off_topic, and 'spam' for ok. Summed with the
        intercepts, all contributions (not only the top ones) give that log-odds exactly.
        """
        ref = SPAM if label_index == OK else OK
        alpha = self._alphas[label_index][ref]
        extras = [("sentence count", alpha[3] * float(phi[3]))]
        if phi[4]:
            extras.append((f"category mismatch ({post.category})", alpha[4] * float(phi[4])))
        if isinstance(counts, _CompiledCounts):  # the compiled step also names and ranks them
            ranked = _fastcount.reason_terms(counts.rows, counts.idx, counts.x, counts.w, counts.n_whole,
                                             counts.n_rows - 1, best, alpha, MAX_REASONS, self._term_names(), extras)
        else:
            ranked = self._reason_terms(counts, alpha, best) + extras
            ranked = [kv for kv in ranked if kv[1] != 0.0]
            ranked.sort(key=lambda kv: (kv[1] <= 0, -abs(kv[1])))
            del ranked[MAX_REASONS:]
        return tuple(starmap(Reason, ranked))

    def _reason_terms(self, counts: "_Counts", alpha: list[float], best: int) -> list[tuple[str, float]]:
        """Candidate terms for reasons and their contributions, numpy path (see `_fastcount.reason_terms`)."""
        whole_row = counts.n_rows - 1
        n_seg_entries = len(counts.idx) - counts.n_whole
        whole_idx, whole_x = counts.idx[n_seg_entries:], counts.x[n_seg_entries:]
        seg_rows, seg_idx, seg_x = counts.rows[:n_seg_entries], counts.idx[:n_seg_entries], counts.x[:n_seg_entries]
        w = counts.w  # base weights of every entry, gathered by _logits
        spam_vs_ok = w[:, SPAM] - w[:, OK]  # once for sentence and whole-post entries
        # whole post: its spam and off-topic logits
        ww = w[n_seg_entries:]
        values = whole_x * (alpha[0] * spam_vs_ok[n_seg_entries:] + alpha[1] * (ww[:, OFF] - ww[:, OK]))
        if n_seg_entries:
            # every sentence: its share of the mean sentence logit; the best one: the max logit
            share = alpha[5] / max(whole_row, 1)
            seg_coef = np.where(seg_rows == best, share + alpha[2], share) if best >= 0 else share
            # every sentence term is also a term of the whole post (the post sums its sentences)
            where = np.searchsorted(whole_idx, seg_idx)
            values += np.bincount(where, weights=seg_x * seg_coef * spam_vs_ok[:n_seg_entries], minlength=len(whole_idx))
        # Moderators read reasons as "why": the strongest evidence for the label comes first,
        # counter-evidence (negative weights) only fills the list when little speaks for it.
        # Equal contributions (a domain's n-grams often share one weight) go by position, so the
        # choice is the same every time and on both paths.
        k = min(MAX_REASONS, len(values))
        candidates = np.argsort(-values, kind="stable")[:k]
        if np.count_nonzero(values[candidates] > 0) < MAX_REASONS:  # counter-evidence may fill the list
            candidates = np.union1d(candidates, np.argsort(values, kind="stable")[:k])
        else:
            candidates = np.sort(candidates)
        return list(zip(self.feature_names[whole_idx[candidates]].tolist(), values[candidates].tolist()))


class _CompiledCounts:
    """What `_fastcount.count_logits` returns for `_reasons`: the sparse rows as packed bytes
    (int64 rows and indices, float64 TF-IDF values, float64 (m, 3) base weights), never turned
    into numpy arrays on the way back into C."""

    __slots__ = ("rows", "idx", "x", "w", "n_whole", "n_rows")

    def __init__(self, rows: bytes, idx: bytes, x: bytes, w: bytes, n_whole: int, *, n_rows: int):
        self.rows, self.idx, self.x, self.w, self.n_whole, self.n_rows = rows, idx, x, w, n_whole, n_rows


class _Counts:
    """Sparse counts of one post: (row, vocabulary index, count), rows sorted, the whole post last.

    `x` (the TF-IDF values) and `w` (the base weights of each entry) are filled by `_logits`
    and reused by `_reasons`.
    """

    __slots__ = ("rows", "idx", "cnt", "n_rows", "n_whole", "starts", "lengths", "x", "w")

    def __init__(self, rows, idx, cnt, n_rows, n_whole, starts, lengths):
        self.rows, self.idx, self.cnt, self.n_rows, self.n_whole = rows, idx, cnt, n_rows, n_whole
        self.starts, self.lengths = starts, lengths
        self.x = _EMPTY_X
        self.w = _EMPTY_W

    @classmethod
    def from_entries(cls, entries: np.ndarray, seg_lengths: list[int], n_seg_entries: int, n_segs: int,
                     shift: int) -> "_Counts":
        """Count the entries of every segment row and of the whole-post row with one sort.

        `entries` holds vocabulary index + 1 of each segment's tokens in segment order
        (`seg_lengths` each, `n_seg_entries` in all), then the post-level tokens. The whole post
        is every entry. Keys are row << shift | entry, so sorting them orders by row, then
        index; a post costs about fifteen numpy calls instead of forty, which on posts of a few
        hundred tokens is most of the counting time.
        """
        seg_tags = np.repeat(np.arange(n_segs, dtype=np.int64) << shift, seg_lengths)
        keys = np.concatenate([entries[:n_seg_entries] | seg_tags, entries | (n_segs << shift)])
        keys.sort()
        bounds = _run_bounds(keys)
        distinct = keys[bounds[:-1]]
        rows = distinct >> shift
        row_bounds = _run_bounds(rows)
        row_lengths = row_bounds[1:] - row_bounds[:-1]
        n_whole = int(row_lengths[-1]) if len(rows) and rows[-1] == n_segs else 0
        return cls(rows=rows, idx=(distinct & ((1 << shift) - 1)) - 1,
                   cnt=(bounds[1:] - bounds[:-1]).astype(np.float64), n_rows=n_segs + 1,
                   n_whole=n_whole, starts=row_bounds[:-1], lengths=row_lengths)


_EMPTY_X = np.zeros(0)
_EMPTY_W = np.zeros((0, 3))
_EMPTY_X.flags.writeable = _EMPTY_W.flags.writeable = False


def _run_bounds(sorted_values: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in a sorted array, then its length (one past the last run).

    Run i is bounds[i]:bounds[i + 1]; np.diff and np.append cost more than the work here.
    """
    n = len(sorted_values)
    change = np.empty(n + 1, dtype=bool)
    change[0] = change[n] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=change[1:n])
    return np.flatnonzero(change)


def _sum_in_order(values: Iterable[float], start: float = 0.0) -> float:
    """Plain left-to-right addition, as `_fastcount.combine` adds. (From Python 3.12, sum() of
    floats compensates rounding errors, and the two paths would differ in the last bits.)"""
    for v in values:
        start += v
    return start


def _mismatch_coverage(n_words: int) -> float:
    """How fully the category mismatch counts: in full only from MISMATCH_FULL_WORDS words on."""
    return min(1.0, n_words / MISMATCH_FULL_WORDS)


def _word_count(segs: list[features.Segment]) -> int:
    """Words of a post as the combiner's category mismatch counts them."""
    return sum(seg.text.count(" ") + 1 for seg in segs)
