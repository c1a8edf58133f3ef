"""End-to-end: the real `postsieve` console command in a subprocess."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_examples

pytestmark = pytest.mark.e2e
POSTSIEVE = str(Path(sys.executable).with_name("postsieve"))


def run(*args, input=None, env_extra=None, check=True):
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run([POSTSIEVE, *args], input=input, capture_output=True, text=True, env=env, timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl"
    with path.open("w") as f:
        for e in tiny_examples():
            record = {"id": e.post.id, "title": e.post.title, "body": e.post.body, "category": e.post.category,
                      "label": e.label, "kind": e.kind}
            if e.promo:
                record["promo"] = list(e.promo)
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, corpus_file):
    out = tmp_path_factory.mktemp("models")
    proc = run("train", str(corpus_file), "--out", str(out), "--seed", "3")
    assert "spam recall at 1% FPR" in proc.stdout
    assert "thresholds:" in proc.stdout
    assert "report: " in proc.stdout
    return out


def test_help_lists_commands():
    out = run("--help").stdout
    for command in ("train", "evaluate", "classify", "score", "serve", "report"):
        assert command in out


def test_every_commands_examples_appear_in_its_help_line_by_line():
    """click rewraps help paragraphs: an example block not marked with \\b ran its commands
    together into one garbled paragraph."""
    import click
    from click.testing import CliRunner

    from service.cli import cli

    def commands(group, path=()):
        for name, command in group.commands.items():
            yield path + (name,), command
            if isinstance(command, click.Group):
                yield from commands(command, path + (name,))

    checked = 0
    for path, command in commands(cli):
        doc = command.help or ""
        if "Example:" not in doc:
            continue
        lines = [ln.strip() for ln in doc.split("Example:", 1)[1].splitlines() if ln.strip() and ln.strip() != "\b"]
        out = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80).output
        for line in lines:
            assert line in out, (path, line)
        checked += 1
    assert checked >= 15


def test_train_writes_an_active_version(models):
    (version,) = [p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert (models / "ACTIVE").read_text().strip() == version.name
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 3



def test_train_takes_the_threshold_targets(models, corpus_file, tmp_path):
    """They could be changed only in code, though the notebook says to change them and retrain."""
    out = tmp_path / "models"
    run("train", str(corpus_file), "--out", str(out), "--seed", "3", "--review-recall", "0.5",
        "--block-precision", "1.0")
    manifest = json.loads((active_dir(out) / "manifest.json").read_text())
    default = json.loads((active_dir(models) / "manifest.json").read_text())
    assert manifest["params"]["review_recall"] == 0.5 and manifest["params"]["block_precision"] == 1.0
    # catching half the spam needs a cut-off at least as high as catching 90 % of it
    assert manifest["thresholds"]["spam_review"] >= default["thresholds"]["spam_review"]
    refused = run("train", str(corpus_file), "--out", str(out), "--off-topic-precision", "0", check=False)
    assert refused.returncode == 2 and "0<x<=1.0" in refused.stderr


def active_dir(models):
    return models / (models / "ACTIVE").read_text().strip()


# `--open` tests run with an empty PATH and no display, so webbrowser can only use $BROWSER
# (never a real browser on a developer's desktop)
NO_BROWSERS = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}


def test_train_writes_a_report_and_report_prints_its_path(models):
    report = active_dir(models) / "report.html"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert run("report", "--dir", str(models)).stdout == f"{report}\n"
    assert run("report", active_dir(models).name, "--dir", str(models)).stdout == f"{report}\n"


def test_report_open_hands_the_file_to_the_browser(models, tmp_path):
    seen = tmp_path / "seen.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {seen}\n')
    browser.chmod(0o755)
    proc = run("report", "--dir", str(models), "--open",
               env_extra={**NO_BROWSERS, "PATH": str(tmp_path / "empty"), "BROWSER": str(browser)})
    report = active_dir(models) / "report.html"
    assert proc.stdout == f"{report}\n"
    assert seen.read_text().strip() == report.resolve().as_uri()


def test_report_open_without_a_browser_still_prints_the_path(models, tmp_path):
    proc = run("report", "--dir", str(models), "--open",
               env_extra={**NO_BROWSERS, "PATH": str(tmp_path), "BROWSER": "/nonexistent/browser"})
    assert proc.stdout == f"{active_dir(models) / 'report.html'}\n"
    assert "no web browser could be started" in proc.stderr


def test_report_of_a_version_without_one(models, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(models, copy)
    version = active_dir(copy)
    (version / "report.html").unlink()
    proc = run("report", "--dir", str(copy))  # rebuilt from heldout.npz
    assert proc.stdout == f"{version / 'report.html'}\n" and "building it from heldout.npz" in proc.stderr
    (version / "report.html").unlink()
    (version / "heldout.npz").unlink()  # as a version trained before reports existed
    proc = run("report", "--dir", str(copy), check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"version {version.name} has no report" in proc.stderr and "`postsieve train`" in proc.stderr


def test_classify_json_from_options(models):
    out = run("classify", "--model", str(models), "--json", "--id", "p1", "--title", "Printer offline",
              "--body", "Call the printer helpline now toll free").stdout
    body = json.loads(out)
    assert body["id"] == "p1"
    assert list(body) == ["id", "label", "decision", "scores", "highlights", "reasons", "model_version", "truncated"]


def test_classify_from_stdin_json_and_text(models):
    body = json.loads(run("classify", "--model", str(models), "--json",
                          input=json.dumps({"id": 9, "title": "", "body": "thanks, that worked"})).stdout)
    assert body["id"] == 9
    human = run("classify", "--model", str(models), input="plain text body from a pipe").stdout
    assert "label=" in human and "model " in human


def test_classify_with_nothing_to_classify_says_so(models):
    for args, stdin in (((), ""), ((), "  \n"), (("--title", " "), "")):
        proc = run("classify", "--model", str(models), *args, input=stdin, check=False)
        assert proc.returncode != 0 and proc.stdout == "" and "Traceback" not in proc.stderr
        assert "nothing to classify" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert run("classify", "--model", str(models), "--title", "Only a title", input="").returncode == 0


def test_score_jsonl_and_csv(models, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "title": "", "body": f"text {i}"}) + "\n" for i in range(5)))
    run("score", str(src), "-o", str(tmp_path / "out.jsonl"), "--model", str(models))
    rows = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [0, 1, 2, 3, 4]
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("pid,subject,message\n1,Hi,hello there\n2,,second\n")
    proc = run("score", str(csv_in), "-o", str(tmp_path / "out.csv"), "--model", str(models),
               "--id-field", "pid", "--title-field", "subject", "--body-field", "message")
    assert "scored 2 posts" in proc.stderr
    assert (tmp_path / "out.csv").read_text().startswith("id,label,decision")


def test_score_stdin_to_stdout(models):
    proc = run("score", "-", "--model", str(models), input=json.dumps({"id": "x", "title": "", "body": "hi"}) + "\n")
    assert json.loads(proc.stdout)["id"] == "x"


def test_score_bad_line_is_one_clear_error(models, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"id": 1, "title": "", "body": "fine"}\n{oops\n{"id": 3, "title": "", "body": "fine"}\n')
    proc = run("score", str(src), "-o", str(tmp_path / "o.jsonl"), "--model", str(models), check=False)
    assert proc.returncode != 0
    assert f"{src}:2: malformed JSON" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    ok = run("score", str(src), "-o", str(tmp_path / "o.jsonl"), "--model", str(models), "--skip-bad")
    assert "1 bad row(s) skipped" in ok.stderr
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2


def test_score_wrong_column_names_the_columns(models, tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("id,text\n1,hello\n")
    proc = run("score", str(src), "--model", str(models), check=False)
    assert proc.returncode != 0
    assert "missing column(s) title, body; columns found: id, text" in proc.stderr


def test_score_names_the_output_when_the_output_is_at_fault(models, tmp_path):
    """A directory given as the output, or a .partial Parquet file that cannot be written, was
    reported against the input file, as an exception's repr."""
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "title": "", "body": "hello"}) + "\n")
    folder = tmp_path / "adir"
    folder.mkdir()
    proc = run("score", str(src), "-o", str(folder) + "/", "--output-format", "jsonl", "--model", str(models),
               check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"Error: {folder}/: Is a directory"]


def test_score_refuses_to_overwrite_its_input(models, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "title": "", "body": "keep me"}) + "\n")
    proc = run("score", str(src), "-o", str(src), "--model", str(models), check=False)
    assert proc.returncode != 0 and "would overwrite the input" in proc.stderr
    assert "keep me" in src.read_text()


def test_score_corrupt_gzip_and_missing_output_dir(models, tmp_path):
    bad = tmp_path / "in.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    proc = run("score", str(bad), "-o", str(tmp_path / "o.jsonl"), "--model", str(models), check=False)
    assert proc.returncode != 0 and "in.jsonl.gz" in proc.stderr
    good = tmp_path / "in.jsonl"
    good.write_text(json.dumps({"id": 1, "title": "", "body": "x"}) + "\n")
    proc = run("score", str(good), "-o", str(tmp_path / "nope" / "o.jsonl"), "--model", str(models), check=False)
    assert proc.returncode != 0 and "directory does not exist" in proc.stderr


def test_evaluate_non_utf8_names_the_file(models, tmp_path):
    bad = tmp_path / "labels.jsonl"
    bad.write_bytes(b"\xff\xfe\x00")
    proc = run("evaluate", str(bad), "--model", str(models), check=False)
    assert proc.returncode != 0 and "labels.jsonl" in proc.stderr and "not UTF-8" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["score", "/nonexistent.jsonl"], "no such file"),
    (["score", "posts.txt"], "cannot tell the format"),
    (["evaluate", "/nonexistent.jsonl"], "does not exist"),
    (["classify", "--model", "/nonexistent", "--body", "x"], "no such model directory"),
    (["report", "--dir", "/nonexistent"], "no model in /nonexistent"),
])
def test_bad_arguments_fail_with_one_line(args, message):
    proc = run(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_evaluate_prints_and_writes_json(models, corpus_file, tmp_path):
    out = tmp_path / "report.json"
    proc = run("evaluate", str(corpus_file), "--model", str(models), "--report", str(out))
    assert "precision" in proc.stdout and "spam kind" in proc.stdout
    report = json.loads(out.read_text())
    assert report["n"] == 32 and "confusion_matrix" in report
    # the very posts the model learned from: said, since the numbers flatter it
    assert "warning: these posts are the very data the model was trained on" in proc.stderr
    other = tmp_path / "other.jsonl"
    other.write_text("".join(corpus_file.read_text().splitlines(keepends=True)[:20]))
    proc = run("evaluate", str(other), "--model", str(active_dir(models)))
    assert "warning" not in proc.stderr and "precision" in proc.stdout


def test_first_use_trains_the_default_model(tmp_path, corpus_file, monkeypatch):
    """No model yet: the command trains one (progress on stderr) and then answers."""
    proc = run("classify", "--json", "--body", "hello", env_extra={"POSTSIEVE_MODEL_DIR": str(tmp_path / "m"),
                                                                  "POSTSIEVE_CORPUS": str(corpus_file)})
    assert "training the default model" in proc.stderr
    assert json.loads(proc.stdout)["id"] == "cli"


@pytest.mark.parametrize("args, variable, message", [
    (("keys", "list"), "POSTSIEVE_DATA_DIR", "for the database: a file of that name is in the way"),
    (("serve", "--port", "8732"), "POSTSIEVE_MODEL_DIR", "as the models directory: a file of that name is in the way"),
])
def test_a_file_where_a_directory_belongs_is_one_line(tmp_path, args, variable, message):
    """A FileExistsError traceback before."""
    in_the_way = tmp_path / "not-a-dir"
    in_the_way.write_text("")
    env = {"POSTSIEVE_DATA_DIR": str(tmp_path / "data"), "POSTSIEVE_DATABASE_URL": "", variable: str(in_the_way)}
    proc = run(*args, check=False, env_extra=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"Error: cannot use {in_the_way} {message}"]


@pytest.mark.parametrize("variable, value, message", [
    ("POSTSIEVE_MAX_BATCH", "lots", "POSTSIEVE_MAX_BATCH must be an integer >= 1, got 'lots'"),
    ("POSTSIEVE_OPEN_CLASSIFY", "yes", "POSTSIEVE_OPEN_CLASSIFY must be true or false, got 'yes'"),
    ("POSTSIEVE_MAX_BATCH__X", "1", "a POSTSIEVE_* variable with '__' in its name sets a key inside a setting "
                                    "that has none: 'int' object does not support item assignment"),
    ("POSTSIEVE_KEY_CACHE_SECONDS", "Infinity", "POSTSIEVE_KEY_CACHE_SECONDS must be a finite number >= 0, got inf"),
])
def test_serve_refuses_a_setting_of_the_wrong_type_in_one_line(tmp_path, corpus_file, variable, value, message):
    """Checked before anything else: no model trained, no database made, nothing printed but the
    line naming the variable (it was a gunicorn traceback after the "serving" line)."""
    data = tmp_path / "data"
    data.mkdir()
    proc = run("serve", "--port", "8731", check=False,
               env_extra={variable: value, "POSTSIEVE_DATA_DIR": str(data), "POSTSIEVE_MODEL_DIR": str(data / "models"),
                          "POSTSIEVE_CORPUS": str(corpus_file), "POSTSIEVE_DATABASE_URL": ""})
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"Error: {message}"]
    assert list(data.iterdir()) == []



@pytest.mark.parametrize("args, message", [
    (("--port", "99999"), "Invalid value for '--port': 99999 is not in the range 1<=x<=65535."),  # a traceback
    (("--timeout", "-5"), "Invalid value for '--timeout': -5 is not in the range x>=0."),  # after the model loaded
])
def test_serve_refuses_a_bad_port_or_timeout_before_anything_else(tmp_path, args, message):
    data = tmp_path / "data"
    data.mkdir()
    proc = run("serve", *args, check=False, env_extra={"POSTSIEVE_DATA_DIR": str(data)})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"Error: {message}"
    assert list(data.iterdir()) == []


def test_serve_names_a_misspelt_setting_and_a_metrics_directory_it_cannot_make(tmp_path, corpus_file):
    """Both before the model loads: nothing trained, nothing in the data directory."""
    data = tmp_path / "data"
    data.mkdir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run("serve", "--port", "8733", check=False,
               env_extra={"POSTSIEVE_DATA_DIR": str(data), "POSTSIEVE_CORPUS": str(corpus_file),
                          "POSTSIEVE_DATABASE_URL": "", "POSTSIEVE_MAX_BATCHES": "5",
                          "PROMETHEUS_MULTIPROC_DIR": str(blocker / "metrics")})
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "postsieve: warning: POSTSIEVE_MAX_BATCHES is not a postsieve setting and is ignored "
        "(did you mean POSTSIEVE_MAX_BATCH?)",
        f"Error: PROMETHEUS_MULTIPROC_DIR {blocker / 'metrics'}: Not a directory"]
    assert list(data.iterdir()) == []



@pytest.mark.parametrize("models", ["empty", "missing"])
def test_serve_with_no_train_refuses_a_models_directory_without_a_model(tmp_path, models):
    """A mistyped POSTSIEVE_MODEL_DIR or a failed mount: without --no-train, a default model is
    trained and served from it without a word of warning."""
    data, models_dir = tmp_path / "data", tmp_path / "models"
    data.mkdir()
    if models == "empty":
        models_dir.mkdir()
    proc = run("serve", "--no-train", "--port", "8734", check=False,
               env_extra={"POSTSIEVE_DATA_DIR": str(data), "POSTSIEVE_MODEL_DIR": str(models_dir),
                          "POSTSIEVE_DATABASE_URL": ""})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] in (
        f"Error: no model in {models_dir}; run `postsieve train`", f"Error: {models_dir}: no such model directory")
    assert not models_dir.exists() or list(models_dir.iterdir()) == []



def test_train_warns_about_a_text_that_appears_twice(tmp_path, corpus_file):
    corpus = tmp_path / "corpus.jsonl"
    lines = corpus_file.read_text().splitlines()
    twin = json.loads(lines[0]) | {"id": "twin-of-the-first"}
    corpus.write_text("\n".join([*lines, json.dumps(twin)]) + "\n")
    proc = run("train", str(corpus), "--out", str(tmp_path / "models"))
    first = json.loads(lines[0])["id"]
    assert (f"warning: 1 text(s) appear more than once ({first} = twin-of-the-first): copies can land in "
            "different folds") in proc.stderr


def test_feedback_export_into_a_closed_pipe_ends_quietly(tmp_path):
    """`postsieve feedback export -o - | head`: the reader stops early; no 'Broken pipe' error."""
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": i, "title": "", "body": f"post number {i} " * 10, "label": "ok"}) + "\n"
                              for i in range(1500)))
    env = {**os.environ, "POSTSIEVE_DATA_DIR": str(tmp_path / "data")}
    run("feedback", "import", str(labels), env_extra=env)
    proc = subprocess.Popen([POSTSIEVE, "feedback", "export", "-o", "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert json.loads(proc.stdout.readline())["label"] == "ok"
    proc.stdout.close()  # as `head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and stderr == ""
