"""RealESRGANDataset: listing (meta-info with spaces, missing files), item contract, determinism, LQ/GT alignment."""
import cv2
import numpy as np
import pytest

from common_data.data.datasets import DATASETS, build_dataset
from common_data.data.degradations import usm_sharp
from common_data.errors import ConfigError, DataError
from common_data.data.imageio import write_image
from common_data.data.realesrgan_dataset import RealESRGANDataset, apply_flips, augment_crop_or_pad

PRESETS = ["realesrgan_default", "resize_only", "jpeg_only", "anime_light"]


def texture(h, w, seed):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 1.2)
    return (img - img.min()) / (img.max() - img.min())


@pytest.fixture()
def gt_root(tmp_path):
    root = tmp_path / "my data"
    write_image(root / "sub dir" / "img 1.png", texture(150, 130, 0))
    write_image(root / "b.png", texture(90, 110, 1))  # smaller than the crop: padded
    return root


def small(root, **kw):
    """Tiny crops so the tests stay fast: GT 64 -> LQ 16 from a 96 crop/pad."""
    kw.setdefault("gt_size", 64)
    kw.setdefault("crop_pad_size", 96)
    return RealESRGANDataset(root, **kw)


def test_meta_info_paths_with_spaces(gt_root, tmp_path):
    meta = tmp_path / "meta info.txt"
    meta.write_text("sub dir/img 1.png\n\nb.png\n", encoding="utf-8")
    ds = small(gt_root, meta_info=meta, seed=0)
    assert len(ds) == 2
    assert ds[0]["gt_path"] == str(gt_root / "sub dir" / "img 1.png") == ds[0]["lq_path"]


def test_missing_listed_file_names_list_line_and_path(gt_root, tmp_path):
    meta = tmp_path / "meta.txt"
    meta.write_text("b.png\nsub dir/nope 2.png\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"meta\.txt line 2: listed file .*nope 2\.png"):
        small(gt_root, meta_info=meta)


def test_missing_meta_info_file_is_a_data_error(gt_root, tmp_path):
    with pytest.raises(DataError, match="absent.txt"):
        small(gt_root, meta_info=tmp_path / "absent.txt")


def test_without_meta_info_every_image_is_listed_recursively(gt_root):
    ds = small(gt_root)
    assert sorted(ds.paths) == sorted([str(gt_root / "b.png"), str(gt_root / "sub dir" / "img 1.png")])


@pytest.mark.parametrize("preset", PRESETS)
def test_item_sizes_dtypes_and_ranges(gt_root, preset):
    ds = small(gt_root, preset=preset, seed=3)
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"lq", "gt", "gt_usm", "lq_path", "gt_path"}
        assert item["lq"].shape == (3, 16, 16) and item["gt"].shape == item["gt_usm"].shape == (3, 64, 64)
        for key in ("lq", "gt", "gt_usm"):
            assert item[key].dtype == np.float32 and item[key].flags.c_contiguous
            assert 0 <= item[key].min() and item[key].max() <= 1
        np.testing.assert_array_equal(np.rint(item["lq"] * 255), item["lq"] * 255)


def test_scale_two_gives_half_size_lq(gt_root):
    item = small(gt_root, scale=2, seed=0)[0]
    assert item["lq"].shape == (3, 32, 32) and item["gt"].shape == (3, 64, 64)


def test_default_crop_pad_size_is_400_as_real_esrgan(gt_root):
    ds = RealESRGANDataset(gt_root, seed=0)
    item = ds[1]  # 90x110 padded to 400
    assert item["lq"].shape == (3, 64, 64) and item["gt"].shape == (3, 256, 256)


def test_fixed_seed_gives_deterministic_items_that_change_on_refetch(gt_root):
    a, b = small(gt_root, seed=5), small(gt_root, seed=5)
    first_a, first_b = a[0], b[0]
    for key in ("lq", "gt", "gt_usm"):
        np.testing.assert_array_equal(first_a[key], first_b[key])
    np.testing.assert_array_equal(a[0]["lq"], b[0]["lq"])  # second fetch: same on both
    assert not np.array_equal(first_a["lq"], a[0]["lq"])  # but not the same as the first fetch
    assert not np.array_equal(first_a["lq"], small(gt_root, seed=6)[0]["lq"])


def test_gt_usm_is_the_sharpened_gt(tmp_path):
    write_image(tmp_path / "x.png", texture(64, 64, 2))
    ds = RealESRGANDataset(tmp_path, gt_size=64, crop_pad_size=64, use_hflip=False, use_rot=False, seed=0)
    item = ds[0]
    gt = item["gt"].transpose(1, 2, 0)
    np.testing.assert_allclose(item["gt_usm"], usm_sharp(gt).transpose(2, 0, 1), atol=1e-6)
    assert np.abs(item["gt_usm"] - item["gt"]).max() > 0.01


def test_usm_gt_degrades_the_sharpened_gt(gt_root):
    plain = small(gt_root, preset="resize_only", seed=1)[0]
    sharpened = small(gt_root, preset="resize_only", seed=1, usm_gt=True)[0]
    np.testing.assert_array_equal(plain["gt"], sharpened["gt"])
    np.testing.assert_array_equal(plain["gt_usm"], sharpened["gt_usm"])
    assert not np.array_equal(plain["lq"], sharpened["lq"])


def shifted_correlation(a, b, dy, dx, m=2):
    h, w = a.shape[-2:]
    return np.corrcoef(a[:, m:h - m, m:w - m].ravel(), b[:, m + dy:h - m + dy, m + dx:w - m + dx].ravel())[0, 1]


def test_lq_is_aligned_with_the_gt_crop(gt_root):
    """resize_only: the area-downscaled GT crop correlates best with the LQ at zero offset."""
    ds = small(gt_root, preset="resize_only", seed=2)
    for _ in range(4):
        item = ds[0]
        down = cv2.resize(item["gt"].transpose(1, 2, 0), (16, 16), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
        scores = {(dy, dx): shifted_correlation(item["lq"], down, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
        assert max(scores, key=scores.get) == (0, 0) and scores[(0, 0)] > 0.9


def test_registered_and_buildable_from_a_config_block(gt_root):
    assert "RealESRGANDataset" in DATASETS
    ds = build_dataset({"name": "RealESRGANDataset", "dataroot_gt": str(gt_root), "gt_size": 64,
                        "crop_pad_size": 96, "preset": "jpeg_only", "jpeg_range": [70, 90], "batch_size": 2})
    assert ds.options["jpeg_range"] == [70, 90] and len(ds) == 2


def test_unknown_degradation_option_is_a_config_error(gt_root):
    with pytest.raises(ConfigError, match="Did you mean 'second_blur_prob'"):
        small(gt_root, second_blur_prb=0.5)


def test_gt_size_must_be_a_multiple_of_scale(gt_root):
    with pytest.raises(ConfigError, match="gt_size 66"):
        small(gt_root, gt_size=66)


def test_flips_by_opencv_equal_numpy_flips():
    img = texture(20, 30, 3)
    for h in (False, True):
        for v in (False, True):
            for t in (False, True):
                expected = img[:, ::-1] if h else img
                expected = expected[::-1] if v else expected
                expected = expected.transpose(1, 0, 2) if t else expected
                np.testing.assert_array_equal(apply_flips(img, h, v, t), expected)
                np.testing.assert_array_equal(apply_flips(img, h, v, t, view=True), expected)


def test_augmented_crop_of_a_crop_sized_image_is_one_of_its_eight_symmetries():
    img = texture(48, 48, 4)
    symmetries = [np.rot90(m, k) for m in (img, img[:, ::-1]) for k in range(4)]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        out = augment_crop_or_pad(img, 48, True, True, rng)
        seen.add(next(i for i, s in enumerate(symmetries) if np.array_equal(out, s)))
    assert seen == set(range(8))
