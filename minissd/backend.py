"""Array backend: NumPy on the CPU, CuPy on a GPU, one code path for both.

This is the only module in minissd that imports CuPy. Everything else asks
this module for the array module ``xp`` that belongs to its inputs, so the
same function runs on NumPy arrays and on CuPy arrays:

    xp = get_array_module(boxes, priors)     # numpy or cupy
    out = xp.maximum(boxes[:, 0], priors[:, 0])

Rules (docs/conventions.md, "Devices"):

- A function takes its array module from its array arguments.
- Mixing NumPy and CuPy arrays in one call is an error (``DeviceMismatchError``):
  a silent copy between host and device would hide the real cost.
- ``MINISSD_DEVICE=cpu|gpu`` chooses where models and data are created by
  default; ``--device`` on the command line does the same.
- minissd imports and works where CuPy is absent; asking for the GPU there
  raises ``DeviceUnavailableError`` with the reason.
"""

from __future__ import annotations

import os

import numpy as np

try:  # CuPy is optional: minissd must import and work without it.
    import cupy as _cupy
except Exception as _error:  # ImportError, or a broken CUDA install
    _cupy = None
    _CUPY_IMPORT_ERROR: str | None = f"{type(_error).__name__}: {_error}"
else:
    _CUPY_IMPORT_ERROR = None

DEVICES = ("cpu", "gpu")
DEVICE_ENV = "MINISSD_DEVICE"


class DeviceMismatchError(TypeError):
    """NumPy (host) and CuPy (device) arrays were mixed in one call."""


class DeviceUnavailableError(RuntimeError):
    """The GPU was asked for but CuPy or a CUDA device is missing."""


def cupy_module():
    """The ``cupy`` module, or None where CuPy is not installed."""
    return _cupy


def cupyx_module():
    """The ``cupyx`` module (scatter_add and friends), or None where CuPy is not installed."""
    if _cupy is None:
        return None
    import cupyx

    return cupyx


def gpu_unavailable_reason() -> str | None:
    """Why the GPU cannot be used here, or None when it can."""
    if _cupy is None:
        return (
            "CuPy is not installed ("
            + (_CUPY_IMPORT_ERROR or "import failed")
            + "); install minissd[gpu] or cupy-cuda13x"
        )
    try:
        count = _cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, no device
        return f"CuPy is installed but no CUDA device is usable ({error})"
    if count < 1:
        return "CuPy is installed but no CUDA device was found"
    return None


def gpu_available() -> bool:
    """True when CuPy is installed and at least one CUDA GPU answers."""
    return gpu_unavailable_reason() is None


def is_cupy_array(array) -> bool:
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def get_array_module(*arrays):
    """The array module (numpy or cupy) of ``arrays``.

    Non-array arguments (Python numbers, lists, None) are ignored. Raises
    ``DeviceMismatchError`` when NumPy and CuPy arrays are mixed, naming the
    position of each kind so the caller can see which argument is off.
    """
    host, device = [], []
    for position, array in enumerate(arrays):
        if is_cupy_array(array):
            device.append(position)
        elif isinstance(array, np.ndarray):
            host.append(position)
    if host and device:
        raise DeviceMismatchError(
            "arrays on different devices: arguments at positions "
            f"{host} are NumPy (cpu) and at positions {device} are CuPy (gpu); "
            "move them to one device first (minissd.backend.to_device)"
        )
    return _cupy if device else np


def device_of(array) -> str:
    """'gpu' for a CuPy array, 'cpu' for anything else."""
    return "gpu" if is_cupy_array(array) else "cpu"


def check_device_name(device: str) -> str:
    """Normalise a device name; a clear error for anything but cpu/gpu."""
    name = str(device).strip().lower()
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def default_device() -> str:
    """The device named by ``MINISSD_DEVICE`` (default 'cpu')."""
    value = os.environ.get(DEVICE_ENV, "cpu")
    try:
        return check_device_name(value)
    except ValueError:
        raise ValueError(
            f"{DEVICE_ENV}={value!r} is not a device: expected 'cpu' or 'gpu'"
        ) from None


def resolve_device(device: str | None = None) -> str:
    """``device`` checked, or the default device; errors when the GPU is missing."""
    name = default_device() if device is None else check_device_name(device)
    if name == "gpu":
        reason = gpu_unavailable_reason()
        if reason is not None:
            raise DeviceUnavailableError(f"device 'gpu' was asked for, but {reason}")
    return name


def array_module(device: str | None = None):
    """numpy for 'cpu', cupy for 'gpu' (None: the default device)."""
    return _cupy if resolve_device(device) == "gpu" else np


def to_device(array, device: str | None = None):
    """``array`` on ``device`` ('cpu' or 'gpu'); no copy when it is already there."""
    target = resolve_device(device)
    if target == "gpu":
        return _cupy.asarray(array)
    return to_numpy(array)


def to_numpy(array):
    """A NumPy copy (or view) of a NumPy or CuPy array, or of a Python value."""
    if is_cupy_array(array):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def synchronize(xp=None) -> None:
    """Wait for queued GPU work (no-op on the CPU); use before reading a clock."""
    if xp is not None and xp is _cupy and _cupy is not None:
        _cupy.cuda.get_current_stream().synchronize()


def blas_threads(count: int | None):
    """A context that limits the CPU BLAS to ``count`` threads (None: leave it alone).

    Small convolutions gain little from a second BLAS thread, and OpenBLAS
    threads spin while they wait: next to a data-loading thread, one BLAS
    thread per process is often faster (docs/performance.md).
    """
    import contextlib

    if count is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(count), user_api="blas")
