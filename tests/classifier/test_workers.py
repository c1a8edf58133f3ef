"""Worker pools: results in order, and no orphan outlives its parent."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from classifier.workers import OrderedPool, usable_cores


def _square(x):
    return x * x


def test_results_come_back_in_input_order():
    with OrderedPool(_square, 2) as pool:
        assert list(pool.map(range(50))) == [x * x for x in range(50)]
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_workers_die_when_their_parent_is_killed(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from classifier.workers import OrderedPool
        def wait(x):
            time.sleep(60)
        pool = OrderedPool(wait, 2)
        print(" ".join(str(p.pid) for p in pool.procs), flush=True)
        list(pool.map(range(4)))
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)  # as the OOM killer would: no cleanup runs
    parent.wait()
    deadline = time.monotonic() + 10
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.1)
    assert alive == [], "worker processes outlived their parent"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
