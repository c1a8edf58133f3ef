"""Scoring time of hostile posts, in units of an ordinary post's time measured in the same run.

A forum calls postsieve inside the request that creates a post, so one post that costs seconds
ties up a worker for that long. Most families below once took 0.1-80 s a field (a quadratic step
in clean-up, sentence splitting or link finding) and are kept here to show they no longer do; the
tags left open took up to 42 ms, and the spaced dots, still the slowest, are linear. Every family is
a 20,000-character field (the scored prefix), scored as the title and as the body with
`Model.score_one`; the baseline is the median time of 500 corpus posts in the same process.

    python benchmarks/hostile.py [--model DIR] [--repeat 3] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier import Post, artifacts, workflow  # noqa: E402
from classifier.features import MAX_FIELD_CHARS  # noqa: E402

from speed import machine, recombined_posts  # noqa: E402

_BACKTICK_OPENINGS = "".join("`" * k + "a" for k in range(1, 32))

# name -> text; docs/benchmarks.md, "Hostile posts", gives each one's time before and after its fix
FAMILIES = {
    "sentence marks in a mix (?!?!...)": "?!" * 10_000,
    "sentence marks behind HTML": "<b>x</b>" + "?!" * 9_990,
    "obfuscated dots and NFKC-widening characters": "(." * 5_000 + "\u3316\u3315" * 5_000,
    "the same in a code fence": "```\n" + "(." * 5_000 + "\u3316\u3315" * 5_000,
    "bracketed dots [.]": "[.]" * 6_666,
    "a link closed again and again": "http://a.b" + ")\u2026" * 9_995,
    "a link, wide characters, closing brackets": "http://a.b" + "\u3316" * 10_000 + ")" * 9_990,
    "glued words in a code fence": "```\n" + "a.Ba" * 5_000,
    "glued words after code openings": _BACKTICK_OPENINGS * 16 + "a.Ba" * 4_800 + "@",
    "www.A repeated": "www.A" * 4_000,
    "glued words and slashes": "ab.Cd/" * 3_334,
    "glued words split by line separators": "&" + "a!Bc\u2028" * 4_000,
    "www anchors in one run ('www.a.bc)": "'www.a.bc" * 2_222,
    "scheme anchors in one run": "(.)http://" * 2_000,
    "a run of .com": "..com" * 4_000,
    "many www domains": "www.a.com " * 2_000,
    # nested anchors of a URL that ends in "://", then a long tail (found after the first fixes)
    "nested schemes, then dots": "-http://" * 1_250 + "." * 10_000,
    "nested schemes, then closing brackets": "(.)http://" * 1_000 + ")" * 10_000,
    # tags left open: every "<" past the last ">" read to the end before failing (found 2026-11-27)
    "unclosed <script": "<script" * 2_858,
    "unclosed <style": "<style" * 3_334,
    "unclosed <pre": "<pre" * 5_000,
    "unclosed <!doctype": "<!doctype" * 2_223,
    # linear, and the slowest family left (deobfuscation windows around spaced dots)
    "spaced dots (a  .  )": "a  .  " * 3_334,
}


def best_time(model, post: Post, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        model.score_one(post)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: the active model)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per post; the best counts (default 3)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    model = artifacts.load_path(args.model) if args.model else workflow.ensure_model()
    ordinary = recombined_posts(500)
    for post in ordinary[:50]:
        model.score_one(post)  # warm the word cache, as in a running server
    baseline = statistics.median(best_time(model, post, args.repeat) for post in ordinary)
    rows = []
    for name, text in FAMILIES.items():
        text = text[:MAX_FIELD_CHARS]
        for field, post in (("title", Post("h", text, "")), ("body", Post("h", "", text))):
            seconds = best_time(model, post, args.repeat)
            rows.append({"family": name, "field": field, "chars": len(text), "ms": round(seconds * 1e3, 2),
                         "x_ordinary": round(seconds / baseline, 1)})
    print(f"ordinary post (median of {len(ordinary)}): {baseline * 1e3:.3f} ms; model {model.version}")
    print(f"{'family':46s} {'field':5s} {'ms':>8s} {'x ordinary':>11s}")
    for row in rows:
        print(f"{row['family']:46s} {row['field']:5s} {row['ms']:8.2f} {row['x_ordinary']:11.1f}")
    result = {"machine": machine(), "model_version": model.version, "ordinary_ms": baseline * 1e3, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
