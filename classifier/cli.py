"""The `postsieve` command line: train, evaluate, classify, score, report, models.

Each command parses its options, calls one library function and turns library errors into one
clear line (click.ClickException) with a non-zero exit. `service.cli` adds `serve`.
"""
from __future__ import annotations

import errno
import json
import sys
import time
import webbrowser
from pathlib import Path

import click

from . import artifacts, batch, records, versions, workflow
from .dataset import FORMATS, FieldMap, file_format, load_corpus
from .errors import ClassifierError, ColumnMappingError, InvalidPost
from .evaluate import evaluate, format_report
from .model import Model
from .progress import ProgressLog, counts_text
from .report import report_for_version, report_path
from .train import TrainParams
from .types import LABELS, Post


def _progress(message: str) -> None:
    click.echo(f"postsieve: {message}", err=True)


def load_selected_model(model_path: str | None) -> Model:
    """A model from --model (a version dir or a models dir), else the active default one.

    The default model is trained from the bundled corpus on first use, with progress on stderr.
    """
    try:
        if model_path is None:
            return workflow.ensure_model(progress=_progress)
        return artifacts.load_path(model_path)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None


model_option = click.option(
    "--model", "model_path", type=click.Path(file_okay=False), default=None,
    help="Model version directory, or a models directory (its active version). "
         "Default: the active model in $POSTSIEVE_MODEL_DIR, trained on first use.")


#: The seeds numpy's generators take (a seed outside it failed only once training had started).
SEED = click.IntRange(0, 2**32 - 1)
#: A precision or recall target: above 0, at most 1.
TARGET = click.FloatRange(0.0, 1.0, min_open=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="postsieve")
def cli():
    """postsieve: score forum posts for spam and off-topic content."""


@cli.command()
@click.argument("corpus", nargs=-1, type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Models directory to add the new version to (default: $POSTSIEVE_MODEL_DIR).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for folds and augmentation.")
@click.option("--no-activate", is_flag=True, help="Save the new version without making it active.")
@click.option("--block-precision", type=TARGET, default=TrainParams.block_precision, show_default=True,
              help="Held-out precision the block cut-off must reach (the lowest cut-off that does).")
@click.option("--review-recall", type=TARGET, default=TrainParams.review_recall, show_default=True,
              help="Share of held-out spam the spam review cut-off must catch.")
@click.option("--off-topic-precision", type=TARGET, default=TrainParams.off_topic_precision, show_default=True,
              help="Held-out precision the off-topic review cut-off must reach (never below a score of 0.5).")
def train(corpus, out_dir, seed, no_activate, block_precision, review_recall, off_topic_precision):
    """Train a model on labelled JSONL files and save it as a new version.

    CORPUS is one or more JSONL files or directories (default: $POSTSIEVE_CORPUS, else the
    bundled training_data/).
    Prints the held-out (out-of-fold) metrics and the chosen thresholds. The thresholds are chosen
    on the held-out scores to meet the three targets; the stricter the block precision, the fewer
    posts are blocked outright and the more go to review.

    Example:

    \b
        postsieve train training_data/ --out var/models --seed 0 --block-precision 0.999
    """
    out = Path(out_dir) if out_dir else workflow.models_dir()
    started = time.perf_counter()
    params = TrainParams(seed=seed, block_precision=block_precision, review_recall=review_recall,
                         off_topic_precision=off_topic_precision)
    try:
        path = workflow.train_and_save(corpus or workflow.default_corpus(), out, params=params,
                                       progress=_progress, activate=not no_activate)
    except (ClassifierError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    manifest = artifacts.read_manifest(path)
    click.echo(format_report(manifest["metrics"]))
    click.echo(f"\nthresholds: {json.dumps(manifest['thresholds'])}")
    click.echo(f"model {manifest['version']} written to {path} in {time.perf_counter() - started:.1f} s")
    click.echo(f"report: {report_path(path)}")


@cli.command(name="report")
@click.argument("version", required=False)
@click.option("--dir", "models_dir", type=click.Path(file_okay=False), default=None,
              help="Models directory holding the version (default: $POSTSIEVE_MODEL_DIR).")
@click.option("--open", "open_it", is_flag=True, help="Also open the report in the default web browser.")
def report_command(version, models_dir, open_it):
    """Print the path of a model version's HTML training report.

    VERSION is a version id (default: the active version). Every training run writes the report
    (report.html in the version directory); a version that has the held-out scores but no report
    gets one built now. Without a browser, --open just prints the path.

    Example:

    \b
        postsieve report --open
        postsieve report 20261126-030243-347fc736 --dir var/models
    """
    directory = Path(models_dir) if models_dir else workflow.models_dir()
    try:
        path = report_for_version(directory, version, progress=_progress)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(path))
    if open_it:
        try:
            opened = webbrowser.open(path.resolve().as_uri())
        except webbrowser.Error:
            opened = False
        if not opened:
            _progress("no web browser could be started; open the path above")


@cli.command(name="evaluate")
@click.argument("labelled", nargs=-1, required=True, type=click.Path(exists=True))
@model_option
@click.option("--report", "json_out", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the full report as JSON to this file ('-': print only the JSON).")
def evaluate_command(labelled, model_path, json_out):
    """Measure a model on labelled JSONL files.

    Prints per-label precision, recall, F1 and ROC-AUC, spam recall at 1 % false-positive rate,
    the confusion matrix, decisions per label and recall per spam kind.

    Example:

    \b
        postsieve evaluate my_labelled_posts.jsonl --report report.json
    """
    model = load_selected_model(model_path)
    try:
        corpus = load_corpus(labelled)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if corpus.sha256 == _training_data_sha256(model_path, model):
        _progress("warning: these posts are the very data the model was trained on, so the numbers are "
                  "in-sample and flatter it; its held-out numbers are in `postsieve models show`")
    report = evaluate(model, corpus.examples)
    if json_out == "-":
        click.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    click.echo(format_report(report))
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2, allow_nan=False))
        click.echo(f"report written to {json_out}")


def _training_data_sha256(model_path: str | None, model) -> str | None:
    """The SHA-256 of the data a loaded model was trained on, from its manifest (None if unknown)."""
    base = Path(model_path) if model_path else workflow.models_dir()
    for manifest in (base / artifacts.MANIFEST_FILE, base / model.version / artifacts.MANIFEST_FILE):
        try:
            return json.loads(manifest.read_text())["training_data"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


@cli.command()
@click.option("--title", default=None, help="Post title.")
@click.option("--body", default=None, help="Post body; without it, read from stdin (JSON object or plain text).")
@click.option("--category", default=None, help="Category the post was filed in.")
@click.option("--id", "post_id", default="cli", show_default=True, help="Post id echoed in the output.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON output contract instead of a summary.")
@model_option
def classify(title, body, category, post_id, as_json, model_path):
    """Classify one post given as options or on stdin.

    Example:

    \b
        postsieve classify --title "Watershed splits nuclei" --body "..." --category "3D Segmentation"
        echo '{"id": 1, "title": "", "body": "thanks, that worked"}' | postsieve classify --json
    """
    try:
        post = _post_from_input(title, body, category, post_id)
    except InvalidPost as exc:
        raise click.ClickException(f"invalid post: {exc}") from None
    model = load_selected_model(model_path)
    scored = model.score_one(post)
    if as_json:
        click.echo(json.dumps(scored.to_dict(), ensure_ascii=False))
        return
    click.echo(f"{scored.decision.upper()}  label={scored.label}  " +
               "  ".join(f"{label}={scored.scores[label]:.3f}" for label in LABELS))
    for h in scored.highlights:
        text = post.title if h.field == "title" else post.body
        click.echo(f"  [{h.score:.2f}] {h.field}[{h.start}:{h.end}]: {text[h.start:h.end][:200]}")
    if scored.reasons:
        click.echo("  reasons: " + ", ".join(f"{r.feature!r} {r.weight:+.2f}" for r in scored.reasons))
    click.echo(f"  model {scored.model_version}")


def _post_from_input(title, body, category, post_id) -> Post:
    if body is None:
        raw = sys.stdin.read()
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return Post.from_dict({"id": post_id, "title": title or "", "category": category, **record})
        if not raw.strip() and not (title or "").strip():  # an empty post is always allowed: say so instead
            raise InvalidPost("nothing to classify: give --title and --body, or the post on stdin")
        body = raw
    return Post.from_dict({"id": post_id, "title": title or "", "body": body, "category": category})


@cli.command()
@click.argument("input_path", metavar="INPUT", type=str)
@click.option("-o", "--output", "output_path", default="-", show_default=True,
              help="Output file (.jsonl, .csv, optionally .gz, or .parquet) or '-' for stdout; with "
                   "--engine dask a directory or URL for the part files.")
@click.option("--input-format", type=click.Choice(FORMATS), default=None,
              help="Input format (default: from the extension; stdin is JSONL).")
@click.option("--output-format", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from the extension; stdout and Dask output are JSONL).")
@click.option("--id-field", default="id", show_default=True, help="Input column holding the post id.")
@click.option("--title-field", default="title", show_default=True, help="Input column holding the title.")
@click.option("--body-field", default="body", show_default=True, help="Input column holding the body.")
@click.option("--category-field", default="category", show_default=True,
              help="Input column holding the category.")
@click.option("--only", "only", default=None, metavar="DECISIONS",
              help="Write only posts with these decisions, e.g. 'block,review' (the summary counts all).")
@click.option("--skip-bad", is_flag=True,
              help="Skip malformed rows (each reported on stderr and counted) instead of stopping.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: all cores); with --engine dask, the workers of a local "
                   "cluster when no --scheduler is given.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=batch.DEFAULT_CHUNK_SIZE, show_default=True,
              help="Posts handed to a worker at a time; also how far back a --resume may go.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from its checkpoint (OUTPUT.checkpoint.json); see docs/batch.md.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: a bar on a terminal, plain log lines otherwise).")
@click.option("--log-every", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS",
              help="Seconds between progress log lines when stderr is not a terminal (0: none).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: processes on this machine; dask: a Dask distributed cluster (extra 'dask').")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler address (tcp://host:8786) or scheduler file (default: the Dask config's "
                   "scheduler-address, else a local cluster).")
@click.option("--dask-config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A Dask YAML config file to use (e.g. one that sets scheduler-address).")
@model_option
def score(input_path, output_path, input_format, output_format, id_field, title_field, body_field,
          category_field, only, skip_bad, jobs, chunk_size, resume, progress, log_every, engine, scheduler,
          dask_config, model_path):
    """Score a file of posts, streaming, writing the output contract in input order.

    INPUT is a JSONL, CSV (optionally .gz) or Parquet file, or '-' for stdin; with --engine dask
    a directory, glob or URL of such files. Worker processes score chunks of posts; memory stays
    flat whatever the input size. A malformed row stops the run with its line number unless
    --skip-bad. Ctrl-C stops after the current chunk, leaving a valid output and a checkpoint:
    run the same command with --resume to continue.

    Example:

    \b
        postsieve score export.jsonl -o scored.jsonl
        postsieve score posts.csv --body-field message --only block,review -o flagged.csv
        postsieve score export.parquet -o scored.parquet --resume
        postsieve score 's3://bucket/export/*.jsonl.gz' --engine dask --scheduler tcp://10.0.0.5:8786 -o s3://bucket/scored/
    """
    fields = FieldMap(id=id_field, title=title_field, body=body_field, category=category_field)
    try:
        only_set = batch.parse_only(only)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if engine == "dask":
        _score_on_dask(input_path, output_path, input_format, output_format, fields, only_set, skip_bad, jobs,
                       chunk_size, resume, scheduler, dask_config, model_path)
        return
    try:
        in_fmt = file_format(input_path, input_format)
        out_fmt = file_format(output_path, output_format)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if input_path != "-" and not Path(input_path).is_file():
        raise click.ClickException(f"{input_path}: no such file")
    if input_path != "-" and output_path != "-" and Path(output_path).exists() \
            and Path(output_path).resolve() == Path(input_path).resolve():
        raise click.ClickException(f"{output_path}: the output would overwrite the input")
    if output_path != "-" and not Path(output_path).resolve().parent.is_dir():
        raise click.ClickException(f"{output_path}: the directory does not exist")
    model = load_selected_model(model_path)
    options = batch.BatchOptions(input_path=input_path, output_path=output_path, in_fmt=in_fmt, out_fmt=out_fmt,
                                 fields=fields, only=only_set, skip_bad=skip_bad,
                                 jobs=jobs or batch.default_jobs(), chunk_size=chunk_size, resume=resume)
    # click draws no bar where stderr is not a terminal: there the progress is log lines
    show_bar = progress is not False and sys.stderr.isatty()
    log = ProgressLog(_progress, interval=log_every) if progress is not False and not show_bar and log_every else None

    def on_bad(row):
        _progress(f"skipped {records.where(input_path, in_fmt, row.line)}: {row.error}")

    def on_first_stop():
        _progress("stopping after the current chunk (Ctrl-C again to abort at once)")

    try:
        with click.progressbar(length=1, label="scoring", file=sys.stderr, hidden=not show_bar,
                               item_show_func=lambda s: counts_text(s) if s else "") as bar, \
                batch.StopFlag(on_first_stop) as stop:
            def on_progress(summary, position, total):
                if log:
                    log(summary, position, total)
                if show_bar:
                    bar.length = max(total, position, 1)
                    bar.update(max(position - bar.pos, 0), summary)

            summary = batch.run_batch(model, options, stop=stop, on_progress=on_progress, on_bad=on_bad)
    except ClassifierError as exc:
        raise click.ClickException(_with_mapping_hint(exc)) from None
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{input_path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except BrokenPipeError:  # `postsieve score big.jsonl | head`: the reader has all it wants
        sys.stderr.close()
        sys.exit(0)
    except (OSError, EOFError) as exc:  # a corrupt .gz, a full disk, a vanished file, a read-only output
        raise click.ClickException(_os_error_line(exc, input_path, output_path)) from None
    except KeyboardInterrupt:
        raise click.ClickException("aborted; the output is valid up to its checkpoint: continue with --resume") \
            from None
    if summary.already_complete:
        _progress(f"{output_path} is already complete ({summary.scored} posts); nothing to do")
        return
    click.echo(summary.format(), err=True)
    if summary.stopped:
        sys.exit(130)


def _os_error_line(exc: BaseException, input_path: str, output_path: str) -> str:
    """One line naming the file at fault: the output (or its .partial, or a full disk), else the
    input; with the system's reason where there is one ("Is a directory", "Read-only file system")."""
    filename = str(getattr(exc, "filename", None) or "")
    ours = output_path != "-" and (filename == output_path or filename.startswith(output_path + "."))
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    which = output_path if ours or full else input_path
    reason = getattr(exc, "strerror", None)
    return f"{which}: {reason}" if reason else f"{which}: {type(exc).__name__}: {exc}"


def _with_mapping_hint(exc: ClassifierError) -> str:
    if isinstance(exc, ColumnMappingError):
        return f"{exc} (map them with --id-field, --title-field, --body-field, --category-field)"
    return str(exc)


def _score_on_dask(input_path, output_path, input_format, output_format, fields, only, skip_bad, jobs,
                   chunk_size, resume, scheduler, dask_config, model_path):
    """`score --engine dask`: every input file is one task on the cluster, one part file out."""
    from . import dask_engine

    if output_path == "-":
        raise click.ClickException("--engine dask writes a directory of part files: give one with -o")
    try:
        dask_engine.require_dask()
        job = dask_engine.DaskJob(input_path, output_path, in_fmt=input_format, out_fmt=output_format or "jsonl",
                                  fields=fields, only=only, skip_bad=skip_bad, chunk_size=chunk_size, resume=resume)
        parts = job.plan()
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    model = load_selected_model(model_path)

    def on_part(summary, done, total):
        _progress(f"{done}/{total} parts: {counts_text(summary)}")

    def on_bad(where, error):
        _progress(f"skipped {where}: {error}")

    try:
        with dask_engine.connect(scheduler, dask_config, local_workers=jobs, say=_progress) as client:
            summary = job.run(client, model, parts, on_part=on_part, on_bad=on_bad)
    except ClassifierError as exc:
        raise click.ClickException(_with_mapping_hint(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    click.echo(summary.format(), err=True)


models_dir_option = click.option(
    "--dir", "models_dir", type=click.Path(file_okay=False), default=None,
    help="Models directory (default: $POSTSIEVE_MODEL_DIR, else <data dir>/models).")


def _models_dir(models_dir: str | None) -> Path:
    return Path(models_dir) if models_dir else workflow.models_dir()


@cli.group()
def models():
    """List, inspect, activate and roll back model versions.

    A running server picks up the newly active version within MODEL_CHECK_INTERVAL seconds
    (default 2), in every worker, without a restart. Switches are recorded in history.jsonl
    in the models directory (docs/models.md).

    Example:

    \b
        postsieve models list
        postsieve models show
        postsieve models activate 20261126-030243-347fc736 --reason "more spam recall"
        postsieve models rollback
    """


_METRIC_NAMES = {"spam_roc_auc": "spam ROC-AUC", "block_precision": "block precision",
                 "block_recall": "block recall", "spam_recall_at_1pct_fpr": "spam recall at 1% FPR",
                 "legit_blocked_rate": "honest posts blocked", "accuracy": "accuracy", "n": "posts"}


def _metric(value, width: int) -> str:
    return f"{value:<{width}.3f}" if value is not None else f"{'-':<{width}}"


@models.command(name="list")
@models_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_command(models_dir, as_json):
    """List the versions, newest first; '*' marks the active one.

    Shows the label counts the version was trained on and its held-out spam ROC-AUC and block
    precision.

    Example:

    \b
        postsieve models list --dir var/models
    """
    directory = _models_dir(models_dir)
    try:
        rows = versions.list_summaries(directory)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no model versions in {directory}", err=True)
        return
    click.echo(f"  {'VERSION':<26}{'CREATED':<27}{'SPAM AUC':<10}{'BLOCK PREC':<12}TRAINED ON")
    for row in rows:
        counts = ", ".join(f"{label} {n}" for label, n in row["label_counts"].items()) or "-"
        click.echo(f"{'*' if row['active'] else ' '} {row['version']:<26}{row['created']:<27}"
                   f"{_metric(row['spam_roc_auc'], 10)}{_metric(row['block_precision'], 12)}{counts}")


@models.command()
@click.argument("version", required=False)
@models_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show(version, models_dir, as_json):
    """Describe one version (default: the active one): training data, metrics, thresholds, switches.

    Example:

    \b
        postsieve models show
        postsieve models show 20261126-030243-347fc736 --json
    """
    try:
        info = versions.describe(_models_dir(models_dir), version)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    data = info["training_data"]
    counts = ", ".join(f"{label} {n}" for label, n in info["label_counts"].items()) or "-"
    marker = ""
    if info["active"] and info["model_file_problem"]:
        marker = "  (active, but it fails its check: servers refuse to load it)"
    elif info["active"]:
        marker = "  (active)"
    lines = [
        ("version", info["version"] + marker),
        ("created", info["created"]),
        ("parent", info["parent"] or "-"),
        ("trained on", f"{counts}; data sha256 {str(data['sha256'])[:12]}"),
        ("corpus files", ", ".join(data["files"]) or "-"),
        ("held-out", ", ".join(f"{_METRIC_NAMES.get(key, key)} {value:.3f}" if isinstance(value, float)
                               else f"{_METRIC_NAMES.get(key, key)} {value}"
                               for key, value in info["metrics"].items()) or "-"),
        ("thresholds", ", ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}"
                                 for key, value in info["thresholds"].items())),
        ("libraries", ", ".join(f"{name} {v}" for name, v in info["libraries"].items())),
        ("model sha256", info["model_sha256"]),
    ]
    if info["model_file_problem"]:
        lines.append(("cannot load", info["model_file_problem"]))
    if info["library_problems"]:
        lines.append(("cannot load", "this process has other libraries: " + "; ".join(info["library_problems"])))
    for entry in info["history"]:
        lines.append(("history", f"{entry['at']} {entry['action']} {entry['from'] or '-'} -> {entry['to']} "
                                 f"by {entry['by']}" + (f" ({entry['reason']})" if entry["reason"] else "")))
    for key, value in lines:
        click.echo(f"{key + ':':<14}{value}")


by_option = click.option("--by", default=None,
                         help="Who is switching, for the history (default: the current user).")
reason_option = click.option("--reason", default=None, help="Why, kept in the history.")


@models.command()
@click.argument("version")
@models_dir_option
@by_option
@reason_option
def activate(version, models_dir, by, reason):
    """Make VERSION the active model, after checking that it loads.

    The version's file hash, library versions and pickle are checked first; a missing, broken
    or tampered version is refused and ACTIVE stays as it was.

    Example:

    \b
        postsieve models activate 20261126-030243-347fc736 --reason "retrained with March feedback"
    """
    try:
        entry = versions.activate(_models_dir(models_dir), version, by=by, reason=reason)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if entry is None:
        click.echo(f"{version} is already active")
    else:
        click.echo(f"activated {entry.to_version} (was {entry.from_version or 'none'}); "
                   f"servers switch within their MODEL_CHECK_INTERVAL")


@models.command()
@models_dir_option
@by_option
@reason_option
def rollback(models_dir, by, reason):
    """Re-activate the version that was active before the current one.

    Reads the history in the models directory; each rollback goes one version further back.
    The version is checked like `activate` does.

    Example:

    \b
        postsieve models rollback --reason "too many honest posts blocked"
    """
    try:
        entry = versions.rollback(_models_dir(models_dir), by=by, reason=reason)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"rolled back to {entry.to_version} (was {entry.from_version or 'none'}); "
               f"servers switch within their MODEL_CHECK_INTERVAL")


# The retraining commands register themselves on `cli` (imported last: they import `cli`).
from . import cli_retrain  # noqa: E402,F401
