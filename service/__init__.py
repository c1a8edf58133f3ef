"""The HTTP layer: a Flask app built by `create_app`, never at import time."""
from __future__ import annotations

from flask import Flask

from classifier.database import Database
from classifier.decision import TrustPolicy
from classifier.feedback import FeedbackStore
from classifier.registry import ModelRegistry
from classifier.stats import DecisionLog

from . import admin, akismet, api
from .config import load_config
from .errors import register_error_handlers
from .keys import KeyCache, KeyStore
from .metrics import Metrics
from .ratelimit import RateLimiter
from .testing import ClosingClient

__all__ = ["create_app"]


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, database, model registry, blueprints, JSON errors.

    Under `gunicorn --preload` this runs once in the master: the model's memory and the rate
    limiter's shared buckets are then shared by the forked workers, and the schema is migrated
    once. Each worker opens its own database connections on first use.
    """
    app = Flask(__name__)
    app.test_client_class = ClosingClient  # closes responses as gunicorn does (see api.after_response)
    load_config(app, test_config)
    app.json.sort_keys = False
    database = Database(app.config["DATABASE_URL"])
    database.upgrade()
    database.dispose()  # no connection crosses the fork into the workers
    keys = KeyStore(database)
    app.extensions.update({
        "postsieve.database": database,
        "postsieve.feedback": FeedbackStore(database),
        "postsieve.decision_log": DecisionLog(database),
        "postsieve.keys": KeyCache(keys, ttl=float(app.config["KEY_CACHE_SECONDS"])),
        "postsieve.ratelimiter": RateLimiter(),
        "postsieve.metrics": Metrics(),
        "postsieve.trust_policy": TrustPolicy(trust_level=app.config["TRUSTED_TRUST_LEVEL"],
                                              reputation=app.config["TRUSTED_REPUTATION"]),
    })
    registry = ModelRegistry(app.config["MODEL_DIR"], check_interval=float(app.config["MODEL_CHECK_INTERVAL"]))
    # Load now rather than on the first request (see above). A missing or broken model is not
    # fatal here: /readyz says so and the registry keeps checking.
    registry.reload_if_changed()
    app.extensions["postsieve.registry"] = registry
    app.register_blueprint(api.bp)
    app.register_blueprint(akismet.bp)
    app.register_blueprint(admin.bp)
    register_error_handlers(app)
    return app
