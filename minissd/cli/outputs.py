"""Output paths, checked before any work starts.

A command that would fail to write its results only after an hour of
training or a whole evaluation has wasted that hour. So every ``-o`` (and
every other output flag) is checked first: a folder that is really a file, a
folder that cannot be created or written to, a picture name without a format,
are one-line errors naming the flag before anything runs. The writes
themselves are atomic (``minissd.atomic``): a failure later (a full disk)
leaves what was there before intact.
"""

from __future__ import annotations

import os
import tempfile

from .errors import UserError

PICTURE_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def _probe_writable(folder: str, flag: str, path: str) -> None:
    """Create and delete one empty file in ``folder``: the only portable test that writing works."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".minissd-probe-", suffix=".tmp", dir=folder)
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot write in {folder} ({error.strerror or error})") from None
    os.close(handle)
    os.remove(probe)


def output_folder(path: str, flag: str = "-o/--output") -> str:
    """Make sure ``path`` is (or can become) a folder minissd can write into; returns it.

    Creates the folder (and its parents) when missing.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {path} is an existing file, not a folder; choose a folder name")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag} {path}: cannot create the folder ({error.strerror or error})") from None
    _probe_writable(path, flag, path)
    return path


def output_file(path: str, flag: str, formats=None, overwrite: bool = True) -> str:
    """Make sure ``path`` can be written as a file (its folder exists and is writable); returns it.

    formats: allowed extensions (lower case, with the dot), e.g. ``PICTURE_FORMATS``.
    overwrite: False refuses an existing file.
    """
    if os.path.isdir(path):
        raise UserError(f"{flag} {path} is a folder; give a file name"
                        + (f" such as {os.path.join(path, 'out' + formats[0])}" if formats else ""))
    if formats is not None:
        extension = os.path.splitext(path)[1].lower()
        if extension not in formats:
            raise UserError(f"{flag} {path}: the file name must end in one of {', '.join(formats)}")
    if not overwrite and os.path.exists(path):
        raise UserError(f"{flag} {path} exists; choose another name or remove it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: the folder {folder} does not exist")
    _probe_writable(folder, flag, path)
    return path
