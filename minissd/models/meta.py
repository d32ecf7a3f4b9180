"""A weights file's metadata: writing it (``model_meta``) and checking it (``validate_meta``) before
anything is built.

Every field ``build_from_meta`` reads is checked for its type and kept within
sane bounds (the ``MAX_*`` below: far above any real SSD, far below what would
exhaust memory), and every error names the file and the field, e.g.
"model.npz: metadata field 'num_classes' is 'six', expected an integer from 2
to 10000 ...". ``prior_config_from_meta`` rebuilds the default-box
configuration the weights were trained with.

Separate from ``io.py`` (the .npz file, the arrays, loading and saving): this
is JSON only and allocates nothing, which is the point of checking it first.
``io.py`` uses ``_bad`` and ``_check_format`` for the backbone files' fields
too; every public name here is re-exported by ``minissd.models.io``.
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import asdict, fields

from .. import __version__
from ..priors import PriorConfig, get_config

FORMAT_VERSION = 1
BACKBONE_KIND = "backbone"

# Bounds on what a file may ask for: far above any real SSD, far below what would exhaust memory.
MAX_CLASSES = 10_000  # COCO has 91 slots, LVIS about 1200
MAX_WIDTH = 2048  # channels of one tiny-model convolution (default 16 ... 96)
MAX_IMAGE_SIZE = 4096  # input side in pixels (SSD: 300, 512)
MAX_FEATURE_MAPS = 16  # SSD512 has 7
MAX_RATIOS_PER_MAP = 8  # SSD uses at most 2 (a = 2, 3)
MAX_PRIORS = 1_000_000  # default boxes in all (SSD512: 24,564)


def model_meta(model, extra: dict | None = None) -> dict:
    info = asdict(model.info)
    return {
        "format": FORMAT_VERSION,
        "minissd_version": __version__,
        **info,
        "mean": list(info["mean"]),
        # the default boxes spelled out, so a model built on an unregistered PriorConfig loads too
        "prior_config": asdict(model.prior_config),
        "extra": extra or {},
    }


# --------------------------------------------------------------------------
# metadata checks: every field named, every size bounded, before anything is built
# --------------------------------------------------------------------------

def _show(value) -> str:
    """A field's value as an error message shows it: short, whatever its size."""
    if isinstance(value, (list, tuple)) and len(value) > 8:
        head = ", ".join(_show(v) for v in value[:3])
        return f"[{head}, ...] ({len(value)} entries)"
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text)} characters)"


def _bad(source: str, field: str, value, expected: str) -> ValueError:
    return ValueError(f"{source}: metadata field {field!r} is {_show(value)}, expected {expected}")


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(source, field, value, low, high, what=""):
    if not _is_integer(value) or not low <= value <= high:
        raise _bad(source, field, value, f"an integer from {low} to {high}{what}")
    return int(value)


def _numbers(source, field, value, count=None, positive=False, what=""):
    """A list of finite numbers (> 0 when ``positive``), ``count`` long when given."""
    kind = "positive finite numbers" if positive else "finite numbers"
    expected = f"a list of {count} {kind}{what}" if count is not None else f"a list of {kind}{what}"
    if not isinstance(value, (list, tuple)) or (count is not None and len(value) != count):
        raise _bad(source, field, value, expected)
    for i, number in enumerate(value):
        if not _is_real(number) or (positive and number <= 0):
            raise _bad(source, f"{field}[{i}]", number, "a positive finite number" if positive else "a finite number")
    return list(value)


def check_mean(source: str, value, field: str = "mean") -> tuple:
    """Three finite numbers (RGB, 0-255) or a ValueError naming ``source`` and the field."""
    return tuple(float(v) for v in _numbers(source, field, value, count=3, what=" (RGB, 0-255)"))


def _check_class_names(source: str, names, num_classes: int) -> None:
    if names is None or names == []:
        return  # the builder's default names
    if not isinstance(names, list):
        raise _bad(source, "class_names", names, f"a list of {num_classes} strings (the background first)")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise _bad(source, f"class_names[{i}]", name, "a string")
    full = len(names) + (0 if names and names[0] == "background" else 1)  # the builder adds "background"
    if full != num_classes:
        raise ValueError(
            f"{source}: metadata field 'class_names' has {len(names)} names, expected {num_classes} "
            f"(one per class, 'background' first) for num_classes = {num_classes}"
        )


def _check_options(source: str, arch: str, options, builder) -> None:
    if not isinstance(options, dict):
        raise _bad(source, "options", options, "a JSON object (the builder's keyword arguments)")
    taken = set(inspect.signature(builder).parameters) - {"num_classes", "preset", "class_names", "rng"}
    for key, value in options.items():
        field = f"options.{key}"
        if key not in taken:
            raise ValueError(f"{source}: metadata field {field!r} is not an option of {arch} (it takes {sorted(taken)})")
        if key == "seed":
            if not _is_integer(value) or value < 0:
                raise _bad(source, field, value, "a non-negative integer")
        elif key == "widths":
            if not isinstance(value, (list, tuple)) or len(value) != 8:
                raise _bad(source, field, value, "a list of 8 convolution widths")
            for i, width in enumerate(value):
                _integer(source, f"{field}[{i}]", width, 1, MAX_WIDTH)
        elif key == "batch_norm":
            if not isinstance(value, bool):
                raise _bad(source, field, value, "true or false")
        elif not isinstance(value, (bool, int, float, str)) or (isinstance(value, str) and len(value) > 200):
            raise _bad(source, field, value, "a number, a boolean or a short string")


def _check_prior_config(source: str, stored) -> None:
    """Types and sizes of a stored PriorConfig; bounded, so building its default boxes is cheap."""
    if not isinstance(stored, dict):
        raise _bad(source, "prior_config", stored, "a JSON object (the default-box configuration)")
    known = {f.name for f in fields(PriorConfig)}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ValueError(f"{source}: metadata field 'prior_config.{unknown[0]}' is not a PriorConfig field "
                         f"(they are {sorted(known)})")
    for key in ("name", "image_size", "feature_maps", "min_sizes", "max_sizes", "aspect_ratios"):
        if key not in stored:
            raise ValueError(f"{source}: metadata field 'prior_config' lacks {key!r}")
    if not isinstance(stored["name"], str):
        raise _bad(source, "prior_config.name", stored["name"], "a string")
    size = _integer(source, "prior_config.image_size", stored["image_size"], 1, MAX_IMAGE_SIZE, " (pixels)")
    maps = stored["feature_maps"]
    if not isinstance(maps, (list, tuple)) or not 1 <= len(maps) <= MAX_FEATURE_MAPS:
        raise _bad(source, "prior_config.feature_maps", maps, f"a list of 1 to {MAX_FEATURE_MAPS} map sides")
    for i, side in enumerate(maps):
        _integer(source, f"prior_config.feature_maps[{i}]", side, 1, size, " (at most the image side)")
    count = len(maps)
    for key in ("min_sizes", "max_sizes"):
        _numbers(source, f"prior_config.{key}", stored[key], count=count, positive=True, what=" (one per map)")
    if stored.get("steps") is not None:
        _numbers(source, "prior_config.steps", stored["steps"], count=count, positive=True, what=" (one per map)")
    ratios = stored["aspect_ratios"]
    if not isinstance(ratios, (list, tuple)) or len(ratios) != count:
        raise _bad(source, "prior_config.aspect_ratios", ratios, f"a list of {count} lists (one per map)")
    for k, per_map in enumerate(ratios):
        field = f"prior_config.aspect_ratios[{k}]"
        if not isinstance(per_map, (list, tuple)) or len(per_map) > MAX_RATIOS_PER_MAP:
            raise _bad(source, field, per_map, f"a list of at most {MAX_RATIOS_PER_MAP} aspect ratios")
        _numbers(source, field, per_map, positive=True)
    if stored.get("clip", False) not in (False, True, "corners", "size"):
        raise _bad(source, "prior_config.clip", stored["clip"], "false, true, 'corners' or 'size'")
    if not isinstance(stored.get("description", ""), str):
        raise _bad(source, "prior_config.description", stored["description"], "a string")
    priors = sum(side * side * (2 + 2 * len(r)) for side, r in zip(maps, ratios))
    if priors > MAX_PRIORS:
        raise ValueError(f"{source}: metadata field 'prior_config' describes {priors:,} default boxes, "
                         f"more than {MAX_PRIORS:,} (SSD512 has 24,564)")


def _check_format(source: str, meta: dict) -> None:
    version = meta.get("format", 1)
    if not _is_integer(version) or version < 1:
        raise _bad(source, "format", version, f"an integer from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{source}: format {version} is newer than this minissd reads ({FORMAT_VERSION})")


def backbone_file_message(source: str) -> str:
    return (f"{source} is a VGG16 backbone file (conv1_1 ... fc7 only), not a whole model: "
            "pass it to `minissd train --backbone`")


def validate_meta(meta, source: str = "metadata") -> None:
    """Raise ValueError naming ``source`` and the field unless ``meta`` describes a model minissd can build.

    Checks types and bounds of every field ``build_from_meta`` reads (format, arch, num_classes,
    preset, class_names, mean, options, prior_config, extra) without allocating anything, e.g.
    "model.npz: metadata field 'num_classes' is 'six', expected an integer from 2 to 10000 ...".
    A backbone file is refused with a pointer to where it belongs.
    """
    from . import ARCHITECTURES

    if not isinstance(meta, dict):
        raise ValueError(f"{source}: the metadata must be a JSON object; got {type(meta).__name__}")
    if meta.get("kind") == BACKBONE_KIND:
        raise ValueError(backbone_file_message(source))
    if meta.get("kind", "model") != "model":
        raise _bad(source, "kind", meta["kind"], "'model' (or absent) for a whole network")
    _check_format(source, meta)
    for key in ("arch", "num_classes", "preset"):
        if key not in meta:
            raise ValueError(f"{source}: metadata lacks {key!r}")
    arch = meta["arch"]
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(f"{source}: metadata field 'arch' is {_show(arch)}: unknown architecture {arch!r}, "
                         f"expected one of {sorted(ARCHITECTURES)}")
    num_classes = _integer(source, "num_classes", meta["num_classes"], 2, MAX_CLASSES,
                           " (the classes, background included)")
    if not isinstance(meta["preset"], str) or not meta["preset"]:
        raise _bad(source, "preset", meta["preset"], "a default-box preset name")
    _check_class_names(source, meta.get("class_names"), num_classes)
    if "mean" in meta:
        check_mean(source, meta["mean"])
    _check_options(source, arch, meta.get("options", {}), ARCHITECTURES[arch])
    if meta.get("prior_config") is not None:
        _check_prior_config(source, meta["prior_config"])
    if not isinstance(meta.get("extra", {}), dict):
        raise _bad(source, "extra", meta["extra"], "a JSON object")


def prior_config_from_meta(meta: dict, source: str = "metadata"):
    """The PriorConfig stored in the file (the default boxes the weights were trained with), else the preset name.

    Older files carry only the name; an unknown name then fails in ``get_config``, listing the presets.
    """
    if meta.get("prior_config") is None:
        try:
            return get_config(meta["preset"])
        except ValueError as error:
            raise ValueError(f"{source}: metadata field 'preset': {error}") from None
    _check_prior_config(source, meta["prior_config"])
    stored = dict(meta["prior_config"])
    try:
        for key in ("feature_maps", "min_sizes", "max_sizes", "steps"):
            if stored.get(key) is not None:
                stored[key] = tuple(stored[key])
        stored["aspect_ratios"] = tuple(tuple(r) for r in stored["aspect_ratios"])
        return PriorConfig(**stored)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{source}: the stored prior_config is not valid ({error})") from None
