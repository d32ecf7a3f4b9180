"""Weights on disk: one .npz file of named arrays plus JSON metadata.

Layout: every parameter and buffer under its name ("conv1_1.weight", ...),
and one extra entry ``__minissd__`` holding UTF-8 JSON:

    {"format": 1, "minissd_version": "...", "arch": "ssd300", "num_classes": 21,
     "preset": "ssd300-voc", "class_names": [...], "mean": [123, 117, 104],
     "options": {...}, "prior_config": {...}, "extra": {...}}

A backbone file (VGG16 conv1_1 ... fc7 only, for fine-tuning; ``save_backbone_file``,
``load_backbone_file``) has the same layout with ``"kind": "backbone", "arch": "vgg16"``
and the layer list instead of classes and default boxes.

Files are written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted save never leaves a half-written file in
place of a good one. Loading checks everything before changing anything: the
metadata first, field by field and within sane bounds (``validate_meta``),
before any array is allocated, so a damaged or hostile file cannot ask for
241 GiB; then that every array is finite; then every name and shape.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import tempfile
import zipfile
from dataclasses import asdict, fields

import numpy as np

from .. import __version__, backend
from ..atomic import publish
from ..priors import PriorConfig, get_config

META_KEY = "__minissd__"
FORMAT_VERSION = 1
BACKBONE_KIND = "backbone"

# Bounds on what a file may ask for: far above any real SSD, far below what would exhaust memory.
MAX_CLASSES = 10_000  # COCO has 91 slots, LVIS about 1200
MAX_WIDTH = 2048  # channels of one tiny-model convolution (default 16 ... 96)
MAX_IMAGE_SIZE = 4096  # input side in pixels (SSD: 300, 512)
MAX_FEATURE_MAPS = 16  # SSD512 has 7
MAX_RATIOS_PER_MAP = 8  # SSD uses at most 2 (a = 2, 3)
MAX_PRIORS = 1_000_000  # default boxes in all (SSD512: 24,564)


def write_npz(path, arrays: dict, meta: dict) -> None:
    """Atomically write ``arrays`` (name -> array) and ``meta`` (JSON-able) to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save {path}: folder {folder} does not exist")
    if META_KEY in arrays:
        raise ValueError(f"{META_KEY!r} is reserved for the metadata")
    payload = {name: backend.to_numpy(a) for name, a in arrays.items()}
    payload[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    handle, temporary = tempfile.mkstemp(prefix=".minissd-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **payload)
            stream.flush()
            os.fsync(stream.fileno())
        publish(temporary, path)  # readable as any file the user writes, not mkstemp's 0600
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def read_npz(path) -> tuple[dict, dict]:
    """(arrays, meta) from a file written by ``write_npz``; clear errors otherwise."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    # np.load guesses the format from the first bytes: a non-zip file would be read as .npy
    # or as a pickle, and fail with a message about neither minissd nor the file
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a readable .npz file (not a zip archive, or truncated): "
            "minissd weights are written by model.save"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if META_KEY not in names:
                raise LookupError(f"{path} is not a minissd weights file (no {META_KEY} metadata entry)")
            meta = json.loads(bytes(data[META_KEY]).decode("utf-8"))
            arrays = {name: data[name] for name in names if name != META_KEY}
    except LookupError as error:
        raise ValueError(str(error)) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the metadata is not valid JSON ({error})") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:  # a damaged member, a pickled array
        raise ValueError(f"{path} is not a readable .npz file ({error})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the metadata must be a JSON object; got {type(meta).__name__}")
    return arrays, meta


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


def check_finite(arrays: dict, source: str) -> None:
    """Raise ValueError naming ``source`` and the first array holding NaN or infinity.

    "model.npz: parameter 'head0.loc.weight' has 12 non-finite values (nan): the weights are broken".
    Such weights would otherwise fail far away (NaN boxes deep inside drawing or evaluation).
    """
    for name, array in arrays.items():
        array = np.asarray(backend.to_numpy(array))
        if array.dtype.kind not in "fc" or np.isfinite(array).all():
            continue
        bad = array[~np.isfinite(array)]
        nans = int(np.isnan(bad).sum())
        kinds = " and ".join(kind for kind, count in (("nan", nans), ("inf", bad.size - nans)) if count)
        raise ValueError(f"{source}: parameter {name!r} has {bad.size} non-finite values ({kinds}): "
                         "the weights are broken")


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

def save_model(model, path, extra: dict | None = None, extra_arrays: dict | None = None) -> None:
    """Write a model's weights (+ optional extra metadata and arrays) to ``path``."""
    arrays = model.state_dict()
    for name, array in (extra_arrays or {}).items():
        if name in arrays:
            raise ValueError(f"extra array {name!r} clashes with a model parameter")
        arrays[name] = array
    write_npz(path, arrays, model_meta(model, extra))


def build_from_meta(meta: dict, source: str = "metadata"):
    """An untrained model of the architecture, classes and preset ``meta`` describes (checked first)."""
    from . import ARCHITECTURES

    validate_meta(meta, source)
    options = dict(meta.get("options", {}))  # the seed too: the loaded model's info equals the saved one's
    preset = prior_config_from_meta(meta, source)
    try:
        model = ARCHITECTURES[meta["arch"]](num_classes=meta["num_classes"], preset=preset,
                                            class_names=meta.get("class_names") or None, **options)
    except (TypeError, ValueError) as error:  # e.g. a preset that does not fit the architecture
        raise ValueError(f"{source}: {error}") from None
    if "mean" in meta:
        model.info.mean = check_mean(source, meta["mean"])
    return model


def load(path, device: str | None = None, return_extra: bool = False):
    """A model from an .npz written by ``model.save``; on ``device`` (default: MINISSD_DEVICE).

    With ``return_extra=True`` returns (model, meta, arrays that are not model parameters).
    The metadata is checked before anything is built, the arrays for NaN / infinity before
    they are copied (``validate_meta``, ``check_finite``).
    """
    source = str(path)
    arrays, meta = read_npz(path)
    validate_meta(meta, source)
    check_finite({name: a for name, a in arrays.items() if "/" not in name}, source)
    model = build_from_meta(meta, source=source)
    names = set(model.params) | set(model.buffers)
    state = {name: a for name, a in arrays.items() if name in names}
    others = {name: a for name, a in arrays.items() if name not in names}
    model_like = {name: a for name, a in others.items() if "/" not in name}
    if model_like:  # parameters of another network, not checkpoint extras
        state.update(model_like)
    model.load_state_dict(state, source=source)
    model.to(backend.resolve_device(device))
    if return_extra:
        return model, meta, {name: a for name, a in others.items() if "/" in name}
    return model


# --------------------------------------------------------------------------
# backbone files: VGG16 conv1_1 ... fc7 for fine-tuning, not a whole model
# --------------------------------------------------------------------------

def _check_backbone_state(state: dict, source: str) -> dict:
    """The 30 arrays of a VGG16 backbone as float32, or a ValueError / TypeError naming ``source``."""
    from .transfer import VGG16_BACKBONE_SHAPES

    missing = [name for name in VGG16_BACKBONE_SHAPES if name not in state]
    unexpected = [name for name in state if name not in VGG16_BACKBONE_SHAPES]
    if missing or unexpected:
        raise ValueError(f"{source}: not a VGG16 backbone (conv1_1 ... fc7): missing {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{' ...' if len(unexpected) > 5 else ''}")
    checked = {}
    for name, shape in VGG16_BACKBONE_SHAPES.items():
        array = np.asarray(backend.to_numpy(state[name]))
        if tuple(array.shape) != shape:
            raise ValueError(f"{source}: parameter {name!r} has shape {tuple(array.shape)}, expected {shape}")
        if array.dtype.kind != "f":
            raise TypeError(f"{source}: parameter {name!r} has dtype {array.dtype}, expected floating point")
        checked[name] = array.astype(np.float32, copy=False)
    check_finite(checked, source)
    return checked


def save_backbone_file(path, state: dict, source: str, mean, extra: dict | None = None) -> dict:
    """Write a VGG16 backbone (conv1_1 ... fc7, ``VGG16_BACKBONE_SHAPES``) to ``path``; returns the metadata.

    source: where the weights came from, in words ("torchvision vgg16 (ImageNet)").
    mean:   the RGB 0-255 mean the backbone expects its input to have had subtracted.
    The metadata: {"format": 1, "minissd_version", "kind": "backbone", "arch": "vgg16",
    "layers": ["conv1_1", ..., "fc7"], "source", "mean", "extra"}.
    """
    from .transfer import VGG16_BACKBONE_LAYERS

    arrays = _check_backbone_state(state, f"save_backbone_file({os.fspath(path)})")
    meta = {
        "format": FORMAT_VERSION,
        "minissd_version": __version__,
        "kind": BACKBONE_KIND,
        "arch": "vgg16",
        "layers": list(VGG16_BACKBONE_LAYERS),
        "source": str(source),
        "mean": list(check_mean("save_backbone_file", list(mean))),
        "extra": extra or {},
    }
    write_npz(path, arrays, meta)
    return meta


def load_backbone_file(path) -> tuple[dict, dict]:
    """(state, meta) of a backbone file written by ``save_backbone_file`` (or ``minissd convert``).

    state: name -> float32 array, conv1_1.weight (64, 3, 3, 3) ... fc7.bias (1024,), ready for
    ``minissd.models.transfer.load_backbone``. Errors name the file and the field or parameter;
    a whole-model file is refused with a pointer to ``minissd.models.load``.
    """
    from .transfer import VGG16_BACKBONE_LAYERS

    source = str(path)
    arrays, meta = read_npz(path)
    if meta.get("kind") != BACKBONE_KIND:
        if "arch" in meta and "num_classes" in meta:
            raise ValueError(f"{source} is a whole {meta['arch']} model with {meta['num_classes']} classes, "
                             "not a backbone file: load it with minissd.models.load")
        raise _bad(source, "kind", meta.get("kind"), f"{BACKBONE_KIND!r} for a backbone file")
    _check_format(source, meta)
    if meta.get("arch") != "vgg16":
        raise _bad(source, "arch", meta.get("arch"), "'vgg16' (the only backbone minissd imports)")
    if meta.get("layers") != list(VGG16_BACKBONE_LAYERS):
        raise _bad(source, "layers", meta.get("layers"), "['conv1_1', ..., 'conv5_3', 'fc6', 'fc7']")
    if "mean" in meta:
        check_mean(source, meta["mean"])
    return _check_backbone_state(arrays, source), meta
