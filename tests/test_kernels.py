"""Blur kernels: normalisation, symmetry, moments and closed forms, and the sinc kernel's frequency response."""
import math

import numpy as np
import pytest

from common_data.errors import ConfigError
from common_data.data.kernels import (KERNEL_TYPES, bivariate_gaussian, bivariate_generalized_gaussian, bivariate_plateau,
                                 circular_lowpass_kernel, random_blur_kernel, random_final_sinc_kernel,
                                 random_mixed_kernels, sigma_matrix)

RANGES = dict(sigma_x_range=(0.2, 3), sigma_y_range=(0.2, 3), rotation_range=(-math.pi, math.pi),
              betag_range=(0.5, 4), betap_range=(1, 2))


def mixed(kind, rng, size=21):
    return random_mixed_kernels([kind], [1.0], size, rng=rng, **RANGES)


def second_moments(kernel):
    """E[x^2], E[y^2], E[xy] of a kernel as a distribution; x along columns, y along rows."""
    r = kernel.shape[0] // 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (kernel * x * x).sum(), (kernel * y * y).sum(), (kernel * x * y).sum()


@pytest.mark.parametrize("kind", KERNEL_TYPES)
def test_every_kernel_type_sums_to_one_and_is_finite(kind):
    rng = np.random.default_rng(0)
    for size in (7, 13, 21):
        k = mixed(kind, rng, size)
        assert k.shape == (size, size)
        assert np.all(np.isfinite(k)) and np.all(k >= 0)
        assert k.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ["iso", "generalized_iso", "plateau_iso"])
def test_isotropic_kernels_are_symmetric_under_flips_and_transpose(kind):
    rng = np.random.default_rng(1)
    for _ in range(5):
        k = mixed(kind, rng)
        np.testing.assert_allclose(k, k.T, atol=1e-15)
        np.testing.assert_allclose(k, k[::-1], atol=1e-15)
        np.testing.assert_allclose(k, k[:, ::-1], atol=1e-15)


def test_anisotropic_kernel_is_not_symmetric_under_transpose():
    k = bivariate_gaussian(21, 3.0, 1.0, math.pi / 6, isotropic=False)
    assert np.abs(k - k.T).max() > 1e-3


def test_gaussian_second_moment_matches_sigma():
    """A well-sampled Gaussian's covariance is U diag(sx^2, sy^2) U^T (x = columns)."""
    sx, sy, theta = 3.0, 1.5, math.pi / 6
    exx, eyy, exy = second_moments(bivariate_gaussian(41, sx, sy, theta, isotropic=False))
    cov = sigma_matrix(sx, sy, theta)
    assert exx == pytest.approx(cov[0, 0], rel=1e-4)
    assert eyy == pytest.approx(cov[1, 1], rel=1e-4)
    assert exy == pytest.approx(cov[0, 1], rel=1e-4)
    exx, eyy, exy = second_moments(bivariate_gaussian(41, 2.5))
    assert (exx, eyy) == (pytest.approx(6.25, rel=1e-4), pytest.approx(6.25, rel=1e-4))
    assert exy == pytest.approx(0, abs=1e-10)


def test_generalized_gaussian_with_beta_one_is_the_gaussian():
    np.testing.assert_allclose(bivariate_generalized_gaussian(21, 2.0, 1.2, 0.4, beta=1.0, isotropic=False),
                               bivariate_gaussian(21, 2.0, 1.2, 0.4, isotropic=False), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_shape_kernels_follow_their_closed_forms_at_one_sigma(beta):
    """At Mahalanobis distance 1 (two pixels from the centre with sigma 2): exp(-1/2) for the generalized
    Gaussian and 1 / (1 + 1) for the plateau, whatever beta."""
    g = bivariate_generalized_gaussian(21, 2.0, beta=beta)
    p = bivariate_plateau(21, 2.0, beta=beta)
    assert g[10, 12] / g[10, 10] == pytest.approx(math.exp(-0.5))
    assert p[12, 10] / p[10, 10] == pytest.approx(0.5)


def test_sinc_kernel_passes_below_cutoff_and_stops_well_above():
    cutoff = np.pi / 2
    k = circular_lowpass_kernel(cutoff, 41, pad_to=0)
    assert k.sum() == pytest.approx(1.0)
    n = 256
    response = np.abs(np.fft.fft2(np.pad(k, (0, n - 41))))
    w = 2 * np.pi * np.fft.fftfreq(n)
    radius = np.hypot(w[:, None], w[None, :])
    assert np.abs(response[radius < 0.75 * cutoff] - 1).max() < 0.1
    assert response[(radius > 1.35 * cutoff) & (radius <= np.pi)].max() < 0.1


def test_sinc_kernel_is_circular_and_padding_keeps_its_centre():
    k = circular_lowpass_kernel(np.pi / 3, 13, pad_to=21)
    assert k.shape == (21, 21)
    assert not k[:4].any() and not k[:, -4:].any()
    np.testing.assert_allclose(k, k.T, atol=1e-15)
    np.testing.assert_allclose(k[4:17, 4:17], circular_lowpass_kernel(np.pi / 3, 13), rtol=1e-12)
    assert k.min() < 0  # ringing lobes


def test_random_blur_kernel_is_padded_to_the_largest_size_with_an_odd_support():
    rng = np.random.default_rng(3)
    supports = set()
    for _ in range(60):
        k = random_blur_kernel(list(KERNEL_TYPES), [1] * 6, (0.2, 3), (0.5, 4), (1, 2), 0.1, rng)
        assert k.shape == (21, 21) and k.sum() == pytest.approx(1.0)
        rows = np.flatnonzero(np.abs(k).sum(axis=1))
        supports.add(rows[-1] - rows[0] + 1)
    assert supports <= {7, 9, 11, 13, 15, 17, 19, 21} and len(supports) > 3


def test_final_sinc_kernel_probability_zero_and_one():
    rng = np.random.default_rng(4)
    assert random_final_sinc_kernel(0.0, rng) is None
    k = random_final_sinc_kernel(1.0, rng)
    assert k.shape == (21, 21) and k.sum() == pytest.approx(1.0)


def test_same_generator_seed_gives_the_same_kernel():
    a = mixed("generalized_aniso", np.random.default_rng(7))
    b = mixed("generalized_aniso", np.random.default_rng(7))
    c = mixed("generalized_aniso", np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0


def test_kernel_choice_follows_the_weights():
    """iso kernels are symmetric under transpose, rotated aniso ones (almost surely) are not."""
    rng = np.random.default_rng(5)
    kernels = [random_mixed_kernels(["iso", "aniso"], [0.8, 0.2], 21, rng=rng, **RANGES) for _ in range(400)]
    assert 0.74 < np.mean([np.allclose(k, k.T) for k in kernels]) < 0.86


def test_unknown_kernel_type_and_bad_weights_are_config_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="gausian"):
        random_mixed_kernels(["gausian"], [1], 21, rng=rng, **RANGES)
    with pytest.raises(ConfigError, match="kernel_list"):
        random_mixed_kernels(["iso", "aniso"], [1], 21, rng=rng, **RANGES)
