"""The framework-neutral half of every training model: nets and optimizers by name, gradient accumulation, FreezeD,
the EMA policy, inputs, evaluation, weights and checkpoint state - decided once for both backends.

The trainer drives a model as PaddleGAN's does: ``setup_input(batch)``, then ``train_iter()`` once per micro-batch
(``set_micro_step(k, K)`` before each: ``zero_grad`` acts on the first, ``backward`` divides the loss by K, ``step``
steps on the last), then ``end_iteration()`` (EMA update). The recipes (common_data/training/recipes.py) write the
losses; each backend's ``models/base_model.py`` (``BaseModel``) supplies only what needs its framework:

  framework ("paddle" / "torch"), build_arch(cfg, where), build_loss(cfg, where), net(name) (unwrapped from
  the multi-process wrapper), set_trainable(param, flag), load_state(net, state), blend(param, source, decay) and
  assign(target, source) (the EMA's update), new_optimizer(opt_name, block, params, lr_cfg, where),
  step_schedulers(), current_lr, scheduler_state(), load_scheduler_state(state), clear_grad(optimizer),
  optimizer_step(optimizer), backward(loss), optimizer_state(opt_name), load_optimizer_state(opt_name, state,
  source), to_tensor(array), to_numpy(tensor), autocast(), no_grad(), fp32(tensor), load_file(path, what).

Nets are used only through what paddle and torch share: ``parameters()``, ``named_parameters()``, ``state_dict()``,
``train()`` / ``eval()`` / ``training`` and calling them.
"""
from collections import OrderedDict

from ..data.visual import chw_to_uint8
from ..errors import ConfigError, few
from ..metrics.output_checks import check_finite_output
from ..weights.naming import pick_net_state, strip_prefixes
from .ema import ModelEMA
from .steps import to_static_choice

INPUT_KEYS = ("lq", "gt", "gt_usm")


class ModelCore:
    """``nets`` / ``optimizers`` (OrderedDicts by name), ``losses``, ``visual_items``, the EMA generator (``ema``)."""

    def __init__(self, ema_decay=0.0, to_static=None):
        self.nets = OrderedDict()
        self.optimizers = OrderedDict()
        self.optimizer_nets = OrderedDict()  # optimizer name -> the net names it trains
        self.optimizer_blocks = OrderedDict()  # optimizer name -> its config block
        self.losses = OrderedDict()
        self.visual_items = OrderedDict()
        self.ema_decay = float(ema_decay or 0.0)
        self.ema = None
        self.to_static = to_static_choice({"to_static": to_static})  # True / False / "auto": the backend's choice
        self.current_iter = 0
        self.micro_step, self.accumulate_steps = 0, 1
        self.steps_in_iteration = 0  # optimizer steps taken in the current iteration
        self.min_max = (0.0, 1.0)
        self.lq = self.gt = self.gt_usm = None
        self.image_paths = []
        self.weights_source = None  # the file --load read the generator from (named by evaluation errors)
        self.frozen_ids = set()  # ids of parameters FreezeD keeps fixed
        self.log = print

    # ---- building ----------------------------------------------------------------------------------------------
    def build_net(self, name, cfg, where):
        if not cfg:
            raise ConfigError(f"{where} is missing: add a block with name: RRDBNet (or a discriminator)")
        self.nets[name] = self.build_arch(cfg, where)
        return self.nets[name]

    def build_criterion(self, cfg, where):
        return self.build_loss(cfg, where) if cfg else None

    @classmethod
    def make_ema(cls, net, decay):
        """An EMA shadow of ``net`` whose framework steps are this backend's primitives."""
        return ModelEMA(net, decay, ops=cls)

    def setup_ema(self):
        """The EMA shadow of the generator (``ema_decay`` > 0), a copy of it as it is now."""
        if self.ema_decay > 0 and "generator" in self.nets:
            self.ema = self.make_ema(self.net("generator"), self.ema_decay)

    def setup_optimizers(self, optimizer_cfg, lr_cfg):
        """PaddleGAN's schema: one ``{name, net_names, ...}`` block (called ``optim``) or ``{optimG: {...}, ...}``.

        Every optimizer follows ``lr_cfg``; FreezeD's parameters are left out; every net needs an optimizer.
        """
        if not optimizer_cfg:
            raise ConfigError("optimizer is missing: add e.g. {name: Adam, net_names: [generator], beta1: 0.9, "
                              "beta2: 0.99}")
        single = "name" in optimizer_cfg
        blocks = {"optim": optimizer_cfg} if single else dict(optimizer_cfg)
        for opt_name, block in blocks.items():
            where = "optimizer" if single else f"optimizer.{opt_name}"
            if not isinstance(block, dict):
                raise ConfigError(f"{where}: expected a mapping with name and net_names, got {block!r}")
            net_names = list(block.get("net_names") or ["generator"])
            missing = [n for n in net_names if n not in self.nets]
            if missing:
                raise ConfigError(f"{where}.net_names: {', '.join(missing)} not in this model's nets "
                                  f"({', '.join(self.nets)})")
            params = [p for n in net_names for p in self.net(n).parameters() if id(p) not in self.frozen_ids]
            self.optimizers[opt_name] = self.new_optimizer(opt_name, block, params, lr_cfg, where)
            self.optimizer_nets[opt_name] = net_names
            self.optimizer_blocks[opt_name] = dict(block)
        for net_name in self.nets:
            if not any(net_name in names for names in self.optimizer_nets.values()):
                raise ConfigError(f"optimizer: no optimizer lists net {net_name!r} in net_names")
        return self.optimizers

    def optimizer_name_for(self, net_name):
        """The name (``optim``, ``optimG`` ...) of the optimizer whose net_names include ``net_name``."""
        for opt_name, names in self.optimizer_nets.items():
            if net_name in names:
                return opt_name
        raise ConfigError(f"optimizer: no optimizer has {net_name!r} in its net_names "
                          f"(optimizers: {', '.join(self.optimizer_nets) or 'none'})")

    def optimizer_for(self, net_name):
        return self.optimizers[self.optimizer_name_for(net_name)]

    # ---- one training step -------------------------------------------------------------------------------------
    def set_micro_step(self, step, total):
        self.micro_step, self.accumulate_steps = int(step), int(total)
        if self.micro_step == 0:
            self.steps_in_iteration = 0

    @property
    def first_micro(self):
        return self.micro_step == 0

    @property
    def last_micro(self):
        return self.micro_step == self.accumulate_steps - 1

    def zero_grad(self, net_name):
        if self.first_micro:
            self.clear_grad(self.optimizer_for(net_name))

    def step(self, net_name):
        """Step the net's optimizer on the last micro-batch of the iteration; -> whether it stepped."""
        if not self.last_micro:
            return False
        self.optimizer_step(self.optimizer_for(net_name))
        self.steps_in_iteration += 1
        return True

    def end_iteration(self):
        """After the last micro-batch of an iteration: the EMA update (BasicSR's model_ema)."""
        if self.ema is not None:
            self.ema.update()

    def set_requires_grad(self, nets, flag):
        """Turn gradients of ``nets`` (one net or a list) on or off; frozen parameters (FreezeD) stay off."""
        for net in nets if isinstance(nets, (list, tuple)) else [nets]:
            for p in net.parameters():
                self.set_trainable(p, flag and id(p) not in self.frozen_ids)

    def freeze_parameters(self, net_name, names):
        """FreezeD: the named parameters of ``net_name`` take no gradient and no optimizer (before
        setup_optimizers)."""
        params = dict(self.net(net_name).named_parameters())
        for name in names:
            self.set_trainable(params[name], False)
            self.frozen_ids.add(id(params[name]))

    def setup_input(self, batch):
        """A collated batch (numpy arrays or tensors: ``lq``, ``gt``, optional ``gt_usm``, paths) -> tensors."""
        self.visual_items = OrderedDict()
        for key in INPUT_KEYS:
            value = batch.get(key)
            setattr(self, key, None if value is None else self.to_tensor(value))
            if value is not None and key != "gt_usm":
                self.visual_items[key] = getattr(self, key)
        self.image_paths = list(batch.get("lq_path", batch.get("gt_path", [])))

    def train_iter(self, optimizers=None):
        raise NotImplementedError

    # ---- evaluation --------------------------------------------------------------------------------------------
    def eval_generator(self):
        """The network validation and weight files use: the EMA shadow when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.net("generator")

    def test_iter(self, metrics=None):
        """Run the (EMA) generator on ``lq``; update ``metrics`` with uint8 HWC RGB images, one pair per item."""
        net = self.eval_generator()
        was_training = net.training
        net.eval()
        with self.no_grad():
            self.output = net(self.lq)
        if was_training:
            net.train()
        self.visual_items["output"] = self.output
        output = check_finite_output(self.to_numpy(self.output), self.weights_source)
        if metrics and self.gt is not None:
            preds = [chw_to_uint8(o, self.min_max) for o in output]
            gts = [chw_to_uint8(g, self.min_max) for g in self.to_numpy(self.gt)]
            for metric in metrics.values():
                metric.update(preds, gts)

    def get_current_losses(self):
        return OrderedDict((k, float(self.to_numpy(v)) if hasattr(v, "shape") else float(v))
                           for k, v in self.losses.items())

    def get_current_visuals(self):
        return self.visual_items

    def get_image_paths(self):
        return self.image_paths

    # ---- weights and checkpoints -------------------------------------------------------------------------------
    def nets_state(self, for_weights=False):
        """``{net_name: state_dict}``; the EMA shadow replaces the generator when ``for_weights``."""
        state = OrderedDict((name, self.net(name).state_dict()) for name in self.nets)
        if for_weights and self.ema is not None:
            state["generator"] = self.ema.state_dict()
        return state

    def training_state(self):
        """Nets, optimizers, the schedule and the EMA (each backend's engine/checkpoint.py shows the layout)."""
        state = self.nets_state()
        for opt_name in self.optimizers:
            state[opt_name] = self.optimizer_state(opt_name)
        schedule = self.scheduler_state()
        if schedule is not None:
            state["lr_scheduler"] = schedule
        if self.ema is not None:
            state["ema"] = {"generator": self.ema.state_dict()}
        return state

    def load_training_state(self, state, source):
        """--resume: every net and optimizer of this model, the schedule and the EMA from ``state``."""
        for name in self.nets:
            if name not in state:
                raise ConfigError(f"{source}: no weights for net {name!r} (it has {few(list(map(str, state)), 8)}); "
                                  f"was it written by another model type?")
            self.load_net_state(name, state[name], strict=True, source=f"{source} [{name}]")
        for opt_name in self.optimizers:
            if opt_name not in state:
                raise ConfigError(f"{source}: no state for optimizer {opt_name!r}; is it a weight file? "
                                  f"Use --load for weights, --resume for iter_N_checkpoint files")
            self.load_optimizer_state(opt_name, state[opt_name], source)
        if "lr_scheduler" in state:
            self.load_scheduler_state(state["lr_scheduler"])
        self.load_ema_state(state)

    def load_ema_state(self, state):
        """The EMA shadow from a checkpoint's ``ema`` entry (else it stays the copy of the loaded generator)."""
        ema = state.get("ema")
        ema_state = ema.get("generator") if isinstance(ema, dict) else None
        if self.ema is not None and ema_state is not None:
            self.ema.set_state_dict(ema_state)

    def load_weights(self, state, source):
        """--load: every net found in ``{net_name: state_dict}`` (PaddleGAN's Trainer.load), or a bare generator
        state dict (BasicSR's params_ema / params, a .safetensors, a chaiNNer file); an iter_N_checkpoint's EMA."""
        if not any(name in state for name in self.nets):
            state = {"generator": pick_net_state(state, "generator", source=source)}
        loaded = []
        for name in self.nets:
            if name in state:
                self.load_net_state(name, state[name], strict=True, source=f"{source} [{name}]")
                loaded.append(name)
        if "generator" not in loaded:
            raise ConfigError(f"{source}: no generator weights found (it has {few(list(map(str, state)), 6)})")
        self.weights_source = source
        self.load_ema_state(state)
        return loaded

    def load_pretrained(self, net_name, path, strict=True, param_key=None, where="model"):
        """pretrain_network_g / _d (BasicSR's load_network): params_ema / params / {net_name: ...} / a bare state
        dict, or ``param_key``; ``strict`` false loads only the tensors whose name and shape fit."""
        state = self.load_file(path, f"{where} pretrained weights")
        state = pick_net_state(state, net_name, param_key, source=path)
        self.load_net_state(net_name, state, strict, source=f"{path} [{net_name}]",
                            fix=f"or set model.strict_load_{net_name[0]}: false to load only the tensors that fit")

    def load_net_state(self, net_name, state, strict=True, source="state dict", fix=None):
        """Set net ``net_name`` from ``state`` (``module.`` / ``_orig_mod.`` prefixes dropped); a strict mismatch of
        names or shapes -> one ConfigError counting and naming them. The EMA shadow follows the generator."""
        state = OrderedDict((strip_prefixes(k), v) for k, v in state.items())
        net = self.net(net_name)
        own = net.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        if strict and (missing or unexpected or wrong):
            shapes = [f"{k} {tuple(state[k].shape)} in the file vs {tuple(own[k].shape)}" for k in wrong]
            parts = [f"{len(missing)} missing ({few(missing)})" if missing else "",
                     f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
                     f"{len(wrong)} shape mismatch ({few(shapes)})" if wrong else ""]
            hint = (f"its tensors have another naming: convert it with python tools/convert_weights.py --to "
                    f"{self.framework}" if missing and len(missing) == len(unexpected) else
                    f"check the model.{net_name} options (nf / nb / scale)")
            raise ConfigError(f"{source}: weights do not fit the {net_name} {type(net).__name__} "
                              f"({'; '.join(p for p in parts if p)}); {hint}{' ' + fix if fix else ''}")
        self.load_state(net, OrderedDict((k, v) for k, v in state.items() if k in own and k not in wrong))
        if net_name == "generator" and self.ema is not None:
            self.ema.copy_from_net()

