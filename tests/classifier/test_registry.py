import pytest

from classifier import artifacts
from classifier.errors import ArtifactError
from classifier.registry import ModelRegistry


def save(model, root):
    return artifacts.save_model(model, root, data_sha256="0" * 64, label_counts={}, metrics={}, params={})


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
