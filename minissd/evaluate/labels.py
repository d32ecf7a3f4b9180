"""Which class of the model is which class of the dataset.

A model's label k means ``model.info.class_names[k]``; a dataset's label j
means ``dataset.class_names[j]``. Scoring a model on a dataset needs the map
k -> j, and it is not always the identity:

- torchvision's COCO SSD300 has 91 slots, one per COCO category id (1..90,
  with unused ids), while ``COCODataset`` numbers its 80 categories 1..80;
- a model trained on all 20 VOC classes may be scored on a folder with three;
- a shapes model scored on a person/dog file must be refused, not reported
  with APs under "circle" and "square".

``label_map`` decides, in this order: the same names in the same order (the
identity); the model's slots are the dataset's COCO category ids (the names
agree slot by slot, or the model is a 91-slot model without names); every
dataset class found among the model's names (case-insensitive); a model
whose classes have no names (``class1`` ...) and as many as the dataset's, in
the dataset's order. Anything else is a ``ValueError`` that lists both.
Detections of model classes the dataset does not have are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO_SLOTS = 91  # torchvision's COCO label space: background + category ids 1..90


@dataclass
class LabelMap:
    """model_to_dataset (L_model,) int64: the dataset label of each model label, 0 where it has none
    (label 0, the background, maps to 0); how: one sentence for the report."""

    model_to_dataset: np.ndarray
    how: str

    @property
    def identity(self) -> bool:
        return bool(np.array_equal(self.model_to_dataset, np.arange(len(self.model_to_dataset))))

    def apply(self, boxes, labels, scores):
        """(boxes (D, 4), labels (D,), scores (D,)) in the model's labels -> the same in the dataset's,
        detections of classes the dataset lacks dropped."""
        labels = np.asarray(labels, dtype=np.int64)
        mapped = self.model_to_dataset[labels]  # (D,)
        keep = mapped > 0
        return boxes[keep], mapped[keep], scores[keep]


def _key(name) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def _generic(names) -> bool:
    return all(_key(name) in (f"class{k}", f"class {k}", "n/a") for k, name in enumerate(names) if k > 0)


def _listing(names, shown: int = 6) -> str:
    names = [str(n) for n in names[1:]]
    return ", ".join(names[:shown]) + (f" ... ({len(names)} in all)" if len(names) > shown else "")


def label_map(model_names, dataset_names, category_ids=None) -> LabelMap:
    """The map from the model's labels to the dataset's (module docstring), or a ValueError.

    model_names, dataset_names: class names with the background at 0.
    category_ids: a COCO dataset's ``category_ids`` (label -> category id, index 0 None), else None.
    """
    model_names, dataset_names = list(model_names), list(dataset_names)
    count = len(model_names)
    mapping = np.zeros(count, dtype=np.int64)
    model_keys = [_key(n) for n in model_names]
    data_keys = [_key(n) for n in dataset_names]
    if model_keys[1:] == data_keys[1:]:
        return LabelMap(np.arange(count, dtype=np.int64), "the model's classes are the dataset's")
    if category_ids is not None and len(category_ids) > 1:
        ids = [int(c) for c in category_ids[1:]]
        if max(ids) < count:
            agree = all(model_keys[cid] == data_keys[j] for j, cid in enumerate(ids, start=1))
            unnamed = count == COCO_SLOTS and _generic(model_names)
            if agree or unnamed:
                for j, cid in enumerate(ids, start=1):
                    mapping[cid] = j
                how = ("the model's slots are COCO category ids (torchvision's label space): "
                       f"slot = category_id for the dataset's {len(ids)} categories")
                if unnamed and not agree:
                    how += " (assumed: the model's classes have no names)"
                return LabelMap(mapping, how)
    position = {key: k for k, key in enumerate(model_keys) if k > 0}
    missing = [dataset_names[j] for j, key in enumerate(data_keys) if j > 0 and key not in position]
    if not missing:
        for j, key in enumerate(data_keys):
            if j > 0:
                mapping[position[key]] = j
        return LabelMap(mapping, f"matched by class name: the dataset's {len(dataset_names) - 1} classes among "
                                 f"the model's {count - 1}")
    if _generic(model_names) and count == len(dataset_names):
        return LabelMap(np.arange(count, dtype=np.int64),
                        "the model's classes have no names; read in the dataset's order")
    raise ValueError(
        f"the model's classes ({_listing(model_names)}) are not the dataset's ({_listing(dataset_names)}): "
        f"{len(missing)} dataset class(es) such as {missing[0]!r} are not among the model's; evaluate on the "
        "data the model was trained for, or fine-tune it (minissd train --weights) on these classes"
    )
