"""Image I/O: any path, 8/16-bit, grey, RGBA -> float32 RGB in [0, 1] and back; bad files -> one-line ImageReadError."""
import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from common_data.errors import DataError, ImageReadError, UserError
from common_data.data.imageio import image_size, list_images, read_image, read_raw, read_uint8, write_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


# ------------------------------------------------------------------------------------ hostile files (issue 11)
def png_claiming(width, height, idat=b""):
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit grey) around the given compressed data."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_png_claiming_20000x20000_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    rows = zlib.compress(bytes(50 * 20001), 9) + RNG.bytes(1 << 20)  # 1 MB: 50 real rows, then noise
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20000, 20000, rows))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a file over the pixel cap"))
    msg = one_line_error_naming(path, read_raw)
    assert "20000x20000" in msg and "ESRGAN_TWIN_MAX_PIXELS" in msg and "--max-pixels" in msg


def test_image_size_reads_the_header_only(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20000, 30000))
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded pixels to learn a size"))
    assert image_size(path) == (30000, 20000)


def test_the_pixel_cap_is_inclusive_and_set_by_argument_or_environment(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png", RGB8)  # 7 x 5 = 35 pixels
    one_line_error_naming(tmp_path / "a.png", lambda p: read_raw(p, max_pixels=34))
    assert read_raw(tmp_path / "a.png", max_pixels=35).shape == (5, 7, 3)
    monkeypatch.setenv("ESRGAN_TWIN_MAX_PIXELS", "34")
    one_line_error_naming(tmp_path / "a.png", read_uint8)
    monkeypatch.setenv("ESRGAN_TWIN_MAX_PIXELS", "35")
    np.testing.assert_array_equal(read_uint8(tmp_path / "a.png"), RGB8)


@pytest.mark.parametrize("value", ["many", "0", "-5"])
def test_a_bad_pixel_cap_in_the_environment_is_a_one_line_error_naming_it(tmp_path, monkeypatch, value):
    write_image(tmp_path / "a.png", RGB8)
    monkeypatch.setenv("ESRGAN_TWIN_MAX_PIXELS", value)
    with pytest.raises(UserError, match=f"ESRGAN_TWIN_MAX_PIXELS='{value}'"):
        read_raw(tmp_path / "a.png")


def read_in_a_subprocess(path):
    """read_raw(path) in a child with a 2 GB address space and a 60 s limit: (exit code, stderr)."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    code = "import sys; from common_data.data.imageio import read_raw; read_raw(sys.argv[1])"
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                              cwd=ROOT, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not return")
    return proc.returncode, proc.stderr


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would wait for a writer forever
    code, err = read_in_a_subprocess(tmp_path / "pipe.png")
    assert code == 1 and "ImageReadError: skipped" in err and "FIFO" in err and "pipe.png" in err


def test_a_symlink_to_dev_zero_is_refused_without_being_read(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    os.symlink("/dev/zero", tmp_path / "zero.png")  # reading it would never end
    code, err = read_in_a_subprocess(tmp_path / "zero.png")
    assert code == 1 and "ImageReadError: skipped" in err and "device" in err and "zero.png" in err


# EXIF orientation -> what a viewer shows, from the stored pixels (EXIF 2.32, tag 0x0112)
ORIENTED = {2: lambda a: a[:, ::-1], 3: lambda a: np.rot90(a, 2), 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
            8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_a_jpeg_reads_as_its_exif_orientation_shows_it(tmp_path, orientation):
    Image = pytest.importorskip("PIL.Image")
    stored = np.ascontiguousarray(smooth_image(48)[:, :40])
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "tagged.jpg", quality=95, exif=exif.tobytes())
    plain = read_uint8(tmp_path / "plain.jpg")
    np.testing.assert_array_equal(read_uint8(tmp_path / "tagged.jpg"), ORIENTED[orientation](plain))


@pytest.mark.parametrize("dtype,channels", [(np.float32, 1), (np.float32, 3), (np.int16, 3), (np.int32, 1)])
def test_float_and_signed_tiffs_are_refused_not_misread(tmp_path, dtype, channels):
    arr = (RNG.random((6, 5, channels)) * 3).astype(dtype)
    ok, buf = cv2.imencode(".tiff", arr[:, :, 0] if channels == 1 else arr)
    assert ok and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).dtype == dtype  # the file is what its name says
    path = tmp_path / f"{np.dtype(dtype).name}.tiff"
    path.write_bytes(buf.tobytes())
    one_line_error_naming(path, read_raw)
