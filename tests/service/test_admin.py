"""Admin endpoints: model versions, background retraining jobs, overturn statistics."""
import json
import time

import pytest

from classifier.jobs import JobStore
from tests.conftest import tiny_examples
from tests.service.conftest import bearer
from tests.service.helpers import assert_error_shape
from tests.service.test_openapi import check

SPAM = {"id": "s1", "title": "", "body": "Buy cheap pills without prescription at medsnow.shop, fast delivery."}


@pytest.fixture()
def tiny_corpus(tmp_path, monkeypatch):
    path = tmp_path / "corpus.jsonl"
    with path.open("w") as f:
        for e in tiny_examples():
            f.write(json.dumps({"id": e.post.id, "title": e.post.title, "body": e.post.body,
                                "category": e.post.category, "label": e.label, "promo": list(e.promo)}) + "\n")
    monkeypatch.setenv("POSTSIEVE_CORPUS", str(path))  # what the job process trains on
    return path


def test_admin_endpoints_need_the_admin_scope(client, make_key):
    key = bearer(make_key("classify", "feedback"))
    for method, path in [("get", "/v1/models"), ("post", "/v1/models/retrain"), ("get", "/v1/models/jobs/x"),
                         ("get", "/v1/stats")]:
        assert_error_shape(getattr(client, method)(path), 401)
        assert_error_shape(getattr(client, method)(path, headers=key), 403)


def test_models_lists_versions_with_the_active_one(client, make_key):
    spec = client.get("/openapi.json").get_json()
    r = client.get("/v1/models", headers=bearer(make_key("admin")))
    body = check(spec, r, "/v1/models", "get")
    assert r.status_code == 200 and body["versions"][0]["active"] and body["active"] == body["versions"][0]["version"]


@pytest.mark.parametrize("payload, message", [
    ({"force": "yes"}, "force must be true or false"),
    ({"seed": 1.5}, "seed must be a number"),
    ({"epochs": 3}, "unknown option 'epochs'"),
    ([], "send a JSON object of options"),
])
def test_retrain_options_are_checked(client, make_key, payload, message):
    body = assert_error_shape(client.post("/v1/models/retrain", json=payload, headers=bearer(make_key("admin"))), 400)
    assert message in " ".join(body["errors"])


def test_a_retrain_job_runs_in_the_background_and_reports(app, client, make_key, tiny_corpus):
    spec = client.get("/openapi.json").get_json()
    admin = bearer(make_key("admin"))
    for i in range(12):
        client.post("/v1/feedback", headers=admin, json={"id": f"f{i}", "body": f"Vexmora Vault storage deal {i}",
                                                         "label": "spam"})
    started = client.post("/v1/models/retrain", json={"min_heldout": 2, "max_recall_loss": 1,
                                                      "max_precision_loss": 1, "max_auc_loss": 1}, headers=admin)
    body = check(spec, started, "/v1/models/retrain", "post")
    assert started.status_code == 202 and body["url"] == f"/v1/models/jobs/{body['job']}"
    second = client.post("/v1/models/retrain", headers=admin)
    assert_error_shape(second, 409)  # never two at once
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = client.get(body["url"], headers=admin)
        state = check(spec, job, "/v1/models/jobs/{job_id}", "get")["state"]
        if state in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    done = job.get_json()
    assert done["state"] == "succeeded", done
    assert done["result"]["promoted"] and done["requested_by"] == "forum"
    versions = client.get("/v1/models", headers=admin).get_json()
    assert versions["active"] == done["result"]["version"]
    assert versions["versions"][0]["parent"] == versions["versions"][1]["version"]
    assert versions["versions"][0]["created_by"] == "forum"


def test_a_job_whose_process_died_is_reported_failed(app, client, make_key):
    jobs = JobStore(app.extensions["postsieve.database"])
    job = jobs.create("retrain", {}, "forum")
    jobs.update(job.id, state="running", options={"pid": 2 ** 22 + 12345})  # no such process
    r = client.get(f"/v1/models/jobs/{job.id}", headers=bearer(make_key("admin")))
    assert r.get_json()["state"] == "failed" and "ended without an outcome" in r.get_json()["error"]
    assert_error_shape(client.get("/v1/models/jobs/nope", headers=bearer(make_key("admin", name="x"))), 404)


def test_stats_endpoint_counts_overturns(app, client, make_key):
    spec = client.get("/openapi.json").get_json()
    key = bearer(make_key("admin"))
    assert client.post("/v1/classify", json=SPAM, headers=key).get_json()["decision"] == "block"
    client.post("/v1/feedback", json=dict(SPAM, label="ok"), headers=key)  # a moderator overturns it
    r = client.get("/v1/stats?days=7", headers=key)
    [row] = check(spec, r, "/v1/stats", "get")["rows"]
    assert (row["classified"], row["block"], row["false_positives"]) == (1, 1, 1)
    assert_error_shape(client.get("/v1/stats?days=0", headers=key), 400)
    assert_error_shape(client.get("/v1/stats?days=x", headers=key), 400)
