"""Hold the active model for a long-running process and swap it when ACTIVE changes.

One small object instead of a global: the web app keeps one in `app.extensions`, a batch job
builds its own. A new model is loaded completely before one reference is swapped under a lock,
so a request that already holds the old model finishes on it, and a broken or tampered artifact
is refused while the current model keeps serving.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from . import artifacts
from .errors import ArtifactError
from .model import Model


class ModelRegistry:
    """The active model of one models directory, re-checked at most every `check_interval` s."""

    def __init__(self, models_dir: str | Path, *, check_interval: float = 2.0):
        self.models_dir = Path(models_dir)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._checked_at = 0.0
        self.last_error: str | None = None

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
        """Load the active version if it differs from the one held; True when swapped."""
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                wanted = artifacts.active_version(self.models_dir)
            except OSError as exc:
                self.last_error = str(exc)
                return False
            if wanted is None or (self._model is not None and self._model.version == wanted):
                return False
            try:
                model = artifacts.load_model(self.models_dir / wanted)
            except ArtifactError as exc:
                self.last_error = str(exc)
                return False
            self._model, self.last_error = model, None
            return True

    @property
    def loaded(self) -> bool:
        return self._model is not None
