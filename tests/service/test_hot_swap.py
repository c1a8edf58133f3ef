"""Hot model swap: a newly active version is served without a restart, a broken one is refused.

The first tests use the app in-process; the load test runs a real gunicorn (2 workers, --preload
through `postsieve serve`) while client threads keep posting, and switches versions with the real
`postsieve models` command.
"""
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import namedtuple
from datetime import datetime, timezone
from pathlib import Path

import pytest

from classifier import artifacts, versions
from classifier.types import DECISIONS, LABELS
from service import create_app
from tests.conftest import flip_a_byte, save_for_test

POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))
CONTRACT = ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"]


def two_versions(model, root):
    return [save_for_test(model, root, created=datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc)).name
            for m in (1, 2)]


def point_active(root: Path, version: str) -> None:
    """Write ACTIVE directly (atomically), bypassing every check, as a careless operator might."""
    tmp = root / ".ACTIVE.by-hand"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / "ACTIVE")


def test_app_serves_the_newly_activated_version(tiny_model, tmp_path):
    v1, v2 = two_versions(tiny_model, tmp_path)
    versions.activate(tmp_path, v1)
    client = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path), "MODEL_CHECK_INTERVAL": 0, "OPEN_CLASSIFY": True,
                         "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}).test_client()
    post = {"id": 1, "title": "", "body": "Thanks, that fixed it."}
    assert client.post("/v1/classify", json=post).get_json()["model_version"] == v1
    versions.activate(tmp_path, v2)
    assert client.post("/v1/classify", json=post).get_json()["model_version"] == v2
    assert client.get("/readyz").get_json() == {"ok": True, "model_version": v2, "last_error": None}


def test_readyz_reports_a_refused_version_while_the_old_one_serves(tiny_model, tmp_path):
    v1, v2 = two_versions(tiny_model, tmp_path)
    versions.activate(tmp_path, v1)
    client = create_app({"TESTING": True, "MODEL_DIR": str(tmp_path), "MODEL_CHECK_INTERVAL": 0, "OPEN_CLASSIFY": True,
                         "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}).test_client()
    flip_a_byte(tmp_path / v2 / "model.joblib")
    point_active(tmp_path, v2)
    r = client.post("/v1/classify", json={"id": 1, "title": "", "body": "hello"})
    assert r.status_code == 200 and r.get_json()["model_version"] == v1
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["ok"] is True and body["model_version"] == v1
    assert body["last_error"].startswith("ArtifactTampered") and v2 in body["last_error"]
    point_active(tmp_path, v1)
    assert client.get("/readyz").get_json()["last_error"] is None


# --- under load, through a real gunicorn -------------------------------------------------------

Answer = namedtuple("Answer", "n started status body")


class Traffic:
    """Client threads POSTing /v1/classify until stopped; every answer or failure is kept.

    Each request carries its number in the query string (`?n=`), which the access log records
    next to the worker's pid, so each answer can be traced to the worker that gave it.
    """

    BODIES = ["Thanks, lowering the sigma fixed it.",
              "Call the printer support helpline now toll free for help.",
              "My sourdough starter smells like acetone after a week.",
              "The agency confirmed the burn. To get more space news, visit Orbitwire official website."]

    def __init__(self, url: str, threads: int = 3):
        self.url = url
        self.answers: list[Answer] = []
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def since(self, started: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= started]

    def _run(self):
        while not self._stop.is_set():
            n = next(self._numbers)
            post = {"id": n, "title": "", "body": self.BODIES[n % len(self.BODIES)]}
            request = urllib.request.Request(f"{self.url}/v1/classify?n={n}", data=json.dumps(post).encode(),
                                             headers={"Content-Type": "application/json"})
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    status, body = r.status, json.loads(r.read())
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read().decode(errors="replace")
            except Exception as exc:  # a refused or reset connection is a failed request too
                status, body = None, repr(exc)
            with self._lock:
                self.answers.append(Answer(n, started, status, body))


def contract_problem(answer: Answer, versions_allowed) -> str | None:
    """Why an answer is not a valid output contract from one of `versions_allowed` (None: it is)."""
    body = answer.body
    if answer.status != 200 or not isinstance(body, dict):
        return f"request {answer.n}: status {answer.status}: {str(body)[:200]}"
    if list(body) != CONTRACT or body["id"] != answer.n:
        return f"request {answer.n}: not the contract: {body}"
    if body["label"] not in LABELS or body["decision"] not in DECISIONS or \
            abs(sum(body["scores"].values()) - 1) > 1e-4:
        return f"request {answer.n}: bad label, decision or scores: {body}"
    if body["model_version"] not in versions_allowed:
        return f"request {answer.n}: served by unexpected model {body['model_version']}"
    return None


def worker_of(access_log: Path) -> dict[int, int]:
    """Request number -> pid of the worker that answered it, from the access log."""
    pattern = re.compile(r"^<(\d+)> POST /v1/classify\?n=(\d+) ")
    out = {}
    for line in access_log.read_text().splitlines():
        match = pattern.match(line)
        if match:
            out[int(match.group(2))] = int(match.group(1))
    return out


def served_in_order(access_log: Path, version_of: dict[int, str]) -> dict[int, list[str]]:
    """Per worker pid, the versions it answered with, in the order it answered (runs collapsed)."""
    pattern = re.compile(r"^<(\d+)> POST /v1/classify\?n=(\d+) ")
    out: dict[int, list[str]] = {}
    for line in access_log.read_text().splitlines():
        match = pattern.match(line)
        if match and int(match.group(2)) in version_of:
            seen = out.setdefault(int(match.group(1)), [])
            version = version_of[int(match.group(2))]
            if not seen or seen[-1] != version:
                seen.append(version)
    return out


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def every_worker_serves(traffic: Traffic, access_log: Path, version: str, since: float) -> bool:
    """The answers of the last 1.5 s (after `since`) come from both workers and all from `version`."""
    recent = traffic.since(max(since, time.monotonic() - 1.5))
    pids = worker_of(access_log)
    return (len(recent) >= 10 and all(a.status == 200 and a.body["model_version"] == version for a in recent)
            and len({pids.get(a.n) for a in recent} - {None}) == 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def cli(*args, check=True):
    proc = subprocess.run([POSTSIEVE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LOGNAME": "load-test"})
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


#: Every worker must answer with a newly active version within this many seconds. The check
#: interval is 0.5 s and loading the default model takes about a second; the rest is slack for
#: a machine shared with other test runs.
SWITCH_WITHIN = 10.0


@pytest.mark.e2e
def test_activation_and_rollback_under_load_fail_no_request(default_models_dir, tiny_model, tmp_path):
    root = tmp_path / "models"
    v1 = artifacts.active_version(default_models_dir)
    shutil.copytree(default_models_dir / v1, root / v1)  # the real default model: a realistic load time
    v2 = save_for_test(tiny_model, root).name
    cli("models", "activate", v1, "--dir", str(root))

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    access_log, server_err = tmp_path / "access.log", tmp_path / "server.err"
    env = {**os.environ, "POSTSIEVE_MODEL_DIR": str(root), "POSTSIEVE_MODEL_CHECK_INTERVAL": "0.5",
           "POSTSIEVE_OPEN_CLASSIFY": "true", "POSTSIEVE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
           # The worker's pid and the request line (with ?n=) in the access log.
           "GUNICORN_CMD_ARGS": "--access-logformat '%(p)s %(r)s %(s)s'"}
    with open(access_log, "w") as out, open(server_err, "w") as err:
        # Files, not pipes: thousands of access-log lines would fill a pipe and stall the workers.
        server = subprocess.Popen([POSTSIEVE, "serve", "--port", str(port), "--workers", "2"], env=env,
                                  stdout=out, stderr=err)
    traffic = Traffic(url)
    try:
        def ready():
            assert server.poll() is None, server_err.read_text()
            try:
                return get_json(url + "/readyz")["model_version"] == v1
            except OSError:
                return False

        wait_for(ready, 120, "the server answering /readyz")
        traffic.start()
        wait_for(lambda: every_worker_serves(traffic, access_log, v1, 0.0), SWITCH_WITHIN, f"both workers on {v1}")

        # 1. activate v2 while the clients keep posting
        cli("models", "activate", v2, "--dir", str(root))
        switched = time.monotonic()
        wait_for(lambda: every_worker_serves(traffic, access_log, v2, switched), SWITCH_WITHIN,
                 f"every worker answering with {v2} after `models activate`")

        # 2. roll back: the default model comes back the same way
        cli("models", "rollback", "--dir", str(root))
        switched = time.monotonic()
        wait_for(lambda: every_worker_serves(traffic, access_log, v1, switched), SWITCH_WITHIN,
                 f"every worker answering with {v1} after `models rollback`")

        # 3. a tampered version: the CLI refuses it; pointed at by hand, the servers refuse it
        flip_a_byte(root / v2 / "model.joblib")
        refused = cli("models", "activate", v2, "--dir", str(root), check=False)
        assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
        assert "does not match the manifest" in refused.stderr
        assert (root / "ACTIVE").read_text().strip() == v1
        point_active(root, v2)
        wait_for(lambda: v2 in (get_json(url + "/readyz").get("last_error") or ""), SWITCH_WITHIN,
                 "/readyz reporting the refused version")
        pointed = time.monotonic()
        wait_for(lambda: time.monotonic() - pointed > 2.0 and
                 every_worker_serves(traffic, access_log, v1, pointed), SWITCH_WITHIN,
                 f"both workers still answering with {v1} after ACTIVE named the tampered {v2}")
        ready_body = get_json(url + "/readyz")
        assert ready_body["ok"] is True and ready_body["model_version"] == v1
        point_active(root, v1)
        wait_for(lambda: all(get_json(url + "/readyz")["last_error"] is None for _ in range(6)), SWITCH_WITHIN,
                 "/readyz clearing last_error once ACTIVE names the served version again")
    finally:
        traffic.stop()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)

    answers = traffic.answers
    problems = [p for p in (contract_problem(a, {v1, v2}) for a in answers) if p]
    assert problems == [], f"{len(problems)} of {len(answers)} requests failed, first: {problems[:5]}"
    assert len(answers) > 200
    version_of = {a.n: a.body["model_version"] for a in answers}
    per_worker = served_in_order(access_log, version_of)
    # Two workers throughout (none died), each switching once per activation and never back and
    # forth: v1 (preloaded), v2 after activate, v1 after rollback and through the tampered pointer.
    assert len(per_worker) == 2, per_worker.keys()
    for pid, sequence in per_worker.items():
        assert sequence == [v1, v2, v1], f"worker {pid} served {sequence}"
    # Each worker refused the tampered version itself, and said so on stderr; each switch is
    # logged by every worker, with the time, the worker's pid and the level.
    log_text = server_err.read_text()
    assert log_text.count(f"refused model {v2} (still serving {v1})") >= 2
    for pid in per_worker:
        for line in (f"now serving model {v2} (was {v1})", f"now serving model {v1} (was {v2})"):
            assert f"] [{pid}] [INFO] classifier.registry: {line}" in log_text, (pid, line)
