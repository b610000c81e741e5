"""Degradation steps against closed forms and reference formulations, and the presets' contracts."""
import cv2
import numpy as np
import pytest
from scipy import stats

from common_data.data import degradations as deg
from common_data.errors import ConfigError
from common_data.data.kernels import bivariate_gaussian, circular_lowpass_kernel

PRESETS = ["realesrgan_default", "resize_only", "jpeg_only", "anime_light"]


def textured(h=96, w=96, seed=0):
    """Smooth random texture with sharp edges, in [0, 1], float32 RGB."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 1.5)
    img = (img - img.min()) / (img.max() - img.min())
    img[h // 3:h // 2, w // 4:3 * w // 4] = [0.9, 0.2, 0.1]
    return img.astype(np.float32)


def reference_correlate(img, kernel):
    """Direct correlation with numpy's reflect (= OpenCV reflect-101 = torch 'reflect') padding."""
    r = kernel.shape[0] // 2
    padded = np.pad(img.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")
    out = np.zeros(img.shape, np.float64)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[dy:dy + img.shape[0], dx:dx + img.shape[1]]
    return out


# ------------------------------------------------------------------------------------------------- noise
def test_gaussian_noise_std_is_sigma_over_255():
    rng = np.random.default_rng(0)
    noise = deg.gaussian_noise((256, 256, 3), 20.0, rng)
    assert noise.dtype == np.float32
    assert noise.std() == pytest.approx(20 / 255, rel=0.01)
    assert abs(noise.mean()) < 3 * 20 / 255 / np.sqrt(noise.size)
    assert abs(np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]) < 0.02


def test_gray_gaussian_noise_is_the_same_in_every_channel():
    noise = deg.gaussian_noise((128, 128, 3), 10.0, np.random.default_rng(1), gray=True)
    np.testing.assert_array_equal(noise[..., 0], noise[..., 2])
    assert noise.std() == pytest.approx(10 / 255, rel=0.02)


def test_added_gaussian_noise_is_clipped_to_the_unit_range():
    img = np.full((64, 64, 3), 0.98, np.float32)
    out = deg.random_add_gaussian_noise(img, (30, 30), 0.0, np.random.default_rng(2))
    assert out.min() >= 0 and out.max() == 1.0


def ramp_image():
    """Every 8-bit level 0..255 in 600 pixels (200 rows x 3 channels)."""
    return np.repeat(np.repeat((np.arange(256, dtype=np.float32) / 255)[None, :, None], 200, 0), 3, 2)


def test_poisson_noise_variance_is_proportional_to_intensity():
    """Var[Poisson(x v) / v * s] = s^2 x / v, with v = 256 for an image holding all 256 levels."""
    img, scale = ramp_image(), 2.0
    noise = deg.poisson_noise(img, scale, np.random.default_rng(3))
    var = noise.transpose(1, 0, 2).reshape(256, -1).var(axis=1)  # per level (columns)
    level = np.arange(256) / 255
    assert var[0] == 0
    slope = (var[20:] * level[20:]).sum() / (level[20:] ** 2).sum()  # least squares through the origin
    assert slope == pytest.approx(scale ** 2 / 256, rel=0.03)
    low, high = var[40:60].mean() / level[40:60].mean(), var[200:].mean() / level[200:].mean()
    assert low == pytest.approx(high, rel=0.1)
    assert abs(noise.mean()) < 1e-3


def test_gray_poisson_noise_is_the_same_in_every_channel():
    noise = deg.poisson_noise(ramp_image(), 1.0, np.random.default_rng(4), gray=True)
    np.testing.assert_array_equal(noise[..., 0], noise[..., 1])


@pytest.mark.parametrize("level,vals", [(1, 256.0), (128, 256.0), (255, 256.0), (3, 4.0), (100, 64.0)])
def test_poisson_sampler_matches_scipy_distribution(level, vals):
    lam = level * vals / 255
    samples = deg.sample_poisson_levels(np.full(200_000, level), vals, np.random.default_rng(level))
    ks = np.arange(samples.max() + 1)
    observed = np.bincount(samples, minlength=ks.size)
    expected = stats.poisson.pmf(ks, lam) * samples.size
    keep = expected > 10
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3
    assert samples.mean() == pytest.approx(lam, abs=4 * np.sqrt(max(lam, 1e-3) / samples.size) + 1e-9)


# ------------------------------------------------------------------------------------------------- JPEG
def test_jpeg_higher_quality_gives_lower_error():
    img = textured(128, 128)
    errors = [np.abs(deg.jpeg(img, q) - img).mean() for q in (10, 30, 60, 95)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 2 * errors[-1]


def test_jpeg_output_is_float32_8bit_rgb():
    img = np.zeros((32, 40, 3), np.float32)
    img[..., 0] = 1.0  # pure red stays red-dominant: channel order is kept
    out = deg.jpeg(img, 90)
    assert out.shape == img.shape and out.dtype == np.float32
    np.testing.assert_array_equal(np.rint(out * 255), out * 255)
    assert out[..., 0].mean() > 0.9 and out[..., 2].mean() < 0.1


# ------------------------------------------------------------------------------------------------- blur
def test_filter2d_is_reflect101_correlation_for_separable_and_general_kernels():
    img = textured(40, 48)
    asymmetric = np.random.default_rng(5).random((7, 7))
    asymmetric /= asymmetric.sum()
    for kernel in (bivariate_gaussian(9, 1.3), asymmetric, circular_lowpass_kernel(np.pi / 3, 11)):
        np.testing.assert_allclose(deg.filter2d(img, kernel), reference_correlate(img, kernel), atol=2e-6)


def test_filter2d_large_kernel_on_large_image_takes_the_dft_path_with_the_same_values():
    img = textured(240, 230)  # above the DFT threshold; odd sizes exercise the padding to a DFT size
    rng = np.random.default_rng(6)
    asymmetric = rng.random((21, 21))
    asymmetric /= asymmetric.sum()
    for kernel in (asymmetric, bivariate_gaussian(21, 2.5, 1.2, 0.7, isotropic=False)):
        np.testing.assert_allclose(deg.filter2d(img, kernel), reference_correlate(img, kernel), atol=2e-6)
    gray = img[:, :, 1].copy()
    np.testing.assert_allclose(deg.dft_correlate(gray, asymmetric.astype(np.float32)),
                               reference_correlate(img, asymmetric)[:, :, 1], atol=2e-6)


def test_filter2d_ignores_zero_padding_and_none_is_identity():
    img = textured(40, 40)
    kernel = bivariate_gaussian(7, 1.0, 0.6, 0.3, isotropic=False)
    np.testing.assert_allclose(deg.filter2d(img, np.pad(kernel, 7)), reference_correlate(img, kernel), atol=2e-6)
    assert deg.filter2d(img, None) is img


# ------------------------------------------------------------------------------------------------- resize
@pytest.mark.parametrize("mode,flag", [("area", cv2.INTER_AREA), ("bilinear", cv2.INTER_LINEAR),
                                       ("bicubic", cv2.INTER_CUBIC)])
def test_resize_modes_are_opencv_interpolations(mode, flag):
    img = textured(60, 80)
    out = deg.resize(img, (30, 45), mode)
    assert out.shape == (30, 45, 3)
    np.testing.assert_array_equal(out, cv2.resize(img, (45, 30), interpolation=flag))


def test_random_resize_sizes_follow_the_up_down_keep_choice():
    img = textured(100, 100)
    rng = np.random.default_rng(6)
    assert deg.random_resize(img, [0, 0, 1], [0.15, 1.5], rng).shape == (100, 100, 3)
    for _ in range(10):
        assert deg.random_resize(img, [1, 0, 0], [0.15, 1.5], rng).shape[0] in range(100, 151)
        assert deg.random_resize(img, [0, 1, 0], [0.15, 1.5], rng).shape[0] in range(15, 101)


# ------------------------------------------------------------------------------------------------- USM
def test_usm_matches_real_esrgan_2d_formulation():
    """USMSharp: 51x51 2-D kernel outer(getGaussianKernel(51, 0)), weight 0.5, threshold 10."""
    img = textured(80, 90)
    g = cv2.getGaussianKernel(51, 0)
    blur = reference_correlate(img, g @ g.T)
    residual = img - blur
    mask = (np.abs(residual) * 255 > 10).astype(np.float64)
    soft = reference_correlate(mask, g @ g.T)
    sharp = np.clip(img + 0.5 * residual, 0, 1)
    expected = soft * sharp + (1 - soft) * img
    np.testing.assert_allclose(deg.usm_sharp(img), expected, atol=2e-5)


def test_usm_crop_equals_crop_of_full_image():
    img = textured(150, 170)
    full = deg.usm_sharp(img)
    for y, x, h, w in [(0, 0, 64, 64), (40, 60, 64, 80), (86, 106, 64, 64), (10, 0, 140, 170)]:
        np.testing.assert_allclose(deg.usm_sharp(img, crop=(y, x, h, w)), full[y:y + h, x:x + w], atol=1e-6)


def test_usm_leaves_flat_images_alone():
    img = np.full((64, 64, 3), 0.3, np.float32)
    np.testing.assert_allclose(deg.usm_sharp(img), img, atol=1e-6)


# ------------------------------------------------------------------------------------------------- options
def test_defaults_are_real_esrgan_x4plus_values():
    d = deg.DEFAULTS
    assert d["kernel_list"] == ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                "plateau_aniso"] == d["kernel_list2"]
    assert d["kernel_prob"] == [0.45, 0.25, 0.12, 0.03, 0.12, 0.03] == d["kernel_prob2"]
    assert (d["blur_kernel_size"], d["sinc_prob"], d["blur_sigma"], d["betag_range"], d["betap_range"]) == \
        (21, 0.1, [0.2, 3], [0.5, 4], [1, 2])
    assert (d["blur_kernel_size2"], d["sinc_prob2"], d["blur_sigma2"], d["betag_range2"], d["betap_range2"]) == \
        (21, 0.1, [0.2, 1.5], [0.5, 4], [1, 2])
    assert (d["final_sinc_prob"], d["resize_prob"], d["resize_range"], d["gaussian_noise_prob"], d["noise_range"],
            d["poisson_scale_range"], d["gray_noise_prob"], d["jpeg_range"]) == \
        (0.8, [0.2, 0.7, 0.1], [0.15, 1.5], 0.5, [1, 30], [0.05, 3], 0.4, [30, 95])
    assert (d["second_blur_prob"], d["resize_prob2"], d["resize_range2"], d["gaussian_noise_prob2"],
            d["noise_range2"], d["gray_noise_prob2"], d["poisson_scale_range2"], d["jpeg_range2"], d["gt_size"]) == \
        (0.8, [0.3, 0.4, 0.3], [0.3, 1.2], 0.5, [1, 25], 0.4, [0.05, 2.5], [30, 95], 256)


def test_unknown_option_names_the_key_and_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"'noise_rnage'.*Did you mean 'noise_range'"):
        deg.resolve_options({"noise_rnage": [1, 3]})


def test_option_of_another_preset_and_unknown_preset_are_config_errors():
    with pytest.raises(ConfigError, match="'noise_range' for preset 'anime_light'"):
        deg.resolve_options({"preset": "anime_light", "noise_range": [1, 3]})
    with pytest.raises(ConfigError, match="Did you mean 'jpeg_only'"):
        deg.resolve_options({"preset": "jpeg_onyl"})


@pytest.mark.parametrize("key,value", [("jpeg_range", [95, 30]), ("resize_prob", [0.5, 0.5]), ("sinc_prob", 1.5),
                                       ("kernel_list", ["iso", "box"]), ("kernel_prob", [1, 2]),
                                       ("blur_kernel_size", 20)])
def test_bad_option_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        deg.resolve_options({key: value})


def test_options_override_the_preset_defaults():
    o = deg.resolve_options({"preset": "jpeg_only", "jpeg_range": [50, 60]})
    assert o["jpeg_range"] == [50, 60] and o["resize_modes"] == ["bicubic", "area"] and o["preset"] == "jpeg_only"
    assert deg.PRESETS["jpeg_only"]["jpeg_range"] == [30, 95]  # defaults untouched


# ------------------------------------------------------------------------------------------------- pipelines
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("scale", [4, 2])
def test_every_preset_gives_8bit_lq_of_gt_over_scale(preset, scale):
    gt = textured(96, 120)
    rng = np.random.default_rng(9)
    for _ in range(4):
        lq = deg.degrade(gt, {"preset": preset}, rng, scale=scale)
        assert lq.shape == (96 // scale, 120 // scale, 3) and lq.dtype == np.float32
        assert lq.min() >= 0 and lq.max() <= 1
        np.testing.assert_array_equal(np.rint(lq * 255), lq * 255)


@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_lq_and_other_seed_other_lq(preset):
    gt = textured(96, 96)
    a = deg.degrade(gt, {"preset": preset}, np.random.default_rng(11))
    b = deg.degrade(gt, {"preset": preset}, np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)
    others = [deg.degrade(gt, {"preset": preset}, np.random.default_rng(s)) for s in range(12, 20)]
    assert any(np.abs(a - o).max() > 0 for o in others)


def test_resize_only_is_a_plain_bicubic_or_area_downscale():
    gt = textured(96, 96)
    lq = deg.degrade(gt, {"preset": "resize_only"}, np.random.default_rng(0))
    candidates = [deg.quantize(cv2.resize(gt, (24, 24), interpolation=f)) for f in (cv2.INTER_CUBIC, cv2.INTER_AREA)]
    assert any(np.array_equal(lq, c) for c in candidates)


@pytest.mark.parametrize("preset", ["resize_only", "jpeg_only", "anime_light"])
def test_light_presets_add_no_noise_to_a_flat_image(preset):
    gt = np.full((64, 64, 3), 128 / 255, np.float32)
    rng = np.random.default_rng(1)
    for _ in range(5):
        np.testing.assert_allclose(deg.degrade(gt, {"preset": preset}, rng), 128 / 255, atol=1e-6)


def test_default_pipeline_adds_noise_to_a_flat_image():
    gt = np.full((64, 64, 3), 128 / 255, np.float32)
    rng = np.random.default_rng(1)
    assert all(deg.degrade(gt, {}, rng).std() > 0 for _ in range(3))


def test_default_pipeline_degrades_more_than_resize_only():
    gt = textured(128, 128)
    rng = np.random.default_rng(2)
    ref = cv2.resize(gt, (32, 32), interpolation=cv2.INTER_AREA)
    err = {p: np.mean([np.abs(deg.degrade(gt, {"preset": p}, rng) - ref).mean() for _ in range(8)]) for p in
           ("resize_only", "realesrgan_default")}
    assert err["realesrgan_default"] > 2 * err["resize_only"]
