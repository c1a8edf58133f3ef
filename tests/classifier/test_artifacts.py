import json

import pytest

from classifier import artifacts
from classifier.errors import ArtifactError, ArtifactTampered, ArtifactVersionMismatch
from tests.conftest import save_for_test as save
from tests.conftest import tiny_examples



def test_round_trip_scores_identically(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    loaded = artifacts.load_model(path)
    posts = [e.post for e in tiny_examples()]
    assert [s.to_dict() for s in loaded.score(posts)] == [s.to_dict() for s in tiny_model.score(posts)]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["version"] == path.name == loaded.version
    for key in ("created", "libraries", "training_data", "thresholds", "metrics", "model_sha256"):
        assert key in manifest
    assert not any(p.name.startswith(".incoming") for p in tmp_path.iterdir())


def test_tampered_file_is_refused(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    with open(path / "model.joblib", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactTampered, match="does not match the manifest"):
        artifacts.load_model(path)


def test_library_mismatch_is_refused(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["libraries"]["scikit-learn"] = "0.1.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactVersionMismatch, match="scikit-learn 0.1.0"):
        artifacts.load_model(path)


def test_missing_manifest(tmp_path):
    (tmp_path / "v1").mkdir()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        artifacts.load_model(tmp_path / "v1")


def test_active_pointer(tiny_model, tmp_path):
    first = save(tiny_model, tmp_path)
    assert artifacts.active_version(tmp_path) == first.name  # newest when no pointer
    artifacts.set_active(tmp_path, first.name)
    assert (tmp_path / "ACTIVE").read_text().strip() == first.name
    assert artifacts.load_active(tmp_path).version == first.name
    assert [m["version"] for m in artifacts.list_versions(tmp_path)] == [first.name]


def test_cannot_activate_tampered(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    (path / "model.joblib").write_bytes(b"garbage")
    with pytest.raises(ArtifactTampered):
        artifacts.set_active(tmp_path, path.name)
    assert not (tmp_path / "ACTIVE").exists()


def test_manifest_edits_are_refused(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["thresholds"]["spam_block"] = 0.01
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactTampered, match="thresholds differ"):
        artifacts.load_model(path)


@pytest.mark.parametrize("content", ["[]", "{}", '{"version": 3}', "not json"])
def test_broken_manifest_is_an_artifact_error(tiny_model, tmp_path, content):
    path = save(tiny_model, tmp_path)
    (path / "manifest.json").write_text(content)
    with pytest.raises(ArtifactError):
        artifacts.load_model(path)


def test_default_model_is_retrained_after_a_library_upgrade(tmp_path):
    """A model trained by ensure_model and refused after an upgrade is replaced, not fatal."""
    import tests.conftest as conftest
    from classifier import workflow

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": e.post.id, "title": e.post.title, "body": e.post.body,
                                          "category": e.post.category, "label": e.label,
                                          "promo": list(e.promo)}) + "\n" for e in conftest.tiny_examples()))
    first = workflow.ensure_model(tmp_path / "m", corpus_paths=[corpus])
    manifest_path = tmp_path / "m" / first.version / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["trained_by"] == "default"
    manifest["libraries"]["scikit-learn"] = "0.0.1"
    manifest_path.write_text(json.dumps(manifest))
    import time

    time.sleep(1.1)
    second = workflow.ensure_model(tmp_path / "m", corpus_paths=[corpus])
    assert second.version != first.version


def test_held_out_scores_round_trip_beside_the_model(tiny_model, tmp_path):
    import numpy as np

    path = save(tiny_model, tmp_path)
    y = np.array(["ok", "spam", "off_topic"])
    p = np.array([[0.8, 0.1, 0.1], [0.1, 0.85, 0.05], [0.2, 0.1, 0.7]])
    artifacts.save_heldout(path, y, p)
    (path / "report.html").write_text("<p>extra files are not part of the hash</p>")
    loaded_y, loaded_p = artifacts.load_heldout(path)
    assert loaded_y.tolist() == y.tolist()
    np.testing.assert_array_equal(loaded_p, p)
    assert artifacts.load_model(path).version == path.name
    assert [m["version"] for m in artifacts.list_versions(tmp_path)] == [path.name]
    assert sorted(f.name for f in path.iterdir()) == ["heldout.npz", "manifest.json", "model.joblib", "report.html"]


def test_held_out_scores_missing_or_broken(tiny_model, tmp_path):
    path = save(tiny_model, tmp_path)
    with pytest.raises(ArtifactError, match="heldout.npz is missing"):
        artifacts.load_heldout(path)
    (path / "heldout.npz").write_bytes(b"not a zip file")
    with pytest.raises(ArtifactError, match="cannot read"):
        artifacts.load_heldout(path)
    with pytest.raises(ValueError, match="shape"):
        artifacts.save_heldout(path, ["ok", "spam"], [[1.0, 0.0, 0.0]])


def test_the_same_model_saved_twice_in_one_second_gets_two_versions(tiny_model, tmp_path):
    from datetime import datetime, timezone

    created = datetime(2026, 11, 26, 7, 0, 0, tzinfo=timezone.utc)
    first = artifacts.save_model(tiny_model, tmp_path, data_sha256="x", label_counts={}, metrics={}, params={}, created=created)
    second = artifacts.save_model(tiny_model, tmp_path, data_sha256="x", label_counts={}, metrics={}, params={}, created=created)
    assert second.name == first.name + "-2"
    assert artifacts.load_model(second).version == second.name


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_version_is_readable_as_the_umask_allows(tiny_model, tmp_path, umask):
    """Version directories were 0700 (mkdtemp), so a server running as another user could not read them."""
    import os
    import stat

    old = os.umask(umask)
    try:
        path = save(tiny_model, tmp_path)
        artifacts.save_heldout(path, ["ok"], [[1.0, 0.0, 0.0]])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~umask
    for name in ("model.joblib", "manifest.json", "heldout.npz"):
        assert stat.S_IMODE((path / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.parametrize("content", ["../../../etc/passwd", "..", "/etc", ".incoming-1234"])
def test_active_naming_no_version_id_is_refused(tiny_model, tmp_path, content):
    """A hand-written ACTIVE must not lead outside the models directory (or into a hidden one)."""
    save(tiny_model, tmp_path)
    (tmp_path / "ACTIVE").write_text(content + "\n")
    with pytest.raises(ArtifactError, match=r"ACTIVE holds no version id"):
        artifacts.active_version(tmp_path)
