"""ensure_model on a models directory that cannot be written (a read-only container mount)."""
import builtins
import errno
from pathlib import Path

import pytest
from click.testing import CliRunner

from classifier import artifacts, workflow
from classifier.errors import ArtifactError
from tests.conftest import save_for_test


@pytest.fixture()
def read_only(monkeypatch):
    """Make `open` for writing under a directory fail as on a read-only mount (root ignores modes)."""
    real_open = builtins.open

    def make(directory: Path):
        def refusing_open(file, mode="r", *args, **kwargs):
            if str(file).startswith(str(directory)) and any(flag in mode for flag in "wax+"):
                raise OSError(errno.EROFS, "Read-only file system", str(file))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)

    return make


def test_a_usable_model_loads_from_a_read_only_directory(tiny_model, tmp_path, read_only):
    """It raised OSError on creating .train.lock before looking at the model."""
    version = save_for_test(tiny_model, tmp_path).name
    artifacts.set_active(tmp_path, version)
    read_only(tmp_path)
    assert workflow.ensure_model(tmp_path).version == version
    assert not (tmp_path / ".train.lock").exists()


def test_a_read_only_directory_without_a_model_is_one_clear_error(tmp_path, read_only):
    read_only(tmp_path)
    with pytest.raises(ArtifactError) as caught:
        workflow.ensure_model(tmp_path)
    assert str(caught.value) == (f"no model in {tmp_path}, and the default model cannot be trained there: "
                                 f"Read-only file system")


def test_the_cli_reports_a_read_only_directory_without_a_model_in_one_line(tmp_path, read_only, monkeypatch):
    from classifier.cli import cli

    monkeypatch.setenv("POSTSIEVE_MODEL_DIR", str(tmp_path))
    read_only(tmp_path)
    result = CliRunner().invoke(cli, ["classify", "--body", "hello"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no model in {tmp_path}, and the default model cannot be trained there: Read-only file system"]
