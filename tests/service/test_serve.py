"""End-to-end: `postsieve serve` starts gunicorn (not the Flask dev server) and answers over HTTP."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from classifier import artifacts

pytestmark = pytest.mark.e2e
POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not become ready")


@pytest.fixture()
def server(tiny_model, tmp_path):
    artifacts.save_model(tiny_model, tmp_path / "models", data_sha256="0" * 64, label_counts={}, metrics={}, params={})
    port = free_port()
    env = {**os.environ, "POSTSIEVE_MODEL_DIR": str(tmp_path / "models")}
    proc = subprocess.Popen([POSTSIEVE, "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def post_json(url, payload):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def test_serve_runs_gunicorn_and_classifies(server):
    url, proc = server
    status, body = post_json(url + "/v1/classify", {"id": "h1", "title": "", "body": "Thanks, that fixed it."})
    assert status == 200 and body["id"] == "h1" and body["decision"] in ("allow", "review", "block")
    with urllib.request.urlopen(url + "/healthz") as r:
        assert r.headers["Server"].startswith("gunicorn")


def test_sigterm_shuts_down_gracefully(server):
    url, proc = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "Handling signal: term" in proc.stderr.read()
