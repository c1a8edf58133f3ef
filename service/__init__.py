"""The HTTP layer: a Flask app built by `create_app`, never at import time."""
from __future__ import annotations

import json

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from classifier.database import Database
from classifier.decision import TrustPolicy
from classifier.feedback import FeedbackStore
from classifier.outages import OutageLog
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


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with keys in the order the code builds them (the output contract's order,
    as the command line writes it) and one compact encoder kept per app (made again if
    `ensure_ascii` or `sort_keys` change): `jsonify` builds a new encoder for every response, a
    sixth of the JSON cost of a classify answer."""

    sort_keys = False

    _encoder: json.JSONEncoder | None = None

    def response(self, *args, **kwargs):
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented, for people reading it
        encoder = self._encoder
        if encoder is None or (encoder.ensure_ascii, encoder.sort_keys) != (self.ensure_ascii, self.sort_keys):
            encoder = self._encoder = json.JSONEncoder(ensure_ascii=self.ensure_ascii, sort_keys=self.sort_keys,
                                                       separators=(",", ":"), default=self.default)
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(f"{encoder.encode(obj)}\n", mimetype=self.mimetype)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, database, model registry, blueprints, JSON errors.

    Under `gunicorn --preload` this runs once in the master: the model's memory and the rate
    limiter's shared buckets are then shared by the forked workers, and the schema is migrated
    once. Each worker opens its own database connections on first use.
    """
    app = Flask(__name__)
    app.json = JSONProvider(app)
    app.test_client_class = ClosingClient  # closes responses as gunicorn does (see api.after_response)
    load_config(app, test_config)
    database = Database(app.config["DATABASE_URL"])
    database.upgrade()
    database.dispose()  # no connection crosses the fork into the workers
    keys = KeyStore(database)
    app.extensions.update({
        "postsieve.database": database,
        "postsieve.feedback": FeedbackStore(database),
        "postsieve.decision_log": DecisionLog(database),
        # A database outage is logged with its cause (the 503 names only its type): once when it
        # starts, a reminder a minute, once when the database answers again.
        "postsieve.keys": KeyCache(keys, ttl=float(app.config["KEY_CACHE_SECONDS"]),
                                   outages=OutageLog("checking an API key", app.logger)),
        "postsieve.ratelimiter": RateLimiter(),
        "postsieve.metrics": Metrics(),
        "postsieve.trust_policy": TrustPolicy(trust_level=app.config["TRUSTED_TRUST_LEVEL"],
                                              reputation=app.config["TRUSTED_REPUTATION"]),
        "postsieve.readyz_database": OutageLog("the database check of /readyz", app.logger),
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
