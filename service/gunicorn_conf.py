"""gunicorn settings `postsieve serve` passes with `-c python:service.gunicorn_conf`."""
import os
import shutil

from prometheus_client import multiprocess


def child_exit(server, worker):
    """Drop a dead worker's live gauges so /metrics stops reporting its model version."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory `serve` made for this server (not an operator's own)."""
    if os.environ.pop("POSTSIEVE_REMOVE_METRICS_DIR", None) and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
