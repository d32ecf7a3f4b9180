"""The shared pieces of the readers: image modes -> RGB, box checks, ConcatDataset."""

import numpy as np
import pytest
from PIL import Image

from minissd.data import ConcatDataset, DataError, ShapesDataset
from minissd.data.sample import check_pixel_box, image_size, load_rgb_image, to_rgb_array


def test_rgb_passes_through(rng):
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    out = to_rgb_array(Image.fromarray(pixels, "RGB"))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, pixels)


def test_grayscale_is_repeated_over_three_channels(rng):
    gray = rng.integers(0, 256, size=(4, 6), dtype=np.uint8)
    out = to_rgb_array(Image.fromarray(gray, "L"))
    assert out.shape == (4, 6, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_sixteen_bit_grayscale_keeps_its_top_bits():
    values = np.array([[0, 256, 65535, 32768]], dtype=np.uint16)
    out = to_rgb_array(Image.fromarray(values))  # mode I;16
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255, 128])


def test_rgba_is_composited_over_black():
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 0], [200, 100, 50, 128]]], dtype=np.uint8)
    out = to_rgb_array(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(out[0, 0], [200, 100, 50])  # opaque: unchanged
    np.testing.assert_array_equal(out[0, 1], [0, 0, 0])  # transparent: black
    np.testing.assert_array_equal(out[0, 2], [100, 50, 25])  # half: half way to black


def test_palette_images_go_through_their_palette():
    image = Image.new("P", (3, 2))
    palette = [0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9)
    image.putpalette(palette)
    image.putdata([1, 2, 0, 2, 1, 0])
    out = to_rgb_array(image)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [0, 255, 0])
    np.testing.assert_array_equal(out[0, 2], [0, 0, 0])


def test_palette_transparency_is_composited_over_black():
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 255, 255, 255] + [0] * (256 * 3 - 6))
    image.putdata([0, 1])
    image.info["transparency"] = 1  # palette entry 1 is transparent
    out = to_rgb_array(image)
    np.testing.assert_array_equal(out[0], [[10, 20, 30], [0, 0, 0]])


def test_cmyk_is_converted():
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    out = to_rgb_array(cmyk)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


@pytest.mark.parametrize("mode, suffix", [("L", ".png"), ("RGBA", ".png"), ("P", ".png"), ("CMYK", ".jpg"),
                                          ("RGB", ".jpg")])
def test_files_of_every_mode_load_as_rgb(tmp_path, mode, suffix):
    path = tmp_path / f"image{suffix}"
    Image.new(mode, (9, 5)).save(path)
    out = load_rgb_image(str(path))
    assert out.shape == (5, 9, 3) and out.dtype == np.uint8
    assert image_size(str(path)) == (9, 5)


def test_missing_and_unreadable_images_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.jpg: image file is missing"):
        load_rgb_image(str(tmp_path / "nothere.jpg"))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a picture")
    with pytest.raises(DataError, match=r"garbage\.jpg: image file cannot be"):
        load_rgb_image(str(garbage))
    with pytest.raises(DataError, match=r"garbage\.jpg: image file cannot be read"):
        image_size(str(garbage))


def test_truncated_jpeg_fails_on_decode(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded"):
        load_rgb_image(str(path))


def test_check_pixel_box_clips_within_tolerance_and_rejects_beyond():
    assert check_pixel_box([-1, -0.5, 11, 20], 10, 20, "f") == [0, 0, 10, 20]
    with pytest.raises(DataError, match=r"f, object 2: box .* outside the 10 x 20 image"):
        check_pixel_box([-1.5, 0, 5, 5], 10, 20, "f, object 2")
    with pytest.raises(DataError, match="outside"):
        check_pixel_box([0, 0, 5, 21.5], 10, 20, "f")
    with pytest.raises(DataError, match="inverted or has zero size"):
        check_pixel_box([5, 0, 4, 5], 10, 20, "f")
    with pytest.raises(DataError, match="inverted or has zero size"):
        check_pixel_box([3, 3, 3, 8], 10, 20, "f")
    with pytest.raises(DataError, match="inverted or has zero size"):  # only inside the tolerance band
        check_pixel_box([10, 0, 10.5, 5], 10, 20, "f")
    with pytest.raises(DataError, match="not a finite number"):
        check_pixel_box([0, float("nan"), 5, 5], 10, 20, "f")


def test_concat_dataset_chains_and_checks_classes():
    first, second = ShapesDataset("val", num_images=3), ShapesDataset("test", num_images=2)
    both = ConcatDataset([first, second])
    assert len(both) == 5 and both.class_names == first.class_names
    assert [both[i].image_id for i in range(5)] == [first[i].image_id for i in range(3)] + [
        second[i].image_id for i in range(2)
    ]
    assert both[-1].image_id == second[1].image_id
    with pytest.raises(IndexError):
        both[5]
    other = ShapesDataset("val", num_images=3, classes=("ring", "star"))
    with pytest.raises(ValueError, match="dataset 1 has classes"):
        ConcatDataset([first, other])
