"""Akismet-compatible endpoints, so forums that already speak Akismet can switch to postsieve.

Form-encoded requests with Akismet's field names; plain-text answers as Akismet gives them
(`true`/`false`, `valid`/`invalid`, the thanks line after a submission). A wrong key is answered
`invalid` with status 200 and an `X-akismet-debug-help` header, because that is what Akismet
clients look for; everything else that goes wrong uses the API's JSON error shape.
Fields postsieve does not use (user_ip, user_agent, referrer, ...) are accepted and ignored.
"""
from __future__ import annotations

import hashlib
import io

from flask import Blueprint, Response, request

from classifier.errors import InvalidFeedback, StoreError
from classifier.feedback import Label
from classifier.types import Post

from .api import current_model, ext, request_body, request_source, score
from .auth import authenticate
from .errors import APIError

bp = Blueprint("akismet", __name__, url_prefix="/1.1")

#: Akismet always lets site administrators through; postsieve does the same.
ADMIN_ROLES = frozenset({"administrator"})
THANKS = "Thanks for making the web a better place."


class InvalidAkismetKey(Exception):
    def __init__(self, help_text: str):
        self.help_text = help_text


def text(body: str, **headers) -> Response:
    response = Response(body, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def form() -> dict:
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise APIError(415, "send the Akismet fields form-encoded (Content-Type: application/x-www-form-urlencoded)")
    if request.content_length is None and "wsgi.input" in request.environ:
        # A chunked form: werkzeug's parser would read it up to MAX_CONTENT_LENGTH and parse what
        # it got, silently cut short. Read it here (over the limit: the 413) and parse that.
        request.environ["wsgi.input"] = io.BytesIO(request_body())
    return request.form


def akismet_key(fields, scope: str):
    """The key from `api_key` (or `key`); a bad one becomes Akismet's `invalid` answer."""
    plain = fields.get("api_key") or fields.get("key")
    try:
        return authenticate(plain or None, scope)
    except APIError as exc:
        if exc.status in (401, 403):
            raise InvalidAkismetKey(exc.messages[0]) from None
        raise


def post_from_fields(fields) -> Post:
    content = fields.get("comment_content", "")
    permalink = fields.get("permalink") or fields.get("comment_post_ID") or ""
    # Akismet requests carry no id for the comment itself; one derived from what identifies it
    # makes a resubmission of the same comment land on the same feedback row.
    identity = "\x1f".join([permalink, fields.get("comment_author", ""), content])
    post_id = "akismet:" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    author = {"name": fields["comment_author"]} if fields.get("comment_author") else None
    return Post(id=post_id, title="", body=content, category=None, author=author)


@bp.post("/verify-key")
def verify_key():
    fields = form()
    plain = fields.get("api_key") or fields.get("key")
    try:
        valid = bool(plain) and ext("keys").verify(plain) is not None
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    if valid:
        return text("valid")
    return text("invalid", X_akismet_debug_help="unknown or revoked postsieve API key")


@bp.post("/comment-check")
def comment_check():
    """`true` for spam that should be held back, `false` otherwise; blatant spam adds the discard tip."""
    fields = form()
    key = akismet_key(fields, "classify")
    if fields.get("user_role", "").lower() in ADMIN_ROLES:
        return text("false", X_postsieve_decision="allow")
    post = post_from_fields(fields)
    model = current_model()
    result = score(model, [post], request_source(fields.get("blog"), key))[0]
    spam = result["label"] == "spam" and result["decision"] in ("block", "review")
    headers = {"X_postsieve_decision": result["decision"], "X_postsieve_label": result["label"],
               "X_postsieve_model_version": model.version}
    if result["decision"] == "block":
        headers["X_akismet_pro_tip"] = "discard"
    return text("true" if spam else "false", **headers)


def submit(label: str):
    fields = form()
    key = akismet_key(fields, "feedback")
    if not fields.get("comment_content", "").strip():
        raise APIError(400, "comment_content is needed: there is nothing to learn from an empty comment")
    post = post_from_fields(fields)
    try:
        ext("feedback").add(Label(post=post, label=label, source=request_source(fields.get("blog"), key),
                                  channel="akismet"))
    except InvalidFeedback as exc:
        raise APIError(400, str(exc)) from None
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    return text(THANKS)


@bp.post("/submit-spam")
def submit_spam():
    """A moderator marked a post spam: stored as a `spam` label in the feedback store."""
    return submit("spam")


@bp.post("/submit-ham")
def submit_ham():
    """A moderator marked a post not spam: stored as an `ok` label in the feedback store."""
    return submit("ok")


@bp.errorhandler(InvalidAkismetKey)
def _invalid_key(exc: InvalidAkismetKey):
    return text("invalid", X_akismet_debug_help=exc.help_text)
