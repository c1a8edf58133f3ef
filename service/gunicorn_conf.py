"""gunicorn settings `postsieve serve` passes with `-c python:service.gunicorn_conf`."""
from prometheus_client import multiprocess


def child_exit(server, worker):
    """Drop a dead worker's live gauges so /metrics stops reporting its model version."""
    multiprocess.mark_process_dead(worker.pid)
