"""Per-key rate limits shared by every gunicorn worker: token buckets in shared memory.

The buckets live in an anonymous shared mapping made when the app is built; `postsieve serve`
builds the app in gunicorn's master (--preload), so every forked worker counts against the same
buckets. Each key gets a bucket of `rate` tokens (one minute's worth) refilled at `rate`/60 per
second: bursts up to the per-minute rate, that average over time. A slot is found by the key's
row id; with more keys than slots, keys sharing a slot reset each other's bucket (never
wrongly refuse each other). The lock is a process-shared semaphore; if it cannot be taken within
50 ms (a worker killed while holding it), the request is let through rather than refused.
"""
from __future__ import annotations

import math
import mmap
import multiprocessing
import struct
import time

_SLOT = struct.Struct("<qdd")  # key row id, tokens, last refill (CLOCK_MONOTONIC, shared by processes)


class RateLimiter:
    """Token buckets for up to `slots` keys at a time."""

    def __init__(self, slots: int = 4096):
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED | MAP_ANONYMOUS: survives fork
        self._lock = multiprocessing.get_context("fork").Lock()

    def hit(self, key_row_id: int, rate_per_minute: int) -> float:
        """Take one token; return 0 when allowed, else the seconds until a token is available."""
        if rate_per_minute <= 0:
            return 0.0
        offset = (key_row_id % self.slots) * _SLOT.size
        now = time.monotonic()
        if not self._lock.acquire(timeout=0.05):
            return 0.0
        try:
            owner, tokens, last = _SLOT.unpack_from(self._memory, offset)
            if owner != key_row_id:
                tokens, last = float(rate_per_minute), now
            tokens = min(float(rate_per_minute), tokens + (now - last) * rate_per_minute / 60.0)
            if tokens >= 1.0:
                _SLOT.pack_into(self._memory, offset, key_row_id, tokens - 1.0, now)
                return 0.0
            _SLOT.pack_into(self._memory, offset, key_row_id, tokens, now)
            return (1.0 - tokens) * 60.0 / rate_per_minute
        finally:
            self._lock.release()


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
