"""Argument checks shared by the box, default-box, matching, loss and NMS functions.

Every public function of those modules checks what it is given before it
computes anything, so that bad input ends in one ``ValueError`` (a wrong
value) or ``TypeError`` (a wrong kind of thing) whose message says what and
where, in one style:

    FUNCTION: ARGUMENT[index] = value ...: the rule
    match: gt_labels[1] = 1.7 is not an integer (labels are integers >= 1; 0 is the background)
    nms: iou_threshold = 2.0 is outside [0, 1] (an IoU threshold is a fraction)

Python lists and tuples are accepted wherever an array is: numbers become
float32 arrays (integer pixel boxes become floats, so nothing is ever
integer-divided), labels become int64 arrays.

Host syncs: checks of shapes, dtypes and Python numbers cost nothing on a GPU.
Checks of array *values* (finite, in range, integral) read one flag back
from the device; the functions that run inside a training step or the
batched post-processing offer ``validate=False`` to skip them.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import get_array_module, is_cupy_array, to_numpy


# --------------------------------------------------------------------------
# locating and formatting a bad entry
# --------------------------------------------------------------------------

def first_true(mask):
    """The index tuple of the first True entry of ``mask`` (C order), or None.

    One host sync for the question, one more for the index when there is one.
    """
    xp = get_array_module(mask)
    if mask.size == 0 or not bool(mask.any()):
        return None
    flat = int(xp.argmax(mask.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


def format_index(index) -> str:
    """(1,) -> "1"; (0, 17, 2) -> "0, 17, 2"."""
    return ", ".join(str(i) for i in index)


def format_value(value) -> str:
    """A number as a message shows it: 1.7, 3, nan, -inf (a float32 1.7 too, not 1.7000000476837158)."""
    if is_cupy_array(value):
        value = to_numpy(value)
    if isinstance(value, np.ndarray):
        value = value[()]  # a 0-d array: its scalar
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    if isinstance(value, np.floating):
        return str(value)  # NumPy prints the shortest text that is this number in its own precision
    return repr(number)


def format_key_difference(expected, given) -> str | None:
    """None when ``given`` has exactly the names of ``expected``; else "missing [...], unexpected [...]",
    each list cut to its first five names (then " ..."), in the order of ``expected`` and ``given``."""
    missing = [name for name in expected if name not in given]
    unexpected = [name for name in given if name not in expected]
    if not (missing or unexpected):
        return None

    def cut(names):
        return f"{names[:5]}{' ...' if len(names) > 5 else ''}"

    return f"missing {cut(missing)}, unexpected {cut(unexpected)}"


def format_row(row) -> str:
    """A box as a message shows it: [0.5, 0.1, 0.4, 0.9], in the shortest text of its own dtype."""
    values = np.asarray(to_numpy(row)).reshape(-1)
    return "[" + ", ".join(repr(float(v)) if values.dtype == np.float64 else str(v) for v in values) + "]"


def _where(index, index_names) -> str:
    if not index_names:
        return ""
    return " (" + ", ".join(f"{label} {i}" for label, i in zip(index_names, index)) + ")"


# --------------------------------------------------------------------------
# arrays
# --------------------------------------------------------------------------

def _kind(value) -> str:
    return type(value).__name__


def as_float_array(value, name: str, function: str, xp=None):
    """``value`` as a floating-point array of the module ``xp`` (default: its own).

    NumPy / CuPy float arrays pass through unchanged (float64 stays float64).
    Integer arrays, and lists, tuples or numbers, become float32 arrays.
    Anything that is not numbers (None, strings, bools, ragged lists, complex)
    is a TypeError naming ``function`` and ``name``.
    """
    if value is None:
        raise TypeError(f"{function}: {name} is None; expected an array of numbers")
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        array = value
    else:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{function}: {name} is a {_kind(value)}; expected an array of numbers")
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:  # ragged nesting, or device arrays inside a list
            raise TypeError(f"{function}: {name} is not a rectangular array of numbers ({error})") from None
    kind = array.dtype.kind
    if kind == "f":
        result = array
    elif kind in "iu":
        result = array.astype(np.float32)  # pixels as floats: (x1 + x2) / 2 is never an integer division
    else:
        raise TypeError(f"{function}: {name} has dtype {array.dtype}; expected real numbers (float32)")
    if not isinstance(value, np.ndarray) and not is_cupy_array(value):
        result = result.astype(np.float32, copy=False)  # lists and numbers: the library's float32
    if xp is not None and xp is not np and not is_cupy_array(result):
        result = xp.asarray(result)  # a list that goes with device arrays lives on the device too
    return result


def check_last_axis(array, name: str, function: str, size: int = 4, ndim: int | None = None, layout: str = ""):
    """Raise ValueError unless ``array`` has a last axis of ``size`` (and ``ndim`` axes, if given)."""
    shape = tuple(array.shape)
    wrong_ndim = ndim is not None and len(shape) != ndim
    if wrong_ndim or len(shape) < 1 or shape[-1] != size:
        expected = layout or ("(" + ", ".join(["..."] if ndim is None else ["*"] * (ndim - 1)) + f", {size})")
        raise ValueError(f"{function}: {name} must have shape {expected}; got {shape}")
    return array


def check_finite(arrays: dict, function: str, rule):
    """Raise ValueError naming the first non-finite entry of the first array that has one.

    ``arrays``: {name: array}, all of one device. ``rule``: one text for all,
    or {name: text}. One host sync when all are finite (a single flag for all
    arrays together), a few more to locate the entry when one is not:
    "postprocess: loc[0, 17, 2] is nan: <rule>".
    """
    present = {name: array for name, array in arrays.items() if array is not None and array.size}
    if not present:
        return
    xp = get_array_module(*present.values())
    flags = [xp.isfinite(array).all() for array in present.values()]
    everything = flags[0]
    for flag in flags[1:]:
        everything = everything & flag
    if bool(everything):  # the one sync of the common case
        return
    for name, array in present.items():
        index = first_true(~xp.isfinite(array))
        if index is not None:
            text = rule[name] if isinstance(rule, dict) else rule
            raise ValueError(f"{function}: {name}[{format_index(index)}] is {format_value(array[index])}: {text}")


def as_integer_labels(value, name: str, function: str, xp=None, low: int | None = None, high: int | None = None,
                      rule: str = "", mask=None, index_names=(), validate: bool = True):
    """``value`` as an int64 array of labels, every checked entry an integer in [low, high].

    Integer arrays pass (converted to int64); float arrays are accepted only
    when every value is a whole number (1.0, 2.0), never truncated (1.7 is an
    error). ``mask`` (same shape, bool) limits the checks to its True entries
    (padding is not checked). ``index_names`` name the axes in the message,
    e.g. ("image", "box"). ``validate=False`` skips the value checks (their
    host sync); a float array is then refused outright, since only the value
    check could tell 2.0 from 2.2.
    """
    if value is None:
        raise TypeError(f"{function}: {name} is None; expected an array of integer labels")
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        array = value
    else:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{function}: {name} is a {_kind(value)}; expected an array of integer labels")
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise TypeError(f"{function}: {name} is not a rectangular array of integers ({error})") from None
        if array.size == 0:
            array = array.astype(np.int64)  # [] is an empty label list, not a float array
        if xp is not None and xp is not np:
            array = xp.asarray(array)
    module = get_array_module(array)
    kind = array.dtype.kind
    rule_text = f" ({rule})" if rule else ""
    if kind not in "iuf":
        raise TypeError(f"{function}: {name} has dtype {array.dtype}; expected integer labels{rule_text}")
    if kind == "f":
        if not validate:
            raise TypeError(f"{function}: {name} has dtype {array.dtype}; with validate=False labels must have "
                            "an integer dtype (only the value check can tell 2.0 from 2.2)")
        checked = array if mask is None else module.where(mask, array, 0 if low is None else low)
        fractional = ~module.isfinite(checked) | (checked != module.floor(checked))
        index = first_true(fractional)
        if index is not None:
            raise ValueError(f"{function}: {name}[{format_index(index)}] = {format_value(array[index])}"
                             f"{_where(index, index_names)} is not an integer{rule_text}")
        big = (module.abs(checked) > 2 ** 62)
        index = first_true(big)
        if index is not None:
            raise ValueError(f"{function}: {name}[{format_index(index)}] = {format_value(array[index])}"
                             f"{_where(index, index_names)} is too large for a label{rule_text}")
    labels = array.astype(module.int64, copy=False)
    if validate and (low is not None or high is not None) and labels.size:
        bad = module.zeros(labels.shape, dtype=bool)
        if low is not None:
            bad |= labels < low
        if high is not None:
            bad |= labels > high
        if mask is not None:
            bad &= mask
        index = first_true(bad)
        if index is not None:
            raise ValueError(f"{function}: {name}[{format_index(index)}] = {int(labels[index])}"
                             f"{_where(index, index_names)}: {rule or 'out of range'}")
    return labels


# --------------------------------------------------------------------------
# Python numbers: thresholds, ratios, counts
# --------------------------------------------------------------------------

def _as_real(value, name: str, function: str) -> float:
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise TypeError(f"{function}: {name} = {value!r} is not a number")
    if isinstance(value, numbers.Real):
        return float(value)
    if (isinstance(value, np.ndarray) or is_cupy_array(value)) and value.size == 1 and value.dtype.kind in "iuf":
        return float(value.reshape(-1)[0])  # a 0-d or one-element array: a host read, once per call
    raise TypeError(f"{function}: {name} = {value!r} is not a real number ({_kind(value)})")


def check_number(value, name: str, function: str, low: float | None = None, high: float | None = None,
                 rule: str = "") -> float:
    """``value`` as a float, finite and within [low, high] (either bound may be None)."""
    number = _as_real(value, name, function)
    rule_text = f" ({rule})" if rule else ""
    if not math.isfinite(number):
        raise ValueError(f"{function}: {name} = {format_value(number)} is not finite{rule_text}")
    if (low is not None and number < low) or (high is not None and number > high):
        if low is not None and high is not None:
            span = f"outside [{format_value(low)}, {format_value(high)}]"
        elif low is not None:
            span = f"below {format_value(low)}"
        else:
            span = f"above {format_value(high)}"
        raise ValueError(f"{function}: {name} = {format_value(number)} is {span}{rule_text}")
    return number


def check_threshold(value, name: str, function: str, low: float = 0.0, high: float = 1.0,
                    rule: str = "a threshold on a score or an IoU, both fractions") -> float:
    """A threshold: a finite float in [low, high], by default [0, 1]."""
    return check_number(value, name, function, low, high, rule)


def check_count(value, name: str, function: str, minimum: int = 1) -> int:
    """An integer count >= ``minimum`` (top_k, keep_top_k, m); bools and floats are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{function}: {name} = {value!r} is not an integer ({_kind(value)})")
    if int(value) < minimum:
        raise ValueError(f"{function}: {name} = {int(value)} must be an integer >= {minimum}")
    return int(value)


def check_variances(variances, function: str) -> tuple[float, float]:
    """The encoding's (v_center, v_size): two finite numbers > 0."""
    try:
        v_center, v_size = variances
    except (TypeError, ValueError):
        raise TypeError(f"{function}: variances = {variances!r} must be a pair (v_center, v_size)") from None
    values = []
    for label, value in (("variances[0]", v_center), ("variances[1]", v_size)):
        number = check_number(value, label, function, rule="variances divide the offsets, so they are > 0")
        if number <= 0:
            raise ValueError(f"{function}: {label} = {format_value(number)} must be > 0 "
                             "(variances divide the offsets)")
        values.append(number)
    return values[0], values[1]


def check_choice(value, name: str, function: str, choices) -> object:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if not any(value is choice or (type(value) is type(choice) and value == choice) for choice in choices):
        raise ValueError(f"{function}: {name} = {value!r} is not one of {list(choices)}")
    return value
