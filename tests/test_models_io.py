"""Weights files whose metadata or arrays are wrong: every field checked, named and bounded before
anything is built, and parameters that are not finite refused at load."""

import functools
import time

import numpy as np
import pytest

from minissd import models
from minissd.models import io as model_io

WIDTHS = (2,) * 8


@pytest.fixture(scope="module")
def saved():
    """(arrays, meta) of a small tiny model, as ``model.save`` writes them."""
    model = models.tiny_ssd(3, widths=WIDTHS, class_names=["cat", "dog"])
    return model.state_dict(), model_io.model_meta(model)


def _write(tmp_path, saved, arrays=None, **change):
    arrays = dict(saved[0] if arrays is None else arrays)
    meta = {**saved[1], **change}
    path = tmp_path / "model.npz"
    model_io.write_npz(path, arrays, {k: v for k, v in meta.items() if v is not ...})
    return path


@pytest.fixture
def no_building(monkeypatch):
    """Fail the test if a model gets built: the checks must come first."""
    builder = models.ARCHITECTURES["tiny"]

    @functools.wraps(builder)  # same signature: validate_meta reads the builder's options from it
    def exploding(*args, **kwargs):
        raise AssertionError("a model was built from bad metadata")

    monkeypatch.setitem(models.ARCHITECTURES, "tiny", exploding)


def test_a_good_file_loads(tmp_path, saved):
    model = models.load(_write(tmp_path, saved))
    assert model.info.class_names == ["background", "cat", "dog"]


@pytest.mark.parametrize("change, message", [
    (dict(num_classes="six"), r"metadata field 'num_classes' is 'six', expected an integer from 2 to 10000"),
    (dict(num_classes=0), r"metadata field 'num_classes' is 0, expected an integer from 2 to 10000"),
    (dict(num_classes=10**9), r"metadata field 'num_classes' is 1000000000, expected an integer from 2 to 10000"),
    (dict(num_classes=True), r"metadata field 'num_classes' is True, expected an integer"),
    (dict(num_classes=3.0), r"metadata field 'num_classes' is 3.0, expected an integer"),
    (dict(mean="abc"), r"metadata field 'mean' is 'abc', expected a list of 3 finite numbers \(RGB, 0-255\)"),
    (dict(mean=[1, 2]), r"metadata field 'mean' is \[1, 2\], expected a list of 3 finite numbers"),
    (dict(mean=[1, float("nan"), 3]), r"metadata field 'mean\[1\]' is nan, expected a finite number"),
    (dict(mean=[1, "2", 3]), r"metadata field 'mean\[1\]' is '2', expected a finite number"),
    (dict(class_names=["background", "cat"]), r"metadata field 'class_names' has 2 names, expected 3"),
    (dict(class_names=["background", "cat", 7]), r"metadata field 'class_names\[2\]' is 7, expected a string"),
    (dict(class_names="cat,dog"), r"metadata field 'class_names' is 'cat,dog', expected a list of 3 strings"),
    (dict(arch="resnet"), r"metadata field 'arch' is 'resnet': unknown architecture 'resnet', expected one of "
                          r"\['ssd300', 'ssd512', 'tiny'\]"),
    (dict(arch=["tiny"]), r"metadata field 'arch' is \['tiny'\]: unknown architecture"),
    (dict(arch=...), r"metadata lacks 'arch'"),
    (dict(preset=7), r"metadata field 'preset' is 7, expected a default-box preset name"),
    (dict(preset="nope", prior_config=...), r"metadata field 'preset': unknown default-box preset 'nope'"),
    (dict(format="1"), r"metadata field 'format' is '1', expected an integer from 1 to 1"),
    (dict(format=2), r"format 2 is newer than this minissd reads \(1\)"),
    (dict(kind="optimizer"), r"metadata field 'kind' is 'optimizer', expected 'model'"),
    (dict(extra=[1]), r"metadata field 'extra' is \[1\], expected a JSON object"),
    (dict(options=[]), r"metadata field 'options' is \[\], expected a JSON object"),
    (dict(options={"widths": [16] * 60000}),  # today: a 241 GiB allocation attempt
     r"metadata field 'options.widths' is \[16, 16, 16, ...\] \(60000 entries\), expected a list of 8 convolution widths"),
    (dict(options={"widths": [2] * 7 + [10**6]}), r"metadata field 'options.widths\[7\]' is 1000000, expected an integer from 1 to 2048"),
    (dict(options={"widths": list(WIDTHS), "batch_norm": "yes"}), r"'options.batch_norm' is 'yes', expected true or false"),
    (dict(options={"seed": -1}), r"'options.seed' is -1, expected a non-negative integer"),
    (dict(options={"depth": 50}), r"'options.depth' is not an option of tiny \(it takes \['batch_norm', 'seed', 'widths'\]\)"),
])
def test_bad_fields_are_named(tmp_path, saved, no_building, change, message):
    path = _write(tmp_path, saved, **change)
    with pytest.raises(ValueError, match=message) as error:
        models.load(path)
    assert str(error.value).startswith(f"{path}: ")  # the file first


def _prior_config(saved, **change):
    return {**saved[1]["prior_config"], **change}


@pytest.mark.parametrize("change, message", [
    (dict(image_size="128"), r"'prior_config.image_size' is '128', expected an integer from 1 to 4096"),
    (dict(image_size=10**7), r"'prior_config.image_size' is 10000000, expected an integer from 1 to 4096"),
    (dict(feature_maps=[16, 8, 10**6, 2, 1]), r"'prior_config.feature_maps\[2\]' is 1000000, expected an integer from 1 to 128"),
    (dict(feature_maps=[1] * 17), r"'prior_config.feature_maps' is \[1, 1, 1, ...\] \(17 entries\), expected a list of 1 to 16"),
    (dict(min_sizes=[0.1, -0.2, 0.3, 0.4, 0.5]), r"'prior_config.min_sizes\[1\]' is -0.2, expected a positive finite number"),
    (dict(max_sizes=[0.2, 0.3]), r"'prior_config.max_sizes' is \[0.2, 0.3\], expected a list of 5 positive finite numbers"),
    (dict(aspect_ratios=[[2]] * 4), r"'prior_config.aspect_ratios' is .*, expected a list of 5 lists \(one per map\)"),
    (dict(aspect_ratios=[[2], [2], [2], [2], list(range(1, 20))]), r"'prior_config.aspect_ratios\[4\]' is .*at most 8"),
    (dict(steps=[8, 16, 32, 64, "x"]), r"'prior_config.steps\[4\]' is 'x', expected a positive finite number"),
    (dict(clip="always"), r"'prior_config.clip' is 'always', expected false, true, 'corners' or 'size'"),
    (dict(colour="red"), r"'prior_config.colour' is not a PriorConfig field"),
    (dict(image_size=4096, feature_maps=[512] * 5), r"describes 5,242,880 default boxes, more than 1,000,000"),
])
def test_bad_prior_configs_are_named_and_bounded(tmp_path, saved, no_building, change, message):
    with pytest.raises(ValueError, match=message):
        models.load(_write(tmp_path, saved, prior_config=_prior_config(saved, **change)))


def test_a_prior_config_that_does_not_fit_the_architecture_names_the_file(tmp_path, saved):
    path = _write(tmp_path, saved, prior_config=_prior_config(saved, feature_maps=[8, 4, 2, 1, 1]))
    with pytest.raises(ValueError, match=r"model.npz: tiny_ssd makes maps \(16, 8, 4, 2, 1\) from 128 px"):
        models.load(path)


def test_checks_cost_nothing_even_for_huge_requests(tmp_path, saved, no_building):
    path = _write(tmp_path, saved, options={"widths": [60000] * 8})
    start = time.perf_counter()
    with pytest.raises(ValueError, match="options.widths"):
        models.load(path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("values, kinds", [([np.nan] * 12, "nan"), ([np.inf, -np.inf], "inf"), ([np.nan, np.inf], "nan and inf")])
def test_parameters_that_are_not_finite_are_refused(tmp_path, saved, values, kinds):
    arrays = dict(saved[0])
    broken = arrays["head0.loc.weight"].copy()
    broken.reshape(-1)[: len(values)] = values
    arrays["head0.loc.weight"] = broken
    path = _write(tmp_path, saved, arrays=arrays)
    with pytest.raises(ValueError, match=rf"model.npz: parameter 'head0.loc.weight' has {len(values)} non-finite values "
                                         rf"\({kinds}\): the weights are broken"):
        models.load(path)


def test_buffers_that_are_not_finite_are_refused(tmp_path, saved):
    arrays = {**saved[0], "bn3.running_var": np.full(2, np.inf, np.float32)}
    with pytest.raises(ValueError, match=r"parameter 'bn3.running_var' has 2 non-finite values \(inf\)"):
        models.load(_write(tmp_path, saved, arrays=arrays))


def test_validate_meta_accepts_what_save_writes(saved):
    model_io.validate_meta(saved[1], "x")
    for model in (models.ssd300(5), models.ssd512(3)):
        model_io.validate_meta(model_io.model_meta(model, extra={"epoch": 1}), "x")
