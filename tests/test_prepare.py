"""Data preparation: Real-ESRGAN multi-scale, BasicSR sub-images, meta-info lists, bicubic LQ, CLI errors."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common_data.data import prepare as prepare
from common_data.data.bicubic import imresize
from common_data.errors import DataError, ImageReadError, UserError
from common_data.data.imageio import read_raw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "prepare_data.py")


def write_png(path, h, w, seed=0):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)
    return img


# ----------------------------------------------------------------------------------------- multi-scale
def test_multiscale_sizes_follow_real_esrgan_for_a_div2k_landscape_image():
    # int(2040 * 0.75) = 1530 ... and the last copy: height 400, width int(400 * 2040 / 1356) = 601.
    assert prepare.multiscale_sizes(2040, 1356) == [(1530, 1017), (1020, 678), (680, 452), (601, 400)]


def test_multiscale_last_size_keeps_the_portrait_shortest_side_at_400():
    assert prepare.multiscale_sizes(300, 500)[-1] == (400, 666)


def test_multiscale_writes_T0_to_T3_equal_to_pil_lanczos(tmp_path):
    from PIL import Image

    write_png(str(tmp_path / "in" / "pic one.png"), 60, 90)
    written = prepare.multiscale(tmp_path / "in", tmp_path / "out", shortest_edge=20)
    assert sorted(os.path.basename(p) for p in written) == [f"pic oneT{i}.png" for i in range(4)]
    src = Image.open(tmp_path / "in" / "pic one.png")
    for path, size in zip(sorted(written), [(67, 45), (45, 30), (30, 20), (30, 20)]):
        out = Image.open(path)
        assert out.size == size
        np.testing.assert_array_equal(np.asarray(out), np.asarray(src.resize(size, Image.LANCZOS)))


# ------------------------------------------------------------------------------------------ sub-images
def test_crop_starts_add_a_flush_window_only_when_the_rest_exceeds_thresh_size():
    # 103 px, crop 40, step 30: windows at 0, 30, 60 leave 3 px uncovered.
    assert prepare.crop_starts(103, 40, 30, thresh_size=5) == [0, 30, 60]
    assert prepare.crop_starts(103, 40, 30, thresh_size=0) == [0, 30, 60, 63]
    assert prepare.crop_starts(30, 40, 30, thresh_size=0) == []


def test_subimages_are_named_by_index_and_hold_the_crops(tmp_path):
    img = write_png(str(tmp_path / "in" / "0001.png"), 50, 70)
    written = prepare.subimages(tmp_path / "in", tmp_path / "out", crop_size=32, step=20, thresh_size=0)
    # rows start at 0, 18; columns at 0, 20, 38.
    names = [os.path.basename(p) for p in written]
    assert names == [f"0001_s{i:03d}.png" for i in range(1, 7)]
    np.testing.assert_array_equal(cv2.imread(written[0]), img[0:32, 0:32])
    np.testing.assert_array_equal(cv2.imread(written[2]), img[0:32, 38:70])
    np.testing.assert_array_equal(cv2.imread(written[5]), img[18:50, 38:70])


def test_subimages_strip_the_div2k_scale_suffix_on_request(tmp_path):
    write_png(str(tmp_path / "in" / "0001x4.png"), 20, 20)
    written = prepare.subimages(tmp_path / "in", tmp_path / "out", crop_size=20, step=20, strip_scale_suffix=True)
    assert [os.path.basename(p) for p in written] == ["0001_s001.png"]


def test_subimages_png_compression_level_changes_the_file_not_the_pixels(tmp_path):
    flat = np.zeros((64, 64, 3), np.uint8)
    flat[:, 32:] = 200
    os.makedirs(tmp_path / "in")
    cv2.imwrite(str(tmp_path / "in" / "a.png"), flat)
    fast = prepare.subimages(tmp_path / "in", tmp_path / "l0", crop_size=64, step=64, compression_level=0)[0]
    small = prepare.subimages(tmp_path / "in", tmp_path / "l9", crop_size=64, step=64, compression_level=9)[0]
    assert os.path.getsize(fast) > os.path.getsize(small)
    np.testing.assert_array_equal(cv2.imread(fast), cv2.imread(small))


# ------------------------------------------------------------------------------------------- meta-info
def test_meta_info_round_trips_names_with_spaces_and_unicode(tmp_path):
    names = ["a.png", " lead and trail .png", "sub dir/画像 01.png", "deep/é/ü x.png"]
    for i, name in enumerate(names):
        write_png(str(tmp_path / "root" / "HR" / name), 8, 8, seed=i)
    meta = tmp_path / "meta" / "meta_info.txt"
    prepare.meta_info([tmp_path / "root" / "HR"], meta, roots=[tmp_path / "root"])
    assert sorted(prepare.read_meta_info(meta)) == sorted("HR/" + n for n in names)
    for line in prepare.read_meta_info(meta):
        assert os.path.isfile(os.path.join(tmp_path / "root", line))


def test_meta_info_takes_one_root_per_folder_and_defaults_to_the_parent(tmp_path):
    write_png(str(tmp_path / "A" / "x.png"), 8, 8)
    write_png(str(tmp_path / "B" / "multi" / "y.png"), 8, 8)
    lines = prepare.meta_info_lines([tmp_path / "A", tmp_path / "B" / "multi"], roots=[tmp_path / "A", tmp_path / "B"])
    assert lines == ["x.png", "multi/y.png"]
    assert prepare.meta_info_lines([tmp_path / "A"]) == ["A/x.png"]
    with pytest.raises(DataError, match="roots"):
        prepare.meta_info_lines([tmp_path / "A", tmp_path / "B"], roots=["r1", "r2", "r3"])


def test_read_meta_info_accepts_crlf_endings_and_skips_empty_lines(tmp_path):
    meta = tmp_path / "m.txt"
    meta.write_bytes("a b.png\r\n\r\nc.png\r\n".encode("utf-8"))
    assert prepare.read_meta_info(meta) == ["a b.png", "c.png"]


def test_meta_info_check_names_an_unreadable_image(tmp_path):
    write_png(str(tmp_path / "HR" / "good.png"), 8, 8)
    (tmp_path / "HR" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="broken.png"):
        prepare.meta_info_lines([tmp_path / "HR"], check=True)


# ------------------------------------------------------------------------------------------------- LQ
def test_mod_crop_cuts_bottom_and_right_to_multiples():
    img = np.arange(10 * 13).reshape(10, 13)
    np.testing.assert_array_equal(prepare.mod_crop(img, 4), img[:8, :12])


def test_lq_writes_the_cropped_gt_and_its_matlab_bicubic_quarter(tmp_path):
    img = write_png(str(tmp_path / "hr" / "frame 1.png"), 37, 50)
    pairs = prepare.generate_lq(tmp_path / "hr", tmp_path / "ds" / "train", tmp_path / "ds" / "train_X4", scale=4)
    gt_path, lq_path = pairs[0]
    assert gt_path.endswith(os.path.join("train", "frame 1.png"))
    assert lq_path.endswith(os.path.join("train_X4", "frame 1.png"))
    gt, lq = read_raw(gt_path), read_raw(lq_path)
    np.testing.assert_array_equal(gt, img[:36, :48])
    assert lq.shape == (9, 12, 3)
    np.testing.assert_array_equal(lq, imresize(img[:36, :48], 0.25))


# ---------------------------------------------------------------------------------------------- errors
def test_missing_input_folder_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "no such"
    with pytest.raises(DataError) as e:
        prepare.subimages(missing, tmp_path / "out")
    assert str(missing) in str(e.value) and "\n" not in str(e.value)


def test_empty_input_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no image"):
        prepare.generate_lq(tmp_path / "empty", tmp_path / "gt", tmp_path / "lq")


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_image_names_its_path_also_from_a_worker_pool(tmp_path, workers):
    write_png(str(tmp_path / "hr" / "a.png"), 16, 16)
    (tmp_path / "hr" / "b.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ImageReadError) as e:
        prepare.generate_lq(tmp_path / "hr", tmp_path / "gt", tmp_path / "lq", workers=workers)
    assert "b.png" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, UserError)


# ------------------------------------------------------------------------------------------------- CLI
def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_cli_lq_with_a_pool_writes_the_animesr_layout(tmp_path):
    for i in range(3):
        write_png(str(tmp_path / "hr" / f"{i}.png"), 20 + i, 24, seed=i)
    result = run_tool("lq", "--input", tmp_path / "hr", "--output", tmp_path / "ds", "--scale", "4", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "ds")) == ["train", "train_X4"]
    for i in range(3):
        assert read_raw(tmp_path / "ds" / "train" / f"{i}.png").shape == (20, 24, 3)
        assert read_raw(tmp_path / "ds" / "train_X4" / f"{i}.png").shape == (5, 6, 3)


def test_cli_missing_input_folder_prints_one_error_line_and_exits_2(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_tool("subimages", "--input", missing, "--output", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(missing) in last


def test_lq_with_a_degradation_preset_at_scale_1_makes_same_size_restoration_pairs(tmp_path):
    """--scale 1 --degradation PRESET: same-size LQ equal to degrade() with the documented per-file generator, the
    same with 1 or 2 workers, and refused for an unknown preset in one line."""
    import zlib
    from common_data.data.degradations import degrade
    src = tmp_path / "gt"
    src.mkdir()
    for i in range(3):
        write_png(src / f"{i}.png", 40, 52, seed=i)
    one = prepare.generate_lq(str(src), str(tmp_path / "g1"), str(tmp_path / "l1"), 1, 1, degradation="jpeg_only",
                              seed=5)
    two = prepare.generate_lq(str(src), str(tmp_path / "g2"), str(tmp_path / "l2"), 1, 2, degradation="jpeg_only",
                              seed=5)
    assert len(one) == len(two) == 3
    for name in ("0.png", "1.png", "2.png"):
        gt, lq = read_raw(str(tmp_path / "g1" / name)), read_raw(str(tmp_path / "l1" / name))
        assert lq.shape == gt.shape == (40, 52, 3) and not np.array_equal(lq, gt)
        assert np.array_equal(lq, read_raw(str(tmp_path / "l2" / name)))
        rng = np.random.default_rng([5, zlib.crc32(name.encode())])
        expected = np.round(degrade(gt[:, :, ::-1].astype(np.float32) / 255, {"preset": "jpeg_only"}, rng, 1) * 255)
        assert np.array_equal(lq, expected.astype(np.uint8)[:, :, ::-1])
    with pytest.raises(DataError, match="--degradation 'blurry': one of anime_light, jpeg_only"):
        prepare.generate_lq(str(src), str(tmp_path / "g3"), str(tmp_path / "l3"), 1, degradation="blurry")
