"""The same code on CuPy gives NumPy's results: networks, loss and gradients, matching, detections.

These tests need CuPy and a CUDA GPU and skip cleanly elsewhere. Run them on a GPU machine with

    PYTHONPATH=. MINISSD_DEVICE=gpu python -m pytest -q tests/test_gpu_parity.py

Float32 results differ between OpenBLAS and cuBLAS only in the order of the sums, so networks
are compared relative to the largest magnitude of each output (``assert_close_to_scale``);
comparisons whose decisions hinge on exact float ties (hard negative ranking, NMS order) run in
float64, where a tie within rounding is as good as impossible. CUPY_TF32=1 would make every
float32 product TF32 (10-bit mantissa inputs): the module skips itself then.
"""

import os

import numpy as np
import pytest

from minissd import backend, models
from minissd.bench import random_targets
from minissd.loss import multibox_loss
from minissd.matching import match
from minissd.matching_batched import match_batch_device, pad_ground_truth
from minissd.nms import postprocess
from minissd.nms_batched import postprocess_batched, postprocess_padded
from minissd.nn import SGD

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not backend.gpu_available(), reason=backend.gpu_unavailable_reason() or ""),
    pytest.mark.skipif(os.environ.get("CUPY_TF32", "0") not in ("", "0"),
                       reason="CUPY_TF32 is on: float32 products are TF32, the tolerances here are for fp32"),
]


def cupy():
    return backend.cupy_module()


def assert_close_to_scale(gpu_array, cpu_array, relative=1e-4, what=""):
    """max |gpu - cpu| <= relative * max |cpu| (plus a floor for all-zero arrays)."""
    got, want = backend.to_numpy(gpu_array), np.asarray(cpu_array)
    assert got.shape == want.shape and got.dtype == want.dtype, what
    scale = float(np.abs(want).max()) if want.size else 0.0
    error = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
    assert error <= relative * scale + 1e-7, f"{what}: max error {error:.3g} against scale {scale:.3g}"


def twin_models(build):
    """The same network twice (same seed), one on the CPU and one on the GPU."""
    cpu_model, gpu_model = build(), build().to("gpu")
    for name, param in cpu_model.params.items():
        np.testing.assert_array_equal(backend.to_numpy(gpu_model.params[name]), param, err_msg=name)
    return cpu_model, gpu_model


def tiny():
    return models.tiny_ssd(21, widths=(8, 8, 16, 16, 16, 16, 16, 16), seed=3)


# --------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------

@pytest.mark.parametrize("training", [False, True])
def test_tiny_forward_on_the_same_weights(rng, training):
    cpu_model, gpu_model = twin_models(tiny)
    images = rng.standard_normal((3, 3, 128, 128), dtype=np.float32)
    cpu_model.train(training), gpu_model.train(training)  # train: BatchNorm uses the batch statistics
    loc, conf = cpu_model.forward(images)
    loc_gpu, conf_gpu = gpu_model.forward(cupy().asarray(images))
    assert_close_to_scale(loc_gpu, loc, what="loc")
    assert_close_to_scale(conf_gpu, conf, what="conf")
    if training:
        for name, buffer in cpu_model.buffers.items():  # running statistics updated alike
            assert_close_to_scale(gpu_model.buffers[name], buffer, what=name)


def test_ssd300_forward_on_the_same_weights(rng):
    cpu_model, gpu_model = twin_models(lambda: models.ssd300(21))
    images = rng.standard_normal((2, 3, 300, 300), dtype=np.float32)
    cpu_model.eval(), gpu_model.eval()
    loc, conf = cpu_model.forward(images)
    loc_gpu, conf_gpu = gpu_model.forward(cupy().asarray(images))
    assert loc_gpu.shape == (2, 8732, 4) and conf_gpu.shape == (2, 8732, 21)
    assert_close_to_scale(loc_gpu, loc, what="ssd300 loc")
    assert_close_to_scale(conf_gpu, conf, what="ssd300 conf")


# --------------------------------------------------------------------------
# matching, loss and gradients
# --------------------------------------------------------------------------

def padded_targets(rng, batch, num_classes=21):
    targets = random_targets(batch, rng, num_classes=num_classes)
    targets[1] = (targets[1][0][:0], targets[1][1][:0])  # an image without objects
    return targets, pad_ground_truth(*zip(*targets))


def test_batched_matching_on_the_gpu_equals_match_on_the_cpu(rng):
    priors = models.ssd300(21).priors  # (8732, 4) float32
    targets, padded = padded_targets(rng, 6)
    loc_gpu, conf_gpu = match_batch_device(*(cupy().asarray(a) for a in padded), cupy().asarray(priors))
    loc_cpu, conf_cpu = match([b for b, _ in targets], [l for _, l in targets], priors)
    # float32 IoU is built from exactly rounded operations on both devices: the same matches
    np.testing.assert_array_equal(backend.to_numpy(conf_gpu), conf_cpu)
    np.testing.assert_allclose(backend.to_numpy(loc_gpu), loc_cpu, rtol=1e-5, atol=1e-5)  # log() may differ in the last bit
    loop_gpu = match([cupy().asarray(b) for b, _ in targets], [cupy().asarray(l) for _, l in targets],
                     cupy().asarray(priors))
    np.testing.assert_array_equal(backend.to_numpy(conf_gpu), backend.to_numpy(loop_gpu[1]))


def test_multibox_loss_and_its_gradients_in_float64(rng):
    num_priors = 1364
    loc = rng.standard_normal((4, num_priors, 4))
    conf = rng.standard_normal((4, num_priors, 21))
    priors = models.tiny_ssd(21).priors.astype(np.float64)
    targets, padded = padded_targets(rng, 4)
    loc_t, conf_t = match([b.astype(np.float64) for b, _ in targets], [l for _, l in targets], priors)
    cpu = multibox_loss(loc, conf, loc_t, conf_t)
    gpu = multibox_loss(*(cupy().asarray(a) for a in (loc, conf, loc_t, conf_t)))
    np.testing.assert_array_equal(backend.to_numpy(gpu.positive_mask), cpu.positive_mask)
    np.testing.assert_array_equal(backend.to_numpy(gpu.negative_mask), cpu.negative_mask)  # same hard negatives
    for part in ("loss", "loc_loss", "conf_loss", "grad_loc", "grad_conf"):
        np.testing.assert_allclose(backend.to_numpy(getattr(gpu, part)), getattr(cpu, part), rtol=1e-10,
                                   atol=1e-12, err_msg=part)


def test_network_gradients_on_the_same_upstream_gradient(rng):
    cpu_model, gpu_model = twin_models(tiny)
    images = rng.standard_normal((3, 3, 128, 128), dtype=np.float32)
    for model, xp in ((cpu_model, np), (gpu_model, cupy())):
        model.train()
        model.zero_grad()
        loc, conf = model.forward(xp.asarray(images))
        if xp is np:
            targets, padded = padded_targets(rng, 3)
            loc_t, conf_t = match([b for b, _ in targets], [l for _, l in targets], model.priors)
            upstream = multibox_loss(loc, conf, loc_t, conf_t)  # computed once, on the CPU
        model.backward(xp.asarray(upstream.grad_loc), xp.asarray(upstream.grad_conf))
    for name, grad in cpu_model.grads.items():
        assert_close_to_scale(gpu_model.grads[name], grad, relative=1e-3, what=f"grad {name}")


# --------------------------------------------------------------------------
# detections
# --------------------------------------------------------------------------

def random_outputs(rng, batch, num_priors, num_classes, dtype):
    loc = (rng.standard_normal((batch, num_priors, 4)) * 0.5).astype(dtype)
    conf = rng.standard_normal((batch, num_priors, num_classes)).astype(dtype)
    conf[-1, :, 0] += 9  # the last image: background nearly everywhere
    return loc, conf


def test_detections_on_the_gpu_equal_the_cpu_in_float64(rng):
    priors = models.ssd300(21).priors.astype(np.float64)
    loc, conf = random_outputs(rng, 3, priors.shape[0], 21, np.float64)
    expected = postprocess(loc, conf, priors)
    for method in (postprocess, postprocess_batched):
        got = method(cupy().asarray(loc), cupy().asarray(conf), cupy().asarray(priors))
        for n, ((boxes, scores, labels), (boxes_g, scores_g, labels_g)) in enumerate(zip(expected, got)):
            np.testing.assert_array_equal(backend.to_numpy(labels_g), labels, err_msg=f"{method.__name__} {n}")
            np.testing.assert_allclose(backend.to_numpy(scores_g), scores, rtol=1e-12, err_msg=f"{n}")
            np.testing.assert_allclose(backend.to_numpy(boxes_g), boxes, rtol=1e-12, atol=1e-14, err_msg=f"{n}")


def test_batched_detections_equal_the_loop_on_the_gpu_in_float32(rng):
    priors = cupy().asarray(models.ssd300(21).priors)
    loc, conf = (cupy().asarray(a) for a in random_outputs(rng, 8, priors.shape[0], 21, np.float32))
    for (boxes, scores, labels), (boxes_b, scores_b, labels_b) in zip(
            postprocess(loc, conf, priors), postprocess_batched(loc, conf, priors)):
        for a, b in ((boxes, boxes_b), (scores, scores_b), (labels, labels_b)):  # same device: bit-identical
            np.testing.assert_array_equal(backend.to_numpy(b), backend.to_numpy(a))


# --------------------------------------------------------------------------
# no host synchronisation inside a training step
# --------------------------------------------------------------------------

def test_training_step_and_padded_postprocess_never_synchronise(rng):
    cupyx = backend.cupyx_module()
    forbid = getattr(cupyx, "allow_synchronize", None)
    if forbid is None:
        pytest.skip("this CuPy has no cupyx.allow_synchronize")
    model = tiny().to("gpu")
    optimizer = SGD(model.params, model.grads, lr=1e-4)
    images = cupy().asarray(rng.standard_normal((4, 3, 128, 128), dtype=np.float32))
    _, padded = padded_targets(rng, 4)
    gt_boxes, gt_labels, valid = (cupy().asarray(a) for a in padded)

    def step():
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        loc_t, conf_t = match_batch_device(gt_boxes, gt_labels, valid, model.priors, validate=False)
        out = multibox_loss(loc, conf, loc_t, conf_t)
        model.backward(out.grad_loc, out.grad_conf)
        optimizer.step()
        return out.loss

    step()  # first call: kernels compile, scratch buffers grow
    cupy().cuda.get_current_stream().synchronize()
    with forbid(False):  # any implicit device -> host read inside raises DeviceSynchronized
        loss = step()
        model.eval()
        loc, conf = model.forward(images)
        padded_detections = postprocess_padded(loc, conf, model.priors, trim=False)
    assert np.isfinite(float(loss)) and padded_detections[3].shape == (4,)
