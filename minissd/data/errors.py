"""The exceptions of bad data: ``DataError`` and ``MissingFileError``.

Every part of ``minissd.data`` raises them (picture reading, the VOC and COCO readers, the
loader) and callers catch them, so they sit apart from any one reader: ``images.py`` and
``sample.py`` both need them without importing each other.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad data: the message says which file, and which object in it."""


class MissingFileError(DataError, FileNotFoundError):
    """A file that is not there: a ``DataError`` that is also a ``FileNotFoundError``,
    so code that catches either one keeps working."""
