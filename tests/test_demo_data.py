"""The synthetic anime-style demo set: layout, LQ = MATLAB bicubic x1/4, determinism, CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

from common_data.data.bicubic import imresize
from common_data.data.demo_data import MARKER_NAME, make_demo_data
from common_data.errors import UserError
from common_data.data.imageio import read_uint8

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(REPO, "tools", "make_demo_data.py")
FOLDERS = ["test", "test_X4", "train", "train_X4"]


def all_bytes(root):
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(root, num_train=3, num_test=2, seed=7, size=64)
    return root


def test_layout_is_animesr_with_matching_names_and_a_marker(demo):
    assert sorted(os.listdir(demo)) == sorted(FOLDERS + [MARKER_NAME])
    assert len(os.listdir(demo / "train")) == 3 and len(os.listdir(demo / "test")) == 2
    for split in ("train", "test"):
        assert sorted(os.listdir(demo / split)) == sorted(os.listdir(demo / f"{split}_X4"))
    marker = (demo / MARKER_NAME).read_text(encoding="utf-8")
    assert "SYNTHETIC" in marker and "make_demo_data.py" in marker and "--seed 7" in marker


def test_lq_is_the_matlab_bicubic_quarter_of_the_gt(demo):
    for name in os.listdir(demo / "train"):
        gt = read_uint8(demo / "train" / name)
        lq = read_uint8(demo / "train_X4" / name)
        assert gt.shape == (64, 64, 3) and lq.shape == (16, 16, 3)
        np.testing.assert_array_equal(lq, imresize(gt, 0.25))


def test_pictures_are_cel_shaded_flat_regions_with_dark_lines(demo):
    gt = np.stack([read_uint8(demo / "train" / n) for n in sorted(os.listdir(demo / "train"))]).astype(int)
    same_as_right = np.all(gt[:, :, 1:] == gt[:, :, :-1], axis=-1).mean()
    assert same_as_right > 0.4  # large flat fills, unlike noise or photos
    assert len(np.unique(gt.reshape(-1, 3), axis=0)) > 50  # but many colours (gradients, anti-aliased edges)
    assert (gt.max(axis=-1) < 70).mean() > 0.005  # some near-black outline/text pixels


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(demo, tmp_path):
    make_demo_data(tmp_path / "again", num_train=3, num_test=2, seed=7, size=64)
    make_demo_data(tmp_path / "other", num_train=3, num_test=2, seed=8, size=64)
    first, again, other = all_bytes(demo), all_bytes(tmp_path / "again"), all_bytes(tmp_path / "other")
    assert first == again
    assert first["train/train_0000.png"] != other["train/train_0000.png"]


def test_train_and_test_pictures_differ(demo):
    assert all_bytes(demo)["train/train_0000.png"] != all_bytes(demo)["test/test_0000.png"]


@pytest.mark.parametrize("size", [30, 66])
def test_size_must_be_a_multiple_of_four(tmp_path, size):
    with pytest.raises(UserError, match="multiple of 4"):
        make_demo_data(tmp_path, num_train=1, num_test=0, size=size)


def test_cli_writes_the_set_and_rejects_a_bad_size_with_one_line(tmp_path):
    ok = subprocess.run([sys.executable, TOOL, "--output", str(tmp_path / "d"), "--num-train", "2", "--num-test", "1",
                         "--size", "32"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert sorted(os.listdir(tmp_path / "d")) == sorted(FOLDERS + [MARKER_NAME])
    assert read_uint8(tmp_path / "d" / "train" / "train_0001.png").shape == (32, 32, 3)
    assert read_uint8(tmp_path / "d" / "test_X4" / "test_0000.png").shape == (8, 8, 3)
    bad = subprocess.run([sys.executable, TOOL, "--output", str(tmp_path / "e"), "--size", "30"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["error: --size 30 must be a multiple of 4 and at least 32"]
