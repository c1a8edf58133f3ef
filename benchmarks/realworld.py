"""Real-world quality: score third-party labelled forum posts that nobody on the team wrote.

Reads the JSONL files of a datasets directory (by default ../shared/datasets beside the checkout,
which the project never copies or ships), scores every post with a model and reports per file:
spam ROC-AUC, spam recall at 1 % false-positive rate, precision and recall of the `block`
decision and of `block or review`, and the share of legitimate posts blocked, each with and
without the rows whose spam label the dataset marks as dubious. Off-topic scores are summarised
by topicality.

    python benchmarks/realworld.py [--datasets DIR] [--model DIR] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier import Post, artifacts, workflow  # noqa: E402
from classifier.decision import decide_all  # noqa: E402
from classifier.evaluate import recall_at_fpr  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def file_metrics(rows: list[dict], probs: np.ndarray, thresholds) -> dict:
    """Spam metrics for one set of rows (spam vs ham, whatever the topicality)."""
    y = np.array([r["label"] == "spam" for r in rows])
    decisions = np.array(decide_all(probs, thresholds))
    blocked, flagged = decisions == "block", decisions != "allow"
    out = {"n": int(len(rows)), "spam": int(y.sum()), "ham": int((~y).sum()),
           "ham_blocked_rate": float(blocked[~y].mean()) if (~y).any() else None,
           "ham_blocked": int(blocked[~y].sum())}
    if y.any() and (~y).any():
        out.update({
            "spam_roc_auc": float(roc_auc_score(y, probs[:, 1])),
            "spam_recall_at_1pct_fpr": recall_at_fpr(y, probs[:, 1], 0.01),
            "block_precision": float(y[blocked].mean()) if blocked.any() else None,
            "block_recall": float(blocked[y].mean()),
            "flag_precision": float(y[flagged].mean()) if flagged.any() else None,
            "flag_recall": float(flagged[y].mean()),
        })
    return out


def evaluate_file(model, path: Path) -> dict:
    rows = read(path)
    posts = [Post(str(r["id"]), r.get("title") or "", r.get("body") or "", None) for r in rows]
    probs = model.predict_proba(posts)
    result = {"file": path.name, "all": file_metrics(rows, probs, model.thresholds)}
    keep = [i for i, r in enumerate(rows) if not r.get("label_dubious")]
    if len(keep) < len(rows):
        result["without_dubious"] = file_metrics([rows[i] for i in keep], probs[keep], model.thresholds)
    topical = {}
    for t in sorted({r.get("topicality", "") for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.get("topicality") == t and r["label"] == "ham"]
        if idx:
            p_off = probs[idx, 2]
            decisions = decide_all(probs[idx], model.thresholds)
            topical[t] = {"ham": len(idx), "mean_off_topic": float(p_off.mean()),
                          "share_label_off_topic": float((probs[idx].argmax(axis=1) == 2).mean()),
                          "share_review": decisions.count("review") / len(idx)}
    result["ham_by_topicality"] = topical
    return result


def format_results(results: list[dict]) -> str:
    lines = ["| file | rows | spam/ham | spam ROC-AUC | recall @1% FPR | block P / R | block+review P / R | ham blocked |",
             "|---|---|---|---|---|---|---|---|"]

    def f(v, pct=False):
        if v is None:
            return "-"
        return f"{100 * v:.1f} %" if pct else f"{v:.3f}"

    for r in results:
        for key in ("all", "without_dubious"):
            if key not in r:
                continue
            m = r[key]
            name = r["file"] + (" (no dubious)" if key == "without_dubious" else "")
            lines.append(f"| {name} | {m['n']} | {m['spam']}/{m['ham']} | {f(m.get('spam_roc_auc'))} | "
                         f"{f(m.get('spam_recall_at_1pct_fpr'))} | {f(m.get('block_precision'))} / {f(m.get('block_recall'))} | "
                         f"{f(m.get('flag_precision'))} / {f(m.get('flag_recall'))} | "
                         f"{m['ham_blocked']} ({f(m['ham_blocked_rate'], True)}) |")
    lines.append("")
    lines.append("| file | topicality (ham only) | posts | mean P(off_topic) | labelled off_topic | sent to review |")
    lines.append("|---|---|---|---|---|---|")
    for r in results:
        for t, m in r["ham_by_topicality"].items():
            lines.append(f"| {r['file']} | {t} | {m['ham']} | {m['mean_off_topic']:.3f} | "
                         f"{100 * m['share_label_off_topic']:.1f} % | {100 * m['share_review']:.1f} % |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--model", type=Path, default=None, help="models or version directory")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not args.datasets.is_dir():
        print(f"realworld: no datasets at {args.datasets}; skipping", file=sys.stderr)
        return 0
    if args.model is None:
        model = workflow.ensure_model()
    else:
        model = artifacts.load_path(args.model)
    results = [evaluate_file(model, p) for p in sorted(args.datasets.glob("*.jsonl"))]
    print(f"model {model.version}, thresholds {model.thresholds.to_dict()}")
    print(format_results(results))
    if args.json:
        args.json.write_text(json.dumps({"model_version": model.version, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
