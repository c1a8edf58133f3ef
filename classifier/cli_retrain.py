"""`postsieve feedback import/export`, `retrain`, `backtest` and `stats`: the retraining loop.

Registered on the `postsieve` group by classifier.cli. Each command parses options, calls one
library function and turns library errors into one clear line.
"""
from __future__ import annotations

import gzip
import io
import json
import math
import sys
from pathlib import Path

import click

from . import artifacts, workflow
from .cli import SEED, cli
from .database import Database
from .dataset import file_format, is_gzip
from .errors import ClassifierError, CorpusError, StoreError
from .feedback import FeedbackStore
from .feedback_io import export_labels, import_labels, read_label_records
from .gate import GateMargins
from .jobs import InvalidJobOptions, JobStore
from .retrain import RetrainOptions, backtest, retrain
from .stats import STAT_FIELDS, overturn_stats
from .train import TrainParams


def _say(message: str) -> None:
    click.echo(f"postsieve: {message}", err=True)


def open_database() -> Database:
    try:
        database = Database(workflow.database_url())
        database.upgrade()
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    return database


def _format_of(path: str, explicit: str | None) -> str:
    """jsonl or csv: labels have no Parquet form."""
    if explicit:
        return explicit
    try:
        fmt = file_format(path)
    except CorpusError:
        fmt = None
    if fmt not in ("jsonl", "csv"):
        raise click.ClickException(f"{path}: cannot tell the format from the name; use .jsonl or .csv, or --format")
    return fmt


def _open_text(path: str, mode: str):
    if path == "-":
        return sys.stdin if mode == "r" else sys.stdout
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding="utf-8", newline="",
                                errors="strict" if mode == "r" else "backslashreplace")
    return open(path, mode, encoding="utf-8", newline="", errors="strict" if mode == "r" else "backslashreplace")


@cli.group()
def feedback():
    """Moderator labels in bulk: import a forum's export, export the store."""


@feedback.command("import")
@click.argument("path")
@click.option("--source", default="import", show_default=True,
              help="Forum the labels belong to, for rows without a source column.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None, help="Default: from the name.")
@click.option("--dry-run", is_flag=True, help="Report what would be added, changed and rejected; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def feedback_import(path, source, fmt, dry_run, as_json):
    """Import labelled posts (JSONL or CSV, .gz too: id, title, body, label, optional category,
    moderator, note, time, source). Bad rows are reported with their line and skipped.

    Example:

    \b
        postsieve feedback import moderated.csv --source my-forum --dry-run
    """
    store = FeedbackStore(open_database())
    fmt = _format_of(path, fmt)
    try:
        with _open_text(path, "r") as stream:
            summary = import_labels(store, read_label_records(stream, fmt, path=path), source=source, dry_run=dry_run)
    except FileNotFoundError:
        raise click.ClickException(f"{path}: no such file") from None
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise click.ClickException(f"{path}: cannot read ({type(exc).__name__}: {str(exc)[:100]})") from None
    except (CorpusError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    for bad in summary.rejected[:50]:
        _say(f"{path}:{bad.line}: rejected: {bad.error}")
    if len(summary.rejected) > 50:
        _say(f"... and {len(summary.rejected) - 50} more rejected rows")
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
    else:
        verb = "would add" if dry_run else "added"
        click.echo(f"{verb} {summary.added}, changed {summary.changed}, unchanged {summary.unchanged}, "
                   f"rejected {len(summary.rejected)}" + (" (dry run: nothing written)" if dry_run else ""))


@feedback.command("export")
@click.option("-o", "--output", "path", default="-", show_default=True, help="JSONL or CSV file (.gz too); '-': stdout.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default=None, help="Default: from the name.")
@click.option("--history", is_flag=True, help="Every revision of every label, not only the newest.")
def feedback_export(path, fmt, history):
    """Write the feedback store out (the newest label per post, or --history for all revisions).

    Example:

    \b
        postsieve feedback export -o labels.jsonl --history
    """
    store = FeedbackStore(open_database())
    fmt = _format_of(path, fmt)
    try:
        stream = _open_text(path, "w")
        try:
            count = export_labels(store, stream, fmt, history=history)
        finally:
            if stream is not sys.stdout:
                stream.close()
    except BrokenPipeError:  # `postsieve feedback export -o - | head`: the reader has all it wants
        sys.stderr.close()
        sys.exit(0)
    except (OSError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    _say(f"wrote {count} labels")


@cli.command("retrain")
@click.option("--dir", "models_dir", type=click.Path(file_okay=False), default=None,
              help="Models directory (default: $POSTSIEVE_MODEL_DIR).")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True),
              help="Corpus files or directories (default: $POSTSIEVE_CORPUS, else the bundled training_data/).")
@click.option("--feedback-weight", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True,
              help="Weight of a moderator label relative to a corpus post.")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2, show_default=True,
              help="Share of moderator labels held out for the gate.")
@click.option("--max-recall-loss", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Spam recall at the block threshold the candidate may lose.")
@click.option("--max-precision-loss", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Block precision the candidate may lose.")
@click.option("--max-auc-loss", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Off-topic ROC-AUC the candidate may lose.")
@click.option("--max-spam-auc-loss", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Spam ROC-AUC the candidate may lose.")
@click.option("--min-heldout", type=click.IntRange(min=1), default=20, show_default=True,
              help="Fewest held-out labels the gate judges on.")
@click.option("--force", is_flag=True, help="Promote even if the gate fails (recorded in the manifest).")
@click.option("--no-promote", is_flag=True, help="Save the candidate but never make it active.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for folds, augmentation and the split.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--job", "job_id", default=None, hidden=True,
              help="Report progress and outcome to this job row (used by POST /v1/models/retrain).")
@click.option("--by", "requested_by", default=None, help="Who asked for it (recorded; default: the OS user).")
def retrain_command(models_dir, corpus, feedback_weight, holdout, max_recall_loss, max_precision_loss,
                    max_auc_loss, max_spam_auc_loss, min_heldout, force, no_promote, seed, as_json, job_id, requested_by):
    """Train a candidate on the corpus plus the moderators' labels, gate it against the active
    model on held-out labels, save it, and make it active only if it passed (or --force).

    Exit status: 0 when the candidate was promoted (or --no-promote), 3 when the gate kept it
    inactive.

    Example:

    \b
        postsieve retrain --feedback-weight 3 --max-recall-loss 0.02
    """
    options = RetrainOptions(
        feedback_weight=feedback_weight, holdout_fraction=holdout, force=force, promote=not no_promote,
        margins=GateMargins(spam_recall_at_block=max_recall_loss, block_precision=max_precision_loss,
                            off_topic_roc_auc=max_auc_loss, spam_roc_auc=max_spam_auc_loss,
                            min_labels=min_heldout),
        params=TrainParams(seed=seed), requested_by=requested_by)
    database = open_database()
    store = FeedbackStore(database)
    say = _say
    if job_id:
        say = _job_reporter(JobStore(database), job_id)
    try:
        result = retrain(Path(models_dir) if models_dir else workflow.models_dir(), store,
                         corpus or workflow.default_corpus(), options, progress=say)
    except BaseException as exc:
        if job_id:
            JobStore(database).update(job_id, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        if isinstance(exc, (ClassifierError, ValueError)):
            raise click.ClickException(str(exc)) from None
        raise
    if job_id:
        JobStore(database).update(job_id, state="succeeded", result=result.to_dict(),
                                  progress=f"candidate {result.version} " + ("promoted" if result.promoted else "kept inactive"))
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
    else:
        click.echo(format_gate(result.gate))
        if result.backtest:
            click.echo(f"backtest against {result.backtest['against']}: {result.backtest['scored']} labelled posts, "
                       f"changed decisions {json.dumps(result.backtest['counts'])}")
        state = "promoted" if result.promoted else "kept inactive"
        click.echo(f"candidate {result.version}: {state}" + (" (forced)" if result.gate.get("forced") else ""))
    if not result.promoted and not no_promote:
        sys.exit(3)


#: `retrain` options a job started over HTTP may set (POST /v1/models/retrain); the rest are the server's.
JOB_OPTIONS = ("force", "no_promote", "feedback_weight", "holdout", "max_recall_loss", "max_precision_loss",
               "max_auc_loss", "max_spam_auc_loss", "min_heldout", "seed")


def job_arguments(options: dict) -> list[str]:
    """`retrain` arguments for a job's JSON options, checked against the command's own option types
    and ranges first: the job's process parses them again, and an option refused there would end
    the job before it could report anything.

    Raises InvalidJobOptions naming every bad option, what it must be and what was sent.
    """
    params = {p.name: p for p in retrain_command.params if p.name in JOB_OPTIONS}
    args, errors = [], []
    for name, value in options.items():
        try:
            args += _job_argument(params.get(name), name, value)
        except ValueError as exc:
            errors.append(str(exc))
    if errors:
        raise InvalidJobOptions(*errors)
    return args


def _job_argument(param: click.Parameter | None, name: str, value) -> list[str]:
    """One option's arguments; ValueError saying what it must be."""
    if param is None:
        raise ValueError(f"unknown option {name!r}; known: {', '.join(JOB_OPTIONS)}")
    got = json.dumps(value, default=str)[:40]
    if param.is_flag:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {got}")
        return [param.opts[0]] if value else []
    integer = isinstance(param.type, click.types.IntParamType)
    must = f"{name} must be {'an integer' if integer else 'a finite number'}, got {got}"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ValueError(must)  # click would take "0.5", true or 1.5 (as 1); JSON has types
    try:
        value = param.type.convert(value, param, None)
    except click.BadParameter as exc:
        raise ValueError(f"{name}: {exc.message.rstrip('.')}") from None
    except OverflowError:  # an integer too large for a float
        raise ValueError(must) from None
    if isinstance(value, float) and not math.isfinite(value):  # click's ranges let NaN and infinity through
        raise ValueError(must)
    return [param.opts[0], str(value)]


def _job_reporter(jobs: JobStore, job_id: str):
    """Progress lines go to stderr and to the job row."""
    import os

    if jobs.get(job_id) is None:
        raise click.ClickException(f"no job {job_id}")
    if jobs.mark_running(job_id, os.getpid()) is None:
        raise click.ClickException(f"job {job_id} has ended already ({jobs.get(job_id).state}); not running it")

    def say(message: str) -> None:
        _say(message)
        jobs.update(job_id, progress=message[:2000])
    return say


def format_gate(gate: dict) -> str:
    lines = [f"gate: {'passed' if gate['passed'] else 'FAILED'} ({gate.get('split', '')})"]
    cand, act = gate.get("candidate") or {}, gate.get("active") or {}
    lines.append(f"  {'metric':<22} {'candidate':>10} {'active':>10} {'allowed loss':>13}")
    for metric, margin in gate["margins"].items():
        if metric == "min_labels":
            continue
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"  {metric:<22} {fmt(cand.get(metric)):>10} {fmt(act.get(metric)):>10} {margin:>13.3f}")
    lines += [f"  failed: {f}" for f in gate["failures"]] + [f"  skipped: {s}" for s in gate["skipped"]]
    return "\n".join(lines)


@cli.command("backtest")
@click.argument("candidate")
@click.option("--against", default=None, help="Version to compare with (default: the active one).")
@click.option("--dir", "models_dir", type=click.Path(file_okay=False), default=None,
              help="Models directory (default: $POSTSIEVE_MODEL_DIR).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Changed decisions to list (all are counted).")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def backtest_command(candidate, against, models_dir, limit, as_json):
    """Re-score every labelled post with CANDIDATE and the active model (or --against) and list the
    decisions that would change: post, old, new, moderator's label; counts per change type.

    Example:

    \b
        postsieve backtest 20261126-120000-abcd1234 --limit 20
    """
    directory = Path(models_dir) if models_dir else workflow.models_dir()
    try:
        new = artifacts.load_model(directory / candidate)
        old = artifacts.load_model(directory / against) if against else artifacts.load_active(directory)
        store = FeedbackStore(open_database())
        result = backtest(new, old, store.latest())
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(f"{result['scored']} labelled posts re-scored; {len(result['changes'])} decisions change "
               f"({result['against']} -> {result['candidate']})")
    for kind, n in sorted(result["counts"].items()):
        click.echo(f"  {kind:<16} {n}")
    for change in result["changes"][:limit]:
        click.echo(f"  {change['source']}/{change['id']}: {change['old']} -> {change['new']} (label {change['label']})")
    if len(result["changes"]) > limit:
        click.echo(f"  ... and {len(result['changes']) - limit} more (--limit to list more, --json for all)")


@cli.command("stats")
@click.option("--days", type=click.IntRange(1, 3660), default=30, show_default=True, help="How far back.")
@click.option("--source", default=None, help="Only this forum.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model version and day.")
def stats_command(days, source, as_json):
    """Posts classified per model version and day, per decision, and how many of them moderators
    later overturned (blocks labelled not spam, allows labelled spam).

    Example:

    \b
        postsieve stats --days 7
    """
    try:
        rows = overturn_stats(open_database(), days=days, source=source)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    columns = ["day", "model_version", *STAT_FIELDS]
    click.echo("  ".join(columns))
    for row in rows:
        click.echo("  ".join(str(row[c]) for c in columns))
    if not rows:
        _say(f"no decisions recorded in the last {days} days")
