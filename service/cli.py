"""The `postsieve` console command: the classifier's commands plus `serve`."""
from __future__ import annotations

import os
import sys

import click

from classifier import workflow
from classifier.cli import cli, load_selected_model


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=None, type=int, help="gunicorn worker processes (default: CPU cores).")
@click.option("--timeout", default=30, show_default=True, type=int, help="Worker timeout in seconds.")
def serve(host, port, workers, timeout):
    """Serve the HTTP API with gunicorn (never the Flask development server).

    Trains the default model first if the models directory has none. gunicorn loads the app once
    in the master (--preload) so workers share the model's memory; SIGTERM shuts down gracefully.

    Example:

        postsieve serve --host 0.0.0.0 --port 8000 --workers 2
    """
    model = load_selected_model(None)  # trains on first use, with progress on stderr
    click.echo(f"postsieve: serving model {model.version} from {workflow.models_dir()} "
               f"on http://{host}:{port}", err=True)
    workers = workers or os.cpu_count() or 1
    os.environ.setdefault("POSTSIEVE_MODEL_DIR", str(workflow.models_dir()))
    args = [sys.executable, "-m", "gunicorn", "--preload", "--workers", str(workers),
            "--bind", f"{host}:{port}", "--timeout", str(timeout), "--graceful-timeout", "20",
            "--access-logfile", "-", "service.wsgi:app"]
    os.execv(sys.executable, args)


def main():
    # Output that holds a lone surrogate (from an escaped JSON input) is written escaped, not
    # turned into a UnicodeEncodeError traceback.
    sys.stdout.reconfigure(errors="backslashreplace")
    cli(prog_name="postsieve")
