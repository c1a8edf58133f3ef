"""The native API through Flask's test client, on the tiny model (classify left open)."""
import io
import json

import pytest

from tests.service.conftest import bearer
from tests.service.helpers import assert_error_shape


def test_classify_returns_contract(client):
    r = client.post("/v1/classify", json={"id": 5, "title": "Hi", "body": "Thanks, lowering the sigma fixed it."})
    assert r.status_code == 200
    body = r.get_json()
    assert list(body) == ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"]
    assert body["id"] == 5



def test_answers_are_compact_json_in_the_contracts_order_and_indented_when_debugging(make_app):
    post = {"id": "é1", "title": "Hi", "body": "Thanks, lowering the sigma fixed it."}
    r = make_app(OPEN_CLASSIFY=True).test_client().post("/v1/classify", json=post)
    text = r.get_data(as_text=True)
    assert r.mimetype == "application/json" and text.startswith('{"id":"\\u00e91","label":') and text.endswith("}\n")
    assert "\n" not in text[:-1] and ", " not in text and '": ' not in text
    debug_app = make_app(OPEN_CLASSIFY=True)
    debug_app.debug = True
    indented = debug_app.test_client().post("/v1/classify", json=post).get_data(as_text=True)
    assert indented.startswith('{\n  "id": "\\u00e91",\n  "label": ')
    assert json.loads(indented) == json.loads(text)


@pytest.mark.parametrize("payload, message", [
    ({"title": "t", "body": "b"}, "id is required"),
    ({"id": "1", "title": "t"}, "body is required"),
    ({"id": "1", "title": ["x"], "body": "b"}, "title must be a string"),
    ([1, 2], "a post must be a JSON object"),
])
def test_classify_bad_input(client, payload, message):
    body = assert_error_shape(client.post("/v1/classify", json=payload), 400)
    assert message in " ".join(body["errors"])


def test_malformed_json_and_content_type(client):
    assert_error_shape(client.post("/v1/classify", data="{bad", content_type="application/json"), 400)
    assert_error_shape(client.post("/v1/classify", data="id=1", content_type="application/x-www-form-urlencoded"), 415)


def test_deeply_nested_json_is_a_400_that_says_so(client):
    """Valid JSON nested deeper than the parser goes is not called invalid JSON."""
    for body in ("[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000):
        answer = assert_error_shape(client.post("/v1/classify", data=body, content_type="application/json"), 400)
        assert answer["errors"] == ["the request body's JSON is nested too deeply"]


TOO_LARGE_1000 = "the request body is larger than the limit of 1000 bytes (POSTSIEVE_MAX_CONTENT_LENGTH)"


def test_body_over_the_limit_is_a_413_naming_the_limit(make_app):
    client = make_app(OPEN_CLASSIFY=True, MAX_CONTENT_LENGTH=1000).test_client()
    body = assert_error_shape(client.post("/v1/classify", json={"id": 1, "title": "", "body": "x" * 5000}), 413)
    assert body["errors"] == [TOO_LARGE_1000]


def post_chunked(client, path, body: bytes, content_type="application/json", **kwargs):
    """POST `body` without Content-Length, as gunicorn hands a chunked request to the app: the
    input ends with the body, and wsgi.input_terminated says so."""
    headers = {"Transfer-Encoding": "chunked", **kwargs.pop("headers", {})}
    return client.post(path, content_type=content_type, headers=headers, input_stream=io.BytesIO(body),
                       environ_overrides={"wsgi.input_terminated": True}, **kwargs)


def test_chunked_body_over_the_limit_is_a_413_and_under_it_is_read_whole(make_app):
    """A chunked body was read up to the limit and parsed cut short: a 400 "not valid JSON"
    instead of the 413 the same body gets with a Content-Length."""
    client = make_app(OPEN_CLASSIFY=True, MAX_CONTENT_LENGTH=1000).test_client()

    def post_of(size):
        post = json.dumps({"id": "c1", "title": "", "body": ""}).encode()
        return post[:-2] + b"x" * (size - len(post)) + post[-2:]

    for size in (1001, 5000):
        assert len(post_of(size)) == size
        assert assert_error_shape(post_chunked(client, "/v1/classify", post_of(size)), 413)["errors"] == [TOO_LARGE_1000]
    whole = post_chunked(client, "/v1/classify", post_of(1000))  # exactly the limit: read to its end
    assert whole.status_code == 200 and whole.get_json()["id"] == "c1"
    batch = json.dumps({"posts": [{"id": "b", "title": "", "body": "x" * 2000}]}).encode()
    assert assert_error_shape(post_chunked(client, "/v1/classify/batch", batch), 413)["errors"] == [TOO_LARGE_1000]


def test_bodies_are_read_for_their_length_or_to_their_end(client):
    """A body is read for its Content-Length; one that ends early is a 400 that says so; a body
    without Content-Length (chunked, which gunicorn marks as terminated) is read to its end."""
    post = json.dumps({"id": "b1", "title": "Otsu", "body": "Threshold the stack first."}).encode()
    assert client.post("/v1/classify", data=post, content_type="application/json").status_code == 200
    short = client.post("/v1/classify", content_type="application/json",
                        environ_overrides={"wsgi.input": io.BytesIO(post), "CONTENT_LENGTH": str(len(post) + 50)})
    assert f"ended after {len(post)} of its {len(post) + 50} bytes" in assert_error_shape(short, 400)["errors"][0]
    chunked = client.post("/v1/classify", content_type="application/json",
                          environ_overrides={"wsgi.input": io.BytesIO(post), "HTTP_TRANSFER_ENCODING": "chunked",
                                             "wsgi.input_terminated": True})
    assert chunked.status_code == 200 and chunked.get_json()["id"] == "b1"
    invalid_utf8 = client.post("/v1/classify", data=b'{"id": "\xff"}', content_type="application/json")
    assert_error_shape(invalid_utf8, 400)


def test_a_body_whose_reading_fails_is_a_400(client):
    """The server's reader raises when a client goes away mid-body or breaks the chunk framing
    (gunicorn's NoMoreData is an IOError): a 400, not the generic 500."""
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise OSError("No more data after: b'{\"id\"'")

    for environ in ({"CONTENT_LENGTH": "40"}, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}):
        response = client.post("/v1/classify", content_type="application/json",
                               environ_overrides={"wsgi.input": Broken(), **environ})
        assert assert_error_shape(response, 400)["errors"] == ["the request body ended early or is not validly chunked"]


def test_flask_404_and_405_use_the_same_shape(client):
    assert_error_shape(client.get("/nope"), 404)
    assert_error_shape(client.get("/v1/classify"), 405)


def test_health_ready_and_model(client):
    assert client.get("/healthz").get_json() == {"ok": True}
    assert client.get("/readyz").status_code == 200
    info = client.get("/v1/model").get_json()
    assert {"version", "created", "thresholds", "metrics", "label_counts"} <= set(info)
    from classifier.model import COMPILED

    assert info["compiled_scoring"] is COMPILED


def test_not_ready_without_model(make_app, tmp_path):
    client = make_app(OPEN_CLASSIFY=True, MODEL_DIR=str(tmp_path / "empty")).test_client()
    assert client.get("/healthz").status_code == 200
    assert_error_shape(client.get("/readyz"), 503)
    assert_error_shape(client.post("/v1/classify", json={"id": 1, "title": "", "body": "x"}), 503)


POST = {"id": "p1", "title": "Watershed splits nuclei", "body": "Thanks, lowering the sigma fixed it.",
        "category": "3D Segmentation"}
SPAM = {"id": "s1", "title": "Rocket launch delayed",
        "body": "The space agency delayed the launch. To get more space news, you can visit StarDaily official website.",
        "category": "3D Segmentation"}


def test_batch_answers_in_order_with_one_model_version(client):
    posts = [dict(POST, id=i) if i % 2 else dict(SPAM, id=i) for i in range(7)]
    r = client.post("/v1/classify/batch", json={"posts": posts})
    assert r.status_code == 200
    body = r.get_json()
    assert [x["id"] for x in body["results"]] == list(range(7))
    assert {x["model_version"] for x in body["results"]} == {body["model_version"]}
    single = client.post("/v1/classify", json=posts[2]).get_json()
    assert body["results"][2] == single  # same answer as one at a time


@pytest.mark.parametrize("payload, message", [
    ({"posts": []}, "posts must hold 1 to 3 posts, got 0"),
    ({"posts": [POST] * 4}, "posts must hold 1 to 3 posts, got 4"),
    ({"posts": "x"}, 'send {"posts": [post, ...]}'),
    ([POST], 'send {"posts": [post, ...]}'),
    ({"posts": [POST, {"id": 2, "title": 5, "body": "b"}]}, "posts[1]: title must be a string, got int"),
])
def test_batch_bad_input_names_the_post(make_app, payload, message):
    client = make_app(OPEN_CLASSIFY=True, MAX_BATCH=3).test_client()
    body = assert_error_shape(client.post("/v1/classify/batch", json=payload), 400)
    assert message in body["errors"]


def test_trusted_authors_are_reviewed_never_blocked(client):
    blocked = client.post("/v1/classify", json=SPAM).get_json()
    assert blocked["decision"] == "block"
    for author in ({"trust_level": 3}, {"trust_level": 4, "name": "old-timer"}, {"reputation": 25000}):
        r = client.post("/v1/classify", json=dict(SPAM, author=author)).get_json()
        assert r["decision"] == "review" and r["scores"] == blocked["scores"]
    newcomer = client.post("/v1/classify", json=dict(SPAM, author={"trust_level": 0, "account_age_days": 0}))
    assert newcomer.get_json()["decision"] == "block"


def test_trust_level_is_configurable(make_app):
    client = make_app(OPEN_CLASSIFY=True, TRUSTED_TRUST_LEVEL=1).test_client()
    assert client.post("/v1/classify", json=dict(SPAM, author={"trust_level": 1})).get_json()["decision"] == "review"
    # null turns a rule off (TrustPolicy's None), the other rule still applies
    off = make_app(OPEN_CLASSIFY=True, TRUSTED_TRUST_LEVEL=None).test_client()
    assert off.post("/v1/classify", json=dict(SPAM, author={"trust_level": 4})).get_json()["decision"] == "block"
    assert off.post("/v1/classify", json=dict(SPAM, author={"reputation": 5000})).get_json()["decision"] == "review"


@pytest.mark.parametrize("author, message", [
    ({"trust_level": "high"}, "author.trust_level must be a number, got str"),
    ({"reputation": True}, "author.reputation must be a number, got bool"),
    ({"name": 5}, "author.name must be a string, got int"),
    ("bob", "author must be an object, got str"),
])
def test_author_fields_are_type_checked(client, author, message):
    body = assert_error_shape(client.post("/v1/classify", json=dict(POST, author=author)), 400)
    assert message in body["errors"]


def test_very_long_posts_are_flagged_truncated(client):
    short = client.post("/v1/classify", json=POST).get_json()
    long = client.post("/v1/classify", json=dict(POST, body="Thanks, lowering the sigma fixed it. " * 2000)).get_json()
    assert short["truncated"] is False
    assert long["truncated"] is True and long["decision"] != "allow"


def test_feedback_is_stored_idempotently(client, make_key, app):
    key = make_key("feedback")
    label = dict(POST, label="spam", moderator="ann", note="link drop")
    first = client.post("/v1/feedback", json=label, headers=bearer(key))
    again = client.post("/v1/feedback", json=label, headers=bearer(key))
    flipped = client.post("/v1/feedback", json=dict(label, label="ok"), headers=bearer(key))
    assert (first.status_code, first.get_json()["status"]) == (201, "created")
    assert (again.status_code, again.get_json()["status"]) == (200, "unchanged")
    assert (flipped.status_code, flipped.get_json()["revision"]) == (201, 2)
    store = app.extensions["postsieve.feedback"]
    assert [h.label for h in store.history("forum", "p1")] == ["spam", "ok"]
    assert first.get_json()["source"] == "forum"  # the key's name


def test_feedback_needs_only_the_body_and_its_source_is_the_key(client, make_key, app):
    label = {"id": 9, "body": "Buy cheap pills at medsnow.shop", "label": "spam", "source": "forum-b"}
    r = client.post("/v1/feedback", json=label, headers=bearer(make_key("feedback")))
    assert r.status_code == 201 and r.get_json()["source"] == "forum"  # not forum-b: no writing as another forum
    [stored] = app.extensions["postsieve.feedback"].latest()
    assert stored.post.title == "" and stored.post.id == "9" and stored.source == "forum"
    hosted = client.post("/v1/feedback", json=label, headers=bearer(make_key("admin", name="host")))
    assert hosted.get_json()["source"] == "forum-b"  # a multi-forum host's admin key may name the forum


@pytest.mark.parametrize("source, message", [
    (7, "source must be a string, got int"),
    (" forum-b ", "source must not start or end with spaces"),
    ("x" * 201, "source must be 1 to 200 characters"),
    ("forum\x00b", "source must not hold control characters or lone surrogates"),
])
def test_a_source_an_admin_key_names_is_refused_rather_than_stored_altered(client, make_key, app, source, message):
    """It was cut to 200 characters, stripped, or (not a string) replaced by the key's name: labels
    then landed under a source the forum never sent."""
    label = {"id": 9, "body": "Buy cheap pills at medsnow.shop", "label": "spam", "source": source}
    admin = bearer(make_key("admin", name="host"))
    body = assert_error_shape(client.post("/v1/feedback", json=label, headers=admin), 400)
    assert body["errors"] == [message]
    assert list(app.extensions["postsieve.feedback"].latest()) == []
    assert_error_shape(client.post("/v1/classify", json={**POST, "source": source}, headers=admin), 400)
    blank = client.post("/v1/feedback", json={**label, "source": "  "}, headers=admin)
    assert blank.get_json()["source"] == "host"  # not named: the key's own, as when absent


def test_a_null_title_in_feedback_is_no_title(client, make_key, app):
    """Replies have no title: null was a 400 'title is required' while leaving it out was taken."""
    r = client.post("/v1/feedback", json={"id": "r1", "title": None, "body": "buy cheap pills", "label": "spam"},
                    headers=bearer(make_key("feedback")))
    assert r.status_code == 201
    assert next(iter(app.extensions["postsieve.feedback"].latest())).post.title == ""


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_nan_and_infinity_are_not_json(client, make_key, app, constant):
    """Python's parser takes them; stored, `feedback export` wrote them back as JSON strict parsers refuse."""
    raw = '{"id": "n1", "body": "buy pills", "label": "spam", "author": {"trust_level": %s}}' % constant
    body = assert_error_shape(client.post("/v1/feedback", data=raw, content_type="application/json",
                                          headers=bearer(make_key("feedback"))), 400)
    assert body["error"] == f"the request body holds {constant}, which JSON has no number for"
    assert list(app.extensions["postsieve.feedback"].latest()) == []


def test_a_json_null_body_is_named_as_not_an_object(client):
    body = assert_error_shape(client.post("/v1/classify", data="null", content_type="application/json"), 400)
    assert body["error"] == "a post must be a JSON object, got NoneType"


@pytest.mark.parametrize("payload, message", [
    ({"id": 1, "body": "x", "label": "ham"}, "label must be one of ok, spam, off_topic, got 'ham'"),
    ({"id": 1, "body": "x"}, "label is required"),
    ({"body": "x", "label": "spam"}, "id is required"),
    ({"id": 1, "body": "", "title": "", "label": "spam"}, "title or body is needed to learn from a label"),
])
def test_feedback_bad_input(client, make_key, payload, message):
    body = assert_error_shape(client.post("/v1/feedback", json=payload, headers=bearer(make_key("feedback"))), 400)
    assert message in body["errors"]


def test_metrics_count_requests_decisions_and_model_version(client):
    client.post("/v1/classify", json=SPAM)
    client.post("/v1/classify", json=POST)
    client.get("/nope")
    client.get("/v1/classify")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'postsieve_http_requests_total{endpoint="/v1/classify",method="POST",status="200"} 2.0' in text
    assert 'postsieve_http_requests_total{endpoint="unmatched",method="GET",status="404"} 1.0' in text
    # a method the route does not take counts under the route, not as a path nobody serves
    assert 'postsieve_http_requests_total{endpoint="/v1/classify",method="GET",status="405"} 1.0' in text
    assert 'postsieve_decisions_total{decision="block",label="spam"} 1.0' in text
    assert 'postsieve_http_request_duration_seconds_bucket{endpoint="/v1/classify",le="+Inf"} 3.0' in text
    version = client.get("/v1/model").get_json()["version"]
    assert f'postsieve_model_info{{version="{version}"}} 1.0' in text



def test_metrics_say_when_a_version_is_refused_and_when_decisions_are_not_written(app, client, tiny_models_dir):
    """Nothing in /metrics showed either: Prometheus could not alert on a refused model or on
    statistics that stopped being written."""
    client.post("/v1/classify", json=POST)
    text = client.get("/metrics").get_data(as_text=True)
    assert "postsieve_model_load_error 0.0" in text and "postsieve_decision_log_failing 0.0" in text
    assert "postsieve_decisions_dropped_total 0.0" in text
    registry = app.extensions["postsieve.registry"]
    (tiny_models_dir / "ACTIVE").write_text("../elsewhere\n")
    registry.reload_if_changed()
    decision_log = app.extensions["postsieve.decision_log"]
    decision_log.flush()  # nothing buffered: the writer thread has nothing to write, nor state to reset
    decision_log.last_error, decision_log.dropped = "OperationalError", 7
    text = client.get("/metrics").get_data(as_text=True)
    assert "postsieve_model_load_error 1.0" in text and "postsieve_decision_log_failing 1.0" in text
    assert "postsieve_decisions_dropped_total 7.0" in text
    decision_log.last_error, decision_log.dropped = None, 9
    client.post("/v1/classify", json=POST)  # counted after the response, as every request is
    text = client.get("/metrics").get_data(as_text=True)
    assert "postsieve_decision_log_failing 0.0" in text and "postsieve_decisions_dropped_total 9.0" in text


def test_bookkeeping_runs_after_the_response_is_sent(app):
    """Metrics and the decision log wait until the server closes the response (as gunicorn does
    once the answer is out), so they never delay the forum."""
    def decisions():
        text = app.extensions["postsieve.metrics"].render()[0].decode()
        return [line for line in text.splitlines() if line.startswith("postsieve_decisions_total{")]

    r = app.test_client().post("/v1/classify", json=SPAM, buffered=False)
    assert r.status_code == 200 and r.get_json()["label"] == "spam"
    assert decisions() == [] and app.extensions["postsieve.decision_log"]._rows == []
    r.close()
    assert decisions() == ['postsieve_decisions_total{decision="block",label="spam"} 1.0']
    assert len(app.extensions["postsieve.decision_log"]._rows) == 1
    r.close()  # a server that closes twice still counts once
    assert decisions() == ['postsieve_decisions_total{decision="block",label="spam"} 1.0']
    assert len(app.extensions["postsieve.decision_log"]._rows) == 1


def test_failing_bookkeeping_is_logged_and_the_answer_stands(app, client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.extensions["postsieve.decision_log"], "record", broken)
    r = client.post("/v1/classify", json=SPAM)
    assert r.status_code == 200 and r.get_json()["label"] == "spam"
    assert "bookkeeping after a response failed" in caplog.text
    text = client.get("/metrics").get_data(as_text=True)  # the request itself was still counted
    assert 'postsieve_http_requests_total{endpoint="/v1/classify",method="POST",status="200"} 1.0' in text


def test_a_lost_database_is_a_503_everywhere_never_a_500(app, client, make_key):
    from classifier.database import normalise_url

    key = bearer(make_key("admin"))
    assert client.get("/readyz").status_code == 200
    database = app.extensions["postsieve.database"]  # the one object every store shares
    database.url = normalise_url("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
    database.dispose()
    app.extensions["postsieve.keys"].ttl = 0
    assert "database unreachable" in assert_error_shape(client.get("/readyz"), 503)["error"]
    assert_error_shape(client.post("/v1/classify", json=POST, headers=key), 503)
    assert_error_shape(client.post("/v1/feedback", json=dict(POST, label="ok"), headers=key), 503)
    assert_error_shape(client.post("/1.1/verify-key", data={"key": key["Authorization"][7:]}), 503)
    assert_error_shape(client.get("/v1/stats", headers=key), 503)


@pytest.mark.parametrize("config, message", [
    ({"MAX_BATCH": "lots"}, "POSTSIEVE_MAX_BATCH must be an integer >= 1, got 'lots'"),
    ({"OPEN_CLASSIFY": "yes"}, "POSTSIEVE_OPEN_CLASSIFY must be true or false"),
    ({"KEY_CACHE_SECONDS": -1}, "POSTSIEVE_KEY_CACHE_SECONDS must be a finite number >= 0"),
    ({"KEY_CACHE_SECONDS": float("inf")}, "must be a finite number >= 0, got inf"),  # revoked keys kept working
    ({"MODEL_CHECK_INTERVAL": float("inf")}, "POSTSIEVE_MODEL_CHECK_INTERVAL must be a finite number"),  # no swaps
    ({"MODEL_DIR": 123}, "POSTSIEVE_MODEL_DIR must be a string, got 123"),
    ({"DATABASE_URL": True}, "POSTSIEVE_DATABASE_URL must be a string, got True"),
    ({"MAX_BATCH": 10 ** 400}, None),  # no double holds it: fine as a limit, was an OverflowError
    ({"MAX_BATCH": 0}, "POSTSIEVE_MAX_BATCH must be an integer >= 1, got 0"),  # every batch refused
    ({"MAX_CONTENT_LENGTH": None}, "POSTSIEVE_MAX_CONTENT_LENGTH must be an integer >= 1, got None"),  # no limit
    ({"TRUSTED_TRUST_LEVEL": "high"}, "POSTSIEVE_TRUSTED_TRUST_LEVEL must be an integer >= 0, got 'high'"),
])
def test_wrong_setting_types_fail_at_start(make_app, config, message):
    if message is None:
        make_app(**config)
        return
    with pytest.raises(ValueError, match=message):
        make_app(**config)


def test_paths_and_urls_from_the_environment_are_taken_as_written(make_app, monkeypatch, tmp_path, tiny_models_dir):
    """Parsed as JSON they became a number or a bool, or lost their quotes (POSTSIEVE_MODEL_DIR=123
    crashed gunicorn's master), while the command line took the same variable as written."""
    from flask import Config

    from service.config import check_environment, from_environment

    monkeypatch.setenv("POSTSIEVE_MODEL_DIR", "123")
    monkeypatch.setenv("POSTSIEVE_DATABASE_URL", '"sqlite:///quoted.db"')
    assert not [w for w in check_environment() if "MODEL_DIR" in w or "DATABASE_URL" in w]
    config = Config(".")
    from_environment(config)
    assert config["MODEL_DIR"] == "123" and config["DATABASE_URL"] == '"sqlite:///quoted.db"'
    # a path object from a test or a script is taken as its text
    assert make_app(MODEL_DIR=tiny_models_dir).config["MODEL_DIR"] == str(tiny_models_dir)


def test_unknown_postsieve_variables_are_named_with_the_setting_meant():
    from service.config import unknown_variable_warnings

    environ = {"POSTSIEVE_MAX_BATCHES": "5", "POSTSIEVE_MAX_BATCH": "5", "POSTSIEVE_DATA_DIR": "/x",
               "POSTSIEVE_WHATEVER": "1", "PATH": "/bin"}
    assert unknown_variable_warnings(environ) == [
        "POSTSIEVE_MAX_BATCHES is not a postsieve setting and is ignored (did you mean POSTSIEVE_MAX_BATCH?)",
        "POSTSIEVE_WHATEVER is not a postsieve setting and is ignored",
    ]
