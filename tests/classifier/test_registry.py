import pytest

from classifier import artifacts
from classifier.errors import ArtifactError
from classifier.registry import ModelRegistry
from tests.conftest import save_for_test as save


def test_registry_loads_and_swaps(tiny_model, tmp_path):
    import time

    first = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, first.name)
    registry = ModelRegistry(tmp_path, check_interval=0)
    assert registry.current().version == first.name
    time.sleep(1.1)  # version ids carry seconds
    second = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, second.name)
    assert registry.current().version == second.name


def test_registry_keeps_serving_when_new_artifact_is_broken(tiny_model, tmp_path):
    first = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, first.name)
    registry = ModelRegistry(tmp_path, check_interval=0)
    registry.current()
    (tmp_path / "ACTIVE").write_text("does-not-exist\n")
    assert registry.current().version == first.name
    assert "does-not-exist" in registry.last_error


def test_registry_without_model(tmp_path):
    with pytest.raises(ArtifactError, match="no model"):
        ModelRegistry(tmp_path / "none", check_interval=0).current()


def test_registry_survives_a_broken_manifest_and_does_not_retry_it(tiny_model, tmp_path, monkeypatch):
    import json
    import time

    first = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, first.name)
    registry = ModelRegistry(tmp_path, check_interval=0)
    registry.current()
    time.sleep(1.1)
    second = save(tiny_model, tmp_path)
    (second / "manifest.json").write_text(json.dumps({"version": 1}))
    (tmp_path / "ACTIVE").write_text(second.name)
    assert registry.current().version == first.name
    assert registry.last_error
    calls = []

    def still_broken(*args):
        calls.append(args)
        raise ArtifactError("still broken")

    monkeypatch.setattr(artifacts, "load_model", still_broken)
    registry.current()
    assert calls == []  # the same broken version is not loaded again on every check
    import classifier.registry as registry_module

    monkeypatch.setattr(registry_module, "RETRY_FAILED_AFTER", 0.0)
    assert registry.current().version == first.name
    assert len(calls) == 1  # ... but it is retried after the back-off


def test_registry_unreadable_pointer(tiny_model, tmp_path):
    first = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, first.name)
    registry = ModelRegistry(tmp_path, check_interval=0)
    registry.current()
    (tmp_path / "ACTIVE").write_bytes(b"\xff\xfe\x00bad")
    assert registry.current().version == first.name


def _two_versions(tiny_model, root):
    from datetime import datetime, timezone

    return [save(tiny_model, root, created=datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc)).name for m in (1, 2)]


def test_registry_honours_the_check_interval(tiny_model, tmp_path):
    v1, v2 = _two_versions(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, v1)
    registry = ModelRegistry(tmp_path, check_interval=3600)
    assert registry.current().version == v1
    artifacts.set_active(tmp_path, v2)
    assert registry.current().version == v1  # not re-checked before the interval is up
    assert registry.reload_if_changed() is True
    assert registry.current().version == v2


def test_registry_refusal_is_logged_and_cleared_when_active_points_back(tiny_model, tmp_path, caplog):
    v1, v2 = _two_versions(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, v1)
    registry = ModelRegistry(tmp_path, check_interval=0)
    registry.current()
    with open(tmp_path / v2 / "model.joblib", "ab") as f:
        f.write(b"\0")
    (tmp_path / "ACTIVE").write_text(v2)
    with caplog.at_level("WARNING", logger="classifier.registry"):
        assert registry.current().version == v1
    assert "ArtifactTampered" in registry.last_error and v2 in registry.last_error
    assert f"refused model {v2} (still serving {v1})" in caplog.text
    (tmp_path / "ACTIVE").write_text(v1)
    assert registry.current().version == v1
    assert registry.last_error is None


def test_registry_loads_a_renamed_version_directory_once(tiny_model, tmp_path, monkeypatch):
    """ACTIVE naming a copy whose model carries another version id must not reload on every check."""
    import shutil

    (v1,) = _two_versions(tiny_model, tmp_path)[:1]
    shutil.copytree(tmp_path / v1, tmp_path / "renamed")
    (tmp_path / "ACTIVE").write_text("renamed")
    registry = ModelRegistry(tmp_path, check_interval=0)
    assert registry.current().version == v1
    loads = []
    real_load = artifacts.load_model
    monkeypatch.setattr(artifacts, "load_model", lambda path: loads.append(path) or real_load(path))
    for _ in range(3):
        registry.current()
    assert loads == []


def test_registry_refuses_an_active_file_that_leads_outside(tiny_model, tmp_path, monkeypatch):
    """`echo ../../../etc/passwd > ACTIVE` made it look for etc/passwd/manifest.json."""
    first = save(tiny_model, tmp_path)
    artifacts.set_active(tmp_path, first.name)
    registry = ModelRegistry(tmp_path, check_interval=0)
    registry.current()
    loads = []
    monkeypatch.setattr(artifacts, "load_model", lambda path: loads.append(path))
    (tmp_path / "ACTIVE").write_text("../../../etc/passwd\n")
    assert registry.current().version == first.name
    assert loads == []
    assert "ACTIVE holds no version id" in registry.last_error and "../../../etc/passwd" in registry.last_error
