"""Static-graph + oneDNN training step for pixel-loss SR models (PaddleGAN's ``to_static: True``).

``StaticStep`` is the step strategy (common_data/training/steps.py) that ``PaddleBackend.step_strategy`` returns
for ``model.to_static: true``; it owns the compiled program (``StaticPixelStep``) and its optimizer state, so the
model stays an eager model.

Paddle's eager mode on CPU runs convolutions through im2col and an old MKL, several times slower than PyTorch;
a static program run by the Executor with ``FLAGS_use_mkldnn=1`` uses oneDNN kernels and closes most of that gap
(see README's benchmark table). The program is built once for fixed patch shapes: ``net(lq)`` -> loss ->
``optimizer.minimize``. Weights move in and out as structured state dicts, so checkpoints, validation (eager) and
EMA see the same names as in eager training.

``FLAGS_use_mkldnn`` must be in the environment before ``import paddle``; tools/main.py sets it when a config asks
for ``to_static``.

Precision bf16 trains here only (``settle_precision``): the convs run on oneDNN's bf16 kernels through two compiled
ops (``archs.onednn_train``); weights, Adam state, the loss and checkpoints stay float32.
"""
import contextlib
import sys
import tempfile

import numpy as np
import paddle

from common_data.config.precision import Precision
from common_data.errors import ConfigError
from common_data.training.recipes import ESRGANRecipe
from common_data.training.steps import AUTO, EagerStep, static_step_fits

from ..archs import build_arch
from ..archs.onednn_train import check_onednn_train_channels, onednn_train_ops
from ..cpu_ops import bf16_ops, bias_act_op, redirect_fd
from ..losses import build_loss
from .optimizer import build_optimizer


@contextlib.contextmanager
def static_mode():
    """Switch to static mode for the block, back to eager after."""
    was_dynamic = paddle.in_dynamic_mode()
    if was_dynamic:
        paddle.enable_static()
    try:
        yield
    finally:
        if was_dynamic:
            paddle.disable_static()


ONEDNN_NOISE = ("ReduceMeanCheckIfOneDNNSupport",)  # a debug print of Paddle's C++ on the first run, to fd 1


@contextlib.contextmanager
def native_stdout_without(noise):
    """Lines C++ writes to fd 1 (past sys.stdout) during the block, minus the ``noise`` lines, written after it."""
    with tempfile.TemporaryFile() as captured:
        try:
            with redirect_fd(1, captured):
                yield
        finally:
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if line.strip() not in noise]
            sys.stdout.write("".join(kept))
            sys.stdout.flush()


def onednn_enabled():
    flags = paddle.get_flags(["FLAGS_use_mkldnn", "FLAGS_use_onednn"])
    return bool(flags["FLAGS_use_mkldnn"] or flags["FLAGS_use_onednn"])


class StaticPixelStep:
    """One compiled train step ``loss = criterion(net(lq), gt)``; Adam state lives in the static scope.

    ``make_net()`` / ``make_loss()`` make fresh layers inside the program; ``make_optimizer(parameters)`` returns a
    paddle optimizer (its LRScheduler is stepped by the caller as in eager training).

    With oneDNN on, an RRDBNet whose widths oneDNN cannot train is refused (``check_onednn_train_channels``), and the
    net is traced under ``onednn_train_ops`` (conv bias and LeakyReLU as one fused C++ op, built
    on first use, or as plain ops whose backward has fast kernels; same values, gradients and parameter names);
    ``bf16``: with the convs in bf16 (oneDNN on and the compiled ops built: see ``settle_precision``).
    """

    def __init__(self, make_net, make_loss, make_optimizer, lq_shape, gt_shape, bf16=False):
        onednn = onednn_enabled()
        if onednn:
            bias_act_op()  # build or load it (or log why not) before tracing
        self.main, self.startup = paddle.static.Program(), paddle.static.Program()
        self.scope = paddle.static.Scope()
        self.lq_shape, self.gt_shape = tuple(lq_shape[1:]), tuple(gt_shape[1:])
        with static_mode(), paddle.static.scope_guard(self.scope), paddle.static.program_guard(self.main, self.startup):
            lq = paddle.static.data("lq", [None, *self.lq_shape], "float32")
            gt = paddle.static.data("gt", [None, *self.gt_shape], "float32")
            self.net = make_net()
            if onednn:
                check_onednn_train_channels(self.net)
            with onednn_train_ops(self.net, onednn, bf16=bf16):
                self.loss = make_loss()(self.net(lq), gt)
            self.optimizer = make_optimizer(self.net.parameters())
            self.optimizer.minimize(self.loss)
            self._names = {k: v.name for k, v in self.net.state_dict().items()}
            self.exe = paddle.static.Executor(paddle.CPUPlace())
            self.exe.run(self.startup)

    def accepts(self, lq, gt):
        return tuple(lq.shape[1:]) == self.lq_shape and tuple(gt.shape[1:]) == self.gt_shape

    def step(self, lq, gt):
        """One optimizer step on numpy NCHW float32 batches; returns the loss."""
        first, self.ran = not getattr(self, "ran", False), True
        with static_mode(), paddle.static.scope_guard(self.scope), \
                native_stdout_without(ONEDNN_NOISE) if first else contextlib.nullcontext():
            (loss,) = self.exe.run(self.main, feed={"lq": np.ascontiguousarray(lq, np.float32),
                                                    "gt": np.ascontiguousarray(gt, np.float32)},
                                   fetch_list=[self.loss])
        return float(loss)

    def get_weights(self):
        """Structured state dict of numpy arrays (``conv_first.weight`` ...)."""
        return {k: np.array(self.scope.find_var(n).get_tensor()) for k, n in self._names.items()}

    def set_weights(self, state):
        for k, n in self._names.items():
            v = state[k]
            v = v.numpy() if hasattr(v, "numpy") else np.asarray(v)
            self.scope.find_var(n).get_tensor().set(np.ascontiguousarray(v, np.float32), paddle.CPUPlace())

    def optimizer_state(self):
        """Adam moments and beta powers keyed by structured name + suffix (``conv_first.weight_moment1_0``)."""
        out = {}
        for key, pname in self._names.items():
            for name in self.scope.local_var_names():
                if name.startswith(pname + "_") and "inner_var" not in name:
                    out[key + name[len(pname):]] = np.array(self.scope.find_var(name).get_tensor())
        return out

    def set_optimizer_state(self, state):
        for key, pname in self._names.items():
            for skey, value in state.items():
                if skey.startswith(key + "_"):
                    var = self.scope.find_var(pname + skey[len(key):])
                    if var is not None:
                        var.get_tensor().set(np.ascontiguousarray(value), paddle.CPUPlace())


class StaticStep:
    """The step strategy of ``model.to_static: true``: BaseSRModel / RealESRNet's ``l_pix`` step as one program.

    The program is built on the first batch (again when the patch shapes change) from ``model.generator`` and
    ``model.pixel_criterion``; after each step the eager generator receives its weights, so validation, EMA
    (``model.end_iteration``) and weight files see eager training's names. The checkpoint keeps eager training's
    layout: the generator's optimizer entry holds the Adam state as ``generator.<param>_moment1_0`` ... and
    ``LR_Scheduler``, so a run resumes across eager and static. The output visual is computed on demand.
    """

    name = "static"
    precision = None  # what the step trains at (choose_step: settle_precision's answer)

    def __init__(self, model, model_cfg):
        if isinstance(model, ESRGANRecipe):
            raise ConfigError(f"model.to_static: the static-graph step trains BaseSRModel or RealESRNet (a "
                              f"pixel_criterion alone), not {type(model).__name__}; set -o model.to_static=false")
        self.generator_cfg, self.pixel_cfg = model_cfg["generator"], model_cfg["pixel_criterion"]
        self.program = None  # StaticPixelStep of the current patch shapes
        self.pending = None  # generator optimizer state from --resume, for the next program built

    @property
    def bf16(self):
        """Whether the convs run in bf16 (oneDNN's bf16 kernels through the compiled ops)."""
        return self.precision is not None and self.precision.name == "bf16"

    def train_iter(self, model):
        if model.accumulate_steps > 1:
            raise ConfigError("model.to_static does not combine with accumulate_steps > 1; drop one of them")
        lq, target = model.lq.numpy(), model.pixel_target().numpy()
        if self.program is None or not self.program.accepts(lq, target):
            self.program = self.build(model, lq.shape, target.shape)
        model.losses.clear()
        model.losses["l_pix"] = self.program.step(lq, target)
        model.nets["generator"].set_state_dict({k: paddle.to_tensor(v) for k, v in self.program.get_weights().items()})
        model.visual_items.pop("output", None)  # computed on demand by visuals()

    def build(self, model, lq_shape, gt_shape):
        """A program for these shapes, starting from the eager generator and the optimizer state so far."""
        opt_name = model.optimizer_name_for("generator")
        block = model.optimizer_blocks[opt_name]
        program = StaticPixelStep(lambda: build_arch(self.generator_cfg, "model.generator"),
                                  lambda: build_loss(self.pixel_cfg, "model.pixel_criterion"),
                                  lambda params: build_optimizer(block, params, model.lr_scheduler,
                                                                 where=f"optimizer.{opt_name}"),
                                  lq_shape, gt_shape, bf16=self.bf16)
        program.set_weights(model.nets["generator"].state_dict())
        state = self.generator_optimizer_state()
        if state:
            program.set_optimizer_state({k[len("generator."):]: _array(v) for k, v in state.items()})
        self.pending = None
        return program

    def generator_optimizer_state(self):
        """``{"generator.<param>_<suffix>": array}`` of the current program, else what --resume read."""
        if self.program is not None:
            return {f"generator.{k}": v for k, v in self.program.optimizer_state().items()}
        return dict(self.pending or {})

    def training_state(self, model):
        state = model.training_state()
        opt_state = self.generator_optimizer_state()
        opt_state["LR_Scheduler"] = model.lr_scheduler.state_dict()
        state[model.optimizer_name_for("generator")] = opt_state
        return state

    def load_training_state(self, model, state, source):
        model.load_training_state(state, source)
        opt_name = model.optimizer_name_for("generator")
        self.pending = {k: v for k, v in state[opt_name].items() if k.startswith("generator.")}
        self.program = None

    def visuals(self, model):
        visuals = model.get_current_visuals()
        if "output" not in visuals and model.lq is not None:
            with paddle.no_grad():
                visuals["output"] = model.nets["generator"](model.lq)
        return visuals


def choose_step(model, cfg, multi_process=False, precision=None):
    """``model.to_static: true``: the StaticStep; ``auto``: the StaticStep where it fits the config and runs here (one
    process on a CPU with oneDNN, RRDBNet channels it supports), else eager, with the reason as the step's ``why``;
    the step's ``precision``: what it trains at (``settle_precision``)."""
    step = _choose_step(model, cfg, multi_process)
    step.precision = settle_precision(step, precision)
    return step


def settle_precision(step, precision):
    """bf16 trains in the static step alone, with oneDNN on and the compiled bf16 ops; elsewhere ``auto``'s bf16
    becomes fp32 with the reason, and an explicit bf16 is refused in one line. -> the step's Precision."""
    if precision is None or precision.name != "bf16":
        return precision
    if not isinstance(step, StaticStep):
        why = ("the eager paddle step trains fp32 (paddle's CPU autocast is a no-op) and bf16 trains in the static "
               "step only " + (f"({step.why})" if step.why else "(model.to_static: auto or true)"))
    elif not onednn_enabled():
        why = "the static step runs bf16 on oneDNN only, and FLAGS_use_mkldnn was not set before paddle was imported"
    elif bf16_ops() is None:
        why = "the static step's bf16 ops could not be built (the log above says why)"
    else:
        return precision
    if precision.requested == "bf16":
        raise ConfigError(f"precision bf16: {why}; use precision fp32 (or auto), or --backend torch")
    return Precision("fp32", why)


def _choose_step(model, cfg, multi_process):
    choice = getattr(model, "to_static", False)
    if choice is True:
        return StaticStep(model, cfg["model"])
    step = EagerStep()
    if choice != AUTO:
        return step
    fits, why_not = static_step_fits(cfg)
    if fits and multi_process:
        fits, why_not = False, "the static oneDNN step trains one process only"
    if fits and paddle.device.get_device() != "cpu":
        fits, why_not = False, "the static oneDNN step is for CPUs"
    if fits and not onednn_enabled():
        fits, why_not = False, "FLAGS_use_mkldnn was not set before paddle was imported"
    if fits:
        try:
            check_onednn_train_channels(model.nets["generator"])
        except ConfigError as e:
            fits, why_not = False, str(e).split(";")[0]
    if not fits:
        step.why = f"to_static auto: eager, since {why_not}"
        return step
    step = StaticStep(model, cfg["model"])
    step.why = "to_static auto: the static-graph oneDNN step, 3-4x eager's speed on a CPU"
    return step


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
