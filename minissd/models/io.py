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

The metadata's fields and their checks are in ``meta.py`` (``model_meta``,
``validate_meta``, ``prior_config_from_meta``, re-exported here).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .. import __version__, backend
from ..atomic import publish
from ..validate import format_key_difference
from .meta import (  # noqa: F401 - re-exported: they lived here before meta.py was split out
    BACKBONE_KIND,
    FORMAT_VERSION,
    MAX_CLASSES,
    MAX_FEATURE_MAPS,
    MAX_IMAGE_SIZE,
    MAX_PRIORS,
    MAX_RATIOS_PER_MAP,
    MAX_WIDTH,
    _bad,
    _check_format,
    backbone_file_message,
    check_mean,
    model_meta,
    prior_config_from_meta,
    validate_meta,
)

META_KEY = "__minissd__"


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

    difference = format_key_difference(VGG16_BACKBONE_SHAPES, state)
    if difference:
        raise ValueError(f"{source}: not a VGG16 backbone (conv1_1 ... fc7): {difference}")
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
