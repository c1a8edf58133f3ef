"""The HTML training report: sections, numbers, escaping, self-containedness, rebuilding."""
from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.image import imread

from classifier import TrainParams, artifacts
from classifier.decision import Thresholds, choose_thresholds
from classifier.errors import ArtifactError, ReportUnavailable
from classifier.report import (MAX_CHANGES, backtest_section, decision_section, gate_section, operating_point,
                               render_report, report_for_version, report_path, summary_section, threshold_section,
                               write_report)
from classifier.types import LABELS
from classifier.workflow import train_and_save
from tests.conftest import tiny_examples

HOSTILE = "<script>alert(1)</script>"
SECTIONS = ["summary", "thresholds", "precision-recall", "decisions", "scores", "gate", "backtest"]


class Page(HTMLParser):
    """What a browser would see: section ids, tags, src/href values, tables and visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.tags, self.urls, self.tables, self.text = [], [], [], [], []
        self._section = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self._section = attrs.get("id")
            self.sections.append(self._section)
        for name in ("src", "href"):
            if name in attrs:
                self.urls.append((tag, attrs[name]))
        if tag == "table":
            self.tables.append((self._section, []))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1][1].append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, section: str, first_header: str) -> list[list[str]]:
        """Rows, header excluded, of the table in `section` whose first column is `first_header`."""
        for where, rows in self.tables:
            if where == section and rows and rows[0][0] == first_header:
                return rows[1:]
        raise AssertionError(f"no table starting with {first_header!r} in section {section!r}")


def synthetic(n: int = 300, seed: int = 0):
    """Labels and probabilities that separate the labels well but not perfectly."""
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, size=n, p=[0.45, 0.35, 0.2])
    alpha = np.ones((n, 3))
    alpha[np.arange(n), [LABELS.index(label) for label in y]] = 6.0
    draws = rng.gamma(alpha)  # one Dirichlet draw per row
    return y, draws / draws.sum(axis=1, keepdims=True)


def gate_result(**changes):
    gate = {"passed": False, "forced": False, "active_version": "20261101-000000-aaaaaaaa",
            "margins": {"spam_recall_at_block": 0.02, "block_precision": 0.002, "off_topic_roc_auc": 0.01},
            "candidate": {"spam_recall_at_block": 0.71, "block_precision": 0.990, "off_topic_roc_auc": 0.95,
                          "legit_blocked_rate": 0.001},
            "active": {"spam_recall_at_block": 0.70, "block_precision": 0.996, "off_topic_roc_auc": 0.94,
                       "legit_blocked_rate": 0.002},
            "failures": ["block_precision fell by 0.0060, more than the allowed 0.0020"]}
    gate.update(changes)
    return gate


def backtest_result(n: int = 3):
    changes = [{"id": HOSTILE, "source": "forum <b>export</b>", "old": "allow", "new": "block", "label": "spam"}]
    changes += [{"id": i, "source": "feedback", "old": "review", "new": "allow", "label": None} for i in range(n - 1)]
    return {"against": "20261101-000000-aaaaaaaa", "candidate": "20261126-000000-bbbbbbbb",
            "counts": {"allow->block": 1, "review->allow": n - 1}, "changes": changes}


MANIFEST = {"created": "2026-11-26T03:00:00+00:00", "parent": None,
            "training_data": {"sha256": "ab" * 32, "label_counts": {"ok": 5, "spam": 4, "off_topic": 3}}}


def render(y=None, p=None, *, thresholds=None, manifest=MANIFEST, **kwargs):
    if y is None:
        y, p = synthetic()
    return render_report(version="20261126-000000-bbbbbbbb", manifest=manifest, y_true=y, probabilities=p,
                         thresholds=thresholds or choose_thresholds(y, p), **kwargs)


def decode_png(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,")
    return imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)), format="png")


@pytest.fixture(scope="module")
def hostile_page():
    """A whole report (drawing its plots takes a few seconds) with forum text in every free field."""
    manifest = {**MANIFEST, "parent": HOSTILE, "corpus_files": [HOSTILE]}
    gate = gate_result(failures=[f"block_precision {HOSTILE}"], active_version=HOSTILE,
                       candidate={HOSTILE: 1.0, "block_precision": HOSTILE})
    return render(manifest=manifest, gate=gate, backtest=backtest_result())


def test_report_has_every_section_with_decodable_inline_plots(hostile_page):
    page = Page(hostile_page)
    assert page.sections == SECTIONS
    images = [src for tag, src in page.urls if tag == "img"]
    assert len(images) == 3  # precision-recall curves, decision and label matrices, score histograms
    for src in images:
        pixels = decode_png(src)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 600
        assert pixels[..., :3].std() > 0.05, "a plot should not be a blank image"


def test_report_fetches_nothing(hostile_page):
    page = Page(hostile_page)
    for tag, url in page.urls:
        assert url.startswith("data:image/png;base64,") or url.startswith("#"), (tag, url[:60])
        assert "http://" not in url and "https://" not in url
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert "@import" not in hostile_page and "url(" not in hostile_page


def test_every_text_value_is_escaped(hostile_page):
    assert HOSTILE not in hostile_page
    assert hostile_page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # parent, file, gate, failure, post
    assert "<b>export</b>" not in hostile_page
    page = Page(hostile_page)
    assert "script" not in page.tags and "b" not in page.tags
    changed = page.table("backtest", "post id")
    assert changed[0][:2] == [HOSTILE, "forum <b>export</b>"]  # shown to the reader as the forum sent it


def test_summary_shows_the_version_facts_and_label_counts():
    y, p = synthetic()
    page = Page(summary_section("20261126-000000-bbbbbbbb", MANIFEST, y, p, choose_thresholds(y, p), None))
    text = "".join(page.text)
    for fact in ("20261126-000000-bbbbbbbb", "2026-11-26T03:00:00+00:00", "ab" * 32, "none (first version)"):
        assert fact in text
    assert page.table("summary", "label") == [[label, str(count), str(int((y == label).sum()))]
                                              for label, count in zip(LABELS, (5, 4, 3))]
    key = dict(page.table("summary", "measure"))
    assert set(key) >= {"spam ROC-AUC", "off-topic ROC-AUC", "legitimate posts (ok and off-topic) blocked"}
    assert "posts in the corpus" in text
    retrained = Page(summary_section("v", {**MANIFEST, "retraining": {"counts": {}}}, y, p, choose_thresholds(y, p),
                                     None))
    # a retrained version's label counts include the moderators' labels: the column says so
    assert "posts trained on (corpus and labels)" in "".join(retrained.text)


def test_threshold_table_gives_precision_and_recall_held_out():
    y = np.array(["spam", "ok", "spam", "ok", "off_topic", "off_topic", "spam", "ok"])
    p = np.array([[0.05, 0.90, 0.05], [0.10, 0.80, 0.10], [0.60, 0.30, 0.10], [0.85, 0.10, 0.05],
                  [0.20, 0.10, 0.70], [0.55, 0.05, 0.40], [0.20, 0.75, 0.05], [0.30, 0.05, 0.65]])
    thresholds = Thresholds(spam_block=0.85, spam_review=0.28, off_topic_review=0.6)
    page = Page(threshold_section(y, p, thresholds, {"block_precision": 0.995}))
    rows = {row[0]: row for row in page.table("thresholds", "threshold")}
    # spam_block 0.85: flags one row (spam): precision 1/1, recall 1/3
    assert rows["spam_block"][1] == "0.8500"
    assert rows["spam_block"][3] == "lowest cut-off with block precision >= 99.5 %"
    assert rows["spam_block"][4:] == ["1", "100.0 %", "33.3 %"]
    # spam_review 0.28: flags 0.90, 0.80, 0.30, 0.75: three spam of four, every spam caught
    assert rows["spam_review"][4:] == ["4", "75.0 %", "100.0 %"]
    assert rows["spam_review"][3] == "-"  # no target in the params given
    # off_topic_review 0.6: flags 0.70 (off_topic) and 0.65 (ok): precision 1/2, recall 1/2
    assert rows["off_topic_review"][4:] == ["2", "50.0 %", "50.0 %"]


def test_decision_table_counts_decisions_per_true_label():
    y = np.array(["spam", "spam", "ok", "off_topic"])
    p = np.array([[0.0, 1.0, 0.0], [0.5, 0.45, 0.05], [0.9, 0.05, 0.05], [0.2, 0.1, 0.7]])
    thresholds = Thresholds(spam_block=0.9, spam_review=0.4, off_topic_review=0.6)
    rows = {row[0]: row[1:] for row in Page(decision_section(y, p, thresholds)).table("decisions", "true label")}
    assert rows["spam"] == ["2", "0 (0.0 %)", "1 (50.0 %)", "1 (50.0 %)"]
    assert rows["ok"] == ["1", "1 (100.0 %)", "0 (0.0 %)", "0 (0.0 %)"]
    assert rows["off_topic"] == ["1", "0 (0.0 %)", "1 (100.0 %)", "0 (0.0 %)"]


def test_gate_table_compares_every_metric_and_marks_failures():
    page = Page(gate_section(gate_result()))
    rows = page.table("gate", "metric")
    assert [r[0] for r in rows] == ["spam_recall_at_block", "block_precision", "off_topic_roc_auc",
                                    "legit_blocked_rate"]
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["spam_recall_at_block"] == ["0.7100", "0.7000", "+0.0100", "0.0200", "pass"]
    assert by_name["block_precision"] == ["0.9900", "0.9960", "-0.0060", "0.0020", "fail"]
    assert by_name["legit_blocked_rate"][-2:] == ["-", "not gated"]
    text = "".join(page.text)
    assert "Gate failed: compared with the active version 20261101-000000-aaaaaaaa" in text
    assert "block_precision fell by 0.0060" in text


def real_gate(candidate: dict, active: dict | None) -> dict:
    """A gate result as retraining stores it: compare()'s verdict with every margin."""
    from classifier.gate import GateMargins, compare, margins_dict

    margins = GateMargins()
    gate = compare(candidate, active, margins)
    gate.update({"active_version": "20261101-000000-aaaaaaaa" if active else None, "margins": margins_dict(margins)})
    return gate


def test_gate_table_shows_too_few_labels_as_the_failure_and_nothing_else_as_passed():
    """It said "pass" on min_labels, the check that failed, and on metrics never compared."""
    scores = {"spam_recall_at_block": 0.7, "block_precision": 1.0, "off_topic_roc_auc": 0.9, "spam_roc_auc": 0.95}
    gate = real_gate({"n": 8, **scores}, {"n": 8, **scores})
    by_name = {r[0]: r[1:] for r in Page(gate_section(gate)).table("gate", "metric")}
    assert by_name["min_labels"][0] == "8" and by_name["min_labels"][-1] == "fail"
    assert "n" not in by_name
    assert {by_name[m][-1] for m in scores} == {"not compared"}


def test_gate_table_says_which_metrics_the_labels_could_not_measure():
    candidate = {"n": 40, "spam_recall_at_block": 0.7, "block_precision": 1.0, "off_topic_roc_auc": None,
                 "spam_roc_auc": 0.95}
    gate = real_gate(candidate, dict(candidate))
    assert gate["passed"] and gate["skipped"]
    by_name = {r[0]: r[1:] for r in Page(gate_section(gate)).table("gate", "metric")}
    assert by_name["off_topic_roc_auc"][-1] == "not measured"
    assert by_name["spam_roc_auc"][-1] == "pass" and by_name["min_labels"][-1] == "pass"


@pytest.mark.parametrize("changes, verdict", [
    ({"passed": True, "failures": []}, "Gate passed"),
    ({"forced": True}, "Gate failed, and was forced through"),
    ({"passed": True, "failures": [], "active_version": None, "active": {}}, "no active version to compare with"),
])
def test_gate_verdicts(changes, verdict):
    assert verdict in "".join(Page(gate_section(gate_result(**changes))).text)


def test_no_gate_or_backtest_says_so():
    assert "No gate ran for this version" in gate_section(None)
    assert "No backtest ran for this version" in backtest_section(None)


def test_backtest_lists_changes_up_to_the_cap():
    page = Page(backtest_section(backtest_result(n=MAX_CHANGES + 234)))
    assert len(page.table("backtest", "post id")) == MAX_CHANGES
    assert page.table("backtest", "change") == [["review->allow", str(MAX_CHANGES + 233)], ["allow->block", "1"]]
    assert "234 more changed posts are not listed" in "".join(page.text)


def test_operating_point():
    positive = np.array([True, False, True, True])
    scores = np.array([0.9, 0.8, 0.2, 0.7])
    assert operating_point(positive, scores, 0.7) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    precision, recall, flagged = operating_point(positive, scores, 0.95)
    assert np.isnan(precision) and recall == 0.0 and flagged == 0


@pytest.mark.parametrize("y, p, message", [
    ([], np.zeros((0, 3)), "y_true is empty"),
    (["ok", "spam"], np.zeros((2, 2)), r"shape \(2, 3\)"),
    (["ok", "ham"], np.full((2, 3), 1 / 3), "unknown label.*ham"),
    (["ok"], np.array([[np.nan, 0.5, 0.5]]), "finite"),
])
def test_bad_inputs_are_refused(y, p, message):
    with pytest.raises(ValueError, match=message):
        render_report(version="v", manifest={}, y_true=y, probabilities=p, thresholds=Thresholds(0.9, 0.5, 0.5))


def test_write_report_to_a_file_or_a_version_directory(tmp_path, monkeypatch):
    import classifier.report

    monkeypatch.setattr(classifier.report, "render_report", lambda **kwargs: "<!DOCTYPE html>\n<p>page</p>")
    y, p = synthetic(60)
    kwargs = dict(version="v", manifest={}, y_true=y, probabilities=p, thresholds=choose_thresholds(y, p))
    assert write_report(tmp_path, **kwargs) == tmp_path / "report.html"
    assert write_report(tmp_path / "other.html", **kwargs) == tmp_path / "other.html"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["other.html", "report.html"]  # no temporary left
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    """A models directory with one version trained on the tiny corpus through train_and_save."""
    root = tmp_path_factory.mktemp("report")
    corpus = root / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"id": e.post.id, "title": e.post.title, "body": e.post.body,
                                          "category": e.post.category, "label": e.label, "kind": e.kind,
                                          "promo": list(e.promo)}) + "\n" for e in tiny_examples()))
    return train_and_save([corpus], root / "models", params=TrainParams(folds=3, min_df=1)).parent


def version_copy(trained_dir, tmp_path):
    """A private copy of the trained models directory (tests below delete files from it)."""
    shutil.copytree(trained_dir, tmp_path / "models")
    return tmp_path / "models", artifacts.active_version(tmp_path / "models")


def test_training_writes_the_report_and_the_held_out_scores(trained_dir):
    version = artifacts.active_version(trained_dir)
    version_dir = trained_dir / version
    model = artifacts.load_model(version_dir)  # extra files do not disturb the integrity checks
    page = Page(report_path(version_dir).read_text(encoding="utf-8"))
    assert page.sections == SECTIONS
    assert version in "".join(page.text)
    y, p = artifacts.load_heldout(version_dir)
    counts = artifacts.read_manifest(version_dir)["training_data"]["label_counts"]
    assert len(y) >= sum(counts.values()) and p.shape == (len(y), 3)
    # the stored rows are the very ones the thresholds were chosen on
    assert choose_thresholds(y, p) == model.thresholds


def test_report_for_version_finds_or_rebuilds_the_report(trained_dir, tmp_path):
    models, version = version_copy(trained_dir, tmp_path)
    assert report_for_version(models) == report_path(models / version)
    report_path(models / version).unlink()
    said = []
    rebuilt = report_for_version(models, version, progress=said.append)
    assert rebuilt == report_path(models / version) and rebuilt.is_file()
    assert "building it from heldout.npz" in said[0]
    assert "Rebuilt from heldout.npz" in rebuilt.read_text(encoding="utf-8")


def test_a_version_from_before_reports_gets_a_clear_error(trained_dir, tmp_path):
    models, version = version_copy(trained_dir, tmp_path)
    report_path(models / version).unlink()
    (models / version / artifacts.HELDOUT_FILE).unlink()
    with pytest.raises(ReportUnavailable, match=rf"version {version} has no report.*`postsieve train`"):
        report_for_version(models)


@pytest.mark.parametrize("version, message", [
    ("20200101-000000-00000000", "no version 20200101-000000-00000000 in .*; versions there: "),
    ("../etc", "is not a version id"),
])
def test_unknown_versions_are_refused(trained_dir, version, message):
    with pytest.raises(ArtifactError, match=message):
        report_for_version(trained_dir, version)


def test_no_model_at_all(tmp_path):
    with pytest.raises(ArtifactError, match="no model in"):
        report_for_version(tmp_path)
