"""The native JSON API, versioned under /v1, plus health checks, metrics and the OpenAPI document."""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from functools import partial
from typing import Callable

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from classifier.errors import ArtifactError, InvalidFeedback, InvalidPost, StoreError
from classifier.feedback import identifier_problem, label_from_dict
from classifier.model import COMPILED
from classifier.stats import overturn_stats
from classifier.types import Post

from .auth import require
from .errors import APIError, body_too_large
from .openapi import openapi_document

bp = Blueprint("api", __name__)

KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: Messages listed for one bad batch, at most.
MAX_BATCH_ERRORS = 20


def ext(name: str):
    return current_app.extensions[f"postsieve.{name}"]


def current_model():
    registry = ext("registry")
    try:
        model = registry.current()
    except ArtifactError as exc:
        raise APIError(503, f"no model available: {exc}") from None
    ext("metrics").serving(model.version, registry.last_error is not None)
    return model


def json_body():
    """The request's JSON document, or a 415/413/400 APIError saying what is wrong."""
    if not request.is_json:
        raise APIError(415, "send Content-Type: application/json")
    body = request_body()
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))  # as json.loads does
    except RecursionError:  # a nesting bomb: perhaps valid JSON, but deeper than the parser goes
        raise APIError(400, "the request body's JSON is nested too deeply") from None
    except NonFiniteNumber as exc:
        raise APIError(400, f"the request body holds {exc}, which JSON has no number for") from None
    except ValueError:  # not JSON or not UTF-8
        raise APIError(400, "the request body is not valid JSON (UTF-8)") from None


class NonFiniteNumber(ValueError):
    """NaN, Infinity or -Infinity in a request body: Python's parser takes them, JSON has none."""


def _refuse_constant(name: str):
    # Taken, they were stored (an author's trust level) and written back out by `feedback export`
    # as JSON that strict parsers refuse.
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: valid JSON, but no double holds it; taken, it became Infinity
        raise NonFiniteNumber(text if len(text) <= 40 else text[:40] + "...")
    return value


# Built once: json.loads given any keyword builds a decoder on every call (1 us more a request).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def request_body() -> bytes:
    """The request body, or a 413 APIError (errors.body_too_large) when it is over MAX_CONTENT_LENGTH.

    A body with a Content-Length is read from the WSGI input for that length (refused unread
    when the length is over the limit). werkzeug's reader starts with a zeroed 64 KiB buffer and
    reads through three stream layers; in a gunicorn worker, where each request meets cold CPU
    caches, that took a tenth of a classify request for a post of 1 KB.

    A body without one (Transfer-Encoding: chunked) is read to its end, at most one byte past
    the limit, where the server marks the input as ending with the body (gunicorn does:
    wsgi.input_terminated). werkzeug's reader stops at the limit without saying so, which cut
    such a body short: a 400 "not valid JSON" instead of the 413. On a server that does not mark
    its input, werkzeug's safe fallback stays: such a body reads as empty.
    """
    length, limit = request.content_length, current_app.config["MAX_CONTENT_LENGTH"]
    if length is not None and limit is not None and length > limit:
        raise body_too_large(limit)
    if "wsgi.input" not in request.environ or (length is None and not request.environ.get("wsgi.input_terminated")):
        return request.get_data(cache=False)
    stream = request.environ["wsgi.input"]
    try:
        if length is None:
            return read_to_end(stream, limit)
        body = stream.read(length) if length else b""
    except APIError:
        raise
    except Exception:  # the client went away mid-body, or sent broken chunks (gunicorn's own errors)
        raise APIError(400, "the request body ended early or is not validly chunked") from None
    if len(body) != length:
        raise APIError(400, f"the body ended after {len(body)} of its {length} bytes (Content-Length)")
    return body


def read_to_end(stream, limit: int | None) -> bytes:
    """Read `stream` to its end, or raise the 413 once it holds more than `limit` bytes."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(65536 if limit is None else min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            raise body_too_large(limit)


def parse_post(record, prefix: str = "") -> Post:
    """A valid post whose id the feedback endpoints would take too, or a 400 naming the problems.

    An id is the key a forum later labels the post by, so one that no label could carry (NUL,
    control characters, lone surrogates, over 200 characters) is refused here as well.
    """
    try:
        post = Post.from_dict(record)
    except InvalidPost as exc:
        raise APIError(400, *(prefix + m for m in str(exc).split("; "))) from None
    problem = identifier_problem("id", str(post.id))
    if problem is not None:
        raise APIError(400, prefix + problem)
    return post


def request_source(given, key) -> str:
    """Which forum a request speaks for: the key's name, so one forum's key can never write over
    another forum's labels. Only an admin key may name another source (a multi-forum host); a
    source it names is a key of stored labels, so one that could not be stored as sent (not a
    string, empty, too long, control characters) is a 400, never cut or cleaned."""
    if key is None:
        return "anonymous"
    if given is None or "admin" not in key.scopes or (isinstance(given, str) and not given.strip()):
        return key.name  # not named (absent, empty or blank): the key's own forum, as before
    if not isinstance(given, str):
        raise APIError(400, f"source must be a string, got {type(given).__name__}")
    if given != given.strip():  # "forum-a " is not "forum-a": stored as sent, it would split the forum's labels
        raise APIError(400, "source must not start or end with spaces")
    problem = identifier_problem("source", given)
    if problem is not None:
        raise APIError(400, problem)
    return given


def after_response(callback: Callable[[], object]) -> None:
    """Run `callback` once the answer has been sent, when the WSGI server closes the response.

    Bookkeeping (metrics, the decision log) then never keeps a forum waiting: under gunicorn
    another worker takes the next request meanwhile. A failing callback is logged, never raised.
    """
    g.setdefault("after_response", []).append(callback)


def score(model, posts: list[Post], source: str) -> list[dict]:
    """Score posts and apply the trusted-author policy; the contract per post. Decisions are
    counted and logged after the response has gone out."""
    extensions = current_app.extensions  # one context look-up, not one per extension
    policy = extensions["postsieve.trust_policy"]
    results = []
    for post, scored in zip(posts, model.score(posts) if len(posts) > 1 else [model.score_one(posts[0])]):
        if post.author:
            decision = policy.apply(scored.decision, post.author)
            if decision != scored.decision:
                scored = replace(scored, decision=decision)
        results.append(scored)
    out = [scored.to_dict() for scored in results]
    after_response(partial(_record_decisions, extensions["postsieve.metrics"], extensions["postsieve.decision_log"],
                           source, results, out))
    return out


def _record_decisions(metrics, decision_log, source: str, results: list, out: list[dict]) -> None:
    for scored in results:
        metrics.observe_scored(scored)
    decision_log.record(source, out)
    metrics.observe_decision_log(decision_log)


@bp.post("/v1/classify")
def classify():
    """Score one post and return the output contract."""
    key = require("classify")
    data = json_body()
    post = parse_post(data)
    return jsonify(score(current_model(), [post], request_source(data.get("source"), key))[0])


@bp.post("/v1/classify/batch")
def classify_batch():
    """Score up to MAX_BATCH posts with one model version; results in the order sent."""
    key = require("classify")
    data = json_body()
    posts = data.get("posts") if isinstance(data, dict) else None
    if not isinstance(posts, list):
        raise APIError(400, "send {\"posts\": [post, ...]}")
    limit = current_app.config["MAX_BATCH"]
    if not posts or len(posts) > limit:
        raise APIError(400, f"posts must hold 1 to {limit} posts, got {len(posts)}")
    parsed, errors = [], []
    for i, record in enumerate(posts):
        try:
            parsed.append(parse_post(record, f"posts[{i}]: "))
        except APIError as exc:
            errors.extend(exc.messages)
    if errors:
        raise APIError(400, *errors[:MAX_BATCH_ERRORS])
    model = current_model()
    return jsonify({"results": score(model, parsed, request_source(data.get("source"), key)), "model_version": model.version})


@bp.post("/v1/feedback")
def feedback():
    """Store a moderator's label durably; the same label sent again changes nothing."""
    key = require("feedback")
    data = json_body()
    try:
        source = request_source(data.get("source") if isinstance(data, dict) else None, key)
        label = label_from_dict({k: v for k, v in data.items() if k != "source"} if isinstance(data, dict) else data,
                                source=source)
        result = ext("feedback").add(label)
    except InvalidFeedback as exc:
        raise APIError(400, *str(exc).split("; ")) from None
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    body = {"ok": True, "id": label.post.id, "source": label.source, "label": label.label,
            "status": result.status, "revision": result.revision}
    return jsonify(body), (200 if result.status == "unchanged" else 201)


@bp.get("/v1/stats")
def stats():
    """Decisions per model version and day, and how many moderators overturned (admin scope)."""
    require("admin")
    try:
        days = int(request.args.get("days", 30))
    except ValueError:
        raise APIError(400, "days must be an integer") from None
    if not 1 <= days <= 3660:
        raise APIError(400, f"days must be within 1 and 3660, got {days}")
    source = request.args.get("source") or None
    problem = None if source is None else identifier_problem("source", source)
    if problem is not None:  # PostgreSQL refuses a NUL in a query as well: that is no outage (503)
        raise APIError(400, problem)
    ext("decision_log").flush()  # this worker's buffered rows; the others write theirs every second
    try:
        rows = overturn_stats(ext("database"), days=days, source=source)
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    return jsonify({"days": days, "rows": rows})


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
        "compiled_scoring": COMPILED,
    })


@bp.get("/healthz")
def healthz():
    """The process is alive."""
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz():
    """A model is loaded and the database answers.

    `last_error` says why the version ACTIVE names was refused (tampered, broken, built with
    other libraries) while this worker keeps serving `model_version`; null when none was.
    """
    try:
        model = ext("registry").current()
    except ArtifactError as exc:
        raise APIError(503, f"not ready: {exc}") from None
    try:
        ext("database").ping()
    except StoreError as exc:
        ext("readyz_database").failed(exc)  # the answer names only the error's type: the log says why
        raise APIError(503, f"not ready: {exc}") from None
    ext("readyz_database").recovered()
    return jsonify({"ok": True, "model_version": model.version, "last_error": ext("registry").last_error})


@bp.get("/metrics")
def metrics():
    """Prometheus text format, summed over all workers."""
    registry, recorder = ext("registry"), ext("metrics")
    try:  # an idle worker reports the version it holds too, not only after its first classify
        recorder.serving(registry.current().version, registry.last_error is not None)
    except ArtifactError:
        pass
    recorder.observe_decision_log(ext("decision_log"))
    body, content_type = recorder.render()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of every endpoint."""
    return jsonify(openapi_document(current_app.config))


@bp.before_app_request
def _start_timer():
    g.started = time.perf_counter()


@bp.after_app_request
def _count(response):
    started = g.pop("started", None)
    if started is not None:
        endpoint = _endpoint_label()
        method = request.method if request.method in KNOWN_METHODS else "other"  # bounded label values
        after_response(partial(ext("metrics").observe_request, endpoint, method, response.status_code,
                               time.perf_counter() - started))
    callbacks = g.pop("after_response", None)
    if callbacks:
        response.call_on_close(partial(_run_after_response, callbacks, current_app.logger))
    return response


def _endpoint_label() -> str:
    """The route a request counts under in /metrics: its rule, also for a method the path does not
    take (a GET on /v1/classify is a 405 of that endpoint, which a dashboard should show there);
    "unmatched" for a path no route has, so the label's values stay the app's routes."""
    if request.url_rule is not None:
        return request.url_rule.rule
    exc = request.routing_exception
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        try:
            rule, _ = current_app.url_map.bind_to_environ(request.environ).match(
                method=exc.valid_methods[0], return_rule=True)
        except HTTPException:
            return "unmatched"
        return rule.rule
    return "unmatched"


def _run_after_response(callbacks, logger) -> None:
    while callbacks:  # emptied as it goes: a server that closes a response twice counts it once
        callback = callbacks.pop(0)
        try:
            callback()
        except Exception:  # the answer is out: a bookkeeping failure must not turn into an error
            logger.exception("bookkeeping after a response failed")
