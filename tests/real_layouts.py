"""Made-up data laid out exactly as the real thing, for the tests of the practitioner's path.

    voc_devkit(root)        VOCdevkit/VOC2007 (trainval, test, train, val lists) and VOC2012
                            (trainval, train, val: no test list, as the real download), XML as the
                            devkit writes it (1-based inclusive pixels, <difficult>, <truncated>)
    voc_folder(root, ...)   one labelImg-style folder of any name: Annotations/, JPEGImages/,
                            optionally ImageSets/Main/ lists, its own classes
    coco_folder(root)       annotations/instances_val2017.json with non-contiguous category ids
                            (1 person, 18 dog, 62 chair), areas, one crowd region; val2017/*.jpg
                            named as COCO names them (000000xxxxxx.jpg)
    photos(root)            a folder of photos with sub-folders, a name used twice, a PNG and a
                            JPEG with the same stem, and one JPEG with an EXIF orientation
    torchvision_ssd300_state(...), torchvision_vgg16_state(...), reducedfc_vgg16_state(...)
                            random state dicts with the real names and shapes, saved with torch
                            where it is installed (.pth) and as .npz otherwise

Pictures are small (64-96 px) and hold a filled shape where each object is, so a model can
learn something from them; every layout is deterministic.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
from PIL import Image, ImageDraw

HAS_TORCH = importlib.util.find_spec("torch") is not None
COLOURS = {"cat": (220, 60, 40), "dog": (40, 90, 220), "person": (240, 200, 40), "chair": (60, 180, 60),
           "car": (200, 40, 200), "bird": (40, 200, 200), "horse": (120, 80, 40)}


def _picture(path, size, objects, rng, fmt="JPEG"):
    """A noisy background with one filled rectangle per object (name, (x1, y1, x2, y2) continuous px)."""
    width, height = size
    base = rng.integers(90, 160, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for name, (x1, y1, x2, y2) in objects:
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=COLOURS.get(name, (255, 255, 255)))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))


def _voc_xml(filename, size, objects, folder="VOC2007"):
    """The devkit's XML: pixel indices 1-based and inclusive (x1 + 1 .. x2)."""
    width, height = size
    parts = [f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{filename}</filename>",
             "\t<source>\n\t\t<database>made-up</database>\n\t</source>",
             f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>",
             "\t<segmented>0</segmented>"]
    for name, (x1, y1, x2, y2), difficult in objects:
        parts.append(f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
                     f"\t\t<truncated>0</truncated>\n\t\t<difficult>{int(difficult)}</difficult>\n"
                     f"\t\t<bndbox>\n\t\t\t<xmin>{x1 + 1}</xmin>\n\t\t\t<ymin>{y1 + 1}</ymin>\n"
                     f"\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>")
    parts.append("</annotation>\n")
    return "\n".join(parts)


def _objects(rng, names, size, count):
    width, height = size
    out = []
    for _ in range(count):
        w = int(rng.integers(width // 4, width // 2))
        h = int(rng.integers(height // 4, height // 2))
        x = int(rng.integers(0, width - w))
        y = int(rng.integers(0, height - h))
        out.append((str(rng.choice(names)), (x, y, x + w, y + h)))
    return out


def _write_voc_year(base, folder_name, ids, names, rng, lists, difficult_every=5):
    counter = 0
    for image_id in ids:
        size = (int(rng.integers(64, 97)), int(rng.integers(64, 97)))
        objects = []
        for name, box in _objects(rng, names, size, int(rng.integers(1, 3))):
            counter += 1
            objects.append((name, box, counter % difficult_every == 0))
        _picture(os.path.join(base, "JPEGImages", f"{image_id}.jpg"), size, [(n, b) for n, b, _ in objects], rng)
        os.makedirs(os.path.join(base, "Annotations"), exist_ok=True)
        with open(os.path.join(base, "Annotations", f"{image_id}.xml"), "w", encoding="utf-8") as stream:
            stream.write(_voc_xml(f"{image_id}.jpg", size, objects, folder_name))
    if lists:
        os.makedirs(os.path.join(base, "ImageSets", "Main"), exist_ok=True)
        for split, members in lists.items():
            with open(os.path.join(base, "ImageSets", "Main", f"{split}.txt"), "w") as stream:
                stream.write("".join(f"{m}\n" for m in members))


def voc_devkit(root, names=("cat", "dog", "person"), trainval=8, test=4, trainval_2012=6, seed=0) -> str:
    """ROOT/VOCdevkit with VOC2007 (trainval + test) and VOC2012 (trainval only); returns the devkit path."""
    rng = np.random.default_rng(seed)
    devkit = os.path.join(root, "VOCdevkit")
    ids07 = [f"{k:06d}" for k in range(1, trainval + test + 1)]
    half = trainval // 2
    _write_voc_year(os.path.join(devkit, "VOC2007"), "VOC2007", ids07, names, rng,
                    {"trainval": ids07[:trainval], "train": ids07[:half], "val": ids07[half:trainval],
                     "test": ids07[trainval:]})
    ids12 = [f"2008_{k:06d}" for k in range(1, trainval_2012 + 1)]
    _write_voc_year(os.path.join(devkit, "VOC2012"), "VOC2012", ids12, names, rng,
                    {"trainval": ids12, "train": ids12[:trainval_2012 // 2], "val": ids12[trainval_2012 // 2:]})
    return devkit


def voc_folder(root, name="my_labels", names=("cat", "dog"), count=10, test=3, with_lists=True, seed=1) -> str:
    """One VOC-style folder (labelImg's layout) named ``name``: its own classes; lists optional."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, name)
    ids = [f"img_{k:03d}" for k in range(count)]
    lists = {"trainval": ids[:count - test], "test": ids[count - test:]} if with_lists else None
    _write_voc_year(folder, name, ids, names, rng, lists, difficult_every=7)
    return folder


COCO_CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
                   {"id": 18, "name": "dog", "supercategory": "animal"},
                   {"id": 62, "name": "chair", "supercategory": "furniture"}]


def coco_folder(root, count=6, seed=2) -> tuple[str, str]:
    """(instances JSON path, images folder) of a COCO-layout val set with non-contiguous category ids."""
    rng = np.random.default_rng(seed)
    base = os.path.join(root, "coco")
    images, annotations = [], []
    for k in range(count):
        image_id = 397133 + 17 * k
        file_name = f"{image_id:012d}.jpg"
        size = (int(rng.integers(72, 97)), int(rng.integers(64, 89)))
        objects = _objects(rng, [c["name"] for c in COCO_CATEGORIES], size, int(rng.integers(1, 3)))
        _picture(os.path.join(base, "val2017", file_name), size, objects, rng)
        images.append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1],
                       "license": 1, "coco_url": "", "date_captured": ""})
        for name, (x1, y1, x2, y2) in objects:
            category = next(c["id"] for c in COCO_CATEGORIES if c["name"] == name)
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": 1000 + len(annotations), "image_id": image_id, "category_id": category,
                                "bbox": [float(x1), float(y1), float(w), float(h)], "area": float(w * h) * 0.8,
                                "iscrowd": 0, "segmentation": [[x1, y1, x2, y1, x2, y2]]})
    first = images[0]
    annotations.append({"id": 9999, "image_id": first["id"], "category_id": 1, "iscrowd": 1,
                        "bbox": [0.0, 0.0, 20.0, 20.0], "area": 300.0, "segmentation": {"counts": [], "size": [1, 1]}})
    data = {"info": {"description": "made-up"}, "licenses": [], "images": images, "annotations": annotations,
            "categories": COCO_CATEGORIES}
    path = os.path.join(base, "annotations", "instances_val2017.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    return path, os.path.join(base, "val2017")


def photos(root, name="my_photos", seed=3) -> str:
    """A folder of photos: two years with a name used twice, a .png and a .jpg of one stem, EXIF rotation."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, name)
    for relative in ("2024/beach.jpg", "2025/beach.jpg", "2025/garden.png", "2025/garden.jpg"):
        objects = _objects(rng, ["cat", "dog"], (80, 64), 1)
        _picture(os.path.join(folder, relative), (80, 64), objects, rng,
                 "PNG" if relative.endswith(".png") else "JPEG")
    # a phone photo stored landscape (80 x 48) with EXIF orientation 6: displayed rotated, 48 wide, 80 high
    stored = Image.fromarray(rng.integers(90, 160, size=(48, 80, 3), dtype=np.uint8))
    ImageDraw.Draw(stored).rectangle([50, 4, 77, 20], fill=COLOURS["cat"])
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(os.path.join(folder, "2025", "phone.jpg"), "JPEG", exif=exif.tobytes(), quality=95)
    return folder


# --------------------------------------------------------------------------
# state dicts with the real names and shapes
# --------------------------------------------------------------------------

def save_state_dict(state: dict, path_without_extension: str) -> str:
    """Save with torch (.pth) where it is installed, else as .npz; returns the path written."""
    if HAS_TORCH:
        import torch

        path = path_without_extension + ".pth"
        torch.save({name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in state.items()}, path)
        return path
    path = path_without_extension + ".npz"
    np.savez(path, **state)
    return path


def torchvision_ssd300_state(num_classes: int = 91, seed: int = 4) -> dict:
    """A random torchvision ``ssd300_vgg16`` state dict (names and shapes of the real one)."""
    from minissd import interop, models

    model = models.ssd300(num_classes, preset="ssd300-torchvision", seed=seed)
    return interop.export_torchvision_state_dict(model)


VGG16_CONVS = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
               (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
VGG16_FEATURE_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def torchvision_vgg16_state(seed: int = 5) -> dict:
    """A random torchvision ``vgg16`` ImageNet classifier state dict (138 M parameters, as the real one)."""
    rng = np.random.default_rng(seed)
    state = {}
    for index, (out_channels, in_channels) in zip(VGG16_FEATURE_INDICES, VGG16_CONVS):
        scale = np.sqrt(2.0 / (in_channels * 9))
        state[f"features.{index}.weight"] = (rng.standard_normal((out_channels, in_channels, 3, 3)) * scale).astype(np.float32)
        state[f"features.{index}.bias"] = (rng.standard_normal(out_channels) * 0.01).astype(np.float32)
    for index, (rows, columns) in ((0, (4096, 25088)), (3, (4096, 4096)), (6, (1000, 4096))):
        state[f"classifier.{index}.weight"] = (rng.standard_normal((rows, columns), dtype=np.float32)
                                               * np.float32(np.sqrt(2.0 / columns)))
        state[f"classifier.{index}.bias"] = np.zeros(rows, np.float32)
    return state


def reducedfc_vgg16_state(seed: int = 6) -> dict:
    """A random ssd.pytorch ``vgg16_reducedfc`` state dict: convs at 0..28, fc6 at 31, fc7 at 33."""
    rng = np.random.default_rng(seed)
    state = {}
    for index, (out_channels, in_channels) in zip(VGG16_FEATURE_INDICES, VGG16_CONVS):
        state[f"{index}.weight"] = (rng.standard_normal((out_channels, in_channels, 3, 3)) * 0.05).astype(np.float32)
        state[f"{index}.bias"] = np.zeros(out_channels, np.float32)
    state["31.weight"] = (rng.standard_normal((1024, 512, 3, 3)) * 0.02).astype(np.float32)
    state["31.bias"] = np.zeros(1024, np.float32)
    state["33.weight"] = (rng.standard_normal((1024, 1024, 1, 1)) * 0.03).astype(np.float32)
    state["33.bias"] = np.zeros(1024, np.float32)
    return state
