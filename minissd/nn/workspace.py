"""Scratch buffers reused from one call to the next.

im2col builds a (C*K*K, Ho*Wo) matrix for every image: 207 MB for VGG's
conv1_2 at 300 x 300. Allocating it afresh each call costs page faults on the
CPU (measured: a reused buffer is clearly faster; design.md, "Performance").
So each kind of scratch ("cols", "dcols", ...) keeps one flat buffer per array
module and dtype, grown to the largest size asked for; callers get a view of
its first elements, shaped as they need.

A view is only valid until the next request for the same name: use it and
drop it inside one op, never return it to the caller.

The buffers belong to the thread that asked for them: two threads running
convolutions at the same time (the in-process ranks of
``minissd.distributed.ThreadGroup``) must never share one.
"""

from __future__ import annotations

import math
import threading

_local = threading.local()


def _table() -> dict:
    """This thread's buffers: (name, array module, dtype) -> flat array."""
    table = getattr(_local, "buffers", None)
    if table is None:
        table = _local.buffers = {}
    return table


def scratch(name: str, shape: tuple[int, ...], dtype, xp):
    """An uninitialised array of ``shape``, a view of the reused buffer ``name``."""
    size = math.prod(shape)
    key = (name, xp.__name__, str(xp.dtype(dtype)))
    buffers = _table()
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffers.pop(key, None)  # free the old one before allocating the larger
        buffer = xp.empty(size, dtype=dtype)
        buffers[key] = buffer
    return buffer[:size].reshape(shape)


def clear() -> None:
    """Free this thread's scratch buffers (they come back at the next call that needs them)."""
    _table().clear()


def nbytes() -> int:
    """Bytes held by this thread's scratch buffers now."""
    return sum(int(b.nbytes) for b in _table().values())
