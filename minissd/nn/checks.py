"""Input checks shared by the ops: a wrong shape or dtype fails early, with the shape it expected.

Every op checks its arguments once, on entry, so that a mistake surfaces
where it was made ("conv2d_forward: x must be (N, C, H, W) ...") instead of
as a NumPy broadcasting error three calls deeper.
"""

from __future__ import annotations

FLOAT_DTYPES = ("float32", "float64")


def shape_of(array) -> tuple[int, ...]:
    return tuple(int(d) for d in array.shape)


def check_float(array, op: str, name: str):
    """``array`` must be float32 or float64 (the ops never up-cast silently)."""
    if str(array.dtype) not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: {name} must be float32 or float64; got dtype {array.dtype} "
            f"(shape {shape_of(array)})"
        )


def check_nchw(x, op: str, name: str = "x"):
    """``x`` must be a 4-D float activation (N, C, H, W)."""
    if getattr(x, "ndim", None) != 4:
        raise ValueError(
            f"{op}: {name} must be (N, C, H, W); got shape "
            f"{shape_of(x) if hasattr(x, 'shape') else type(x).__name__}"
        )
    check_float(x, op, name)


def check_same_dtype(reference, other, op: str, reference_name: str, other_name: str):
    """``other`` must have the dtype of ``reference`` (no silent float64 <-> float32 mix)."""
    if other.dtype != reference.dtype:
        raise TypeError(
            f"{op}: {other_name} has dtype {other.dtype} but {reference_name} has "
            f"{reference.dtype}; cast one of them (the library computes in float32)"
        )


def check_shape(array, expected: tuple[int, ...], op: str, name: str, meaning: str):
    """``array`` must have exactly the shape ``expected``; ``meaning`` spells it, e.g. '(O,)'."""
    if shape_of(array) != tuple(expected):
        raise ValueError(
            f"{op}: {name} must have shape {meaning} = {tuple(expected)}; got {shape_of(array)}"
        )


def check_positive_int(value, op: str, name: str, minimum: int = 1) -> int:
    """A Python int >= ``minimum`` (kernel sizes, strides, dilations, paddings)."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{op}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)
