"""One JSON error shape for every error, Flask's own 404 and 405 included.

    {"ok": false, "error": "body is required", "errors": ["body is required"], "status": 400}
"""
from __future__ import annotations

from flask import jsonify
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """An error the API answers with `status` and one or more messages."""

    def __init__(self, status: int, *messages: str, headers: dict | None = None):
        super().__init__(messages[0] if messages else "error")
        self.status = status
        self.messages = list(messages) or ["error"]
        self.headers = headers or {}


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
        return error_response(exc.code or 500, [exc.description or exc.name], headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        return error_response(500, ["internal error"])
