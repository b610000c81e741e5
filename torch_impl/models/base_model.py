"""BaseModel: nets, optimizers, schedulers, EMA, inputs, micro-batch stepping, checkpoint state (PaddleGAN's shape).

The trainer drives a model like PaddleGAN's: ``setup_input(batch)`` then ``train_iter(optimizers)`` once per
micro-batch (``set_micro_step(k, K)`` before each; gradients accumulate over K, optimizers step on the last),
then ``end_iteration()`` (AMP scaler update, EMA update). Subclasses write ``train_iter`` with ``zero_grad``,
``backward`` and ``step``, which do the right thing for the micro-step.
"""
import contextlib
from collections import OrderedDict

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from common_data.errors import ConfigError, UserError, first_line
from common_data.metrics.output_checks import check_finite_output
from common_data.data.visual import chw_to_uint8
from common_data.weights.naming import pick_net_state

from ..archs import build_arch
from ..engine.checkpoint import load_checkpoint
from ..engine.lr_scheduler import build_lr_scheduler
from ..engine.optimizer import build_optimizer
from ..losses import build_loss
from .ema import ModelEMA

STRIPPED_PREFIXES = ('module.', '_orig_mod.')


class BaseModel:
    """Holds ``nets`` / ``optimizers`` / ``lr_schedulers`` (OrderedDicts by name), ``losses`` and ``visual_items``."""

    # criteria attributes moved to the device with the nets
    CRITERIA = ('pixel_criterion', 'perceptual_criterion', 'gan_criterion', 'edge_criterion')

    def __init__(self, ema_decay=0.0):
        self.nets = OrderedDict()
        self.optimizers = OrderedDict()
        self.lr_schedulers = OrderedDict()
        self.optimizer_of = {}  # net name -> optimizer name
        self.losses = OrderedDict()
        self.visual_items = OrderedDict()
        self.ema_decay = float(ema_decay or 0.0)
        self.ema = None
        self.device = torch.device('cpu')
        self.amp_dtype = None
        self.scaler = None
        self.channels_last = False
        self.current_iter = 0
        self.micro_step, self.accumulate_steps = 0, 1
        self.steps_in_iteration = 0  # optimizer steps taken in the current iteration
        self.min_max = (0.0, 1.0)
        self.image_paths = []
        self.weights_source = None  # the file --load read the generator from (named by evaluation errors)
        self.frozen_ids = set()  # ids of parameters FreezeD keeps fixed
        self.log = print

    # ----------------------------------------------------------------- building
    def build_net(self, name, cfg, where):
        if not cfg:
            raise ConfigError(f"{where} is missing: add a block with name: RRDBNet (or a discriminator)")
        self.nets[name] = build_arch(cfg, where)
        return self.nets[name]

    @staticmethod
    def build_criterion(cfg, where):
        return build_loss(cfg, where) if cfg else None

    def setup(self, device='cpu', amp_dtype=None, channels_last=False):
        """Move nets / criteria to ``device`` (nets and inputs ``channels_last`` if asked), create the EMA shadow,
        autocast in ``amp_dtype`` (None: float32; float16 adds a GradScaler). The engine wraps nets in DDP."""
        self.device = torch.device(device)
        self.channels_last = bool(channels_last)
        memory_format = torch.channels_last if channels_last else torch.preserve_format
        for name, net in self.nets.items():
            self.nets[name] = net.to(self.device, memory_format=memory_format)
        for attr in self.CRITERIA:
            crit = getattr(self, attr, None)
            if crit is not None:
                setattr(self, attr, crit.to(self.device))
        if self.ema_decay > 0 and 'generator' in self.nets and self.ema is None:
            self.ema = ModelEMA(self.nets['generator'], self.ema_decay)
        self.amp_dtype = amp_dtype
        if amp_dtype == torch.float16:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def net(self, name):
        """The bare module of a net (unwrapped from DistributedDataParallel)."""
        net = self.nets[name]
        return net.module if isinstance(net, DistributedDataParallel) else net

    def setup_optimizers(self, optimizer_cfg, lr_cfg):
        """PaddleGAN's schema: one ``{name, net_names, ...}`` block (called ``optim``) or ``{optimG: {...}, ...}``.

        Every optimizer gets its own scheduler following ``lr_cfg``.
        """
        if not optimizer_cfg:
            raise ConfigError("optimizer is missing: add e.g. {name: Adam, net_names: [generator], beta1: 0.9, "
                              "beta2: 0.99}")
        blocks = {'optim': optimizer_cfg} if 'name' in optimizer_cfg else dict(optimizer_cfg)
        for opt_name, block in blocks.items():
            where = 'optimizer' if opt_name == 'optim' and 'name' in optimizer_cfg else f'optimizer.{opt_name}'
            if not isinstance(block, dict):
                raise ConfigError(f"{where}: expected a mapping with name: and net_names:, got {block!r}")
            net_names = block.get('net_names') or ['generator']
            params = []
            for net_name in net_names:
                if net_name not in self.nets:
                    raise ConfigError(f"{where}.net_names: no net {net_name!r} in this model; it has "
                                      f"{', '.join(self.nets)}")
                params += [p for p in self.nets[net_name].parameters() if p.requires_grad]
                self.optimizer_of[net_name] = opt_name
            self.optimizers[opt_name] = build_optimizer(block, params, lr_cfg, where)
            self.lr_schedulers[opt_name] = build_lr_scheduler(lr_cfg, self.optimizers[opt_name])
        for net_name in self.nets:
            if net_name not in self.optimizer_of:
                raise ConfigError(f"optimizer: no optimizer lists net {net_name!r} in net_names")
        return self.optimizers

    def step_schedulers(self):
        """After each iteration: every optimizer's scheduler steps once (all follow one schedule)."""
        for sched in self.lr_schedulers.values():
            sched.step()

    @property
    def current_lr(self):
        for opt in self.optimizers.values():
            return opt.param_groups[0]['lr']
        return 0.0

    # ----------------------------------------------------------------- pretrained weights
    def load_pretrained(self, net_name, path, strict=True, param_key=None, where='model'):
        """BasicSR's load_network: unwrap ``param_key`` (default params_ema, params, PaddleGAN's net name)."""
        state = load_checkpoint(path, what=f"{where} pretrained weights")
        state = pick_net_state(state, net_name, param_key, source=path)
        try:
            self.load_net_state(net_name, state, strict, source=path)
        except UserError as e:
            raise UserError(f"{e} ({where}; strict_load_{net_name[0]}: false loads only the tensors that fit)") \
                from None

    def load_net_state(self, net_name, state, strict=True, source='state dict'):
        net = self.net(net_name)
        clean = OrderedDict()
        for k, v in state.items():
            for prefix in STRIPPED_PREFIXES:
                if k.startswith(prefix):
                    k = k[len(prefix):]
            clean[k] = v
        own = net.state_dict()
        if not strict:
            clean = OrderedDict((k, v) for k, v in clean.items() if k in own and own[k].shape == v.shape)
        missing = sorted(set(own) - set(clean))
        unexpected = sorted(set(clean) - set(own))
        if strict and (missing or unexpected):
            hint = ('; it looks like PaddleGAN naming, convert it with python tools/convert_weights.py --to torch'
                    if any('RRDB_trunk' in k or 'trunk_conv' in k for k in unexpected) else '')
            raise UserError(f"{source}: weights do not fit the {net_name} ({type(net).__name__}): missing "
                            f"{missing[:3]}{'...' if len(missing) > 3 else ''}, unexpected {unexpected[:3]}"
                            f"{'...' if len(unexpected) > 3 else ''}{hint}")
        bad = [k for k, v in clean.items() if k in own and own[k].shape != v.shape]
        if bad:
            raise UserError(f"{source}: {net_name} tensor {bad[0]} has shape {tuple(clean[bad[0]].shape)} but the "
                            f"config builds {tuple(own[bad[0]].shape)}; check the {net_name} block (nf / nb / scale)")
        net.load_state_dict(clean, strict=strict)
        if net_name == 'generator' and self.ema is not None:
            self.ema.copy_from_net()

    # ----------------------------------------------------------------- inputs
    def to_tensor(self, array):
        tensor = torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32).to(self.device)
        return tensor.contiguous(memory_format=torch.channels_last) if self.channels_last else tensor

    def setup_input(self, batch):
        """A collated batch of numpy arrays (``lq``, ``gt``, optional ``gt_usm``, paths) -> tensors."""
        self.lq = self.to_tensor(batch['lq'])
        self.visual_items = OrderedDict(lq=self.lq)
        self.gt = self.to_tensor(batch['gt']) if 'gt' in batch else None
        if self.gt is not None:
            self.visual_items['gt'] = self.gt
        self.gt_usm = self.to_tensor(batch['gt_usm']) if 'gt_usm' in batch else None
        self.image_paths = list(batch.get('lq_path', batch.get('gt_path', [])))

    # ----------------------------------------------------------------- micro-step helpers
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

    def optimizer_for(self, net_name):
        return self.optimizers[self.optimizer_of[net_name]]

    def zero_grad(self, net_name):
        if self.first_micro:
            self.optimizer_for(net_name).zero_grad(set_to_none=True)

    def backward(self, loss):
        loss = loss.float() / self.accumulate_steps
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, net_name):
        """Step the net's optimizer on the last micro-batch of the iteration."""
        if not self.last_micro:
            return
        opt = self.optimizer_for(net_name)
        self.steps_in_iteration += 1
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()

    def set_requires_grad(self, net, flag):
        """Turn gradients of ``net`` on or off; frozen parameters (FreezeD) stay off."""
        for p in net.parameters():
            p.requires_grad_(flag and id(p) not in self.frozen_ids)

    def freeze_parameters(self, net_name, names):
        """FreezeD: the named parameters of ``net_name`` take no gradient and no optimizer (call before
        setup_optimizers)."""
        params = dict(self.net(net_name).named_parameters())
        for name in names:
            params[name].requires_grad_(False)
            self.frozen_ids.add(id(params[name]))

    def end_iteration(self):
        """After the last micro-batch: AMP scaler update and EMA update (BasicSR's model_ema)."""
        if self.scaler is not None:
            self.scaler.update()
        if self.ema is not None:
            self.ema.update()

    def train_iter(self, optimizers=None):
        raise NotImplementedError

    # ----------------------------------------------------------------- evaluation
    def eval_generator(self):
        """The generator used for validation and export: the EMA shadow when EMA is on."""
        return self.ema.shadow if self.ema is not None else self.net('generator')

    @torch.no_grad()
    def test_iter(self, metrics=None):
        """Run the (EMA) generator on ``lq``; update ``metrics`` with uint8 HWC RGB images, one pair per item."""
        net = self.eval_generator()
        was_training = net.training
        net.eval()
        self.output = net(self.lq)
        if self.ema is None or net is not self.ema.shadow:  # the shadow always stays in eval mode
            net.train(was_training)
        self.visual_items['output'] = self.output
        output = check_finite_output(self.output.detach().float().cpu().numpy(), self.weights_source)
        if metrics and self.gt is not None:
            for out, gt in zip(output, self.gt.float().cpu().numpy()):
                sr, hr = chw_to_uint8(out, self.min_max), chw_to_uint8(gt, self.min_max)
                for metric in metrics.values():
                    metric.update(sr, hr)

    def get_current_losses(self):
        return OrderedDict((k, float(v.detach()) if torch.is_tensor(v) else float(v)) for k, v in self.losses.items())

    def get_current_visuals(self):
        return self.visual_items

    def get_image_paths(self):
        return self.image_paths

    # ----------------------------------------------------------------- checkpoint state
    def nets_state(self, for_weights=False):
        """``{net_name: state_dict}``; the EMA shadow replaces the generator when ``for_weights``."""
        state = OrderedDict((name, self.net(name).state_dict()) for name in self.nets)
        if for_weights and self.ema is not None:
            state['generator'] = self.ema.state_dict()
        return state

    def training_state(self):
        state = dict(self.nets_state())
        for name, opt in self.optimizers.items():
            state[name] = opt.state_dict()
        if self.lr_schedulers:
            state['lr_scheduler'] = next(iter(self.lr_schedulers.values())).state_dict()
        if self.ema is not None:
            state['ema'] = {'generator': self.ema.state_dict()}
        return state

    def load_training_state(self, state, source='checkpoint'):
        for name in list(self.nets) + list(self.optimizers):
            if name not in state:
                raise UserError(f"{source}: no {name!r} entry; it has {', '.join(map(str, state))} - was it "
                                f"written by a different model type?")
        for name in self.nets:
            self.load_net_state(name, state[name], strict=True, source=source)
        for name, opt in self.optimizers.items():
            try:
                opt.load_state_dict(state[name])
            except ValueError as e:  # another parameter count: net_names or model.freeze_d_layers changed
                raise UserError(f"{source}: the {name} optimizer state does not fit this model's trainable "
                                f"parameters ({first_line(e)}); resume with the net_names and "
                                f"model.freeze_d_layers it was saved with") from None
        if 'lr_scheduler' in state:
            for sched in self.lr_schedulers.values():
                sched.load_state_dict(state['lr_scheduler'])
        if self.ema is not None:
            ema_state = (state.get('ema') or {}).get('generator')
            if ema_state is not None:
                self.ema.set_state_dict(ema_state)
            else:
                self.ema.copy_from_net()

    def load_weights(self, state, source='weights'):
        """``--load``: set every net found in ``{net_name: state_dict}`` (PaddleGAN's Trainer.load), or a bare
        generator state dict (a .safetensors, a flat BasicSR / chaiNNer file)."""
        loaded = []
        for name in self.nets:
            if name in state:
                self.load_net_state(name, state[name], strict=True, source=source)
                loaded.append(name)
        if not loaded:
            if 'params_ema' in state or 'params' in state:  # a BasicSR / Real-ESRGAN generator file
                self.load_net_state('generator', state.get('params_ema', state.get('params')), source=source)
                loaded.append('generator')
            elif state and all(hasattr(v, 'shape') for v in state.values()):
                self.load_net_state('generator', state, source=source)
                loaded.append('generator')
            else:
                raise UserError(f"{source}: none of the nets {', '.join(self.nets)} found; it has "
                                f"{', '.join(list(map(str, state))[:8])}")
        self.weights_source = source
        ema_state = (state.get('ema') or {}).get('generator') if isinstance(state.get('ema'), dict) else None
        if self.ema is not None and ema_state is not None:  # an iter_N_checkpoint: validate with its EMA
            self.ema.set_state_dict(ema_state)
        return loaded
