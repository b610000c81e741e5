"""Static-graph + oneDNN training step for pixel-loss SR models (PaddleGAN's ``to_static: True``).

Paddle's eager mode on CPU runs convolutions through im2col and an old MKL, several times slower than PyTorch;
a static program run by the Executor with ``FLAGS_use_mkldnn=1`` uses oneDNN kernels and closes most of that gap
(see README's benchmark table). The program is built once for fixed patch shapes: ``net(lq)`` -> loss ->
``optimizer.minimize``. Weights move in and out as structured state dicts, so checkpoints, validation (eager) and
EMA see the same names as in eager training.

``FLAGS_use_mkldnn`` must be in the environment before ``import paddle``; tools/main.py sets it when a config asks
for ``to_static``.
"""
import contextlib

import numpy as np
import paddle

from ..archs.rrdbnet_arch import check_onednn_train_channels, onednn_train_ops
from ..cpu_ops import bias_act_op


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


def onednn_enabled():
    flags = paddle.get_flags(["FLAGS_use_mkldnn", "FLAGS_use_onednn"])
    return bool(flags["FLAGS_use_mkldnn"] or flags["FLAGS_use_onednn"])


class StaticPixelStep:
    """One compiled train step ``loss = criterion(net(lq), gt)``; Adam state lives in the static scope.

    ``build_net()`` / ``build_loss()`` make fresh layers inside the program; ``make_optimizer(parameters)`` returns a
    paddle optimizer (its LRScheduler is stepped by the caller as in eager training).

    With oneDNN on, an RRDBNet whose widths oneDNN cannot train is refused (``check_onednn_train_channels``), and the
    net is traced under ``onednn_train_ops`` (conv bias and LeakyReLU as one fused C++ op, built
    on first use, or as plain ops whose backward has fast kernels; same values, gradients and parameter names).
    """

    def __init__(self, build_net, build_loss, make_optimizer, lq_shape, gt_shape):
        onednn = onednn_enabled()
        if onednn:
            bias_act_op()  # build or load it (or log why not) before tracing
        self.main, self.startup = paddle.static.Program(), paddle.static.Program()
        self.scope = paddle.static.Scope()
        self.lq_shape, self.gt_shape = tuple(lq_shape[1:]), tuple(gt_shape[1:])
        with static_mode(), paddle.static.scope_guard(self.scope), paddle.static.program_guard(self.main, self.startup):
            lq = paddle.static.data("lq", [None, *self.lq_shape], "float32")
            gt = paddle.static.data("gt", [None, *self.gt_shape], "float32")
            self.net = build_net()
            if onednn:
                check_onednn_train_channels(self.net)
            with onednn_train_ops(onednn):
                self.loss = build_loss()(self.net(lq), gt)
            self.optimizer = make_optimizer(self.net.parameters())
            self.optimizer.minimize(self.loss)
            self._names = {k: v.name for k, v in self.net.state_dict().items()}
            self.exe = paddle.static.Executor(paddle.CPUPlace())
            self.exe.run(self.startup)

    def accepts(self, lq, gt):
        return tuple(lq.shape[1:]) == self.lq_shape and tuple(gt.shape[1:]) == self.gt_shape

    def step(self, lq, gt):
        """One optimizer step on numpy NCHW float32 batches; returns the loss."""
        with static_mode(), paddle.static.scope_guard(self.scope):
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
