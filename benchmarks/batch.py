"""Batch scoring throughput and memory: `postsieve score` against the raw model ceiling.

Measures, on posts made by recombining the bundled corpus (written to JSONL files first):

- throughput of the real `postsieve score` command (a subprocess: JSONL in, JSONL out, parsing,
  scoring with sentences and reasons, writing) with 1 and 2 worker processes, against the raw
  ceiling of the same model in the same run: one process doing tokenisation + scikit-learn
  `transform` + `predict_proba` of the base model on the same posts, no I/O. Rounds are
  interleaved (the order rotates each round) and ratios are taken within a round, because
  the machine is shared and its speed drifts;
- peak memory of `postsieve score -j 2` (the parent and its workers, summed, sampled with
  psutil) on files of increasing size, e.g. 100k and 1M posts;
- the Dask engine on a 2-worker LocalCluster against `postsieve score -j 2` on the same posts
  (split into part files for Dask, one file for the local engine).

    python benchmarks/batch.py --model DIR [--posts 20000] [--rounds 3] [--memory 100000,1000000]
                               [--dask] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from classifier import Post, artifacts, features, load_corpus  # noqa: E402
from classifier.dataset import bundled_corpus_dir  # noqa: E402
from speed import machine  # noqa: E402

POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))


def write_recombined(path: Path, n: int, seed: int = 0) -> Path:
    """Write n posts made like speed.recombined_posts (a corpus title, corpus body paragraphs),
    streaming, so a million posts never sit in memory."""
    examples = load_corpus([bundled_corpus_dir()]).examples
    rng = random.Random(seed)
    paragraphs = [p for e in examples for p in e.post.body.split("\n\n") if p.strip()]
    with open(path, "w") as f:
        for i in range(n):
            e = rng.choice(examples)
            body = e.post.body if rng.random() < 0.5 else "\n\n".join(rng.sample(paragraphs, k=rng.randint(1, 4)))
            f.write(json.dumps({"id": f"b{i}", "title": e.post.title, "body": body,
                                "category": e.post.category}) + "\n")
    return path


def read_posts(path: Path) -> list[Post]:
    with open(path) as f:
        return [Post.from_dict(json.loads(line)) for line in f]


def ceiling_seconds(model, posts: list[Post]) -> float:
    """One process: tokenise + transform + predict_proba of the base model, no I/O."""
    t = time.perf_counter()
    docs = [features.post_tokens(p)[2] for p in posts]
    model.base.predict_proba(model.tfidf.transform(model.vectorizer.transform(docs)))
    return time.perf_counter() - t


def chunk_profile(model, src: Path, chunk_size: int = 1000) -> dict:
    """Where a chunk's time goes in one process, per post: reading and cutting the file (the
    parent's share), parsing into posts, scoring, encoding the output; and the ceiling on the
    same posts. Each stage over the whole file, the word cache warmed on the first chunk."""
    from classifier import outputs, records
    from classifier.dataset import FieldMap

    t = time.perf_counter()
    with records.RecordReader(str(src), "jsonl", chunk_size=chunk_size) as reader:
        chunks = list(reader)
    read = time.perf_counter() - t
    model.score(records.posts_of(chunks[0], FieldMap()))  # warm the word cache as a long run would be
    t = time.perf_counter()
    posts = [p for c in chunks for p in records.posts_of(c, FieldMap())]
    parse = time.perf_counter() - t
    t = time.perf_counter()
    scored = model.score(posts)
    score = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(scored), chunk_size):
        outputs.encode([s.to_dict() for s in scored[i:i + chunk_size]], "jsonl")
    encode = time.perf_counter() - t
    ceiling = ceiling_seconds(model, posts)
    n = len(posts)
    us = {"read": read, "parse": parse, "score": score, "encode": encode, "ceiling": ceiling}
    out = {k + "_us_per_post": v / n * 1e6 for k, v in us.items()}
    out["score_share_of_pipeline"] = score / (read + parse + score + encode)
    out["pipeline_vs_ceiling"] = ceiling / (read + parse + score + encode)
    return out


def run_score(args: list[str], env: dict | None = None, sample_memory: bool = False) -> dict:
    """Run `postsieve score ...`; wall time, the rate it reports, and peak memory if asked."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen([POSTSIEVE, "score", *args, "--no-progress"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    peak = _watch_memory(proc) if sample_memory else None
    stderr = proc.communicate()[1]
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the command and its workers: if two processes need no more CPU per post
    # than one, a speed-up short of 2x comes from sharing the machine, not from our overhead
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"postsieve score failed: {stderr}")
    summary = [line for line in stderr.splitlines() if line.startswith("scored ")][-1]
    rate = float(summary.split("posts/s")[0].rsplit("(", 1)[1])
    out = {"wall_s": wall, "cpu_s": cpu, "reported_posts_per_s": rate, "summary": summary}
    if peak is not None:
        out.update(peak)
    return out


def _watch_memory(proc: subprocess.Popen) -> dict:
    """Peak RSS of the process and its children, summed, sampled every 0.2 s (psutil)."""
    import psutil

    root = psutil.Process(proc.pid)
    peak_sum, peak_parent = 0, 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = [p.memory_info().rss for p in procs]
        except psutil.Error:
            rss = []
        if rss:
            peak_sum, peak_parent = max(peak_sum, sum(rss)), max(peak_parent, rss[0])
        time.sleep(0.2)
    return {"peak_rss_total_mb": peak_sum / 2**20, "peak_rss_parent_mb": peak_parent / 2**20}


def bench_throughput(model, model_dir: str, tmp: Path, n: int, rounds: int) -> dict:
    src = write_recombined(tmp / "throughput.jsonl", n, seed=1)
    posts = read_posts(src)
    profile = chunk_profile(model, src)
    print(json.dumps({"chunk_profile": profile}), file=sys.stderr)
    sides = ["ceiling", "jobs1", "jobs2"]
    per_round = []
    for r in range(rounds):
        timings = {"load_average_1min": os.getloadavg()[0]}  # other users of this shared machine
        for side in sides[r % 3:] + sides[:r % 3]:
            if side == "ceiling":
                timings[side] = {"posts_per_s": n / ceiling_seconds(model, posts)}
            else:
                res = run_score([str(src), "-o", str(tmp / "out.jsonl"), "--model", model_dir, "-j", side[-1]])
                # the command's own rate: from reading the first row to the last written, model load excluded
                res["posts_per_s"] = res["reported_posts_per_s"]
                res["wall_posts_per_s"] = n / res["wall_s"]
                timings[side] = res
        timings["jobs1_vs_ceiling"] = timings["jobs1"]["posts_per_s"] / timings["ceiling"]["posts_per_s"]
        timings["jobs2_vs_jobs1"] = timings["jobs2"]["posts_per_s"] / timings["jobs1"]["posts_per_s"]
        timings["cpu_jobs2_vs_jobs1"] = timings["jobs2"]["cpu_s"] / timings["jobs1"]["cpu_s"]
        print(json.dumps({"round": r, **{k: (v if not isinstance(v, dict) else v["posts_per_s"])
                                         for k, v in timings.items()}}), file=sys.stderr)
        per_round.append(timings)
    med = lambda key: statistics.median(t[key] for t in per_round)  # noqa: E731
    return {"posts": n, "chunk_profile": profile, "rounds": per_round,
            "median": {"ceiling_posts_per_s": statistics.median(t["ceiling"]["posts_per_s"] for t in per_round),
                       "jobs1_posts_per_s": statistics.median(t["jobs1"]["posts_per_s"] for t in per_round),
                       "jobs2_posts_per_s": statistics.median(t["jobs2"]["posts_per_s"] for t in per_round),
                       "jobs1_vs_ceiling": med("jobs1_vs_ceiling"), "jobs2_vs_jobs1": med("jobs2_vs_jobs1"),
                       "cpu_jobs2_vs_jobs1": med("cpu_jobs2_vs_jobs1")},
            "load_average_after": os.getloadavg()}


def bench_memory(model_dir: str, tmp: Path, sizes: list[int]) -> list[dict]:
    out = []
    for n in sizes:
        src = write_recombined(tmp / f"memory-{n}.jsonl", n, seed=2)
        res = run_score([str(src), "-o", str(tmp / "memory-out.jsonl"), "--model", model_dir, "-j", "2"],
                        sample_memory=True)
        res["posts"] = n
        res["children_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(json.dumps(res), file=sys.stderr)
        out.append(res)
        src.unlink()
    return out


def bench_dask(model_dir: str, tmp: Path, n: int, files: int) -> dict:
    from distributed import LocalCluster

    src = write_recombined(tmp / "dask-all.jsonl", n, seed=3)
    parts = tmp / "dask-in"
    parts.mkdir()
    lines = src.read_text().splitlines(keepends=True)
    per = -(-len(lines) // files)
    for i in range(files):
        (parts / f"posts-{i:03d}.jsonl").write_text("".join(lines[i * per:(i + 1) * per]))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rounds = []
        for r in range(2):
            local = run_score([str(src), "-o", str(tmp / "dask-local.jsonl"), "--model", model_dir, "-j", "2"])
            out = tmp / f"dask-out-{r}"
            dask = run_score([str(parts), "--engine", "dask", "--scheduler", cluster.scheduler_address,
                              "-o", str(out), "--model", model_dir])
            rounds.append({"local_jobs2_wall_posts_per_s": n / local["wall_s"],
                           "dask_wall_posts_per_s": n / dask["wall_s"],
                           "dask_vs_local": local["wall_s"] / dask["wall_s"]})
            print(json.dumps(rounds[-1]), file=sys.stderr)
    return {"posts": n, "files": files, "workers": 2, "rounds": rounds,
            "median_dask_vs_local": statistics.median(r["dask_vs_local"] for r in rounds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="models directory or version directory")
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", default="", help="comma-separated post counts, e.g. 100000,1000000")
    parser.add_argument("--dask", action="store_true")
    parser.add_argument("--dask-posts", type=int, default=20_000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    model = artifacts.load_path(args.model)
    result = {"machine": machine(), "nproc": os.cpu_count(), "model_version": model.version}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_throughput:
            result["throughput"] = bench_throughput(model, args.model, tmp, args.posts, args.rounds)
        if args.memory:
            result["memory"] = bench_memory(args.model, tmp, [int(x) for x in args.memory.split(",")])
        if args.dask:
            result["dask"] = bench_dask(args.model, tmp, args.dask_posts, files=8)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
