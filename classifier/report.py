"""The HTML training report: what a model version measured on held-out posts, in one file.

One self-contained page (inline CSS, plots as embedded PNGs, no script, nothing fetched), so it
opens offline from a models directory and can be attached to an issue as it is. Sections:

    summary           version, created, parent, training-data hash, label counts, key numbers
    thresholds        the three cut-offs, what each does, the precision and recall they give
    precision-recall  one curve per label, the thresholds' operating points marked
    decisions         true label vs decision (allow/review/block), true vs most probable label
    scores            histograms of P(spam) and P(off_topic) per true label, thresholds drawn
    gate              candidate vs active model, metric by metric (when a gate ran)
    backtest          decisions that change on past posts (when a backtest ran)

Every number is computed from the out-of-fold labels and probabilities the thresholds were
chosen on (`heldout.npz` in the version directory), so a report can be rebuilt without
retraining. Plots use matplotlib's object API (`Figure` on an Agg canvas): no pyplot, no global
state, no display needed. Every text value is HTML-escaped: post ids come from forums.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from . import artifacts
from .decision import Thresholds, decide_all
from .errors import ArtifactError, ReportUnavailable
from .types import DECISIONS, LABELS

REPORT_FILE = "report.html"
#: rows of the backtest's change table; the rest are counted, not listed (a page stays openable)
MAX_CHANGES = 500
#: the gate's own metrics come first in its table, in this order; any others follow, sorted
GATE_METRICS = ("spam_recall_at_block", "block_precision", "off_topic_roc_auc")
#: one colour per true label in every plot, so a reader learns them once
COLOURS = {"ok": "#2ca02c", "spam": "#d62728", "off_topic": "#1f77b4"}


def report_path(version_dir: str | Path) -> Path:
    """Where a version's report lives: `<version dir>/report.html`."""
    return Path(version_dir) / REPORT_FILE


def write_report(path: str | Path, *, version: str, manifest: Mapping, y_true: Sequence[str], probabilities,
                 thresholds: Thresholds, gate: Mapping | None = None, backtest: Mapping | None = None,
                 note: str | None = None) -> Path:
    """Write a self-contained report.html and return its path.

    Parameters
    ----------
    path : the file to write, or a version directory (then `report.html` inside it)
    version, manifest : the version id and its manifest (header facts; missing keys are skipped)
    y_true : true label of every held-out row
    probabilities : array (n, 3) in `LABELS` order: held-out (out-of-fold) scores
    thresholds : the version's decision cut-offs
    gate : the gate's result (see `gate_section`), or None when no gate ran
    backtest : the backtest's changed decisions (see `backtest_section`), or None
    note : one line shown under the title (e.g. that the report was rebuilt)

    The file is written next to its final name and renamed, so a reader never sees half a page.
    """
    path = Path(path)
    if path.is_dir():
        path = report_path(path)
    page = render_report(version=version, manifest=manifest, y_true=y_true, probabilities=probabilities,
                         thresholds=thresholds, gate=gate, backtest=backtest, note=note)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_report(*, version: str, manifest: Mapping, y_true: Sequence[str], probabilities,
                  thresholds: Thresholds, gate: Mapping | None = None, backtest: Mapping | None = None,
                  note: str | None = None) -> str:
    """The report as one HTML string (see `write_report` for the parameters)."""
    y, p = _validated(y_true, probabilities)
    sections = [
        summary_section(version, manifest, y, p, thresholds, note),
        threshold_section(y, p, thresholds, manifest.get("params") or {}),
        precision_recall_section(y, p, thresholds),
        decision_section(y, p, thresholds),
        score_section(y, p, thresholds),
        gate_section(gate),
        backtest_section(backtest),
    ]
    nav = " · ".join(f'<a href="#{sid}">{title}</a>' for sid, title in _NAV)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<title>postsieve report {_text(version)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n'
            f'<nav>{nav}</nav>\n' + "\n".join(sections) + "\n</body>\n</html>\n")


def report_for_version(models_dir: str | Path, version: str | None = None, *,
                       progress: Callable[[str], None] | None = None) -> Path:
    """The report of a version (default: the active one), built from heldout.npz if missing.

    Raises ReportUnavailable for a version trained before reports existed (no report, no
    held-out scores: only retraining can make one), ArtifactError for an unknown version.
    """
    models_dir = Path(models_dir)
    version = version or artifacts.active_version(models_dir)
    if version is None:
        raise ArtifactError(f"no model in {models_dir}; run `postsieve train`")
    if not artifacts.is_version_id(version):
        raise ArtifactError(f"{version!r} is not a version id (expected a name like 20261126-030243-347fc736)")
    version_dir = models_dir / version
    if not (version_dir / artifacts.MANIFEST_FILE).is_file():
        known = [m["version"] for m in artifacts.list_versions(models_dir)]
        hint = f"; versions there: {', '.join(known[-5:])}" if known else ""
        raise ArtifactError(f"no version {version} in {models_dir}{hint}")
    path = report_path(version_dir)
    if path.is_file():
        return path
    if not (version_dir / artifacts.HELDOUT_FILE).is_file():
        raise ReportUnavailable(
            f"version {version} has no report: it was trained before postsieve wrote reports and its "
            f"held-out scores were not kept; train a new version (`postsieve train`) to get one")
    if progress:
        progress(f"version {version} has no report yet: building it from {artifacts.HELDOUT_FILE}")
    return rebuild_report(version_dir)


def rebuild_report(version_dir: str | Path) -> Path:
    """Write a version's report again from its manifest and heldout.npz (no retraining).

    A gate result stored in the manifest under "gate" is shown again; backtest changes are not
    stored with a version, so the rebuilt page says it cannot show them.
    """
    version_dir = Path(version_dir)
    manifest = artifacts.read_manifest(version_dir)
    y, p = artifacts.load_heldout(version_dir)
    gate = manifest.get("gate") if isinstance(manifest.get("gate"), dict) else None
    try:
        thresholds = Thresholds(**manifest["thresholds"])
        return write_report(version_dir, version=manifest["version"], manifest=manifest, y_true=y,
                            probabilities=p, thresholds=thresholds, gate=gate,
                            note=f"Rebuilt from {artifacts.HELDOUT_FILE}; a backtest that ran at training "
                                 f"time is not kept with the version and is not shown.")
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{version_dir}: cannot build a report ({exc})") from None
    except OSError as exc:
        raise ArtifactError(f"cannot write {report_path(version_dir)}: {exc.strerror or exc}") from None


# ---- sections -------------------------------------------------------------------------------

_NAV = [("summary", "Summary"), ("thresholds", "Thresholds"), ("precision-recall", "Precision-recall"),
        ("decisions", "Decisions"), ("scores", "Scores"), ("gate", "Gate"), ("backtest", "Backtest")]


def summary_section(version: str, manifest: Mapping, y: np.ndarray, p: np.ndarray, thresholds: Thresholds,
                    note: str | None) -> str:
    """Which version this is, what it was trained on, and the few numbers that matter most."""
    facts = [("version", version)]
    for key in ("created", "parent"):
        if key in manifest:
            value = manifest[key]
            facts.append((key, value if value is not None else "none (first version)" if key == "parent" else "-"))
    data = manifest.get("training_data") or {}
    if data.get("sha256"):
        facts.append(("training data SHA-256", data["sha256"]))
    if manifest.get("corpus_files"):
        facts.append(("corpus files", ", ".join(map(str, manifest["corpus_files"]))))
    evaluated = (manifest.get("metrics") or {}).get("evaluated_on")
    facts.append(("held-out rows", f"{len(y)}" + (f" ({evaluated})" if evaluated else "")))
    dl = "".join(f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in facts)

    corpus_counts = data.get("label_counts") or {}
    augmented = manifest.get("augmented_counts") or {}
    rows = [(label, corpus_counts.get(label, "-"), int((y == label).sum())) for label in LABELS]
    # a retrained version's label counts hold the moderators' labels it was trained on as well
    trained_on = "posts trained on (corpus and labels)" if manifest.get("retraining") else "posts in the corpus"
    counts = _table(["label", trained_on, "held-out rows"], rows)
    if augmented:
        counts += _p("Held-out rows include augmented posts made from the corpus during training: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(augmented.items())) + ".")

    is_spam = y == "spam"
    decisions = np.array(decide_all(p, thresholds))
    blocked = decisions == "block"
    key = [
        ("spam ROC-AUC", _num(_auc(is_spam, p[:, 1]))),
        ("off-topic ROC-AUC", _num(_auc(y == "off_topic", p[:, 2]))),
        ("block precision (blocked posts that are spam)", _pct(_mean(is_spam[blocked]))),
        ("spam blocked", _pct(_mean(blocked[is_spam]))),
        ("spam blocked or sent to review", _pct(_mean((decisions != "allow")[is_spam]))),
        ("legitimate posts (ok and off-topic) blocked", _pct(_mean(blocked[~is_spam]))),
    ]
    body = (f"<dl>{dl}</dl>\n<h3>Labels</h3>\n{counts}\n<h3>Key numbers (held out)</h3>\n"
            f"{_table(['measure', 'value'], key)}")
    title = "postsieve training report"
    head = f'<section id="summary">\n<h1>{title}</h1>\n'
    if note:
        head += f'<p class="note">{_text(note)}</p>\n'
    return head + body + "\n</section>"


def threshold_section(y: np.ndarray, p: np.ndarray, thresholds: Thresholds, params: Mapping) -> str:
    """The three cut-offs, what each does, the target it was chosen for and what it gives held out."""
    def target(name, text):
        value = params.get(name)
        return text.format(_pct(value)) if isinstance(value, (int, float)) else "-"

    rows = []
    for name, column, label, does, aim in (
        ("spam_block", 1, "spam", "block when P(spam) is at or above it",
         target("block_precision", "lowest cut-off with block precision >= {}")),
        ("spam_review", 1, "spam", "review when P(spam) is at or above it (and below spam_block)",
         target("review_recall", "catches {} of spam")),
        ("off_topic_review", 2, "off_topic", "review when P(off_topic) is at or above it; off-topic posts "
         "are never blocked", target("off_topic_precision", "lowest cut-off with off-topic precision >= {}")),
    ):
        cut = getattr(thresholds, name)
        precision, recall, flagged = operating_point(y == label, p[:, column], cut)
        rows.append((name, f"{cut:.4f}", does, aim, flagged, _pct(precision), _pct(recall)))
    table = _table(["threshold", "value", "what it does", "chosen for", "rows at or above", "precision",
                    "recall"], rows, text_columns=(2, 3))
    explain = _p("Precision: of the held-out rows at or above the cut-off, the share that carry the label "
                 "(spam for the spam cut-offs, off_topic for off_topic_review). Recall: of the rows "
                 "with that label, the share at or above the cut-off.")
    return _section("thresholds", "Thresholds", table + explain)


def precision_recall_section(y: np.ndarray, p: np.ndarray, thresholds: Thresholds) -> str:
    """One precision-recall curve per label (one label against the rest), operating points marked."""
    fig = _figure(13, 4.2)
    for i, (label, ax) in enumerate(zip(LABELS, fig.subplots(1, len(LABELS)))):
        positive = y == label
        ax.set(title=f"{label} (P({label}) against the rest)", xlabel="recall", ylabel="precision",
               xlim=(0, 1.01), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        if positive.all() or not positive.any():
            ax.text(0.5, 0.5, "needs held-out rows with and without this label", ha="center",
                    transform=ax.transAxes)
            continue
        precision, recall, _ = precision_recall_curve(positive, p[:, i])
        ap = average_precision_score(positive, p[:, i])
        ax.plot(recall, precision, color=COLOURS[label], drawstyle="steps-post", label=f"average precision {ap:.3f}")
        for (name, cut), marker in zip(_cuts_for(label, thresholds), ("o", "s")):
            prec, rec, _ = operating_point(positive, p[:, i], cut)
            if not math.isnan(prec):
                ax.plot([rec], [prec], marker=marker, color="black", markersize=8, linestyle="none",
                        label=f"{name} {cut:.3f}: precision {prec:.3f}, recall {rec:.3f}")
        ax.legend(loc="lower left", fontsize=8)
    text = _p("Each curve ranks the held-out rows by the label's probability; every point is a possible "
              "cut-off. The markers are the cut-offs in use (ok has none: it is what is left). A curve "
              "that stays high to the right separates the label well.")
    return _section("precision-recall", "Precision-recall curves",
                    _img(fig, "precision-recall curves for ok, spam and off_topic") + text)


def decision_section(y: np.ndarray, p: np.ndarray, thresholds: Thresholds) -> str:
    """What moderators would have seen: decisions per true label, and the label confusion matrix."""
    decisions = np.array(decide_all(p, thresholds))
    predicted = np.array(LABELS)[p.argmax(axis=1)]
    by_decision = _counts(y, decisions, DECISIONS)
    by_label = _counts(y, predicted, LABELS)
    fig = _figure(12, 4)
    left, right = fig.subplots(1, 2)
    _heatmap(left, by_decision, DECISIONS, "decision", "true label vs decision")
    _heatmap(right, by_label, LABELS, "most probable label", "true label vs most probable label")
    rows = []
    for label, row in zip(LABELS, by_decision):
        n = int(row.sum())
        rows.append([label, n] + [f"{int(c)} ({_pct(c / n if n else float('nan'))})" for c in row])
    table = _table(["true label", "rows"] + list(DECISIONS), rows)
    text = _p("Decisions apply the thresholds above to each held-out row. Spam that is allowed reaches the "
              "forum; ok or off_topic rows that are blocked are honest posts lost. The label matrix "
              "shows which labels the model mixes up, whatever the thresholds. Cells are coloured by "
              "the share of their row.")
    return _section("decisions", "Decisions and confusion matrix",
                    table + _img(fig, "true label against decision, and against the most probable label") + text)


def score_section(y: np.ndarray, p: np.ndarray, thresholds: Thresholds) -> str:
    """Histograms of P(spam) and P(off_topic) for each true label, with the cut-offs drawn."""
    fig = _figure(12, 4)
    bins = np.linspace(0, 1, 41)
    panels = ((1, "P(spam)", [("spam_block", "-"), ("spam_review", "--")]),
              (2, "P(off_topic)", [("off_topic_review", "--")]))
    for ax, (column, title, cuts) in zip(fig.subplots(1, 2), panels):
        for label in LABELS:
            scores = p[y == label, column]
            if len(scores):
                ax.hist(scores, bins=bins, histtype="step", linewidth=1.6, color=COLOURS[label],
                        label=f"true {label} ({len(scores)})")
        for name, style in cuts:
            cut = getattr(thresholds, name)
            ax.axvline(cut, color="black", linestyle=style, linewidth=1, label=f"{name} {cut:.3f}")
        ax.set_yscale("log")
        # a bottom under 1 keeps bins holding a single row visible on the log scale
        ax.set(title=title, xlabel=title, ylabel="held-out rows (log scale)", xlim=(0, 1))
        ax.set_ylim(bottom=0.5)
        ax.legend(fontsize=8, loc="upper center")
    text = _p("Well separated labels pile up at opposite ends. Rows of a label on the wrong side of a "
              "line are its errors at that cut-off; the log scale keeps the few visible next to the many.")
    return _section("scores", "Score histograms", _img(fig, "histograms of P(spam) and P(off_topic) per true label") + text)


def gate_section(gate: Mapping | None) -> str:
    """Candidate vs active model per metric: values, difference, allowed margin, pass or fail.

    `gate` holds passed, forced, active_version, and per-metric dicts candidate, active and
    margins, plus failures (sentences). Whether a row failed is read from the gate's failures
    (a row fails when a failure names its metric): the gate decides, the report only shows.
    """
    if gate is None:
        return _section("gate", "Gate: candidate vs active",
                        _p("No gate ran for this version (a plain `postsieve train` saves without comparing)."))
    passed, forced = bool(gate.get("passed")), bool(gate.get("forced"))
    if passed:
        verdict, cls = "passed", "pass"
    else:
        verdict, cls = ("failed, and was forced through" if forced else "failed"), "fail"
    active = gate.get("active_version")
    against = (f"compared with the active version {active}" if active else
               "there was no active version to compare with")
    candidate, current = gate.get("candidate") or {}, gate.get("active") or {}
    margins, failures = gate.get("margins") or {}, [str(f) for f in gate.get("failures") or []]
    skipped = [str(s) for s in gate.get("skipped") or []]
    labels, least = candidate.get("n"), margins.get("min_labels")
    too_few = _is_number(labels) and _is_number(least) and labels < least  # the gate stopped there
    names = set(candidate) | set(current) | set(margins)
    if "min_labels" in margins:
        names.discard("n")  # the held-out label count is the min_labels row's candidate value
    ordered = [m for m in GATE_METRICS if m in names] + sorted(names - set(GATE_METRICS), key=str)
    fail, ok = _Html('<span class="fail">fail</span>'), _Html('<span class="pass">pass</span>')
    rows = []
    for name in ordered:
        if name == "min_labels":  # held-out labels the gate had, against the least it judges on (counts)
            rows.append((name, "-" if labels is None else str(labels), "-", "-", str(least), fail if too_few else ok))
            continue
        c, a = candidate.get(name), current.get(name)
        delta = c - a if _is_number(c) and _is_number(a) else None
        named = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])")
        if any(named.search(f) for f in failures):
            result = fail
        elif name not in margins:
            result = "not gated"
        elif too_few or not current:  # stopped at too few labels, or no active model to compare with
            result = "not compared"
        elif any(entry.startswith(f"{name}:") for entry in skipped):
            result = "not measured"  # the held-out labels cannot measure it
        else:
            result = ok
        rows.append((name, _num(c), _num(a), _num(delta, signed=True), _num(margins.get(name)), result))
    body = (f'<p class="verdict {cls}">Gate {_text(verdict)}: {_text(against)}.</p>\n' +
            _table(["metric", "candidate", "active", "difference", "allowed margin", "result"], rows))
    body += _p("Difference is candidate minus active. A metric fails when the candidate is worse than the "
               "active model by more than its allowed margin. min_labels: the held-out labels the gate "
               "had, against the least it judges on; with fewer it compares nothing. A metric the held-out "
               "labels cannot measure (no off-topic label among them, say) is not measured.")
    if failures:
        body += "<h3>Failures</h3>\n<ul>" + "".join(f"<li>{_text(f)}</li>" for f in failures) + "</ul>"
    return _section("gate", "Gate: candidate vs active", body)


def backtest_section(backtest: Mapping | None, limit: int = MAX_CHANGES) -> str:
    """Decisions that change between the active model and the candidate on past posts.

    `backtest` holds against and candidate (version ids), counts ({"allow->block": n, ...}) and
    changes (dicts with id, source, old, new, label). At most `limit` changes are listed.
    """
    if backtest is None:
        return _section("backtest", "Backtest: changed decisions",
                        _p("No backtest ran for this version."))
    counts = backtest.get("counts") or {}
    changes = list(backtest.get("changes") or [])
    intro = _p(f"Decisions of the candidate {backtest.get('candidate') or '-'} against "
               f"{backtest.get('against') or '-'} on the same past posts "
               f"({backtest.get('scope') or 'every labelled post'}, {backtest.get('scored', '-')} scored): "
               f"{sum(v for v in counts.values() if _is_number(v))} changed.")
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1] if _is_number(kv[1]) else 0, str(kv[0])))
    body = intro + _table(["change", "posts"], ordered, text_columns=(0,))
    if changes:
        shown = changes[:limit]
        rows = [(c.get("id"), c.get("source"), c.get("label"), c.get("old"), c.get("new"))
                if isinstance(c, Mapping) else (c, "-", "-", "-", "-") for c in shown]
        body += "<h3>Changed posts</h3>\n" + _table(["post id", "source", "true label", "old", "new"], rows,
                                                       text_columns=(0, 1))
        if len(changes) > limit:
            body += _p(f"{len(changes) - limit} more changed posts are not listed (the table stops at {limit}).")
    else:
        body += _p("No post changed decision.")
    return _section("backtest", "Backtest: changed decisions", body)


# ---- numbers --------------------------------------------------------------------------------

def operating_point(positive: np.ndarray, scores: np.ndarray, cut: float) -> tuple[float, float, int]:
    """(precision, recall, rows flagged) of flagging every row whose score is at or above `cut`."""
    flagged = scores >= cut
    return _mean(positive[flagged]), _mean(flagged[positive]), int(flagged.sum())


def _cuts_for(label: str, thresholds: Thresholds) -> list[tuple[str, float]]:
    if label == "spam":
        return [("spam_block", thresholds.spam_block), ("spam_review", thresholds.spam_review)]
    if label == "off_topic":
        return [("off_topic_review", thresholds.off_topic_review)]
    return []


def _counts(y: np.ndarray, columns: np.ndarray, names: Sequence[str]) -> np.ndarray:
    return np.array([[int(((y == label) & (columns == name)).sum()) for name in names] for label in LABELS])


def _validated(y_true, probabilities) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities as arrays, or a ValueError that says what is wrong."""
    y = np.asarray(list(y_true), dtype=str)
    p = np.asarray(probabilities, dtype=float)
    if len(y) == 0:
        raise ValueError("a report needs held-out rows; y_true is empty")
    if p.shape != (len(y), len(LABELS)):
        raise ValueError(f"probabilities must have shape ({len(y)}, {len(LABELS)}) with columns "
                         f"{', '.join(LABELS)}, got {p.shape}")
    unknown = sorted(set(y.tolist()) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown label(s) in y_true: {', '.join(unknown[:5])}; expected {', '.join(LABELS)}")
    if not np.isfinite(p).all():
        raise ValueError("probabilities must be finite numbers")
    return y, p


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _auc(positive: np.ndarray, scores: np.ndarray) -> float:
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _num(value, signed: bool = False) -> str:
    if not _is_number(value):
        return "-" if value is None else str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _pct(value) -> str:
    return f"{100 * value:.1f} %" if _is_number(value) else "-"


# ---- HTML -----------------------------------------------------------------------------------

class _Html(str):
    """Markup built here from constants; every other value is escaped on its way into the page."""


def _text(value) -> str:
    if isinstance(value, _Html):
        return value
    return html.escape("-" if value is None else str(value))


def _p(text: str) -> str:
    return f"<p>{_text(text)}</p>\n"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}">\n<h2>{_text(title)}</h2>\n{body}\n</section>'


def _table(headers: Sequence[str], rows, text_columns: Sequence[int] = ()) -> str:
    """An HTML table; cells are escaped. Only `text_columns` wrap, so numbers stay on one line."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="text">{_text(c)}</td>' if i in text_columns else f"<td>{_text(c)}</td>"
                                     for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1320px; padding: 0 24px 48px; line-height: 1.45; background: #fff; }
nav { position: sticky; top: 0; background: #fff; padding: 8px 0; border-bottom: 1px solid #ddd; }
nav a { color: #444; }
h1 { margin-top: 16px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td { font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: normal; overflow-wrap: anywhere; min-width: 14em; max-width: 520px; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.note { color: #555; font-style: italic; }
.pass { color: #116329; font-weight: 600; } .fail { color: #a40e26; font-weight: 600; }
.verdict { padding: 6px 10px; border: 1px solid #ccc; background: #f6f6f6; }
"""


# ---- plots ----------------------------------------------------------------------------------

def _figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas (no pyplot: no global figure list or backend)."""
    # imported here: matplotlib takes a noticeable share of a second to import, and only
    # training and `postsieve report` draw anything
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _img(fig, alt: str) -> _Html:
    """The figure as an inline PNG <img> (nothing for the browser to fetch)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return _Html(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">\n')


def _heatmap(ax, counts: np.ndarray, columns: Sequence[str], xlabel: str, title: str) -> None:
    """Counts annotated in cells coloured by their share of the row (rows differ in size)."""
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    ax.imshow(share, cmap="Greys", vmin=0, vmax=1.6, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=list(columns))
    ax.set_yticks(range(len(LABELS)), labels=list(LABELS))
    ax.set(xlabel=xlabel, ylabel="true label", title=title)
    for r in range(counts.shape[0]):
        for c in range(counts.shape[1]):
            ax.text(c, r, f"{counts[r, c]}\n{100 * share[r, c]:.1f} %", ha="center", va="center", fontsize=10)
