"""The HTTP layer through Flask's test client, on the tiny model."""
import pytest

from classifier import artifacts
from service import create_app


@pytest.fixture()
def app(tiny_model, tmp_path):
    artifacts.save_model(tiny_model, tmp_path, data_sha256="0" * 64, label_counts={}, metrics={}, params={})
    return create_app({"TESTING": True, "MODEL_DIR": str(tmp_path)})


@pytest.fixture()
def client(app):
    return app.test_client()


def assert_error_shape(response, status):
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"ok", "error", "errors", "status"}
    assert body["ok"] is False and body["status"] == status
    assert body["errors"] and body["error"] == body["errors"][0]
    return body


def test_classify_returns_contract(client):
    r = client.post("/v1/classify", json={"id": 5, "title": "Hi", "body": "Thanks, lowering the sigma fixed it."})
    assert r.status_code == 200
    body = r.get_json()
    assert list(body) == ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"]
    assert body["id"] == 5


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


def test_deeply_nested_json_is_a_400(client):
    body = "[" * 100_000 + "]" * 100_000
    assert_error_shape(client.post("/v1/classify", data=body, content_type="application/json"), 400)


def test_body_over_the_limit_is_a_413(tiny_model, tmp_path):
    artifacts.save_model(tiny_model, tmp_path, data_sha256="0" * 64, label_counts={}, metrics={}, params={})
    client = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path), "MAX_CONTENT_LENGTH": 1000}).test_client()
    assert_error_shape(client.post("/v1/classify", json={"id": 1, "title": "", "body": "x" * 5000}), 413)


def test_flask_404_and_405_use_the_same_shape(client):
    assert_error_shape(client.get("/nope"), 404)
    assert_error_shape(client.get("/v1/classify"), 405)


def test_health_ready_and_model(client):
    assert client.get("/healthz").get_json() == {"ok": True}
    assert client.get("/readyz").status_code == 200
    info = client.get("/v1/model").get_json()
    assert {"version", "created", "thresholds", "metrics", "label_counts"} <= set(info)


def test_not_ready_without_model(tmp_path):
    client = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path / "empty")}).test_client()
    assert client.get("/healthz").status_code == 200
    assert_error_shape(client.get("/readyz"), 503)
    assert_error_shape(client.post("/v1/classify", json={"id": 1, "title": "", "body": "x"}), 503)
