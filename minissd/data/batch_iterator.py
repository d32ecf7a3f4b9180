"""One epoch's batches, prepared ahead in a background thread: ``BatchIterator``.

One thread fills a bounded queue (``prefetch`` batches) while the model works
on the previous one. NumPy releases the GIL in its larger array operations, so
the two overlap where it matters. An exception in the thread is raised in the
consumer, with the thread's traceback and the loader's note saying which
sample failed; abandoning an iteration (``break``, or dropping the iterator)
stops the thread.

Separate from ``loader.py`` (what a batch holds and how one is made, all
deterministic) because this is only about threads and a queue: the batches
are the loader's ``make_batch`` results, in the same order, with or without
the thread.
"""

from __future__ import annotations

import queue
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .loader import Batch, DataLoader

_STOP_POLL_S = 0.05  # how often a blocked worker checks whether the consumer has gone


class _WorkerFailed:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


def _put(out: queue.Queue, stop: threading.Event, item) -> bool:
    # Block while the queue is full, but give up as soon as the consumer stops.
    while not stop.is_set():
        try:
            out.put(item, timeout=_STOP_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _work(loader: DataLoader, epoch: int, batches, out: queue.Queue, stop: threading.Event) -> None:
    """The background thread: prepare each batch in order and queue it; queue a failure instead of dying."""
    try:
        for indices in batches:
            if stop.is_set() or not _put(out, stop, loader.make_batch(epoch, indices)):
                return
        _put(out, stop, _DONE)
    except BaseException as error:  # the consumer re-raises it, traceback and notes included
        _put(out, stop, _WorkerFailed(error))


class BatchIterator:
    """Yields the batches of one epoch; with ``prefetch`` > 0 a thread prepares them ahead.

    ``close()`` (also called on ``break`` through garbage collection, at the
    end of a ``with`` block, and when the epoch ends) stops the thread.
    """

    def __init__(self, loader: DataLoader, epoch: int, start: int = 0):
        self.loader = loader
        self.epoch = epoch
        self._batches = loader.batch_indices(epoch)[start:]
        self._position = 0
        self._skipped_before = len(loader.skipped)
        self._thread = None
        self._stop = threading.Event()
        if loader.prefetch > 0 and self._batches:
            self._queue: queue.Queue = queue.Queue(maxsize=loader.prefetch)
            # The thread gets what it needs, not ``self``: holding the iterator
            # would keep it alive after the consumer drops it, and __del__ would never stop the thread.
            self._thread = threading.Thread(
                target=_work, args=(loader, epoch, self._batches, self._queue, self._stop),
                name=f"minissd-loader-epoch{epoch}", daemon=True,
            )
            self._thread.start()

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._batches)

    def __next__(self) -> Batch:
        if self._position >= len(self._batches) or self._stop.is_set():
            if self._position >= len(self._batches) and not self._stop.is_set():
                self._report_skips()
            self.close()
            raise StopIteration
        if self._thread is None:
            batch = self.loader.make_batch(self.epoch, self._batches[self._position])
        else:
            item = self._queue.get()
            if isinstance(item, _WorkerFailed):
                self.close()
                raise item.error
            if item is _DONE:  # cannot happen before the last batch, but never hang on it
                self.close()
                raise StopIteration
            batch = item
        self._position += 1
        return batch

    def _report_skips(self) -> None:
        new = len(self.loader.skipped) - self._skipped_before
        if new > 0:
            warnings.warn(f"DataLoader epoch {self.epoch}: {new} item(s) could not be read and were replaced; "
                          f"{self.loader.skip_summary()} (loader.skipped)", UserWarning, stacklevel=3)

    def close(self) -> None:
        """Stop the background thread (if any) and wait for it to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
