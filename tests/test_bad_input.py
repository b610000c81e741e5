"""Every CLI tool ends bad input with ONE stderr line ``error: ...`` (exit 2) naming the culprit; no traceback.

One table: each case builds its bad input under ``tmp_path``, runs a tool in a subprocess and checks the exit
code, the single ``error:`` line and the substrings it must hold (mostly the file or key at fault). The positive
cases at the end check that 16-bit, RGBA and grey images go through tools/infer.py and keep their kind.

Framework noise that is not ours and is ignored on stderr (``error_lines``):
  - Python warnings printed at import: a line holding ``Warning`` or ``warn`` (paddle's ``...: UserWarning: No
    ccache found ...`` and its source line ``  warnings.warn(warning_message)``), and an indented line right after
    such a line (the source line of any warning);
  - glog lines of paddle's C++ core: ``W1125 02:04:41.123 ...`` (a level letter I/W/E/F, MMDD and a time).
Everything else on stderr must be the one ``error:`` line.
"""
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")

from common_data.weights import naming as W
from common_data.data.demo_data import make_demo_data
from helpers import paired_preprocess

TINY_HP = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4)
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
GLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")


def error_lines(stderr):
    """Non-empty stderr lines less the framework noise named in the module docstring."""
    kept, after_warning = [], False
    for line in stderr.splitlines():
        warning = "Warning" in line or "warn" in line
        if line.strip() and not warning and not GLOG.match(line) and not (after_warning and line.startswith(" ")):
            kept.append(line)
        after_warning = warning
    return kept


# ------------------------------------------------------------------------------------------------- shared assets
@dataclass
class Assets:
    root: str
    demo: str
    weights: dict = field(default_factory=dict)


def tiny_canonical(scale=4, seed=0):
    hp = dict(TINY_HP, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


def unet_canonical():
    hp = dict(num_in_ch=3, num_feat=4)
    state = {k: np.full(s, 0.01, np.float32) for k, s in W.expected_shapes(W.UNET_DISCRIMINATOR, hp).items()}
    return W.Canonical(W.UNET_DISCRIMINATOR, "basicsr", state, hp)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from esrgan_twin.commands import convert as cw
    root = str(tmp_path_factory.mktemp("assets"))
    demo = os.path.join(root, "demo")
    make_demo_data(demo, num_train=2, num_test=1, seed=0, size=32)
    a = Assets(root, demo)
    for name, canon, framework in (("g4.pdparams", tiny_canonical(4), "paddle"),
                                   ("g2.pdparams", tiny_canonical(2), "paddle"),
                                   ("g2.pth", tiny_canonical(2), "torch"),
                                   ("g4.pth", tiny_canonical(4), "torch"),
                                   ("unet.pdparams", unet_canonical(), "paddle"),
                                   ("unet.pth", unet_canonical(), "torch")):
        a.weights[name] = os.path.join(root, name)
        cw.save_weights(canon, framework, a.weights[name])
    a.weights["fixed24.onnx"] = os.path.join(root, "fixed24.onnx")
    export_fixed_size_onnx(tiny_canonical(4), a.weights["fixed24.onnx"], 24)
    return a


def export_fixed_size_onnx(canonical, path, size):
    """An ONNX graph whose input is fixed to 1x3xSIZExSIZE (no dynamic axes), as some third-party exports are."""
    import warnings

    import torch

    from esrgan_twin.commands import convert as cw
    model = cw.build_model(canonical, "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 3, size, size),), path, dynamo=False, input_names=["input"],
                          output_names=["output"], opset_version=17)


# ---------------------------------------------------------------------------------------------- input builders
def copy_demo(tmp, a):
    dst = os.path.join(tmp, "data")
    shutil.copytree(a.demo, dst)
    return dst


def base_config(tmp, data):
    return {
        "total_iters": 2, "output_dir": os.path.join(tmp, "out"), "min_max": "(0., 1.)", "seed": 1,
        "model": {"name": "BaseSRModel", "generator": dict(TINY_G), "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {
            "train": {"name": "SRDataset", "gt_folder": f"{data}/train", "lq_folder": f"{data}/train_X4",
                      "scale": 4, "batch_size": 2, "num_workers": 0, "preprocess": paired_preprocess()},
            "test": {"name": "SRDataset", "gt_folder": f"{data}/test", "lq_folder": f"{data}/test_X4", "scale": 4,
                     "preprocess": paired_preprocess()}},
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [2],
                         "restart_weights": [1], "eta_min": 1e-7},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "validate": {"interval": 100, "metrics": {"psnr": {"name": "PSNR", "crop_border": 4}}},
        "log_config": {"interval": 1, "visiual_interval": 100},
        "snapshot_config": {"interval": 100},
    }


def write_config(tmp, cfg, name="bad.yaml"):
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, allow_unicode=True)
    return path


def main_cmd(tmp, a, change=None, data=None, extra=()):
    """tools/main.py on the base config after ``change(cfg)``; ``data`` defaults to the shared demo set."""
    cfg = base_config(tmp, data or a.demo)
    if change:
        change(cfg)
    return ["main.py", "-c", write_config(tmp, cfg), *extra]


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def png_bytes(img):
    return cv2.imencode(".png", img)[1].tobytes()


def jpeg_bytes(img):
    return cv2.imencode(".jpg", img)[1].tobytes()


def small_image(h=12, w=10, channels=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, top, shape, dtype=np.int64).astype(dtype)


def truncated_png():
    return png_bytes(small_image(40, 40))[:-40]


def truncated_jpeg():
    data = jpeg_bytes(small_image(40, 40))
    return data[:len(data) * 2 // 3]


def infer_cmd(tmp, a, image_bytes, name="in.png", model="g4.pth", extra=()):
    path = write_bytes(os.path.join(tmp, "inputs", name), image_bytes)
    return ["infer.py", "-i", path, "-o", os.path.join(tmp, "results"), "-n", a.weights.get(model, model),
            "--backend", "torch", *extra]


# ---------------------------------------------------------------------------------------------- the cases
def corrupt_train_gt(tmp, a):
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "train", "train_0001.png"), b"\x89PNG\r\n\x1a\n this is not a picture")
    return main_cmd(tmp, a, data=data)


def corrupt_train_gt_in_worker(tmp, a, backend="paddle"):
    """The same with a loader worker process: the message must not arrive wrapped in the worker's traceback."""
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "train", "train_0000.png"), b"\x89PNG\r\n\x1a\n not a picture either")
    return main_cmd(tmp, a, data=data, change=lambda c: c["dataset"]["train"].update(num_workers=1),
                    extra=("--backend", backend))


def torch_corrupt_train_gt_in_worker(tmp, a):
    return corrupt_train_gt_in_worker(tmp, a, backend="torch")


def torch_lq_size_not_gt_over_scale(tmp, a):
    return lq_size_not_gt_over_scale(tmp, a) + ["--backend", "torch"]


def torch_load_pdparams_where_pth_expected(tmp, a):
    return main_cmd(tmp, a, extra=("--backend", "torch", "--evaluate-only", "--load", a.weights["g4.pdparams"]))


def torch_load_weights_of_other_scale(tmp, a):
    return main_cmd(tmp, a, extra=("--backend", "torch", "--evaluate-only", "--load", a.weights["g2.pth"]))


def torch_vgg_weights_missing(tmp, a):
    return vgg_weights_missing(tmp, a) + ["--backend", "torch"]


def truncated_train_lq(tmp, a):
    data = copy_demo(tmp, a)
    path = os.path.join(data, "train_X4", "train_0000.png")
    with open(path, "rb") as f:
        good = f.read()
    write_bytes(path, good[:len(good) // 2])
    return main_cmd(tmp, a, data=data)


def zero_byte_train_gt(tmp, a):
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "train", "train_0000.png"), b"")
    return main_cmd(tmp, a, data=data)


def corrupt_test_image(tmp, a):
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "test_X4", "test_0000.png"), b"GIF89a nonsense")
    return main_cmd(tmp, a, data=data)


def only_non_image_in_folder(tmp, a):
    data = copy_demo(tmp, a)
    for name in os.listdir(os.path.join(data, "train")):
        os.remove(os.path.join(data, "train", name))
    write_bytes(os.path.join(data, "train", "notes.txt"), b"my photos are elsewhere")
    return main_cmd(tmp, a, data=data)


def non_image_with_image_extension(tmp, a):
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "train", "readme.png"), b"this is a text file with a .png name\n")
    write_bytes(os.path.join(data, "train_X4", "readme.png"), b"this is a text file with a .png name\n")
    return main_cmd(tmp, a, data=data, change=lambda c: c["dataset"]["train"].update(batch_size=3))


def lq_size_not_gt_over_scale(tmp, a):
    data = copy_demo(tmp, a)
    write_bytes(os.path.join(data, "train_X4", "train_0001.png"), png_bytes(small_image(9, 7)))
    return main_cmd(tmp, a, data=data)


def lq_gt_different_files(tmp, a):
    data = copy_demo(tmp, a)
    os.rename(os.path.join(data, "train_X4", "train_0001.png"), os.path.join(data, "train_X4", "other_0001.png"))
    return main_cmd(tmp, a, data=data)


def missing_gt_folder(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["dataset"]["train"].update(gt_folder=os.path.join(tmp, "nowhere")))


def empty_lq_folder(tmp, a):
    empty = os.path.join(tmp, "empty_lq")
    os.makedirs(empty)
    return main_cmd(tmp, a, change=lambda c: c["dataset"]["train"].update(lq_folder=empty))


def realesrgan_block(tmp, a, meta):
    def change(c):
        c["dataset"]["train"] = {"name": "RealESRGANDataset", "dataroot_gt": os.path.join(tmp, "gt"),
                                 "meta_info": meta, "gt_size": 16, "crop_pad_size": 32, "batch_size": 1,
                                 "num_workers": 0}
    return change


def meta_info_unicode_line_missing(tmp, a):
    gt = os.path.join(tmp, "gt", "ördner mit leerzeichen")
    os.makedirs(gt)
    shutil.copy(os.path.join(a.demo, "train", "train_0000.png"), os.path.join(gt, "bild 1 ✓.png"))
    meta = os.path.join(tmp, "meta info.txt")
    with open(meta, "w", encoding="utf-8") as f:
        f.write("ördner mit leerzeichen/bild 1 ✓.png\nördner mit leerzeichen/fehlt ü.png\n")
    return main_cmd(tmp, a, change=realesrgan_block(tmp, a, meta))


def meta_info_file_missing(tmp, a):
    os.makedirs(os.path.join(tmp, "gt"))
    shutil.copy(os.path.join(a.demo, "train", "train_0000.png"), os.path.join(tmp, "gt"))
    return main_cmd(tmp, a, change=realesrgan_block(tmp, a, os.path.join(tmp, "meta_info_ǂ.txt")))


def meta_info_check_finds_corrupt(tmp, a):
    folder = os.path.join(tmp, "hr bilder")
    write_bytes(os.path.join(folder, "gut.png"), png_bytes(small_image()))
    write_bytes(os.path.join(folder, "kaputt ü.png"), truncated_png())
    return ["prepare_data.py", "meta_info", "--input", folder, "--meta-info", os.path.join(tmp, "meta.txt"),
            "--check"]


def unknown_config_key(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c.update(totl_iters=c.pop("total_iters")))


def unknown_override_key(tmp, a):
    return main_cmd(tmp, a, extra=("-o", "dataset.train.batch_szie=4"))


def unknown_generator_name(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"]["generator"].update(name="RRDBNett"))


def unknown_loss_name(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"]["pixel_criterion"].update(name="L1Los"))


def unknown_dataset_option(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["dataset"]["train"].update(gt_foldr="x"))


def total_iters_wrong_type(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c.update(total_iters="ten"))


def batch_size_wrong_type(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["dataset"]["train"].update(batch_size="two"))


def generator_width_wrong_type(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"]["generator"].update(nf="eight"))


def learning_rate_wrong_type(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["lr_scheduler"].update(learning_rate="fast"))


def periods_do_not_sum(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["lr_scheduler"].update(periods=[1, 2], restart_weights=[1, 1]))


def load_weights_of_other_scale(tmp, a):
    return main_cmd(tmp, a, extra=("--evaluate-only", "--load", a.weights["g2.pdparams"]))


def load_weights_of_other_arch(tmp, a):
    return main_cmd(tmp, a, extra=("--evaluate-only", "--load", a.weights["unet.pdparams"]))


def load_pth_where_pdparams_expected(tmp, a):
    return main_cmd(tmp, a, extra=("--evaluate-only", "--load", a.weights["g4.pth"]))


def pretrain_pth_for_paddle(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"].update(pretrain_network_g=a.weights["g4.pth"]))


def vgg_weights_missing(tmp, a):
    def change(c):
        c["model"] = {"name": "ESRGAN", "generator": dict(TINY_G),
                      "discriminator": {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4},
                      "pixel_criterion": {"name": "L1Loss", "loss_weight": 0.01},
                      "perceptual_criterion": {"name": "PerceptualLoss", "layer_weights": {"34": 1.0},
                                               "weights_path": os.path.join(tmp, "vgg19 ☺.pdparams")},
                      "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla", "loss_weight": 0.005}}
    return main_cmd(tmp, a, change=change)


def output_dir_is_a_file(tmp, a, backend="paddle"):
    taken = write_bytes(os.path.join(tmp, "taken"), b"a file in the way")
    return main_cmd(tmp, a, change=lambda c: c.update(output_dir=taken), extra=("--backend", backend))


def torch_output_dir_is_a_file(tmp, a):
    return output_dir_is_a_file(tmp, a, backend="torch")


def overflowing_weights(tmp, framework):
    """Finite generator weights so large that the output overflows to Inf / NaN."""
    from esrgan_twin.commands import convert as cw
    canon = tiny_canonical(4)
    canon.state = {k: v * np.float32(1e12) for k, v in canon.state.items()}
    path = os.path.join(tmp, "huge" + {"paddle": ".pdparams", "torch": ".pth"}[framework])
    cw.save_weights(canon, framework, path)
    return path


def evaluate_only_overflowing_output(tmp, a, backend="paddle"):
    return main_cmd(tmp, a, extra=("--backend", backend, "--evaluate-only", "--load",
                                   overflowing_weights(tmp, backend)))


def torch_evaluate_only_overflowing_output(tmp, a):
    return evaluate_only_overflowing_output(tmp, a, backend="torch")


def realesrnet_on_paired_data(tmp, a, backend="paddle"):
    """l1_gt_usm (true by default) with SRDataset batches, which hold no gt_usm."""
    model = {"name": "RealESRNet", "generator": dict(TINY_G), "pixel_criterion": {"name": "L1Loss"}}
    return main_cmd(tmp, a, change=lambda c: c.update(model=model), extra=("--backend", backend))


def torch_realesrnet_on_paired_data(tmp, a):
    return realesrnet_on_paired_data(tmp, a, backend="torch")


def realesrgan_without_gan_criterion(tmp, a, backend="paddle"):
    model = {"name": "RealESRGAN", "generator": dict(TINY_G), "pixel_criterion": {"name": "L1Loss"},
             "discriminator": {"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}}
    return main_cmd(tmp, a, change=lambda c: c.update(model=model), extra=("--backend", backend))


def torch_realesrgan_without_gan_criterion(tmp, a):
    return realesrgan_without_gan_criterion(tmp, a, backend="torch")


def generator_width_zero(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"]["generator"].update(nf=0))


def generator_scale_not_data_scale(tmp, a):
    return main_cmd(tmp, a, change=lambda c: c["model"]["generator"].update(scale=2))


def negative_seed_flag(tmp, a):
    return main_cmd(tmp, a, extra=("--seed", "-3"))


def config_alias_bomb(tmp, a):
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    write_bytes(os.path.join(tmp, "bomb.yaml"), "\n".join(lines).encode())
    return ["main.py", "-c", os.path.join(tmp, "bomb.yaml")]


def config_not_utf8(tmp, a):
    path = write_config(tmp, base_config(tmp, a.demo))
    with open(path, "ab") as f:
        f.write("# caf\xe9\n".encode("latin-1"))
    return ["main.py", "-c", path]


def infer_corrupt_image(tmp, a):
    return infer_cmd(tmp, a, b"\xff\xd8\xff\xe0 garbage", name="broken.jpg")


def infer_truncated_jpeg(tmp, a):
    return infer_cmd(tmp, a, truncated_jpeg(), name="cut off.jpg")


def infer_zero_byte_image(tmp, a):
    return infer_cmd(tmp, a, b"", name="empty.png")


def infer_output_would_overwrite_input(tmp, a):
    cmd = infer_cmd(tmp, a, png_bytes(small_image()), name="mine.png")
    return [*cmd, "-o", os.path.join(tmp, "inputs"), "--suffix", ""]


def infer_image_claiming_20000x20000(tmp, a):
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    head = chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    data = b"\x89PNG\r\n\x1a\n" + head + chunk(b"IDAT", zlib.compress(bytes(20001 * 8))) + chunk(b"IEND", b"")
    return infer_cmd(tmp, a, data, name="huge.png")


def infer_tile_smaller_than_pad(tmp, a):
    return infer_cmd(tmp, a, png_bytes(small_image()), extra=("--tile", "8", "--tile_pad", "10"))


def infer_fixed_size_onnx_odd_image(tmp, a):
    return infer_cmd(tmp, a, png_bytes(small_image(17, 23)), name="odd.png", model="fixed24.onnx",
                     extra=("--backend", "onnx"))


def infer_discriminator_weights(tmp, a):
    return infer_cmd(tmp, a, png_bytes(small_image()), model="unet.pth")


def infer_pdparams_for_torch_named_pth(tmp, a):
    renamed = os.path.join(tmp, "renamed.pth")
    shutil.copy(a.weights["g4.pdparams"], renamed)
    return infer_cmd(tmp, a, png_bytes(small_image()), model=renamed)


def infer_empty_input_folder(tmp, a):
    folder = os.path.join(tmp, "nothing here")
    write_bytes(os.path.join(folder, "notes.txt"), b"no images")
    return ["infer.py", "-i", folder, "-o", os.path.join(tmp, "results"), "-n", a.weights["g4.pth"]]


def convert_truncated_pth(tmp, a):
    with open(a.weights["g4.pth"], "rb") as f:
        data = f.read()
    src = write_bytes(os.path.join(tmp, "cut.pth"), data[:len(data) // 2])
    return ["convert_weights.py", "--to", "paddle", src, os.path.join(tmp, "out.pdparams")]


def convert_unknown_key(tmp, a):
    return ["convert_weights.py", "--key", "params_emma", a.weights["g4.pth"], os.path.join(tmp, "out.pdparams")]


def export_discriminator(tmp, a):
    return ["export_onnx.py", a.weights["unet.pth"], os.path.join(tmp, "d.onnx")]


def export_missing_weights(tmp, a):
    return ["export_onnx.py", os.path.join(tmp, "gone.pth"), os.path.join(tmp, "g.onnx")]


def prepare_lq_corrupt_hr(tmp, a):
    folder = os.path.join(tmp, "hr")
    write_bytes(os.path.join(folder, "a.png"), png_bytes(small_image(16, 16)))
    write_bytes(os.path.join(folder, "b.png"), b"")
    return ["prepare_data.py", "lq", "--input", folder, "--output", os.path.join(tmp, "set"), "--scale", "4"]


def prepare_subimages_missing_input(tmp, a):
    return ["prepare_data.py", "subimages", "--input", os.path.join(tmp, "no_hr"), "--output",
            os.path.join(tmp, "sub")]


def demo_data_bad_size(tmp, a):
    return ["make_demo_data.py", "--output", os.path.join(tmp, "demo"), "--size", "30"]


def prepare_lq_into_non_empty_folder(tmp, a):
    folder = os.path.join(tmp, "hr")
    write_bytes(os.path.join(folder, "a.png"), png_bytes(small_image(16, 16)))
    write_bytes(os.path.join(tmp, "set", "train", "mine.png"), png_bytes(small_image(8, 8)))
    return ["prepare_data.py", "lq", "--input", folder, "--output", os.path.join(tmp, "set")]


def demo_data_into_non_empty_folder(tmp, a):
    write_bytes(os.path.join(tmp, "photos", "holiday.png"), png_bytes(small_image(8, 8)))
    return ["make_demo_data.py", "--output", os.path.join(tmp, "photos"), "--num-train", "1", "--num-test", "0",
            "--size", "32"]


def demo_data_output_is_a_file(tmp, a):
    path = write_bytes(os.path.join(tmp, "taken"), b"a file")
    return ["make_demo_data.py", "--output", path, "--num-train", "1", "--num-test", "0", "--size", "32"]


CASES = [
    # (setup, exit code, substrings of the error line)
    (corrupt_train_gt, 2, ["train_0001.png", "replace or remove"]),
    (corrupt_train_gt_in_worker, 2, ["train_0000.png", "replace or remove"]),
    (torch_corrupt_train_gt_in_worker, 2, ["train_0000.png", "replace or remove"]),
    (truncated_train_lq, 2, ["train_0000.png", "truncated"]),
    (zero_byte_train_gt, 2, ["train_0000.png", "0 bytes"]),
    (corrupt_test_image, 2, ["test_0000.png", "not an image"]),
    (only_non_image_in_folder, 2, ["gt_folder", "no image files"]),
    (non_image_with_image_extension, 2, ["readme.png", "not an image"]),
    (lq_size_not_gt_over_scale, 2, ["train_0001.png", "7x9", "LQ x scale"]),
    (torch_lq_size_not_gt_over_scale, 2, ["train_0001.png", "7x9", "LQ x scale"]),
    (lq_gt_different_files, 2, ["hold different files", "train_0001.png", "other_0001.png"]),
    (missing_gt_folder, 2, ["nowhere", "does not exist", "make_demo_data.py"]),
    (empty_lq_folder, 2, ["empty_lq", "no image"]),
    (meta_info_unicode_line_missing, 2, ["meta info.txt", "line 2", "fehlt ü.png"]),
    (meta_info_file_missing, 2, ["meta_info_ǂ.txt"]),
    (meta_info_check_finds_corrupt, 2, ["kaputt ü.png"]),
    (unknown_config_key, 2, ["'totl_iters'", "Did you mean 'total_iters'"]),
    (unknown_override_key, 2, ["dataset.train", "'batch_szie'", "Did you mean 'batch_size'"]),
    (unknown_generator_name, 2, ["'RRDBNett'", "Did you mean 'RRDBNet'"]),
    (unknown_loss_name, 2, ["'L1Los'", "Did you mean 'L1Loss'"]),
    (unknown_dataset_option, 2, ["'gt_foldr'", "Did you mean 'gt_folder'"]),
    (total_iters_wrong_type, 2, ["total_iters", "int", "'ten'"]),
    (batch_size_wrong_type, 2, ["dataset.train.batch_size", "'two'"]),
    (generator_width_wrong_type, 2, ["model.generator.nf must be an integer", "'eight'"]),
    (learning_rate_wrong_type, 2, ["lr_scheduler", "learning_rate='fast'"]),
    (periods_do_not_sum, 2, ["periods sum to 3", "total_iters is 2"]),
    (generator_width_zero, 2, ["model.generator.nf must be positive", "got 0"]),
    (generator_scale_not_data_scale, 2, ["dataset.train.scale is 4", "model.generator.scale is 2"]),
    (negative_seed_flag, 2, ["--seed", "-3"]),
    (config_alias_bomb, 2, ["bomb.yaml", "aliases"]),
    (config_not_utf8, 2, ["bad.yaml", "not UTF-8", "offset"]),
    (load_weights_of_other_scale, 2, ["g2.pdparams", "shape mismatch", "conv_first.weight (8, 12, 3, 3)"]),
    (load_weights_of_other_arch, 2, ["unet.pdparams", "42 missing (conv_first.weight", "1 unexpected"]),
    (load_pth_where_pdparams_expected, 2, ["g4.pth", "PyTorch file", "convert_weights.py"]),
    (torch_load_pdparams_where_pth_expected, 2, ["g4.pdparams", "Paddle file"]),
    (torch_load_weights_of_other_scale, 2, ["g2.pth", "conv_first.weight"]),
    (pretrain_pth_for_paddle, 2, ["g4.pth", "PyTorch file"]),
    (vgg_weights_missing, 2, ["vgg19 ☺.pdparams", "not found"]),
    (torch_vgg_weights_missing, 2, ["vgg19 ☺.pdparams", "not found"]),
    (infer_corrupt_image, 2, ["broken.jpg", "not an image"]),
    (infer_truncated_jpeg, 2, ["cut off.jpg", "truncated"]),
    (infer_zero_byte_image, 2, ["empty.png", "0 bytes"]),
    (infer_output_would_overwrite_input, 2, ["mine.png", "is the input", "nothing was written"]),
    (infer_image_claiming_20000x20000, 2, ["huge.png", "20000x20000", "--max-pixels"]),
    (infer_tile_smaller_than_pad, 2, ["--tile 8", "--tile_pad 10"]),
    (infer_fixed_size_onnx_odd_image, 2, ["odd.png", "23x17", "fixed24.onnx", "24x24", "export_onnx.py"]),
    (infer_discriminator_weights, 2, ["unet.pth", "UNetDiscriminatorSN", "not an RRDBNet"]),
    (infer_pdparams_for_torch_named_pth, 2, ["renamed.pth", "Paddle weights", "rename it to .pdparams"]),
    (infer_empty_input_folder, 2, ["nothing here", "no image files"]),
    (convert_truncated_pth, 2, ["cut.pth", "corrupt, truncated"]),
    (convert_unknown_key, 2, ["g4.pth", "'params_emma'", "params_ema"]),
    (export_discriminator, 2, ["unet.pth", "UNetDiscriminatorSN"]),
    (export_missing_weights, 2, ["gone.pth", "not found"]),
    (prepare_lq_corrupt_hr, 2, ["b.png", "0 bytes"]),
    (prepare_subimages_missing_input, 2, ["no_hr", "does not exist"]),
    (demo_data_bad_size, 2, ["--size 30", "multiple of 4"]),
    (demo_data_output_is_a_file, 2, ["taken", "is a file", "choose a folder"]),
    (realesrnet_on_paired_data, 2, ["model.l1_gt_usm", "no gt_usm", "RealESRGANDataset"]),
    (torch_realesrnet_on_paired_data, 2, ["model.l1_gt_usm", "no gt_usm", "RealESRGANDataset"]),
    (realesrgan_without_gan_criterion, 2, ["model.gan_criterion is missing"]),
    (torch_realesrgan_without_gan_criterion, 2, ["model.gan_criterion is missing"]),
    (output_dir_is_a_file, 2, ["output_dir", "taken", "is a file"]),
    (torch_output_dir_is_a_file, 2, ["output_dir", "taken", "is a file"]),
    (evaluate_only_overflowing_output, 2, ["huge.pdparams", "NaN/Inf", "no metrics"]),
    (torch_evaluate_only_overflowing_output, 2, ["huge.pth", "NaN/Inf", "no metrics"]),
    (prepare_lq_into_non_empty_folder, 2, ["set/train", "not empty", "--force"]),
    (demo_data_into_non_empty_folder, 2, ["photos", "not empty", "--force"]),
]


def run_tool(argv, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(TOOLS, argv[0]), *argv[1:]], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("setup,code,expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_input_ends_in_one_error_line(tmp_path, assets, setup, code, expected):
    proc = run_tool(setup(str(tmp_path), assets), cwd=str(tmp_path))
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == code, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in expected:
        assert text in lines[0], lines[0]


# ---------------------------------------------------------------------------------- positive: image kinds kept
KINDS = [
    # (file name, image as cv2 writes it, output channels (None = grey HxW), output dtype)
    ("deep 16bit.png", small_image(10, 9, 3, np.uint16, seed=1), 3, np.uint16),
    ("alpha rgba.png", small_image(10, 9, 4, np.uint8, seed=2), 4, np.uint8),
    ("grey ü.png", small_image(10, 9, 1, np.uint8, seed=3), None, np.uint8),
]


@pytest.mark.parametrize("name,img,channels,dtype", KINDS, ids=[k[0].split()[0] for k in KINDS])
def test_infer_keeps_16_bit_rgba_and_grey(tmp_path, assets, name, img, channels, dtype):
    src = write_bytes(str(tmp_path / "in" / name), png_bytes(img))
    assert cv2.imread(src, cv2.IMREAD_UNCHANGED).dtype == img.dtype  # the input is what its name says
    proc = run_tool(["infer.py", "-i", src, "-o", str(tmp_path / "out"), "-n", assets.weights["g4.pth"],
                     "--backend", "torch", "--suffix", ""], cwd=str(tmp_path))
    assert proc.returncode == 0 and error_lines(proc.stderr) == [], proc.stderr
    out = cv2.imdecode(np.fromfile(str(tmp_path / "out" / name), np.uint8), cv2.IMREAD_UNCHANGED)
    want = (40, 36) if channels is None else (40, 36, channels)
    assert out.shape == want and out.dtype == dtype
    if dtype == np.uint16:
        assert np.any(out % 257), "16-bit output holds only 8-bit levels"
