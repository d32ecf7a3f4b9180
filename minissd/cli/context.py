"""What every command sets up before its work: the device and the picture-size limit."""

from __future__ import annotations

from .errors import UserError


def resolve_device(args) -> str:
    """'cpu' or 'gpu' from --device / $MINISSD_DEVICE; a clear error where the GPU is missing."""
    from .. import backend

    try:
        return backend.resolve_device(getattr(args, "device", None))
    except (backend.DeviceUnavailableError, ValueError) as error:
        raise UserError(str(error)) from None


def apply_image_limit(args) -> None:
    """--max-pixels N sets minissd's picture-size limit for this process (0: none)."""
    limit = getattr(args, "max_pixels", None)
    if limit is None:
        return
    from ..data import sample

    sample.set_max_image_pixels(limit)
