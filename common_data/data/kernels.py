"""Real-ESRGAN blur kernels (BasicSR ``basicsr/data/degradations.py`` definitions), numpy only.

Kernels are ``kernel_size x kernel_size`` float64 arrays that sum to 1, indexed ``[row (y), column (x)]``.
``sig_x`` is the standard deviation along x (columns) before the rotation ``theta`` (radians).
Every random function takes a ``numpy.random.Generator`` as ``rng``; nothing uses global random state.
"""
import math

import numpy as np
from scipy import special

from common_data.errors import ConfigError

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def mesh_grid(kernel_size):
    """Coordinates ``(xx, yy)`` of a ``kernel_size`` grid centred on zero."""
    ax = np.arange(-(kernel_size // 2), kernel_size // 2 + 1, dtype=np.float64)
    return np.meshgrid(ax, ax)


def sigma_matrix(sig_x, sig_y, theta):
    """Covariance matrix ``U diag(sig_x^2, sig_y^2) U^T`` with ``U`` the rotation by ``theta``."""
    c, s = math.cos(theta), math.sin(theta)
    u = np.array([[c, -s], [s, c]])
    return u @ np.diag([sig_x ** 2, sig_y ** 2]) @ u.T


def _quadratic_form(kernel_size, sig_x, sig_y, theta, isotropic):
    """``[x y] Sigma^-1 [x y]^T`` on the grid (the squared Mahalanobis distance)."""
    xx, yy = mesh_grid(kernel_size)
    cov = np.diag([sig_x ** 2, sig_x ** 2]) if isotropic else sigma_matrix(sig_x, sig_y, theta)
    inv = np.linalg.inv(cov)
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalised(kernel):
    return kernel / np.sum(kernel)


def bivariate_gaussian(kernel_size, sig_x, sig_y=None, theta=0.0, isotropic=True):
    """``exp(-q/2)``; isotropic uses ``sig_x`` only."""
    q = _quadratic_form(kernel_size, sig_x, sig_y if sig_y is not None else sig_x, theta, isotropic)
    return _normalised(np.exp(-0.5 * q))


def bivariate_generalized_gaussian(kernel_size, sig_x, sig_y=None, theta=0.0, beta=1.0, isotropic=True):
    """``exp(-q^beta / 2)`` (beta = 1 is the Gaussian)."""
    q = _quadratic_form(kernel_size, sig_x, sig_y if sig_y is not None else sig_x, theta, isotropic)
    return _normalised(np.exp(-0.5 * np.power(q, beta)))


def bivariate_plateau(kernel_size, sig_x, sig_y=None, theta=0.0, beta=1.0, isotropic=True):
    """``1 / (1 + q^beta)``: a flat top with heavy tails."""
    q = _quadratic_form(kernel_size, sig_x, sig_y if sig_y is not None else sig_x, theta, isotropic)
    return _normalised(np.reciprocal(np.power(q, beta) + 1.0))


def circular_lowpass_kernel(cutoff, kernel_size, pad_to=0):
    """Circular 2-D sinc ``cutoff J1(cutoff r) / (2 pi r)``, cutoff in radians (pi = Nyquist), normalised to sum 1
    and zero-padded to ``pad_to``."""
    if kernel_size % 2 != 1:
        raise ValueError(f"sinc kernel size must be odd, got {kernel_size}")
    xx, yy = mesh_grid(kernel_size)
    r = np.hypot(xx, yy)
    safe_r = np.where(r == 0, 1.0, r)
    kernel = np.where(r == 0, cutoff ** 2 / (4 * np.pi), cutoff * special.j1(cutoff * safe_r) / (2 * np.pi * safe_r))
    kernel = _normalised(kernel)
    if pad_to and pad_to > kernel_size:
        p = (pad_to - kernel_size) // 2
        kernel = np.pad(kernel, p)
    return kernel


def _random_shape(sigma_x_range, sigma_y_range, rotation_range, isotropic, rng):
    sig_x = rng.uniform(sigma_x_range[0], sigma_x_range[1])
    if isotropic:
        return sig_x, sig_x, 0.0
    sig_y = rng.uniform(sigma_y_range[0], sigma_y_range[1])
    theta = rng.uniform(rotation_range[0], rotation_range[1])
    return sig_x, sig_y, theta


def _random_beta(beta_range, rng):
    """BasicSR: half the time below 1, half the time above 1."""
    if rng.uniform() < 0.5:
        return rng.uniform(beta_range[0], 1.0)
    return rng.uniform(1.0, beta_range[1])


def random_bivariate_gaussian(kernel_size, sigma_x_range, sigma_y_range, rotation_range, rng, isotropic=True):
    sig_x, sig_y, theta = _random_shape(sigma_x_range, sigma_y_range, rotation_range, isotropic, rng)
    return bivariate_gaussian(kernel_size, sig_x, sig_y, theta, isotropic)


def random_bivariate_generalized_gaussian(kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range, rng,
                                          isotropic=True):
    sig_x, sig_y, theta = _random_shape(sigma_x_range, sigma_y_range, rotation_range, isotropic, rng)
    beta = _random_beta(beta_range, rng)
    return bivariate_generalized_gaussian(kernel_size, sig_x, sig_y, theta, beta, isotropic)


def random_bivariate_plateau(kernel_size, sigma_x_range, sigma_y_range, rotation_range, beta_range, rng,
                             isotropic=True):
    sig_x, sig_y, theta = _random_shape(sigma_x_range, sigma_y_range, rotation_range, isotropic, rng)
    beta = _random_beta(beta_range, rng)
    return bivariate_plateau(kernel_size, sig_x, sig_y, theta, beta, isotropic)


def choose(options, weights, rng, key="kernel_list"):
    """One item of ``options`` drawn with relative ``weights`` (like ``random.choices``)."""
    p = np.asarray(weights, dtype=np.float64)
    if len(p) != len(options) or np.any(p < 0) or p.sum() <= 0:
        raise ConfigError(f"{key}: needs one non-negative weight per entry, got {list(weights)} for {list(options)}")
    return options[rng.choice(len(options), p=p / p.sum())]


def random_mixed_kernels(kernel_list, kernel_prob, kernel_size, sigma_x_range, sigma_y_range, rotation_range,
                         betag_range, betap_range, rng):
    """A kernel of a type drawn from ``kernel_list`` with weights ``kernel_prob`` (see ``KERNEL_TYPES``)."""
    kind = choose(list(kernel_list), kernel_prob, rng)
    iso = not kind.endswith("aniso")
    if kind in ("iso", "aniso"):
        return random_bivariate_gaussian(kernel_size, sigma_x_range, sigma_y_range, rotation_range, rng, iso)
    if kind in ("generalized_iso", "generalized_aniso"):
        return random_bivariate_generalized_gaussian(kernel_size, sigma_x_range, sigma_y_range, rotation_range,
                                                     betag_range, rng, iso)
    if kind in ("plateau_iso", "plateau_aniso"):
        return random_bivariate_plateau(kernel_size, sigma_x_range, sigma_y_range, rotation_range, betap_range, rng,
                                        iso)
    raise ConfigError(f"kernel_list: unknown kernel type {kind!r}; use some of {', '.join(KERNEL_TYPES)}")


def kernel_sizes(max_size=21):
    """Real-ESRGAN's kernel sizes: odd, from 7 to ``max_size`` (21 -> 7, 9, ..., 21)."""
    return list(range(7, max(7, max_size) + 1, 2))


def random_blur_kernel(kernel_list, kernel_prob, blur_sigma, betag_range, betap_range, sinc_prob, rng,
                       blur_kernel_size=21):
    """Real-ESRGAN's per-stage kernel: a random odd size, a sinc with ``sinc_prob`` (cutoff pi/3..pi below size 13,
    pi/5..pi from 13) or else a mixed kernel, zero-padded to ``blur_kernel_size``.

    Real-ESRGAN hard-codes 21 for the largest size and the padding; here both follow ``blur_kernel_size``
    (21 by default).
    """
    size = int(rng.choice(kernel_sizes(blur_kernel_size)))
    if rng.uniform() < sinc_prob:
        low = np.pi / 3 if size < 13 else np.pi / 5
        kernel = circular_lowpass_kernel(rng.uniform(low, np.pi), size)
    else:
        kernel = random_mixed_kernels(kernel_list, kernel_prob, size, blur_sigma, blur_sigma, (-math.pi, math.pi),
                                      betag_range, betap_range, rng)
    pad = max(0, (blur_kernel_size - size) // 2)
    return np.pad(kernel, pad)


def random_final_sinc_kernel(final_sinc_prob, rng, pad_to=21):
    """Real-ESRGAN's last-stage sinc (cutoff pi/3..pi, size 7..21) with ``final_sinc_prob``, else ``None``
    (the identity)."""
    if rng.uniform() >= final_sinc_prob:
        return None
    size = int(rng.choice(kernel_sizes(pad_to)))
    return circular_lowpass_kernel(rng.uniform(np.pi / 3, np.pi), size, pad_to=pad_to)
