"""Configuration: defaults, then POSTSIEVE_* environment variables, then the test config.

Every key is declared once in SETTINGS with its help text; docs/configuration.md lists them and a
test keeps the two in step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from classifier import workflow


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS = (
    Setting("MODEL_DIR", None, "Models directory; the active version is served. "
            "Default: <data dir>/models (see POSTSIEVE_DATA_DIR)."),
    Setting("MODEL_CHECK_INTERVAL", 2.0, "Seconds between checks of the models directory's ACTIVE pointer."),
    Setting("MAX_CONTENT_LENGTH", 1024 * 1024, "Largest request body in bytes; larger requests get 413."),
)


def load_config(app, test_config: dict | None = None) -> None:
    """Fill `app.config`: defaults, then POSTSIEVE_* variables, then `test_config`."""
    app.config.from_mapping({s.name: s.default for s in SETTINGS})
    app.config.from_prefixed_env("POSTSIEVE")
    if test_config:
        app.config.update(test_config)
    if not app.config["MODEL_DIR"]:
        app.config["MODEL_DIR"] = str(workflow.models_dir())
