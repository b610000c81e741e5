"""BaseModel: what a training model needs from Paddle; everything it decides is common_data's ModelCore.

The primitives listed in common_data/training/model_core.py: arch and loss registries, the EMA shadow, the
multi-process wrapper, parameters' trainability, optimizers sharing one scheduler (paddle optimizers take the
scheduler as their learning rate), backward, tensors in and out, files.
"""
import contextlib

import numpy as np
import paddle

from common_data.errors import ConfigError
from common_data.training.model_core import ModelCore

from ..archs import build_arch
from ..engine.checkpoint import load_checkpoint, load_optimizer_state, optimizer_state
from ..engine.lr_scheduler import build_lr_scheduler
from ..engine.optimizer import build_optimizer
from ..losses import build_loss


class BaseModel(ModelCore):
    """ModelCore on Paddle."""

    framework = "paddle"

    def __init__(self, ema_decay=0.0, to_static=None):
        super().__init__(ema_decay, to_static)
        self.lr_scheduler = None  # shared by every optimizer

    build_arch = staticmethod(build_arch)
    build_loss = staticmethod(build_loss)

    def setup(self, device="cpu", amp_dtype=None, channels_last=False):
        """Nothing to move: paddle places tensors on its default device and trains in fp32 (engine/backend.py)."""

    def net(self, name):
        """The bare layer of a net (unwrapped from paddle.DataParallel)."""
        net = self.nets[name]
        return getattr(net, "_layers", net)

    @staticmethod
    def set_trainable(param, flag):
        param.stop_gradient = not flag

    @staticmethod
    def load_state(net, state):
        net.set_state_dict(state)

    @staticmethod
    def blend(param, source, decay):
        """``param = decay * param + (1 - decay) * source``, in place (the EMA update)."""
        param.set_value(decay * param + (1.0 - decay) * source.detach())

    @staticmethod
    def assign(target, source):
        target.set_value(source)

    # ---- optimizers and the schedule
    def new_optimizer(self, opt_name, block, params, lr_cfg, where):
        if self.lr_scheduler is None:
            self.lr_scheduler = build_lr_scheduler(lr_cfg)
        return build_optimizer(block, params, self.lr_scheduler, where=where)

    def step_schedulers(self):
        """After each iteration: the shared scheduler steps once."""
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()

    @property
    def current_lr(self):
        return float(self.lr_scheduler.last_lr) if self.lr_scheduler is not None else 0.0

    def scheduler_state(self):
        return self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None

    def load_scheduler_state(self, state):
        if self.lr_scheduler is not None:
            self.lr_scheduler.set_state_dict(dict(state))

    @staticmethod
    def clear_grad(optimizer):
        optimizer.clear_grad()

    @staticmethod
    def optimizer_step(optimizer):
        optimizer.step()

    def backward(self, loss):
        (loss / self.accumulate_steps if self.accumulate_steps > 1 else loss).backward()

    def optimizer_state(self, opt_name):
        """The optimizer's state with stable parameter paths (engine/checkpoint.py)."""
        return optimizer_state(self.optimizers[opt_name], self.optimizer_layers(opt_name))

    def load_optimizer_state(self, opt_name, state, source):
        """Paddle loads any state silently: a state whose trained parameters are not this optimizer's (net_names or
        model.freeze_d_layers changed) -> one ConfigError first."""
        params = {f"{n}.{k}": p for n, layer in self.optimizer_layers(opt_name).items()
                  for k, p in layer.named_parameters()}
        trained = {name for name, p in params.items() if id(p) not in self.frozen_ids}
        every = sorted(params, key=len, reverse=True)
        saved = {next((n for n in every if str(key).startswith(n + "_")), None) for key in state} - {None}
        if saved and saved != trained:
            odd = sorted(saved ^ trained)[0]
            raise ConfigError(f"{source}: the {opt_name} optimizer state does not fit this model's trainable "
                              f"parameters ({odd} is trained {'there' if odd in saved else 'here'} only); resume "
                              f"with the net_names and model.freeze_d_layers it was saved with")
        load_optimizer_state(self.optimizers[opt_name], state, self.optimizer_layers(opt_name))

    def optimizer_layers(self, opt_name):
        return {n: self.net(n) for n in self.optimizer_nets[opt_name]}

    # ---- tensors and files
    @staticmethod
    def to_tensor(array):
        return array if isinstance(array, paddle.Tensor) else paddle.to_tensor(np.asarray(array, np.float32))

    @staticmethod
    def to_numpy(tensor):
        return tensor.detach().astype("float32").numpy()

    @staticmethod
    def autocast():
        return contextlib.nullcontext()  # paddle trains in float32 (engine/backend.py)

    @staticmethod
    def no_grad():
        return paddle.no_grad()

    @staticmethod
    def fp32(tensor):
        return tensor.astype("float32")

    @staticmethod
    def load_file(path, what):
        return load_checkpoint(path, what)
