"""postsieve's classifier library: score forum posts for spam and off-topic content.

No web framework in here: `service` builds the HTTP layer on top, `classifier.cli` the CLI.
"""
from .artifacts import load_active, load_model, save_model
from .dataset import Corpus, Example, load_corpus
from .decision import Thresholds, choose_thresholds, decide
from .errors import (ActivationError, ArtifactError, ArtifactTampered, ArtifactVersionMismatch, ClassifierError,
                     CorpusError, InvalidPost, NotFittedError)
from .evaluate import evaluate
from .model import Model
from .registry import ModelRegistry
from .train import TrainParams, train_model
from .types import DECISIONS, LABELS, Highlight, Post, Reason, Scored

__all__ = [
    "ActivationError", "ArtifactError", "ArtifactTampered", "ArtifactVersionMismatch", "ClassifierError", "Corpus",
    "CorpusError", "DECISIONS", "Example", "Highlight", "InvalidPost", "LABELS", "Model",
    "ModelRegistry", "NotFittedError", "Post", "Reason", "Scored", "Thresholds", "TrainParams",
    "choose_thresholds", "decide", "evaluate", "load_active", "load_corpus", "load_model",
    "save_model", "train_model",
]
