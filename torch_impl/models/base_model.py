"""BaseModel: what a training model needs from PyTorch; everything it decides is common_data's ModelCore.

The primitives listed in common_data/training/model_core.py: arch and loss registries, the EMA shadow, the
multi-process wrapper, parameters' trainability, optimizers with one scheduler each (torch schedulers wrap their
optimizer), backward (scaled for fp16 autocast), tensors in and out, files.
"""
import contextlib

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from common_data.errors import ConfigError, first_line
from common_data.training.model_core import ModelCore

from ..archs import build_arch
from ..engine.checkpoint import load_checkpoint
from ..engine.lr_scheduler import build_lr_scheduler
from ..engine.optimizer import build_optimizer
from ..losses import build_loss


class BaseModel(ModelCore):
    """ModelCore on PyTorch; ``setup`` moves it to a device and sets its autocast dtype."""

    framework = "torch"
    # criteria attributes moved to the device with the nets
    CRITERIA = ("pixel_criterion", "perceptual_criterion", "gan_criterion", "edge_criterion")

    def __init__(self, ema_decay=0.0, to_static=None):
        super().__init__(ema_decay, to_static)
        self.lr_schedulers = {}  # optimizer name -> its scheduler
        self.device = torch.device("cpu")
        self.amp_dtype = None
        self.scaler = None
        self.channels_last = False

    build_arch = staticmethod(build_arch)
    build_loss = staticmethod(build_loss)

    def setup(self, device="cpu", amp_dtype=None, channels_last=False):
        """Move nets / criteria to ``device`` (nets and inputs ``channels_last`` if asked) and remake the EMA shadow
        there; autocast in ``amp_dtype`` (None: float32; float16 adds a GradScaler). The engine wraps nets in DDP."""
        self.device = torch.device(device)
        self.channels_last = bool(channels_last)
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        for name, net in self.nets.items():
            self.nets[name] = net.to(self.device, memory_format=memory_format)
        for attr in self.CRITERIA:
            crit = getattr(self, attr, None)
            if crit is not None:
                setattr(self, attr, crit.to(self.device))
        if self.ema is not None:
            self.setup_ema()
        self.amp_dtype = amp_dtype
        if amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def net(self, name):
        """The bare module of a net (unwrapped from DistributedDataParallel)."""
        net = self.nets[name]
        return net.module if isinstance(net, DistributedDataParallel) else net

    @staticmethod
    def set_trainable(param, flag):
        param.requires_grad_(flag)

    @staticmethod
    def load_state(net, state):
        net.load_state_dict(state, strict=False)

    @staticmethod
    def blend(param, source, decay):
        """``param = decay * param + (1 - decay) * source``, in place (the EMA update)."""
        param.mul_(decay).add_(source.detach(), alpha=1.0 - decay)

    @staticmethod
    def assign(target, source):
        target.copy_(source)

    # ---- optimizers and the schedule
    def new_optimizer(self, opt_name, block, params, lr_cfg, where):
        optimizer = build_optimizer(block, params, lr_cfg, where)
        self.lr_schedulers[opt_name] = build_lr_scheduler(lr_cfg, optimizer)
        return optimizer

    def step_schedulers(self):
        """After each iteration: every optimizer's scheduler steps once (all follow one schedule)."""
        for scheduler in self.lr_schedulers.values():
            scheduler.step()

    @property
    def current_lr(self):
        for optimizer in self.optimizers.values():
            return optimizer.param_groups[0]["lr"]
        return 0.0

    def scheduler_state(self):
        return next(iter(self.lr_schedulers.values())).state_dict() if self.lr_schedulers else None

    def load_scheduler_state(self, state):
        for scheduler in self.lr_schedulers.values():
            scheduler.load_state_dict(state)

    @staticmethod
    def clear_grad(optimizer):
        optimizer.zero_grad(set_to_none=True)

    def optimizer_step(self, optimizer):
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def backward(self, loss):
        loss = loss.float() / self.accumulate_steps
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def end_iteration(self):
        """After the last micro-batch: the fp16 scaler's update, then ModelCore's (the EMA update)."""
        if self.scaler is not None:
            self.scaler.update()
        super().end_iteration()

    def optimizer_state(self, opt_name):
        return self.optimizers[opt_name].state_dict()

    def load_optimizer_state(self, opt_name, state, source):
        try:
            self.optimizers[opt_name].load_state_dict(state)
        except ValueError as e:  # another parameter count: net_names or model.freeze_d_layers changed
            raise ConfigError(f"{source}: the {opt_name} optimizer state does not fit this model's trainable "
                              f"parameters ({first_line(e)}); resume with the net_names and "
                              f"model.freeze_d_layers it was saved with") from None

    # ---- tensors and files
    def to_tensor(self, array):
        tensor = torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(self.device)
        return tensor.contiguous(memory_format=torch.channels_last) if self.channels_last else tensor

    @staticmethod
    def to_numpy(tensor):
        return tensor.detach().float().cpu().numpy()

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @staticmethod
    def no_grad():
        return torch.no_grad()

    @staticmethod
    def fp32(tensor):
        return tensor.float()

    @staticmethod
    def load_file(path, what):
        return load_checkpoint(path, what)
