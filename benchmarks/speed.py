"""Speed and memory of the classifier, measured against baselines in the same run.

Measures, on posts from the bundled corpus (recombined to the requested count):

- training time of the default model (unless --skip-train);
- single-post latency in-process, `Model.score_one` with sentence scoring and reasons: p50/p99;
- batch throughput of `postsieve score`'s path (JSONL in, JSONL out, parsing and writing
  included) against the raw ceiling of the same model: scikit-learn `transform` +
  `predict_proba` of the base model on the same posts' token lists, no I/O, tokenisation
  included (the analyzer is the same Python code);
- peak resident memory of the process.

    python benchmarks/speed.py [--posts 5000] [--model DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import random
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier import Post, artifacts, features, load_corpus, workflow  # noqa: E402
from classifier.dataset import bundled_corpus_dir  # noqa: E402
from classifier import scoring  # noqa: E402


def recombined_posts(n: int, seed: int = 0) -> list[Post]:
    """n posts made by recombining corpus posts: a title from one, body paragraphs from others."""
    examples = load_corpus([bundled_corpus_dir()]).examples
    rng = random.Random(seed)
    paragraphs = [p for e in examples for p in e.post.body.split("\n\n") if p.strip()]
    out = []
    for i in range(n):
        e = rng.choice(examples)
        body = e.post.body if rng.random() < 0.5 else "\n\n".join(rng.sample(paragraphs, k=rng.randint(1, 4)))
        out.append(Post(f"b{i}", e.post.title, body, e.post.category))
    return out


def machine() -> dict:
    import os

    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "cpu": _cpu_name(), "cores": os.cpu_count(), "platform": platform.platform()}


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def bench_latency(model, posts: list[Post], repeat: int = 1) -> dict:
    for p in posts[:200]:
        model.score_one(p)  # warm the word cache as a running server would be
    times = []
    for _ in range(repeat):
        for p in posts:
            t = time.perf_counter()
            model.score_one(p)
            times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"posts": len(times), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def bench_batch(model, posts: list[Post], rounds: int = 5) -> dict:
    """End-to-end scoring of a JSONL stream vs the raw scikit-learn ceiling on the same posts.

    The posts are split into `rounds` slices; each slice is timed both ways, alternating which
    goes first, and the median of the per-slice ratios is reported, so that a burst of load
    from a neighbour on this shared machine hits both sides alike.
    """
    size = max(1, len(posts) // rounds)
    ratios, ceiling_rates, e2e_rates = [], [], []
    for r in range(rounds):
        chunk = posts[r * size:(r + 1) * size]
        jsonl = "".join(json.dumps({"id": p.id, "title": p.title, "body": p.body, "category": p.category}) + "\n"
                        for p in chunk)
        timings = {}
        for side in (("ceiling", "e2e") if r % 2 == 0 else ("e2e", "ceiling")):
            t = time.perf_counter()
            if side == "ceiling":
                # tokenise + transform + predict_proba of the base model, no I/O
                docs = [features.post_tokens(p)[2] for p in chunk]
                model.base.predict_proba(model.tfidf.transform(model.vectorizer.transform(docs)))
            else:
                # parse JSONL, score (sentences, combiner, highlights, reasons), write JSONL
                scoring.score_stream(model, io.StringIO(jsonl), "jsonl", scoring.JsonlWriter(io.StringIO()))
            timings[side] = time.perf_counter() - t
        ratios.append(timings["ceiling"] / timings["e2e"])
        ceiling_rates.append(len(chunk) / timings["ceiling"])
        e2e_rates.append(len(chunk) / timings["e2e"])
    return {"posts": len(posts), "rounds": rounds, "ceiling_posts_per_s": float(np.median(ceiling_rates)),
            "end_to_end_posts_per_s": float(np.median(e2e_rates)), "ratio_to_ceiling": float(np.median(ratios)),
            "ratios": [round(x, 3) for x in ratios]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {"machine": machine()}
    if not args.skip_train:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            workflow.train_and_save([bundled_corpus_dir()], tmp)
            result["train_seconds"] = time.perf_counter() - t
    if args.model is None:
        model = workflow.ensure_model()
    else:
        model = artifacts.load_path(args.model)
    t = time.perf_counter()
    artifacts.load_path(args.model or workflow.models_dir())
    result["load_seconds"] = time.perf_counter() - t
    posts = recombined_posts(args.posts)
    result["model_version"] = model.version
    result["vocabulary"] = len(model.vocabulary_)
    result["latency"] = bench_latency(model, posts[:2000])
    result["batch"] = bench_batch(model, posts)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
