"""Hostile data preparation (issue 11): what a step skipped or upscaled is reported; output folders that hold
something are never mixed into or overwritten unless asked (``--force``)."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common_data.data import prepare as prepare
from common_data.data.demo_data import MARKER_NAME, make_demo_data
from common_data.errors import DataError, UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPARE = os.path.join(ROOT, "tools", "prepare_data.py")
DEMO = os.path.join(ROOT, "tools", "make_demo_data.py")


def image(path, h, w, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return str(path)


def tool(*argv):
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=120)


def error_line(proc):
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def tree(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return out


# -------------------------------------------------------------------------------------- skipped / upscaled
def test_subimages_lists_the_images_smaller_than_one_crop(tmp_path):
    image(tmp_path / "in" / "big.png", 32, 32)
    small = image(tmp_path / "in" / "small.png", 20, 40)
    written = prepare.subimages(tmp_path / "in", tmp_path / "out", crop_size=32, step=32)
    assert written.skipped == [small] and len(written) == 1


def test_subimages_cli_reports_skipped_count_and_names(tmp_path):
    image(tmp_path / "in" / "big.png", 40, 40)
    for i in range(7):
        image(tmp_path / "in" / f"tiny{i}.png", 8, 8, seed=i)
    proc = tool(PREPARE, "subimages", "--input", tmp_path / "in", "--output", tmp_path / "out", "--crop-size", "32")
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("skipped"))
    assert line.startswith("skipped 7 of 8 images smaller than the 32x32 crop")
    assert "tiny0.png, tiny1.png, tiny2.png, tiny3.png, tiny4.png, ..." in line and "big.png" not in line


def test_multiscale_lists_the_images_its_shortest_edge_copy_upscales(tmp_path):
    small = image(tmp_path / "in" / "small.png", 10, 12)
    image(tmp_path / "in" / "large.png", 60, 90)
    written = prepare.multiscale(tmp_path / "in", tmp_path / "out", shortest_edge=20)
    assert written.upscaled == [small] and len(written) == 8


def test_multiscale_cli_reports_the_upscaled_count(tmp_path):
    image(tmp_path / "in" / "small.png", 10, 12)
    proc = tool(PREPARE, "multiscale", "--input", tmp_path / "in", "--output", tmp_path / "out",
                "--shortest-edge", "20")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("upscaled 1 of 1 images") and line.endswith("small.png")
               for line in proc.stdout.splitlines()), proc.stdout


def test_nothing_skipped_or_upscaled_prints_no_report(tmp_path):
    image(tmp_path / "in" / "big.png", 64, 64)
    proc = tool(PREPARE, "subimages", "--input", tmp_path / "in", "--output", tmp_path / "out", "--crop-size", "32")
    assert proc.returncode == 0 and proc.stdout.strip().splitlines() == [f"wrote 4 sub-images to {tmp_path / 'out'}"]


# ------------------------------------------------------------------------------------------- lq --output
def test_lq_refuses_a_non_empty_output_folder_and_leaves_it_alone(tmp_path):
    image(tmp_path / "hr" / "a.png", 16, 16)
    mine = image(tmp_path / "set" / "train" / "a.png", 8, 8, seed=5)
    before = tree(tmp_path / "set")
    line = error_line(tool(PREPARE, "lq", "--input", tmp_path / "hr", "--output", tmp_path / "set"))
    assert str(tmp_path / "set" / "train") in line and "--force" in line
    assert tree(tmp_path / "set") == before and os.path.exists(mine)


def test_lq_refuses_a_non_empty_lq_folder_too(tmp_path):
    image(tmp_path / "hr" / "a.png", 16, 16)
    image(tmp_path / "set" / "train_X4" / "old.png", 4, 4)
    with pytest.raises(DataError, match="train_X4 is not empty"):
        prepare.generate_lq(tmp_path / "hr", tmp_path / "set" / "train", tmp_path / "set" / "train_X4")


def test_lq_force_writes_into_a_non_empty_folder(tmp_path):
    image(tmp_path / "hr" / "a.png", 16, 16)
    old = image(tmp_path / "set" / "train" / "old.png", 8, 8)
    proc = tool(PREPARE, "lq", "--input", tmp_path / "hr", "--output", tmp_path / "set", "--force")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "set" / "train")) == ["a.png", "old.png"] and os.path.exists(old)


def test_lq_into_an_existing_empty_folder_is_fine(tmp_path):
    image(tmp_path / "hr" / "a.png", 16, 16)
    os.makedirs(tmp_path / "set" / "train")
    assert len(prepare.generate_lq(tmp_path / "hr", tmp_path / "set" / "train", tmp_path / "set" / "train_X4")) == 1


# ------------------------------------------------------------------------------------------- make_demo_data
def test_demo_data_refuses_a_folder_holding_other_files(tmp_path):
    mine = image(tmp_path / "d" / "train" / "train_0000.png", 8, 8, seed=3)
    before = tree(tmp_path / "d")
    line = error_line(tool(DEMO, "--output", tmp_path / "d", "--num-train", "1", "--num-test", "0", "--size", "32"))
    assert str(tmp_path / "d") in line and "not empty" in line and "--force" in line
    assert tree(tmp_path / "d") == before and os.path.exists(mine)


def test_demo_data_refuses_a_demo_set_made_with_other_arguments(tmp_path):
    make_demo_data(tmp_path / "d", num_train=1, num_test=0, seed=0, size=32)
    with pytest.raises(UserError, match="does not hold this demo set"):
        make_demo_data(tmp_path / "d", num_train=1, num_test=0, seed=1, size=32)


def test_demo_data_second_run_with_the_same_arguments_keeps_the_set(tmp_path):
    """The README's first command may run twice: the second says the set is kept and changes nothing."""
    argv = (DEMO, "--output", tmp_path / "d", "--num-train", "2", "--num-test", "1", "--size", "32")
    assert tool(*argv).returncode == 0
    first = tree(tmp_path / "d")
    os.utime(tmp_path / "d" / MARKER_NAME, (0, 0))
    again = tool(*argv)
    assert again.returncode == 0 and again.stdout.strip() == f"{tmp_path / 'd'} already holds this demo set: kept " \
                                                             "(--force writes it again)"
    assert tree(tmp_path / "d") == first and os.stat(tmp_path / "d" / MARKER_NAME).st_mtime == 0


def test_demo_data_force_writes_into_a_non_empty_folder(tmp_path):
    image(tmp_path / "d" / "notes.png", 8, 8)
    proc = tool(DEMO, "--output", tmp_path / "d", "--num-train", "1", "--num-test", "0", "--size", "32", "--force")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "d")) == sorted([MARKER_NAME, "notes.png", "train", "train_X4"])
