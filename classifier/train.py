"""Fit a Model from labelled examples (no file I/O here: `artifacts` saves, `dataset` reads).

Procedure, all seeded:

1. Assign every source group to one of `folds` stratified folds.
2. Augment inside each fold (`augment`).
3. For each fold, fit the base and category models on the other folds and compute the combiner's
   inputs for the held-out posts: every post gets an out-of-fold score.
4. Fit the combiner on those out-of-fold inputs; its own out-of-fold probabilities give the
   held-out metrics and the decision thresholds.
5. Fit the base and category models on everything; the final model is those plus the combiner.

Tokens are stored once per run as integer ids (a word's terms are looked up once per distinct
word), so memory grows with the posts' distinct tokens, not with Python strings per token. The
fold fits and the final fit are independent: with more than one core they run in worker
processes (forked, so they share the token arrays). Above `large_data_posts` examples the
run uses `large_data_folds` folds, saga's looser `large_data_tol` and
`large_data_sentences_per_post` random sentence rows per legitimate post: six combiner inputs
need no more out-of-fold rows than two folds give, each fold costs a whole fit, the epochs saga
spends past that tolerance (about half of them: 105 against 44 on 3,000 moderator labels) are
the cheapest to drop, and with that many posts two sentences each still teach sentence-level
scoring. The gate judges the candidate either way.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

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
    large_data_tol: float = 1e-3
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

    def folds_for(self, n_examples: int) -> int:
        return self.large_data_folds if n_examples > self.large_data_posts else self.folds

    def tol_for(self, n_examples: int) -> float:
        return self.large_data_tol if n_examples > self.large_data_posts else self.tol

    def sentences_for(self, n_examples: int) -> int:
        return self.large_data_sentences_per_post if n_examples > self.large_data_posts else self.sentences_per_post


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

    def terms(self) -> list[str]:
        return list(self.ids)  # insertion order is id order


@dataclass
class _Row:
    """One training row as unique token ids and their counts (int32: compact, fork-shared)."""

    ids: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, ids: list[int]) -> "_Row":
        uniq, counts = np.unique(np.asarray(ids, dtype=np.int32), return_counts=True)
        return cls(uniq.astype(np.int32), counts.astype(np.int32))


@dataclass
class _Tokenised:
    """Rows of one example, computed once and reused by every fold."""

    whole: _Row
    sentences: list[tuple[_Row, str]]  # sentence-level training rows and their labels
    segments: list[_Row]  # every segment, in order: out-of-fold combiner inputs need them all
    n_words: int


def train_model(examples: list[Example], params: TrainParams = TrainParams(),
                progress: Progress | None = None, jobs: int | None = None) -> TrainResult:
    """Train a Model on labelled examples; see the module docstring for the procedure.

    `jobs` worker processes tokenise and fit the folds and the final model (default: the
    usable cores); the result does not depend on it.
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

    tokenised, terms = _tokenise_all(all_examples, rng, params.sentences_for(len(examples)), jobs, say)
    fitting = _Fitting(all_examples, tokenised, terms, categories, params, fold_ids, params.tol_for(len(examples)))

    phi = np.zeros((len(all_examples), len(COMBINER_FEATURES)))
    final = None
    # The final fit runs beside the folds. Tried at 100k labels: fitting the folds first and
    # starting the final fit from their mean coefficients cut its epochs from ~42 to 25, but
    # left a core idle meanwhile: 170 s against 150 s end to end.
    tasks = ["final", *range(folds)]
    for task, outcome in zip(tasks, map_in_workers(fitting, tasks, jobs, in_flight=len(tasks))):
        if task == "final":
            final = outcome
        else:
            test_idx, rows = outcome
            phi[test_idx] = rows
        say(f"fitted {'the final base model' if task == 'final' else f'fold {task + 1}/{folds}'}")

    y = np.array([e.label for e in all_examples])
    weights = np.array([e.weight for e in all_examples])
    say("fitting the combiner and choosing thresholds")
    oof = np.zeros((len(all_examples), len(LABELS)))
    for k in range(folds):
        train_idx, test_idx = fold_ids != k, fold_ids == k
        comb = _fit_combiner(phi[train_idx], y[train_idx], weights[train_idx], params)
        oof[test_idx] = _ordered_proba(comb, phi[test_idx])
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

    combiner = _fit_combiner(phi, y, weights, params)
    model = Model(vectorizer=final.vectorizer, tfidf=final.tfidf, base=final.base,
                  category_model=final.category_model, combiner=combiner, thresholds=thresholds)
    counts = {label: int(sum(1 for e in examples if e.label == label)) for label in LABELS}
    return TrainResult(model=model, report=report, label_counts=counts, augmented_counts=augmented, y=y, oof=oof)


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
    groups = [e.group_key for e in examples]
    labels = [e.label for e in examples]
    splitter = StratifiedGroupKFold(n_splits=folds or params.folds, shuffle=True, random_state=params.seed)
    fold_of: dict[str, int] = {}
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(examples)), labels, groups)):
        for i in test:
            fold_of[groups[i]] = k
    return fold_of


@dataclass
class _Candidates:
    """An example's rows before any random choice: the whole post, every segment, the segments
    it always contributes as sentence rows, and those a seeded sample is drawn from
    (`samples`: whether one is drawn)."""

    whole: _Row
    segments: list[_Row]
    n_words: int
    always: list[int]
    pool: list[int]
    samples: bool


@dataclass
class _ChunkTokeniser:
    """Tokenises examples [start, end) with a vocabulary of its own (worker side: no random
    choice happens here, so the work can be split across processes without changing a row)."""

    examples: list[Example]

    def __call__(self, span: tuple[int, int]) -> tuple[list[str], list[_Candidates]]:
        vocabulary = _Vocabulary()
        out = [_candidates(e, vocabulary) for e in self.examples[span[0]:span[1]]]
        return vocabulary.terms(), out


_TOKENISE_CHUNK = 2000


def _tokenise_all(examples: list[Example], rng: random.Random, sentences_per_post: int, jobs: int | None,
                  say: Progress) -> tuple[list[_Tokenised], list[str]]:
    """Rows of every example (chunks over worker processes) on one vocabulary, and its terms.

    The seeded sentence samples are drawn here, in example order, so the rows do not depend on
    how the work was split.
    """
    spans = [(i, min(i + _TOKENISE_CHUNK, len(examples))) for i in range(0, len(examples), _TOKENISE_CHUNK)]
    ids: dict[str, int] = {}
    tokenised: list[_Tokenised] = []
    for terms, candidates in map_in_workers(_ChunkTokeniser(examples), spans, jobs):
        to_global = np.fromiter((ids.setdefault(t, len(ids)) for t in terms), dtype=np.int32, count=len(terms))
        for c in candidates:
            e = examples[len(tokenised)]
            picked = list(c.always)
            if c.samples:
                per_post = sentences_per_post if e.label == "ok" else max(1, sentences_per_post - 1)
                picked += [c.pool[j] for j in rng.sample(range(len(c.pool)), k=min(per_post, len(c.pool)))]
            segments = [_Row(to_global[r.ids], r.counts) for r in c.segments]
            tokenised.append(_Tokenised(_Row(to_global[c.whole.ids], c.whole.counts),
                                        [(segments[i], e.label) for i in picked], segments, c.n_words))
        say(f"tokenised {len(tokenised)}/{len(examples)}")
    return tokenised, list(ids)


def _candidates(example: Example, vocabulary: _Vocabulary) -> _Candidates:
    """Whole-post row and the sentence rows an example may contribute.

    The ids are those of `features.tokens_from_parts` (the tokens scoring uses), encoded
    without building every word's character n-grams again.
    """
    segs = features.segments(example.post)
    parts = features.segments_parts([s.text for s in segs])
    lists: list[list[int]] = []
    for ws, extra in parts:
        ids: list[int] = []
        for w in ws:
            ids.extend(vocabulary.word(w))
        ids.extend(vocabulary.encode([f"{a} {b}" for a, b in zip(ws, ws[1:])]))
        ids.extend(vocabulary.encode(extra))
        lists.append(ids)
    whole = [i for ids in lists for i in ids]
    whole.extend(vocabulary.encode(features.post_level_tokens(segs, [extra for _, extra in parts])))
    segments = [_Row.of(ids) for ids in lists]
    n_words = sum(seg.text.count(" ") + 1 for seg in segs)  # as Model._combiner_inputs counts
    candidates = _Candidates(_Row.of(whole), segments, n_words, [], [], False)
    if example.kind == augment.CATEGORY_KIND:
        return candidates
    if example.label == "spam" and example.promo:
        for i, seg in enumerate(segs):
            text = example.post.title if seg.field == "title" else example.post.body
            piece = text[seg.start:seg.end]
            if any(_overlaps(text, p, seg.start, seg.end) or piece in p for p in example.promo):
                candidates.always.append(i)
    elif example.label != "spam" and len(segs) > 1:
        # Every sentence that carries a link or a contact is a sentence-level example of its
        # post's label, so a lone link line in an honest answer does not look like a link drop;
        # plus a few random sentences.
        with_links = [i for i, (ws, extra) in enumerate(parts) if any(t.startswith(_CONTACT) for t in extra)]
        candidates.always.extend(with_links)
        candidates.pool.extend(i for i, s in enumerate(segs) if len(s.text.split()) >= 3 and i not in with_links)
        candidates.samples = True
    return candidates


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
        rows: list[_Row] = []
        ends = []
        for i in chunk:
            rows.extend(fitting.tokenised[i].segments)
            rows.append(fitting.tokenised[i].whole)
            ends.append(len(rows))
        counts = _rows_matrix(rows, len(fitting.terms))[:, model.term_ids_]
        z = np.asarray(model.tfidf.transform(counts) @ model.weights_) + model.bias_
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
    rows: list[_Row] = []
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
    counts, vectorizer, term_ids = _count_matrix(rows, fitting.terms, params.min_df)
    del rows
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    x = tfidf.transform(counts)
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


def _rows_matrix(rows: list[_Row], n_terms: int) -> sp.csr_matrix:
    """Counts of the rows over every term id (float64, as CountVectorizer counts)."""
    lengths = np.fromiter((len(r.ids) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate([r.ids for r in rows]) if rows else np.zeros(0, dtype=np.int32)
    data = np.concatenate([r.counts for r in rows]).astype(np.float64) if rows else np.zeros(0)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_terms))
    matrix.sort_indices()  # rows hold their ids in the order the vocabulary met them
    return matrix


def _count_matrix(rows: list[_Row], terms: list[str], min_df: int):
    """Counts of the rows over the terms in at least `min_df` rows, columns in term order, a
    CountVectorizer fitted to exactly that vocabulary, and the term ids of the columns."""
    matrix = _rows_matrix(rows, len(terms))
    df = np.bincount(matrix.indices, minlength=len(terms))
    kept = sorted(np.flatnonzero(df >= min_df).tolist(), key=terms.__getitem__)
    if not kept:
        raise ValueError(f"no term occurs in {min_df} or more training rows")
    matrix = matrix[:, np.asarray(kept, dtype=np.int64)].tocsr()
    matrix.sort_indices()
    vectorizer = CountVectorizer(analyzer=features.tokens_identity, min_df=min_df, dtype=np.float64)
    vectorizer.vocabulary_ = {terms[i]: column for column, i in enumerate(kept)}
    vectorizer.fixed_vocabulary_ = False
    return matrix, vectorizer, np.asarray(kept, dtype=np.int64)


def _fit_combiner(phi, y, weights, params: TrainParams) -> LogisticRegression:
    return LogisticRegression(C=params.combiner_C, max_iter=2000).fit(phi, y, sample_weight=weights)


def _ordered_proba(combiner: LogisticRegression, phi) -> np.ndarray:
    order = [list(combiner.classes_).index(label) for label in LABELS]
    return combiner.predict_proba(phi)[:, order]
