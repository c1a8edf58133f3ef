"""Retrain from the bundled corpus plus the forum's own moderator labels, behind the gate.

    corpus + feedback store --dedupe--> training labels + held-out labels
        --train--> candidate (saved, not active) --gate vs active on held-out-->
        promoted (ACTIVE points at it) or kept inactive with the reasons

Deduplication: a post is one (source, id) in the feedback store and its newest label wins
there; across sources and against the corpus, posts with the same normalised title and body
are one post, and a moderator's label beats the corpus's. Held-out labels are the newest
`holdout_fraction` of the feedback when the labels carry distinct times (what the model will
face next), else a seeded grouped split. Moderator labels weigh `feedback_weight` times a
corpus post (default 3): the forum knows its own spam and its own topic best.
"""
from __future__ import annotations

import fcntl
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import artifacts, report, versions
from .dataset import Example, load_corpus
from .errors import ArtifactError, ClassifierError
from .feedback import FeedbackStore, StoredLabel
from .gate import GateMargins, compare, heldout_metrics, margins_dict
from .model import Model
from .text import normalise
from .train import TrainParams, train_model
from .types import LABELS
from .workers import map_in_workers

Progress = Callable[[str], None]


class RetrainBusy(ClassifierError):
    """Another retraining run holds the models directory's lock."""


@dataclass(frozen=True)
class RetrainOptions:
    feedback_weight: float = 3.0
    holdout_fraction: float = 0.2
    margins: GateMargins = GateMargins()
    force: bool = False
    promote: bool = True
    params: TrainParams = TrainParams()
    requested_by: str | None = None
    #: above this many labels the report's backtest covers the held-out ones only (re-scoring
    #: 100,000 posts with two models took 47 s of a 240 s run); `postsieve backtest` covers all
    report_backtest_labels: int = 20_000

    def __post_init__(self):
        if self.feedback_weight <= 0:
            raise ValueError(f"feedback_weight must be > 0, got {self.feedback_weight}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be within (0, 1), got {self.holdout_fraction}")


@dataclass
class TrainingSet:
    examples: list[Example]
    heldout: list[StoredLabel]
    counts: dict = field(default_factory=dict)
    data_sha256: str = ""
    split: str = ""
    corpus_files: list[str] = field(default_factory=list)  # the corpus's file names (beside the labels)


@dataclass
class RetrainResult:
    version: str
    path: Path
    parent: str | None
    gate: dict
    promoted: bool
    training: dict
    backtest: dict | None = None

    def to_dict(self) -> dict:
        return {"version": self.version, "parent": self.parent, "promoted": self.promoted, "gate": self.gate,
                "training": self.training, "backtest": self.backtest}


def content_key(title: str, body: str) -> str:
    """Posts that normalise to the same text are one post, whatever their ids."""
    return hashlib.sha256(normalise(f"{title}\n{body}").casefold().encode("utf-8", "surrogatepass")).hexdigest()


def split_feedback(labels: list[StoredLabel], fraction: float, seed: int,
                   key_of: Callable[[StoredLabel], str] | None = None) -> tuple[list, list, str]:
    """(train, held-out, how): newest `fraction` by time when times differ, else a seeded grouped
    split (`key_of`: a label's content key, when already computed)."""
    if len(labels) < 2:
        return labels, [], "too few labels to hold any out"
    ordered = sorted(labels, key=lambda x: (x.created_at, x.row_id))
    n_out = max(1, round(len(ordered) * fraction))
    cut = ordered[-n_out].created_at
    if ordered[0].created_at < cut:
        train = [x for x in ordered if x.created_at < cut]
        held = [x for x in ordered if x.created_at >= cut]
        return train, held, f"time-based: labels from {cut.isoformat(timespec='seconds')} on held out"
    key_of = key_of or (lambda x: content_key(x.post.title, x.post.body))
    rng = random.Random(seed)
    keys = sorted({key_of(x) for x in labels})
    held_keys = set(rng.sample(keys, k=max(1, round(len(keys) * fraction))))
    held = [x for x in labels if key_of(x) in held_keys]
    train = [x for x in labels if key_of(x) not in held_keys]
    return train, held, "grouped: a seeded random share of distinct posts held out (labels carry no distinct times)"


def build_training_set(corpus_paths: Iterable[str | Path], labels: Iterable[StoredLabel],
                       options: RetrainOptions) -> TrainingSet:
    """Corpus plus deduplicated feedback, with the held-out labels set aside."""
    corpus = load_corpus(corpus_paths)
    labels = list(labels)
    n_labels = len(labels)
    # normalising a post is the costly part (6 s of 100k labels when it was done per use)
    key_by_label = {id(x): content_key(x.post.title, x.post.body) for x in labels}

    def key_of(item: StoredLabel) -> str:
        return key_by_label[id(item)]

    newest_by_content: dict[str, StoredLabel] = {}
    for item in sorted(labels, key=lambda x: (x.created_at, x.row_id)):
        newest_by_content[key_of(item)] = item  # the latest label wins
    feedback = list(newest_by_content.values())
    train_fb, heldout, how = split_feedback(feedback, options.holdout_fraction, options.params.seed, key_of)
    examples = [e for e in corpus.examples
                if content_key(e.post.title, e.post.body) not in newest_by_content]
    replaced = len(corpus.examples) - len(examples)
    for item in train_fb:
        key = key_of(item)
        examples.append(Example(post=item.post, label=item.label, kind="feedback", group="fb:" + key[:16],
                                weight=options.feedback_weight, source="feedback"))
    digest = hashlib.sha256(corpus.sha256.encode())
    for item in sorted(feedback, key=lambda x: (x.source, str(x.post.id))):
        digest.update(f"\x1e{item.source}\x1f{item.post.id}\x1f{item.label}\x1f".encode("utf-8", "surrogatepass"))
        digest.update(key_of(item).encode())
    counts = {
        "corpus": corpus.label_counts(),
        "corpus_replaced_by_feedback": replaced,
        "feedback_train": {label: sum(1 for x in train_fb if x.label == label) for label in LABELS},
        "feedback_heldout": {label: sum(1 for x in heldout if x.label == label) for label in LABELS},
        "feedback_same_text_merged": n_labels - len(feedback),
    }
    return TrainingSet(examples, heldout, counts, digest.hexdigest(), how, [Path(f).name for f in corpus.files])


def backtest(candidate: Model, against: Model, labels: Iterable[StoredLabel], *, limit: int | None = None,
             scored: "list[Rescored] | None" = None) -> dict:
    """Re-score labelled posts with both models; the decisions that would change, and counts per change.

    `scored`: both models' `rescore` of these labels' posts (candidate first), if done already.
    """
    items = list(labels)
    new, old = scored or rescore([candidate, against], [x.post for x in items])
    counts: dict[str, int] = {}
    changes = []
    for item, a, b in zip(items, old.decisions, new.decisions):
        if a != b:
            kind = f"{a}->{b}"
            counts[kind] = counts.get(kind, 0) + 1
            changes.append({"source": item.source, "id": item.post.id, "old": a, "new": b, "label": item.label})
    return {"candidate": candidate.version, "against": against.version, "scored": len(items), "counts": counts,
            "changes": changes if limit is None else changes[:limit]}


@dataclass
class Rescored:
    """One model's probabilities (n x 3, columns in LABELS order) and decisions of n posts."""

    probabilities: np.ndarray
    decisions: list[str]


_RESCORE_CHUNK = 2000


@dataclass
class _ChunkRescorer:
    """What each worker process holds: the models (inherited at the fork, not copied)."""

    models: list

    def __call__(self, posts) -> list[Rescored]:
        out = []
        for model in self.models:
            scored = model.score(posts, explain=False)
            out.append(Rescored(np.array([[s.scores[label] for label in LABELS] for s in scored]).reshape(-1, 3),
                                [s.decision for s in scored]))
        return out


def rescore(models: list[Model], posts: list, jobs: int | None = None) -> list[Rescored]:
    """Every post scored by every model, in chunks over worker processes (one per core)."""
    chunks = [posts[i:i + _RESCORE_CHUNK] for i in range(0, len(posts), _RESCORE_CHUNK)]
    parts = list(map_in_workers(_ChunkRescorer(models), chunks, jobs))
    return [Rescored(np.concatenate([p[m].probabilities for p in parts]) if parts else np.zeros((0, 3)),
                     [d for p in parts for d in p[m].decisions]) for m in range(len(models))]


def retrain(models_dir: str | Path, store: FeedbackStore, corpus_paths: Iterable[str | Path],
            options: RetrainOptions = RetrainOptions(), progress: Progress | None = None) -> RetrainResult:
    """Train a candidate, gate it against the active model, save it, promote it if it passed."""
    say = progress or (lambda message: None)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / ".retrain.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainBusy(f"another retraining run is using {models_dir}; try again when it ends") from None
        return _retrain_locked(models_dir, store, list(corpus_paths), options, say)


def _retrain_locked(models_dir: Path, store: FeedbackStore, corpus_paths, options: RetrainOptions, say) -> RetrainResult:
    active = _active_or_none(models_dir, say)
    labels = list(store.latest())
    say(f"{len(labels)} moderator labels in the feedback store")
    data = build_training_set(corpus_paths, labels, options)
    say(f"training on {len(data.examples)} posts; {len(data.heldout)} labels held out ({data.split})")
    result = train_model(data.examples, options.params, progress=say)
    candidate = result.model
    held_posts, held_labels = [x.post for x in data.heldout], [x.label for x in data.heldout]
    # One pass scores every label with both models: the held-out ones for the gate, all of
    # them for the backtest. Without an active model only the held-out ones are needed.
    backtested = labels if active and len(labels) <= options.report_backtest_labels else data.heldout
    scope = ("every labelled post" if backtested is labels
             else f"the {len(data.heldout)} held-out labels; run `postsieve backtest` for all {len(labels)}")
    say("scoring " + ("the labels" if backtested is labels else "the held-out labels")
        + " with the candidate" + (" and the active model" if active else ""))
    scored = rescore([candidate, active] if active else [candidate], [x.post for x in backtested])
    row_of = {id(x): i for i, x in enumerate(backtested)}
    held_rows = [row_of[id(x)] for x in data.heldout]  # the held-out labels are items of `labels`

    def metrics_of(model: Model, rescored: Rescored) -> dict:
        return heldout_metrics(model, held_posts, held_labels, probabilities=rescored.probabilities[held_rows])

    gate = compare(metrics_of(candidate, scored[0]), metrics_of(active, scored[1]) if active else None,
                   options.margins)
    gate.update({"split": data.split, "active_version": active.version if active else None,
                 "margins": margins_dict(options.margins)})
    promote = options.promote and (gate["passed"] or options.force)
    gate["forced"] = bool(options.force and not gate["passed"] and options.promote)
    who = options.requested_by or _whoami()
    training = {"counts": data.counts, "feedback_weight": options.feedback_weight,
                "holdout_fraction": options.holdout_fraction}
    path = artifacts.save_model(
        candidate, models_dir, data_sha256=data.data_sha256, label_counts=result.label_counts,
        metrics=result.report, params=options.params.to_dict(), parent=active.version if active else None,
        extra={"trained_by": "retrain", "created_by": who, "gate": gate, "retraining": training,
               "corpus_files": data.corpus_files})
    say(f"saved candidate {path.name}")
    bt = None
    if active:
        bt = backtest(candidate, active, backtested, scored=scored)
        bt["scope"] = scope
    artifacts.save_heldout(path, result.y, result.oof)
    written = report.write_report(path, version=path.name, manifest=artifacts.read_manifest(path), y_true=result.y,
                                  probabilities=result.oof, thresholds=candidate.thresholds, gate=gate, backtest=bt)
    say(f"wrote the training report {written}")
    if promote:
        reason = "retrain: gate passed" if gate["passed"] else "retrain: forced past a failed gate"
        versions.activate(models_dir, path.name, by=who, reason=reason, action="retrain")
        say(f"promoted {path.name}" + (" (forced past a failed gate)" if gate["forced"] else ""))
    else:
        say(f"{path.name} stays inactive: " + ("; ".join(gate["failures"]) or "--no-promote"))
    return RetrainResult(path.name, path, active.version if active else None, gate, promote, training, bt)


def _active_or_none(models_dir: Path, say) -> Model | None:
    try:
        return artifacts.load_active(models_dir)
    except ArtifactError as exc:
        say(f"no usable active model ({exc}); the candidate is compared with nothing")
        return None


def _whoami() -> str:
    return versions.current_user()
