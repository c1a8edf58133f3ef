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
