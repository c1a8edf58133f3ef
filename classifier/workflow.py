"""Train-and-save in one call, and the default model trained on first use.

Where things live: `POSTSIEVE_MODEL_DIR` (default: `<data dir>/models`) and
`POSTSIEVE_DATABASE_URL` (default: SQLite file `<data dir>/postsieve.db`), with the data directory
from `POSTSIEVE_DATA_DIR` (default: `$XDG_DATA_HOME/postsieve`, i.e. `~/.local/share/postsieve`).
The default corpus is `POSTSIEVE_CORPUS` (default: the bundled `training_data/`). The environment
is read when these functions are called, never at import.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Iterable

from . import artifacts, database, report, versions
from .errors import ArtifactError, ArtifactVersionMismatch
from .dataset import bundled_corpus_dir, load_corpus
from .model import Model
from .train import Progress, TrainParams, train_model


def data_dir() -> Path:
    """The directory postsieve keeps its models and databases in."""
    if os.environ.get("POSTSIEVE_DATA_DIR"):
        return Path(os.environ["POSTSIEVE_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "postsieve"


def models_dir() -> Path:
    """The models directory (`POSTSIEVE_MODEL_DIR`, else `<data dir>/models`)."""
    if os.environ.get("POSTSIEVE_MODEL_DIR"):
        return Path(os.environ["POSTSIEVE_MODEL_DIR"])
    return data_dir() / "models"


def database_url() -> str:
    """The feedback and key database (`POSTSIEVE_DATABASE_URL`, else `<data dir>/postsieve.db`)."""
    return os.environ.get("POSTSIEVE_DATABASE_URL") or database.default_url(data_dir())


def default_corpus() -> list[Path]:
    """The corpus the default model is trained on: `POSTSIEVE_CORPUS` (paths separated by
    os.pathsep), else the bundled `training_data/`."""
    value = os.environ.get("POSTSIEVE_CORPUS")
    if value:
        return [Path(p) for p in value.split(os.pathsep) if p]
    return [bundled_corpus_dir()]


def train_and_save(corpus_paths: Iterable[str | Path], out_dir: str | Path, *,
                   params: TrainParams = TrainParams(), progress: Progress | None = None,
                   activate: bool = True, extra: dict | None = None) -> Path:
    """Read a corpus, train, save a new version under `out_dir` and (by default) activate it.

    The version directory also gets the out-of-fold scores (heldout.npz) and the training report
    (report.html) built from them, before the version is activated.
    The activation is recorded in the models directory's history (action "train"), so that
    `postsieve models rollback` can return to the version that was active before.
    """
    say = progress or (lambda message: None)
    corpus = load_corpus(corpus_paths)
    say(f"read {len(corpus.examples)} labelled posts from {len(corpus.files)} file(s)")
    repeated = corpus.repeated_texts()
    if repeated:
        shown = "; ".join(" = ".join(group) for group in repeated[:5]) + ("; ..." if len(repeated) > 5 else "")
        say(f"warning: {len(repeated)} text(s) appear more than once ({shown}): copies can land in different "
            "folds and flatter the held-out numbers; remove one, or give them the same group")
    result = train_model(corpus.examples, params, progress=say)
    try:  # the model active when training started is the new version's parent, as for retrain
        parent = artifacts.active_version(out_dir)
    except (ArtifactError, OSError):
        parent = None
    path = artifacts.save_model(
        result.model, out_dir, data_sha256=corpus.sha256, label_counts=result.label_counts,
        metrics=result.report, params=params.to_dict(), parent=parent,
        extra={"augmented_counts": result.augmented_counts, "corpus_files": [Path(f).name for f in corpus.files],
               "created_by": versions.current_user(), **(extra or {})})
    artifacts.save_heldout(path, result.y, result.oof)
    written = report.write_report(path, version=path.name, manifest=artifacts.read_manifest(path),
                                  y_true=result.y, probabilities=result.oof, thresholds=result.model.thresholds)
    say(f"wrote the training report {written}")
    if activate:
        versions.activate(out_dir, path.name, action="train")
    say(f"saved model {path.name} in {out_dir}")
    return path


def ensure_model(directory: str | Path | None = None, *, corpus_paths: Iterable[str | Path] | None = None,
                 progress: Progress | None = None) -> Model:
    """Load the active model, training the default one from `training_data/` if there is none.

    A default model that this function trained earlier is retrained when it can no longer be
    loaded here (a scikit-learn or feature-extraction upgrade); a model someone trained on
    purpose never is: its error is raised. A usable model is loaded without writing anything,
    so a read-only models directory (a container mount) serves; only training takes the file
    lock that makes concurrent first uses (several workers, several commands) train once.
    """
    directory = Path(directory) if directory else models_dir()
    say = progress or (lambda message: None)
    model, missing = _usable_model(directory) if directory.is_dir() else (None, f"no model in {directory}")
    if model is not None:
        return model
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, no permission: one line, not a traceback
        raise ArtifactError(f"cannot use {directory} as the models directory: {database.os_reason(exc)}") from None
    try:
        lock = open(directory / ".train.lock", "w")
    except OSError as exc:  # read-only with nothing usable in it: say what is missing and why
        raise ArtifactError(f"{missing}, and the default model cannot be trained there: "
                            f"{database.os_reason(exc)}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        model, missing = _usable_model(directory)  # another process may have trained it meanwhile
        if model is not None:
            return model
        say(f"{missing}: training the default model from the bundled corpus")
        path = train_and_save(corpus_paths or default_corpus(), directory, progress=progress,
                              extra={"trained_by": "default"})
    return artifacts.load_model(path)


def _usable_model(directory: Path) -> tuple[Model | None, str]:
    """The active model, or None and why the default model has to be (re)trained.

    Raises the load error of a model that was not the default one (someone trained it on purpose).
    """
    version = artifacts.active_version(directory)
    if version is None:
        return None, f"no model in {directory}"
    try:
        return artifacts.load_model(directory / version), ""
    except ArtifactVersionMismatch as exc:
        if artifacts.read_manifest(directory / version).get("trained_by") != "default":
            raise
        return None, str(exc)
