"""Per-key rate limits shared by every gunicorn worker: token buckets in shared memory.

The buckets live in an anonymous shared mapping made when the app is built; `postsieve serve`
builds the app in gunicorn's master (--preload), so every forked worker counts against the same
buckets. Each key gets a bucket of `rate` tokens (one minute's worth) refilled at `rate`/60 per
second: bursts up to the per-minute rate, that average over time.

A key's bucket is found by probing a few slots from its row id; when every probed slot belongs
to another live key, the keys share one bucket (so both are limited, never neither). Updates
are guarded by a POSIX record lock on a file opened before the fork (released by the kernel if
a worker dies holding it) plus a thread lock for threaded workers.
"""
from __future__ import annotations

import fcntl
import math
import mmap
import struct
import tempfile
import threading
import time

_SLOT = struct.Struct("<qdd")  # key row id (0: free), tokens, last refill (CLOCK_MONOTONIC, shared by processes)
PROBES = 8
#: A bucket untouched this long is full again whoever owned it, so its slot may be reused.
IDLE_SECONDS = 120.0


class RateLimiter:
    """Token buckets for up to `slots` keys at a time."""

    def __init__(self, slots: int = 4096):
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED | MAP_ANONYMOUS: survives fork
        self._lockfile = tempfile.TemporaryFile(prefix="postsieve-ratelimit-")
        self._thread_lock = threading.Lock()

    def hit(self, key_row_id: int, rate_per_minute: int) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is available."""
        if rate_per_minute <= 0:
            return 0.0
        now = time.monotonic()
        with self._thread_lock:
            fcntl.lockf(self._lockfile, fcntl.LOCK_EX)
            try:
                return self._take(key_row_id, float(rate_per_minute), now)
            finally:
                fcntl.lockf(self._lockfile, fcntl.LOCK_UN)

    def _take(self, key: int, rate: float, now: float) -> float:
        offset, tokens, last = self._slot_for(key, rate, now)
        tokens = min(rate, tokens + (now - last) * rate / 60.0)
        if tokens >= 1.0:
            _SLOT.pack_into(self._memory, offset, key, tokens - 1.0, now)
            return 0.0
        _SLOT.pack_into(self._memory, offset, key, tokens, now)
        return (1.0 - tokens) * 60.0 / rate

    def _slot_for(self, key: int, rate: float, now: float) -> tuple[int, float, float]:
        """(offset, tokens, last refill) of this key's bucket: its own, a free one, or a shared one."""
        first_free = None
        for probe in range(PROBES):
            offset = ((key + probe) % self.slots) * _SLOT.size
            owner, tokens, last = _SLOT.unpack_from(self._memory, offset)
            if owner == key:
                return offset, tokens, last
            if first_free is None and (owner == 0 or now - last > IDLE_SECONDS):
                first_free = offset
        if first_free is not None:
            return first_free, rate, now
        offset = (key % self.slots) * _SLOT.size  # all taken: share the home slot, keeping its tokens
        _, tokens, last = _SLOT.unpack_from(self._memory, offset)
        return offset, tokens, last


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
