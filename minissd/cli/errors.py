"""The error rule of the ``minissd`` command, in one place.

Every condition a user can cause ends in one line on stderr,

    minissd COMMAND: error: WHAT went wrong, WHERE (file, field, flag, value, box)

and a non-zero exit status: 2 for a malformed command line (an unknown option,
a value out of range: caught while parsing, before any work), 1 for everything
found later (a missing file, bad data, a full disk, no GPU), 130 for Ctrl-C.
No traceback: ``--debug`` (or ``MINISSD_DEBUG=1``) re-raises the exception so a
bug report can carry it.

``one_line(error)`` turns any exception into that line. The library's own
errors already say what and where (``ValueError``, ``DataError``, the
``OSError`` family with a file name); for the rest (PIL's, NumPy's memory
errors, the operating system's) it adds the words a user needs. An exception
nobody anticipated is still one line, marked as a probable bug.
"""

from __future__ import annotations

import errno
import os

DEBUG_ENV = "MINISSD_DEBUG"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem the user can fix; printed as one line without a traceback (exit 1)."""


class UsageError(UserError):
    """Options that contradict each other, found after parsing (exit 2, like argparse's own)."""


def debug_requested(args=None) -> bool:
    """True when ``--debug`` was given or ``MINISSD_DEBUG`` is set to anything but '' or '0'."""
    if args is not None and getattr(args, "debug", False):
        return True
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


_OS_REASONS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EEXIST: "it already exists",
    errno.ENOENT: "no such file or folder",
    errno.EDQUOT: "the disk quota is exceeded",
}


def _os_line(error: OSError) -> str:
    """An OSError as one line: our own messages as they are, the system's with the file named."""
    code = error.errno
    if code is None or not error.strerror:
        return str(error)  # raised by minissd with a full message, e.g. "weights file not found: x.npz"
    reason = _OS_REASONS.get(code, error.strerror)
    target = error.filename
    if target is None:
        return f"{reason} ({error.strerror})" if reason != error.strerror else reason
    line = f"{target}: {reason}"
    if error.filename2:
        line += f" (and {error.filename2})"
    if code == errno.ENOSPC:
        line += "; files written before are intact (minissd writes atomically)"
    return line


def one_line(error: BaseException) -> str:
    """A user-facing, single-line description of ``error``."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(error, Image.DecompressionBombError):
        line = (f"{error} (Pillow's guard against decompression bombs); raise minissd's limit with "
                "--max-pixels N or MINISSD_MAX_IMAGE_PIXELS=N")
    elif isinstance(error, UnidentifiedImageError):
        line = f"not an image file Pillow can read: {error}"
    elif isinstance(error, MemoryError):
        detail = str(error) or "the allocation failed"
        line = f"not enough memory ({detail})"
    elif isinstance(error, OSError):
        line = _os_line(error)
    elif isinstance(error, (UserError, ValueError, RuntimeError, LookupError, ImportError)):
        line = str(error) or type(error).__name__
    else:
        line = (f"unexpected {type(error).__name__}: {error} -- probably a bug in minissd; "
                "run again with --debug and report the traceback")
    return " ".join(line.split())  # one line, whatever the message held
