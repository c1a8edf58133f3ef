"""Run one function over many items in worker processes; results come back in input order.

Each worker receives the function once, when it starts: a picklable callable that holds the
model. With the fork start method (Linux) it is inherited from the parent, which has already
loaded the model, so no worker loads or unpickles it; elsewhere it is pickled once per worker.
At most `in_flight` items are out at a time (queued, running or waiting to be put in order),
so memory stays flat whatever the input size.

Workers ignore SIGINT: on Ctrl-C the parent decides what is kept, and stops them. Each worker
keeps the native thread pools (OpenMP, BLAS) to one thread: its siblings already use the other
cores, and scikit-learn's OpenMP loops spinning on a busy core took 2.5-4x the CPU (the retrain
combiner fits: 3 s alone, 8-12 s side by side).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import queue
import signal
from typing import Callable, Iterable, Iterator

from threadpoolctl import threadpool_limits

from .errors import ClassifierError

_POLL_SECONDS = 0.2


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1


def usable_cores() -> int:
    """The cores this process may run on (CPU affinity, e.g. under taskset or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this worker when its parent dies: an orphan would wait on the task
    queue forever, holding its memory and any lock the parent held (retraining's). A parent
    that died before the request was made is caught by its pid having changed."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent's close/terminate still apply
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _worker_main(work: Callable, tasks, results, parent_pid: int) -> None:
    # Both signals are blocked from before the fork until here, so the parent's graceful-stop
    # handler never runs in a worker: SIGTERM (terminate) kills it, Ctrl-C is for the parent.
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    threadpool_limits(limits=1)  # for the worker's lifetime
    while True:
        item = tasks.get()
        if item is None:
            return
        seq, payload = item
        try:
            results.put((seq, True, work(payload)))
        except Exception as exc:  # sent back to be raised in the parent
            try:
                pickle.dumps(exc)
            except Exception:
                exc = ClassifierError(f"{type(exc).__name__}: {exc}")
            results.put((seq, False, exc))


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else methods[0])


def map_in_workers(work: Callable, items: list, jobs: int | None = None, in_flight: int | None = None) -> Iterator:
    """`work` over items in order: in forked worker processes when there are cores and items
    for more than one, else in this process (at most `in_flight` items handed out at a time)."""
    jobs = min(len(items), jobs or usable_cores())
    if jobs <= 1:
        yield from map(work, items)
        return
    with OrderedPool(work, jobs, in_flight=in_flight) as pool:
        yield from pool.map(items)


class OrderedPool:
    """`jobs` worker processes applying `work` to items, yielding results in input order."""

    def __init__(self, work: Callable, jobs: int, *, in_flight: int | None = None):
        ctx = _context()
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.in_flight = in_flight or 2 * jobs
        self.procs = [ctx.Process(target=_worker_main, args=(work, self.tasks, self.results, os.getpid()), daemon=True,
                                  name=f"postsieve-worker-{i}") for i in range(jobs)]
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            for p in self.procs:
                p.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def map(self, items: Iterable, stop: Callable[[], bool] = lambda: False) -> Iterator:
        """Results of `work(item)` in the order of `items`; stops early (without waiting for
        work in flight) once `stop()` is true. A worker's exception is raised here."""
        source = iter(items)
        submitted = next_seq = 0
        done: dict[int, object] = {}
        exhausted = False
        while True:
            while not exhausted and submitted - next_seq < self.in_flight and not stop():
                try:
                    payload = next(source)
                except StopIteration:
                    exhausted = True
                    break
                self.tasks.put((submitted, payload))
                submitted += 1
            if next_seq == submitted or stop():
                return
            got = self._next_result(stop)
            if got is None:
                return
            seq, ok, value = got
            if not ok:
                raise value
            done[seq] = value
            while next_seq in done:
                yield done.pop(next_seq)
                next_seq += 1

    def _next_result(self, stop):
        while True:
            try:
                return self.results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if stop():
                    return None
                dead = [p for p in self.procs if p.exitcode is not None]
                if dead:
                    raise ClassifierError(f"a worker process died (exit code {dead[0].exitcode}"
                                          f"{': out of memory?' if dead[0].exitcode == -9 else ''})")

    def close(self) -> None:
        """Let idle workers exit; stop any still busy (their work is no longer wanted)."""
        for _ in self.procs:
            self.tasks.put(None)
        for p in self.procs:
            p.join(timeout=1)
        self.terminate()

    def terminate(self) -> None:
        for p in self.procs:
            if p.exitcode is None:
                p.terminate()
        for p in self.procs:
            p.join(timeout=5)
            if p.exitcode is None:
                p.kill()
                p.join()
        self.tasks.cancel_join_thread()
        self.results.cancel_join_thread()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.close()
        else:
            self.terminate()
