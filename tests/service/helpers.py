"""Assertions shared by the service tests."""


def assert_error_shape(response, status):
    """The one JSON error shape: ok, error, errors, status (and nothing else)."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert set(body) == {"ok", "error", "errors", "status"}
    assert body["ok"] is False and body["status"] == status
    assert body["errors"] and body["error"] == body["errors"][0]
    assert "Traceback" not in response.get_data(as_text=True)
    return body
