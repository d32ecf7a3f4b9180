"""Weights on disk: one .npz file of named arrays plus JSON metadata.

Layout: every parameter and buffer under its name ("conv1_1.weight", ...),
and one extra entry ``__minissd__`` holding UTF-8 JSON:

    {"format": 1, "minissd_version": "...", "arch": "ssd300", "num_classes": 21,
     "preset": "ssd300-voc", "class_names": [...], "mean": [123, 117, 104],
     "options": {...}, "extra": {...}}

Files are written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted save never leaves a half-written file in
place of a good one. Loading checks everything before changing anything and
names the offending parameter and shapes.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import asdict

import numpy as np

from .. import __version__, backend
from ..priors import PriorConfig

META_KEY = "__minissd__"
FORMAT_VERSION = 1


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
        os.replace(temporary, path)
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


def prior_config_from_meta(meta: dict, source: str = "metadata"):
    """The PriorConfig stored in the file (the default boxes the weights were trained with), else the preset name.

    Older files carry only the name; an unknown name then fails in ``get_config``, listing the presets.
    """
    if "prior_config" not in meta:
        return meta["preset"]
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
    """An untrained model of the architecture, classes and preset ``meta`` describes."""
    from . import ARCHITECTURES

    for key in ("arch", "num_classes", "preset"):
        if key not in meta:
            raise ValueError(f"{source}: metadata lacks {key!r}")
    if meta.get("format", 1) > FORMAT_VERSION:
        raise ValueError(f"{source}: format {meta['format']} is newer than this minissd reads ({FORMAT_VERSION})")
    arch = meta["arch"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"{source}: unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    options = dict(meta.get("options", {}))  # the seed too: the loaded model's info equals the saved one's
    preset = prior_config_from_meta(meta, source)
    model = ARCHITECTURES[arch](num_classes=meta["num_classes"], preset=preset,
                                class_names=meta.get("class_names") or None, **options)
    model.info.mean = tuple(meta.get("mean", model.info.mean))
    return model


def load(path, device: str | None = None, return_extra: bool = False):
    """A model from an .npz written by ``model.save``; on ``device`` (default: MINISSD_DEVICE).

    With ``return_extra=True`` returns (model, meta, arrays that are not model parameters).
    """
    arrays, meta = read_npz(path)
    model = build_from_meta(meta, source=str(path))
    names = set(model.params) | set(model.buffers)
    state = {name: a for name, a in arrays.items() if name in names}
    others = {name: a for name, a in arrays.items() if name not in names}
    model_like = {name: a for name, a in others.items() if "/" not in name}
    if model_like:  # parameters of another network, not checkpoint extras
        state.update(model_like)
    model.load_state_dict(state, source=str(path))
    model.to(backend.resolve_device(device))
    if return_extra:
        return model, meta, {name: a for name, a in others.items() if "/" in name}
    return model
