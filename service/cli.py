"""The `postsieve` console command: the classifier's commands plus `serve` and `keys`."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from classifier import workflow
from classifier.cli import cli, load_selected_model
from classifier.database import Database
from classifier.errors import ClassifierError

from .config import check_environment
from .keys import SCOPES, KeyStore


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (an IPv6 one such as ::1 too).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to bind.")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="gunicorn worker processes (default: CPU cores).")
@click.option("--timeout", default=30, show_default=True, type=click.IntRange(min=0),
              help="Seconds a worker may spend on one request before gunicorn restarts it (0: no limit).")
@click.option("--no-train", is_flag=True,
              help="Refuse to start when the models directory holds no model, instead of training the "
                   "default one (for a models directory mounted from elsewhere).")
def serve(host, port, workers, timeout, no_train):
    """Serve the HTTP API with gunicorn (never the Flask development server).

    Trains the default model first if the models directory has none (unless --no-train: then a
    mistyped path or a failed mount stops it, rather than serving a fresh model). gunicorn loads the app once
    in the master (--preload) so workers share the model's memory and the rate limits; SIGTERM
    shuts down gracefully. Settings come from POSTSIEVE_* variables (docs/configuration.md).

    Example:

    \b
        postsieve serve --host 0.0.0.0 --port 8000 --workers 2
    """
    try:
        warnings = check_environment()  # before anything is printed or trained: one line naming the variable
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        click.echo(f"postsieve: warning: {warning}", err=True)
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
    # Workers write their metrics to files in PROMETHEUS_MULTIPROC_DIR and /metrics sums them
    # (prometheus_client's multiprocess mode). An operator's own directory is made and emptied
    # here, before the model loads (training may take minutes), so a bad one is said at once;
    # otherwise a fresh one is made just before gunicorn starts, which removes it as it exits.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        try:
            metrics_dir.mkdir(parents=True, exist_ok=True)  # missing, /metrics failed on every request
            for stale in metrics_dir.glob("*.db"):
                stale.unlink()
        except OSError as exc:
            raise click.ClickException(f"PROMETHEUS_MULTIPROC_DIR {metrics_dir}: "
                                       f"{exc.strerror or type(exc).__name__}") from None
    # trains on first use, with progress on stderr, unless --no-train
    model = load_selected_model(str(workflow.models_dir()) if no_train else None)
    try:
        Database(workflow.database_url()).upgrade()
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"postsieve: starting gunicorn on http://{address} with model {model.version} "
               f"from {workflow.models_dir()}", err=True)
    workers = workers or os.cpu_count() or 1
    os.environ.setdefault("POSTSIEVE_MODEL_DIR", str(workflow.models_dir()))
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # a fresh one, so counts start at zero
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="postsieve-metrics-")
        os.environ["POSTSIEVE_REMOVE_METRICS_DIR"] = "1"
    args = [sys.executable, "-m", "gunicorn", "--preload", "--workers", str(workers),
            "--bind", address, "--timeout", str(timeout), "--graceful-timeout", "20",
            "--config", "python:service.gunicorn_conf", "--access-logfile", "-", "service.wsgi:app"]
    os.execv(sys.executable, args)


def key_store() -> KeyStore:
    """The key store of $POSTSIEVE_DATABASE_URL, migrated to the current schema."""
    try:
        database = Database(workflow.database_url())
        database.upgrade()
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    return KeyStore(database)


@cli.group()
def keys():
    """Create, list and revoke API keys (stored hashed in $POSTSIEVE_DATABASE_URL)."""


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. the forum's name.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help=f"One of {', '.join(SCOPES)}; repeat or comma-separate for several. admin implies the others.")
@click.option("--rate", type=click.IntRange(min=0), default=None,
              help="Requests per minute for this key (0: unlimited; default: POSTSIEVE_RATE_LIMIT_PER_MINUTE).")
def keys_create(name, scopes, rate):
    """Create a key and print it once on stdout (only the key, so scripts can capture it).

    Example:

    \b
        KEY=$(postsieve keys create --name forum --scope classify --scope feedback)
    """
    try:
        plain, key = key_store().create(name, scopes, rate_per_minute=rate)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"postsieve: created key {key.key_id} '{key.name}' with scopes {','.join(sorted(key.scopes))}; "
               "it is shown only now", err=True)
    click.echo(plain)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def keys_list(as_json):
    """List keys (never their secrets): key id, name, scopes, rate, created, revoked.

    Example:

    \b
        postsieve keys list --json
    """
    try:
        found = key_store().list()
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    for key in found:
        d = key.to_dict()
        if as_json:
            click.echo(json.dumps(d))
        else:
            state = f"revoked {d['revoked'][:19]}" if d["revoked"] else "live"
            rate = ("default" if d["rate_per_minute"] is None else
                    "unlimited" if d["rate_per_minute"] == 0 else f"{d['rate_per_minute']}/min")
            click.echo(f"{d['key_id']}  {d['name']:<20} {','.join(d['scopes']):<24} {rate:<10} "
                       f"created {d['created'][:19]}  {state}")
    if not found and not as_json:
        click.echo("no keys yet: postsieve keys create --name NAME --scope classify", err=True)


@keys.command("revoke")
@click.argument("name_or_key_id")
def keys_revoke(name_or_key_id):
    """Revoke the live keys with this name or key id (workers stop accepting them within
    POSTSIEVE_KEY_CACHE_SECONDS).

    Example:

    \b
        postsieve keys revoke forum
    """
    try:
        revoked = key_store().revoke(name_or_key_id)
    except ClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    for key in revoked:
        click.echo(f"revoked {key.key_id} '{key.name}'")


def main():
    # Output that holds a lone surrogate (from an escaped JSON input) is written escaped, not
    # turned into a UnicodeEncodeError traceback.
    sys.stdout.reconfigure(errors="backslashreplace")
    cli(prog_name="postsieve")
