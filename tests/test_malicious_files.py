"""A downloaded weights file never runs code: payload pickles of every kind, through every tool and entry point.

Each payload is a real weights file (a state dict a tool would load) with one more entry whose ``__reduce__``
names a callable that creates a marker file: ``os.system('touch MARKER')`` (pickled as ``posix.system``) or
``builtins.exec`` of code writing it. Unpickled with a full unpickler the marker appears (the positive controls
below prove every kind is a live payload); our readers must refuse the file before any global is called.

Each tool runs in a subprocess, as a user runs it, and must end with: no marker, exit status 2, no traceback and
one ``error:`` line naming the file that says it was refused and nothing in it was run (``weight_files.refused``).
Where a torch zip goes to the Paddle backend (which has no torch to open it) the line says to use --backend torch
instead; no line ever advises renaming a refused file. The subprocess matrix (about 70 runs of 2-4 s) is marked
slow; the in-process readers and the positive controls always run.

The other side of the allow-list: every file a run of either backend writes (two optimizers, EMA, each kind of LR
scheduler, rng state) and the files ppgan 2.1.0 itself writes (pickle protocol 2) still read, resume and evaluate.
"""
import builtins
import os
import pickle
import re
import shlex
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml

from common_data.weights.checkpoints import checkpoint_name
from common_data.data.demo_data import make_demo_data
from common_data.errors import UserError
from test_bad_input import base_config, error_lines, run_tool, tiny_canonical, write_config

REFUSED = "it was refused and nothing in it was run"
MARKER = "PWNED"
CONFIG = "mal"  # the config's name: run folders are mal-<stamp>
RUN_FOLDER = f"{CONFIG}-2030-01-01-00-00"


# -------------------------------------------------------------------------------------------------- payloads
class System:
    """Unpickled, runs ``touch <marker>`` through os.system (the global ``posix.system``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


class Exec:
    """Unpickled, runs Python code writing ``<marker>`` (the global ``builtins.exec``)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


def tiny_state(framework):
    """{name: array} of a tiny RRDBNet x4 as ``framework``'s files hold it (PaddleGAN / BasicSR naming)."""
    import common_data.weights.naming as W
    state = W.to_framework(tiny_canonical(4), framework)
    return state if framework == "paddle" else {k: torch.from_numpy(v.copy()) for k, v in state.items()}


def write_paddle_payload(path, marker, payload=System, protocol=2):
    """A PaddleGAN-style pickle: {'generator': state dict, 'epoch': 100, 'payload': <payload>}."""
    obj = {"generator": tiny_state("paddle"), "epoch": 100, "payload": payload(marker)}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def write_torch_payload(path, marker, payload=System, legacy=False):
    """A torch.save file (zip, or the legacy format before torch 1.6): {'params_ema': state, 'payload': ...}."""
    obj = {"params_ema": tiny_state("torch"), "payload": payload(marker)}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_payload(path, marker):
    """The payload kind a file of this name is: a torch.save file for .pth / .pt, else a Paddle pickle."""
    if path.endswith((".pth", ".pt")):
        return write_torch_payload(path, marker, legacy=path.endswith(".pt"))
    return write_paddle_payload(path, marker)


# ---------------------------------------------------------------------------------------------------- assets
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Demo pictures (2 train, 1 test, 32 px), good tiny generators, one input image for infer/parity."""
    from esrgan_twin.commands import convert as cw
    root = str(tmp_path_factory.mktemp("mal_assets"))
    demo = os.path.join(root, "demo")
    make_demo_data(demo, num_train=2, num_test=1, seed=0, size=32)
    a = SimpleNamespace(root=root, demo=demo, weights={}, image=os.path.join(demo, "test_X4", "test_0000.png"))
    for name, framework in (("good.pdparams", "paddle"), ("good.pth", "torch")):
        a.weights[name] = os.path.join(root, name)
        cw.save_weights(tiny_canonical(4), framework, a.weights[name])
    return a


def gan_model(weights_path="random", **extra):
    """ESRGAN with a VGG discriminator and a perceptual loss whose VGG weights come from ``weights_path``."""
    return {"name": "ESRGAN", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4},
            "discriminator": {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4},
            "pixel_criterion": {"name": "L1Loss", "loss_weight": 0.01},
            "perceptual_criterion": {"name": "PerceptualLoss", "layer_weights": {"34": 1.0},
                                     "weights_path": weights_path},
            "gan_criterion": {"name": "GANLoss", "gan_mode": "vanilla", "loss_weight": 0.005}, **extra}


def config(tmp, a, model=None):
    cfg = base_config(tmp, a.demo)
    if model:
        cfg["model"] = model
        cfg["optimizer"] = {"optimG": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
                            "optimD": {"name": "Adam", "net_names": ["discriminator"], "beta1": 0.9,
                                       "beta2": 0.99}}
    return write_config(tmp, cfg, name=f"{CONFIG}.yaml")


# ------------------------------------------------------------------------------------- the cases: main.py
def main_flag(flag, *extra):
    def argv(tmp, a, evil, backend):
        return ["main.py", "-c", config(tmp, a), "--backend", backend, *extra, flag, evil]
    return argv


def main_auto_resume(tmp, a, evil, backend):
    return ["main.py", "-c", config(tmp, a), "--backend", backend, "--auto_resume"]


def main_pretrain(key):
    def argv(tmp, a, evil, backend):
        model = gan_model(**{key: evil})
        return ["main.py", "-c", config(tmp, a, model), "--backend", backend]
    return argv


def main_vgg(tmp, a, evil, backend):
    return ["main.py", "-c", config(tmp, a, gan_model(evil)), "--backend", backend]


def in_run_folder(tmp, backend):
    folder = os.path.join(tmp, "out", RUN_FOLDER)
    os.makedirs(folder)
    return os.path.join(folder, checkpoint_name(100, "checkpoint", backend))


EXT = {"paddle": ".pdparams", "torch": ".pth"}
MAIN_CASES = [
    # (id, file name (None: the run folder's iter_100_checkpoint), argv builder)
    ("load", "net_g{ext}", main_flag("--load")),
    ("evaluate-only-load", "iter_5_weight{ext}", main_flag("--load", "--evaluate-only")),
    ("resume", "iter_100_checkpoint{ext}", main_flag("--resume")),
    ("auto_resume", None, main_auto_resume),
    ("pretrain_network_g", "pretrained_g{ext}", main_pretrain("pretrain_network_g")),
    ("pretrain_network_d", "pretrained_d{ext}", main_pretrain("pretrain_network_d")),
    ("vgg_weights_path", "vgg19{ext}", main_vgg),
]


def assert_refused(proc, marker, path, refused=True):
    """No marker, exit 2, no traceback, one ``error:`` line naming ``path`` (saying it was refused)."""
    assert not os.path.exists(marker), f"the payload in {path} ran"
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert os.path.basename(path) in lines[0], lines[0]
    assert "rename" not in lines[0], lines[0]
    if refused:
        assert REFUSED in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
@pytest.mark.parametrize("name, argv", [c[1:] for c in MAIN_CASES], ids=[c[0] for c in MAIN_CASES])
def test_main_refuses_a_payload_of_its_backend(tmp_path, assets, backend, name, argv):
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = in_run_folder(tmp, backend) if name is None else os.path.join(tmp, name.format(ext=EXT[backend]))
    write_payload(path, marker)
    proc = run_tool(argv(tmp, assets, path, backend), cwd=tmp)
    assert_refused(proc, marker, path)
    assert "resumed from" not in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("backend, name", [("paddle", "opt.pdopt"), ("torch", "legacy.pt")])
def test_resume_refuses_pdopt_and_legacy_pt_payloads(tmp_path, assets, backend, name):
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = write_payload(os.path.join(tmp, name), marker)
    proc = run_tool(main_flag("--resume")(tmp, assets, path, backend), cwd=tmp)
    assert_refused(proc, marker, path)


@pytest.mark.slow
@pytest.mark.parametrize("backend, name", [("paddle", "torch_zip.pth"), ("torch", "paddle_pickle.pdparams"),
                                           ("torch", "paddle_pickle_named.pth")])
def test_main_never_runs_the_other_frameworks_payload(tmp_path, assets, backend, name):
    """A torch zip on Paddle is not read at all (use --backend torch); a Paddle pickle on torch is refused by
    the allow-list, even one named .pth: never 'rename it', never the other reader's full unpickler."""
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = os.path.join(tmp, name)
    if "paddle_pickle" in name:
        write_paddle_payload(path, marker)
    else:
        write_torch_payload(path, marker)
    proc = run_tool(main_flag("--load", "--evaluate-only")(tmp, assets, path, backend), cwd=tmp)
    assert_refused(proc, marker, path, refused=backend == "torch")


# ------------------------------------------------------------------------------------------- the cases: tools
def convert(tmp, a, evil):
    target = "torch" if evil.endswith(".pdparams") else "paddle"
    return ["convert_weights.py", "--to", target, evil, os.path.join(tmp, "out" + EXT[target])]


def convert_safetensors(tmp, a, evil):
    return ["convert_weights.py", evil, os.path.join(tmp, "out.safetensors")]


def infer(backend):
    return lambda tmp, a, evil: ["infer.py", "-i", a.image, "-o", os.path.join(tmp, "results"), "-n", evil,
                                 "--backend", backend]


def export_onnx(backend):
    return lambda tmp, a, evil: ["export_onnx.py", evil, os.path.join(tmp, "g.onnx"), "--backend", backend]


def export_model(tmp, a, evil):
    return ["export_model.py", "-c", config(tmp, a), "--load", evil, "-s", "1,3,8,8", "--output_dir",
            os.path.join(tmp, "inference_model")]


def interpolate(position):
    def argv(tmp, a, evil):
        good = a.weights["good" + os.path.splitext(evil)[1]] if not evil.endswith(".pt") else a.weights["good.pth"]
        pair = [evil, good] if position == "A" else [good, evil]
        return ["interpolate.py", *pair, "--alpha", "0.5", "-o", os.path.join(tmp, "blend.pth")]
    return argv


def parity(tmp, a, evil):
    return ["parity.py", "-n", evil, "-i", a.image, "--engines", "torch", "paddle"]


def parity_train(tmp, a, evil):
    return ["parity.py", "--train", "-c", config(tmp, a, gan_model(pretrain_network_g=evil)), "--iters", "1"]


TOOL_CASES = [
    ("convert_weights", convert), ("convert_weights-safetensors", convert_safetensors),
    ("infer-torch", infer("torch")), ("infer-paddle", infer("paddle")),
    ("export_onnx-torch", export_onnx("torch")), ("export_onnx-paddle", export_onnx("paddle")),
    ("export_model", export_model), ("interpolate-A", interpolate("A")), ("interpolate-B", interpolate("B")),
    ("parity", parity),
]
FILES = ["downloaded.pdparams", "downloaded.pth", "legacy.pt", "iter_100_checkpoint.pdparams",
         "iter_100_checkpoint.pth"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("argv", [c[1] for c in TOOL_CASES], ids=[c[0] for c in TOOL_CASES])
def test_every_tool_refuses_every_payload_kind(tmp_path, assets, argv, name):
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = write_payload(os.path.join(tmp, name), marker)
    proc = run_tool(argv(tmp, assets, path), cwd=tmp)
    assert_refused(proc, marker, path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pretrained.pdparams", "pretrained.pth"])
def test_parity_training_refuses_a_pretrained_payload_on_either_side(tmp_path, assets, name):
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = write_payload(os.path.join(tmp, name), marker)
    proc = run_tool(parity_train(tmp, assets, path), cwd=tmp)
    assert_refused(proc, marker, path)


def test_convert_weights_refuses_a_pdopt_payload(tmp_path):
    tmp, marker = str(tmp_path), str(tmp_path / MARKER)
    path = write_paddle_payload(os.path.join(tmp, "opt.pdopt"), marker)
    proc = run_tool(["convert_weights.py", "--to", "torch", path, os.path.join(tmp, "out.pth")], cwd=tmp)
    assert_refused(proc, marker, path)


# ---------------------------------------------------------------- the case: no fallback to another reader
def test_a_pth_torch_refuses_is_never_retried_with_the_paddle_reader(tmp_path, monkeypatch):
    """torch.load(weights_only=True) refuses the payload; the Paddle reader is not tried and nothing says rename."""
    from esrgan_twin.commands import convert as cw

    import common_data.weights.files as WF
    tried = []
    monkeypatch.setattr(WF.RestrictedUnpickler, "load", lambda self: tried.append(self) or {})
    marker = str(tmp_path / MARKER)
    path = write_torch_payload(str(tmp_path / "model.pth"), marker)
    with pytest.raises(UserError) as e:
        cw.read_checkpoint(path)
    assert not os.path.exists(marker) and tried == []
    assert REFUSED in str(e.value) and "posix.system" in str(e.value) and "rename" not in str(e.value)


def test_a_paddle_payload_named_pth_is_refused_not_called_paddle_weights(tmp_path):
    """A plain pickle named .pth (torch cannot read it) is read only through the allow-list: refused, and the
    line neither calls it Paddle weights nor tells the user to rename it."""
    from esrgan_twin.commands import convert as cw
    marker = str(tmp_path / MARKER)
    path = write_paddle_payload(str(tmp_path / "model.pth"), marker)
    with pytest.raises(UserError) as e:
        cw.read_checkpoint(path)
    assert not os.path.exists(marker)
    assert REFUSED in str(e.value) and "rename" not in str(e.value)


# ------------------------------------------------------------------ the readers, in process, and positive controls
def project_readers(path):
    """{name: reader} for every reader of the project that takes a file of ``path``'s kind."""
    from esrgan_twin.commands import convert as cw

    from common_data.weights.vgg import read_vgg_weights
    from paddle_impl.engine.checkpoint import load_checkpoint as paddle_load
    from torch_impl.engine.checkpoint import load_checkpoint as torch_load
    engine = ("torch", torch_load) if path.endswith((".pth", ".pt")) else ("paddle", paddle_load)
    return {"convert_weights": cw.read_checkpoint, engine[0]: engine[1],
            "vgg": lambda p: read_vgg_weights(p, "vgg19", lambda q: torch_load(q, "vgg"))}


PICKLES = [  # (id, suffix, pickle protocol, payload, what the line says: protocol 0 is not a pickle paddle writes)
    ("pdparams-protocol2-system", ".pdparams", 2, System, "nothing in it was run"),
    ("pdparams-protocol3-exec", ".pdparams", 3, Exec, "nothing in it was run"),
    ("pdopt-protocol4-exec", ".pdopt", 4, Exec, "nothing in it was run"),
    ("pdparams-protocol5-system", ".pdparams", 5, System, "nothing in it was run"),
    ("pdparams-protocol0-system", ".pdparams", 0, System, "not a weights file"),
]


@pytest.mark.parametrize("suffix, protocol, payload, says", [p[1:] for p in PICKLES], ids=[p[0] for p in PICKLES])
def test_paddle_pickle_payload_runs_under_pickle_load_and_never_under_our_readers(tmp_path, suffix, protocol,
                                                                                  payload, says):
    marker = str(tmp_path / MARKER)
    path = write_paddle_payload(str(tmp_path / f"evil{suffix}"), marker, payload, protocol)
    for name, read in project_readers(path).items():
        with pytest.raises(UserError, match=re.escape(says)) as e:
            read(path)
        assert not os.path.exists(marker), f"{name} ran the payload"
        assert path in str(e.value)
    with open(path, "rb") as f:  # the positive control: a full unpickler runs it
        pickle.load(f)
    assert os.path.exists(marker)


TORCH_FILES = [("pth-zip-system", ".pth", False, System), ("pth-zip-exec", ".pth", False, Exec),
               ("pt-legacy-system", ".pt", True, System)]


@pytest.mark.parametrize("suffix, legacy, payload", [p[1:] for p in TORCH_FILES], ids=[p[0] for p in TORCH_FILES])
def test_torch_payload_runs_under_a_full_torch_load_and_never_under_our_readers(tmp_path, suffix, legacy, payload):
    marker = str(tmp_path / MARKER)
    path = write_torch_payload(str(tmp_path / f"evil{suffix}"), marker, payload, legacy)
    for name, read in project_readers(path).items():
        with pytest.raises(UserError, match="nothing in it was run") as e:
            read(path)
        assert not os.path.exists(marker), f"{name} ran the payload"
        assert path in str(e.value)
    torch.load(path, weights_only=False)  # the positive control: torch's full unpickler runs it  # noqa
    assert os.path.exists(marker)


# ------------------------------------------------- the allow-list is not too strict: every real file still reads
TRAIN_SETUPS = [  # (id, model, optimizer, lr_scheduler): what the run's checkpoints hold
    ("esrgan-2optim-adam-adamw-multistep-ema",
     gan_model(discriminator={"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4}, ema_decay=0.9),
     {"optimG": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
      "optimD": {"name": "AdamW", "net_names": ["discriminator"], "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.01}},
     {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [1], "gamma": 0.5}),
    ("sr-sgd-momentum-lineardecay",
     {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4},
      "pixel_criterion": {"name": "L1Loss"}},
     {"name": "SGD", "net_names": ["generator"], "momentum": 0.9},
     {"name": "LinearDecay", "learning_rate": 1e-3, "start_epoch": 1, "decay_epochs": 2}),
]


def load_checkpoint_of(backend):
    if backend == "paddle":
        from paddle_impl.engine.checkpoint import load_checkpoint
    else:
        from torch_impl.engine.checkpoint import load_checkpoint
    return load_checkpoint


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
@pytest.mark.parametrize("model, optimizer, lr_scheduler", [s[1:] for s in TRAIN_SETUPS],
                         ids=[s[0] for s in TRAIN_SETUPS])
def test_every_file_a_run_writes_reads_back_and_resumes(tmp_path, assets, backend, model, optimizer, lr_scheduler):
    """2 iterations, a snapshot each: every iter_N file reads through the engine's restricted reader and
    convert_weights, ``--resume`` from iteration 1 finishes, ``--evaluate-only --load`` the last weights runs."""
    from esrgan_twin.commands import convert as cw
    tmp = str(tmp_path)
    cfg = base_config(tmp, assets.demo)
    cfg.update(model=model, optimizer=optimizer, lr_scheduler=lr_scheduler, snapshot_config={"interval": 1})
    path = write_config(tmp, cfg, name=f"{CONFIG}.yaml")
    first = run_tool(["main.py", "-c", path, "--backend", backend], cwd=tmp)
    assert first.returncode == 0, first.stderr
    (run_dir,) = [os.path.join(tmp, "out", d) for d in os.listdir(os.path.join(tmp, "out"))]
    load = load_checkpoint_of(backend)
    for iteration in (1, 2):
        for kind in ("weight", "checkpoint"):
            file = os.path.join(run_dir, checkpoint_name(iteration, kind, backend))
            state = load(file, kind)
            assert set(model) & {"generator", "discriminator"} <= set(state), file
            if kind == "checkpoint":
                assert state["epoch"] == iteration and "lr_scheduler" in state and "rng" in state
                assert set(["optim"] if "name" in optimizer else optimizer) <= set(state), file
            cw.read_checkpoint(file)
    resumed = run_tool(["main.py", "-c", path, "--backend", backend, "--resume",
                        os.path.join(run_dir, checkpoint_name(1, "checkpoint", backend))], cwd=tmp)
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr
    evaluated = run_tool(["main.py", "-c", path, "--backend", backend, "--evaluate-only", "--load",
                          os.path.join(run_dir, checkpoint_name(2, "weight", backend))], cwd=tmp)
    assert evaluated.returncode == 0, evaluated.stderr



@pytest.mark.slow
@pytest.mark.ppgan
def test_files_ppgan_itself_writes_read_through_the_allow_list(tmp_path, assets):
    """ppgan 2.1.0's trainer saves with ``pickle.dump(..., protocol=2)`` of numpy arrays: its iter_N_weight and
    iter_N_checkpoint (generator, 'epoch', an Adam state with its LR scheduler) read with the same arrays, and
    the weight file evaluates through main.py."""
    import numpy as np
    import paddle

    from esrgan_twin.commands import convert as cw
    from paddle_impl.engine.checkpoint import load_checkpoint
    from ppgan_compat import import_ppgan
    filesystem = import_ppgan("ppgan.utils.filesystem")
    rrdb_net = import_ppgan("ppgan.models.generators.rrdb_net")
    paddle.seed(0)
    net = rrdb_net.RRDBNet(in_nc=3, out_nc=3, nf=8, nb=1, gc=4)
    scheduler = paddle.optimizer.lr.MultiStepDecay(1e-3, milestones=[1], gamma=0.5)
    optim = paddle.optimizer.Adam(scheduler, parameters=net.parameters())
    net(paddle.rand([1, 3, 8, 8])).mean().backward()
    optim.step()
    scheduler.step()
    weight, checkpoint = str(tmp_path / "iter_5_weight.pdparams"), str(tmp_path / "iter_5_checkpoint.pdparams")
    filesystem.save({"generator": net.state_dict()}, weight)
    filesystem.save({"generator": net.state_dict(), "epoch": 5, "optimG": optim.state_dict()}, checkpoint)
    expected = {k: v.numpy() for k, v in net.state_dict().items()}
    for path in (weight, checkpoint):
        state = load_checkpoint(path)
        for key, value in expected.items():
            np.testing.assert_array_equal(state["generator"][key].numpy(), value)
        numpy_state, framework = cw.read_checkpoint(path)
        assert framework == "paddle" and set(numpy_state["generator"]) == set(expected)
    state = load_checkpoint(checkpoint)
    assert state["epoch"] == 5 and state["optimG"]["LR_Scheduler"]["last_epoch"] == 1
    moments = [k for k in state["optimG"] if "moment1" in k]
    assert len(moments) == len(expected)
    tmp = str(tmp_path)
    proc = run_tool(["main.py", "-c", config(tmp, assets), "--evaluate-only", "--load", weight], cwd=tmp)
    assert proc.returncode == 0, proc.stderr
