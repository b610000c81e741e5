"""tools/infer.py on hostile input: no input or foreign file is ever overwritten, no silent black/garbage image,
one bad file does not stop the others (issue 11)."""
import hashlib
import os
import sys
import threading

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from common_data.inference import tiling as tiling
from common_data.weights import naming as W

torch = pytest.importorskip("torch")
from esrgan_twin.commands import convert as cw
from esrgan_twin.command_errors import run_cli
from esrgan_twin.commands import infer


def tiny(gain=0.15, seed=0):
    hp = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=4)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * gain for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    cw.save_weights(tiny(), "torch", path)
    return str(path)


def image(seed, h=6, w=5):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def put(folder, name, img=None, seed=0):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    ok, buf = cv2.imencode(os.path.splitext(name)[1], image(seed) if img is None else img)
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())
    return path


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(capsys, *argv):
    """infer's command line in this process: (exit code, stdout, stderr lines); fp32, so outputs equal the
    reference ``upscaled`` exactly (auto is bf16 on some CPUs)."""
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: infer.main([*map(str, argv), "--backend", "torch", "--precision", "fp32"]))
    out, err = capsys.readouterr()
    return info.value.code, out, [line for line in err.splitlines() if line.strip()]


def upscaled(weights, path):
    """The reference output for one input: enhance() of its decoded pixels, as a PNG would hold them."""
    return infer.enhance(cv2.imread(path, cv2.IMREAD_UNCHANGED), infer.load_upscaler(weights, "torch"))


# -------------------------------------------------------------------------------------- inputs never overwritten
def test_output_folder_equal_to_the_input_with_no_suffix_is_refused_before_any_work(tmp_path, weights, capsys):
    inputs = [put(tmp_path, "a.png", seed=1), put(tmp_path, "b.png", seed=2)]
    before = {p: digest(p) for p in inputs}
    code, out, err = run(capsys, "-i", tmp_path, "-o", tmp_path, "-n", weights, "--suffix", "", "--overwrite")
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "a.png" in err[0] and "is the input" in err[0] and "nothing was written" in err[0]
    assert {p: digest(p) for p in inputs} == before and sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


@pytest.mark.parametrize("link", [os.link, os.symlink], ids=["hard link", "symlink"])
def test_an_output_that_links_to_an_input_is_refused(tmp_path, weights, capsys, link):
    src = put(tmp_path / "in", "a.png", seed=1)
    before = digest(src)
    os.makedirs(tmp_path / "out")
    link(src, tmp_path / "out" / "a_out.png")
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", weights, "--overwrite")
    assert code == 2 and len(err) == 1 and "is the input" in err[0] and "a_out.png" in err[0]
    assert digest(src) == before and os.path.samefile(tmp_path / "out" / "a_out.png", src)


def test_inputs_sharing_a_name_each_get_their_own_output(tmp_path, weights, capsys):
    a_png, a_jpg = put(tmp_path / "in", "a.png", seed=1), put(tmp_path / "in", "a.jpg", seed=2)
    c_png = put(tmp_path / "in", "c.png", seed=3)
    code, out, err = run(capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", weights, "--ext", "png")
    assert code == 0 and err == []
    assert sorted(os.listdir(tmp_path / "out")) == ["a.jpg_out.png", "a.png_out.png", "c_out.png"]
    for src, name in ((a_png, "a.png_out.png"), (a_jpg, "a.jpg_out.png"), (c_png, "c_out.png")):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / name)), upscaled(weights, src))


def test_an_existing_output_file_is_kept_unless_overwrite_is_given(tmp_path, weights, capsys):
    src = put(tmp_path / "in", "a.png", seed=1)
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / "a_out.png").write_bytes(b"the user's own file")
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", weights)
    assert code == 2 and len(err) == 1 and "already exists" in err[0] and "--overwrite" in err[0]
    assert (tmp_path / "out" / "a_out.png").read_bytes() == b"the user's own file"
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", weights, "--overwrite")
    assert code == 0 and err == []
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "a_out.png")), upscaled(weights, src))


# ------------------------------------------------------------------------------------ no silent wrong result
def test_a_nan_network_output_raises_instead_of_clipping_to_black():
    img = np.full((4, 4, 3), 0.5, np.float32)
    with pytest.raises(tiling.NonFiniteOutputError, match="192 NaN and 0 Inf"):
        tiling.upscale_image(lambda x: np.full((1, 3, 8, 8), np.nan, np.float32), img, 2)
    with pytest.raises(tiling.NonFiniteOutputError, match="0 NaN and 192 Inf"):
        tiling.upscale_image(lambda x: np.full((1, 3, 8, 8), np.inf, np.float32), img, 2)


def test_weights_holding_nan_are_refused_naming_the_file_before_any_output(tmp_path, capsys):
    canon = tiny()
    canon.state["conv_last.bias"][1] = np.nan
    cw.save_weights(canon, "torch", tmp_path / "nan.pth")
    src = put(tmp_path / "in", "a.png")
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", tmp_path / "nan.pth")
    assert code == 2 and len(err) == 1 and "nan.pth" in err[0] and "NaN or Inf" in err[0]
    assert not os.path.exists(tmp_path / "out")


def test_an_overflowing_network_is_an_error_naming_the_image_and_the_weights(tmp_path, capsys):
    cw.save_weights(tiny(gain=1e12), "torch", tmp_path / "huge.pth")  # finite weights, Inf/NaN activations
    src = put(tmp_path / "in", "a.png")
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", tmp_path / "huge.pth")
    assert code == 2 and len(err) == 1 and "a.png" in err[0] and "huge.pth" in err[0] and "NaN/Inf" in err[0]
    assert not os.path.exists(tmp_path / "out" / "a_out.png") and "0 written, 1 failed" in out
    assert "--precision fp32" not in err[0]


def test_an_overflow_in_low_precision_suggests_fp32(tmp_path, capsys):
    """fp16 (a GPU's default) has a far smaller range than fp32; bf16 (run here, on torch) gets the same advice."""
    cw.save_weights(tiny(gain=1e12), "torch", tmp_path / "huge.pth")
    src = put(tmp_path / "in", "a.png")
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: infer.main(["-i", src, "-o", str(tmp_path / "out"), "-n", str(tmp_path / "huge.pth"),
                                    "--backend", "torch", "--precision", "bf16"]))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert info.value.code == 2 and len(err) == 1
    assert err[0].endswith("overflow on this image (in bf16: try --precision fp32)")


def test_a_float_tiff_is_an_error_for_that_file_only(tmp_path, weights, capsys):
    put(tmp_path / "in", "good.png", seed=1)
    ok, buf = cv2.imencode(".tiff", np.random.default_rng(0).random((6, 5), np.float32))
    (tmp_path / "in" / "float.tiff").write_bytes(buf.tobytes())
    code, out, err = run(capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", weights)
    assert code == 2 and len(err) == 1 and "float.tiff" in err[0] and "float32" in err[0]
    assert os.listdir(tmp_path / "out") == ["good_out.png"]


# --------------------------------------------------------------------------- one bad file, the others go on
def test_one_corrupt_file_in_a_folder_is_reported_and_the_others_written(tmp_path, weights, capsys):
    good = [put(tmp_path / "in", "a.png", seed=1), put(tmp_path / "in", "c.png", seed=3)]
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    code, out, err = run(capsys, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", weights)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "b.png" in err[0]
    assert out.strip().splitlines()[-1] == "2 written, 1 failed"
    for src, name in zip(good, ("a_out.png", "c_out.png")):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / name)), upscaled(weights, src))
    assert sorted(os.listdir(tmp_path / "out")) == ["a_out.png", "c_out.png"]


def test_a_fifo_in_the_folder_is_skipped_and_the_others_written(tmp_path, weights, capsys):
    put(tmp_path / "in", "a.png", seed=1)
    fifo = tmp_path / "in" / "b.png"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    result = {}
    worker = threading.Thread(target=lambda: result.update(run=run(capsys, "-i", tmp_path / "in", "-o",
                                                                   tmp_path / "out", "-n", weights)), daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked reader go
        pytest.fail("infer.py opened the FIFO and waited on it")
    code, out, err = result["run"]
    assert code == 2 and len(err) == 1 and "b.png" in err[0] and "FIFO" in err[0]
    assert os.listdir(tmp_path / "out") == ["a_out.png"]


def test_max_pixels_sets_the_cap_on_input_size(tmp_path, weights, capsys):
    src = put(tmp_path / "in", "a.png", image(1, 6, 5))  # 30 pixels
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", weights, "--max-pixels", "29")
    assert code == 2 and len(err) == 1 and "a.png" in err[0] and "5x6" in err[0] and "--max-pixels" in err[0]
    assert not os.path.exists(tmp_path / "out" / "a_out.png")
    code, out, err = run(capsys, "-i", src, "-o", tmp_path / "out", "-n", weights, "--max-pixels", "30")
    assert code == 0 and os.listdir(tmp_path / "out") == ["a_out.png"]
