"""Scratch buffers reused from one call to the next.

im2col builds a (C*K*K, Ho*Wo) matrix for every image: 207 MB for VGG's
conv1_2 at 300 x 300. Allocating it afresh each call costs page faults on the
CPU (measured: a reused buffer is clearly faster; design.md, "Performance").
So each kind of scratch ("cols", "dcols", ...) keeps one flat buffer per array
module and dtype, grown to the largest size asked for; callers get a view of
its first elements, shaped as they need.

A view is only valid until the next request for the same name: use it and
drop it inside one op, never return it to the caller.
"""

from __future__ import annotations

import math

_buffers: dict[tuple, object] = {}


def scratch(name: str, shape: tuple[int, ...], dtype, xp):
    """An uninitialised array of ``shape``, a view of the reused buffer ``name``."""
    size = math.prod(shape)
    key = (name, xp.__name__, str(xp.dtype(dtype)))
    buffer = _buffers.get(key)
    if buffer is None or buffer.size < size:
        _buffers.pop(key, None)  # free the old one before allocating the larger
        buffer = xp.empty(size, dtype=dtype)
        _buffers[key] = buffer
    return buffer[:size].reshape(shape)


def clear() -> None:
    """Free every scratch buffer (they come back at the next call that needs them)."""
    _buffers.clear()


def nbytes() -> int:
    """Bytes held by the scratch buffers now."""
    return sum(int(b.nbytes) for b in _buffers.values())
