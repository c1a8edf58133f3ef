"""End-to-end: `postsieve serve` starts gunicorn (never the Flask dev server) and the real
`postsieve keys`, the Akismet client, the hook client and /metrics work against it over HTTP."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import akismet
import httpx
import pytest

from service.client import PostsieveClient, PostsieveError
from tests.conftest import save_for_test

pytestmark = pytest.mark.e2e
POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))
SPAM = {"id": "s1", "title": "Rocket launch delayed", "category": "3D Segmentation",
        "body": "The space agency delayed the launch. To get more space news, you can visit StarDaily official website."}
HONEST = {"id": "h1", "title": "", "body": "Thanks, lowering the sigma fixed it."}


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


def run_cli(env, *args):
    return subprocess.run([POSTSIEVE, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def env(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    save_for_test(tiny_model, root / "models")
    (root / "metrics").mkdir()
    return {**os.environ, "POSTSIEVE_MODEL_DIR": str(root / "models"), "POSTSIEVE_DATA_DIR": str(root),
            "POSTSIEVE_DATABASE_URL": f"sqlite:///{root / 'postsieve.db'}", "POSTSIEVE_OPEN_CLASSIFY": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics")}


@pytest.fixture(scope="module")
def key(env):
    created = run_cli(env, "keys", "create", "--name", "forum", "--scope", "classify,feedback")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def start(env):
    port = free_port()
    proc = subprocess.Popen([POSTSIEVE, "serve", "--port", str(port), "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return url, proc


@pytest.fixture(scope="module")
def server(env, key):
    url, proc = start(env)
    yield url
    proc.terminate()
    proc.wait(30)


def post_json(url, payload, key=None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_chunked(url, path, body: bytes, content_type, key):
    """POST `body` with Transfer-Encoding: chunked (no Content-Length), 64 KiB a chunk."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    try:
        connection.request("POST", path, body=chunks, encode_chunked=True,
                           headers={"Content-Type": content_type, "Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_chunked_bodies_over_the_limit_are_a_413_and_under_it_work(server, key):
    """gunicorn hands a chunked body on without Content-Length: over 1 MiB it was read cut short
    (a 400 "not valid JSON", or an Akismet form parsed without its tail) instead of the 413."""
    too_large = "the request body is larger than the limit of 1048576 bytes (POSTSIEVE_MAX_CONTENT_LENGTH)"
    big = json.dumps({**HONEST, "body": "x" * 1_100_000}).encode()
    status, body = post_chunked(server, "/v1/classify", big, "application/json", key)
    assert status == 413 and json.loads(body) == {"ok": False, "error": too_large, "errors": [too_large], "status": 413}
    big_form = urlencode({"comment_content": "x" * 1_100_000, "api_key": key}).encode()
    status, body = post_chunked(server, "/1.1/comment-check", big_form, "application/x-www-form-urlencoded", key)
    assert status == 413 and json.loads(body)["error"] == too_large
    status, body = post_chunked(server, "/v1/classify", json.dumps(SPAM).encode(), "application/json", key)
    assert status == 200 and json.loads(body)["id"] == "s1"
    form = urlencode({"comment_content": SPAM["body"], "api_key": key}).encode()
    assert post_chunked(server, "/1.1/comment-check", form, "application/x-www-form-urlencoded", key) == (200, b"true")


def test_chunked_bodies_cut_short_or_badly_framed_are_a_400(server, key):
    """A client that goes away mid-chunk, or never sends the last chunk: gunicorn's reader raises
    its own errors, which reached the generic handler as a 500."""
    import socket

    port = int(server.rsplit(":", 1)[1])
    head = (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    for cut_short in (b'40\r\n{"id": "a", "title": ""', b"3\r\nabc\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + cut_short)
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line.split()[1] == b"400", answer[:300]
        assert b"the request body ended early or is not validly chunked" in rest


def test_keys_create_prints_only_the_key_and_list_never_shows_it(env, key):
    assert key.startswith("psk_") and "\n" not in key and " " not in key
    listed = run_cli(env, "keys", "list", "--json")
    assert listed.returncode == 0 and key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    assert json.loads(listed.stdout.splitlines()[0])["scopes"] == ["classify", "feedback"]
    bad = run_cli(env, "keys", "create", "--name", "x", "--scope", "root")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "scope must be one or more of" in bad.stderr


def test_keys_list_says_which_rate_a_key_has(env, key):
    assert run_cli(env, "keys", "create", "--name", "bulk", "--scope", "classify", "--rate", "0").returncode == 0
    assert run_cli(env, "keys", "create", "--name", "slow", "--scope", "classify", "--rate", "30").returncode == 0
    rows = {line.split()[1]: line for line in run_cli(env, "keys", "list").stdout.splitlines() if line.strip()}
    assert "unlimited" in rows["bulk"] and "30/min" in rows["slow"] and "default" in rows["forum"]


def test_serve_runs_gunicorn_and_needs_a_key(server, key):
    status, body = post_json(server + "/v1/classify", HONEST, key)
    assert status == 200 and body["id"] == "h1" and body["decision"] in ("allow", "review", "block")
    assert post_json(server + "/v1/classify", HONEST)[0] == 401
    with urllib.request.urlopen(server + "/healthz") as r:
        assert r.headers["Server"].startswith("gunicorn")


def test_revoked_key_is_refused_by_the_running_server(env, server):
    spare = run_cli(env, "keys", "create", "--name", "spare", "--scope", "classify").stdout.strip()
    assert post_json(server + "/v1/classify", HONEST, spare)[0] == 200
    assert run_cli(env, "keys", "revoke", "spare").returncode == 0
    time.sleep(5.5)  # KEY_CACHE_SECONDS: every worker's cached answer has expired by now
    statuses = {post_json(server + "/v1/classify", HONEST, spare)[0] for _ in range(8)}
    assert statuses == {401}


def test_metrics_add_up_across_workers(env, server, key):
    from concurrent.futures import ThreadPoolExecutor

    before = scrape(server)
    with ThreadPoolExecutor(4) as pool:  # concurrent, so both workers answer some
        statuses = list(pool.map(lambda _: post_json(server + "/v1/classify", SPAM, key)[0], range(40)))
    assert statuses == [200] * 40
    counter_files = list(Path(env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert len(counter_files) >= 2, counter_files  # more than one worker counted ...
    name = 'postsieve_http_requests_total{endpoint="/v1/classify",method="POST",status="200"}'
    # A worker counts a request just after sending its answer: wait for the last one to be counted.
    deadline = time.monotonic() + 5
    while (after := scrape(server))[name] - before.get(name, 0) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert after[name] - before.get(name, 0) == 40  # ... and one scrape, from either worker, sums them
    assert any(k.startswith("postsieve_model_info{") and v == 1 for k, v in after.items())


def scrape(url) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics") as r:
        lines = r.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and not line.startswith("#")}


class ToServer(httpx.BaseTransport):
    """Send what the Akismet client addresses to rest.akismet.com to the local server instead."""

    def __init__(self, url):
        self.target = httpx.URL(url)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request):
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return self.inner.handle_request(request)


def test_an_akismet_forum_switches_to_the_live_server(server, key):
    http = httpx.Client(transport=ToServer(server))
    client = akismet.SyncClient.validated_client(config=akismet.Config(key=key, url="https://forum.example.org"),
                                                 http_client=http)
    assert client.comment_check(user_ip="198.51.100.4", comment_content=SPAM["body"],
                                comment_type="forum-post") == akismet.CheckResponse.DISCARD
    assert client.comment_check(user_ip="198.51.100.4", comment_content=HONEST["body"]) == akismet.CheckResponse.HAM
    assert client.submit_spam(user_ip="198.51.100.4", comment_content=SPAM["body"])


def test_hook_client_against_the_live_server(server, key):
    client = PostsieveClient(server, api_key=key, timeout=5)
    verdict = client.classify(SPAM)
    assert verdict["fallback"] is False and verdict["decision"] == "block"
    batch = client.classify_batch([HONEST, SPAM])
    assert [v["id"] for v in batch] == ["h1", "s1"] and not any(v["fallback"] for v in batch)
    assert client.feedback(SPAM, "spam", moderator="ann")["status"] in ("created", "unchanged")
    with pytest.raises(PostsieveError, match="HTTP 400: label must be one of") as err:
        client.feedback(SPAM, "ham")
    assert err.value.status == 400


def test_hook_client_without_a_key_falls_back_to_review(server):
    verdict = PostsieveClient(server, timeout=5).classify(SPAM)
    assert verdict["decision"] == "review" and verdict["fallback"] and "HTTP 401" in verdict["error"]


def test_hook_client_falls_back_to_review_when_postsieve_is_slow_or_absent():
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        verdict = PostsieveClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3).classify(SPAM)
        assert time.monotonic() - started < 3
    assert verdict == {**verdict, "id": "s1", "decision": "review", "fallback": True}
    assert "no answer within 0.3 s" in verdict["error"]
    absent = PostsieveClient(f"http://127.0.0.1:{free_port()}", timeout=0.3)
    assert absent.classify(SPAM)["decision"] == "review"
    assert [v["decision"] for v in absent.classify_batch([HONEST, SPAM])] == ["review", "review"]
    with pytest.raises(PostsieveError, match="cannot reach postsieve"):
        absent.feedback(SPAM, "spam")  # a label is never dropped silently


def test_sigterm_shuts_down_gracefully(env, key):
    url, proc = start(env)
    results = []

    def slow_client():  # a request in flight when SIGTERM arrives still gets its answer
        results.append(post_json(url + "/v1/classify/batch", {"posts": [SPAM] * 100}, key)[0])

    thread = threading.Thread(target=slow_client)
    thread.start()
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert proc.wait(30) == 0
    assert "Handling signal: term" in proc.stderr.read()
    assert results == [200]


def count_decisions(database_url, prefix) -> int:
    import sqlalchemy as sa

    from classifier.database import Database
    from classifier.schema import decisions

    database = Database(database_url)
    try:
        with database.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(decisions)
                                .where(decisions.c.post_id.like(f"{prefix}%"))).scalar_one()
    finally:
        database.dispose()


def classify_some(url, key, prefix) -> int:
    """Classify 20 posts one by one and 200 in a batch, all with ids starting with `prefix`."""
    for i in range(20):
        assert post_json(url + "/v1/classify", {**HONEST, "id": f"{prefix}{i}"}, key)[0] == 200
    batch = [{**SPAM, "id": f"{prefix}b{i}"} for i in range(200)]
    assert post_json(url + "/v1/classify/batch", {"posts": batch}, key)[0] == 200
    return 220


def test_a_graceful_stop_or_reload_writes_the_decisions_workers_still_buffer(env, database_url):
    """Each worker writes its decisions every second from a daemon thread: a SIGHUP (workers
    replaced) or SIGTERM (server stopped) just after a burst of classifies lost the rows of the
    last second (0 of 20 after a SIGTERM; 1007 of 3007 on PostgreSQL)."""
    env = {**env, "POSTSIEVE_DATABASE_URL": database_url}
    created = run_cli(env, "keys", "create", "--name", "graceful", "--scope", "classify")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    url, proc = start(env)
    try:
        sent = classify_some(url, key, "hup-")
        proc.send_signal(signal.SIGHUP)  # gunicorn stops the old workers gracefully and starts new ones
        deadline = time.monotonic() + 30
        while count_decisions(database_url, "hup-") < sent and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count_decisions(database_url, "hup-") == sent
        wait_ready(url, proc)
        sent = classify_some(url, key, "term-")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert count_decisions(database_url, "term-") == sent
    assert count_decisions(database_url, "hup-") == 220  # nothing written twice


def test_serve_on_ipv6_loopback_with_its_own_metrics_directory_and_no_shared_control_socket(env, tmp_path):
    """An IPv6 host was bound as '::1:PORT' ("'' is not a valid port number"); a
    PROMETHEUS_MULTIPROC_DIR that did not exist made /metrics fail on every request; gunicorn's
    control socket at one path per user was claimed by every server and deleted by the first to stop."""
    metrics_dir = tmp_path / "not" / "yet"
    port = free_port()
    proc = subprocess.Popen([POSTSIEVE, "serve", "--host", "::1", "--port", str(port), "--workers", "1"],
                            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://[::1]:{port}", proc)
        with urllib.request.urlopen(f"http://[::1]:{port}/metrics") as r:
            assert r.status == 200 and metrics_dir.is_dir()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    stderr = proc.stderr.read()
    assert f"starting gunicorn on http://[::1]:{port} " in stderr
    assert "Control socket" not in stderr and "Control server" not in stderr


def test_a_server_that_cannot_bind_leaves_no_metrics_directory_behind(env, tmp_path):
    """gunicorn's master exits without on_exit when it cannot bind: the directory `serve` made stayed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"TMPDIR": str(scratch)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = subprocess.run([POSTSIEVE, "serve", "--port", str(taken.getsockname()[1]), "--workers", "1"],
                              env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Connection in use" in proc.stderr
    assert list(scratch.iterdir()) == []
