"""A small client for forum hooks: classify a post, send a moderator's label.

It uses only the standard library, so a forum's own Python can import it without new
dependencies. Its one promise: a slow, absent or failing postsieve never publishes a post
unchecked and never loses it. `classify` answers within `timeout` seconds; when it cannot get a
real answer it returns decision "review" with `fallback: True` and the reason in `error`, so the
hook holds the post for a moderator. `feedback` raises `PostsieveError` on failure, so the caller
can retry or queue the label instead of dropping it.

    client = PostsieveClient("http://127.0.0.1:8000", api_key=KEY, timeout=0.5)
    verdict = client.classify({"id": 42, "title": "...", "body": "...", "category": "3D Segmentation"})
    if verdict["decision"] == "allow": publish()
    elif verdict["decision"] == "review": hold_for_moderator(verdict)
    else: reject()
"""
from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Mapping

__all__ = ["PostsieveClient", "PostsieveError"]


class PostsieveError(Exception):
    """postsieve did not accept the request; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PostsieveClient:
    """Talks to one postsieve server; safe to share between threads."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 1.0, max_in_flight: int = 8):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        # Requests run on these threads so that `timeout` bounds the whole call (DNS, connect,
        # a server dripping bytes), not each socket operation as urllib's timeout does.
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="postsieve-client")

    def classify(self, post: Mapping[str, Any]) -> dict[str, Any]:
        """The output contract for `post`, or a "review" fallback when there is no real answer."""
        try:
            answer = self._post("/v1/classify", post)
            if not isinstance(answer, dict) or answer.get("decision") not in ("allow", "review", "block"):
                raise PostsieveError("the answer is not an output contract")
            return {**answer, "fallback": False}
        except PostsieveError as exc:
            return fallback(post, str(exc))

    def classify_batch(self, posts: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One answer per post, in order; every post falls back to "review" if the call fails."""
        posts = list(posts)
        try:
            answer = self._post("/v1/classify/batch", {"posts": posts})
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(posts) or not all(isinstance(r, dict) for r in results):
                raise PostsieveError("the answer does not hold one result per post")
            return [{**r, "fallback": False} for r in results]
        except PostsieveError as exc:
            return [fallback(post, str(exc)) for post in posts]

    def feedback(self, post: Mapping[str, Any], label: str, *, moderator: str | None = None,
                 note: str | None = None) -> dict[str, Any]:
        """Store a moderator's label ("ok", "spam" or "off_topic"); raises PostsieveError on failure."""
        record = {**post, "label": label}
        if moderator is not None:
            record["moderator"] = moderator
        if note is not None:
            record["note"] = note
        return self._post("/v1/feedback", record)

    def _post(self, path: str, payload: Any) -> Any:
        """POST JSON and return the decoded answer; every failure is a PostsieveError."""
        future = self._pool.submit(self._post_now, path, payload)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            raise PostsieveError(f"no answer within {self.timeout} s") from None

    def _post_now(self, path: str, payload: Any) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            data = json.dumps(payload).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError) as exc:
            raise PostsieveError(f"the post cannot be sent as JSON: {exc}") from None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise PostsieveError(_error_message(exc), exc.code) from None
        except (socket.timeout, TimeoutError):
            raise PostsieveError(f"no answer within {self.timeout} s") from None
        except (urllib.error.URLError, OSError) as exc:
            raise PostsieveError(f"cannot reach postsieve: {getattr(exc, 'reason', exc)}") from None
        except http.client.HTTPException as exc:
            raise PostsieveError(f"broken answer from postsieve: {type(exc).__name__}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise PostsieveError("the answer is not JSON") from None


def fallback(post: Mapping[str, Any], error: str) -> dict[str, Any]:
    """What a hook should do without an answer: hold the post for review."""
    post_id = post.get("id") if isinstance(post, Mapping) else None
    return {"id": post_id, "label": None, "decision": "review", "scores": None, "highlights": [], "reasons": [],
            "model_version": None, "truncated": False, "fallback": True, "error": error}


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return f"HTTP {exc.code}: {json.loads(exc.read())['error']}"
    except Exception:
        return f"HTTP {exc.code}"
