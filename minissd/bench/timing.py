"""The timing rules every benchmark shares, and the machine line printed above every table.

Best of N, paired. On a machine shared with other work a timing can only come out too slow,
never too fast, so the least disturbed run, the minimum, is the figure to compare. Frameworks
are compared in the same loop: each round times every framework once, each right after an
untimed call of its own (OpenBLAS's worker threads spin ~0.1 s after a GEMM and slow whatever
runs next, design.md "Performance"; the untimed call also leaves the caches and scratch
buffers as the framework itself wants them). A burst of load then hits both sides of a ratio
alike, and the ratio of the two minima is what ``best_of_paired`` reports.

    times = best_of_paired({"minissd": ours, "torch": theirs}, repeat=7)
    times["minissd"].best / times["torch"].best

``median_seconds`` is the GPU table's rule (median after warm-up calls): on a lent GPU the
device is not shared and its first calls compile kernels.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backend


@dataclass
class Timing:
    """Seconds of every timed call of one function; ``best`` (the minimum) is the figure to quote."""

    seconds: list = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def best_of_paired(calls: dict, repeat: int = 7, synchronize=None) -> dict:
    """{name: Timing} over ``repeat`` rounds; each round: per call, one untimed then one timed call.

    calls: name -> fn() (the frameworks to compare); synchronize: name -> fn() run before each
    clock reading (a device synchronise), or one function for all, or None.
    """
    if repeat < 1:
        raise ValueError(f"best_of_paired: repeat must be >= 1; got {repeat}")
    syncs = synchronize if isinstance(synchronize, dict) else {name: synchronize for name in calls}
    results = {name: Timing() for name in calls}
    for _ in range(repeat):
        for name, fn in calls.items():
            sync = syncs.get(name) or (lambda: None)
            fn()  # untimed: the framework's own warm-up right before its timed call
            sync()
            start = time.perf_counter()
            fn()
            sync()
            results[name].seconds.append(time.perf_counter() - start)
    return results


def best_seconds(fn, repeat: int = 7, synchronize=None, clock=time.perf_counter) -> float:
    """The minimum over ``repeat`` timed calls of fn(), each after an untimed one (``best_of_paired``, one call)."""
    if clock is time.perf_counter:
        return best_of_paired({"fn": fn}, repeat, synchronize)["fn"].best
    best = float("inf")
    for _ in range(repeat):  # another clock (CPU time of this process): same rule
        fn()
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def median_seconds(fn, repeat: int, synchronize=lambda: None, warmup: int = 1) -> float:
    """Median wall time of fn() over ``repeat`` calls, after ``warmup`` untimed calls, each synchronised."""
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def set_blas_threads(count: int | None) -> None:
    """Limit the CPU BLAS to ``count`` threads for the rest of the process (None: leave it).

    Set once, at start-up: OpenBLAS keeps its thread pool, and changing it between calls
    costs more than the calls (threadpoolctl).
    """
    if count is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(count), user_api="blas")


def use_threads(threads: int, pool: bool = True) -> str:
    """Give minissd ``threads`` threads, once per process; returns how, for the header line.

    pool=True: minissd's own worker threads (``minissd.nn.parallel``: its ops split their work,
    the BLAS runs one thread per part); pool=False: the BLAS's threads only, as before the pool.
    """
    try:
        from ..nn import parallel
    except ImportError:  # an older minissd, timed with this benchmark for a before / after figure
        parallel = None
    if pool and parallel is not None and threads > 1:
        parallel.set_threads(threads)
        return f"minissd: {threads} worker threads (nn.parallel), BLAS 1 thread per part"
    set_blas_threads(threads)
    return f"minissd: BLAS {threads} threads, element-wise work in one thread"


def blas_description() -> str:
    """'<BLAS> <version> (<n> threads)' of the BLAS NumPy uses, from threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info

        pools = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    except Exception:  # threadpoolctl missing or unable to inspect: say so
        pools = []
    if not pools:
        return "BLAS unknown"
    info = pools[0]
    return (f"{info.get('internal_api', '?')} {info.get('version', '')} "
            f"({info.get('architecture', '?')} kernels, {info.get('num_threads', '?')} threads)")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """'load average 0.12 0.30 0.41' (1, 5, 15 minutes), or '' where the OS does not say."""
    try:
        return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (OSError, AttributeError):
        return ""


def machine_description(device: str = "cpu") -> list[str]:
    """The lines printed above every table: CPU, cores, load, NumPy and its BLAS, the device."""
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
        f"{load_average()}",
        f"numpy {np.__version__} with {blas_description()}, Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
    ]
    if device == "gpu":
        cupy = backend.cupy_module()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        lines.append(f"device: gpu, {props['name'].decode()} (CuPy {cupy.__version__})")
    else:
        lines.append("device: cpu")
    return lines


def load_torch(threads: int):
    """(torch, torchvision) with ``threads`` CPU threads, or (None, None) where they are not installed."""
    try:
        import torch
        import torchvision
    except ImportError:
        return None, None
    torch.set_num_threads(int(threads))
    return torch, torchvision
