"""End-to-end: `postsieve models list/show/activate/rollback` through the real console command."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import flip_a_byte, save_for_test

pytestmark = pytest.mark.e2e
POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))


def run(*args, check=True, env_extra=None):
    env = {**os.environ, "LOGNAME": "tester", **(env_extra or {})}
    proc = subprocess.run([POSTSIEVE, *args], capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def one_error_line(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture()
def models(tiny_model, tmp_path):
    """Two versions of the tiny model, the older one activated through the CLI."""
    root = tmp_path / "models"
    v1, v2 = (save_for_test(tiny_model, root, created=datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc)).name
              for m in (1, 2))
    run("models", "activate", v1, "--dir", str(root))
    return root, v1, v2


def active(root):
    return (root / "ACTIVE").read_text().strip()


def test_activate_list_show_and_rollback(models):
    root, v1, v2 = models
    out = run("models", "activate", v2, "--dir", str(root), "--reason", "newer").stdout
    assert f"activated {v2} (was {v1})" in out
    assert active(root) == v2

    table = run("models", "list", "--dir", str(root)).stdout.splitlines()
    assert table[1].startswith(f"* {v2}") and table[2].startswith(f"  {v1}")  # newest first, marked
    rows = json.loads(run("models", "list", "--dir", str(root), "--json").stdout)
    assert [(r["version"], r["active"]) for r in rows] == [(v2, True), (v1, False)]

    shown = run("models", "show", "--dir", str(root)).stdout
    assert f"version:      {v2}  (active)" in shown
    assert f"activate {v1} -> {v2} by tester (newer)" in shown
    info = json.loads(run("models", "show", v1, "--dir", str(root), "--json").stdout)
    assert info["version"] == v1 and info["active"] is False

    out = run("models", "rollback", "--dir", str(root), "--by", "oncall").stdout
    assert f"rolled back to {v1} (was {v2})" in out
    assert active(root) == v1
    history = [json.loads(line) for line in (root / "history.jsonl").read_text().splitlines()]
    assert [(h["action"], h["from"], h["to"], h["by"]) for h in history] == [
        ("activate", None, v1, "tester"), ("activate", v1, v2, "tester"), ("rollback", v2, v1, "oncall")]


def test_models_dir_from_the_environment(models):
    root, v1, v2 = models
    run("models", "activate", v2, env_extra={"POSTSIEVE_MODEL_DIR": str(root)})
    assert active(root) == v2


def test_a_tampered_version_is_refused_with_one_line(models):
    root, v1, v2 = models
    path = root / v2 / "model.joblib"
    flip_a_byte(path)
    history = (root / "history.jsonl").read_bytes()
    line = one_error_line(run("models", "activate", v2, "--dir", str(root), check=False))
    assert f"{v2} not activated (ACTIVE still names {v1})" in line and "does not match the manifest" in line
    assert active(root) == v1
    assert (root / "history.jsonl").read_bytes() == history


@pytest.mark.parametrize("args, message", [
    (["models", "activate", "20990101-000000-00000000"], "no version 20990101-000000-00000000"),
    (["models", "rollback"], "nothing to roll back to"),
    (["models", "show", "nope"], "no version nope"),
])
def test_bad_requests_fail_with_one_line(models, args, message):
    root, v1, _ = models
    assert message in one_error_line(run(*args, "--dir", str(root), check=False))
    assert active(root) == v1


def test_missing_models_directory(tmp_path):
    for command in (["list"], ["activate", "x"]):
        line = one_error_line(run("models", *command, "--dir", str(tmp_path / "none"), check=False))
        assert "no such models directory" in line


def test_empty_models_directory(tmp_path):
    proc = run("models", "list", "--dir", str(tmp_path))
    assert proc.stdout == "" and "no model versions" in proc.stderr
    assert json.loads(run("models", "list", "--dir", str(tmp_path), "--json").stdout) == []


def test_show_refuses_a_copied_version_folder_in_one_line(models):
    import shutil

    root, v1, v2 = models
    shutil.copytree(root / v2, root / "copy-of-v2")
    line = one_error_line(run("models", "show", "copy-of-v2", "--dir", str(root), check=False))
    assert f"its manifest names version {v2}" in line


def test_show_flags_an_active_version_that_fails_its_check(models):
    root, v1, v2 = models
    path = root / v1 / "model.joblib"
    flip_a_byte(path)
    shown = run("models", "show", "--dir", str(root)).stdout
    assert f"version:      {v1}  (active, but it fails its check: servers refuse to load it)" in shown
    assert "cannot load:" in shown and "does not match the manifest" in shown
    assert "cannot load" not in run("models", "show", v2, "--dir", str(root)).stdout
