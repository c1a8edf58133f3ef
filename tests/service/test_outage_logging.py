"""A database outage leaves a few lines in the log saying why, never one per request, never a password."""
import logging

from classifier.database import normalise_url
from tests.service.conftest import bearer
from tests.service.helpers import assert_error_shape

POST = {"id": "p1", "title": "", "body": "Thanks, lowering the sigma fixed it."}
PASSWORD = "s3cret-Pw"
NOBODY_LISTENS = f"postgresql://ann:{PASSWORD}@127.0.0.1:1/none?connect_timeout=2"


def move_database(app, url):
    """Point the app's one Database (which every store shares) at another URL."""
    database = app.extensions["postsieve.database"]
    previous = database.url
    database.url = normalise_url(url)
    database.dispose()
    return previous


def warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_readyz_logs_why_the_database_is_away_once_and_when_it_is_back(app, client, caplog):
    """/readyz answered "database unreachable: OperationalError" and nothing said why."""
    assert client.get("/readyz").status_code == 200
    home = move_database(app, NOBODY_LISTENS)
    for _ in range(5):
        body = assert_error_shape(client.get("/readyz"), 503)
        assert body["error"] == "not ready: database unreachable: OperationalError"
    lines = warnings(caplog)
    assert len(lines) == 1 and lines[0].startswith("the database check of /readyz failed: OperationalError: ")
    assert "Connection refused" in lines[0]
    assert PASSWORD not in caplog.text
    move_database(app, home.render_as_string(hide_password=False))
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert warnings(caplog)[1:] == ["the database check of /readyz works again"]


def test_a_key_check_the_database_cannot_answer_is_logged_with_its_cause_not_per_request(app, client, make_key,
                                                                                          caplog):
    """A key check answered "cannot check the key: ... OperationalError" and nothing said why."""
    key = make_key("classify", "feedback")
    app.extensions["postsieve.keys"].ttl = 0  # every request asks the database
    home = move_database(app, NOBODY_LISTENS)
    for _ in range(5):
        body = assert_error_shape(client.post("/v1/feedback", json=dict(POST, label="ok"), headers=bearer(key)), 503)
        assert body["error"] == "cannot check the key: cannot read API keys: OperationalError"
    lines = [line for line in warnings(caplog) if "API key" in line]
    assert len(lines) == 1 and lines[0].startswith("checking an API key failed: OperationalError: ")
    assert "Connection refused" in lines[0]
    assert PASSWORD not in caplog.text and key not in caplog.text and "SELECT" not in caplog.text
    # back: said once, so the next outage is a line of its own, not folded into this one
    move_database(app, home.render_as_string(hide_password=False))
    for _ in range(2):
        assert client.post("/v1/feedback", json=dict(POST, label="ok"), headers=bearer(key)).status_code in (200, 201)
    assert [line for line in warnings(caplog) if "API key" in line][1:] == ["checking an API key works again"]
    move_database(app, NOBODY_LISTENS)
    client.post("/v1/feedback", json=dict(POST, label="ok"), headers=bearer(key))
    assert len([line for line in warnings(caplog) if "API key failed" in line]) == 2
