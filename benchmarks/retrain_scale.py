"""Retraining at scale: the real `postsieve retrain` on many moderator labels, time and memory.

For each size N, in a fresh data directory:

1. `postsieve train` on the bundled corpus alone, the baseline of the same run (it also
   becomes the active model the candidate is gated against);
2. N labelled posts made by recombining the corpus without changing what they are: a corpus
   post's title over 1-4 paragraphs of posts with the same label, or for spam its own body
   (promotional sentence included) after 1-2 paragraphs of legitimate posts, as copied
   articles with one promotional line look. Nearly all are distinct (retraining merges posts
   with the same text). Each has its own time; they are written to JSONL and loaded with
   `postsieve feedback import` (timed, not part of the retrain figure);
3. `postsieve retrain` (training set building, training, gate on the held-out 20 %, backtest
   in the report: every label up to 20,000 labels, the held-out ones above): wall time, the time of each stage from its progress lines, and
   peak memory (RSS of the command and its worker processes, summed, sampled every 0.2 s with
   psutil; forked workers share the parent's pages, so the sum over-counts), and the largest
   single process (`RUSAGE_CHILDREN`: the largest of every command run so far, so of the
   retrain unless an earlier command of the same run was larger).

    python benchmarks/retrain_scale.py [--sizes 10000,100000] [--json OUT]

The issue's target: 100,000 posts in under 2 minutes with bounded memory on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.dataset import bundled_corpus_dir, load_corpus  # noqa: E402

POSTSIEVE = [sys.executable, "-m", "classifier"]


def write_labelled(path: Path, n: int, seed: int = 0) -> dict:
    """Write n labelled posts recombined within their label; return the label counts."""
    examples = load_corpus([bundled_corpus_dir()]).examples
    rng = random.Random(seed)
    paragraphs: dict[str, list[str]] = {}
    for e in examples:
        for p in e.post.body.split("\n\n"):
            if p.strip():
                paragraphs.setdefault(e.label, []).append(p)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    counts: dict[str, int] = {}
    with open(path, "w") as f:
        for i in range(n):
            e = rng.choice(examples)
            if e.label == "spam":
                body = "\n\n".join([*rng.sample(paragraphs["ok"], k=rng.randint(1, 2)), e.post.body])
            else:
                body = "\n\n".join(rng.sample(paragraphs[e.label], k=rng.randint(1, 4)))
            counts[e.label] = counts.get(e.label, 0) + 1
            f.write(json.dumps({"id": f"r{i}", "title": e.post.title, "body": body, "category": e.post.category,
                                "label": e.label, "moderator": "bench",
                                "time": (start + timedelta(minutes=i)).isoformat()}) + "\n")
    return counts


def run(args: list[str], env: dict) -> dict:
    """Run a postsieve command; wall time, peak summed RSS, its output, and the time of each
    progress line (stderr)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(POSTSIEVE + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.perf_counter() - t0, line.rstrip())
                                                          for line in proc.stderr), daemon=True)
    stdout: list[str] = []
    collector = threading.Thread(target=lambda: stdout.append(proc.stdout.read()), daemon=True)
    collector.start()
    reader.start()
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.2)
    reader.join()
    collector.join()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        sys.exit(f"{' '.join(args[:2])} failed ({proc.returncode}):\n" + "\n".join(line for _, line in lines[-20:]))
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"wall_s": round(wall, 1), "peak_rss_total_mb": round(peak / 2**20),
            "largest_process_so_far_mb": round(largest), "exit": proc.returncode,
            "lines": [[round(t, 1), line] for t, line in lines], "stdout": "".join(stdout)}


def bench_size(n: int, tmp: Path) -> dict:
    env = dict(os.environ, POSTSIEVE_DATA_DIR=str(tmp / "data"), POSTSIEVE_MODEL_DIR=str(tmp / "models"),
               POSTSIEVE_DATABASE_URL=f"sqlite:///{tmp / 'feedback.sqlite'}")
    baseline = run(["train", str(bundled_corpus_dir()), "--out", str(tmp / "models")], env)
    labels = tmp / "labels.jsonl"
    counts = write_labelled(labels, n)
    imported = run(["feedback", "import", str(labels), "--source", "bench"], env)
    retrained = run(["retrain", "--json"], env)
    out = {"posts": n, "label_counts": counts, "load_average_1min": os.getloadavg()[0],
           "baseline_train_corpus": {k: baseline[k] for k in ("wall_s", "peak_rss_total_mb")},
           "import": {k: imported[k] for k in ("wall_s", "peak_rss_total_mb")},
           "retrain": {k: retrained[k] for k in ("wall_s", "peak_rss_total_mb", "largest_process_so_far_mb", "exit")},
           "retrain_progress": retrained["lines"]}
    out["retrain_vs_baseline"] = round(retrained["wall_s"] / baseline["wall_s"], 2)
    result = json.loads(retrained["stdout"])
    out["gate"] = {"passed": result["gate"]["passed"], "promoted": result["promoted"],
                   "failures": result["gate"].get("failures")}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated label counts (default 100000)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    results = {"machine": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "python": platform.python_version(), "cores": os.cpu_count(),
                           "platform": platform.platform()}, "sizes": []}
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="postsieve-retrain-bench-") as tmp:
            result = bench_size(n, Path(tmp))
        results["sizes"].append(result)
        brief = {k: v for k, v in result.items() if k != "retrain_progress"}
        print(json.dumps(brief), flush=True)
        for t, line in result["retrain_progress"]:
            print(f"    {t:7.1f} s  {line}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
