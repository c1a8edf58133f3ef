"""Admin endpoints: model versions, background retraining jobs, overturn statistics."""
import json
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from classifier.jobs import START_TIMEOUT, JobStore
from classifier.schema import jobs as jobs_table
from service import admin
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


def job_count(app) -> int:
    with app.extensions["postsieve.database"].engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar()


@pytest.mark.parametrize("payload, message", [
    ({"force": "yes"}, "force must be true or false"),
    ({"force": 1}, "force must be true or false"),
    ({"seed": 1.5}, "seed must be an integer, got 1.5"),
    ({"seed": "3"}, "seed must be an integer"),
    ({"min_heldout": 2.0}, "min_heldout must be an integer"),
    ({"holdout": "0.5"}, "holdout must be a finite number"),
    ({"holdout": True}, "holdout must be a finite number"),
    ('{"holdout": NaN}', "the request body holds NaN, which JSON has no number for"),
    ('{"feedback_weight": Infinity}', "the request body holds Infinity, which JSON has no number for"),
    ({"epochs": 3}, "unknown option 'epochs'"),
    ([], "send a JSON object of options"),
    # the ranges `postsieve retrain` accepts: a job with these used to be queued and never run
    ({"holdout": 5}, "holdout: 5.0 is not in the range 0<x<1"),
    ({"holdout": 0}, "holdout: 0.0 is not in the range 0<x<1"),
    ({"holdout": 1}, "holdout: 1.0 is not in the range 0<x<1"),
    ({"feedback_weight": 0}, "feedback_weight: 0.0 is not in the range x>0"),
    ({"max_recall_loss": 1.5}, "max_recall_loss: 1.5 is not in the range 0<=x<=1"),
    ({"max_precision_loss": -0.01}, "max_precision_loss: -0.01 is not in the range 0<=x<=1"),
    ({"max_auc_loss": 2}, "max_auc_loss: 2.0 is not in the range 0<=x<=1"),
    ({"max_spam_auc_loss": -1}, "max_spam_auc_loss: -1.0 is not in the range 0<=x<=1"),
    ({"min_heldout": 0}, "min_heldout: 0 is not in the range x>=1"),
    ({"seed": -1}, "seed: -1 is not in the range 0<=x<=4294967295"),
    ({"seed": 2 ** 32}, "seed: 4294967296 is not in the range 0<=x<=4294967295"),
])
def test_retrain_options_are_checked_before_anything_is_queued(app, client, make_key, payload, message):
    headers = bearer(make_key("admin"))
    if isinstance(payload, str):
        r = client.post("/v1/models/retrain", data=payload, content_type="application/json", headers=headers)
    else:
        r = client.post("/v1/models/retrain", json=payload, headers=headers)
    body = assert_error_shape(r, 400)
    assert message in " ".join(body["errors"])
    assert job_count(app) == 0


def test_every_bad_retrain_option_is_named(app, client, make_key):
    r = client.post("/v1/models/retrain", json={"holdout": 5, "seed": "x", "force": True, "min_heldout": 0},
                    headers=bearer(make_key("admin")))
    assert assert_error_shape(r, 400)["errors"] == [
        "holdout: 5.0 is not in the range 0<x<1", 'seed must be an integer, got "x"',
        "min_heldout: 0 is not in the range x>=1"]
    assert job_count(app) == 0


def test_a_job_whose_process_exits_at_once_fails_and_blocks_nothing(app, client, make_key, monkeypatch):
    """The process gets arguments `retrain` refuses (as when the API's checks and the command's
    differ): it exits in option parsing, before it can report anything itself."""
    monkeypatch.setattr(admin, "job_arguments", lambda options: ["--holdout", "5"])
    key = bearer(make_key("admin"))
    for attempt in range(2):  # the failed job does not block the next request (it used to: 409 forever)
        started = client.post("/v1/models/retrain", json={}, headers=key)
        assert started.status_code == 202, started.get_json()
        done = wait_for_job(client, started.get_json()["url"], key, seconds=60)
        assert done["state"] == "failed", done
        assert done["error"].startswith("the training process exited with status 2: ")
        assert "Invalid value for '--holdout': 5.0 is not in the range 0<x<1" in done["error"]
    assert job_count(app) == 2


def test_a_job_left_queued_without_a_process_stops_blocking(app, client, make_key, monkeypatch):
    """A row queued by a server that died before starting the process (or by a version that
    recorded no pid) used to answer every retrain request with 409 until edited by hand."""
    monkeypatch.setattr(admin, "job_arguments", lambda options: ["--holdout", "5"])
    key = bearer(make_key("admin"))
    jobs = JobStore(app.extensions["postsieve.database"])
    stuck = jobs.create("retrain", {"holdout": 5}, "forum")
    assert_error_shape(client.post("/v1/models/retrain", json={}, headers=key), 409)  # it may still start
    jobs.update(stuck.id, created_at=datetime.now(timezone.utc) - START_TIMEOUT * 2)
    found = client.get(f"/v1/models/jobs/{stuck.id}", headers=key).get_json()
    assert found["state"] == "failed" and "never started" in found["error"]
    started = client.post("/v1/models/retrain", json={}, headers=key)
    assert started.status_code == 202
    assert wait_for_job(client, started.get_json()["url"], key, seconds=60)["state"] == "failed"


def wait_for_job(client, url, headers, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).get_json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    return job


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


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_job_whose_process_died_is_reported_failed(app, client, make_key, state):
    jobs = JobStore(app.extensions["postsieve.database"])
    job = jobs.create("retrain", {}, "forum")
    jobs.update(job.id, state=state, options={"pid": 2 ** 22 + 12345})  # no such process
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
