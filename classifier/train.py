"""Fit a Model from labelled examples (no file I/O here: `artifacts` saves, `dataset` reads).

Procedure, all seeded:

1. Assign every source group to one of `folds` stratified folds.
2. Augment inside each fold (`augment`).
3. For each fold, fit the base and category models on the other folds and compute the combiner's
   inputs for the held-out posts: every post gets an out-of-fold score.
4. Fit the combiner on those out-of-fold inputs; its own out-of-fold probabilities give the
   held-out metrics and the decision thresholds.
5. Fit the base and category models on everything; the final model is those plus the combiner.

Tokens are stored once per run as integer counts in one sparse row store (a word's terms are
looked up once per distinct word; a whole post's row is the sum of its part rows: its
segments' and one of its post-level tokens), so memory grows with the posts' distinct
tokens, not with Python objects per token or per row. Workers tokenise chunks of posts, each
on a vocabulary of its own that the parent maps onto the run's once per new term. The fold
fits and the final fit are independent, as are the combiner's: with more than one core they
run in worker processes (forked, so they share the row store).

Above `large_data_posts` examples the run uses `large_data_folds` folds, saga's looser `large_data_tol` and
`large_data_sentences_per_post` random sentence rows per legitimate post: six combiner inputs
need no more out-of-fold rows than two folds give, each fold costs a whole fit, the epochs saga
spends past that tolerance are the cheapest to drop (2e-3 against 1e-3: 20 against 31 epochs
at 100k labels and 21 against 37 at 10k, with the held-out gate metrics within 0.2 points),
and with that many posts two sentences each still teach sentence-level scoring. The gate
judges the candidate either way.
"""
from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from . import augment, features
from .category import CategoryCentroids
from .dataset import Example
from .decision import choose_thresholds
from .evaluate import report_from_probabilities
from .model import COMBINER_FEATURES, Model
from .types import LABELS
from .workers import map_in_workers

Progress = Callable[[str], None]
_CONTACT = ("tld:", "email", "phone")


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters of a training run; stored in the manifest."""

    seed: int = 0
    folds: int = 5
    #: saga's stopping tolerance (scikit-learn's default)
    tol: float = 1e-4
    #: above this many examples, `large_data_folds` folds and `large_data_tol` instead
    large_data_posts: int = 10_000
    large_data_folds: int = 2
    large_data_tol: float = 2e-3
    large_data_sentences_per_post: int = 2
    C: float = 8.0
    category_temperature: float = 20.0
    combiner_C: float = 1.0
    min_df: int = 2
    # measured on third-party data: full-weight sentence rows and six per legitimate post cut
    # honest FOSSEE posts blocked from 0.7 % to 0.4 % at the same ROC-AUC
    sentence_weight: float = 1.0
    sentences_per_post: int = 6
    promo_insert_rate: float = 0.3
    wrong_category_rate: float = 0.15
    block_precision: float = 0.995
    review_recall: float = 0.9
    off_topic_precision: float = 0.8

    def __post_init__(self):
        if self.folds < 2 or self.large_data_folds < 2:
            raise ValueError(f"folds must be >= 2, got {min(self.folds, self.large_data_folds)}")
        for name in ("block_precision", "review_recall", "off_topic_precision"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")

    def to_dict(self) -> dict:
        return asdict(self)

    def is_large(self, n_examples: int) -> bool:
        return n_examples > self.large_data_posts

    def folds_for(self, n_examples: int) -> int:
        return self.large_data_folds if self.is_large(n_examples) else self.folds

    def tol_for(self, n_examples: int) -> float:
        return self.large_data_tol if self.is_large(n_examples) else self.tol

    def sentences_for(self, n_examples: int) -> int:
        return self.large_data_sentences_per_post if self.is_large(n_examples) else self.sentences_per_post


@dataclass
class TrainResult:
    """The fitted model and what was measured on held-out (out-of-fold) data."""

    model: Model
    report: dict
    label_counts: dict = field(default_factory=dict)
    augmented_counts: dict = field(default_factory=dict)
    #: true label of every row the thresholds were chosen on (augmented rows included)
    y: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    #: out-of-fold probabilities of those rows, columns in LABELS order; kept for the report
    #: and for comparing a candidate with the active model on the same footing
    oof: np.ndarray = field(default_factory=lambda: np.zeros((0, len(LABELS))))


class _Vocabulary:
    """Integer ids of every token seen in one training run; a word's terms are encoded once."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self._word_ids: dict[str, list[int]] = {}

    def encode(self, tokens) -> list[int]:
        ids = self.ids
        return [ids.setdefault(t, len(ids)) for t in tokens]

    def word(self, word: str) -> list[int]:
        got = self._word_ids.get(word)
        if got is None:
            got = self._word_ids[word] = self.encode(features.word_terms(word))
        return got


@dataclass
class _Tokenised:
    """Where an example's rows are in the row store; computed once and reused by every fold."""

    whole: int
    sentences: list[tuple[int, str]]  # sentence-level training rows and their labels
    segments: range  # every segment, in order: out-of-fold combiner inputs need them all
    n_words: int


def train_model(examples: list[Example], params: TrainParams = TrainParams(),
                progress: Progress | None = None, jobs: int | None = None) -> TrainResult:
    """Train a Model on labelled examples; see the module docstring for the procedure.

    `jobs` worker processes tokenise and fit the folds, the final model and the combiners
    (default: the usable cores); the result does not depend on it.
    """
    say = progress or (lambda message: None)
    labels_present = {e.label for e in examples}
    missing = [label for label in LABELS if label not in labels_present]
    if missing:
        raise ValueError(f"training needs examples of every label; none for {', '.join(missing)}")
    rng = random.Random(params.seed)
    categories = sorted({e.post.category for e in examples if e.label == "ok" and e.post.category})

    folds = params.folds_for(len(examples))
    fold_of = _assign_folds(examples, params, folds)
    all_examples, fold_ids, augmented = augment_by_fold(examples, fold_of, categories, params, rng, folds)
    say(f"{len(examples)} examples, {sum(augmented.values())} augmented, {folds} folds")

    tokenised, store, terms = _tokenise_all(all_examples, rng, params.sentences_for(len(examples)), jobs, say)
    fitting = _Fitting(all_examples, tokenised, store, terms, categories, params, fold_ids,
                       params.tol_for(len(examples)))

    phi = np.zeros((len(all_examples), len(COMBINER_FEATURES)))
    # The final fit runs beside the folds. Tried at 100k labels: fitting the folds first and
    # starting the final fit from their mean coefficients cut its epochs from ~42 to 25, but
    # left a core idle meanwhile: 170 s against 150 s end to end.
    final = None
    for task, outcome in _final_and_folds(fitting, folds, jobs):
        if task == "final":
            final = outcome
        else:
            test_idx, rows = outcome
            phi[test_idx] = rows
        say(f"fitted {'the final base model' if task == 'final' else f'fold {task + 1}/{folds}'}")

    y = np.array([e.label for e in all_examples])
    say("fitting the combiner and choosing thresholds")
    combining = _Combining(phi, y, np.array([e.weight for e in all_examples]), fold_ids, params)
    oof = np.zeros((len(all_examples), len(LABELS)))
    for task, comb in _final_and_folds(combining, folds, jobs):
        if task == "final":
            combiner = comb
        else:
            oof[fold_ids == task] = _ordered_proba(comb, phi[fold_ids == task])
    thresholds = choose_thresholds(y, oof, block_precision=params.block_precision,
                                   review_recall=params.review_recall,
                                   off_topic_precision=params.off_topic_precision)
    kinds = [e.kind for e in all_examples]
    report = report_from_probabilities(y, oof, thresholds, kinds=kinds)
    report["evaluated_on"] = f"out-of-fold predictions, {folds} grouped folds, augmented rows included"
    # TrainParams holds both the small- and the large-data settings; these are the ones used
    report["effective_params"] = {"folds": folds, "tol": fitting.tol,
                                  "sentences_per_post": params.sentences_for(len(examples))}
    corpus_only = np.array([e.source != "augmented" for e in all_examples])
    report["corpus_only"] = report_from_probabilities(y[corpus_only], oof[corpus_only], thresholds,
                                                      kinds=[k for k, c in zip(kinds, corpus_only) if c])

    model = Model(vectorizer=final.vectorizer, tfidf=final.tfidf, base=final.base,
                  category_model=final.category_model, combiner=combiner, thresholds=thresholds)
    counts = {label: int(sum(1 for e in examples if e.label == label)) for label in LABELS}
    return TrainResult(model=model, report=report, label_counts=counts, augmented_counts=augmented, y=y, oof=oof)


def _final_and_folds(work: Callable, folds: int, jobs: int | None):
    """(task, work(task)) for "final" and each fold, all handed to the workers at once."""
    tasks = ["final", *range(folds)]
    return zip(tasks, map_in_workers(work, tasks, jobs, in_flight=len(tasks)))


def augment_by_fold(examples: list[Example], fold_of: dict[str, int], categories: list[str],
                    params: TrainParams, rng: random.Random, folds: int | None = None
                    ) -> tuple[list[Example], np.ndarray, dict]:
    """Examples plus their augmentations, each with its fold; hosts and donors share a fold."""
    by_fold: dict[int, list[Example]] = defaultdict(list)
    for e in examples:
        by_fold[fold_of[e.group_key]].append(e)
    all_examples: list[Example] = []
    fold_ids: list[int] = []
    augmented: dict[str, int] = defaultdict(int)
    for k in range(folds or params.folds):
        fold_examples = by_fold[k]
        extra = augment.promo_inserts(fold_examples, params.promo_insert_rate, rng)
        extra += augment.wrong_categories(fold_examples, categories, params.wrong_category_rate, rng)
        for e in extra:
            augmented[e.kind] += 1
        all_examples.extend(fold_examples + extra)
        fold_ids.extend([k] * (len(fold_examples) + len(extra)))
    return all_examples, np.array(fold_ids), dict(augmented)


def _assign_folds(examples: list[Example], params: TrainParams, folds: int | None = None) -> dict[str, int]:
    """Fold of every group, stratified by label (a group takes its first example's label)."""
    folds = folds or params.folds
    if params.is_large(len(examples)):
        return _deal_groups(examples, folds, params.seed)
    groups = [e.group_key for e in examples]
    labels = [e.label for e in examples]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    fold_of: dict[str, int] = {}
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(examples)), labels, groups)):
        for i in test:
            fold_of[groups[i]] = k
    return fold_of


def _deal_groups(examples: list[Example], folds: int, seed: int) -> dict[str, int]:
    """Groups in a seeded random order, each to the fold holding the fewest posts of its label.

    StratifiedGroupKFold weighs every fold for every group with numpy calls (5 s for 80k
    groups); with that many groups, most of one or a few posts, dealing balances as well.
    """
    sizes: dict[str, int] = defaultdict(int)
    label_of: dict[str, str] = {}
    for e in examples:
        sizes[e.group_key] += 1
        label_of.setdefault(e.group_key, e.label)
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    held: dict[str, list[int]] = defaultdict(lambda: [0] * folds)
    fold_of: dict[str, int] = {}
    for group in order:
        counts = held[label_of[group]]
        k = counts.index(min(counts))
        counts[k] += sizes[group]
        fold_of[group] = k
    return fold_of


class _Candidates(NamedTuple):
    """An example's rows before any random choice: it has `n_segments` segment rows, then a row
    of its post-level tokens (the whole post's row is built from them all); the segments it
    always contributes as sentence rows, and those a seeded sample is drawn from (`samples`:
    whether one is drawn). A tuple: unpickles 2x faster."""

    n_segments: int
    n_words: int
    always: list[int]
    pool: list[int]
    samples: bool


@dataclass
class _Chunk:
    """The part rows (each example's segments, then its post-level tokens) of a chunk of
    examples as CSR arrays, on the ids of the worker's vocabulary; `new_terms` are the terms
    that vocabulary met first in this chunk, from id `first_new` on (a worker keeps its
    vocabulary across chunks, so the parent maps each term of a worker once, not per chunk)."""

    worker: int
    first_new: int
    new_terms: list[str]
    lengths: np.ndarray
    ids: np.ndarray
    counts: np.ndarray  # uint8 when every count fits: a third less to send
    candidates: list[_Candidates]


@dataclass
class _FlatRows:
    """Rows of token ids, back to back: one list and the rows' lengths (no list per row)."""

    flat: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


@dataclass
class _ChunkTokeniser:
    """Tokenises examples [start, end) on the vocabulary of this process (worker side: no random
    choice happens here, so the work can be split across processes without changing a row)."""

    examples: list[Example]
    vocabulary: _Vocabulary = field(default_factory=_Vocabulary)

    def __call__(self, span: tuple[int, int]) -> _Chunk:
        vocabulary = self.vocabulary
        known = len(vocabulary.ids)
        rows = _FlatRows()
        candidates = [_candidates(e, vocabulary, rows) for e in self.examples[span[0]:span[1]]]
        matrix = _packed(rows, len(vocabulary.ids))
        counts = matrix.data.astype(np.uint8) if matrix.data.max(initial=0) <= 255 else matrix.data
        return _Chunk(os.getpid(), known, list(vocabulary.ids)[known:], np.diff(matrix.indptr).astype(np.int32),
                      matrix.indices.astype(np.int32, copy=False), counts, candidates)


def _packed(rows: _FlatRows, n_terms: int) -> sp.csr_matrix:
    """The rows as an int32 count matrix: each row's distinct ids, ascending, with their counts
    (scipy merges the duplicates: 3x faster than np.unique on the packed keys)."""
    indptr = np.zeros(len(rows.lengths) + 1, dtype=np.int64)
    np.cumsum(rows.lengths, out=indptr[1:])
    flat = np.array(rows.flat, dtype=np.int32)
    matrix = sp.csr_matrix((np.ones(len(flat), dtype=np.int32), flat, indptr),
                           shape=(len(rows.lengths), max(n_terms, 1)))
    matrix.sum_duplicates()
    return matrix


_TOKENISE_CHUNK = 2000


def _tokenise_all(examples: list[Example], rng: random.Random, sentences_per_post: int, jobs: int | None,
                  say: Progress) -> tuple[list[_Tokenised], sp.csr_matrix, list[str]]:
    """Where every example's rows are, the row store (token counts of every row, int32, on one
    vocabulary; chunks are tokenised in worker processes), and the vocabulary's terms.

    The seeded sentence samples are drawn here, in example order, so the rows do not depend on
    how the work was split.
    """
    spans = [(i, min(i + _TOKENISE_CHUNK, len(examples))) for i in range(0, len(examples), _TOKENISE_CHUNK)]
    ids: dict[str, int] = {}
    to_global: dict[int, np.ndarray] = {}  # per worker process: its term ids -> ours
    tokenised: list[_Tokenised] = []
    lengths, row_ids, row_counts = [], [], []
    n_rows = 0
    for chunk in map_in_workers(_ChunkTokeniser(examples), spans, jobs):
        known = to_global.get(chunk.worker, np.zeros(0, dtype=np.int32))
        if len(known) != chunk.first_new:  # map_in_workers yields in order, so a worker's in its order
            raise RuntimeError(f"chunk from worker {chunk.worker} out of order")
        new = np.fromiter((ids.setdefault(t, len(ids)) for t in chunk.new_terms), dtype=np.int32,
                          count=len(chunk.new_terms))
        to_global[chunk.worker] = known = np.concatenate([known, new])
        parts = sp.csr_matrix((chunk.counts.astype(np.int32), known[chunk.ids],
                               np.concatenate([[0], np.cumsum(chunk.lengths, dtype=np.int64)])),
                              shape=(len(chunk.lengths), len(ids)))
        # the whole post's row is the sum of its part rows: one sparse product per chunk
        n_parts = [c.n_segments + 1 for c in chunk.candidates]
        owner = np.repeat(np.arange(len(n_parts)), n_parts)
        summing = sp.csr_matrix((np.ones(len(owner), dtype=np.int32), (owner, np.arange(len(owner)))),
                                shape=(len(n_parts), len(owner)))
        for block in (parts, summing @ parts):
            lengths.append(np.diff(block.indptr))
            row_ids.append(block.indices.astype(np.int32, copy=False))
            row_counts.append(block.data.astype(np.int32, copy=False))
        wholes = n_rows + len(owner)  # rows: this chunk's part rows, then its whole posts
        for j, c in enumerate(chunk.candidates):
            e = examples[len(tokenised)]
            picked = list(c.always)
            if c.samples:
                per_post = sentences_per_post if e.label == "ok" else max(1, sentences_per_post - 1)
                picked += [c.pool[k] for k in rng.sample(range(len(c.pool)), k=min(per_post, len(c.pool)))]
            tokenised.append(_Tokenised(wholes + j, [(n_rows + i, e.label) for i in picked],
                                        range(n_rows, n_rows + c.n_segments), c.n_words))
            n_rows += c.n_segments + 1
        n_rows += len(chunk.candidates)
        say(f"tokenised {len(tokenised)}/{len(examples)}")
    return tokenised, _row_store(lengths, row_ids, row_counts, len(ids)), list(ids)


def _row_store(lengths: list[np.ndarray], ids: list[np.ndarray], counts: list[np.ndarray],
               n_terms: int) -> sp.csr_matrix:
    """One CSR matrix of every row's counts (int32; indices not sorted within rows). Empties
    the lists as it goes: at 100k posts each holds about a gigabyte."""
    n_rows = sum(len(x) for x in lengths)
    nnz = sum(len(x) for x in ids)
    index_dtype = np.int32 if max(nnz, n_terms) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32), out=indptr[1:])
    indices = np.concatenate(ids, dtype=index_dtype) if ids else np.zeros(0, dtype=index_dtype)
    ids.clear()
    data = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int32)
    counts.clear()
    store = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_terms))
    store.has_sorted_indices = False  # ids within a row are in no particular order: _columns sorts them
    return store


def _candidates(example: Example, vocabulary: _Vocabulary, rows: "_FlatRows") -> _Candidates:
    """Append an example's rows to `rows` (each segment, then its post-level tokens: the whole
    post's row is their sum) and say which segments may be sentence rows.

    The ids are those of `features.tokens_from_parts` (the tokens scoring uses), encoded
    without building every word's character n-grams again.
    """
    segs = features.segments(example.post)
    parts = features.segments_parts([s.text for s in segs])
    flat = rows.flat
    for ws, extra in parts:
        start = len(flat)
        for w in ws:
            flat.extend(vocabulary.word(w))
        flat.extend(vocabulary.encode([f"{a} {b}" for a, b in zip(ws, ws[1:])]))
        flat.extend(vocabulary.encode(extra))
        rows.lengths.append(len(flat) - start)
    post_level = vocabulary.encode(features.post_level_tokens(segs, [extra for _, extra in parts]))
    flat.extend(post_level)
    rows.lengths.append(len(post_level))
    n_words = sum(seg.text.count(" ") + 1 for seg in segs)  # as Model._combiner_inputs counts
    always: list[int] = []
    pool: list[int] = []
    if example.kind == augment.CATEGORY_KIND:
        return _Candidates(len(segs), n_words, always, pool, False)
    if example.label == "spam" and example.promo:
        for i, seg in enumerate(segs):
            text = example.post.title if seg.field == "title" else example.post.body
            piece = text[seg.start:seg.end]
            if any(_overlaps(text, p, seg.start, seg.end) or piece in p for p in example.promo):
                always.append(i)
    elif example.label != "spam" and len(segs) > 1:
        # Every sentence that carries a link or a contact is a sentence-level example of its
        # post's label, so a lone link line in an honest answer does not look like a link drop;
        # plus a few random sentences.
        always = [i for i, (ws, extra) in enumerate(parts) if any(t.startswith(_CONTACT) for t in extra)]
        pool = [i for i, s in enumerate(segs) if len(s.text.split()) >= 3 and i not in always]
        return _Candidates(len(segs), n_words, always, pool, True)
    return _Candidates(len(segs), n_words, always, pool, False)


def _overlaps(text: str, promo: str, start: int, end: int) -> bool:
    """True when an occurrence of `promo` in `text` overlaps [start, end)."""
    at = text.find(promo)
    while at != -1:
        if at < end and at + len(promo) > start:
            return True
        at = text.find(promo, at + 1)
    return False


@dataclass
class _Fitting:
    """Everything a fit needs; forked workers inherit it instead of receiving a copy."""

    examples: list[Example]
    tokenised: list[_Tokenised]
    store: sp.csr_matrix  # every row's counts (see _tokenise_all)
    terms: list[str]
    categories: list[str]
    params: TrainParams
    fold_ids: np.ndarray
    tol: float

    def __call__(self, task):
        """'final': the base model on all rows. Fold k: out-of-fold combiner inputs of fold k."""
        if task == "final":
            return _fit_base(self, np.arange(len(self.examples)))
        test_idx = np.flatnonzero(self.fold_ids == task)
        fold_model = _fit_base(self, np.flatnonzero(self.fold_ids != task))
        return test_idx, _combiner_inputs_of(self, fold_model, test_idx)


_INPUTS_CHUNK = 5000


def _combiner_inputs_of(fitting: _Fitting, model: Model, idx) -> np.ndarray:
    """`model.combiner_inputs` of the examples `idx`, from their stored rows: one sparse product
    for thousands of posts instead of tokenising each post again (a test checks they agree)."""
    out = np.zeros((len(idx), len(COMBINER_FEATURES)))
    for at in range(0, len(idx), _INPUTS_CHUNK):
        chunk = idx[at:at + _INPUTS_CHUNK]
        rows: list[int] = []
        ends = []
        for i in chunk:
            rows.extend(fitting.tokenised[i].segments)
            rows.append(fitting.tokenised[i].whole)
            ends.append(len(rows))
        counts = _columns(_rows(fitting.store, rows), model.term_ids_)
        z = np.asarray(model.tfidf.transform(counts, copy=False) @ model.weights_) + model.bias_
        start = 0
        for j, (i, end) in enumerate(zip(chunk, ends)):
            t = fitting.tokenised[i]
            out[at + j] = model.combiner_inputs_from_logits(z[start:end], fitting.examples[i].post.category,
                                                            lambda t=t: t.n_words)[0]
            start = end
    return out


def _fit_base(fitting: _Fitting, idx) -> Model:
    """Fit vectoriser, base and category models on examples `idx`; combiner left empty.

    The count matrix is the one scikit-learn's CountVectorizer (min_df, columns in term order)
    builds from the same tokens, assembled from the stored rows; the fitted vectoriser gets
    that vocabulary, so scoring and the reference path see no difference.
    """
    params = fitting.params
    rows: list[int] = []
    labels, weights, cat_rows = [], [], []
    for i in idx:
        e, t = fitting.examples[i], fitting.tokenised[i]
        if e.kind == augment.CATEGORY_KIND:
            continue  # legitimate text filed elsewhere: only the combiner learns from it
        if e.label == "ok" and e.source != "augmented" and e.post.category in fitting.categories:
            cat_rows.append((len(rows), e.post.category))
        rows.append(t.whole)
        labels.append(e.label)
        weights.append(e.weight)
        for row, label in t.sentences:
            rows.append(row)
            labels.append(label)
            weights.append(e.weight * params.sentence_weight)
    counts, vectorizer, term_ids = _count_matrix(_rows(fitting.store, rows), fitting.terms, params.min_df)
    del rows
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    x = tfidf.transform(counts, copy=False)
    del counts
    # saga: same optimum as lbfgs here, in about half the time on this corpus (2.8 s vs 4.7 s).
    # saga's step size assumes sample weights <= 1: with moderator labels weighted 3 it never
    # converged (3,000 epochs). Dividing the weights by the largest and multiplying C by it
    # is the same objective up to a constant factor, so the same optimum.
    weights = np.asarray(weights, dtype=np.float64)
    scale = float(weights.max())
    base = LogisticRegression(C=params.C * scale, solver="saga", tol=fitting.tol, max_iter=3000,
                              random_state=params.seed).fit(x, labels, sample_weight=weights / scale)
    category_model = None
    if len({c for _, c in cat_rows}) >= 2:
        picked = [r for r, _ in cat_rows]
        category_model = CategoryCentroids(temperature=params.category_temperature).fit(
            x[picked], [c for _, c in cat_rows])
    model = Model(vectorizer=vectorizer, tfidf=tfidf, base=base, category_model=category_model,
                  combiner=None, thresholds=None)
    model.term_ids_ = term_ids  # training only: train_model builds the saved Model afresh
    return model


def _rows(store: sp.csr_matrix, rows) -> sp.csr_matrix:
    return store[np.asarray(rows, dtype=np.int64)]


def _columns(selected: sp.csr_matrix, term_ids: np.ndarray) -> sp.csr_matrix:
    """Counts of rows selected from the row store over the terms `term_ids`, in that column
    order (float64 with sorted indices, as CountVectorizer builds them). One mapping of the
    stored ids and one sort: selecting columns with scipy sorted them twice."""
    column_of = np.full(selected.shape[1], -1, dtype=np.int32)
    column_of[term_ids] = np.arange(len(term_ids), dtype=np.int32)
    columns = column_of[selected.indices]
    dropped = columns < 0
    data = selected.data.astype(np.float64)
    data[dropped] = 0.0  # counts are >= 1: eliminate_zeros removes exactly the dropped terms
    columns[dropped] = 0
    del dropped
    matrix = sp.csr_matrix((data, columns, selected.indptr.copy()), shape=(selected.shape[0], len(term_ids)))
    matrix.eliminate_zeros()  # in place: fewer temporary copies than masking each array
    matrix.sort_indices()
    return matrix


_BINCOUNT_SLICE = 1 << 24


def _count_matrix(selected: sp.csr_matrix, terms: list[str], min_df: int):
    """The counts of rows selected from the row store over the terms in at least `min_df` of
    them, columns in term order, a CountVectorizer fitted to exactly that vocabulary, and the
    term ids of the columns."""
    df = np.zeros(len(terms), dtype=np.int64)
    for at in range(0, len(selected.indices), _BINCOUNT_SLICE):  # bincount copies its input to int64
        df += np.bincount(selected.indices[at:at + _BINCOUNT_SLICE], minlength=len(terms))
    kept = np.asarray(sorted(np.flatnonzero(df >= min_df).tolist(), key=terms.__getitem__), dtype=np.int64)
    if not len(kept):
        raise ValueError(f"no term occurs in {min_df} or more training rows")
    vectorizer = CountVectorizer(analyzer=features.tokens_identity, min_df=min_df, dtype=np.float64)
    vectorizer.vocabulary_ = {terms[i]: column for column, i in enumerate(kept)}
    vectorizer.fixed_vocabulary_ = False
    return _columns(selected, kept), vectorizer, kept


@dataclass
class _Combining:
    """The combiner's inputs; a task fits it on every row ("final") or on all but fold k."""

    phi: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    fold_ids: np.ndarray
    params: TrainParams

    def __call__(self, task) -> LogisticRegression:
        rows = slice(None) if task == "final" else self.fold_ids != task
        # One OpenMP thread: lbfgs's iterates depend on the thread count, so this keeps the
        # result the same in a worker and in this process; and on six features it is faster
        # (at 100k posts 1.0 s against 3.0 s with two threads)
        with threadpool_limits(limits=1):
            return LogisticRegression(C=self.params.combiner_C, max_iter=2000).fit(
                self.phi[rows], self.y[rows], sample_weight=self.weights[rows])


def _ordered_proba(combiner: LogisticRegression, phi) -> np.ndarray:
    order = [list(combiner.classes_).index(label) for label in LABELS]
    return combiner.predict_proba(phi)[:, order]
