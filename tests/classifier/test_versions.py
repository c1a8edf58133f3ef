import json
import threading
from datetime import datetime, timezone

import pytest

from classifier import artifacts, versions
from classifier.errors import ActivationError, ArtifactError, ArtifactTampered
from tests.conftest import flip_a_byte, save_for_test


def save(model, root, minute):
    """A version of the tiny model created at 2026-01-01 00:<minute>, so ids differ without sleeping."""
    return save_for_test(model, root, created=datetime(2026, 1, 1, 0, minute, tzinfo=timezone.utc)).name


@pytest.fixture()
def three(tiny_model, tmp_path):
    """A models directory with three versions; v1 active, switched to without the history (as
    a directory from before the history, or `artifacts.set_active`, leaves it)."""
    names = [save(tiny_model, tmp_path, minute) for minute in (1, 2, 3)]
    artifacts.set_active(tmp_path, names[0])
    return tmp_path, names


def active(models_dir):
    return (models_dir / "ACTIVE").read_text().strip()


def history(models_dir):
    return [(e.action, e.from_version, e.to_version) for e in versions.read_history(models_dir)]


def test_activate_switches_and_records_who_when_and_from(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2, by="alice")
    entry = versions.activate(root, v3, by="bob", reason="better block precision")
    assert active(root) == v3
    assert (entry.by, entry.action, entry.from_version, entry.to_version) == ("bob", "activate", v2, v3)
    assert entry.reason == "better block precision"
    assert datetime.fromisoformat(entry.at).tzinfo is not None
    lines = (root / versions.HISTORY_FILE).read_text().splitlines()
    assert [json.loads(line) for line in lines][0] == {
        "at": json.loads(lines[0])["at"], "by": "alice", "action": "activate", "from": v1, "to": v2,
        "reason": None}
    assert history(root) == [("activate", v1, v2), ("activate", v2, v3)]


def test_first_activation_without_an_active_file_comes_from_nothing(tiny_model, tmp_path):
    v1, v2 = save(tiny_model, tmp_path, 1), save(tiny_model, tmp_path, 2)
    assert [r["active"] for r in versions.list_summaries(tmp_path)] == [True, False]  # newest is served
    versions.activate(tmp_path, v1)
    assert history(tmp_path) == [("activate", None, v1)]
    assert active(tmp_path) == v1


def test_activate_defaults_to_the_current_user(three, monkeypatch):
    root, (_, v2, _) = three
    monkeypatch.setenv("LOGNAME", "carol")
    assert versions.activate(root, v2).by == "carol"


def test_activating_the_active_version_records_nothing(three):
    root, (v1, _, _) = three
    assert versions.activate(root, v1) is None
    assert versions.read_history(root) == []
    assert active(root) == v1


def _edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("breakage, message", [
    (lambda p: flip_a_byte(p / "model.joblib"), "does not match the manifest"),
    (lambda p: (p / "model.joblib").unlink(), "model.joblib is missing"),
    (lambda p: (p / "manifest.json").write_text("{}"), "missing or not"),
    (lambda p: _edit_manifest(p, lambda m: m["libraries"].update({"scikit-learn": "0.1"})), "scikit-learn 0.1"),
    (lambda p: _edit_manifest(p, lambda m: m["thresholds"].update({"spam_block": 0.01})), "thresholds differ"),
])
def test_a_broken_version_is_refused_and_nothing_changes(three, breakage, message):
    root, (v1, v2, v3) = three
    versions.activate(root, v3)
    before = (root / versions.HISTORY_FILE).read_bytes()
    breakage(root / v2)
    with pytest.raises(ActivationError, match=message) as caught:
        versions.activate(root, v2)
    assert f"ACTIVE still names {v3}" in str(caught.value)
    assert isinstance(caught.value.__cause__, ArtifactError)
    assert active(root) == v3
    assert (root / versions.HISTORY_FILE).read_bytes() == before


def test_tampering_is_reported_as_such(three):
    root, (_, v2, _) = three
    flip_a_byte(root / v2 / "model.joblib")
    with pytest.raises(ActivationError) as caught:
        versions.activate(root, v2)
    assert isinstance(caught.value.__cause__, ArtifactTampered)


@pytest.mark.parametrize("name, message", [
    ("20990101-000000-deadbeef", "no version 20990101-000000-deadbeef"),
    ("../elsewhere", "is not a version id"),
    (".ACTIVE.tmp", "is not a version id"),
    ("", "is not a version id"),
])
def test_unknown_or_path_like_versions_are_refused(three, name, message):
    root, (v1, _, _) = three
    with pytest.raises(ActivationError, match=message):
        versions.activate(root, name)
    assert active(root) == v1


def test_a_renamed_version_directory_is_refused(three):
    import shutil

    root, (v1, v2, _) = three
    shutil.copytree(root / v2, root / "copy-of-v2")
    with pytest.raises(ActivationError, match="must keep the name"):
        versions.activate(root, "copy-of-v2")
    assert active(root) == v1


def test_missing_models_directory(tmp_path):
    with pytest.raises(ActivationError, match="no such models directory"):
        versions.activate(tmp_path / "nope", "x")
    with pytest.raises(ActivationError, match="no such models directory"):
        versions.rollback(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="no such models directory"):
        versions.list_summaries(tmp_path / "nope")


def test_rollback_walks_back_one_version_at_a_time(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    versions.activate(root, v3)
    entry = versions.rollback(root, by="dave", reason="too many blocks")
    assert active(root) == v2
    assert (entry.action, entry.from_version, entry.to_version, entry.by) == ("rollback", v3, v2, "dave")
    versions.rollback(root)
    assert active(root) == v1  # not back to v3: a second rollback goes further back
    with pytest.raises(ActivationError, match="nothing to roll back to"):
        versions.rollback(root)
    assert active(root) == v1
    assert history(root)[-1] == ("rollback", v2, v1)


def test_rollback_after_reactivating_an_old_version(three):
    root, (v1, v2, _) = three
    versions.activate(root, v2)
    versions.activate(root, v1)
    versions.rollback(root)
    assert active(root) == v2


def test_activate_after_a_rollback_then_rollback_again(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    versions.rollback(root)
    versions.activate(root, v3)
    versions.rollback(root)
    assert active(root) == v1  # v2 was rolled back, so it is not what came before v3


def test_rollback_without_history(three):
    root, (v1, _, _) = three
    with pytest.raises(ActivationError, match="nothing to roll back to"):
        versions.rollback(root)
    assert versions.rollback_target(root) is None
    assert active(root) == v1


def test_rollback_after_a_hand_edit_of_active_returns_to_the_last_recorded(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    (root / "ACTIVE").write_text(v3 + "\n")
    assert versions.rollback_target(root) == v2
    assert versions.rollback(root).from_version == v3
    assert active(root) == v2


def test_rollback_to_a_broken_version_is_refused(three):
    root, (v1, v2, _) = three
    versions.activate(root, v2)
    flip_a_byte(root / v1 / "model.joblib")
    with pytest.raises(ActivationError, match="does not match the manifest"):
        versions.rollback(root)
    assert active(root) == v2
    assert len(versions.read_history(root)) == 1


def test_a_torn_last_line_is_skipped_and_the_next_record_stays_whole(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    with open(root / versions.HISTORY_FILE, "a") as f:
        f.write('{"at": "2026-01-01T00:00:00+00:00", "by": "x", "act')  # a crash mid-write
    versions.activate(root, v3)
    assert history(root) == [("activate", v1, v2), ("activate", v2, v3)]
    assert json.loads((root / versions.HISTORY_FILE).read_text().splitlines()[-1])["to"] == v3


def test_concurrent_switches_keep_history_and_active_in_step(three):
    """Each record's "from" is the previous record's "to", and the last "to" is what ACTIVE names."""
    root, (v1, v2, _) = three
    errors = []

    def flip(target):
        try:
            for _ in range(10):
                versions.activate(root, target)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(v,)) for v in (v1, v2, v1, v2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = versions.read_history(root)
    assert entries and entries[0].from_version == v1
    for before, after in zip(entries, entries[1:]):
        assert after.from_version == before.to_version
    assert entries[-1].to_version == active(root)


def test_list_summaries_newest_first_with_active_marker_and_metrics(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    rows = versions.list_summaries(root)
    assert [r["version"] for r in rows] == [v3, v2, v1]
    assert [r["active"] for r in rows] == [False, True, False]
    assert rows[0]["spam_roc_auc"] is None  # the test versions carry no metrics
    manifest_path = root / v1 / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"] = {"spam_roc_auc": 0.97, "block_precision": 0.996}
    manifest["training_data"]["label_counts"] = {"ok": 3, "spam": 2}
    manifest_path.write_text(json.dumps(manifest))
    last = versions.list_summaries(root)[-1]
    assert (last["spam_roc_auc"], last["block_precision"], last["label_counts"]) == (0.97, 0.996, {"ok": 3, "spam": 2})


def test_a_copied_version_folder_is_not_listed_twice(three):
    import shutil

    root, (v1, v2, v3) = three
    shutil.copytree(root / v2, root / "zz-copy-of-v2")  # sorts after every version id
    assert [r["version"] for r in versions.list_summaries(root)] == [v3, v2, v1]
    assert artifacts.active_version(root) == v1
    (root / "ACTIVE").unlink()
    assert artifacts.active_version(root) == v3  # the newest real version, not the copy


def test_describe_defaults_to_the_active_version(three):
    root, (v1, v2, v3) = three
    versions.activate(root, v2)
    versions.activate(root, v3)
    info = versions.describe(root)
    assert info["version"] == v3 and info["active"] is True
    assert info["library_problems"] == []
    assert [(h["from"], h["to"]) for h in info["history"]] == [(v2, v3)]
    assert set(info) >= {"created", "parent", "training_data", "metrics", "thresholds", "libraries", "model_sha256"}
    assert versions.describe(root, v2)["active"] is False
    assert len(versions.describe(root, v2)["history"]) == 2  # switched to, then away from
    with pytest.raises(ArtifactError, match="no version nope"):
        versions.describe(root, "nope")


def test_training_records_its_activation(tmp_path):
    from classifier import workflow
    from tests.conftest import tiny_examples

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": e.post.id, "title": e.post.title, "body": e.post.body,
                                          "category": e.post.category, "label": e.label,
                                          "promo": list(e.promo)}) + "\n" for e in tiny_examples()))
    path = workflow.train_and_save([corpus], tmp_path / "m")
    (entry,) = versions.read_history(tmp_path / "m")
    assert (entry.action, entry.to_version) == ("train", path.name)
    assert artifacts.read_manifest(path)["parent"] is None  # nothing was active
    assert artifacts.read_manifest(path)["created_by"] == versions.current_user()
    second = workflow.train_and_save([corpus], tmp_path / "m", activate=False)
    assert artifacts.read_manifest(second)["parent"] == path.name  # the version active when it was trained


def test_describe_refuses_a_copied_version_folder(three):
    """It described the manifest's version as if it were the folder's."""
    import shutil

    root, (_, v2, _) = three
    shutil.copytree(root / v2, root / "copy-of-v2")
    with pytest.raises(ArtifactError, match=f"its manifest names version {v2}"):
        versions.describe(root, "copy-of-v2")


def test_describe_says_when_the_model_file_fails_its_hash(three):
    root, (v1, v2, _) = three
    assert versions.describe(root, v2)["model_file_problem"] is None
    flip_a_byte(root / v1 / "model.joblib")
    info = versions.describe(root)
    assert info["active"] is True and "does not match the manifest" in info["model_file_problem"]
    (root / v2 / "model.joblib").unlink()
    assert "model.joblib is missing" in versions.describe(root, v2)["model_file_problem"]
