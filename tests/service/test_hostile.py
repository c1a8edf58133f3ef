"""Hostile input through every endpoint: never a 5xx, never a traceback, one error shape, and
nothing stored before is lost."""
import io
import json
from urllib.parse import urlencode

import pytest

from tests.service.conftest import bearer
from tests.service.helpers import assert_error_shape

ONE_TOKEN = "a" * (1024 * 1024 - 200)  # just under the 1 MiB body limit with the JSON around it
TEXTS = {
    "nul bytes": "spam\x00spam\x00 visit example.com\x00",
    "zero-width and right-to-left": "bu\u200by ch\u200deap p\u2060ills \u202eten.moc-sllip\u202c \ufeff",
    "lone surrogates": "\ud800\udfff\udc00 broken pairs",
    "10,000 urls": " ".join(f"https://spam{i}.example.com/p?q={i}" for i in range(10_000)),
    "1 MiB single token": ONE_TOKEN,
    "control characters": "".join(chr(c) for c in range(32)) * 50,
    "only punctuation": ". " * 20_000,
    # text that made sentence splitting or clean-up quadratic (seconds a post) before
    "sentence marks in a mix": "?!" * 10_000,
    "obfuscated dots and wide characters": "(." * 5_000 + "\u3316\u3315" * 5_000,
    "a link closed again and again": "http://a.b" + ")\u2026" * 9_995,
    "tags left open": "<script" * 1_000 + "<pre" * 2_000 + "<!doctype" * 1_000,
}
RAW_BODIES = {
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object nesting": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "invalid utf-8": b'{"id": 1, "title": "\xff\xfe", "body": "\xc3\x28 bad"}',
    "huge integer": b'{"id": ' + b"9" * 5000 + b', "title": "", "body": "x"}',
    "nan and infinity": b'{"id": 1, "title": "", "body": "x", "author": {"trust_level": NaN, "reputation": Infinity}}',
    "not json": b"id=1&body=x",
    "empty": b"",
    "json null": b"null",
    "json string": b'"a post"',
}
WRONG_TYPES = [
    {"id": 1.5, "title": "", "body": "x"},
    {"id": True, "title": "", "body": "x"},
    {"id": 1, "title": 5, "body": 6},
    {"id": 1, "title": "", "body": ["x"]},
    {"id": 1, "title": "", "body": {"text": "x"}},
    {"id": 1, "title": "", "body": "x", "category": 3},
    {"id": 1, "title": "", "body": "x", "author": {"trust_level": "4", "id": [1]}},
    {"id": {"$gt": ""}, "title": "", "body": "x"},
]
JSON_ENDPOINTS = ["/v1/classify", "/v1/classify/batch", "/v1/feedback"]
FORM_ENDPOINTS = ["/1.1/comment-check", "/1.1/submit-spam", "/1.1/submit-ham", "/1.1/verify-key"]


@pytest.fixture()
def env(make_app, database_url):
    """An app on each database backend (SQLite file, PostgreSQL schema), with a label already stored."""
    from service.keys import KeyStore

    app = make_app(OPEN_CLASSIFY=True, DATABASE_URL=database_url)
    key = KeyStore(app.extensions["postsieve.database"]).create("forum", ["admin"])[0]
    client = app.test_client()
    stored = client.post("/v1/feedback", json={"id": "keep-me", "title": "", "body": "Honest question about Fiji.",
                                               "label": "ok"}, headers=bearer(key))
    assert stored.status_code == 201
    return app, client, key


def wrap(path, record):
    if path == "/v1/classify/batch":
        return {"posts": [record]}
    if path == "/v1/feedback" and isinstance(record, dict):
        return {"label": "spam", **record}
    return record


def assert_sane(response):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code >= 400 and response.mimetype == "application/json":
        assert_error_shape(response, response.status_code)


def assert_nothing_lost(app, client):
    [kept] = [x for x in app.extensions["postsieve.feedback"].latest() if x.post.id == "keep-me"]
    assert kept.label == "ok"
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("name", list(TEXTS))
def test_hostile_text_in_json_endpoints(env, path, name):
    app, client, key = env
    record = wrap(path, {"id": "h", "title": TEXTS[name][:1000], "body": TEXTS[name], "category": TEXTS[name][:300]})
    response = client.post(path, data=json.dumps(record), content_type="application/json", headers=bearer(key))
    assert_sane(response)
    assert response.status_code in (200, 201, 400, 413)
    if path == "/v1/classify" and response.status_code == 200 and len(TEXTS[name]) > 20_000:
        assert response.get_json()["truncated"] is True
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("field", ["id", "source", "moderator", "note", "category"])
@pytest.mark.parametrize("name", ["nul bytes", "lone surrogates", "control characters", "1 MiB single token"])
def test_hostile_identifiers_are_refused_or_stored_never_garbled(env, field, name):
    app, client, key = env
    record = {"id": "i1", "title": "", "body": "Honest question about Fiji macros.", "label": "ok",
              field: TEXTS[name][:1000]}
    data = json.dumps(record)
    for _ in range(2):  # a retry must answer the same way
        response = client.post("/v1/feedback", data=data, content_type="application/json", headers=bearer(key))
        assert_sane(response)
        assert response.status_code in (200, 201, 400)
    if response.status_code == 400:
        assert f"{field} must" in response.get_json()["error"]
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/classify/batch"])
@pytest.mark.parametrize("post_id", ["p\x00", "\ud800", "a\x07b", "x" * 201])
def test_ids_no_label_could_carry_are_refused_and_decisions_keep_being_counted(env, path, post_id):
    """An id is the key a forum labels the post by: classify refuses what feedback would refuse.
    Such ids used to be scored, then stopped the decision log for good (see test_stats.py)."""
    app, client, key = env
    response = client.post(path, data=json.dumps(wrap(path, {"id": post_id, "title": "", "body": "Fiji macro?"})),
                           content_type="application/json", headers=bearer(key))
    assert_sane(response)
    assert response.status_code == 400
    assert "id must" in response.get_json()["error"]
    assert client.post(path, json=wrap(path, {"id": "fine", "title": "", "body": "Fiji macro?"}),
                       headers=bearer(key)).status_code == 200
    stats = client.get("/v1/stats", headers=bearer(key)).get_json()  # flushes this worker's decisions
    assert sum(row["classified"] for row in stats["rows"]) == 1
    assert app.extensions["postsieve.decision_log"].dropped == 0


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_malformed_bodies(env, path, name):
    app, client, key = env
    response = client.post(path, data=RAW_BODIES[name], content_type="application/json", headers=bearer(key))
    assert_sane(response)
    assert response.status_code == 400 or name == "nan and infinity"
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("record", WRONG_TYPES, ids=range(len(WRONG_TYPES)))
def test_numbers_and_objects_where_strings_belong(env, path, record):
    app, client, key = env
    response = client.post(path, json=wrap(path, record), headers=bearer(key))
    assert_error_shape(response, 400)
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
@pytest.mark.parametrize("name", list(TEXTS))
def test_hostile_text_in_akismet_endpoints(env, path, name):
    app, client, key = env
    fields = {"api_key": key, "key": key, "blog": TEXTS[name][:500], "comment_content": TEXTS[name],
              "comment_author": TEXTS[name][:100], "permalink": TEXTS[name][:2000]}
    # urlencode by hand so lone surrogates travel as the bytes a broken client would send
    body = urlencode(fields, encoding="utf-8", errors="surrogatepass")
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert_sane(response)
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
def test_invalid_utf8_forms(env, path):
    app, client, key = env
    body = b"api_key=" + key.encode() + b"&comment_content=%ff%fe%c3%28&comment_author=\xff\xfe"
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert_sane(response)
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("path", JSON_ENDPOINTS + FORM_ENDPOINTS)
def test_over_the_size_limit_is_413_everywhere(env, path, framing):
    """Over 1 MiB with a Content-Length or chunked (which gunicorn hands on without one, its
    input marked as ending with the body): the same 413, naming the limit."""
    app, client, key = env
    kind = "application/json" if path.startswith("/v1") else "application/x-www-form-urlencoded"
    body = b"x" * (1024 * 1024 + 1)
    if framing == "chunked":
        response = client.post(path, input_stream=io.BytesIO(body), content_type=kind,
                               headers={**bearer(key), "Transfer-Encoding": "chunked"},
                               environ_overrides={"wsgi.input_terminated": True})
    else:
        response = client.post(path, data=body, content_type=kind, headers=bearer(key))
    assert assert_error_shape(response, 413)["errors"] == [
        "the request body is larger than the limit of 1048576 bytes (POSTSIEVE_MAX_CONTENT_LENGTH)"]
    assert_nothing_lost(app, client)


@pytest.mark.parametrize("path", ["/v1/model", "/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_get_endpoints_ignore_odd_queries_and_refuse_other_methods(env, path):
    app, client, key = env
    assert client.get(path + "?x=%00%ff&" + "y=1&" * 1000).status_code == 200
    assert_error_shape(client.delete(path), 405)
    assert_error_shape(client.post(path, data="\xff"), 405)


@pytest.mark.parametrize("path, status, message", [
    ("/v1/stats?source=%00", 400, "source must not hold control characters or lone surrogates"),
    ("/v1/stats?source=" + "x" * 201, 400, "source must be 1 to 200 characters"),
    ("/v1/models/jobs/%00", 404, "no job '\\x00'"),
    ("/v1/models/jobs/a%07b", 404, "no job 'a\\x07b'"),
])
def test_odd_names_in_admin_paths_are_client_errors_not_an_outage(env, path, status, message):
    """PostgreSQL refuses a NUL in a query (DataError): these were 503s, which monitoring reads
    as the database being down."""
    app, client, key = env
    body = assert_error_shape(client.get(path, headers=bearer(key)), status)
    assert body["error"] == message
