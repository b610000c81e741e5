"""Our data pipeline and metrics against the reference project, ppgan 2.1.0 (see tests/ppgan_compat.py)."""
import copy
import random

import numpy as np
import pytest

from common_data.data.imageio import write_image
from common_data.metrics.quality import PSNR, SSIM, calculate_psnr, calculate_ssim
from common_data.data.sr_dataset import SRDataset
from common_data.data.transforms import build_preprocess
from ppgan_compat import import_ppgan

pytestmark = pytest.mark.ppgan
PAIR = ["image", "image"]

# PaddleGAN's configs/esrgan_x4_div2k.yaml train pipeline, with a small patch.
TRAIN_PREPROCESS = [
    {"name": "LoadImageFromFile", "key": "lq"},
    {"name": "LoadImageFromFile", "key": "gt"},
    {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
        {"name": "SRPairedRandomCrop", "gt_patch_size": 16, "scale": 4, "keys": PAIR},
        {"name": "PairedRandomHorizontalFlip", "keys": PAIR},
        {"name": "PairedRandomVerticalFlip", "keys": PAIR},
        {"name": "PairedRandomTransposeHW", "keys": PAIR},
        {"name": "Transpose", "keys": PAIR},
        {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": PAIR}]},
]


@pytest.fixture
def pair_folders(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(tmp_path / "lq" / f"img{i}.png", rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
        write_image(tmp_path / "gt" / f"img{i}.png", rng.integers(0, 256, (36, 44, 3), dtype=np.uint8))
    return tmp_path / "gt", tmp_path / "lq"


def test_train_preprocess_gives_ppgans_arrays_for_the_same_seed(pair_folders):
    pp = import_ppgan("ppgan.datasets.preprocess")
    gt_dir, lq_dir = pair_folders
    ours, theirs = build_preprocess(copy.deepcopy(TRAIN_PREPROCESS)), pp.build_preprocess(copy.deepcopy(TRAIN_PREPROCESS))
    seen = set()
    for seed in range(16):
        paths = {"lq_path": str(lq_dir / "img1.png"), "gt_path": str(gt_dir / "img1.png")}
        random.seed(seed)
        a = ours(dict(paths))
        random.seed(seed)
        b = theirs(dict(paths))
        for key in ("lq", "gt"):
            assert a[key].dtype == b[key].dtype == np.float32
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{key}, seed {seed}")
        assert (a["flip"], a["transpose"]) == (b["flip"], b["transpose"])
        seen.add((a["flip"], a["transpose"]))
    assert len(seen) == 4  # the seeds exercised every flip/transpose combination


def test_sr_dataset_items_equal_ppgans(pair_folders):
    ppgan_datasets = import_ppgan("ppgan.datasets.base_sr_dataset")
    gt_dir, lq_dir = pair_folders
    test_preprocess = [TRAIN_PREPROCESS[0], TRAIN_PREPROCESS[1],
                       dict(TRAIN_PREPROCESS[2], pipeline=TRAIN_PREPROCESS[2]["pipeline"][-2:])]
    ours = SRDataset(gt_folder=str(gt_dir), lq_folder=str(lq_dir), preprocess=copy.deepcopy(test_preprocess), scale=4)
    theirs = ppgan_datasets.SRDataset(lq_folder=str(lq_dir), gt_folder=str(gt_dir),
                                      preprocess=copy.deepcopy(test_preprocess), scale=4)
    assert len(ours) == len(theirs) == 3
    theirs_by_gt = {theirs[i]["gt_path"]: theirs[i] for i in range(len(theirs))}
    for i in range(len(ours)):
        a = ours[i]
        b = theirs_by_gt[a["gt_path"]]
        assert a["lq_path"] == b["lq_path"]
        np.testing.assert_array_equal(a["lq"], b["lq"])
        np.testing.assert_array_equal(a["gt"], b["gt"])


@pytest.mark.parametrize("crop_border, y", [(0, False), (4, False), (4, True)])
def test_psnr_and_ssim_equal_ppgans_on_random_images(crop_border, y):
    ref = import_ppgan("ppgan.metrics.psnr_ssim")
    rng = np.random.default_rng(crop_border + y)
    gt = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).astype(np.uint8)
    assert calculate_psnr(sr, gt, crop_border, test_y_channel=y) == pytest.approx(
        ref.calculate_psnr(sr, gt, crop_border, test_y_channel=y), abs=1e-4)
    assert calculate_ssim(sr, gt, crop_border, test_y_channel=y) == pytest.approx(
        ref.calculate_ssim(sr, gt, crop_border, test_y_channel=y), abs=1e-6)
    assert calculate_psnr(sr.transpose(2, 0, 1), gt.transpose(2, 0, 1), crop_border, "CHW", y) == pytest.approx(
        ref.calculate_psnr(sr.transpose(2, 0, 1), gt.transpose(2, 0, 1), crop_border, "CHW", y), abs=1e-4)


def test_metric_objects_accumulate_like_ppgans():
    ref = import_ppgan("ppgan.metrics.psnr_ssim")
    rng = np.random.default_rng(1)
    gts = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(3)]
    srs = [np.clip(g + rng.normal(0, 8, g.shape), 0, 255).astype(np.uint8) for g in gts]
    for ours, theirs in ((PSNR(2, test_y_channel=True), ref.PSNR(2, test_y_channel=True)), (SSIM(2), ref.SSIM(2))):
        ours.update(srs[0], gts[0])
        theirs.update(srs[0], gts[0])
        ours.update(srs[1:], gts[1:])
        theirs.update(srs[1:], gts[1:])
        assert ours.accumulate() == pytest.approx(float(theirs.accumulate()), abs=1e-4)
        assert ours.name() == theirs.name()
