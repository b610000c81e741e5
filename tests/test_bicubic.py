"""MATLAB bicubic imresize: kernel values derived by hand, polynomial reproduction, shapes, rounding."""
import numpy as np
import pytest

from common_data.data.bicubic import cubic, imresize, resize_matrix

# Keys' kernel with a = -0.5 at the quarter offsets, worked out from
# (1.5|x|^3 - 2.5|x|^2 + 1) on [0, 1] and (-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2) on (1, 2]:
# k(0.25) = 111/128, k(0.75) = 29/128, k(1.25) = -9/128, k(1.75) = -3/128.
K025, K075, K125, K175 = 111 / 128, 29 / 128, -9 / 128, -3 / 128


def mapped_coordinate(out_index, scale):
    """0-based input coordinate that 0-based output pixel ``out_index`` samples (pixel centres aligned)."""
    return (out_index + 0.5) / scale - 0.5


def test_kernel_values_at_quarter_offsets():
    np.testing.assert_allclose(cubic([0, 0.25, 0.75, 1, 1.25, 1.75, 2, 2.5]),
                               [1, K025, K075, 0, K125, K175, 0, 0], atol=1e-15)


def test_x2_upscale_of_an_impulse_gives_the_kernel_at_quarter_offsets():
    signal = np.zeros((8, 1))
    signal[4] = 1.0
    out = imresize(signal, output_shape=(16, 1))[:, 0]
    expected = np.array([0, 0, 0, 0, 0, K175, K125, K075, K025, K025, K075, K125, K175, 0, 0, 0])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_half_downscale_of_an_impulse_uses_the_stretched_antialiasing_kernel():
    # Output 4 centres on input 8.5; the kernel is 0.5 * k(d / 2) over 8 taps.
    signal = np.zeros((16, 1))
    signal[8] = 1.0
    out = imresize(signal, output_shape=(8, 1))[:, 0]
    expected = 0.5 * np.array([0, 0, K175, K075, K025, K125, 0, 0])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_half_downscale_without_antialiasing_uses_the_plain_kernel():
    # Output 4 centres on input 8.5: taps 7..10 at distances 1.5, 0.5, 0.5, 1.5.
    signal = np.zeros((16, 1))
    signal[8] = 1.0
    out = imresize(signal, output_shape=(8, 1), antialiasing=False)[:, 0]
    k05, k15 = cubic(0.5), cubic(1.5)
    np.testing.assert_allclose(k05, 0.5625)   # 1.5/8 - 2.5/4 + 1
    np.testing.assert_allclose(k15, -0.0625)  # -0.5*3.375 + 2.5*2.25 - 6 + 2
    np.testing.assert_allclose(out, [0, 0, 0, k15, k05, 0, 0, 0], atol=1e-12)


def test_edges_are_mirrored_with_the_edge_pixel_repeated():
    # x2 upscale of [a, b]: output 0 samples input -0.25, taps at -2, -1, 0, 1 -> mirrored to 1, 0, 0, 1.
    out = imresize(np.array([[0.0], [1.0]]), output_shape=(4, 1))[:, 0]
    assert out[0] == pytest.approx(K175 + K125)
    assert out[3] == pytest.approx(1 - (K175 + K125))


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.75, 2, 3])
def test_rows_of_the_resize_matrix_sum_to_one(scale):
    m = resize_matrix(30, int(np.ceil(30 * scale)), scale)
    np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.25, 0.5, 1 / 3, 2, 3])
def test_a_constant_stays_constant(scale):
    img = np.full((24, 20, 3), 0.3, np.float32)
    out = imresize(img, scale)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


@pytest.mark.parametrize("scale", [0.25, 0.5, 1 / 3, 2, 3])
def test_a_linear_ramp_interior_stays_on_the_ramp(scale):
    # Symmetric taps (downscales by 1/n) and Keys' kernel (any upscale) reproduce linear functions.
    h, w = 48, 36
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.01 * rows - 0.02 * cols + 0.5
    out = imresize(img, scale)
    oh, ow = out.shape
    ri, ci = np.mgrid[0:oh, 0:ow]
    expected = 0.01 * mapped_coordinate(ri, scale) - 0.02 * mapped_coordinate(ci, scale) + 0.5
    margin_in = 3 / min(scale, 1)  # half the (stretched) kernel support plus one pixel
    inside = ((mapped_coordinate(ri, scale) > margin_in) & (mapped_coordinate(ri, scale) < h - 1 - margin_in)
              & (mapped_coordinate(ci, scale) > margin_in) & (mapped_coordinate(ci, scale) < w - 1 - margin_in))
    assert inside.sum() > 4
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-10)


def test_quarter_scale_shape_is_the_ceiling_and_channels_are_kept():
    assert imresize(np.zeros((192, 192, 3), np.float32), 0.25).shape == (48, 48, 3)
    assert imresize(np.zeros((101, 70, 3), np.float32), 0.25).shape == (26, 18, 3)
    assert imresize(np.zeros((101, 70), np.float32), 0.25).shape == (26, 18)


def test_output_shape_gives_exact_size_and_float32_stays_float32():
    out = imresize(np.random.default_rng(0).random((40, 30, 3)).astype(np.float32), output_shape=(10, 25))
    assert out.shape == (10, 25, 3) and out.dtype == np.float32


def test_channels_are_resized_independently():
    rng = np.random.default_rng(1)
    img = rng.random((20, 16, 3))
    out = imresize(img, 0.5)
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], imresize(img[:, :, c], 0.5), atol=1e-12)


def test_uint8_is_rounded_half_away_from_zero_after_each_axis_and_clipped():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint8
    # Reference: float passes by hand, MATLAB-style rounding to uint8 between them (height first).
    mh = resize_matrix(24, 12, 0.5).toarray()
    first = np.clip(np.floor(np.einsum("oh,hwc->owc", mh, img.astype(np.float64)) + 0.5), 0, 255)
    second = np.clip(np.floor(np.einsum("ow,hwc->hoc", mh, first) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, second.astype(np.uint8))


def test_uint8_overshoot_saturates_instead_of_wrapping():
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 255  # a step edge makes the cubic over/undershoot
    out = imresize(img, 2)
    assert out.min() == 0 and out.max() == 255
    assert imresize(img.astype(np.float64), 2).max() > 255  # the float result does overshoot


def test_needs_exactly_one_of_scale_and_output_shape():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0.5, output_shape=(2, 2))
