"""Configuration: defaults, then POSTSIEVE_* environment variables, then the test config.

Every key is declared once in SETTINGS with its help text; docs/configuration.md lists them and a
test keeps the two in step.
"""
from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any

from flask import Config

from classifier import workflow


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    minimum: int = 0  # for numbers: the least value that works
    nullable: bool = False  # null (None) is a value of its own: it turns the rule off
    text: bool = False  # taken from the environment as written, never parsed as JSON


SETTINGS = (
    Setting("MODEL_DIR", None, "Models directory; the active version is served. "
            "Default: <data dir>/models (see POSTSIEVE_DATA_DIR).", text=True),
    Setting("MODEL_CHECK_INTERVAL", 2.0, "Seconds between checks of the models directory's ACTIVE pointer."),
    Setting("MAX_CONTENT_LENGTH", 1024 * 1024, "Largest request body in bytes; larger requests get 413.", minimum=1),
    Setting("DATABASE_URL", None, "Feedback and API-key database: a SQLAlchemy URL such as "
            "postgresql://user@host/db. Default: SQLite file <data dir>/postsieve.db (WAL mode).", text=True),
    Setting("OPEN_CLASSIFY", False, "When true, /v1/classify, /v1/classify/batch and Akismet comment-check "
            "answer without a key. Feedback and admin endpoints always need one."),
    Setting("MAX_BATCH", 1000, "Most posts one /v1/classify/batch request may carry.", minimum=1),
    Setting("TRUSTED_TRUST_LEVEL", 3, "Authors with author.trust_level at or above this are never blocked "
            "outright (at most review). Discourse levels run 0-4. null turns the rule off.", nullable=True),
    Setting("TRUSTED_REPUTATION", 1000, "Authors with author.reputation at or above this are never "
            "blocked outright (at most review). null turns the rule off.", nullable=True),
    Setting("RATE_LIMIT_PER_MINUTE", 600, "Requests a key may make per minute (bursts up to that many) "
            "unless the key has its own rate; 0 means unlimited. Over it: 429 with Retry-After."),
    Setting("KEY_CACHE_SECONDS", 5.0, "Seconds a worker trusts a key check before asking the database "
            "again; a revoked key stops working within this time."),
)

#: POSTSIEVE_* variables that are not app settings: read by the CLI and library, the notebooks,
#: the tests, or set by `serve` for its own server.
OTHER_VARIABLES = frozenset({"DATA_DIR", "CORPUS", "NOTEBOOK_CORPUS", "NOTEBOOK_MODEL_DIR", "TEST_MODEL_DIR",
                             "TEST_POSTGRES_URL", "REQUIRE_COMPILED", "REMOVE_METRICS_DIR"})


def load_config(app, test_config: dict | None = None) -> None:
    """Fill `app.config`: defaults, then POSTSIEVE_* variables, then `test_config`."""
    from_environment(app.config)
    if test_config:
        app.config.update(test_config)
    check_types(app.config)
    if not app.config["MODEL_DIR"]:
        app.config["MODEL_DIR"] = str(workflow.models_dir())
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = workflow.database_url()


def from_environment(config) -> None:
    """Defaults, then the POSTSIEVE_* variables (parsed as JSON where they can be)."""
    config.from_mapping({s.name: s.default for s in SETTINGS})
    config.from_prefixed_env("POSTSIEVE")
    for setting in SETTINGS:
        # A path or URL as written: JSON parsing made POSTSIEVE_MODEL_DIR=123 the number 123,
        # and "true" a bool, where the command line takes the same variable as a directory name.
        if setting.text and f"POSTSIEVE_{setting.name}" in os.environ:
            config[setting.name] = os.environ[f"POSTSIEVE_{setting.name}"]


def check_environment() -> list[str]:
    """Check the POSTSIEVE_* variables as `create_app` will, without building an app: a ValueError
    naming the first variable of the wrong type. `postsieve serve` calls this before it starts
    gunicorn, so a bad value is one line instead of a traceback from gunicorn's master.

    Returns a warning for each POSTSIEVE_* variable that nothing reads: a misspelt setting
    (POSTSIEVE_MAX_BATCHES) would otherwise leave the default in force without a word.
    """
    config = Config(".")
    try:
        from_environment(config)
    except (TypeError, KeyError) as exc:  # POSTSIEVE_A__B=... sets key B inside setting A
        raise ValueError(f"a POSTSIEVE_* variable with '__' in its name sets a key inside a setting "
                         f"that has none: {exc}") from None
    check_types(config)
    return unknown_variable_warnings(os.environ)


def unknown_variable_warnings(environ) -> list[str]:
    """One line per POSTSIEVE_* variable that is neither a setting nor read elsewhere."""
    known = {s.name for s in SETTINGS} | OTHER_VARIABLES
    warnings = []
    for variable in sorted(environ):
        name = variable[len("POSTSIEVE_"):]
        if not variable.startswith("POSTSIEVE_") or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean POSTSIEVE_{close[0]}?)" if close else ""
        warnings.append(f"{variable} is not a postsieve setting and is ignored{hint}")
    return warnings


def check_types(config) -> None:
    """Refuse a setting of the wrong type at startup, naming the variable, instead of failing later.

    Only the settings whose default is None, and the two trust rules (null turns one off), may be
    null: `POSTSIEVE_MAX_CONTENT_LENGTH=null` would lift the body limit without a word. Numbers
    have their least working value: `POSTSIEVE_MAX_BATCH=0` would refuse every batch.
    """
    for setting in SETTINGS:
        value, default = config.get(setting.name), setting.default
        if value is None and (default is None or setting.nullable):
            continue
        if default is None:  # a path or URL, or left unset for the data directory's default
            if isinstance(value, os.PathLike):  # create_app({"MODEL_DIR": tmp_path}) in a test or script
                value = config[setting.name] = os.fspath(value)
            ok, kind = isinstance(value, str), "a string"
        elif isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, (int, float)):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and (isinstance(value, int) or math.isfinite(value))  # Infinity: a revoked key trusted until restart
                  and value >= setting.minimum)
            ok = ok and (isinstance(value, int) or isinstance(default, float))
            kind = ("a finite number" if isinstance(default, float) else "an integer") + f" >= {setting.minimum}"
        else:
            ok, kind = isinstance(value, str), "a string"
        if not ok:
            raise ValueError(f"POSTSIEVE_{setting.name} must be {kind}, got {value!r}")
