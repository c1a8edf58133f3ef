"""The OpenAPI 3.1 description served at /openapi.json.

Written by hand next to the views it describes; tests/service/test_openapi.py validates real
responses of every endpoint against it, so it cannot drift from the code.
"""
from __future__ import annotations

from classifier.types import DECISIONS, LABELS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str, enum: list[str] | None = None) -> dict:
    schema = {"type": "string", **({"enum": enum} if enum else {})}
    return {"description": description, "content": {"text/plain": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    meaning = {400: "Malformed JSON, a missing or wrongly typed field.", 401: "No key, or an unknown or revoked key.",
               403: "The key lacks the scope.", 413: "The body is larger than MAX_CONTENT_LENGTH.",
               415: "Wrong Content-Type.", 429: "The key exceeded its rate; see Retry-After.",
               503: "No model loaded, or the database is unreachable."}
    return {str(code): {"$ref": "#/components/responses/Error"} if code != 429 else {
        "description": meaning[429], "headers": {"Retry-After": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": _ref("Error")}}} for code in codes}


SCHEMAS = {
    "Author": {
        "type": "object",
        "description": "Who wrote the post. Authors at or above TRUSTED_TRUST_LEVEL or TRUSTED_REPUTATION are "
                       "never blocked outright (at most review). Other fields are accepted and ignored.",
        "properties": {"id": {"type": ["string", "integer"]}, "name": {"type": "string"},
                       "trust_level": {"type": "number"}, "reputation": {"type": "number"},
                       "account_age_days": {"type": "number"}},
    },
    "Post": {
        "type": "object", "required": ["id", "title", "body"],
        "properties": {"id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 200,
                              "description": "Echoed back as sent; the key feedback labels the post by, "
                                             "so no control characters or lone surrogates."},
                       "title": {"type": "string", "description": "Empty for replies."},
                       "body": {"type": "string", "description": "Plain text, Markdown or HTML; scored on its first "
                                                                 "20,000 characters (see truncated)."},
                       "category": {"type": ["string", "null"], "description": "Where the post was filed."},
                       "author": {"oneOf": [_ref("Author"), {"type": "null"}]}},
    },
    "Scored": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"],
        "properties": {
            "id": {"type": ["string", "integer"]},
            "label": {"enum": list(LABELS)},
            "decision": {"enum": list(DECISIONS)},
            "scores": {"type": "object", "required": list(LABELS), "additionalProperties": False,
                       "properties": {label: {"type": "number", "minimum": 0, "maximum": 1} for label in LABELS}},
            "highlights": {"type": "array", "maxItems": 3, "items": {
                "type": "object", "required": ["field", "start", "end", "score"], "additionalProperties": False,
                "properties": {"field": {"enum": ["title", "body"]}, "start": {"type": "integer", "minimum": 0},
                               "end": {"type": "integer", "minimum": 0},
                               "score": {"type": "number", "minimum": 0, "maximum": 1}}}},
            "reasons": {"type": "array", "maxItems": 10, "items": {
                "type": "object", "required": ["feature", "weight"], "additionalProperties": False,
                "properties": {"feature": {"type": "string"}, "weight": {"type": "number"}}}},
            "model_version": {"type": "string"},
            "truncated": {"type": "boolean", "description": "A field was longer than 20,000 characters and only "
                                                            "that prefix was scored."},
        },
    },
    "BatchRequest": {"type": "object", "required": ["posts"],
                     "properties": {"posts": {"type": "array", "minItems": 1, "items": _ref("Post")}}},
    "BatchResponse": {"type": "object", "required": ["results", "model_version"], "additionalProperties": False,
                      "properties": {"results": {"type": "array", "items": _ref("Scored")},
                                     "model_version": {"type": "string"}}},
    "Feedback": {
        "type": "object", "required": ["id", "label", "body"],
        "properties": {"id": {"type": ["string", "integer"]}, "title": {"type": "string", "default": ""},
                       "body": {"type": "string"}, "category": {"type": ["string", "null"]},
                       "author": {"oneOf": [_ref("Author"), {"type": "null"}]},
                       "label": {"enum": list(LABELS)},
                       "moderator": {"type": "string"}, "note": {"type": "string"},
                       "source": {"type": "string", "description": "The forum; default: the key's name."}},
    },
    "FeedbackStored": {
        "type": "object", "additionalProperties": False,
        "required": ["ok", "id", "source", "label", "status", "revision"],
        "properties": {"ok": {"const": True}, "id": {"type": ["string", "integer"]}, "source": {"type": "string"},
                       "label": {"enum": list(LABELS)},
                       "status": {"enum": ["created", "changed", "unchanged"]},
                       "revision": {"type": "integer", "minimum": 1}},
    },
    "ModelInfo": {
        "type": "object",
        "required": ["version", "created", "thresholds", "metrics", "label_counts", "compiled_scoring"],
        "properties": {"version": {"type": "string"}, "created": {"type": ["string", "null"]},
                       "thresholds": {"type": "object", "required": ["spam_block", "spam_review", "off_topic_review"],
                                      "additionalProperties": {"type": "number"}},
                       "metrics": {"type": "object"},
                       "label_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                       "compiled_scoring": {"type": "boolean",
                                            "description": "Scoring uses its compiled step (classifier._fastcount); "
                                                           "false where it was installed without a C compiler."}},
    },
    "Stats": {
        "type": "object", "required": ["days", "rows"],
        "properties": {"days": {"type": "integer"}, "rows": {"type": "array", "items": {
            "type": "object", "required": ["model_version", "day", "classified", "false_positives", "false_negatives"],
            "properties": {"model_version": {"type": "string"}, "day": {"type": "string"},
                           **{name: {"type": "integer", "minimum": 0} for name in (
                               "classified", "allow", "review", "block", "labelled", "false_positives",
                               "false_negatives", "review_spam", "review_not_spam", "missed_off_topic")},
                           "false_positive_rate": {"type": ["number", "null"]},
                           "false_negative_rate": {"type": ["number", "null"]}}}}},
    },
    "ModelVersions": {
        "type": "object", "required": ["active", "versions"],
        "properties": {"active": {"type": ["string", "null"]}, "versions": {"type": "array", "items": {
            "type": "object", "required": ["version", "created", "active", "parent", "gate"],
            "properties": {"version": {"type": "string"}, "created": {"type": ["string", "null"]},
                           "active": {"type": "boolean"}, "parent": {"type": ["string", "null"]},
                           "trained_by": {"type": ["string", "null"]}, "created_by": {"type": ["string", "null"]},
                           "data_sha256": {"type": ["string", "null"]}, "label_counts": {"type": ["object", "null"]},
                           "gate": {"type": ["object", "null"]}, "metrics": {"type": "object"}}}}},
    },
    "RetrainOptions": {
        "type": "object", "additionalProperties": False,
        "properties": {"force": {"type": "boolean"}, "no_promote": {"type": "boolean"},
                       "feedback_weight": {"type": "number", "exclusiveMinimum": 0},
                       "holdout": {"type": "number"}, "max_recall_loss": {"type": "number"},
                       "max_precision_loss": {"type": "number"}, "max_auc_loss": {"type": "number"}, "max_spam_auc_loss": {"type": "number"},
                       "min_heldout": {"type": "integer"}, "seed": {"type": "integer"}},
    },
    "JobStarted": {"type": "object", "required": ["ok", "job", "state", "url"],
                   "properties": {"ok": {"const": True}, "job": {"type": "string"}, "state": {"type": "string"},
                                  "url": {"type": "string"}}},
    "Job": {"type": "object", "required": ["id", "kind", "state", "progress", "result", "error", "created", "updated"],
            "properties": {"id": {"type": "string"}, "kind": {"type": "string"},
                           "state": {"enum": ["queued", "running", "succeeded", "failed"]},
                           "progress": {"type": ["string", "null"]}, "requested_by": {"type": ["string", "null"]},
                           "options": {"type": "object"}, "result": {"type": ["object", "null"]},
                           "error": {"type": ["string", "null"]}, "created": {"type": "string"},
                           "updated": {"type": "string"}}},
    "Health": {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}},
    "Ready": {"type": "object", "required": ["ok", "model_version", "last_error"],
              "properties": {"ok": {"const": True}, "model_version": {"type": "string"},
                             "last_error": {"type": ["string", "null"],
                                            "description": "Why the version ACTIVE names was refused while "
                                                           "this worker keeps serving model_version."}}},
    "Error": {
        "type": "object", "required": ["ok", "error", "errors", "status"], "additionalProperties": False,
        "properties": {"ok": {"const": False}, "error": {"type": "string"},
                       "errors": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                       "status": {"type": "integer"}},
    },
    "AkismetFields": {
        "type": "object",
        "description": "Akismet's field names. The key goes in api_key (or key). Fields not listed are "
                       "accepted and ignored (user_ip, user_agent, referrer, ...).",
        "properties": {"api_key": {"type": "string"}, "key": {"type": "string"}, "blog": {"type": "string"},
                       "comment_content": {"type": "string"}, "comment_type": {"type": "string"},
                       "comment_author": {"type": "string"}, "permalink": {"type": "string"},
                       "user_role": {"type": "string", "description": "administrator: always false, as Akismet."},
                       "is_test": {"type": "string"}},
    },
}

_bearer = [{"bearer": []}]
_form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": _ref("AkismetFields")}}}


def openapi_document(config) -> dict:
    """The document; `config` fills in the limits this server was started with."""
    classify_security = [{}, *_bearer] if config.get("OPEN_CLASSIFY") else _bearer
    return {
        "openapi": "3.1.0",
        "info": {"title": "postsieve", "version": "1",
                 "description": "Spam and off-topic scores for forum posts, with the sentences and terms "
                                "that drive them, and an allow / review / block decision."},
        "servers": [{"url": "/"}],
        "paths": {
            "/v1/classify": {"post": {
                "summary": "Score one post.", "operationId": "classify", "security": classify_security,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Post")}}},
                "responses": {"200": _json(_ref("Scored"), "The output contract."),
                              **_errors(400, 401, 403, 413, 415, 429, 503)}}},
            "/v1/classify/batch": {"post": {
                "summary": f"Score up to {config.get('MAX_BATCH')} posts; results in the order sent.",
                "operationId": "classifyBatch", "security": classify_security,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("BatchRequest")}}},
                "responses": {"200": _json(_ref("BatchResponse"), "One output contract per post, in order."),
                              **_errors(400, 401, 403, 413, 415, 429, 503)}}},
            "/v1/feedback": {"post": {
                "summary": "Store a moderator's label (idempotent per post and source; history kept).",
                "operationId": "feedback", "security": _bearer,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Feedback")}}},
                "responses": {"201": _json(_ref("FeedbackStored"), "Stored as a new revision."),
                              "200": _json(_ref("FeedbackStored"), "Same label and text as the newest: unchanged."),
                              **_errors(400, 401, 403, 413, 415, 429, 503)}}},
            "/v1/model": {"get": {
                "summary": "The served model: version, thresholds, held-out metrics, label counts.",
                "operationId": "model", "security": [],
                "responses": {"200": _json(_ref("ModelInfo"), "The served model."), **_errors(503)}}},
            "/v1/stats": {"get": {
                "summary": "Decisions per model version and day, and how many moderators overturned.",
                "operationId": "stats",
                "parameters": [{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                               {"name": "source", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("Stats"), "Rows per model version and day (UTC)."),
                              **_errors(400, 401, 403, 429, 503)}}},
            "/v1/models": {"get": {
                "summary": "Model versions, newest first, with lineage and gate results.", "operationId": "models",
                "responses": {"200": _json(_ref("ModelVersions"), "The versions."), **_errors(401, 403, 429)}}},
            "/v1/models/retrain": {"post": {
                "summary": "Start a retraining job (corpus plus feedback, gated); poll its url.",
                "operationId": "retrain",
                "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("RetrainOptions")}}},
                "responses": {"202": _json(_ref("JobStarted"), "Started."),
                              "409": {"$ref": "#/components/responses/Error"},
                              **_errors(400, 401, 403, 415, 429, 503)}}},
            "/v1/models/jobs/{job_id}": {"get": {
                "summary": "A retraining job's state, last progress line and outcome.", "operationId": "job",
                "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("Job"), "The job."), "404": {"$ref": "#/components/responses/Error"},
                              **_errors(401, 403, 429, 503)}}},
            "/healthz": {"get": {"summary": "The process is alive.", "operationId": "healthz", "security": [],
                                 "responses": {"200": _json(_ref("Health"), "Alive.")}}},
            "/readyz": {"get": {"summary": "A model is loaded and the database answers.", "operationId": "readyz",
                                "security": [],
                                "responses": {"200": _json(_ref("Ready"), "Ready."), **_errors(503)}}},
            "/metrics": {"get": {"summary": "Prometheus text format.", "operationId": "metrics", "security": [],
                                 "responses": {"200": _text("Metrics, summed over workers.")}}},
            "/openapi.json": {"get": {"summary": "This document.", "operationId": "openapi", "security": [],
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")}}},
            "/1.1/verify-key": {"post": {
                "summary": "Akismet: is this key valid?", "operationId": "akismetVerifyKey", "security": [],
                "requestBody": _form, "responses": {"200": _text("valid or invalid", ["valid", "invalid"]),
                                                    **_errors(413, 415, 503)}}},
            "/1.1/comment-check": {"post": {
                "summary": "Akismet: true when the post is spam to hold back; X-akismet-pro-tip: discard when "
                           "the decision is block.", "operationId": "akismetCommentCheck", "security": [],
                "requestBody": _form, "responses": {"200": {**_text("true, false or invalid (bad key)",
                                                                    ["true", "false", "invalid"]),
                                                            "headers": {"X-akismet-pro-tip": {"schema": {"const": "discard"}},
                                                                        "X-postsieve-decision": {"schema": {"enum": list(DECISIONS)}}}},
                                                    **_errors(413, 415, 429, 503)}}},
            "/1.1/submit-spam": {"post": {
                "summary": "Akismet: store a spam label.", "operationId": "akismetSubmitSpam", "security": [],
                "requestBody": _form, "responses": {"200": _text("The thanks line, or invalid (bad key)."),
                                                    **_errors(400, 413, 415, 429, 503)}}},
            "/1.1/submit-ham": {"post": {
                "summary": "Akismet: store an ok label.", "operationId": "akismetSubmitHam", "security": [],
                "requestBody": _form, "responses": {"200": _text("The thanks line, or invalid (bad key)."),
                                                    **_errors(400, 413, 415, 429, 503)}}},
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": _json(_ref("Error"), "The one error shape of every endpoint.")},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A key from `postsieve keys create`."}},
        },
        "security": _bearer,
    }
