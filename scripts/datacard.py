"""Regenerate the tables of training_data/DATACARD.md from the corpus files.

Only the part between the `<!-- generated -->` markers is rewritten; the prose around it is
written by hand.   .venv/bin/python scripts/datacard.py
"""
from __future__ import annotations

import re
import statistics
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier import LABELS, load_corpus  # noqa: E402
from classifier.text import find_urls  # noqa: E402

CARD = ROOT / "training_data" / "DATACARD.md"


def tables() -> str:
    corpus = load_corpus([ROOT / "training_data"])
    ex = corpus.examples
    lines = [f"Corpus SHA-256: `{corpus.sha256}`, {len(ex)} posts in {len(corpus.files)} files.", "",
             "| label | posts | median words | posts with a link | with an empty title |", "|---|---|---|---|---|"]
    counts = corpus.label_counts()
    for label in LABELS:
        rows = [e for e in ex if e.label == label]
        words = [len(e.post.body.split()) for e in rows]
        linked = sum(1 for e in rows if find_urls(e.post.body))
        untitled = sum(1 for e in rows if not e.post.title.strip())
        lines.append(f"| `{label}` | {counts[label]} | {statistics.median(words):.0f} | {linked} | {untitled} |")
    lines += ["", "### Kinds", "", "| label | kind | posts |", "|---|---|---|"]
    for label, kinds in corpus.kind_counts().items():
        for kind, n in kinds.items():
            lines.append(f"| `{label}` | `{kind}` | {n} |")
    cats = sorted({e.post.category or "-" for e in ex})
    by = Counter((e.post.category or "-", e.label) for e in ex)
    lines += ["", "### Categories (where posts were filed)", "",
              "| category | " + " | ".join(LABELS) + " |", "|---|" + "---|" * len(LABELS)]
    for c in cats:
        lines.append(f"| {c} | " + " | ".join(str(by[(c, label)]) for label in LABELS) + " |")
    lines += ["", "### Files", "", "| file | posts |", "|---|---|"]
    for f in corpus.files:
        n = sum(1 for line in Path(f).read_text().splitlines() if line.strip())
        lines.append(f"| `{Path(f).name}` | {n} |")
    return "\n".join(lines)


def main():
    text = CARD.read_text()
    new = re.sub(r"(<!-- generated -->\n).*?(<!-- /generated -->)", lambda m: m.group(1) + tables() + "\n" + m.group(2),
                 text, flags=re.S)
    CARD.write_text(new)
    print(f"updated {CARD}")


if __name__ == "__main__":
    main()
