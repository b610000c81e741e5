"""BaseModel: nets, optimizers and the shared lr scheduler, inputs, losses, EMA, weights and checkpoint state.

Models own their losses and optimizer steps (PaddleGAN's design); the trainer only feeds batches. Gradient
accumulation: the trainer calls ``set_micro_step(k, K)`` before each of K micro-batches; ``zero_grad`` acts on the
first, ``backward`` divides the loss by K and ``step`` steps (and updates the EMA) only on the last.
"""
import contextlib
from collections import OrderedDict

import numpy as np
import paddle

from common_data.errors import ConfigError, few
from common_data.metrics.output_checks import check_finite_output
from common_data.data.visual import chw_to_uint8
from common_data.weights.naming import pick_net_state

from ..engine.checkpoint import load_checkpoint, load_optimizer_state, optimizer_state
from ..engine.lr_scheduler import build_lr_scheduler
from ..engine.optimizer import build_optimizer
from .ema import ModelEMA

INPUT_KEYS = ("lq", "gt", "gt_usm")


class BaseModel:
    """Holds ``nets``, ``optimizers`` and one ``lr_scheduler`` shared by all optimizers (PaddleGAN)."""

    def __init__(self):
        self.nets = OrderedDict()
        self.optimizers = OrderedDict()
        self.optimizer_nets = OrderedDict()
        self.optimizer_blocks = OrderedDict()
        self.losses = OrderedDict()
        self.visual_items = OrderedDict()
        self.lr_scheduler = None
        self.ema = None
        self.current_iter = 0
        self.micro_step, self.accumulate_steps = 0, 1
        self.steps_in_iteration = 0  # optimizer steps taken in the current iteration
        self.min_max = (0.0, 1.0)
        self.image_paths = []
        self.weights_source = None  # the file --load read the generator from (named by evaluation errors)
        self.frozen_ids = set()  # ids of parameters FreezeD keeps fixed
        self.log = print

    # ---- setup -------------------------------------------------------------------------------------------------
    def setup_optimizers(self, optimizer_cfg, lr_cfg):
        """PaddleGAN's schema: one ``{name, net_names, ...}`` block (called ``optim``) or ``{optimG: {...}, ...}``.

        All optimizers share one scheduler following ``lr_cfg`` (PaddleGAN).
        """
        if not optimizer_cfg:
            raise ConfigError("optimizer is missing: add e.g. {name: Adam, net_names: [generator], beta1: 0.9, "
                              "beta2: 0.99}")
        self.lr_scheduler = build_lr_scheduler(lr_cfg)
        blocks = {"optim": optimizer_cfg} if "name" in optimizer_cfg else optimizer_cfg
        for opt_name, block in blocks.items():
            where = "optimizer" if opt_name == "optim" and "name" in optimizer_cfg else f"optimizer.{opt_name}"
            if not isinstance(block, dict):
                raise ConfigError(f"{where}: expected a mapping with name and net_names, got {block!r}")
            net_names = block.get("net_names") or ["generator"]
            missing = [n for n in net_names if n not in self.nets]
            if missing:
                raise ConfigError(f"{where}.net_names: {', '.join(missing)} not in this model's nets "
                                  f"({', '.join(self.nets)})")
            params = [p for n in net_names for p in self.nets[n].parameters() if id(p) not in self.frozen_ids]
            self.optimizers[opt_name] = build_optimizer(block, params, self.lr_scheduler, where=where)
            self.optimizer_nets[opt_name] = list(net_names)
            self.optimizer_blocks[opt_name] = dict(block)
        return self.optimizers

    def step_schedulers(self):
        """After each iteration: the shared scheduler steps once."""
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()

    @property
    def current_lr(self):
        return float(self.lr_scheduler.last_lr) if self.lr_scheduler is not None else 0.0

    def net(self, name):
        """The bare layer of a net (unwrapped from paddle.DataParallel)."""
        net = self.nets[name]
        return getattr(net, "_layers", net)

    def optimizer_for(self, net_name):
        """The optimizer whose net_names include ``net_name``."""
        return self.optimizers[self.optimizer_name_for(net_name)]

    def optimizer_name_for(self, net_name):
        """The name (``optim``, ``optimG`` ...) of the optimizer whose net_names include ``net_name``."""
        for opt_name, names in self.optimizer_nets.items():
            if net_name in names:
                return opt_name
        raise ConfigError(f"optimizer: no optimizer has {net_name!r} in its net_names "
                          f"(optimizers: {', '.join(self.optimizer_nets) or 'none'})")

    def setup_ema(self, decay):
        if decay and decay > 0:
            self.ema = ModelEMA(self.nets["generator"], decay)

    # ---- one training step -------------------------------------------------------------------------------------
    def set_micro_step(self, k, num):
        self.micro_step, self.accumulate_steps = k, num
        if k == 0:
            self.steps_in_iteration = 0

    @staticmethod
    def autocast():
        return contextlib.nullcontext()  # paddle trains in float32 (engine/backend.py)

    @staticmethod
    def no_grad():
        return paddle.no_grad()

    @staticmethod
    def fp32(tensor):
        return tensor.astype("float32")

    def zero_grad(self, net_name):
        if self.micro_step == 0:
            self.optimizer_for(net_name).clear_grad()

    def backward(self, loss):
        (loss / self.accumulate_steps if self.accumulate_steps > 1 else loss).backward()

    def step(self, net_name):
        """Step the net's optimizer on the last micro-batch of the iteration."""
        if self.micro_step == self.accumulate_steps - 1:
            self.optimizer_for(net_name).step()
            self.steps_in_iteration += 1
            return True
        return False

    def end_iteration(self):
        """After the last micro-batch of an iteration: the EMA update (BasicSR's model_ema)."""
        if self.ema is not None:
            self.ema.update()

    def set_requires_grad(self, nets, requires_grad=False):
        """Turn gradients of ``nets`` on or off; frozen parameters (FreezeD) stay off."""
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            for p in net.parameters():
                p.stop_gradient = not requires_grad or id(p) in self.frozen_ids

    def freeze_parameters(self, net_name, names):
        """FreezeD: the named parameters of ``net_name`` take no gradient and no optimizer (call before
        setup_optimizers)."""
        params = dict(self.net(net_name).named_parameters())
        for name in names:
            params[name].stop_gradient = True
            self.frozen_ids.add(id(params[name]))

    def setup_input(self, batch):
        """Batch dict (numpy arrays or paddle Tensors) -> ``self.lq``, ``self.gt``, ``self.gt_usm`` tensors."""
        for key in INPUT_KEYS:
            value = batch.get(key)
            if value is None:
                setattr(self, key, None)
                continue
            tensor = value if isinstance(value, paddle.Tensor) else paddle.to_tensor(np.asarray(value, np.float32))
            setattr(self, key, tensor)
            if key != "gt_usm":
                self.visual_items[key] = tensor
        self.image_paths = list(batch.get("lq_path", []))

    def train_iter(self, optimizers=None):
        raise NotImplementedError

    # ---- evaluation --------------------------------------------------------------------------------------------
    def eval_generator(self):
        """The network validation uses: the EMA shadow when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.nets["generator"]

    def test_iter(self, metrics=None):
        net = self.eval_generator()
        was_training = net.training
        net.eval()
        with paddle.no_grad():
            self.output = net(self.lq)
        if was_training:
            net.train()
        self.visual_items["output"] = self.output
        output = check_finite_output(self.output.numpy(), self.weights_source)
        if metrics and self.gt is not None:
            preds = [chw_to_uint8(o, self.min_max) for o in output]
            gts = [chw_to_uint8(g, self.min_max) for g in self.gt.numpy()]
            for metric in metrics.values():
                metric.update(preds, gts)

    def get_current_losses(self):
        return OrderedDict((k, float(v)) for k, v in self.losses.items())

    def get_current_visuals(self):
        return self.visual_items

    def get_image_paths(self):
        return self.image_paths

    # ---- weights and checkpoints -------------------------------------------------------------------------------
    def nets_state(self, for_weights=False):
        """``{net_name: state_dict}``; the EMA shadow replaces the generator when ``for_weights``."""
        out = OrderedDict((name, self.net(name).state_dict()) for name in self.nets)
        if for_weights and self.ema is not None:
            out["generator"] = self.ema.state_dict()
        return out

    def training_state(self):
        """Nets, optimizers (stable key names), scheduler and EMA (see engine/checkpoint.py for the layout)."""
        state = self.nets_state()
        for opt_name, opt in self.optimizers.items():
            state[opt_name] = optimizer_state(opt, {n: self.net(n) for n in self.optimizer_nets[opt_name]})
        if self.lr_scheduler is not None:
            state["lr_scheduler"] = self.lr_scheduler.state_dict()
        if self.ema is not None:
            state["ema"] = {"generator": self.ema.state_dict()}
        return state

    def load_training_state(self, state, path):
        for name in self.nets:
            if name not in state:
                raise ConfigError(f"{path}: no weights for net {name!r} (has {', '.join(map(str, state))})")
            load_state_checked(self.net(name), state[name], strict=True, where=f"{path} [{name}]")
        for opt_name, opt in self.optimizers.items():
            if opt_name not in state:
                raise ConfigError(f"{path}: no state for optimizer {opt_name!r}; is it a weight file? "
                                  f"Use --load for weights, --resume for iter_N_checkpoint files")
            self.check_optimizer_params(opt_name, state[opt_name], path)
            load_optimizer_state(opt, state[opt_name], {n: self.net(n) for n in self.optimizer_nets[opt_name]})
        if self.lr_scheduler is not None and "lr_scheduler" in state:
            self.lr_scheduler.set_state_dict(dict(state["lr_scheduler"]))
        if self.ema is not None:
            ema_state = (state.get("ema") or {}).get("generator")
            if ema_state is not None:
                self.ema.set_state_dict(ema_state)
            else:
                self.ema.copy_from_net()

    def check_optimizer_params(self, opt_name, opt_state, path):
        """A saved optimizer state with entries for parameters this optimizer does not train (net_names or
        model.freeze_d_layers changed) -> one-line ConfigError; paddle would load it silently."""
        names = {f"{n}.{k}": id(p) for n in self.optimizer_nets[opt_name] for k, p in self.net(n).named_parameters()}
        longest_first = sorted(names, key=len, reverse=True)
        for key in opt_state:
            name = next((n for n in longest_first if str(key).startswith(n + "_")), None)
            if name is not None and names[name] in self.frozen_ids:
                raise ConfigError(f"{path}: the {opt_name} optimizer state does not fit this model's trainable "
                                  f"parameters (it trains {name}, frozen here); resume with the net_names and "
                                  f"model.freeze_d_layers it was saved with")

    def load_weights(self, state, path):
        """--load: nets found in ``state`` ({net_name: state_dict}, or a bare generator state dict)."""
        if not any(name in state for name in self.nets):
            state = {"generator": pick_net_state(state, "generator", source=path)}
        loaded = []
        for name in self.nets:
            if name in state:
                load_state_checked(self.net(name), state[name], strict=True, where=f"{path} [{name}]")
                loaded.append(name)
        if "generator" not in loaded:
            raise ConfigError(f"{path}: no generator weights found (keys: {', '.join(list(map(str, state))[:6])})")
        self.weights_source = path
        if self.ema is not None:
            self.ema.copy_from_net()
        return loaded

    def load_pretrained(self, net_name, path, strict=True, param_key=None):
        """pretrain_network_g / _d: pick params_ema / params / {net_name: ...} / a bare state dict."""
        state = load_checkpoint(path, f"pretrained {net_name}")
        state = pick_net_state(state, net_name, param_key, source=path)
        load_state_checked(self.nets[net_name], state, strict=strict, where=f"{path} [{net_name}]")


def load_state_checked(net, state, strict, where):
    """set_state_dict with key and shape checks; strict -> ConfigError on any mismatch, else skip mismatches."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and list(state[k].shape) != list(own[k].shape)]
    if strict and (missing or unexpected or wrong):
        shapes = [f"{k} {tuple(state[k].shape)} in the file vs {tuple(own[k].shape)}" for k in wrong]
        parts = [f"{len(missing)} missing ({few(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
                 f"{len(wrong)} shape mismatch ({few(shapes)})" if wrong else ""]
        raise ConfigError(f"{where}: weights do not fit the network ({'; '.join(p for p in parts if p)}); check the "
                          f"generator/discriminator options or set strict_load_g / strict_load_d: false")
    net.set_state_dict({k: v for k, v in state.items() if k in own and k not in wrong})
