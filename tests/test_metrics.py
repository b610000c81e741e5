"""PSNR / SSIM against closed forms, the BT.601 formula and scikit-image's SSIM."""
import math

import numpy as np
import pytest

from common_data.errors import ConfigError, DataError
from common_data.metrics.quality import PSNR, SSIM, build_metrics, calculate_psnr, calculate_ssim, to_y_channel

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def rand_img(h=24, w=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("d", [1, 5, 40])
def test_psnr_of_a_constant_difference_is_10_log10_255_squared_over_d_squared(d):
    a = np.full((8, 8, 3), 100, np.uint8)
    assert calculate_psnr(a, a + d, crop_border=0) == pytest.approx(10 * math.log10(255 ** 2 / d ** 2), abs=1e-9)


def test_psnr_of_identical_images_is_infinite():
    a = rand_img()
    assert calculate_psnr(a, a.copy(), crop_border=0) == math.inf


def test_crop_border_ignores_the_border_pixels():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:2] = 255
    b[:, -2:] = 255
    assert calculate_psnr(a, b, crop_border=2) == math.inf
    assert calculate_psnr(a, b, crop_border=1) < 20


def test_chw_input_gives_the_same_values_as_hwc():
    a, b = rand_img(seed=1), rand_img(seed=2)
    ca, cb = a.transpose(2, 0, 1), b.transpose(2, 0, 1)
    assert calculate_psnr(ca, cb, 2, input_order="CHW") == calculate_psnr(a, b, 2)
    assert calculate_ssim(ca, cb, 2, input_order="CHW") == pytest.approx(calculate_ssim(a, b, 2), abs=1e-12)


@pytest.mark.parametrize("rgb, y", [((255, 0, 0), 16 + 65.481), ((0, 255, 0), 16 + 128.553),
                                    ((0, 0, 255), 16 + 24.966), ((255, 255, 255), 235.0), ((0, 0, 0), 16.0)])
def test_y_channel_of_pure_colours_is_bt601_with_the_16_offset(rgb, y):
    img = np.array(rgb, np.uint8).reshape(1, 1, 3)
    assert to_y_channel(img, "rgb")[0, 0, 0] == pytest.approx(y, abs=1e-9)
    assert to_y_channel(img[..., ::-1], "bgr")[0, 0, 0] == pytest.approx(y, abs=1e-9)


def test_y_psnr_of_bgr_images_with_bgr_order_equals_rgb_images_with_rgb_order():
    a, b = rand_img(seed=3), rand_img(seed=4)
    rgb = calculate_psnr(a, b, 0, test_y_channel=True, color_order="rgb")
    bgr = calculate_psnr(a[..., ::-1], b[..., ::-1], 0, test_y_channel=True, color_order="bgr")
    wrong = calculate_psnr(a[..., ::-1], b[..., ::-1], 0, test_y_channel=True, color_order="rgb")
    assert rgb == pytest.approx(bgr, abs=1e-9) and abs(rgb - wrong) > 1e-3


def test_y_psnr_equals_psnr_of_the_bt601_luma_computed_by_hand():
    a, b = rand_img(seed=5).astype(np.float64), rand_img(seed=6).astype(np.float64)
    ya = 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255
    yb = 16 + (65.481 * b[..., 0] + 128.553 * b[..., 1] + 24.966 * b[..., 2]) / 255
    expected = 10 * math.log10(255 ** 2 / np.mean((ya - yb) ** 2))
    assert calculate_psnr(a, b, 0, test_y_channel=True) == pytest.approx(expected, abs=1e-9)


def test_ssim_of_identical_images_is_1():
    a = rand_img()
    assert calculate_ssim(a, a.copy(), crop_border=0) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_constant_images_is_the_luminance_term():
    a, b = 100.0, 140.0
    expected = (2 * a * b + C1) / (a * a + b * b + C1)
    got = calculate_ssim(np.full((16, 16, 3), a), np.full((16, 16, 3), b), crop_border=0)
    assert got == pytest.approx(expected, abs=1e-9)


def test_ssim_matches_scikit_image_gaussian_ssim():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = rand_img(32, 28, 7), rand_img(32, 28, 8)
    b = np.clip(a.astype(int) + (b.astype(int) - 128) // 4, 0, 255).astype(np.uint8)
    ref = np.mean([metrics.structural_similarity(a[..., c].astype(np.float64), b[..., c].astype(np.float64),
                                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                 data_range=255) for c in range(3)])
    assert calculate_ssim(a, b, crop_border=0) == pytest.approx(ref, abs=1e-6)


def test_different_shapes_are_a_data_error():
    with pytest.raises(DataError, match=r"different shapes \(8, 8, 3\) and \(8, 9, 3\)"):
        calculate_psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)), 0)


def test_metric_objects_accumulate_the_mean_of_their_updates():
    base = np.full((12, 12, 3), 50, np.uint8)
    psnr = PSNR(crop_border=0)
    psnr.update(base, base + 1)
    psnr.update([base, base], [base + 2, base + 4])
    expected = np.mean([10 * math.log10(255 ** 2 / d ** 2) for d in (1, 2, 4)])
    assert psnr.accumulate() == pytest.approx(expected, abs=1e-9) and psnr.name() == "PSNR"
    psnr.reset()
    assert psnr.accumulate() == 0.0
    ssim = SSIM(crop_border=0)
    ssim.update(base, base)
    assert ssim.accumulate() == pytest.approx(1.0) and ssim.name() == "SSIM"


def test_build_metrics_reads_paddlegan_validate_metrics():
    metrics = build_metrics({"psnr": {"name": "PSNR", "crop_border": 4, "test_y_channel": True},
                             "ssim": {"name": "SSIM", "crop_border": 4}})
    assert isinstance(metrics["psnr"], PSNR) and metrics["psnr"].test_y_channel and metrics["psnr"].crop_border == 4
    assert type(metrics["ssim"]) is SSIM
    assert build_metrics(None) == {}


def test_unknown_metric_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown metric name 'NIQE' \(at validate.metrics.niqe\).*Known: .*PSNR, SSIM"):
        build_metrics({"niqe": {"name": "NIQE"}})
