"""The shared pieces of the readers: open_image (modes -> RGB, errors, the pixel limit, EXIF), box checks,
ConcatDataset."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from minissd.data import ConcatDataset, DataError, ShapesDataset, images as images_module
from minissd.data.sample import (
    MAX_IMAGE_PIXELS,
    MissingFileError,
    check_pixel_box,
    image_size,
    load_rgb_image,
    max_image_pixels,
    open_image,
    set_max_image_pixels,
    to_rgb_array,
)


@pytest.fixture(autouse=True)
def default_pixel_limit(monkeypatch):
    """Every test starts from the default limit and leaves no setting behind."""
    monkeypatch.delenv("MINISSD_MAX_IMAGE_PIXELS", raising=False)
    set_max_image_pixels(None)
    yield
    set_max_image_pixels(None)


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
    missing = tmp_path / "nothere.jpg"
    for read in (open_image, load_rgb_image, image_size):
        with pytest.raises(DataError, match=r"^image not found: .*nothere\.jpg$") as info:
            read(missing)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, MissingFileError)
        with pytest.raises(DataError, match=rf"^{tmp_path} is a folder, not an image file$"):
            read(tmp_path)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a picture")
    with pytest.raises(DataError, match=r"garbage\.jpg: image file cannot be"):
        load_rgb_image(str(garbage))
    with pytest.raises(DataError, match=r"garbage\.jpg: image file cannot be read"):
        image_size(str(garbage))


def test_truncated_jpeg_fails_on_decode(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the header and half the body
    assert image_size(path) == (64, 64)  # the header is intact: only a full decode finds the damage
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded \(image file is truncated"):
        load_rgb_image(str(path))
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded"):
        open_image(path, exif_transpose=True)


def test_open_image_refuses_a_non_path():
    with pytest.raises(TypeError, match="open_image: path must be a str or os.PathLike; got int"):
        open_image(3)


def big_png(path, width, height):
    """A real, valid 1-bit PNG of width x height, all black: tiny on disk, huge once decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path, monkeypatch):
    bomb = big_png(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 100_000  # 400 megapixels in under 100 KB

    def no_decoding(self):
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    expected = (rf"^{bomb} is 20000 x 20000 = 400\.0 megapixels, over minissd's limit of 100 megapixels "
                r"\(a guard against decompression bombs\); raise it with --max-pixels N or "
                r"MINISSD_MAX_IMAGE_PIXELS=N \(N pixels\), 0 for no limit$")
    for read in (open_image, load_rgb_image, image_size):
        with pytest.raises(DataError, match=expected):
            read(bomb)
    assert MAX_IMAGE_PIXELS == 100_000_000 == max_image_pixels()


def test_pixel_limit_can_be_raised_or_lifted(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 60), (10, 20, 30)).save(path)  # 6000 pixels
    with pytest.raises(DataError, match=r"100 x 60 = 0\.0 megapixels, over minissd's limit of 0\.005 megapixels"):
        open_image(path, max_pixels=5000)
    assert open_image(path, max_pixels=6000).shape == (60, 100, 3)  # the limit itself is allowed
    assert open_image(path, max_pixels=0).shape == (60, 100, 3)  # 0: no limit
    monkeypatch.setenv("MINISSD_MAX_IMAGE_PIXELS", "5000")
    assert max_image_pixels() == 5000
    with pytest.raises(DataError, match="over minissd's limit"):
        image_size(path)
    set_max_image_pixels(0)  # what --max-pixels 0 does: wins over the environment
    assert max_image_pixels() == 0 and image_size(path) == (100, 60)
    set_max_image_pixels(None)
    assert max_image_pixels() == 5000
    monkeypatch.setenv("MINISSD_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="MINISSD_MAX_IMAGE_PIXELS='lots' is not a whole number"):
        open_image(path)
    with pytest.raises(ValueError, match="max_pixels = -1 is negative"):
        open_image(path, max_pixels=-1)
    with pytest.raises(TypeError, match="set_max_image_pixels: n = 2.5 is not an integer"):
        set_max_image_pixels(2.5)


def test_pillow_own_limit_never_escapes(tmp_path, monkeypatch):
    path = tmp_path / "picture.png"
    Image.new("RGB", (40, 30)).save(path)  # 1200 pixels: over twice Pillow's limit set below
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        assert open_image(path).shape == (30, 40, 3)
        assert image_size(path) == (40, 30)
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's setting is put back
    assert images_module._pillow_readers == 0


def test_exif_orientation_is_applied_only_when_asked(tmp_path):
    stored = (np.arange(8, dtype=np.uint8).reshape(2, 4) * 30)  # 2 rows, 4 columns
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "turned.png"
    Image.fromarray(stored, "L").save(path, exif=exif)
    as_stored = open_image(path)
    np.testing.assert_array_equal(as_stored[:, :, 0], stored)  # datasets: the pixels the boxes refer to
    assert load_rgb_image(path).shape == (2, 4, 3)
    shown = open_image(path, exif_transpose=True)
    np.testing.assert_array_equal(shown[:, :, 0], np.rot90(stored, k=-1))  # clockwise: 4 rows, 2 columns


def test_float_tiff_in_zero_one_is_scaled_like_float_arrays(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32), "F").save(path)
    with Image.open(path) as check:
        assert check.mode == "F"
    np.testing.assert_array_equal(open_image(path)[0, :, 0], [0, 64, 128, 255])  # x 255, rounded
    wide = tmp_path / "float255.tif"
    Image.fromarray(np.array([[0.0, 100.0, 255.0]], dtype=np.float32), "F").save(wide)
    np.testing.assert_array_equal(open_image(wide)[0, :, 0], [0, 100, 255])  # already 0..255: unchanged
    odd = Image.fromarray(np.array([[np.nan, 0.5, np.inf, -np.inf]], dtype=np.float32), "F")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value in cast"
        np.testing.assert_array_equal(to_rgb_array(odd)[0, :, 0], [0, 128, 255, 0])


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


def test_check_pixel_box_without_a_size_checks_what_it_can():
    assert check_pixel_box([-0.5, 0, 5000, 9], None, None, "f") == [0, 0, 5000, 9]
    with pytest.raises(DataError, match="f: box .* starts at a negative coordinate"):
        check_pixel_box([-3, 0, 5, 5], None, None, "f")
    with pytest.raises(DataError, match="inverted or has zero size"):
        check_pixel_box([6, 0, 5, 5], None, None, "f")
    with pytest.raises(DataError, match="not a finite number"):
        check_pixel_box([0, 0, float("inf"), 5], None, None, "f")


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
    assert both.skip_bad is False and both.skipped == []


def test_concat_dataset_skips_when_every_part_does():
    class Part(ShapesDataset):
        def __init__(self, skip_bad, skipped):
            super().__init__("val", num_images=2)
            self.skip_bad, self.skipped = skip_bad, skipped

    a, b = Part(True, [("x", "bad x")]), Part(True, [])
    both = ConcatDataset([a, b])
    assert both.skip_bad is True and both.skipped == [("x", "bad x")]
    b.skipped.append(("y", "bad y"))  # found later: the joined list follows its parts
    assert both.skipped == [("x", "bad x"), ("y", "bad y")]
    assert ConcatDataset([a, Part(False, [])]).skip_bad is False
