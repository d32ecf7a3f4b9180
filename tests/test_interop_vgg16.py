"""ImageNet VGG16 as SSD's backbone: fc6/fc7 subsampling against loops, both file layouts, the
backbone file, and (where PyTorch is installed) equal activations against PyTorch's VGG16."""

import importlib.util

import numpy as np
import pytest

from minissd import interop, models
from minissd.interop import vgg16

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_TORCHVISION = HAS_TORCH and importlib.util.find_spec("torchvision") is not None
CONVS = vgg16.VGG16_CONVS
IMAGENET_STD = np.array(vgg16.IMAGENET_STD, np.float32)


def _random_convs(rng, key):
    """conv1_1 ... conv5_3 under ``key(index)``, random weights and biases of VGG16's shapes."""
    state = {}
    for name, index in zip(CONVS, vgg16.FEATURE_INDICES):
        shape = models.VGG16_BACKBONE_SHAPES[f"{name}.weight"]
        state[f"{key(index)}.weight"] = rng.standard_normal(shape, dtype=np.float32)
        state[f"{key(index)}.bias"] = rng.standard_normal(shape[:1], dtype=np.float32)
    return state


@pytest.fixture(scope="module")
def torchvision_state():
    """A random torchvision vgg16 classifier state dict, every tensor at its real shape (~1.5 s)."""
    rng = np.random.default_rng(1)
    state = _random_convs(rng, lambda i: f"features.{i}")
    for module, shape in (("classifier.0", (4096, 25088)), ("classifier.3", (4096, 4096)), ("classifier.6", (1000, 4096))):
        state[f"{module}.weight"] = rng.standard_normal(shape, dtype=np.float32)
        state[f"{module}.bias"] = rng.standard_normal(shape[:1], dtype=np.float32)
    return state


@pytest.fixture(scope="module")
def reducedfc_state():
    """A random ssd.pytorch vgg16_reducedfc state dict: keys 0 ... 28, 31, 33."""
    rng = np.random.default_rng(2)
    state = _random_convs(rng, str)
    state["31.weight"] = rng.standard_normal((1024, 512, 3, 3), dtype=np.float32)
    state["31.bias"] = rng.standard_normal(1024, dtype=np.float32)
    state["33.weight"] = rng.standard_normal((1024, 1024, 1, 1), dtype=np.float32)
    state["33.bias"] = rng.standard_normal(1024, dtype=np.float32)
    return state


# -- subsampling ------------------------------------------------------------------------------------

def test_subsample_fc6_equals_the_loop_and_picks_outputs_0_4_8_and_taps_0_3_6(rng):
    channels, side = 5, 7
    weight = rng.standard_normal((16, channels * side * side), dtype=np.float32)
    bias = rng.standard_normal(16, dtype=np.float32)
    fast_w, fast_b = interop.subsample_fc6(weight, bias, channels=channels)
    loop_w, loop_b = interop.subsample_fc6_reference(weight, bias, channels=channels)
    assert fast_w.shape == (4, channels, 3, 3) and fast_w.flags.c_contiguous
    np.testing.assert_array_equal(fast_w, loop_w)
    np.testing.assert_array_equal(fast_b, loop_b)
    # by hand: output 2 is row 8; tap (2, 1) is pixel (y, x) = (6, 3) of channel 4 -> column 4*49 + 6*7 + 3
    assert fast_w[2, 4, 2, 1] == weight[8, 4 * 49 + 45]
    np.testing.assert_array_equal(fast_b, bias[[0, 4, 8, 12]])


def test_subsample_fc7_equals_the_loop(rng):
    weight = rng.standard_normal((12, 20), dtype=np.float32)
    bias = rng.standard_normal(12, dtype=np.float32)
    fast_w, fast_b = interop.subsample_fc7(weight, bias)
    loop_w, loop_b = interop.subsample_fc7_reference(weight, bias)
    assert fast_w.shape == (3, 5, 1, 1)
    np.testing.assert_array_equal(fast_w, loop_w)
    np.testing.assert_array_equal(fast_b, loop_b)
    assert fast_w[2, 3, 0, 0] == weight[8, 12]


def test_subsampling_rejects_wrong_shapes(rng):
    with pytest.raises(ValueError, match=r"subsample_fc6: weight must be \(O, 512\*7\*7\).*got \(8, 100\)"):
        interop.subsample_fc6(np.zeros((8, 100), np.float32), np.zeros(8, np.float32))
    with pytest.raises(ValueError, match=r"subsample_fc7: .*got \(8, 4\) and \(3,\)"):
        interop.subsample_fc7(np.zeros((8, 4), np.float32), np.zeros(3, np.float32))


# -- the two layouts ---------------------------------------------------------------------------------

def test_name_tables_follow_both_sequentials():
    tv = interop.torchvision_vgg16_names()
    assert tv["conv1_1"] == "features.0" and tv["conv3_3"] == "features.14" and tv["conv5_3"] == "features.28"
    assert tv["fc6"] == "classifier.0" and tv["fc7"] == "classifier.3"
    fc = interop.reducedfc_names()
    assert fc["conv4_3"] == "21" and fc["conv5_1"] == "24" and fc["fc6"] == "31" and fc["fc7"] == "33"
    assert list(tv) == list(fc) == list(models.VGG16_BACKBONE_LAYERS)


def test_torchvision_classifier_to_backbone(torchvision_state):
    state = interop.backbone_state_from_vgg16(torchvision_state, adapt_input=False)
    assert list(state) == list(models.VGG16_BACKBONE_SHAPES)
    assert {name: a.shape for name, a in state.items()} == models.VGG16_BACKBONE_SHAPES
    assert all(a.dtype == np.float32 for a in state.values())
    for name, index in zip(CONVS, vgg16.FEATURE_INDICES):
        np.testing.assert_array_equal(state[f"{name}.weight"], torchvision_state[f"features.{index}.weight"])
        np.testing.assert_array_equal(state[f"{name}.bias"], torchvision_state[f"features.{index}.bias"])
    fc6 = interop.subsample_fc6_reference(torchvision_state["classifier.0.weight"], torchvision_state["classifier.0.bias"])
    fc7 = interop.subsample_fc7_reference(torchvision_state["classifier.3.weight"], torchvision_state["classifier.3.bias"])
    for (weight, bias), layer in ((fc6, "fc6"), (fc7, "fc7")):
        np.testing.assert_array_equal(state[f"{layer}.weight"], weight)
        np.testing.assert_array_equal(state[f"{layer}.bias"], bias)

    adapted = interop.backbone_state_from_vgg16(torchvision_state)  # conv1_1 reads 0-255 minus the mean
    for c in range(3):
        np.testing.assert_allclose(adapted["conv1_1.weight"][:, c], state["conv1_1.weight"][:, c] / (255 * IMAGENET_STD[c]),
                                   rtol=1e-6)
    for name in list(models.VGG16_BACKBONE_SHAPES)[1:]:
        np.testing.assert_array_equal(adapted[name], state[name], err_msg=name)


def test_reducedfc_to_backbone(reducedfc_state):
    state = interop.backbone_state_from_vgg16(reducedfc_state, adapt_input=False)
    assert list(state) == list(models.VGG16_BACKBONE_SHAPES)
    for ours, theirs in interop.reducedfc_names().items():
        np.testing.assert_array_equal(state[f"{ours}.weight"], reducedfc_state[f"{theirs}.weight"])
        np.testing.assert_array_equal(state[f"{ours}.bias"], reducedfc_state[f"{theirs}.bias"])
    adapted = interop.backbone_state_from_vgg16(reducedfc_state)  # Caffe's BGR conv1_1 made to read RGB
    np.testing.assert_array_equal(adapted["conv1_1.weight"][:, 0], state["conv1_1.weight"][:, 2])
    np.testing.assert_array_equal(adapted["conv1_1.weight"][:, 2], state["conv1_1.weight"][:, 0])
    np.testing.assert_array_equal(adapted["conv1_1.weight"][:, 1], state["conv1_1.weight"][:, 1])


def test_wrapped_and_prefixed_state_dicts_are_recognised(reducedfc_state):
    wrapped = {"model": {f"module.{k}": v for k, v in reducedfc_state.items()}, "epoch": 9}
    assert interop.identify_checkpoint(wrapped) == interop.REDUCEDFC_VGG16
    state = interop.backbone_state_from_vgg16(wrapped, adapt_input=False)
    np.testing.assert_array_equal(state["fc7.weight"], reducedfc_state["33.weight"])


@pytest.mark.parametrize("arch", ["ssd300", "ssd512"])
def test_the_backbone_loads_into_ssd300_and_ssd512(reducedfc_state, arch):
    model = getattr(models, arch)(5, seed=3)
    before = model.state_dict()
    state = interop.backbone_state_from_vgg16(reducedfc_state)
    loaded = models.load_backbone(model, state)
    assert loaded == list(models.VGG16_BACKBONE_SHAPES)
    for name, value in model.params.items():
        np.testing.assert_array_equal(value, state[name] if name in state else before[name], err_msg=name)


def test_bad_vgg16_state_dicts_are_named(torchvision_state, reducedfc_state):
    missing = {k: v for k, v in reducedfc_state.items() if k != "31.bias"}
    with pytest.raises(ValueError, match=r"not a complete ssd.pytorch vgg16_reducedfc state dict: missing \['31.bias'\]"):
        interop.backbone_state_from_vgg16(missing)
    wrong = {**reducedfc_state, "33.weight": np.zeros((1024, 512, 1, 1), np.float32)}
    with pytest.raises(ValueError, match=r"33 gives fc7.weight of shape \(1024, 512, 1, 1\); VGG16 needs \(1024, 1024, 1, 1\)"):
        interop.backbone_state_from_vgg16(wrong)
    small = {**torchvision_state, "classifier.0.weight": np.zeros((4096, 9216), np.float32)}
    with pytest.raises(ValueError, match=r"classifier.0 \(fc6\): subsample_fc6: weight must be \(O, 512\*7\*7\)"):
        interop.backbone_state_from_vgg16(small)
    nan = dict(torchvision_state)
    nan["classifier.0.weight"] = np.full((4096, 25088), np.nan, np.float32)  # as torchvision's IMAGENET1K_FEATURES
    with pytest.raises(ValueError, match=r"classifier.0.weight has 102760448 non-finite values: .*IMAGENET1K_FEATURES"):
        interop.backbone_state_from_vgg16(nan)
    broken = {**reducedfc_state, "0.bias": np.array([np.inf] + [0.0] * 63, np.float32)}
    with pytest.raises(ValueError, match=r"parameter 'conv1_1.bias' has 1 non-finite values \(inf\)"):
        interop.backbone_state_from_vgg16(broken)
    integers = {**reducedfc_state, "2.bias": np.zeros(64, np.int64)}
    with pytest.raises(TypeError, match=r"vgg16 tensor '2.bias' has dtype int64; expected floating point"):
        interop.backbone_state_from_vgg16(integers)
    batch_norm = {**torchvision_state, "features.1.running_mean": np.zeros(64, np.float32)}
    with pytest.raises(ValueError, match="vgg16_bn"):
        interop.identify_checkpoint(batch_norm)


# -- the converter and the backbone file -------------------------------------------------------------

def test_reducedfc_npz_converts_to_a_backbone_file(tmp_path, reducedfc_state, capsys):
    source = tmp_path / "vgg16_reducedfc.npz"
    np.savez(source, **reducedfc_state)
    output = tmp_path / "backbone.npz"
    report = interop.convert_checkpoint(source, output)
    assert (report.recognised, report.written, report.arch) == ("reducedfc-vgg16", "backbone", "vgg16")
    assert report.layers == list(models.VGG16_BACKBONE_LAYERS) and report.num_classes is None
    assert "pass it to `minissd train --backbone`" in report.summary()

    state, meta = models.load_backbone_file(output)
    assert meta["kind"] == "backbone" and meta["arch"] == "vgg16"
    assert meta["source"] == "ssd.pytorch vgg16_reducedfc" and meta["layers"] == list(models.VGG16_BACKBONE_LAYERS)
    assert meta["mean"] == [123.0, 117.0, 104.0]
    assert meta["extra"]["checkpoint"] == "vgg16_reducedfc.npz" and "reversed" in meta["extra"]["input"]
    expected = interop.backbone_state_from_vgg16(reducedfc_state)
    for name, value in expected.items():
        np.testing.assert_array_equal(state[name], value, err_msg=name)

    with pytest.raises(ValueError, match=r"backbone.npz is a VGG16 backbone file \(conv1_1 ... fc7 only\), "
                                         r"not a whole model: pass it to `minissd train --backbone`"):
        models.load(output)
    with pytest.raises(ValueError, match="a backbone has no classes"):
        interop.convert_checkpoint(source, tmp_path / "other.npz", num_classes=21)
    assert not (tmp_path / "other.npz").exists()

    assert interop.main([str(source), "-o", str(tmp_path / "cli.npz")]) == 0
    assert "recognised reducedfc-vgg16" in capsys.readouterr().out
    assert models.load_backbone_file(tmp_path / "cli.npz")[1]["source"] == "ssd.pytorch vgg16_reducedfc"


def test_torchvision_classifier_converts_to_a_backbone_file(tmp_path, torchvision_state, monkeypatch):
    """The layout only: reading files is tested above; a 550 MB .npz would cost seconds here."""
    monkeypatch.setattr(interop.convert, "read_checkpoint", lambda path: torchvision_state)
    report = interop.convert_checkpoint(tmp_path / "vgg16-397923af.pth", tmp_path / "backbone.npz")
    assert report.recognised == "torchvision-vgg16" and report.written == "backbone"
    state, meta = models.load_backbone_file(tmp_path / "backbone.npz")
    assert meta["source"] == "torchvision vgg16 (ImageNet)" and meta["mean"] == [123.675, 116.28, 103.53]
    assert "subsampled" in meta["extra"]["fc6_fc7"]
    np.testing.assert_array_equal(state["fc6.weight"], interop.backbone_state_from_vgg16(torchvision_state)["fc6.weight"])


def test_backbone_files_are_checked_when_read(tmp_path, reducedfc_state):
    state = interop.backbone_state_from_vgg16(reducedfc_state)
    path = tmp_path / "backbone.npz"
    meta = models.save_backbone_file(path, state, source="test", mean=(1, 2, 3))
    model_io = models.io
    for change, message in (
        (dict(layers=["conv1_1"]), r"metadata field 'layers' is \['conv1_1'\]"),
        (dict(arch="resnet50"), "metadata field 'arch' is 'resnet50', expected 'vgg16'"),
        (dict(mean=[1, 2]), r"metadata field 'mean' is \[1, 2\], expected a list of 3 finite numbers"),
    ):
        model_io.write_npz(tmp_path / "bad.npz", state, {**meta, **change})
        with pytest.raises(ValueError, match=message):
            models.load_backbone_file(tmp_path / "bad.npz")
    nan = {**state, "fc7.bias": np.full(1024, np.nan, np.float32)}
    model_io.write_npz(tmp_path / "nan.npz", nan, meta)
    with pytest.raises(ValueError, match=r"nan.npz: parameter 'fc7.bias' has 1024 non-finite values \(nan\)"):
        models.load_backbone_file(tmp_path / "nan.npz")
    short = {k: v for k, v in state.items() if k != "fc6.bias"}
    model_io.write_npz(tmp_path / "short.npz", short, meta)
    with pytest.raises(ValueError, match=r"short.npz: not a VGG16 backbone .*missing \['fc6.bias'\]"):
        models.load_backbone_file(tmp_path / "short.npz")
    models.tiny_ssd(3, widths=(2,) * 8).save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="model.npz is a whole tiny model with 3 classes, not a backbone file"):
        models.load_backbone_file(tmp_path / "model.npz")


# -- against PyTorch ---------------------------------------------------------------------------------

def _minissd_until(model, images, last: str):
    """Run an ssd300's VGG stages on ``images`` up to and including layer ``last`` of stage 1."""
    x = model.stages[0].forward(images)  # conv1_1 ... relu4_3
    for name, layer in model.stages[1].layers.items():
        x = layer.forward(x)
        if name == last:
            return x
    raise KeyError(last)


def _randomise(torch, module):
    """Kaiming weights and non-zero biases, so that a bias copied wrongly shows."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d):
                fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
                layer.weight.normal_(0, (2 / fan_out) ** 0.5, generator=generator)
                layer.bias.uniform_(-0.1, 0.1, generator=generator)


def _torch_vgg16_features(torch):
    """torchvision's ``vgg16().features[:30]`` (conv1_1 ... relu5_3) and the whole state dict.

    Where torchvision is not installed: an equivalent ``torch.nn.Sequential`` with the same
    indices (convs at 0, 2, 5, ..., 28, ReLU after each, 2x2 max pools at 4, 9, 16, 23), under the
    same "features." names, plus random NumPy classifier layers.
    """
    nn = torch.nn
    if HAS_TORCHVISION:
        import torchvision

        network = torchvision.models.vgg16(weights=None)
        features = network.features[:30]
        _randomise(torch, features)
        return features.eval(), network.state_dict()
    layers, channels = [], 3
    for width in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]:
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    features = nn.Sequential(*layers)
    _randomise(torch, features)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    rng = np.random.default_rng(0)
    for module, shape in (("classifier.0", (4096, 25088)), ("classifier.3", (4096, 4096))):
        state[f"{module}.weight"] = np.zeros(shape, np.float32) + 0.01  # values do not matter before fc6
        state[f"{module}.bias"] = rng.standard_normal(shape[:1], dtype=np.float32)
    return features.eval(), state


def _close(mine, theirs):
    """float32 through 13 convolutions: equal to within 1e-4 of the largest activation."""
    theirs = theirs.detach().numpy()
    assert mine.shape == theirs.shape
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    assert np.abs(theirs).max() > 0


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is optional")
@pytest.mark.parametrize("side", [64, pytest.param(224, marks=pytest.mark.slow)])
def test_conv5_3_activations_equal_pytorch_vgg16(side):
    """conv1_1 ... relu5_3 equal torchvision's vgg16().features[:30] (or the same Sequential).

    SSD's pool3 is in ceil mode, torchvision's is not; at 64 and 224 px pool3 sees an even map
    (16, 56), where both modes agree. The pools after conv5_3 differ (SSD's pool5 is 3x3/1), so
    the comparison stops at relu5_3.
    """
    import torch

    features, state = _torch_vgg16_features(torch)
    model = models.ssd300(21).eval()
    normalised = np.random.default_rng(0).standard_normal((1, 3, side, side), dtype=np.float32)
    with torch.no_grad():
        expected = features(torch.from_numpy(normalised))

    models.load_backbone(model, interop.backbone_state_from_vgg16(state, adapt_input=False))
    _close(_minissd_until(model, normalised, "relu5_3"), expected)  # conv1_1 as stored: the same input

    models.load_backbone(model, interop.backbone_state_from_vgg16(state))
    pixels = normalised * (255 * IMAGENET_STD)[None, :, None, None]  # the same image as 0-255 minus the mean
    _close(_minissd_until(model, pixels.astype(np.float32), "relu5_3"), expected)


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is optional")
def test_fc7_activations_equal_ssd_pytorchs_reducedfc_network(tmp_path):
    """The whole reduced VGG (through relu7, dilated fc6 included) against ssd.pytorch's ``vgg()``
    layers rebuilt in torch.nn (pool3 ceil mode at 'C', pool5 3x3/1/1 at 30, fc6 at 31, fc7 at 33),
    read from a real .pth. 150 px makes pool3 see 75 x 75, where ceil mode matters (-> 38)."""
    import torch

    nn = torch.nn
    layers, channels = [], 3
    for width in [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512]:
        if width in ("M", "C"):
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=width == "C"))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    layers += [nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
    network = nn.Sequential(*layers)
    assert isinstance(network[30], nn.MaxPool2d) and network[31].dilation == (6, 6) and len(network) == 35
    _randomise(torch, network)
    checkpoint = tmp_path / "vgg16_reducedfc.pth"
    torch.save(network.state_dict(), checkpoint)
    state = interop.read_checkpoint(checkpoint)
    assert interop.identify_checkpoint(state) == "reducedfc-vgg16"

    model = models.ssd300(21).eval()
    rgb = np.random.default_rng(0).uniform(-120, 130, (1, 3, 150, 150)).astype(np.float32)
    models.load_backbone(model, interop.backbone_state_from_vgg16(state))
    with torch.no_grad():
        expected = network.eval()(torch.from_numpy(np.ascontiguousarray(rgb[:, ::-1])))  # Caffe's network reads BGR
    _close(_minissd_until(model, rgb, "relu7"), expected)
