"""The SSD networks: parameter counts, the shape walk, the head / default-box order contract,
an end-to-end float64 gradient check of the tiny network, weights on disk, and bad input.

SSD300 and SSD512 are never run backward here (seconds each): their shapes are walked with an
empty batch (N = 0), which runs every layer's shape logic at no cost; SSD300 runs one real
forward at batch 1.
"""

import json
import os
import zipfile

import numpy as np
import pytest

from minissd import __version__, backend, models
from minissd.models import io as model_io
from minissd.models import SSD, ModelInfo, MultiBoxHead
from minissd.nn import Conv2d, L2Norm, Layer, MaxPool2d, ReLU, Sequential
from minissd.nn.gradcheck import assert_gradients_close
from minissd.priors import PriorConfig, default_boxes

# a 32 px preset for the tiny network's gradient check: maps 4, 2, 1, 1, 1 (stride-2 convs stop at 1)
GRAD_PRESET = PriorConfig(
    name="gradcheck-32", image_size=32, feature_maps=(4, 2, 1, 1, 1),
    min_sizes=(0.1, 0.2, 0.4, 0.6, 0.8), max_sizes=(0.2, 0.4, 0.6, 0.8, 1.0),
    aspect_ratios=((2,), (2,), (2,), (2,), (2,)), steps=(8, 16, 32, 32, 32),
)


def _conv(c, o, k, bias=True):
    return o * c * k * k + (o if bias else 0)


def _ssd300_count(num_classes):
    """SSD300's parameters layer by layer, from the architecture table (not from the code)."""
    vgg = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
           (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    count = sum(_conv(c, o, 3) for c, o in vgg)
    count += _conv(512, 1024, 3) + _conv(1024, 1024, 1)  # fc6 (dilated), fc7
    count += _conv(1024, 256, 1) + _conv(256, 512, 3)  # conv8
    count += _conv(512, 128, 1) + _conv(128, 256, 3)  # conv9
    count += 2 * (_conv(256, 128, 1) + _conv(128, 256, 3))  # conv10, conv11
    count += 512  # the L2Norm scale of conv4_3
    sources = [(512, 4), (1024, 6), (512, 6), (256, 6), (256, 4), (256, 4)]
    count += sum(_conv(c, b * 4, 3) + _conv(c, b * num_classes, 3) for c, b in sources)
    return count


def test_ssd300_has_torchvisions_parameter_count():
    model = models.ssd300(21)
    assert model.num_parameters == 26_285_486 == _ssd300_count(21)
    assert models.ssd300(81).num_parameters == _ssd300_count(81)
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert list(model.grads) == list(model.params)


def test_ssd512_and_tiny_parameter_counts():
    # SSD512 = SSD300 + conv12 (1x1 256->128, 4x4 128->256) + its 4-box head + 2 more boxes on conv10_2
    extra = _conv(256, 128, 1) + _conv(128, 256, 4) + _conv(256, 4 * 25, 3) + _conv(256, 2 * 25, 3)
    assert models.ssd512(21).num_parameters == 27_188_676 == _ssd300_count(21) + extra
    tiny = models.tiny_ssd(21)
    widths = (16, 32, 64, 64, 96, 96, 96, 96)
    trunk = sum(_conv(c, o, 3, bias=False) + 2 * o for c, o in zip((3,) + widths[:-1], widths))  # conv + BN
    heads = sum(_conv(c, 4 * 25, 3) for c in widths[3:])
    assert tiny.num_parameters == 769_284 == trunk + heads
    assert list(tiny.buffers)[:2] == ["bn1.running_mean", "bn1.running_var"]


def test_ssd300_forward_shapes_dtype_and_feature_maps(rng):
    model = models.ssd300(21)
    images = rng.standard_normal((1, 3, 300, 300), dtype=np.float32)
    loc, conf = model.forward(images)
    assert loc.shape == (1, 8732, 4) and conf.shape == (1, 8732, 21)
    assert loc.dtype == conf.dtype == np.float32
    assert np.isfinite(loc).all() and np.isfinite(conf).all() and loc.std() > 0
    assert [s[1:] for s in model.feature_shapes] == [
        (512, 38, 38), (1024, 19, 19), (512, 10, 10), (256, 5, 5), (256, 3, 3), (256, 1, 1)]
    assert model.priors.shape == (8732, 4)
    assert "26,285,486 parameters" in model.summary() and "map 5: 1 x 1 x 256" in model.summary()


@pytest.mark.parametrize("build, size, maps, count", [
    (models.ssd300, 300, (38, 19, 10, 5, 3, 1), 8732),
    (models.ssd512, 512, (64, 32, 16, 8, 4, 2, 1), 24564),
    (lambda n: models.tiny_ssd(n), 128, (16, 8, 4, 2, 1), 1364),
])
def test_shape_walk_with_an_empty_batch(build, size, maps, count):
    model = build(5).eval()  # BatchNorm's batch statistics need values; its running ones do not
    loc, conf = model.forward(np.zeros((0, 3, size, size), np.float32))
    assert loc.shape == (0, count, 4) and conf.shape == (0, count, 5)
    assert tuple(s[2] for s in model.feature_shapes) == maps
    assert model.priors.shape == (count, 4)
    model.backward(loc, conf)  # every layer's backward accepts the shapes its forward produced


class Planted(Layer):
    """A stand-in stage that ignores its input and returns a fixed feature map."""

    def __init__(self, feature_map):
        super().__init__()
        self.feature_map = feature_map

    def forward(self, x):
        return self.feature_map


@pytest.mark.parametrize("build", [models.ssd300, lambda n: models.tiny_ssd(n)], ids=["ssd300", "tiny"])
def test_planted_activation_lands_on_the_matching_default_box(build):
    """One active pixel at cell (y, x) of map k -> exactly the rows of that cell's default boxes."""
    num_classes = 3
    model = build(num_classes)
    config = model.prior_config
    channels = [head.params["loc.weight"].shape[1] for head in model.heads]
    for head in model.heads:  # only the centre tap of input channel 0, with output o weighted o + 1
        for kind, values in (("loc", 4), ("conf", num_classes)):
            weight = head.params[f"{kind}.weight"]
            weight[...] = 0
            weight[:, 0, 1, 1] = np.arange(1, weight.shape[0] + 1)
            head.params[f"{kind}.bias"][...] = 0
    model.norms = {}  # L2Norm would rescale the planted pixel; the order does not depend on it
    start = 0
    for k, (side, per_cell) in enumerate(zip(config.feature_maps, config.boxes_per_cell)):
        y, x = side - 1, 0  # off the diagonal: a transposed map lands elsewhere
        maps = [np.zeros((1, c, s, s), np.float32) for c, s in zip(channels, config.feature_maps)]
        maps[k][0, 0, y, x] = 1
        model.stages = [Planted(m) for m in maps]
        size = config.image_size
        loc, conf = model.forward(np.zeros((1, 3, size, size), np.float32))
        rows = start + (y * side + x) * per_cell + np.arange(per_cell)
        assert np.flatnonzero(np.abs(loc[0]).sum(axis=1)).tolist() == rows.tolist()
        assert np.flatnonzero(np.abs(conf[0]).sum(axis=1)).tolist() == rows.tolist()
        # head channel b*V + v is value v of box b
        np.testing.assert_array_equal(loc[0, rows], np.arange(1, 4 * per_cell + 1).reshape(per_cell, 4))
        np.testing.assert_array_equal(conf[0, rows], np.arange(1, num_classes * per_cell + 1).reshape(per_cell, -1))
        # and those rows are the default boxes of cell (y, x), in per-cell order [s_k, s'_k, 2, 1/2, ...]
        priors = model.priors[rows]
        step = config.steps[k] / size
        np.testing.assert_allclose(priors[:, :2], [[(x + 0.5) * step, (y + 0.5) * step]] * per_cell, atol=1e-6)
        np.testing.assert_allclose(priors[0, 2:], config.min_sizes[k], rtol=1e-6)
        assert priors[2, 2] > priors[2, 3] and priors[3, 2] < priors[3, 3]  # a = 2 wide, then 1/2 tall
        start += side * side * per_cell
    assert start == model.priors.shape[0]


def _gradcheck_model(rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2, 3, 2, 3, 2, 3, 2, 3), rng=rng)
    return model.astype(np.float64).train()


def test_tiny_network_gradient_check_end_to_end(rng):
    """Sampled entries of every parameter, BatchNorm in train mode, a random upstream gradient."""
    model = _gradcheck_model(rng)
    images = rng.standard_normal((4, 3, 32, 32))

    def backward(upstream):
        grad_loc, grad_conf = upstream
        model.zero_grad()
        model.backward(grad_loc, grad_conf)
        return dict(model.grads)

    errors = assert_gradients_close(lambda: model.forward(images), backward, model.params, rng,
                                    tolerance=1e-6, max_entries=3)
    assert set(errors) == set(model.params) and len(errors) == 44


def _miniature_ssd300(rng):
    """SSD300's wiring at toy size: L2Norm on map 0 (seen by its head only), a ceil-mode pool, pool5's
    3x3/1/1 window, a dilated conv, 1x1 convs, an unpadded 3x3 down to 1 x 1; maps 5, 3, 1."""
    config = PriorConfig(name="mini-ssd300", image_size=18, feature_maps=(5, 3, 1),
                         min_sizes=(0.2, 0.4, 0.7), max_sizes=(0.4, 0.7, 0.9),
                         aspect_ratios=((2,), (2, 3), (2,)), steps=(4, 6, 18))
    stage0 = Sequential(("conv1", Conv2d(3, 4, 3, padding=1, rng=rng)), ("relu1", ReLU(inplace=True)),
                        ("pool1", MaxPool2d(2, 2)),  # 18 -> 9
                        ("conv2", Conv2d(4, 5, 3, padding=1, rng=rng)), ("relu2", ReLU(inplace=True)),
                        ("pool2", MaxPool2d(2, 2, ceil_mode=True)))  # 9 -> 5
    stage1 = Sequential(("pool5", MaxPool2d(3, 1, padding=1)),
                        ("fc6", Conv2d(5, 6, 3, padding=2, dilation=2, rng=rng)), ("relu6", ReLU(inplace=True)),
                        ("fc7", Conv2d(6, 4, 1, rng=rng)), ("relu7", ReLU(inplace=True)),
                        ("conv8", Conv2d(4, 4, 3, stride=2, padding=1, rng=rng)), ("relu8", ReLU(inplace=True)))
    stage2 = Sequential(("conv9_1", Conv2d(4, 3, 1, rng=rng)), ("relu9_1", ReLU(inplace=True)),
                        ("conv9_2", Conv2d(3, 4, 3, rng=rng)), ("relu9_2", ReLU(inplace=True)))  # 3 -> 1
    heads = [MultiBoxHead(c, b, 3, rng) for c, b in zip((5, 4, 4), config.boxes_per_cell)]
    info = ModelInfo(arch="mini", num_classes=3, preset=config.name)
    model = SSD(info, [stage0, stage1, stage2], {0: L2Norm(5)}, heads, ["pool2", "conv8", "conv9_2"], config)
    for name, bias in model.params.items():  # biases away from 0 keep the ReLUs off their kink
        if name.endswith("bias"):
            bias[...] = rng.uniform(0.05, 0.2, bias.shape)
    model.params["pool2_norm.weight"][...] = rng.uniform(1, 3, 5)
    return model.astype(np.float64)


def test_miniature_ssd300_gradient_check_with_l2norm_and_image_gradient(rng):
    model = _miniature_ssd300(rng)
    images = rng.standard_normal((2, 3, 18, 18))
    loc, conf = model.forward(images)
    assert loc.shape == (2, 25 * 4 + 9 * 6 + 4, 4) and model.priors.shape[0] == loc.shape[1]

    def backward(upstream):
        model.zero_grad()
        return {"images": model.backward(*upstream), **model.grads}

    errors = assert_gradients_close(lambda: model.forward(images), backward, {"images": images, **model.params},
                                    rng, tolerance=1e-6, max_entries=4)
    assert "pool2_norm.weight" in errors and "images" in errors


def test_tiny_network_without_batch_norm_gradient_check(rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2,) * 8, batch_norm=False, rng=rng)
    model.astype(np.float64)
    for name, bias in model.params.items():  # zero biases would leave many ReLUs sitting on their kink
        if name.endswith("bias"):
            bias[...] = rng.uniform(0.1, 0.3, bias.shape)
    images = rng.standard_normal((2, 3, 32, 32))

    def backward(upstream):
        model.zero_grad()
        model.backward(*upstream)
        return dict(model.grads)

    assert_gradients_close(lambda: model.forward(images), backward, model.params, rng,
                           tolerance=1e-6, max_entries=3)


def test_backward_leaves_upstream_gradients_alone_and_accumulates(rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(4,) * 8, rng=rng)
    loc, conf = model.forward(rng.standard_normal((2, 3, 32, 32), dtype=np.float32))
    grad_loc = rng.standard_normal(loc.shape, dtype=np.float32)
    grad_conf = rng.standard_normal(conf.shape, dtype=np.float32)
    kept = grad_loc.copy(), grad_conf.copy()
    model.zero_grad()
    assert model.backward(grad_loc, grad_conf) is None  # the image needs no gradient
    np.testing.assert_array_equal(grad_loc, kept[0])
    np.testing.assert_array_equal(grad_conf, kept[1])
    once = {name: g.copy() for name, g in model.grads.items()}
    assert all(np.abs(g).sum() > 0 for g in once.values()), "every parameter gets a gradient"
    model.backward(grad_loc, grad_conf)
    for name, grad in model.grads.items():
        np.testing.assert_allclose(grad, 2 * once[name], rtol=1e-5, atol=1e-6, err_msg=name)
    model.zero_grad()
    assert not any(g.any() for g in model.grads.values())


def test_backward_errors(rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2,) * 8, rng=rng).eval()
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.zeros((1, 92, 4), np.float32), np.zeros((1, 92, 3), np.float32))
    loc, conf = model.forward(np.zeros((1, 3, 32, 32), np.float32))
    assert loc.shape == (1, 92, 4)
    with pytest.raises(ValueError, match=r"grad_loc must have shape \(1, 92, 4\); got \(1, 92, 5\)"):
        model.backward(np.zeros((1, 92, 5), np.float32), conf)
    with pytest.raises(ValueError, match=r"grad_conf must have shape \(1, 92, 3\); got \(2, 92, 3\)"):
        model.backward(loc, np.zeros((2, 92, 3), np.float32))


# -- weights on disk ------------------------------------------------------------------------------

def _trained_looking_tiny(rng):
    """A tiny model whose BN statistics are not at their initial values (so a lost buffer shows)."""
    model = models.tiny_ssd(4, class_names=["cat", "dog", "bird"], widths=(4,) * 8, seed=3)
    model.forward(rng.standard_normal((2, 3, 128, 128), dtype=np.float32))  # train mode: updates the running stats
    model.info.mean = (120.0, 115.0, 100.0)
    return model.eval()


def test_save_load_round_trip(tmp_path, rng):
    model = _trained_looking_tiny(rng)
    path = tmp_path / "tiny.npz"
    model.save(path, extra={"epoch": 7})
    loaded = models.load(path)
    images = rng.standard_normal((2, 3, 128, 128), dtype=np.float32)
    expected = model.forward(images)
    loaded.eval()
    for mine, theirs in zip(expected, loaded.forward(images)):
        np.testing.assert_array_equal(mine, theirs)
    assert list(loaded.params) == list(model.params) and list(loaded.buffers) == list(model.buffers)
    assert loaded.info == model.info
    _, meta = model_io.read_npz(path)
    assert meta["minissd_version"] == __version__ and meta["format"] == 1
    assert meta["arch"] == "tiny" and meta["preset"] == "tiny" and meta["num_classes"] == 4
    assert meta["class_names"] == ["background", "cat", "dog", "bird"]
    assert meta["mean"] == [120.0, 115.0, 100.0] and meta["extra"] == {"epoch": 7}
    assert not [p for p in os.listdir(tmp_path) if p != "tiny.npz"], "no temporary file left behind"


def test_an_unregistered_prior_config_travels_with_the_weights(tmp_path, rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2,) * 8, rng=rng)
    model.save(tmp_path / "custom.npz")
    loaded = models.load(tmp_path / "custom.npz")
    assert loaded.prior_config == GRAD_PRESET
    np.testing.assert_array_equal(loaded.priors, default_boxes(GRAD_PRESET))


def test_wrong_num_classes_names_the_parameter_and_both_shapes(tmp_path):
    models.tiny_ssd(4, widths=(4,) * 8).save(tmp_path / "four.npz")
    arrays, _ = model_io.read_npz(tmp_path / "four.npz")
    other = models.tiny_ssd(6, widths=(4,) * 8)
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"'head0.conf.weight' has shape \(16, 4, 3, 3\), but tiny with 6 "
                                         r"classes expects \(24, 4, 3, 3\)"):
        other.load_state_dict(arrays, source="four.npz")
    for name, value in other.state_dict().items():  # nothing changed: checked before copying
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    # the same mismatch inside one file: metadata says 6 classes, the arrays are for 4
    _, meta = model_io.read_npz(tmp_path / "four.npz")
    meta.update(num_classes=6, class_names=[])
    model_io.write_npz(tmp_path / "lying.npz", arrays, meta)
    with pytest.raises(ValueError, match=r"lying.npz: parameter 'head0.conf.weight' has shape \(16, 4, 3, 3\)"):
        models.load(tmp_path / "lying.npz")


def test_missing_and_unexpected_parameters_are_named(tmp_path):
    model = models.tiny_ssd(3, widths=(4,) * 8)
    state = model.state_dict()
    del state["conv3.weight"]
    state["conv9.weight"] = np.zeros((1,), np.float32)
    with pytest.raises(ValueError, match=r"missing \['conv3.weight'\], unexpected \['conv9.weight'\]"):
        model.load_state_dict(state)


def test_unreadable_files_say_what_is_wrong(tmp_path):
    good = tmp_path / "good.npz"
    models.tiny_ssd(3, widths=(2,) * 8).save(good)
    raw = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.npz").write_bytes(b"not weights at all\n" * 10)
    np.save(tmp_path / "array.npy", np.zeros(3))
    damaged = bytearray(raw)
    with zipfile.ZipFile(good) as archive:  # flip bytes inside the first member's data
        info = archive.infolist()[0]
    offset = info.header_offset + 30 + len(info.filename) + 64
    damaged[offset : offset + 8] = bytes(b ^ 0xFF for b in damaged[offset : offset + 8])
    (tmp_path / "damaged.npz").write_bytes(bytes(damaged))
    np.savez(tmp_path / "plain.npz", weight=np.zeros(3))
    for name in ("truncated.npz", "text.npz", "array.npy", "damaged.npz"):
        with pytest.raises(ValueError, match=f"{name} is not a readable .npz file"):
            models.load(tmp_path / name)
    with pytest.raises(ValueError, match="plain.npz is not a minissd weights file"):
        models.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError, match="weights file not found: .*missing.npz"):
        models.load(tmp_path / "missing.npz")
    assert good.read_bytes() == raw


@pytest.mark.parametrize("change, message", [
    (dict(arch="resnet"), "unknown architecture 'resnet'"),
    (dict(preset="nope", prior_config=None), "unknown default-box preset 'nope'"),
    (dict(format=99), "format 99 is newer"),
])
def test_bad_metadata_is_named(tmp_path, change, message):
    arrays = models.tiny_ssd(3, widths=(2,) * 8).state_dict()
    meta = model_io.model_meta(models.tiny_ssd(3, widths=(2,) * 8))
    meta.update(change)
    meta = {k: v for k, v in meta.items() if v is not None}
    model_io.write_npz(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ValueError, match=message):
        models.load(tmp_path / "bad.npz")


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.npz"
    models.tiny_ssd(3, widths=(2,) * 8).save(path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        model_io.write_npz(path, {"weight": np.zeros(2)}, {"not json": object()})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    assert json.loads(bytes(np.load(path)[model_io.META_KEY]))["arch"] == "tiny"


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("images, message", [
    (np.zeros((3, 32, 32), np.float32), r"expects images of shape \(N, 3, 32, 32\) .*got \(3, 32, 32\)"),
    (np.zeros((1, 1, 32, 32), np.float32), r"expects images of shape \(N, 3, 32, 32\) .*got \(1, 1, 32, 32\)"),
    (np.zeros((1, 32, 32, 3), np.float32), r"expects images of shape \(N, 3, 32, 32\) .*got \(1, 32, 32, 3\)"),
    (np.zeros((2, 3, 30, 30), np.float32), r"expects images of shape \(N, 3, 32, 32\) .*got \(2, 3, 30, 30\)"),
    ([[1.0, 2.0]], r"expects images of shape \(N, 3, 32, 32\) .*got list"),
    (np.zeros((1, 3, 32, 32), np.uint8), r"expects float32 images \(N, 3, 32, 32\); got dtype uint8"),
    (np.zeros((1, 3, 32, 32), np.float64), "images are float64 but the model's weights are float32"),
])
def test_bad_images_name_the_expected_shape(images, message):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2,) * 8)
    with pytest.raises(ValueError, match=message):
        model.forward(images)


def test_ssd300_names_its_input_size():
    with pytest.raises(ValueError, match=r"ssd300 expects images of shape \(N, 3, 300, 300\)"):
        models.ssd300().forward(np.zeros((1, 3, 512, 512), np.float32))


@pytest.mark.gpu
@pytest.mark.skipif(not backend.gpu_available(), reason=backend.gpu_unavailable_reason() or "")
def test_images_on_the_wrong_device_are_an_error():
    cupy = backend.cupy_module()
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(2,) * 8)
    with pytest.raises(backend.DeviceMismatchError, match="images are on the gpu but the model is on the cpu"):
        model.forward(cupy.zeros((1, 3, 32, 32), cupy.float32))
    model.to("gpu")
    with pytest.raises(backend.DeviceMismatchError, match="images are on the cpu but the model is on the gpu"):
        model.forward(np.zeros((1, 3, 32, 32), np.float32))
    loc, conf = model.forward(cupy.zeros((1, 3, 32, 32), cupy.float32))
    assert backend.device_of(loc) == "gpu" and backend.device_of(model.priors) == "gpu"


def test_gpu_forward_matches_cpu(xp, rng):
    model = models.tiny_ssd(3, preset=GRAD_PRESET, widths=(4,) * 8, rng=rng).eval()
    images = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    expected = model.forward(images)
    if xp is not np:
        model.to("gpu")
    for mine, ref in zip(model.forward(xp.asarray(images)), expected):
        np.testing.assert_allclose(backend.to_numpy(mine), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("build, message", [
    (lambda: models.ssd300(1), "num_classes counts the background too and must be >= 2; got 1"),
    (lambda: models.ssd300(2.5), "must be >= 2; got 2.5"),
    (lambda: models.ssd300(preset="tiny"), "ssd300 needs a preset for 300 px with 6 feature maps; 'tiny' is 128 px"),
    (lambda: models.ssd512(preset="ssd300-voc"), "ssd512 needs a preset for 512 px with 7 feature maps"),
    (lambda: models.tiny_ssd(3, widths=(4,) * 7), "tiny_ssd needs 8 positive conv widths"),
    (lambda: models.tiny_ssd(3, preset="ssd300-voc"), r"tiny_ssd makes maps \(37, 19, 10, 5, 3\) from 300 px"),
    (lambda: models.tiny_ssd(3, class_names=["a", "b", "c"]), "4 class names .*for num_classes=3"),
    (lambda: models.ssd300(preset="nope"), "unknown default-box preset 'nope'"),
])
def test_bad_construction_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("frozen_stages", [1, 2])
def test_a_frozen_backbone_is_skipped_by_the_backward_and_the_rest_is_exact(frozen_stages):
    """Freezing the leading stages changes no trained parameter's gradient; it only skips work."""
    from minissd.models import tiny_ssd

    model = tiny_ssd(3, widths=(4, 6, 8, 8, 8, 8, 8, 8), seed=2).astype(np.float64)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 128, 128))
    frozen = [name for stage in model.stages[:frozen_stages] for name in stage.params]
    grads = {}
    for names in ((), frozen):
        model.freeze(names)
        model.zero_grad()
        loc, conf = model.forward(images)
        out_rng = np.random.default_rng(1)
        model.backward(out_rng.standard_normal(loc.shape), out_rng.standard_normal(conf.shape))
        grads[bool(names)] = {name: g.copy() for name, g in model.grads.items()}
    assert model.first_trained_stage() == frozen_stages
    for name in model.params:
        if name in frozen:
            assert not grads[True][name].any(), name  # never computed
        else:
            np.testing.assert_array_equal(grads[True][name], grads[False][name], err_msg=name)
    with pytest.raises(ValueError, match=r"freeze: the model has no parameters \['nope'\]"):
        model.freeze(["nope"])
