"""torchvision ssd300_vgg16 weights: the name table, import/export, the converter (recognising the
checkpoint, COCO's 91 slots), errors, and (where torch and torchvision are installed) equal outputs
and default boxes. VGG16 backbones: tests/test_interop_vgg16.py."""

import importlib.util
import sys

import numpy as np
import pytest

from minissd import interop, models
from minissd.models import io as model_io

NUM_CLASSES = 5
HAS_TORCHVISION = all(importlib.util.find_spec(name) for name in ("torch", "torchvision"))


@pytest.fixture(scope="module")
def model():
    return models.ssd300(NUM_CLASSES, preset="ssd300-torchvision", seed=1)


@pytest.fixture(scope="module")
def exported(model):
    return interop.export_torchvision_state_dict(model)


def test_the_name_table_covers_every_parameter_once(model):
    names = interop.torchvision_names()
    assert list(names) == list(model.params)  # minissd's order, every parameter
    assert len(set(names.values())) == len(names) == 71
    assert names["conv4_3.weight"] == "backbone.features.21.weight"
    assert names["conv4_3_norm.weight"] == "backbone.scale_weight"
    assert names["fc6.weight"] == "backbone.extra.0.7.1.weight"
    assert names["conv11_2.bias"] == "backbone.extra.4.2.bias"
    assert names["head5.conf.weight"] == "head.classification_head.module_list.5.weight"


def test_export_then_import_gives_the_same_weights(model, exported):
    assert interop.infer_num_classes(exported) == NUM_CLASSES
    assert exported["head.regression_head.module_list.1.weight"].shape == (24, 1024, 3, 3)
    imported = interop.load_torchvision_ssd300(exported)
    assert imported.info.preset == "ssd300-torchvision" and imported.num_classes == NUM_CLASSES
    for name, value in model.params.items():
        np.testing.assert_array_equal(imported.params[name], value, err_msg=name)


def test_checkpoint_wrappers_and_prefixes_are_accepted(model, exported):
    wrapped = {"model": {f"module.{name}": value for name, value in exported.items()}, "epoch": 3}
    imported = interop.load_torchvision_ssd300(wrapped, class_names=["a", "b", "c", "d"])
    np.testing.assert_array_equal(imported.params["fc7.weight"], model.params["fc7.weight"])
    assert imported.info.class_names == ["background", "a", "b", "c", "d"]


def test_bad_state_dicts_are_named(exported):
    missing = {k: v for k, v in exported.items() if k != "backbone.extra.0.7.1.bias"}
    with pytest.raises(ValueError, match=r"missing \['backbone.extra.0.7.1.bias'\] \(1\), unexpected \[\] \(0\)"):
        interop.load_torchvision_ssd300(missing)
    extra = {**exported, "anchor_generator.foo": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match=r"unexpected \['anchor_generator.foo'\]"):
        interop.load_torchvision_ssd300(extra)
    wrong = dict(exported)
    wrong["backbone.features.5.weight"] = np.zeros((128, 64, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"torchvision 'backbone.features.5.weight' has shape \(128, 64, 1, 1\), "
                                         r"but minissd's 'conv2_1.weight' .* needs \(128, 64, 3, 3\)"):
        interop.load_torchvision_ssd300(wrong)
    with pytest.raises(ValueError, match=r"num_classes=21, but the checkpoint's classification head has 5 classes"):
        interop.load_torchvision_ssd300(exported, num_classes=21)
    integers = {**exported, "backbone.scale_weight": np.zeros(512, np.int64)}
    with pytest.raises(TypeError, match="'backbone.scale_weight' has dtype int64"):
        interop.load_torchvision_ssd300(integers)
    with pytest.raises(ValueError, match="'head.classification_head.module_list.0.weight' is missing"):
        interop.load_torchvision_ssd300({"backbone.scale_weight": np.ones(512, np.float32)})
    with pytest.raises(ValueError, match="this model is 'tiny'"):
        interop.export_torchvision_state_dict(models.tiny_ssd(3, widths=(2,) * 8))


def test_converter_command_on_an_npz_state_dict(tmp_path, model, exported, capsys):
    source = tmp_path / "torchvision_state.npz"
    np.savez(source, **exported)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n\nbird\nfish\n")
    output = tmp_path / "converted.npz"
    assert interop.main([str(source), "-o", str(output), "--class-names", str(names)]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = models.load(output)  # an ordinary minissd file: arch ssd300, its preset in the metadata
    assert loaded.info.arch == "ssd300" and loaded.info.preset == "ssd300-torchvision"
    assert loaded.info.class_names == ["background", "cat", "dog", "bird", "fish"]
    _, meta = model_io.read_npz(output)
    assert meta["extra"] == {"source": "torchvision ssd300_vgg16", "checkpoint": "torchvision_state.npz"}
    for name in ("conv1_1.weight", "conv4_3_norm.weight", "head3.conf.bias"):
        np.testing.assert_array_equal(loaded.params[name], model.params[name])


def test_converter_command_errors_and_help(tmp_path, capsys):
    assert interop.main([str(tmp_path / "nope.pth"), "-o", str(tmp_path / "out.npz")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    np.savez(tmp_path / "other.npz", weight=np.zeros(3))
    assert interop.main([str(tmp_path / "other.npz"), "-o", str(tmp_path / "out.npz")]) == 1
    err = capsys.readouterr().err
    assert "other.npz: not a checkpoint minissd recognises: 1 keys ['weight']; expected a torchvision ssd300_vgg16" in err
    assert "a torchvision vgg16 ImageNet classifier" in err and "ssd.pytorch's vgg16_reducedfc" in err
    assert not (tmp_path / "out.npz").exists()
    with pytest.raises(SystemExit) as exit_info:
        interop.main(["--help"])  # the alias of minissd convert
    assert exit_info.value.code == 0
    assert "usage: minissd convert" in capsys.readouterr().out


def test_identify_checkpoint_recognises_a_whole_ssd300(exported, tmp_path):
    assert interop.identify_checkpoint(exported) == "torchvision-ssd300"
    assert interop.identify_checkpoint({"model": {f"module.{k}": v for k, v in exported.items()}}) == "torchvision-ssd300"
    with pytest.raises(ValueError, match=r"not a checkpoint minissd recognises: 7 keys \['a', 'b', 'c', 'd', 'e', '...'\]"):
        interop.identify_checkpoint({name: np.zeros(1) for name in "abcdefg"})
    models.tiny_ssd(3, widths=(2,) * 8).save(tmp_path / "mine.npz")
    with pytest.raises(ValueError, match="mine.npz: this is already a minissd weights file"):
        interop.convert_checkpoint(tmp_path / "mine.npz", tmp_path / "out.npz")


@pytest.fixture(scope="module")
def exported_npz(exported, tmp_path_factory):
    source = tmp_path_factory.mktemp("exported") / "state.npz"
    np.savez(source, **exported)
    return source


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, True, "21"])
def test_num_classes_must_count_the_background(tmp_path, exported_npz, bad, capsys):
    source = exported_npz
    with pytest.raises(ValueError, match=r"num_classes \(--num-classes\) is .*: it counts the background too "
                                         r"and must be an integer >= 2"):
        interop.convert_checkpoint(source, tmp_path / "out.npz", num_classes=bad)
    if isinstance(bad, int) and not isinstance(bad, bool):  # the command refuses while parsing (exit 2)
        if bad == 1:
            assert interop.main([str(source), "-o", str(tmp_path / "out.npz"), "--num-classes", str(bad)]) == 2
            assert "--num-classes counts the background too and must be >= 2" in capsys.readouterr().err
        else:
            with pytest.raises(SystemExit) as exit_info:
                interop.main([str(source), "-o", str(tmp_path / "out.npz"), "--num-classes", str(bad)])
            assert exit_info.value.code == 2
            assert "argument --num-classes: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_coco_names_are_the_91_category_id_slots():
    names = interop.COCO_CATEGORY_NAMES
    assert len(names) == 91 and names[0] == "background"
    assert [i for i, name in enumerate(names) if name == "N/A"] == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert len(set(names) - {"background", "N/A"}) == 80
    assert (names[1], names[11], names[13], names[44], names[72], names[90]) == (
        "person", "fire hydrant", "stop sign", "bottle", "tv", "toothbrush")


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision is optional")
def test_coco_names_equal_torchvisions():
    from torchvision.models.detection import SSD300_VGG16_Weights

    theirs = list(SSD300_VGG16_Weights.COCO_V1.meta["categories"])
    assert theirs[0] == "__background__" and interop.COCO_CATEGORY_NAMES[1:] == theirs[1:]


def test_a_91_class_ssd300_gets_coco_names_and_label_space(tmp_path, monkeypatch):
    """Without torchvision: the names come from minissd.interop.coco_names."""
    state = interop.export_torchvision_state_dict(models.ssd300(91, preset="ssd300-torchvision", seed=2))
    monkeypatch.setattr(interop.convert, "read_checkpoint", lambda path: state)  # no 140 MB file to write
    monkeypatch.setitem(sys.modules, "torchvision", None)
    report = interop.convert_checkpoint(tmp_path / "ssd300_vgg16_coco.pth", tmp_path / "coco.npz")
    assert (report.recognised, report.written, report.num_classes) == ("torchvision-ssd300", "model", 91)
    loaded = models.load(tmp_path / "coco.npz")
    assert loaded.info.class_names == interop.COCO_CATEGORY_NAMES
    _, meta = model_io.read_npz(tmp_path / "coco.npz")
    assert meta["extra"] == {"source": "torchvision ssd300_vgg16", "checkpoint": "ssd300_vgg16_coco.pth",
                             "label_space": "coco-category-ids"}
    assert "coco-category-ids" in report.summary()


def test_a_pth_without_torch_says_what_to_install(tmp_path, monkeypatch):
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"\x80\x02}q\x00.")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match=r"reading .*model.pth needs PyTorch \(pip install torch\)"):
        interop.load_torchvision_checkpoint(checkpoint)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCHVISION, reason="torch and torchvision are optional")
def test_outputs_and_default_boxes_equal_torchvisions(tmp_path):
    """A random torchvision ssd300_vgg16 (~10 s to build on 2 cores): import, same input, same loc/conf."""
    import torch
    from torchvision.models.detection import ssd300_vgg16

    torch.manual_seed(0)
    theirs = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21).eval()
    with torch.no_grad():  # a scale that is not 20 everywhere, so the L2Norm's import shows
        theirs.backbone.scale_weight.uniform_(5, 25)
    checkpoint = tmp_path / "ssd300.pth"
    torch.save(theirs.state_dict(), checkpoint)
    ours = interop.load_torchvision_ssd300(interop.load_torchvision_checkpoint(checkpoint))
    assert ours.num_classes == 21 and ours.num_parameters == sum(p.numel() for p in theirs.parameters())

    images = np.random.default_rng(0).uniform(-120, 140, (2, 3, 300, 300)).astype(np.float32)
    with torch.no_grad():
        features = theirs.backbone(torch.from_numpy(images))
        expected = theirs.head(list(features.values()))
    loc, conf = ours.forward(images)
    for mine, ref in ((loc, expected["bbox_regression"]), (conf, expected["cls_logits"])):
        ref = ref.numpy()
        assert mine.shape == ref.shape
        np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())

    generator = theirs.anchor_generator
    grid = [list(f.shape[-2:]) for f in features.values()]
    anchors = generator._grid_default_boxes(grid, [300, 300], dtype=torch.float32).numpy()  # (P, 4) cxcywh
    np.testing.assert_allclose(ours.priors, anchors, atol=1e-6)
