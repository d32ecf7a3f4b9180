"""One converter for the checkpoints minissd recognises: a whole SSD300, or a VGG16 backbone.

    identify_checkpoint(state)                  which of the formats below a state dict is
    convert_checkpoint(path, output, ...)       read, recognise, convert, write; a ConvertReport
    python -m minissd.interop CKPT -o OUT.npz   the same from the shell (``main``)

    "torchvision-ssd300"  torchvision ssd300_vgg16 (backbone.*, head.*)   -> a whole ssd300 model
    "torchvision-vgg16"   torchvision vgg16 classifier (features.*, classifier.*)
                                                                          -> a VGG16 backbone file
    "reducedfc-vgg16"     ssd.pytorch vgg16_reducedfc (0.weight ... 33.bias)
                                                                          -> a VGG16 backbone file

A backbone file holds conv1_1 ... fc7 only; ``minissd.models.load`` refuses it and
``minissd.models.io.load_backbone_file`` reads it for ``minissd train --backbone``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from ..models.io import META_KEY, save_backbone_file
from ..models.transfer import VGG16_BACKBONE_LAYERS
from . import vgg16
from .checkpoint import read_checkpoint, unwrap_state_dict
from .coco_names import COCO_CATEGORY_NAMES, COCO_SLOTS, LABEL_SPACE
from .torchvision_ssd import infer_num_classes, load_torchvision_ssd300

TORCHVISION_SSD300 = "torchvision-ssd300"
TORCHVISION_VGG16 = vgg16.TORCHVISION_VGG16
REDUCEDFC_VGG16 = vgg16.REDUCEDFC_VGG16
FORMATS = {
    TORCHVISION_SSD300: "a torchvision ssd300_vgg16 (backbone.features.0.weight ... head.classification_head.module_list.5.bias)",
    TORCHVISION_VGG16: "a torchvision vgg16 ImageNet classifier (features.0.weight ... classifier.6.bias)",
    REDUCEDFC_VGG16: "ssd.pytorch's vgg16_reducedfc (0.weight ... 28.bias, 31.weight, 33.weight)",
}


def identify_checkpoint(state_dict) -> str:
    """"torchvision-ssd300", "torchvision-vgg16" or "reducedfc-vgg16", from the keys of a state dict.

    state_dict: name -> tensor or array; a {"model": ...} wrapper and "module." are removed first.
    A ValueError lists a few of the keys and what was expected when it is none of them.
    """
    state = unwrap_state_dict(state_dict)
    keys = sorted(map(str, state))
    if META_KEY in keys:
        raise ValueError("this is already a minissd weights file: load it with minissd.models.load")
    if any(k.startswith(("backbone.features.", "head.classification_head.")) for k in keys):
        return TORCHVISION_SSD300
    layout = vgg16.vgg16_layout(keys)
    if layout is not None:
        return layout
    shown = keys[:5] + (["..."] if len(keys) > 5 else [])
    raise ValueError(
        f"not a checkpoint minissd recognises: {len(keys)} keys {shown}; expected "
        + ", ".join(FORMATS.values())
    )


@dataclass
class ConvertReport:
    """What ``convert_checkpoint`` recognised and wrote.

    recognised: one of FORMATS; written: "model" (a whole ssd300) or "backbone" (VGG16 conv1_1 ... fc7);
    num_classes / class_names: the model's (None for a backbone); layers: what a backbone file holds;
    notes: how the weights were changed on the way (subsampling, input adaptation, label space).
    """

    checkpoint: str
    output: str
    recognised: str
    written: str
    arch: str
    num_classes: int | None = None
    class_names: list | None = None
    layers: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.checkpoint}: recognised {self.recognised} ({FORMATS[self.recognised]})"]
        if self.written == "model":
            lines.append(f"wrote {self.output}: a whole {self.arch} model with {self.num_classes} classes "
                         "(load it with minissd.models.load)")
        else:
            lines.append(f"wrote {self.output}: a {self.arch} backbone file, {self.layers[0]} ... {self.layers[-1]} "
                         f"({len(self.layers)} layers), not a whole model: pass it to `minissd train --backbone`")
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def check_num_classes(num_classes) -> int:
    """num_classes as an int >= 2, or a ValueError saying why (it counts the background)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes (--num-classes) is {num_classes!r}: it counts the background too "
                         "and must be an integer >= 2")
    return num_classes


def convert_checkpoint(path, output, num_classes: int | None = None, class_names=None,
                       adapt_input: bool = True) -> ConvertReport:
    """Convert the checkpoint at ``path`` (.pth / .pt with PyTorch, or an .npz of its state dict) to ``output``.

    A torchvision ssd300_vgg16 becomes a whole minissd ssd300 (preset "ssd300-torchvision");
    num_classes (L, background included) must then equal its head's, and class_names (the names of
    classes 1..L-1, or 0..L-1) default to the 91 COCO slots when L = 91 (``coco_names``), with
    ``"label_space": "coco-category-ids"`` in the metadata extra. A VGG16 (torchvision classifier or
    ssd.pytorch reduced-fc) becomes a backbone-only file; num_classes and class_names do not apply.
    adapt_input: see ``minissd.interop.vgg16`` (conv1_1 made to read RGB 0-255 minus the mean).
    Nothing is written unless the conversion succeeds.
    """
    path, output = os.fspath(path), os.fspath(output)
    if num_classes is not None:
        check_num_classes(num_classes)
    state = read_checkpoint(path)
    try:
        recognised = identify_checkpoint(state)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    name = os.path.basename(path)
    if recognised == TORCHVISION_SSD300:
        return _convert_ssd300(state, path, output, num_classes, class_names)
    if num_classes is not None or class_names is not None:
        raise ValueError(f"{path} is {FORMATS[recognised]}: a backbone has no classes, so num_classes and "
                         "class_names (--num-classes, --class-names) do not apply")
    backbone = vgg16.backbone_state_from_vgg16(state, adapt_input=adapt_input)
    facts = vgg16.LAYOUTS[recognised]
    input_note = facts["input"] if adapt_input else facts["input_as_stored"]
    save_backbone_file(output, backbone, source=facts["source"], mean=facts["mean"],
                       extra={"checkpoint": name, "recognised": recognised, "fc6_fc7": facts["fc"],
                              "input": input_note})
    return ConvertReport(path, output, recognised, "backbone", "vgg16", layers=list(VGG16_BACKBONE_LAYERS),
                         notes=[facts["fc"], input_note, f"mean (RGB 0-255): {list(facts['mean'])}"])


def _convert_ssd300(state, path, output, num_classes, class_names) -> ConvertReport:
    num_classes = infer_num_classes(state) if num_classes is None else num_classes
    extra = {"source": "torchvision ssd300_vgg16", "checkpoint": os.path.basename(path)}
    notes = []
    if class_names is None and num_classes == COCO_SLOTS:
        class_names = COCO_CATEGORY_NAMES  # torchvision's COCO weights: label = COCO category id
        extra["label_space"] = LABEL_SPACE
        notes.append(f"class names: the {COCO_SLOTS} COCO slots, label = COCO category id "
                     f"(\"N/A\" at unused ids); label_space {LABEL_SPACE!r}")
    model = load_torchvision_ssd300(state, num_classes=num_classes, class_names=class_names, device="cpu")
    model.save(output, extra=extra)
    notes.append(f"preset {model.info.preset}: torchvision's default boxes")
    return ConvertReport(path, output, TORCHVISION_SSD300, "model", "ssd300", num_classes=model.num_classes,
                         class_names=list(model.info.class_names), notes=notes)


def main(argv=None) -> int:
    """``python -m minissd.interop CHECKPOINT -o OUT.npz ...``: an alias of ``minissd convert`` (the same
    options, errors and exit codes; the command lives in ``minissd.cli.convert``)."""
    from ..cli import main as command

    return command(["convert", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
