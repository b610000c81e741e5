"""tools/infer.py and common_data/inference/tiling.py: seam-free tiles, image modes kept, Real-ESRGAN's options."""
import os
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from common_data.inference import tiling as tiling
from common_data.weights import naming as W
from common_data.errors import UserError

torch = pytest.importorskip("torch")
from esrgan_twin.commands import convert as cw
from esrgan_twin.command_errors import run_cli
from esrgan_twin.commands import infer


def tiny(scale=4, seed=0):
    hp = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.15 for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


def torch_forward(canonical):
    return cw.forward_fn(cw.build_model(canonical, "torch"), "torch")


def smooth_image(h, w, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    small = rng.random((max(h // 6, 2), max(w // 6, 2), channels)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1).reshape(h, w, channels)


def lsb(a, b):
    return np.abs(np.round(a * 255) - np.round(b * 255)).max()


# ----------------------------------------------------------------------------------------------------- tiling
def box_blur_x2(radius):
    """A closed-form 'network': mean over a (2r+1)^2 window (zero padding), then nearest x2."""
    def forward(x):
        k = 2 * radius + 1
        padded = np.pad(x, ((0, 0), (0, 0), (radius, radius), (radius, radius)))
        out = sum(padded[:, :, i:i + x.shape[2], j:j + x.shape[3]] for i in range(k) for j in range(k)) / k ** 2
        return out.repeat(2, 2).repeat(2, 3)
    return forward


def test_tiles_equal_the_whole_image_when_the_pad_covers_the_receptive_field():
    x = np.random.default_rng(0).random((1, 2, 37, 50)).astype(np.float32)
    forward = box_blur_x2(3)
    whole = forward(x)
    np.testing.assert_allclose(tiling.tiled_forward(forward, x, 2, tile=8, tile_pad=3), whole, atol=1e-6)
    assert np.abs(tiling.tiled_forward(forward, x, 2, tile=8, tile_pad=2) - whole).max() > 1e-3


@pytest.mark.parametrize("scale,size", [(4, (45, 52)), (2, (95, 86)), (1, (95, 86))])
def test_tiled_rrdbnet_is_within_one_lsb_of_untiled(scale, size):
    canon = tiny(scale)
    forward = torch_forward(canon)
    img = smooth_image(*size)
    pad = W.receptive_radius(canon.hparams)
    tile = pad + 1  # odd: x2/x1 models need it rounded up to their unshuffle factor
    assert len(tiling.tile_boxes(*size, tile)) >= 4
    whole = tiling.upscale_image(forward, img, scale)
    tiled = tiling.upscale_image(forward, img, scale, tile=tile, tile_pad=pad,
                                 multiple=W.unshuffle_multiple(canon.hparams))
    assert whole.shape == (size[0] * scale, size[1] * scale, 3)
    assert lsb(whole, tiled) <= 1


def test_too_small_a_pad_shows_seams():
    canon = tiny(4)
    forward = torch_forward(canon)
    img = smooth_image(40, 40)
    whole = tiling.upscale_image(forward, img, 4)
    assert lsb(whole, tiling.upscale_image(forward, img, 4, tile=10, tile_pad=1)) > 1


def test_pre_pad_is_cropped_away():
    forward = box_blur_x2(0)
    img = smooth_image(9, 11)
    np.testing.assert_array_equal(tiling.upscale_image(forward, img, 2, pre_pad=4),
                                  tiling.upscale_image(forward, img, 2))


def test_tile_smaller_than_pad_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: infer.main(["-i", str(tmp_path), "--tile", "8", "--tile_pad", "10"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --tile 8 is smaller than --tile_pad 10") and "\n" not in err


# ---------------------------------------------------------------------------------------------- image modes
@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    cw.save_weights(tiny(4), "torch", path)
    return path


@pytest.fixture(scope="module")
def upscaler(weights):
    return infer.load_upscaler(str(weights), "torch")


def model_rgb(upscaler, rgb):
    """The reference: the model on a float RGB image, clipped to [0, 1]."""
    return np.clip(upscaler.forward(rgb.transpose(2, 0, 1)[None])[0].transpose(1, 2, 0), 0, 1)


def test_rgba_alpha_by_model_and_by_bicubic(upscaler):
    bgra = (smooth_image(20, 26, channels=4) * 255).round().astype(np.uint8)
    out = infer.enhance(bgra, upscaler, alpha_upsampler="bicubic")
    assert out.shape == (80, 104, 4) and out.dtype == np.uint8
    want_alpha = cv2.resize(bgra[:, :, 3].astype(np.float32) / 255, (104, 80), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out[:, :, 3].astype(int) - np.round(np.clip(want_alpha, 0, 1) * 255)).max() <= 1
    by_model = infer.enhance(bgra, upscaler, alpha_upsampler="realesrgan")
    grey3 = np.repeat(bgra[:, :, 3:].astype(np.float32) / 255, 3, axis=2)
    want = cv2.cvtColor(model_rgb(upscaler, grey3), cv2.COLOR_RGB2GRAY)
    assert np.abs(by_model[:, :, 3].astype(int) - np.round(want * 255)).max() <= 1
    np.testing.assert_array_equal(by_model[:, :, :3], out[:, :, :3])


def test_16_bit_grey_stays_16_bit_grey(upscaler):
    grey16 = (smooth_image(18, 22, channels=1)[:, :, 0] * 65535).round().astype(np.uint16)
    out = infer.enhance(grey16, upscaler)
    assert out.shape == (72, 88) and out.dtype == np.uint16
    rgb = np.repeat(grey16[:, :, None].astype(np.float32) / 65535, 3, axis=2)
    want = cv2.cvtColor(model_rgb(upscaler, rgb), cv2.COLOR_RGB2GRAY) * 65535
    assert np.abs(out.astype(float) - np.round(want)).max() <= 2
    assert np.any(out % 257)  # real 16-bit values, not 8-bit ones scaled up


def test_8_bit_colour_is_the_model_output_in_bgr(upscaler):
    bgr = (smooth_image(16, 16) * 255).round().astype(np.uint8)
    out = infer.enhance(bgr, upscaler)
    want = model_rgb(upscaler, bgr[:, :, ::-1].astype(np.float32) / 255)[:, :, ::-1]
    assert np.abs(out.astype(int) - np.round(want * 255)).max() <= 1


def test_cli_writes_every_mode_with_suffix_outscale_and_names(tmp_path, weights):
    src = tmp_path / "in"
    src.mkdir()
    img = (smooth_image(12, 14) * 255).astype(np.uint8)
    cv2.imwrite(str(src / "rgb.jpg"), img)
    cv2.imwrite(str(src / "rgba.png"), np.dstack([img, img[:, :, 0]]))
    cv2.imwrite(str(src / "grey16.png"), img[:, :, 1].astype(np.uint16) * 257)
    cv2.imwrite(str(src / "grey.png"), img[:, :, 2])
    out = tmp_path / "out"
    infer.main(["-i", str(src), "-o", str(out), "-n", str(weights), "--backend", "torch", "-s", "2.5",
                "--suffix", "sr", "--tile", "8", "--tile_pad", "4"])
    read = {f: cv2.imread(str(out / f), cv2.IMREAD_UNCHANGED) for f in sorted(os.listdir(out))}
    assert set(read) == {"rgb_sr.jpg", "rgba_sr.png", "grey16_sr.png", "grey_sr.png"}
    assert read["rgb_sr.jpg"].shape == (30, 35, 3)
    assert read["rgba_sr.png"].shape == (30, 35, 4)
    assert read["grey16_sr.png"].shape == (30, 35) and read["grey16_sr.png"].dtype == np.uint16
    assert read["grey_sr.png"].shape == (30, 35) and read["grey_sr.png"].dtype == np.uint8
    infer.main(["-i", str(src / "rgb.jpg"), "-o", str(out), "-n", str(weights), "--backend", "torch",
                "--suffix", "", "--ext", "png"])
    assert cv2.imread(str(out / "rgb.png")).shape == (48, 56, 3)


def test_onnx_backend_matches_torch(weights, upscaler, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_up = infer.load_upscaler(str(weights), "onnx", workdir=str(tmp_path))
    bgr = (smooth_image(21, 17) * 255).round().astype(np.uint8)
    assert onnx_up.backend == "onnx" and onnx_up.scale == 4
    assert np.abs(infer.enhance(bgr, onnx_up).astype(int) - infer.enhance(bgr, upscaler)).max() <= 1


def test_unknown_model_and_discriminator_weights_are_errors(tmp_path):
    with pytest.raises(UserError, match="no such file nor a pretrained name.*realesrgan-x4plus-anime"):
        infer.load_upscaler("realesrgan-x9", "torch")
    hp = {"num_in_ch": 3, "num_feat": 4, "skip_connection": True}
    state = {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(W.UNET_DISCRIMINATOR, hp).items()}
    cw.save_weights(W.Canonical(W.UNET_DISCRIMINATOR, "basicsr", state, hp), "torch", tmp_path / "d.pth")
    with pytest.raises(UserError, match="UNetDiscriminatorSN weights, not an RRDBNet"):
        infer.load_upscaler(str(tmp_path / "d.pth"), "torch")


def test_onnx_file_only_runs_on_the_onnx_backend():
    with pytest.raises(UserError, match="only with --backend onnx"):
        infer.load_upscaler("model.onnx", "torch")
