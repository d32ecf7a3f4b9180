"""Fine-tuning, model side: which parameters are the backbone, loading a VGG16 backbone, and a
model for new classes that keeps every weight but the conf heads."""

import numpy as np
import pytest

from minissd import models
from minissd.priors import PriorConfig

SMALL_PRESET = PriorConfig(  # 32 px, so a tiny model forwards in milliseconds
    name="transfer-32", image_size=32, feature_maps=(4, 2, 1, 1, 1),
    min_sizes=(0.1, 0.2, 0.4, 0.6, 0.8), max_sizes=(0.2, 0.4, 0.6, 0.8, 1.0),
    aspect_ratios=((2,), (2,), (2,), (2,), (2,)), steps=(8, 16, 32, 32, 32),
)


@pytest.fixture(scope="module")
def ssd300():
    return models.ssd300(4, seed=5)


def _vgg_state(rng):
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in models.VGG16_BACKBONE_SHAPES.items()}


def _tiny(rng, batch_norm=True, num_classes=4):
    """A tiny model whose BatchNorm statistics have moved (one training-mode forward)."""
    model = models.tiny_ssd(num_classes, preset=SMALL_PRESET, widths=(3, 4, 5, 6, 7, 8, 9, 10),
                            batch_norm=batch_norm, class_names=["a", "b", "c"][: num_classes - 1], seed=4)
    model.forward(rng.standard_normal((2, 3, 32, 32), dtype=np.float32))
    model.info.mean = (100.0, 110.0, 120.0)
    return model


# -- backbone_parameter_names ---------------------------------------------------------------------------

def test_the_vgg_backbone_is_conv1_1_to_fc7(ssd300):
    names = models.backbone_parameter_names(ssd300)
    assert names == [f"{layer}.{kind}" for layer in models.VGG16_BACKBONE_LAYERS for kind in ("weight", "bias")]
    assert len(names) == 30 and names[-1] == "fc7.bias"
    assert names == list(ssd300.stages[0].params) + list(ssd300.stages[1].params)  # stages 0, 1 are VGG
    assert "conv4_3_norm.weight" not in names and "conv8_1.weight" not in names


def test_the_tiny_backbone_is_its_stem(rng):
    names = models.backbone_parameter_names(_tiny(rng))
    assert names == [f"{p}{k}.{kind}" for k in range(1, 5) for p, kind in (("conv", "weight"), ("bn", "weight"), ("bn", "bias"))]
    plain = models.backbone_parameter_names(_tiny(rng, batch_norm=False))
    assert plain == [f"conv{k}.{kind}" for k in range(1, 5) for kind in ("weight", "bias")]


# -- load_backbone --------------------------------------------------------------------------------------

def test_load_backbone_copies_conv1_1_to_fc7_and_nothing_else(rng):
    model = models.ssd300(4, seed=5)
    before = model.state_dict()
    state = _vgg_state(rng)
    assert models.load_backbone(model, state, mean=(123.675, 116.28, 103.53)) == list(models.VGG16_BACKBONE_SHAPES)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state.get(name, before[name]), err_msg=name)
    assert model.info.mean == (123.675, 116.28, 103.53)
    state["conv1_1.weight"][...] = 0  # copied, not shared
    assert np.abs(model.params["conv1_1.weight"]).max() > 0


def test_load_backbone_errors_change_nothing(rng, ssd300):
    before = ssd300.state_dict()
    state = _vgg_state(rng)
    with pytest.raises(ValueError, match=r"load_backbone: my.npz is a VGG16 backbone \(conv1_1 ... fc7\), which fits "
                                         r"ssd300 and ssd512; this model is 'tiny'"):
        models.load_backbone(_tiny(rng), state, source="my.npz")
    partial = {k: v for k, v in state.items() if not k.startswith("fc7")}
    with pytest.raises(ValueError, match=r"missing \['fc7.weight', 'fc7.bias'\], unexpected \[\]"):
        models.load_backbone(ssd300, partial)
    with pytest.raises(ValueError, match=r"unexpected \['conv8_1.weight'\]"):
        models.load_backbone(ssd300, {**state, "conv8_1.weight": np.zeros((256, 1024, 1, 1), np.float32)})
    misshaped = {**state, "fc6.weight": np.zeros((4096, 512, 7, 7), np.float32), "fc7.bias": np.zeros(4096, np.float32)}
    with pytest.raises(ValueError, match=r"does not fit ssd300: 'fc6.weight' is \(4096, 512, 7, 7\), ssd300 needs "
                                         r"\(1024, 512, 3, 3\); 'fc7.bias' is \(4096,\), ssd300 needs \(1024,\)"):
        models.load_backbone(ssd300, misshaped)
    with pytest.raises(TypeError, match=r"not floating point: 'conv2_1.bias' \(int32\)"):
        models.load_backbone(ssd300, {**state, "conv2_1.bias": np.zeros(128, np.int32)})
    broken = {**state, "conv3_2.weight": np.where(rng.random((256, 256, 3, 3)) < 0.001, np.nan, 1).astype(np.float32)}
    with pytest.raises(ValueError, match=r"parameter 'conv3_2.weight' has \d+ non-finite values \(nan\)"):
        models.load_backbone(ssd300, broken)
    with pytest.raises(ValueError, match=r"mean \[1, 2\] from backbone state is not three finite numbers"):
        models.load_backbone(ssd300, state, mean=[1, 2])
    for name, value in ssd300.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


# -- with_new_classes -----------------------------------------------------------------------------------

def test_with_new_classes_keeps_everything_but_the_conf_heads(rng):
    old = _tiny(rng).eval()
    before = old.state_dict()
    new = models.with_new_classes(old, 6, ["w", "x", "y", "z", "v"], seed=9)
    assert new.num_classes == 6 and new.info.class_names == ["background", "w", "x", "y", "z", "v"]
    assert (new.info.arch, new.prior_config, new.info.mean) == ("tiny", SMALL_PRESET, (100.0, 110.0, 120.0))
    assert new.info.options == {**old.info.options, "seed": 9} and not new.training
    fresh = models.tiny_ssd(6, preset=SMALL_PRESET, widths=(3, 4, 5, 6, 7, 8, 9, 10), seed=9)
    conf = [name for name in new.params if ".conf." in name]
    assert len(conf) == 10
    for name, value in new.state_dict().items():
        if name in conf:  # re-initialised as the builder does for seed 9, the new shape
            np.testing.assert_array_equal(value, fresh.params[name], err_msg=name)
        else:  # backbone, extras, loc heads, BatchNorm running statistics
            np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert new.params["head0.conf.weight"].shape == (4 * 6, 6, 3, 3)
    assert np.abs(new.params["head0.conf.weight"]).max() > 0 and not new.params["head0.conf.bias"].any()
    assert set(new.buffers) == set(old.buffers) and any("running_var" in name for name in new.buffers)
    for name, value in old.state_dict().items():  # the old model is untouched
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    loc, conf_out = new.forward(rng.standard_normal((1, 3, 32, 32), dtype=np.float32))
    assert conf_out.shape == (1, old.priors.shape[0], 6)


def test_with_new_classes_on_ssd300(ssd300):
    new = models.with_new_classes(ssd300, 21)
    assert new.info.class_names[1] == "aeroplane" and new.info.preset == ssd300.info.preset
    for name in ("conv1_1.weight", "fc7.bias", "conv4_3_norm.weight", "conv11_2.weight", "head5.loc.weight"):
        np.testing.assert_array_equal(new.params[name], ssd300.params[name], err_msg=name)
    assert new.params["head1.conf.weight"].shape == (6 * 21, 1024, 3, 3)
    np.testing.assert_array_equal(new.params["head1.conf.weight"], models.ssd300(21).params["head1.conf.weight"])


def test_with_new_classes_checks_its_arguments(rng):
    old = _tiny(rng)
    with pytest.raises(ValueError, match="num_classes counts the background too and must be >= 2; got 1"):
        models.with_new_classes(old, 1)
    with pytest.raises(ValueError, match=r"2 class names \(background included\) for num_classes=4"):
        models.with_new_classes(old, 4, ["only"])
