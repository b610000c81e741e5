"""Image I/O: any path, 8/16-bit, grey, RGBA -> float32 RGB in [0, 1] and back; bad files -> one-line ImageReadError."""
import cv2
import numpy as np
import pytest

from common_data.errors import DataError, ImageReadError
from common_data.imageio import list_images, read_image, read_raw, read_uint8, write_image

RNG = np.random.default_rng(0)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
RGB16 = RNG.integers(0, 65536, (5, 7, 3), dtype=np.uint16)


def png_bytes(arr_bgr):
    ok, buf = cv2.imencode(".png", arr_bgr)
    assert ok
    return buf.tobytes()


def smooth_image(size=64):
    """A smooth picture whose JPEG has a long entropy-coded scan to cut."""
    y, x = np.mgrid[0:size, 0:size] / size
    return (np.stack([x, y, (x + y) / 2], axis=2) * 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["plain.png", "with space.png", "ünïcödé 图像.png"])
def test_uint8_png_round_trips_exactly_at_any_path(tmp_path, name):
    path = tmp_path / "sub dir" / name
    write_image(path, RGB8)
    assert read_uint8(path).dtype == np.uint8
    np.testing.assert_array_equal(read_uint8(path), RGB8)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == (5, 7, 3)
    np.testing.assert_array_equal(img, RGB8.astype(np.float32) / 255)


def test_float_image_written_back_reproduces_the_uint8_file(tmp_path):
    write_image(tmp_path / "a.png", RGB8)
    write_image(tmp_path / "b.png", read_image(tmp_path / "a.png"))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_uint16_png_round_trips_exactly(tmp_path):
    write_image(tmp_path / "a.png", RGB16)
    raw = read_raw(tmp_path / "a.png")
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, RGB16[..., ::-1])
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), RGB16.astype(np.float32) / 65535)
    write_image(tmp_path / "b.png", read_image(tmp_path / "a.png"), dtype=np.uint16)
    np.testing.assert_array_equal(read_raw(tmp_path / "b.png"), raw)


def test_uint16_reads_as_uint8_by_dividing_by_257_with_rounding(tmp_path):
    values = np.array([[0, 128, 129, 257, 65535]], np.uint16)
    write_image(tmp_path / "g.png", values)
    np.testing.assert_array_equal(read_uint8(tmp_path / "g.png")[..., 0], [[0, 0, 1, 1, 255]])


def test_a_pure_red_pixel_is_red_in_rgb_and_stored_as_bgr(tmp_path):
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    write_image(tmp_path / "red.png", red)
    np.testing.assert_array_equal(read_image(tmp_path / "red.png")[0, 0], [1, 0, 0])
    # OpenCV stores BGR: the file's own decoding puts red last.
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "red.png"))[0, 0], [0, 0, 255])


def test_red_written_by_pillow_reads_as_red(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (2, 1), (255, 0, 0)).save(tmp_path / "pil.png")
    np.testing.assert_array_equal(read_image(tmp_path / "pil.png"), [[[1, 0, 0], [1, 0, 0]]])
    write_image(tmp_path / "ours.png", np.array([[[255, 0, 0]]], np.uint8))
    assert Image.open(tmp_path / "ours.png").convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_grey_image_reads_as_three_equal_channels(tmp_path):
    grey = RGB8[..., 0]
    write_image(tmp_path / "g.png", grey, channels="gray")
    assert read_raw(tmp_path / "g.png").shape == (5, 7)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey / np.float32(255))


def test_rgba_drops_alpha_for_rgb_and_keeps_it_for_rgba(tmp_path):
    rgba = RNG.integers(0, 256, (4, 3, 4), dtype=np.uint8)
    write_image(tmp_path / "a.png", rgba, channels="rgba")
    assert read_raw(tmp_path / "a.png").shape == (4, 3, 4)
    np.testing.assert_array_equal(read_uint8(tmp_path / "a.png"), rgba[..., :3])
    np.testing.assert_array_equal(read_uint8(tmp_path / "a.png", "rgba"), rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", "rgba"), rgba / np.float32(255))


def test_rgba_channel_order_checked_with_pillow(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGBA", (1, 1), (255, 0, 0, 128)).save(tmp_path / "pil.png")
    np.testing.assert_array_equal(read_uint8(tmp_path / "pil.png", "rgba")[0, 0], [255, 0, 0, 128])


def test_rgb_image_asked_for_as_rgba_gets_opaque_alpha(tmp_path):
    write_image(tmp_path / "a.png", RGB8)
    rgba = read_image(tmp_path / "a.png", "rgba")
    np.testing.assert_array_equal(rgba[..., :3], RGB8 / np.float32(255))
    assert (rgba[..., 3] == 1).all()


def test_jpeg_reads_close_to_what_was_written(tmp_path):
    img = smooth_image()
    write_image(tmp_path / "a.jpg", img, params=[cv2.IMWRITE_JPEG_QUALITY, 100])
    assert np.abs(read_uint8(tmp_path / "a.jpg").astype(int) - img).max() <= 3


def one_line_error_naming(path, func=read_image):
    with pytest.raises(ImageReadError) as info:
        func(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file_raises_one_line_naming_it(tmp_path):
    assert "No such file" in one_line_error_naming(tmp_path / "nope dir" / "missing.png")


def test_zero_byte_file_raises_one_line_naming_it(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty" in one_line_error_naming(path)


def test_non_image_file_raises_one_line_naming_it(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 20)
    one_line_error_naming(path, read_uint8)


def test_corrupt_png_raises_one_line_naming_it(tmp_path):
    data = bytearray(png_bytes(smooth_image()))
    data[40:200] = bytes(160)  # zero the start of the compressed pixels
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    one_line_error_naming(path, read_raw)


@pytest.mark.parametrize("keep", [0.5, 0.9, -12])
def test_truncated_png_raises_one_line_naming_it(tmp_path, keep):
    data = png_bytes(smooth_image())
    cut = keep if isinstance(keep, int) else int(len(data) * keep)
    path = tmp_path / "truncated ü.png"
    path.write_bytes(data[:cut])
    one_line_error_naming(path)


@pytest.mark.parametrize("drop", [2, 50, 500])
def test_truncated_jpeg_raises_one_line_naming_it(tmp_path, drop):
    ok, buf = cv2.imencode(".jpg", cv2.resize(smooth_image(), (256, 256)))
    path = tmp_path / "truncated.jpg"
    path.write_bytes(buf.tobytes()[:-drop])
    one_line_error_naming(path)


@pytest.mark.parametrize("ext, drop", [(".png", 12), (".jpg", 2)])
def test_truncation_is_caught_even_where_opencv_decodes_partial_files(tmp_path, monkeypatch, ext, drop):
    """Older OpenCV builds return a grey-filled image for a cut file; the missing end marker still fails it."""
    ok, buf = cv2.imencode(ext, smooth_image())
    path = tmp_path / f"cut{ext}"
    path.write_bytes(buf.tobytes()[:-drop])
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: smooth_image())
    one_line_error_naming(path)
    path.write_bytes(buf.tobytes())
    np.testing.assert_array_equal(read_raw(path), smooth_image())


def test_a_folder_given_as_image_raises_one_line(tmp_path):
    one_line_error_naming(tmp_path)


def test_unknown_extension_on_write_raises_one_line(tmp_path):
    with pytest.raises(ImageReadError) as info:
        write_image(tmp_path / "a.xyz", RGB8)
    assert "\n" not in str(info.value) and "a.xyz" in str(info.value)


def test_write_leaves_no_temp_file_and_makes_folders(tmp_path):
    write_image(tmp_path / "a" / "b" / "c.png", RGB8)
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["c.png"]


def test_list_images_is_sorted_and_skips_hidden_and_non_images(tmp_path):
    for name in ["b.png", "a.JPG", "._a.png", ".b.png.tmp-1.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.webp").write_bytes(b"x")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "d.png").write_bytes(b"x")
    assert list_images(tmp_path) == [str(tmp_path / "a.JPG"), str(tmp_path / "b.png")]
    assert list_images(tmp_path, recursive=True) == [str(tmp_path / n) for n in ("a.JPG", "b.png", "sub/c.webp")]


def test_list_images_of_a_missing_folder_raises_one_line(tmp_path):
    with pytest.raises(DataError, match="nope"):
        list_images(tmp_path / "nope", recursive=True)
