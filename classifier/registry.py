"""Hold the active model for a long-running process and swap it when ACTIVE changes.

One small object instead of a global: the web app keeps one in `app.extensions`, a batch job
builds its own. A new model is loaded completely before one reference is swapped under a lock,
so a request that already holds the old model finishes on it, and a broken or tampered artifact
is refused while the current model keeps serving.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from . import artifacts
from .errors import ArtifactError
from .model import Model

#: Seconds before a version that failed to load is tried again (it may have been mid-copy).
RETRY_FAILED_AFTER = 30.0

log = logging.getLogger(__name__)


class ModelRegistry:
    """The active model of one models directory, re-checked at most every `check_interval` s.

    The check happens inside `current()`, so a server needs no thread of its own: under
    `gunicorn --preload` each forked worker holds its own copy of this object, and its first
    request after `check_interval` seconds reads ACTIVE and, if it changed, loads the new
    version completely before answering with it.
    """

    def __init__(self, models_dir: str | Path, *, check_interval: float = 2.0):
        self.models_dir = Path(models_dir)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._name: str | None = None  # the directory name ACTIVE gave for the model held
        self._checked_at = 0.0
        self.last_error: str | None = None
        self._failed: str | None = None
        self._failed_at = 0.0
        self._load_lock = threading.Lock()

    def current(self) -> Model:
        """The model to score with; loads it on first use (raises ArtifactError if there is none)."""
        model = self._model
        if model is None or time.monotonic() - self._checked_at >= self.check_interval:
            self.reload_if_changed()
            model = self._model
        if model is None:
            raise ArtifactError(self.last_error or f"no model in {self.models_dir}")
        return model

    def reload_if_changed(self) -> bool:
        """Load the active version if it differs from the one held; True when swapped.

        The new model is loaded outside the swap lock (hashing and unpickling take about a
        second), so requests keep being served by the current model meanwhile; a second lock
        makes one thread load while the others carry on. A version that failed to load is
        retried only after RETRY_FAILED_AFTER seconds or when ACTIVE changes.
        """
        with self._lock:
            self._checked_at = time.monotonic()
        if not self._load_lock.acquire(blocking=False):
            return False  # another thread is loading; keep serving the current model
        try:
            try:
                wanted = artifacts.active_version(self.models_dir)
            except (ArtifactError, OSError) as exc:
                self.last_error = str(exc)
                return False
            if wanted is None:
                return False
            if self._model is not None and wanted == self._name:
                # ACTIVE names the model held (again, perhaps after pointing at a broken one):
                # nothing to load, and an earlier refusal is no longer news.
                self.last_error, self._failed = None, None
                return False
            if wanted == self._failed and time.monotonic() - self._failed_at < RETRY_FAILED_AFTER:
                return False
            try:
                model = artifacts.load_model(self.models_dir / wanted)
            except Exception as exc:  # any broken artifact is refused; the current model keeps serving
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._failed, self._failed_at = wanted, time.monotonic()
                held = self._model.version if self._model is not None else "none"
                log.warning("refused model %s (still serving %s): %s", wanted, held, self.last_error)
                return False
            with self._lock:
                previous = self._model.version if self._model is not None else None
                self._model, self._name, self.last_error, self._failed = model, wanted, None, None
            if previous is not None:  # a switch while serving: say when each worker took it
                log.info("now serving model %s (was %s)", model.version, previous)
            return True
        finally:
            self._load_lock.release()

    @property
    def loaded(self) -> bool:
        return self._model is not None
