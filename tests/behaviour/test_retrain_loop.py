"""The retraining loop closes on the real default model: moderators label a new spam campaign
through the API, one command retrains, the gate passes, the new model blocks the campaign and
honest posts stay allowed. And a candidate trained on flipped labels never goes live."""
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from classifier import artifacts
from classifier.feedback import FeedbackStore, Label
from service import create_app
from service.keys import KeyStore
from tests.behaviour.campaign import campaign, honest

pytestmark = [pytest.mark.behaviour, pytest.mark.e2e]
POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def world(default_models_dir, tmp_path):
    """A copy of the default model's directory and an app with its own database."""
    active = artifacts.active_version(default_models_dir)
    shutil.copytree(default_models_dir / active, tmp_path / "models" / active)
    (tmp_path / "models" / "ACTIVE").write_text(active + "\n")
    database_url = f"sqlite:///{tmp_path / 'postsieve.db'}"
    app = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path / "models"), "DATABASE_URL": database_url,
                      "MODEL_CHECK_INTERVAL": 0})
    env = {**os.environ, "POSTSIEVE_MODEL_DIR": str(tmp_path / "models"), "POSTSIEVE_DATABASE_URL": database_url}
    return app, env, tmp_path


def decisions(client, key, posts):
    out = []
    for p in posts:
        r = client.post("/v1/classify", headers={"Authorization": f"Bearer {key}"},
                        json={"id": p.id, "title": p.title, "body": p.body, "category": p.category})
        out.append(r.get_json()["decision"])
    return Counter(out)


def retrain_cli(env, *args):
    proc = subprocess.run([POSTSIEVE, "retrain", "--json", *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout.splitlines()[-1]) if proc.stdout.strip() else None


def test_labels_through_the_api_retrain_and_the_new_model_blocks_the_campaign(world):
    app, env, _ = world
    client = app.test_client()
    key = KeyStore(app.extensions["postsieve.database"]).create("forum", ["classify", "feedback"])[0]
    fresh_spam, fresh_honest = campaign(40, seed=99), honest(40, seed=98)
    before = decisions(client, key, fresh_spam)
    assert before["block"] <= 0.5 * len(fresh_spam), before  # the campaign gets past the default model

    for spam, ok in zip(campaign(50, seed=1), honest(50, seed=2)):
        for post, label in ((spam, "spam"), (ok, "ok")):
            r = client.post("/v1/feedback", headers={"Authorization": f"Bearer {key}"},
                            json={"id": post.id, "title": post.title, "body": post.body, "category": post.category,
                                  "label": label, "moderator": "ann"})
            assert r.status_code == 201

    code, result = retrain_cli(env)
    assert code == 0 and result["promoted"] and result["gate"]["passed"], result
    assert result["gate"]["candidate"]["spam_recall_at_block"] > result["gate"]["active"]["spam_recall_at_block"]

    after_spam, after_honest = decisions(client, key, fresh_spam), decisions(client, key, fresh_honest)
    assert after_spam["block"] >= 0.9 * len(fresh_spam), after_spam
    assert after_honest["allow"] == len(fresh_honest), after_honest
    held_out_honest = [x.post for x in FeedbackStore(app.extensions["postsieve.database"]).latest()
                       if x.label == "ok"][-10:]  # the newest labels: the time-based held-out share
    assert decisions(client, key, held_out_honest)["allow"] == len(held_out_honest)


def test_the_gate_refuses_a_candidate_trained_on_flipped_labels(world):
    app, env, tmp = world
    flip = {"spam": "ok", "ok": "spam", "off_topic": "off_topic"}
    flipped = tmp / "flipped"
    flipped.mkdir()
    for path in sorted((ROOT / "training_data").glob("*.jsonl")):
        with path.open() as src, (flipped / path.name).open("w") as out:
            for line in src:
                if line.strip():
                    record = json.loads(line)
                    record["label"] = flip[record["label"]]
                    record.pop("promo", None)
                    out.write(json.dumps(record) + "\n")
    store = FeedbackStore(app.extensions["postsieve.database"])
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    pairs = list(zip(campaign(30, seed=3), honest(30, seed=4)))
    for i, (spam, ok) in enumerate(pairs):
        poisoned = i < 24  # the older labels were flipped too; the newest, held out, are right
        store.add(Label(spam, "ok" if poisoned else "spam", "forum", at=t0 + timedelta(minutes=2 * i)))
        store.add(Label(ok, "spam" if poisoned else "ok", "forum", at=t0 + timedelta(minutes=2 * i + 1)))
    before = artifacts.active_version(tmp / "models")

    code, result = retrain_cli(env, "--corpus", str(flipped), "--min-heldout", "10")
    assert code == 3 and not result["promoted"] and not result["gate"]["passed"], result
    assert any("spam_roc_auc fell" in f for f in result["gate"]["failures"]), result["gate"]
    assert artifacts.active_version(tmp / "models") == before  # the poisoned model never went live
    assert artifacts.read_manifest(tmp / "models" / result["version"])["gate"]["passed"] is False
