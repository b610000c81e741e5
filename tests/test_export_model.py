"""tools/export_model.py and paddle_impl/inference.py: Paddle inference models equal eager paddle and torch."""
import os
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

paddle = pytest.importorskip("paddle")

from esrgan_twin.commands import convert as cw
from esrgan_twin.commands import export_paddle as em
from common_data.weights import naming as W
from common_data.errors import UserError
from paddle_impl.inference import PaddleInferenceRunner, find_model_files

CONFIG = os.path.join(ROOT, "configs", "esrgan_psnr_x4_anime.yaml")
TINY = ["model.generator.nf=8", "model.generator.nb=1", "model.generator.gc=4"]


def tiny(scale=4, seed=0, nb=1):
    hp = dict(in_nc=3, out_nc=3, nf=8, nb=nb, gc=4, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.15 for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


def odd_batch(seed=1, size=(19, 26)):
    return np.random.default_rng(seed).random((2, 3, *size), dtype=np.float32)


@pytest.mark.parametrize("scale", [4, 1])
def test_paddle_inference_equals_eager_paddle_at_odd_size_and_batch_2(tmp_path, scale):
    canon = tiny(scale)
    model = cw.build_model(canon, "paddle")
    em.save_inference_model(model, canon.hparams, str(tmp_path / "m" / "model"))
    x = odd_batch()
    got = PaddleInferenceRunner(tmp_path / "m")(x)
    assert got.shape == (2, 3, 19 * scale, 26 * scale)
    np.testing.assert_allclose(got, cw.forward_fn(model, "paddle")(x), atol=1e-4)


def test_cli_exports_the_config_generator_from_a_pth_with_dynamic_shape(tmp_path, capsys):
    canon = tiny(4)
    weights = tmp_path / "net_g.pth"
    cw.save_weights(canon, "torch", weights)
    out = tmp_path / "inference_model"
    assert em.main(["-c", CONFIG, "--load", str(weights), "-s", "-1,3,-1,-1", "--output_dir", str(out),
                    "-o", *TINY]) == 0
    prefix = out / "basesrmodel_generator"  # PaddleGAN: <model class, lower case>_<net name>
    graph, params = find_model_files(out)
    assert graph.startswith(str(prefix)) and params == str(prefix) + ".pdiparams"
    assert str(prefix) in capsys.readouterr().out
    runner = PaddleInferenceRunner(out)
    torch_forward = cw.forward_fn(cw.build_model(canon, "torch"), "torch")
    for x in (odd_batch(size=(11, 30)), odd_batch(size=(7, 5))[:1]):  # any batch and size: a dynamic graph
        np.testing.assert_allclose(runner(x), torch_forward(x), atol=1e-4)


def test_fixed_inputs_size_is_written_into_the_graph(tmp_path):
    weights = tmp_path / "w.pdparams"
    cw.save_weights(tiny(4), "paddle", weights)  # PaddleGAN layout {'generator': ...}
    em.main(["-c", CONFIG, "--load", str(weights), "-s", "1,3,16,24", "--output-dir", str(tmp_path), "-o", *TINY])
    assert PaddleInferenceRunner(tmp_path).input.shape() == [1, 3, 16, 24]


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path):
    weights = tmp_path / "w.pth"
    cw.save_weights(tiny(4, nb=2), "torch", weights)
    with pytest.raises(UserError, match=r"nb=2.*do not fit model.generator") as info:
        em.main(["-c", CONFIG, "--load", str(weights), "-s", "1,3,8,8", "--output_dir", str(tmp_path), "-o", *TINY])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,match", [("1,3,128", "N,C,H,W"), ("1,3,a,8", "integers"), ("1,3,0,8", "N,C,H,W"),
                                        ("1,3,8,8;1,3,8,8", "2 shape")])
def test_bad_inputs_size_is_one_line(tmp_path, text, match):
    weights = tmp_path / "w.pth"
    cw.save_weights(tiny(4), "torch", weights)
    with pytest.raises(UserError, match=match):
        em.main(["-c", CONFIG, "--load", str(weights), "-s", text, "--output_dir", str(tmp_path), "-o", *TINY])


def test_parse_inputs_size_keeps_dynamic_entries():
    assert em.parse_inputs_size("1,3,128,128;-1,3,-1,-1") == [[1, 3, 128, 128], [-1, 3, -1, -1]]


def test_a_folder_without_a_model_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no .pdiparams"):
        PaddleInferenceRunner(tmp_path)
    (tmp_path / "m.pdiparams").write_bytes(b"")
    with pytest.raises(UserError, match="not a Paddle inference model"):
        PaddleInferenceRunner(tmp_path)


# --------------------------------------------------------------------------------------------- tools/infer.py
def test_infer_paddle_inference_backend_exports_once_and_matches_eager(tmp_path, monkeypatch):
    from esrgan_twin.commands import infer
    monkeypatch.setenv("ESRGAN_TWIN_CACHE", str(tmp_path / "cache"))
    canon = tiny(2)
    weights = tmp_path / "w.pdparams"
    cw.save_weights(canon, "paddle", weights)
    img = (np.random.default_rng(0).random((21, 18, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    outputs = {}
    for backend in ("paddle-inference", "paddle"):
        infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / backend), "-n", str(weights),
                    "--backend", backend, "--tile", "8", "--tile_pad", "4"])
        outputs[backend] = cv2.imread(str(tmp_path / backend / "a_out.png")).astype(int)
    assert outputs["paddle"].shape == (42, 36, 3)
    assert np.abs(outputs["paddle-inference"] - outputs["paddle"]).max() <= 1
    cached = os.listdir(tmp_path / "cache" / "paddle_inference")
    assert len(cached) == 1
    folder = tmp_path / "cache" / "paddle_inference" / cached[0]
    stamp = os.path.getmtime(find_model_files(folder)[1])
    up = infer.load_upscaler(str(weights), "paddle-inference")  # second time: the cached export
    assert os.path.getmtime(find_model_files(folder)[1]) == stamp and up.scale == 2 and up.multiple == 2


def test_infer_runs_an_exported_model_folder(tmp_path):
    from esrgan_twin.commands import infer
    canon = tiny(4)
    model = cw.build_model(canon, "paddle")
    em.save_inference_model(model, canon.hparams, str(tmp_path / "exported" / "esrgan_generator"))
    up = infer.load_upscaler(str(tmp_path / "exported"), "paddle-inference")
    assert (up.scale, up.backend) == (4, "paddle-inference")
    x = odd_batch(size=(9, 13))
    np.testing.assert_allclose(up.forward(x), cw.forward_fn(model, "paddle")(x), atol=1e-4)
    with pytest.raises(UserError, match="only with --backend paddle-inference"):
        infer.load_upscaler(str(tmp_path / "exported"), "torch")


# ------------------------------------------------------------------------------------ benchmarks/inference.py
def test_benchmark_mac_count_is_esrgans_17_9M_and_matches_torch_conv_shapes():
    torch = pytest.importorskip("torch")
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_inference", os.path.join(ROOT, "benchmarks", "inference.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.conv_macs_per_pixel(23) == pytest.approx(17.9e6, rel=2e-3)
    for scale in (4, 2):
        canon = tiny(scale, nb=2)
        model = cw.build_model(canon, "torch")
        macs = []
        hooks = [m.register_forward_hook(lambda m, i, o: macs.append(o[0].numel() * m.weight[0].numel()))
                 for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            model(torch.zeros(1, 3, 8, 12))
        for h in hooks:
            h.remove()
        assert bench.conv_macs_per_pixel(2, 8, 4, scale) == pytest.approx(sum(macs) / (8 * 12))


def test_default_backend_order_puts_paddle_inference_after_onnx_and_before_torch(tmp_path, monkeypatch):
    from esrgan_twin.commands import infer
    missing = set()
    monkeypatch.setattr(infer.cw, "installed", lambda module: module not in missing)
    assert infer.default_backend("w.pth") == "onnx"
    missing.add("onnxruntime")
    assert infer.default_backend("w.pth") == "paddle-inference"
    missing.add("paddle")
    assert infer.default_backend("w.pth") == "torch"
    assert infer.default_backend(str(tmp_path)) == "paddle-inference"  # an exported model folder
