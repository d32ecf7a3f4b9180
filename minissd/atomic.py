"""Atomic writes: a file is either its old self or completely new, never half-written.

Every file minissd writes for a user (logs, reports, JSON, pictures; the weights
go through ``minissd.models.io.write_npz``, which follows the same rule) is
written to a temporary file in the destination's folder and renamed over the
destination with ``os.replace``, which is atomic on POSIX and Windows. A full
disk, a permission problem or a kill in the middle therefore leaves whatever
was there before untouched, and the temporary file is removed.

    write_text(path, text)
    write_json(path, value)            # strict JSON: NaN or infinity is an error, not "NaN"
    save_figure(figure, path, dpi=110) # a matplotlib figure
    save_image(picture, path)          # a PIL image

Errors are ``OutputError`` (an ``OSError``) whose message names the file and
the reason, e.g. "cannot write run/log.json: No space left on device".
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager

TEMP_PREFIX = ".minissd-"


class OutputError(OSError):
    """A file could not be written; the message says which and why."""


def _file_mode() -> int:
    """The mode a plainly created file gets (0o666 minus the umask); mkstemp's own is 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def publish(temporary: str, path: str) -> None:
    """Give the finished temporary file the usual permissions and move it over ``path`` (atomic)."""
    os.chmod(temporary, _file_mode())
    os.replace(temporary, path)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


@contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on failure it is removed.

    The suffix matters to writers that pick a format from the file name (matplotlib, PIL):
    pass the destination's extension.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a folder")
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {path}: the folder {folder} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=folder)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {_reason(error)}") from None
    os.close(handle)
    try:
        yield temporary
        publish(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise OutputError(f"cannot write {path}: {_reason(error)}") from None
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())


def _finite_json(value, where: str = "value"):
    """The same structure with every float checked: JSON has no NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}: JSON has no NaN or infinity (write null for 'no value')")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_json(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _finite_json(item, f"{where}[{position}]")
    return value


def write_json(path, value, indent: int | None = 1) -> None:
    """Write ``value`` as strict JSON (a NaN anywhere is a ValueError naming where) atomically."""
    _finite_json(value)
    write_text(path, json.dumps(value, indent=indent, allow_nan=False) + "\n")


def save_figure(figure, path, dpi: int = 110, **options) -> None:
    """``figure.savefig`` atomically; the format comes from the extension of ``path``."""
    extension = os.path.splitext(os.fspath(path))[1]
    if not extension:
        raise OutputError(f"cannot write {path}: give a file name with an extension such as .png")
    with atomic_path(path, suffix=".tmp" + extension) as temporary:
        figure.savefig(temporary, dpi=dpi, **options)


def save_image(picture, path) -> None:
    """``picture.save`` (a PIL image) atomically; the format comes from the extension of ``path``."""
    extension = os.path.splitext(os.fspath(path))[1]
    if not extension:
        raise OutputError(f"cannot write {path}: give a file name with an extension such as .png")
    with atomic_path(path, suffix=".tmp" + extension) as temporary:
        picture.save(temporary)


def remove_stale_temporaries(folder) -> list[str]:
    """Delete the temporary files an interrupted minissd write left in ``folder``; returns their names.

    Only names minissd itself makes (``.minissd-*.tmp*``) are touched.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if name.startswith(TEMP_PREFIX) and ".tmp" in name:
            try:
                os.remove(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return sorted(removed)
