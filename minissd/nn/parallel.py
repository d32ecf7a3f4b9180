"""Worker threads for minissd's NumPy path: one process, several cores.

NumPy runs each operation on one core. Its BLAS can use several for a matrix product, but only
there, and its worker threads keep spinning for a while after each product (~0.1 s), so a
thread of ours running the element-wise work beside them has to fight them for the core.
``set_threads(n)`` does it the other way round: minissd splits its own work in n parts - the 16
matrix products of a Winograd convolution and the planes of its transforms, the columns of an
im2col product, the channels of a ReLU, a pooling or a batch norm - runs them on n threads
(NumPy releases the GIL inside every operation on a large array), and limits the BLAS to one
thread per part, once, through threadpoolctl.

    set_threads(2)               # for the rest of the process
    with threads(1): ...         # for a block, then back
    count()                      # the number of parts now
    MINISSD_THREADS=2 minissd demo   # the same from the environment, read once at import

The default, 1, runs everything in the calling thread and leaves the BLAS alone: minissd then
behaves exactly as without this module. On CuPy arrays nothing is split (the GPU is one device).
Each part writes its own slice of the output, so results do not depend on the count, up to the
BLAS's rounding (a product split in column blocks may round a last bit differently).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_state = {"threads": 1, "pool": None, "limits": None}
_lock = threading.Lock()


def count() -> int:
    """How many parts minissd's NumPy ops split their work into (1: no threads)."""
    return _state["threads"]


def set_threads(threads: int) -> None:
    """Split minissd's NumPy work over ``threads`` threads (1: none, the BLAS as it was)."""
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise ValueError(f"set_threads: threads must be an integer >= 1; got {threads!r}")
    threads = int(threads)
    with _lock:
        if threads == _state["threads"]:
            return
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=True)
            _state["pool"] = None
        if threads > 1:
            if _state["limits"] is None:  # one BLAS thread per part; remember what to give back
                from threadpoolctl import threadpool_limits

                _state["limits"] = threadpool_limits(limits=1, user_api="blas")
            _state["pool"] = ThreadPoolExecutor(threads - 1, thread_name_prefix="minissd-nn")
        elif _state["limits"] is not None:
            _state["limits"].restore_original_limits()
            _state["limits"] = None
        _state["threads"] = threads


@contextlib.contextmanager
def threads(count_: int):
    """``with threads(n):`` split the work over n threads inside the block, then restore."""
    before = count()
    set_threads(count_)
    try:
        yield
    finally:
        set_threads(before)


def ranges(total: int, parts: int | None = None) -> list[tuple[int, int]]:
    """[0, total) cut into at most ``parts`` (default: ``count()``) non-empty contiguous ranges."""
    parts = max(1, min(count() if parts is None else parts, total))
    bounds = [total * k // parts for k in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def run(function, total: int, xp=None) -> None:
    """function(lo, hi, part) for every range of [0, total): the first in the calling thread.

    ``part`` (0, 1, ...) names per-thread scratch buffers. Exceptions of any part are raised
    here, after every part has finished. Nothing is split for CuPy (``xp``) or with one thread.
    """
    pool = _state["pool"]
    if pool is None or (xp is not None and xp.__name__ != "numpy") or total < 2:
        function(0, total, 0)
        return
    parts = ranges(total)
    futures = [pool.submit(function, lo, hi, part) for part, (lo, hi) in enumerate(parts[1:], start=1)]
    errors = []
    try:
        function(*parts[0], 0)
    except BaseException as error:  # wait for the others before raising
        errors.append(error)
    for future in futures:
        try:
            future.result()
        except BaseException as error:
            errors.append(error)
    if errors:
        raise errors[0]


def matmul(a, b, out, xp) -> None:
    """out = a @ b for 2-D a (M, K), b (K, N), split over N (or over M when N is the smaller)."""
    rows, columns = a.shape[0], b.shape[1]
    if columns >= rows:
        run(lambda lo, hi, part: xp.matmul(a, b[:, lo:hi], out=out[:, lo:hi]), columns, xp)
    else:
        run(lambda lo, hi, part: xp.matmul(a[lo:hi], b, out=out[lo:hi]), rows, xp)


def _from_environment() -> None:
    """``MINISSD_THREADS`` (an integer >= 1), read once when minissd.nn is imported."""
    value = os.environ.get("MINISSD_THREADS", "").strip()
    if not value:
        return
    try:
        threads_ = int(value)
    except ValueError:
        raise ValueError(f"MINISSD_THREADS must be an integer >= 1; got {value!r}") from None
    set_threads(threads_)


_from_environment()
