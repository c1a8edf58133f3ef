"""The native JSON API, versioned under /v1, plus health checks."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from classifier.errors import ArtifactError, InvalidPost
from classifier.types import Post

from .errors import APIError

bp = Blueprint("api", __name__)


def registry():
    return current_app.extensions["postsieve.registry"]


def current_model():
    try:
        return registry().current()
    except ArtifactError as exc:
        raise APIError(503, f"no model available: {exc}") from None


def json_body():
    """The request's JSON document, or a 415/400 APIError saying what is wrong."""
    if not request.is_json:
        raise APIError(415, "send Content-Type: application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # a nesting bomb
        data = None
    if data is None:
        raise APIError(400, "the request body is not valid JSON")
    return data


@bp.post("/v1/classify")
def classify():
    """Score one post and return the output contract."""
    data = json_body()
    try:
        post = Post.from_dict(data)
    except InvalidPost as exc:
        raise APIError(400, *str(exc).split("; ")) from None
    return jsonify(current_model().score_one(post).to_dict())


@bp.get("/v1/model")
def model_info():
    """Version, creation time, thresholds, held-out metrics and label counts of the served model."""
    model = current_model()
    manifest = model.metadata
    return jsonify({
        "version": model.version,
        "created": manifest.get("created"),
        "thresholds": model.thresholds.to_dict(),
        "metrics": manifest.get("metrics", {}),
        "label_counts": manifest.get("training_data", {}).get("label_counts", {}),
    })


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz():
    """A model is loaded and can score.

    `last_error` says why the version ACTIVE names was refused (tampered, broken, built with
    other libraries) while this worker keeps serving `model_version`; null when none was.
    """
    try:
        model = registry().current()
    except ArtifactError as exc:
        raise APIError(503, f"not ready: {exc}") from None
    return jsonify({"ok": True, "model_version": model.version, "last_error": registry().last_error})
