"""API keys, scopes and rate limits through the real app."""
import time

import pytest
import sqlalchemy as sa

from service.keys import InvalidKeyRequest, KeyCache, KeyStore
from service.ratelimit import RateLimiter
from tests.service.conftest import bearer
from tests.service.helpers import assert_error_shape

POST = {"id": 1, "title": "", "body": "Thanks, lowering the sigma fixed it."}
LABEL = dict(POST, label="ok")


@pytest.fixture()
def closed(make_app):
    return make_app(OPEN_CLASSIFY=False)


def key_for(app, *scopes, rate=None, name="forum"):
    return KeyStore(app.extensions["postsieve.database"]).create(name, scopes, rate_per_minute=rate)[0]


def test_classify_needs_a_key_unless_configured_open(closed, make_app):
    client = closed.test_client()
    body = assert_error_shape(client.post("/v1/classify", json=POST), 401)
    assert "an API key with scope 'classify' is required" in body["error"]
    assert client.post("/v1/classify", json=POST).headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/v1/classify", json=POST, headers=bearer(key_for(closed, "classify"))).status_code == 200
    assert_error_shape(client.post("/v1/classify/batch", json={"posts": [POST]}), 401)


def test_feedback_needs_a_key_even_when_classify_is_open(app):
    client = app.test_client()
    assert client.post("/v1/classify", json=POST).status_code == 200
    assert_error_shape(client.post("/v1/feedback", json=LABEL), 401)


@pytest.mark.parametrize("header", ["Bearer psk_000000000000_nope", "Bearer nonsense", "Basic dXNlcjpwdw==",
                                    "Bearer ", "psk_x"])
def test_unknown_or_malformed_keys_are_401(closed, header):
    assert_error_shape(closed.test_client().post("/v1/classify", json=POST, headers={"Authorization": header}), 401)


def test_scopes_are_enforced_and_admin_implies_all(closed):
    client = closed.test_client()
    classify_only = key_for(closed, "classify")
    body = assert_error_shape(client.post("/v1/feedback", json=LABEL, headers=bearer(classify_only)), 403)
    assert "lacks the 'feedback' scope" in body["error"]
    feedback_only = key_for(closed, "feedback", name="mods")
    assert_error_shape(client.post("/v1/classify", json=POST, headers=bearer(feedback_only)), 403)
    admin = key_for(closed, "admin", name="ops")
    assert client.post("/v1/classify", json=POST, headers=bearer(admin)).status_code == 200
    assert client.post("/v1/feedback", json=LABEL, headers=bearer(admin)).status_code == 201


def test_revoked_keys_stop_working(make_app):
    app = make_app(KEY_CACHE_SECONDS=0)
    key = key_for(app, "classify")
    client = app.test_client()
    assert client.post("/v1/classify", json=POST, headers=bearer(key)).status_code == 200
    KeyStore(app.extensions["postsieve.database"]).revoke("forum")
    assert_error_shape(client.post("/v1/classify", json=POST, headers=bearer(key)), 401)


def test_rate_limit_gives_429_with_retry_after(closed):
    client = closed.test_client()
    key = key_for(closed, "classify", rate=3)
    statuses = [client.post("/v1/classify", json=POST, headers=bearer(key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    over = client.post("/v1/classify", json=POST, headers=bearer(key))
    body = assert_error_shape(over, 429)
    assert "rate limit of 3 requests per minute" in body["error"]
    assert 1 <= int(over.headers["Retry-After"]) <= 20
    other = key_for(closed, "classify", rate=3, name="other forum")  # its own bucket
    assert client.post("/v1/classify", json=POST, headers=bearer(other)).status_code == 200


def test_server_default_rate_applies_to_keys_without_their_own(make_app):
    app = make_app(RATE_LIMIT_PER_MINUTE=2)
    client, key = app.test_client(), key_for(app, "classify")
    assert [client.post("/v1/classify", json=POST, headers=bearer(key)).status_code for _ in range(3)] == [200, 200, 429]
    unlimited = key_for(app, "classify", rate=0, name="batch job")
    assert {client.post("/v1/classify", json=POST, headers=bearer(unlimited)).status_code for _ in range(10)} == {200}


def test_buckets_refill_over_time():
    limiter = RateLimiter(slots=8)
    assert limiter.hit(1, 60) == 0.0
    for _ in range(59):
        limiter.hit(1, 60)
    wait = limiter.hit(1, 60)
    assert 0 < wait <= 1.0
    time.sleep(wait + 0.05)
    assert limiter.hit(1, 60) == 0.0


def test_keys_that_share_a_home_slot_are_both_limited():
    limiter = RateLimiter(slots=4)
    assert limiter.hit(1, 1) == 0.0 and limiter.hit(5, 1) == 0.0  # 5 probes on to a free slot
    assert limiter.hit(1, 1) > 0 and limiter.hit(5, 1) > 0
    crowded = RateLimiter(slots=2)  # fewer slots than keys: they share, and are limited together
    assert crowded.hit(1, 2) == 0.0 and crowded.hit(2, 2) == 0.0
    assert crowded.hit(3, 2) == 0.0 and crowded.hit(3, 2) > 0


def test_buckets_are_shared_with_forked_workers():
    import os

    limiter = RateLimiter(slots=8)
    for _ in range(5):
        limiter.hit(3, 10)
    pid = os.fork()
    if pid == 0:  # a worker forked after the app was built takes from the same bucket
        for _ in range(5):
            limiter.hit(3, 10)
        os._exit(0)
    os.waitpid(pid, 0)
    assert limiter.hit(3, 10) > 0


def test_keys_are_stored_only_as_digests(database):
    store = KeyStore(database)
    plain, key = store.create("forum", ["classify"])
    assert plain.startswith(f"psk_{key.key_id}_") and len(plain) > 50
    with database.engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM api_keys"))]
    secret = plain.split("_", 2)[2]  # the secret itself may contain "_"
    assert rows and not any(plain in cell or secret in cell for row in rows for cell in row)
    assert store.verify(plain).name == "forum"
    assert store.verify(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    assert store.verify(f"psk_{key.key_id}") is None


def test_key_store_lists_and_revokes(database):
    store = KeyStore(database)
    plain, _ = store.create("forum", ["classify,feedback"], rate_per_minute=100)
    [listed] = store.list()
    assert listed.scopes == {"classify", "feedback"} and listed.rate_per_minute == 100
    assert [k.name for k in store.revoke("forum")] == ["forum"]
    assert store.verify(plain) is None and store.list()[0].revoked_at is not None
    with pytest.raises(InvalidKeyRequest, match="no live key named"):
        store.revoke("forum")


@pytest.mark.parametrize("scopes, message", [(["read"], "got read"), ([], "got none"), (["classify,root"], "got root")])
def test_unknown_scopes_are_refused(database, scopes, message):
    with pytest.raises(InvalidKeyRequest, match=message):
        KeyStore(database).create("forum", scopes)


@pytest.mark.parametrize("name, message", [
    ("forum\tone", "name must not hold control characters"),
    ("x" * 201, "name must be 1 to 200 characters"),
    ("  ", "name must be 1 to 200 characters"),
])
def test_a_key_name_no_label_source_could_carry_is_refused(database, name, message):
    """The name is the source of the key's labels: with a tab in it, every feedback call was a 400."""
    with pytest.raises(InvalidKeyRequest, match=message):
        KeyStore(database).create(name, ["feedback"])
    assert KeyStore(database).list() == []


def test_key_cache_remembers_answers_for_its_ttl(database):
    store = KeyStore(database)
    plain, _ = store.create("forum", ["classify"])
    cache = KeyCache(store, ttl=60)
    assert cache.verify(plain) is not None
    store.revoke("forum")
    assert cache.verify(plain) is not None  # still cached
    assert KeyCache(store, ttl=0).verify(plain) is None
