"""Native thread limits for the compiled model's callers (serving threads, batch workers)."""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_limits

_pinned = threading.local()


def pin_native_threads(threads: int) -> None:
    """Limit OpenMP/BLAS threads for the calling thread, once per thread.

    OpenMP's thread count is per calling thread, so a limit set at start-up does not reach the
    server's worker threads. Unpinned, HistGradientBoosting's OpenMP pool spin-waits on a busy
    2-core box: a one-record prediction went from 0.6 ms to over 200 ms here.
    """
    if getattr(_pinned, "threads", None) != threads:
        _pinned.limiter = threadpool_limits(limits=threads)
        _pinned.threads = threads
