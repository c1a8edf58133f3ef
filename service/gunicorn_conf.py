"""gunicorn settings `postsieve serve` passes with `-c python:service.gunicorn_conf`."""
import atexit
import os
import shutil

from prometheus_client import multiprocess

# gunicorn 25 and later open a control socket at one path per user (~/.gunicorn/gunicorn.ctl):
# every postsieve server of a user claimed the same one, and the first to stop deleted it for
# the others. postsieve does not use it. (Older gunicorn ignores the unknown setting.)
control_socket_disable = True


def worker_exit(server, worker):
    """Write the decisions this worker still buffers: its writer thread dies with the process.

    gunicorn calls this in a worker that stops gracefully (after SIGTERM or SIGHUP to the
    master), and in the master for a worker that is already gone, where nothing is buffered.
    `worker.wsgi` is the app that worker served (`service.wsgi.app`).
    """
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", {})
    decision_log = extensions.get("postsieve.decision_log")
    if decision_log is not None:
        decision_log.flush_at_exit()


def child_exit(server, worker):
    """Drop a dead worker's live gauges so /metrics stops reporting its model version."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory `serve` made for this server (not an operator's own)."""
    remove_metrics_dir()


def remove_metrics_dir(master_pid: int | None = None) -> None:
    """Remove the metrics directory `serve` made, in the master only (and once)."""
    if master_pid is not None and os.getpid() != master_pid:
        return  # a worker runs its inherited exit handlers too: the directory is the master's
    if os.environ.pop("POSTSIEVE_REMOVE_METRICS_DIR", None) and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# gunicorn reads this file in the master before it binds. A master that cannot start (the port
# taken, a host that does not resolve) exits without on_exit, which left the directory behind.
atexit.register(remove_metrics_dir, os.getpid())
