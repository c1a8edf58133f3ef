"""The gunicorn server hooks `postsieve serve` installs (tests/service/test_serve.py runs them for real)."""
from types import SimpleNamespace

from classifier.stats import overturn_stats
from service import gunicorn_conf

POST = {"id": "p1", "title": "", "body": "Thanks, lowering the sigma fixed it."}


def test_worker_exit_writes_the_decisions_the_worker_still_buffers(app, client):
    decision_log = app.extensions["postsieve.decision_log"]
    decision_log.interval = 60  # the writer thread would not write them for a minute
    assert client.post("/v1/classify", json=POST).status_code == 200
    assert overturn_stats(app.extensions["postsieve.database"]) == []
    gunicorn_conf.worker_exit(SimpleNamespace(), SimpleNamespace(wsgi=app))
    assert overturn_stats(app.extensions["postsieve.database"])[0]["classified"] == 1


def test_worker_exit_in_the_master_for_a_worker_already_gone_does_nothing():
    gunicorn_conf.worker_exit(SimpleNamespace(), SimpleNamespace())  # no app was ever loaded for it
