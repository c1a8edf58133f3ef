import json

import pytest

from classifier import artifacts
from classifier.errors import ArtifactError, ArtifactTampered, ArtifactVersionMismatch

from tests.conftest import tiny_examples


def save(model, root):
    return artifacts.save_model(model, root, data_sha256="0" * 64, label_counts={"ok": 1},
                                metrics={"accuracy": 1.0}, params={"seed": 0})


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
