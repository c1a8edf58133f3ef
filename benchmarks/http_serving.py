"""HTTP serving speed: /v1/classify against /healthz on the same real server, in the same run.

Starts `postsieve serve` (gunicorn, as users run it) on loopback with the given models directory
and POSTSIEVE_OPEN_CLASSIFY=true (classify needs no API key; `--api-key KEY` measures classify
with `Authorization: Bearer KEY` as well), waits for /readyz, checks every benchmark post once,
then drives the server with wrk (a bounded closed-loop load generator: C connections, each
sending its next request as soon as the last answer arrived, for a fixed duration) at each
concurrency, alternating /healthz and /v1/classify so that a burst of load from a neighbour
hits both alike. Reports requests/s,
latency p50/p99 (wrk's own histogram, read out by a Lua `done()` hook) and errors (socket errors
and non-2xx answers), the classify/healthz throughput ratio and the issue's targets, then stops
the server with SIGTERM and checks that it exited cleanly.

    python benchmarks/http_serving.py [--model DIR] [--duration 10] [--concurrency 1,8,32]
        [--rounds 2] [--workers N] [--api-key KEY] [--corpus N] [--variant SPEC ...] [--json OUT]

Comparing server settings or code: each `--variant 'NAME=[VAR=VALUE ...] [gunicorn args]'` starts
its own server (extra gunicorn settings go in through GUNICORN_CMD_ARGS; PYTHONPATH=DIR serves
another checkout's code), all side by side, their runs interleaved, e.g.

    --variant 'sync=' --variant 'gthread=--worker-class gthread --threads 2'

Needs wrk (Debian/Ubuntu: `apt-get install wrk`). The classify requests cycle through twenty
posts written for this benchmark (questions, spam with one promotional sentence or a link,
off-topic chatter), or with `--corpus N` through N posts of the bundled corpus (more distinct
words, so the per-worker word cache warms up as in a long-running server).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_P50_MS = 2.0
TARGET_P99_MS = 8.0
TARGET_RATIO = 0.5

# Written for this benchmark; the categories are the forum's. Lengths vary like the corpus
# (median body about 300 characters, a tail of long posts).
POSTS = [
    {"title": "Watershed merges touching nuclei", "category": "3D Segmentation",
     "body": "I have a confocal stack of about sixty slices with DAPI-stained nuclei. Otsu thresholding "
             "works, but nuclei that touch end up as one object. Should I run a watershed on the "
             "distance transform, or is a trained model the better route for this kind of data?"},
    {"title": "Macro stops after the first file", "category": "Fiji / ImageJ",
     "body": "My batch macro opens every .tif in a folder, runs Subtract Background and saves the "
             "result. It processes the first image and then stops without an error. I am on the "
             "latest Fiji update. Is there a setting that makes getFileList skip the rest?"},
    {"title": "Point spread function for a 60x oil objective", "category": "Microscopy & Deconvolution",
     "body": "Before deconvolving widefield images I would like to measure the PSF myself rather than "
             "use a theoretical one.\n\nHow many beads do people usually average, and does the bead "
             "size matter much for a 1.4 NA objective? I have 100 nm and 170 nm beads at hand."},
    {"title": "", "category": "napari & Python",
     "body": "Thanks, the labels layer trick worked. Setting the opacity to 0.4 made the overlay readable."},
    {"title": "Tracking dividing cells over 300 frames", "category": "Cell Tracking",
     "body": "We image HeLa cells every five minutes for a day. The tracker handles migration well, but "
             "it loses the identity of daughter cells after mitosis and starts new tracks for both. "
             "Is there a way to tell it that a split is allowed? I would also like to export the "
             "lineage tree as a table for later analysis in R."},
    {"title": "Stitching tiles with little overlap", "category": "Registration & Stitching",
     "body": "The acquisition software saved a 6 by 8 grid with only 5 % overlap. Phase correlation "
             "picks wrong offsets for tiles that are mostly background. Can I fix the positions from "
             "the stage metadata and only refine the ones with enough texture?"},
    {"title": "Converting a large light-sheet dataset to a chunked format", "category": "Light-sheet & Large Data",
     "body": "Each time point is 40 GB and our viewer takes minutes to open a single volume. I read "
             "that a multiscale chunked format fixes this. What chunk size would you pick for "
             "2048 x 2048 x 900 voxels, and is it worth compressing? The data sits on a network share "
             "that is fast for large sequential reads but slow for many small files."},
    {"title": "Keeping metadata when exporting to OME-TIFF", "category": "Image Data Management",
     "body": "When I export from our database the pixel size is lost and every image comes out as 1 "
             "micron per pixel. Which field should I fill in, and does it have to be done per plane?"},
    {"title": "Background subtraction before measuring intensity", "category": "Fiji / ImageJ",
     "body": "Is it acceptable to use the rolling ball background subtraction before I measure mean "
             "intensities, or does it bias the numbers? The reviewers asked about it."},
    {"title": "Loading a CZI file in napari", "category": "napari & Python",
     "body": "Dragging the file onto the viewer gives an error about a missing reader plugin. I "
             "installed one from the plugin menu but nothing changed after a restart.\n\n"
             "Python 3.11 on Windows, napari from pip. Which plugin do people use for Zeiss files?"},
    {"title": "Lunar relay satellite reaches final orbit", "category": "3D Segmentation",
     "body": "The relay satellite completed its last engine burn on Sunday and is now circling the "
             "Moon on a stable frozen orbit, the agency said. Engineers will spend two weeks "
             "checking the antenna before it starts passing data from landers on the far side. "
             "The spacecraft carries enough propellant for at least eight years. To get more space "
             "news every morning, you can visit the Orbitwire official website."},
    {"title": "Great thread", "category": "Cell Tracking",
     "body": "Thanks, very useful topic! Students who are short of time can order any kind of "
             "paper at https://essay-helper.example/order with a 20% discount today."},
    {"title": "Re: deconvolution settings", "category": "Microscopy & Deconvolution",
     "body": "> how many iterations do you use?\n\nAbout forty for our data. By the way, if you need "
             "cheap cloud storage for images, <a href=\"https://cheapstore.example\">click here</a> "
             "for the best deal on the market."},
    {"title": "Best replica watches 2026", "category": "Image Data Management",
     "body": "Buy luxury replica watches online at the lowest price. Free shipping worldwide, "
             "WhatsApp +1 555 0100 for orders. Visit our shop now and get a gift with every order!"},
    {"title": "Home renovation tips", "category": "Registration & Stitching",
     "body": "Renovating an old kitchen is easier than most people think. Start with the cabinets, "
             "then the floor. For reliable contractors in your city, call our hotline, we answer "
             "every day of the week and give free quotes within an hour."},
    {"title": "Which espresso beans for a light roast?", "category": "napari & Python",
     "body": "I just bought a lever machine and the light roasts I like taste sour. Should I grind "
             "finer or raise the temperature? Any beans you would recommend for a beginner?"},
    {"title": "Weekend football results", "category": "Cell Tracking",
     "body": "What a match on Saturday. Two goals in the last ten minutes and the away side still "
             "managed to draw. The referee had a long afternoon, three yellow cards and a penalty "
             "that nobody in the stadium saw coming. Next week is the derby."},
    {"title": "Anyone else going to the conference dinner?", "category": "Fiji / ImageJ",
     "body": "Looking for people to share a taxi from the hotel to the dinner on Thursday evening."},
    {"title": "Help with my car battery", "category": "Light-sheet & Large Data",
     "body": "My car does not start on cold mornings, the lights are dim and the engine only clicks. "
             "The battery is three years old. Is it the battery or the alternator? I do not have a "
             "multimeter at home, is there another way to tell?"},
    {"title": "Segmenting mitochondria in EM images", "category": "3D Segmentation",
     "body": "We have a FIB-SEM volume at 5 nm isotropic and want to segment the mitochondria. "
             "Manual annotation of a few slices is possible.\n\nI tried a random forest pixel "
             "classifier, which finds the membranes but also lights up the endoplasmic reticulum. "
             "Would a small U-Net trained on ten annotated slices do better, and how do people "
             "check that the segmentation is good enough beyond looking at it? We plan to report "
             "volume and surface area per cell, so a biased boundary would matter."},
]


def benchmark_posts(corpus: int) -> list[dict]:
    """The classify request bodies: the twenty posts above, or `corpus` posts of the bundled corpus."""
    if not corpus:
        return [{"id": f"bench-{i}", **p} for i, p in enumerate(POSTS)]
    sys.path.insert(0, str(HERE.parent))
    from classifier import load_corpus
    from classifier.dataset import bundled_corpus_dir

    examples = load_corpus([bundled_corpus_dir()]).examples
    rng = random.Random(0)
    return [{"id": f"corpus-{i}", "title": e.post.title, "body": e.post.body, "category": e.post.category}
            for i, e in enumerate(rng.sample(examples, min(corpus, len(examples))))]


# One wrk thread per run. request() cycles through prebuilt requests; done() prints the
# summary and wrk's latency percentiles (microseconds) as one JSON line after a marker.
LUA = r"""
local bodies = {%(bodies)s}
local method, path = %(method)s, %(path)s
local headers = {%(headers)s}
local requests_ = {}
local next_ = 1

function init(args)
  for i, body in ipairs(bodies) do
    requests_[i] = wrk.format(method, path, headers, body)
  end
  if #requests_ == 0 then requests_[1] = wrk.format(method, path, headers) end
end

function request()
  local r = requests_[next_]
  next_ = next_ %% #requests_ + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency_us": {"p50": %%d, "p90": %%d, "p99": %%d, "p999": %%d, "max": %%d, "mean": %%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def lua_string(text: str) -> str:
    """`text` as a Lua long-bracket literal whose level does not occur in it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    # A long bracket drops a newline right after the opening bracket; none can occur in JSON text.
    return f"[{eq}[{text}]{eq}]"


def write_lua(path: Path, method: str, url_path: str, headers: dict, bodies: list[str]) -> None:
    path.write_text(LUA % {
        "bodies": ", ".join(lua_string(b) for b in bodies),
        "method": lua_string(method), "path": lua_string(url_path),
        "headers": ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items()),
    })


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its children (the workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process is gone
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1] is the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def run_wrk(base_url: str, script: Path, url_path: str, connections: int, duration: int, timeout: int,
            server_pid: int | None = None) -> dict:
    """One wrk run; its summary with requests/s, p50/p99 in milliseconds and CPU time per request.

    CPU time per request (the server's master and workers, and wrk's) depends far less on what
    else runs on the machine than requests/s does, so it says what a request costs.
    """
    cmd = ["wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{duration}s",
           "--timeout", f"{timeout}s", "--latency", "--script", str(script), base_url + url_path]
    server_cpu = process_tree_cpu(server_pid) if server_pid else 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    server_cpu = process_tree_cpu(server_pid) - server_cpu if server_pid else float("nan")
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line[len("WRKJSON "):])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    r["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    r["socket_errors"] = sum(v for k, v in r["errors"].items() if k != "status")
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["p50_ms"] = r["latency_us"]["p50"] / 1000
    r["p99_ms"] = r["latency_us"]["p99"] / 1000
    r["server_cpu_ms_per_request"] = server_cpu * 1000 / max(r["requests"], 1)
    r["wrk_cpu_ms_per_request"] = wrk_cpu * 1000 / max(r["requests"], 1)
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base_url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if request(base_url + "/readyz", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {timeout:g} s:\n{log.read_text()[-3000:]}")


def parse_variant(spec: str) -> tuple[str, dict, str]:
    """'NAME=[VAR=VALUE ...] [gunicorn args]' -> (name, environment, gunicorn args)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise SystemExit(f"--variant wants NAME=[VAR=VALUE ...] [GUNICORN ARGS], got {spec!r}")
    words = shlex.split(rest)
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return name, env, shlex.join(words)


def start_server(args, variant_env: dict, gunicorn_args: str, port: int, log: Path, cwd: Path) -> subprocess.Popen:
    """`postsieve serve` from this Python's environment, as users start it; stdout+stderr to `log`.

    It runs in `cwd` (an empty directory) because gunicorn puts its working directory first on
    sys.path: a variant's PYTHONPATH (another checkout of the code) then wins over this one.
    """
    postsieve = Path(sys.executable).with_name("postsieve")
    if not postsieve.exists():
        raise SystemExit(f"{postsieve} not found: install the project into this environment (pip install -e .)")
    cmd = [str(postsieve), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    env = {**os.environ, "POSTSIEVE_OPEN_CLASSIFY": "true", **variant_env}
    if args.model:
        env["POSTSIEVE_MODEL_DIR"] = str(args.model.resolve())
    if gunicorn_args:
        env["GUNICORN_CMD_ARGS"] = gunicorn_args  # gunicorn's own way to add settings
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)


def stop_server(proc: subprocess.Popen, log: Path) -> dict:
    """SIGTERM, then wait: a clean exit is status 0 after gunicorn logged the signal."""
    if proc.poll() is not None:
        return {"exit_code": proc.returncode, "seconds": 0, "clean": False}
    t = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    text = log.read_text(errors="replace")
    return {"exit_code": code, "seconds": round(time.perf_counter() - t, 2),
            "clean": code == 0 and "Handling signal: term" in text}


def check_posts(base_url: str, bodies: list[str], headers: dict) -> dict:
    """POST every benchmark post once, first thing after start; all must answer 200.

    Returns the labels seen and the latency of these first requests: the first one a worker
    serves shows what the model still builds on first use.
    """
    labels: dict[str, int] = {}
    times = []
    for body in bodies:
        t = time.perf_counter()
        status, raw = request(base_url + "/v1/classify", body.encode(), headers)
        times.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise RuntimeError(f"/v1/classify answered {status}: {raw[:300]!r}")
        result = json.loads(raw)
        labels[result["label"]] = labels.get(result["label"], 0) + 1
    return {"labels": labels, "first_ms": times[0], "max_ms": max(times), "median_ms": median(times)}


class InProcess:
    """`Model.score_one` on the same posts in this process: how fast the machine is right now.

    Measured next to each round's c=1 runs, so that the HTTP latency can be read against what
    scoring alone costs at the same moment on this shared machine.
    """

    def __init__(self, model_dir: Path | None, posts: list[dict]):
        sys.path.insert(0, str(HERE.parent))
        from classifier import Post, artifacts, workflow

        self.model = artifacts.load_path(model_dir or os.environ.get("POSTSIEVE_MODEL_DIR") or workflow.models_dir())
        self.posts = [Post.from_dict(p) for p in posts]
        self.measure(passes=2)  # warm the word cache, as the server's warm-up run does

    def measure(self, passes: int = 10) -> float:
        """Median milliseconds of one score_one over `passes` passes through the posts."""
        times = []
        for _ in range(passes):
            for post in self.posts:
                t = time.perf_counter()
                self.model.score_one(post)
                times.append((time.perf_counter() - t) * 1000)
        return median(times)


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "cpu": cpu, "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_before": os.getloadavg()}


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def summarise(runs: list[dict]) -> dict:
    """Per variant, endpoint and concurrency: median over rounds of req/s, p50 and p99 with their
    ranges; the classify/healthz ratio of each round (runs next to each other in time); targets."""
    rows, ratios, targets = [], [], {}
    keys = list(dict.fromkeys((r["variant"], r["endpoint"], r["connections"]) for r in runs))
    for variant, endpoint, c in keys:
        rs = [r for r in runs if (r["variant"], r["endpoint"], r["connections"]) == (variant, endpoint, c)]
        rows.append({"variant": variant, "endpoint": endpoint, "connections": c, "rounds": len(rs),
                     "rps": median([r["rps"] for r in rs]), "rps_range": [min(r["rps"] for r in rs), max(r["rps"] for r in rs)],
                     "p50_ms": median([r["p50_ms"] for r in rs]),
                     "p50_range": [min(r["p50_ms"] for r in rs), max(r["p50_ms"] for r in rs)],
                     "p99_ms": median([r["p99_ms"] for r in rs]),
                     "p99_range": [min(r["p99_ms"] for r in rs), max(r["p99_ms"] for r in rs)],
                     "server_cpu_ms": median([r["server_cpu_ms_per_request"] for r in rs]),
                     "wrk_cpu_ms": median([r["wrk_cpu_ms_per_request"] for r in rs]),
                     "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs)})
    for variant, endpoint, c in keys:
        if endpoint == "healthz":
            continue
        per_round, cpu_per_round = [], []
        for rnd in sorted({r["round"] for r in runs}):
            pair = {r["endpoint"]: r for r in runs
                    if (r["variant"], r["connections"], r["round"]) == (variant, c, rnd)}
            if endpoint in pair and "healthz" in pair:
                a, h = pair[endpoint], pair["healthz"]
                per_round.append(a["rps"] / h["rps"])
                cpu_per_round.append((h["server_cpu_ms_per_request"] + h["wrk_cpu_ms_per_request"])
                                     / (a["server_cpu_ms_per_request"] + a["wrk_cpu_ms_per_request"]))
        # cpu_ratio: the throughput ratio the CPU cost per request (server and wrk) predicts for
        # a machine that is busy with nothing else
        ratio = {"variant": variant, "endpoint": endpoint, "connections": c, "median": median(per_round),
                 "range": [min(per_round), max(per_round)], "cpu_ratio": median(cpu_per_round)}
        ratios.append(ratio)
        if endpoint == "classify":
            targets[f"{variant}: classify/healthz req/s >= {TARGET_RATIO:g} at c={c}"] = ratio["median"] >= TARGET_RATIO
    for row in rows:
        if row["endpoint"] == "classify" and row["connections"] == 1:
            targets[f"{row['variant']}: classify c=1 p50 <= {TARGET_P50_MS:g} ms"] = row["p50_ms"] <= TARGET_P50_MS
            targets[f"{row['variant']}: classify c=1 p99 <= {TARGET_P99_MS:g} ms"] = row["p99_ms"] <= TARGET_P99_MS
    return {"table": rows, "ratios": ratios, "targets": targets}


def print_report(result: dict) -> None:
    m = result["machine"]
    print(f"\n{m['date']}  {m['cores']} cores, {m['cpu']}  load average before {m['loadavg_before'][0]:.2f}, "
          f"after {m['loadavg_after'][0]:.2f}  model {result['model_version']}  posts: {result['post_source']}")
    for name, v in result["variants"].items():
        print(f"variant {name}: {v['describe']}")
    print(f"{'variant':<12}{'endpoint':<14}{'conc':>5}{'req/s':>8}{'(min-max)':>14}{'p50 ms':>8}"
          f"{'(min-max)':>14}{'p99 ms':>8}{'(min-max)':>14}{'errors':>7}{'CPU ms/req':>11}{'wrk':>7}")
    for row in result["table"]:
        r, p50, p99 = row["rps_range"], row["p50_range"], row["p99_range"]
        print(f"{row['variant']:<12}{row['endpoint']:<14}{row['connections']:>5}{row['rps']:>8.0f}"
              f"{f'({r[0]:.0f}-{r[1]:.0f})':>14}{row['p50_ms']:>8.2f}{f'({p50[0]:.2f}-{p50[1]:.2f})':>14}"
              f"{row['p99_ms']:>8.2f}{f'({p99[0]:.1f}-{p99[1]:.1f})':>14}{row['errors']:>7}"
              f"{row['server_cpu_ms']:>11.3f}{row['wrk_cpu_ms']:>7.3f}")
    inproc = result.get("in_process_score_one_p50_ms")
    if inproc:
        print(f"in-process Model.score_one p50 in the same run: {median(inproc):.2f} ms "
              f"(rounds {min(inproc):.2f}-{max(inproc):.2f})")
    for r in result["ratios"]:
        print(f"{r['variant']}: {r['endpoint']} / healthz req/s at c={r['connections']}: {r['median']:.2f} "
              f"(rounds {r['range'][0]:.2f}-{r['range'][1]:.2f}); from CPU time per request: {r['cpu_ratio']:.2f}")
    for name, ok in result["targets"].items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")
    for name, v in result["variants"].items():
        first = v.get("first_requests_classify")
        if first:
            print(f"{name}: first {result['posts']} classify requests after start: first "
                  f"{first['first_ms']:.1f} ms, slowest {first['max_ms']:.1f} ms, median {first['median_ms']:.1f} ms; labels "
                  + ", ".join(f"{label} {n}" for label, n in sorted(first["labels"].items())))
    for name, v in result["variants"].items():
        stop = v["shutdown"]
        print(f"{name}: SIGTERM -> exit {stop['exit_code']} after {stop['seconds']} s, "
              f"{'clean' if stop['clean'] else 'NOT clean'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--model", type=Path, default=None,
                        help="models directory to serve (default: POSTSIEVE_MODEL_DIR or the data directory's)")
    parser.add_argument("--duration", type=int, default=10, help="whole seconds per wrk run (default 10)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connection counts (default 1,8,32)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per endpoint and concurrency, interleaved (default 2)")
    parser.add_argument("--warmup", type=int, default=3, help="whole seconds of classify load before measuring (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="passed to postsieve serve (default: its own)")
    parser.add_argument("--api-key", default=None,
                        help="also measure classify with 'Authorization: Bearer KEY' (endpoint classify+key)")
    parser.add_argument("--corpus", type=int, default=0, metavar="N",
                        help="use N posts of the bundled corpus instead of the twenty built-in ones")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=[VAR=VALUE ...] [ARGS]",
                        help="a server to compare, with its environment and extra gunicorn settings (passed as "
                             "GUNICORN_CMD_ARGS); repeatable; all variants run side by side, runs interleaved "
                             "(default: one server, 'serve', exactly as postsieve serve starts it)")
    parser.add_argument("--timeout", type=int, default=5, help="wrk's per-request timeout in whole seconds (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    parser.add_argument("--no-in-process", dest="in_process", action="store_false",
                        help="skip timing Model.score_one in this process next to each round")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed. On Debian/Ubuntu: sudo apt-get install wrk "
              "(elsewhere: https://github.com/wg/wrk).", file=sys.stderr)
        return 2
    concurrency = [int(c) for c in args.concurrency.split(",")]
    variants = [parse_variant(v) for v in args.variant] or [("serve", {}, "")]

    posts = benchmark_posts(args.corpus)
    bodies = [json.dumps(p, ensure_ascii=False) for p in posts]
    json_headers = {"Content-Type": "application/json"}
    endpoints = {"healthz": ("GET", "/healthz", {}, []),
                 "classify": ("POST", "/v1/classify", json_headers, bodies)}
    if args.api_key:
        endpoints["classify+key"] = ("POST", "/v1/classify",
                                     {**json_headers, "Authorization": f"Bearer {args.api_key}"}, bodies)

    result = {"machine": machine(), "duration_s": args.duration, "rounds": args.rounds, "posts": len(posts),
              "post_source": f"{len(posts)} corpus posts" if args.corpus else f"{len(posts)} built-in posts",
              "workers": args.workers, "variants": {}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="postsieve-http-") as tmp:
        tmp = Path(tmp)
        scripts = {}
        for name, (method, path, headers, bs) in endpoints.items():
            scripts[name] = tmp / f"{name.replace('+', '_')}.lua"
            write_lua(scripts[name], method, path, headers, bs)
        servers = {}
        try:
            for name, env, gargs in variants:
                port = free_port()
                log = tmp / f"server-{name}.log"
                servers[name] = (start_server(args, env, gargs, port, log, tmp), f"http://127.0.0.1:{port}", log)
                result["variants"][name] = {"env": env, "gunicorn_args": gargs, "describe": " ".join(
                    [f"{k}={v}" for k, v in env.items()] + [f"GUNICORN_CMD_ARGS={gargs!r}" if gargs else "as served"])}
            for name, (proc, url, log) in servers.items():
                wait_ready(url, proc, log, timeout=180)
                result["model_version"] = json.loads(request(url + "/readyz")[1]).get("model_version")
                for endpoint, (_, _, headers, _) in endpoints.items():
                    if endpoint != "healthz":
                        result["variants"][name][f"first_requests_{endpoint}"] = check_posts(url, bodies, headers)
                if args.warmup:  # fill every worker's word cache
                    run_wrk(url, scripts["classify"], "/v1/classify", max(concurrency), args.warmup, args.timeout)
            in_process = InProcess(args.model, posts) if args.in_process else None
            result["in_process_score_one_p50_ms"] = []
            for rnd in range(args.rounds):
                if in_process:
                    result["in_process_score_one_p50_ms"].append(in_process.measure())
                    print(f"round {rnd} in-process Model.score_one p50 "
                          f"{result['in_process_score_one_p50_ms'][-1]:.2f} ms", file=sys.stderr, flush=True)
                for c in concurrency:
                    for name in (list(servers) if rnd % 2 == 0 else list(reversed(servers))):
                        for endpoint in (list(endpoints) if rnd % 2 == 0 else list(reversed(endpoints))):
                            url = servers[name][1]
                            r = run_wrk(url, scripts[endpoint], endpoints[endpoint][1], c, args.duration, args.timeout,
                                      servers[name][0].pid)
                            r.update(variant=name, endpoint=endpoint, connections=c, round=rnd)
                            result["runs"].append(r)
                            print(f"round {rnd} {name:<10} {endpoint:<13} c={c:<3} {r['rps']:7.0f} req/s  "
                                  f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                                  f"CPU/request server {r['server_cpu_ms_per_request']:.3f} ms, "
                                  f"wrk {r['wrk_cpu_ms_per_request']:.3f} ms  "
                                  f"errors {r['non_2xx'] + r['socket_errors']}", file=sys.stderr, flush=True)
        finally:
            for name, (proc, url, log) in servers.items():
                result["variants"][name]["shutdown"] = stop_server(proc, log)
    result["machine"]["loadavg_after"] = os.getloadavg()
    result.update(summarise(result["runs"]))
    print_report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if all(v["shutdown"]["clean"] for v in result["variants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
