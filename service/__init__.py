"""The HTTP layer: a Flask app built by `create_app`, never at import time."""
from __future__ import annotations

from flask import Flask

from classifier.registry import ModelRegistry

from . import api
from .config import load_config
from .errors import register_error_handlers

__all__ = ["create_app"]


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, the model registry, the API blueprint, JSON errors."""
    app = Flask(__name__)
    load_config(app, test_config)
    app.json.sort_keys = False
    registry = ModelRegistry(app.config["MODEL_DIR"], check_interval=float(app.config["MODEL_CHECK_INTERVAL"]))
    # Load now rather than on the first request: under `gunicorn --preload` this runs once in
    # the master, so the forked workers share the model's memory. A missing or broken model is
    # not fatal here: /readyz says so and the registry keeps checking.
    registry.reload_if_changed()
    app.extensions["postsieve.registry"] = registry
    app.register_blueprint(api.bp)
    register_error_handlers(app)
    return app
