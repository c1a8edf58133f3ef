"""One JSON error shape for every error, Flask's own 404 and 405 included.

    {"ok": false, "error": "body is required", "errors": ["body is required"], "status": 400}
"""
from __future__ import annotations

from flask import jsonify, request
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """An error the API answers with `status` and one or more messages."""

    def __init__(self, status: int, *messages: str, headers: dict | None = None):
        super().__init__(messages[0] if messages else "error")
        self.status = status
        self.messages = list(messages) or ["error"]
        self.headers = headers or {}


def body_too_large(limit: int) -> APIError:
    """The one 413, for a body over MAX_CONTENT_LENGTH whether it declared its length or came
    chunked: it names the limit and the setting that raises it."""
    return APIError(413, f"the request body is larger than the limit of {limit} bytes (POSTSIEVE_MAX_CONTENT_LENGTH)")


def error_body(status: int, messages: list[str]) -> dict:
    return {"ok": False, "error": messages[0], "errors": messages, "status": status}


def error_response(status: int, messages: list[str], headers: dict | None = None):
    response = jsonify(error_body(status, messages))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_error_handlers(app) -> None:
    @app.errorhandler(APIError)
    def _api_error(exc: APIError):
        return error_response(exc.status, exc.messages, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        headers = {"Allow": exc.response.headers["Allow"]} if exc.response is not None and "Allow" in (exc.response.headers or {}) else None
        if exc.code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            headers = {"Allow": ", ".join(exc.valid_methods)}
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if exc.code == 413 and limit is not None and (request.content_length or 0) > limit:
            # werkzeug's own 413 for a form with too large a Content-Length: the same words as ours.
            # Its other 413s (a form field over MAX_FORM_MEMORY_SIZE, too many parts) keep theirs.
            return error_response(413, body_too_large(limit).messages, headers)
        return error_response(exc.code or 500, [exc.description or exc.name], headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, ["internal error"])
