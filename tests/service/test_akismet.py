"""A forum that already uses Akismet switches to postsieve: the real `akismet` client from PyPI,
its requests routed into the app through its documented custom-httpx-client hook."""
import io

import akismet
import httpx
import pytest

from service.keys import KeyStore

SITE = "https://forum.example.org"
SPAM_TEXT = ("The space agency delayed the launch. To get more space news, you can visit StarDaily "
             "official website.")
HONEST_TEXT = "Thanks, lowering the sigma fixed it."


@pytest.fixture()
def app(make_app):
    return make_app(OPEN_CLASSIFY=False)


def make_key(app, *scopes):
    return KeyStore(app.extensions["postsieve.database"]).create("forum", scopes)[0]


def client_for(app, key):
    """What a forum changes: the key, and an httpx client that reaches postsieve instead of Akismet."""
    http = httpx.Client(transport=httpx.WSGITransport(app=app))
    return akismet.SyncClient.validated_client(config=akismet.Config(key=key, url=SITE), http_client=http)


def test_comment_check_answers_like_akismet(app):
    client = client_for(app, make_key(app, "classify", "feedback"))
    blatant = client.comment_check(user_ip="203.0.113.9", comment_content=SPAM_TEXT, comment_type="forum-post",
                                   comment_author="newbie", user_agent="Mozilla/5.0", permalink=SITE + "/t/1")
    honest = client.comment_check(user_ip="203.0.113.9", comment_content=HONEST_TEXT, comment_type="forum-post")
    assert blatant == akismet.CheckResponse.DISCARD
    assert honest == akismet.CheckResponse.HAM


def test_comment_check_decisions_are_counted_and_logged(app):
    """Through httpx's WSGI transport, which closes each response as a server does."""
    client = client_for(app, make_key(app, "classify"))
    assert client.comment_check(user_ip="203.0.113.9", comment_content=SPAM_TEXT) == akismet.CheckResponse.DISCARD
    text = app.extensions["postsieve.metrics"].render()[0].decode()
    assert 'postsieve_decisions_total{decision="block",label="spam"} 1.0' in text
    assert 'postsieve_http_requests_total{endpoint="/1.1/comment-check",method="POST",status="200"} 1.0' in text
    assert app.extensions["postsieve.decision_log"].flush() == 1


def test_administrators_always_pass(app):
    client = client_for(app, make_key(app, "classify"))
    assert client.comment_check(user_ip="203.0.113.9", comment_content=SPAM_TEXT,
                                user_role="administrator") == akismet.CheckResponse.HAM


def test_submissions_land_in_the_feedback_store(app):
    client = client_for(app, make_key(app, "classify", "feedback"))
    assert client.submit_spam(user_ip="203.0.113.9", comment_content=SPAM_TEXT, comment_author="newbie")
    assert client.submit_ham(user_ip="203.0.113.9", comment_content=HONEST_TEXT, comment_author="regular")
    assert client.submit_ham(user_ip="203.0.113.9", comment_content=SPAM_TEXT, comment_author="newbie")  # overturned
    labels = {row.post.body: row for row in app.extensions["postsieve.feedback"].latest()}
    assert labels[HONEST_TEXT].label == "ok" and labels[SPAM_TEXT].label == "ok"
    # the key's name is the source: a key cannot write labels under another forum's name via `blog`
    assert labels[SPAM_TEXT].source == "forum" and labels[SPAM_TEXT].channel == "akismet"
    history = app.extensions["postsieve.feedback"].history("forum", labels[SPAM_TEXT].post.id)
    assert [h.label for h in history] == ["spam", "ok"]


def test_a_wrong_key_fails_the_way_akismet_clients_expect(app):
    http = httpx.Client(transport=httpx.WSGITransport(app=app))
    with pytest.raises(akismet.APIKeyError):
        akismet.SyncClient.validated_client(config=akismet.Config(key="psk_000000000000_wrong", url=SITE),
                                            http_client=http)
    classify_only = akismet.SyncClient(config=akismet.Config(key=make_key(app, "classify"), url=SITE),
                                       http_client=http)
    with pytest.raises(akismet.APIKeyError):
        classify_only.submit_spam(user_ip="203.0.113.9", comment_content=SPAM_TEXT)


def test_open_classify_serves_comment_check_without_a_key(make_app):
    app = make_app(OPEN_CLASSIFY=True)
    r = app.test_client().post("/1.1/comment-check", data={"blog": SITE, "comment_content": SPAM_TEXT})
    assert r.get_data(as_text=True) == "true" and r.headers["X-akismet-pro-tip"] == "discard"
    assert r.headers["X-postsieve-decision"] == "block" and r.headers["X-postsieve-label"] == "spam"


def test_json_sent_to_akismet_endpoints_is_a_415(app):
    from tests.service.helpers import assert_error_shape

    assert_error_shape(app.test_client().post("/1.1/comment-check", json={"comment_content": "x"}), 415)


def test_chunked_forms_are_read_whole_and_over_the_limit_are_a_413(make_app):
    """A chunked form was read up to MAX_CONTENT_LENGTH and the part read was parsed as the whole
    form: a comment cut short was classified (or a key cut off answered `invalid`) where the same
    form with a Content-Length gets the 413."""
    from urllib.parse import urlencode

    from service.akismet import THANKS
    from tests.service.helpers import assert_error_shape

    app = make_app(OPEN_CLASSIFY=False, MAX_CONTENT_LENGTH=1000)
    key = make_key(app, "classify", "feedback")
    client = app.test_client()

    def form(content):  # the key last, where a form cut short loses it
        return urlencode({"blog": SITE, "comment_content": content, "api_key": key}).encode()

    def post_chunked(path, body):  # as gunicorn hands a chunked request to the app
        return client.post(path, content_type="application/x-www-form-urlencoded",
                           headers={"Transfer-Encoding": "chunked"}, input_stream=io.BytesIO(body),
                           environ_overrides={"wsgi.input_terminated": True})

    for path in ("/1.1/comment-check", "/1.1/submit-spam", "/1.1/verify-key"):
        assert assert_error_shape(post_chunked(path, form("x" * 1000)), 413)["errors"] == [
            "the request body is larger than the limit of 1000 bytes (POSTSIEVE_MAX_CONTENT_LENGTH)"]
    content = SPAM_TEXT + " " + "y" * (1000 - len(form(SPAM_TEXT + " ")))
    assert len(form(content)) == 1000  # exactly the limit: read to its end
    response = post_chunked("/1.1/submit-spam", form(content))
    assert response.status_code == 200 and response.get_data(as_text=True) == THANKS
    assert [label.post.body for label in app.extensions["postsieve.feedback"].latest()] == [content]
    response = post_chunked("/1.1/comment-check", form(SPAM_TEXT))
    assert response.get_data(as_text=True) == "true" and response.headers["X-akismet-pro-tip"] == "discard"


def test_a_submission_without_content_says_what_akismet_field_is_missing(app):
    from tests.service.helpers import assert_error_shape

    key = make_key(app, "feedback")
    for content in ("", "   "):
        body = assert_error_shape(app.test_client().post(
            "/1.1/submit-ham", data={"blog": SITE, "api_key": key, "comment_content": content}), 400)
        assert body["error"].startswith("comment_content is needed")
    assert list(app.extensions["postsieve.feedback"].latest()) == []


def test_a_form_field_over_werkzeugs_field_limit_is_not_blamed_on_the_body_limit(app):
    """werkzeug answers 413 for one multipart field over MAX_FORM_MEMORY_SIZE (500 kB) in a body
    well under the 1 MiB limit: its message stays, rather than ours naming the body limit."""
    from tests.service.helpers import assert_error_shape

    key = make_key(app, "classify")
    response = app.test_client().post("/1.1/comment-check", content_type="multipart/form-data",
                                      data={"api_key": key, "blog": SITE, "comment_content": "x" * 600_000})
    errors = assert_error_shape(response, 413)["errors"]
    assert "POSTSIEVE_MAX_CONTENT_LENGTH" not in errors[0] and errors[0]
