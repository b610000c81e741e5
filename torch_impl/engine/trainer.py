"""Trainer: PaddleGAN's trainer loop on PyTorch, with Real-ESRGAN's --debug / --auto_resume and DDP via torchrun.

Run folder ``output_dir/[debug_]<config_name>-<YYYY-MM-DD-HH-MM>/`` holds config.yaml, log.txt, visual_train/,
visual_test/ and the ``iter_N_weight.pth`` / ``iter_N_checkpoint.pth`` files (layouts in engine/checkpoint.py).
Iteration N (1-based) is one optimizer step over ``accumulate_steps`` micro-batches; the scheduler steps after
it, so iteration N trains with the scheduler's lr at step N - 1 (as PaddleGAN and BasicSR).

``--debug`` (or ``debug: true``; the schedule is common_data.run_plan's): at most 8 iterations, a log line every
step, validation and a snapshot at iteration 4 and at the end, run folder prefixed ``debug_``. ``--auto_resume``:
continue from the newest complete iter_N_checkpoint.pth among this config's run folders (newest folder first),
writing on in that folder; none -> a fresh run (and a log line). ``--resume PATH`` starts a new run folder.
``--amp``: torch.autocast in bfloat16 on CPU (only with the flag) and on GPUs that support it, else float16 with a
GradScaler.

Multi-process: ``torchrun --nproc_per_node 2 tools/main.py -c CFG --backend torch`` wraps the nets in
DistributedDataParallel (gloo on CPU, nccl on GPU); each rank reads its shard of the data; rank 0 alone logs,
validates and saves. Logged losses are averaged over the ranks. Test hook: with the environment variable
``ESRGAN_TWIN_SAVE_RANK_WEIGHTS=1`` every rank writes its final nets to ``run_dir/rank{r}_final.pth``.
"""
import copy
import datetime
import math
import os
import random
import re
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.distributed as dist
import yaml

from common_data.checkpoints import checkpoint_name, newest_checkpoint, parse_checkpoint_name
from common_data.config import parse_min_max, to_plain
from common_data.datasets import IterLoader
from common_data.errors import ConfigError, UserError
from common_data.imageio import write_image
from common_data.logfmt import TimeAverager, log_line, metrics_line
from common_data.optimizer_record import RECORD_KEY, check_same_optimizer, optimizer_record
from common_data.run_guard import install_stop_handlers, lock_run_dir, restore_handlers, signal_label
from common_data.run_log import RunLog
from common_data.run_plan import RunPlan
from common_data.visual import chw_to_uint8, make_strip
from common_data.visualdl_log import open_visualdl

from .. import metrics as backend_metrics  # noqa: F401  (registers LPIPSMetric in common_data's METRICS)
from ..models import build_model
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .data import build_dataloader

BACKEND = 'torch'
RANK_WEIGHTS_ENV = 'ESRGAN_TWIN_SAVE_RANK_WEIGHTS'
_STAMP = r'\d{4}-\d{2}-\d{2}-\d{2}-\d{2}'


class Options:
    """Command-line options the trainer reads (tools/main.py's argparse namespace, or keywords in tests)."""
    FIELDS = dict(resume=None, load=None, evaluate_only=False, seed=None, amp=False, debug=False, auto_resume=False)

    def __init__(self, args=None, **kwargs):
        for key, default in self.FIELDS.items():
            setattr(self, key, kwargs.get(key, getattr(args, key, default) if args is not None else default))


# ----------------------------------------------------------------------------- process setup
def init_distributed():
    """(rank, world_size, local_rank) from torchrun's environment; initialises the process group once."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if not dist.is_initialized():
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        if backend == 'nccl':
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method='env://')
    return dist.get_rank(), dist.get_world_size(), local_rank


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {'python': random.getstate(), 'numpy': [kind, keys.tolist(), pos, has_gauss, cached],
            'torch': torch.get_rng_state()}


def set_rng_state(state):
    if not state:
        return
    if 'python' in state:
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
    if 'numpy' in state:
        kind, keys, pos, has_gauss, cached = state['numpy']
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if 'torch' in state:
        torch.set_rng_state(state['torch'])


def run_folder_name(config_name, debug=False):
    stamp = datetime.datetime.now().strftime('%Y-%m-%d-%H-%M')
    return f"{'debug_' if debug else ''}{config_name}-{stamp}"


def run_folders(output_dir, config_name, debug=False):
    """Run folders of this config under ``output_dir``, newest first."""
    prefix = ('debug_' if debug else '') + config_name
    pattern = re.compile(rf'^{re.escape(prefix)}-({_STAMP})(?:-(\d+))?$')
    found = []
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            m = pattern.match(name)
            if m and os.path.isdir(os.path.join(output_dir, name)):
                found.append(((m.group(1), int(m.group(2) or 1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def make_run_dir(output_dir, config_name, debug=False):
    """Create ``output_dir/[debug_]<config_name>-<stamp>`` (``-2``, ``-3``... if that minute is taken)."""
    base = os.path.join(output_dir, run_folder_name(config_name, debug))
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    os.makedirs(path)
    return path


def find_auto_resume(output_dir, config_name, debug=False):
    """(newest complete iter_N_checkpoint.pth, its run folder) of the newest run folder of this config that has
    one, else (None, None)."""
    for folder in run_folders(output_dir, config_name, debug):
        path = newest_checkpoint(folder, BACKEND)
        if path:
            return path, folder
    return None, None


class Trainer:
    """Builds model, data, optimizers; ``train()`` runs to total_iters; ``validate()`` returns metrics."""

    def __init__(self, cfg, args=None):
        self.args = args if isinstance(args, Options) else Options(args)
        cfg = copy.deepcopy(cfg)
        self.plan = RunPlan.from_config(cfg, self.args.debug, bool(self.args.evaluate_only))
        self.args.debug = self.plan.debug
        self.cfg = cfg
        self.rank, self.world_size, self.local_rank = init_distributed()
        self.distributed = self.world_size > 1
        self.is_main = self.rank == 0
        self.device = torch.device(f'cuda:{self.local_rank}' if torch.cuda.is_available() else 'cpu')
        self.evaluate_only = bool(self.args.evaluate_only)
        self.run_log = RunLog(enabled=self.is_main)
        self.vdl = None

        resume_path = self.args.resume
        output_dir = cfg.get('output_dir') or 'output_dir'
        config_name = cfg.get('config_name', 'run')
        self.run_dir = None
        if self.args.auto_resume and not resume_path and not self.evaluate_only:
            resume_path, self.run_dir = find_auto_resume(output_dir, config_name, self.args.debug)
            self.log(f"auto_resume: continuing {resume_path} in {self.run_dir}" if resume_path else
                     f"auto_resume: no iter_N_checkpoint.pth in run folders of {config_name} under "
                     f"{output_dir}; starting fresh")
        self.resume_state = load_checkpoint(resume_path, 'resume checkpoint') if resume_path else None
        self.resume_path = resume_path

        seed = self.args.seed if self.args.seed is not None else cfg.get('seed')
        if seed is None and self.resume_state is not None:
            seed = self.resume_state.get('seed')
        if seed is None:
            seed = int.from_bytes(os.urandom(4), 'little') >> 1
        self.seed = int(self._broadcast(seed))
        seed_everything(self.seed)

        self.min_max = parse_min_max(cfg.get('min_max', (0.0, 1.0)))
        self.accumulate_steps = self.plan.accumulate_steps
        self.validate_cfg = cfg.get('validate') or None

        self.model = build_model(cfg.model)
        self.model.log = self.log
        self.model.min_max = self.min_max
        self.model.setup(self.device, self.distributed, self._amp_dtype(),
                         bool(cfg.get('find_unused_parameters', False)))

        self.train_loader = None
        self.total_iters = self.plan.total_iters
        if not self.evaluate_only:
            self.train_loader = build_dataloader(cfg.dataset.train, True, self.distributed, self.seed)
            self.total_iters = self.plan.set_epoch_length(self.train_loader.batches_per_epoch)
            lr_cfg = dict(cfg.get('lr_scheduler') or {})
            if 'iters_per_epoch' in lr_cfg:
                lr_cfg['iters_per_epoch'] = self.plan.steps_per_epoch(self.train_loader.batches_per_epoch)
            self.model.setup_optimizers(cfg.get('optimizer'), lr_cfg)
        self.start_iter = 1
        if self.args.load:
            self.load(self.args.load)
        if self.resume_state is not None:
            self.resume(self.resume_state, resume_path)
        # the run folder is made only once the config, the model and the weights are known to be good
        self._open_run_dir(output_dir, config_name)
        if cfg.get('enable_visualdl') and self.is_main:
            self.vdl = open_visualdl(self.run_dir)

        self.current_iter = self.start_iter
        self.last_finished = self.start_iter - 1
        self.metrics = None
        self.last_metrics = None
        self._test_loader = None
        self._in_update = False
        self._interrupt_pending = False

    # ------------------------------------------------------------------ helpers
    def _broadcast(self, value):
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _open_run_dir(self, output_dir, config_name):
        if self.run_dir is None:
            self.run_dir = self._broadcast(make_run_dir(output_dir, config_name, self.args.debug) if self.is_main
                                           else None)
        self.run_lock = lock_run_dir(self.run_dir) if self.is_main else None
        self.run_log.open(self.run_dir)
        if self.is_main:
            with open(os.path.join(self.run_dir, 'config.yaml'), 'w', encoding='utf-8') as f:
                yaml.safe_dump(to_plain(self.cfg), f, sort_keys=False)
        self.log(f"run folder: {self.run_dir} (backend {BACKEND}, device {self.device}, {self.world_size} "
                 f"process(es), seed {self.seed})")

    def log(self, message):
        """Rank 0: a stamped line on stdout and in run_dir/log.txt (common_data.run_log)."""
        self.run_log.info(message)

    def _amp_dtype(self):
        wanted = bool(self.args.amp or self.cfg.get('amp'))
        if not wanted:
            return None
        if self.device.type == 'cpu':
            if not self.args.amp:
                self.log("amp: true in the config is ignored on CPU; pass --amp for bfloat16 autocast")
                return None
            return torch.bfloat16
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    @property
    def current_lr(self):
        for opt in self.model.optimizers.values():
            return opt.param_groups[0]['lr']
        return 0.0

    # ------------------------------------------------------------------ loading
    def load(self, path):
        """``--load``: net weights from an iter_N_weight / iter_N_checkpoint / BasicSR file."""
        state = load_checkpoint(path, 'weights (--load)')
        loaded = self.model.load_weights(state, source=path)
        self.log(f"loaded weights of {', '.join(loaded)} from {path}")
        parsed = parse_checkpoint_name(path)
        self.loaded_iter = state['epoch'] if isinstance(state.get('epoch'), int) else parsed[0] if parsed else None

    def resume(self, state, path):
        """Restore nets, optimizers, scheduler, EMA, rng; training continues at iteration N + 1."""
        if not isinstance(state.get('epoch'), int):
            raise UserError(f"{path} has no 'epoch' (iteration) entry: it is a weight file; use --load for it, "
                            f"or pass an iter_N_checkpoint.pth to --resume")
        if not self.evaluate_only:
            check_same_optimizer(state, self.cfg.get('optimizer'), path)
            self.model.load_training_state(state, source=path)
        else:
            self.model.load_weights(state, source=path)
        set_rng_state(state.get('rng'))
        self.start_iter = state['epoch'] + 1
        self.log(f"resumed from {path}: continuing at iteration {self.start_iter}")

    # ------------------------------------------------------------------ training
    def _on_sigint(self, signum, frame):
        self.log(f"{signal_label(signum)}: stopping after this iteration's optimizer step")
        if self._in_update and not self._interrupt_pending:
            self._interrupt_pending = True  # finish the optimizer step of this iteration, then stop
            return
        raise KeyboardInterrupt

    def _reduce_losses(self, losses):
        if not self.distributed or not losses:
            return losses
        t = torch.tensor(list(losses.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        t /= self.world_size
        return OrderedDict(zip(losses, t.tolist()))

    def _train_one(self, loader, it, reader, batch):
        model, k_steps = self.model, self.accumulate_steps
        model.current_iter = it
        sums = OrderedDict()
        for k in range(k_steps):
            t0 = time.time()
            data = next(loader)
            reader.record(time.time() - t0)
            self._in_update = True
            model.set_micro_step(k, k_steps)
            model.setup_input(data)
            model.train_iter(model.optimizers)
            for name, v in model.get_current_losses().items():
                sums[name] = sums.get(name, 0.0) + v / k_steps
        model.end_iteration()
        for sched in model.lr_schedulers.values():
            sched.step()
        self.last_finished = it
        self._in_update = False
        if self._interrupt_pending:
            raise KeyboardInterrupt
        losses = self._reduce_losses(sums)
        bad = [(n, v) for n, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise UserError(f"iteration {it}: loss {bad[0][0]} is {bad[0][1]} (not finite); lower "
                            f"lr_scheduler.learning_rate or the loss weights, or check the data; checkpoints "
                            f"saved so far are untouched")
        batch.record(time.time() - self._iter_start, num_samples=len(model.lq) * k_steps)
        return losses

    def train(self):
        """Train from ``start_iter`` to ``total_iters``; returns the per-iteration loss dicts."""
        if self.train_loader is None:
            raise UserError("train() needs a trainer built without evaluate_only")
        loader = IterLoader(self.train_loader, start_batch=(self.start_iter - 1) * self.accumulate_steps)
        reader, batch = TimeAverager(), TimeAverager()
        history = []
        old_handler = install_stop_handlers(self._on_sigint)
        self.log(f"training iterations {self.start_iter}..{self.total_iters} ({self.train_loader.batches_per_epoch}"
                 f" batches per epoch, accumulate_steps {self.accumulate_steps})")
        try:
            for it in range(self.start_iter, self.total_iters + 1):
                self.current_iter = it
                self._iter_start = time.time()
                lr = self.current_lr
                losses = self._train_one(loader, it, reader, batch)
                history.append(losses)
                self.epoch = loader.epoch
                self.after_iteration(it, lr, losses, reader, batch)
        except KeyboardInterrupt:
            self._save_interrupted()
            raise
        except Exception:
            if not self._interrupt_pending:
                raise
            # Ctrl-C also stops the loader workers; a deferred interrupt may surface as their error
            self._save_interrupted()
            raise KeyboardInterrupt from None
        finally:
            self._in_update = False
            restore_handlers(old_handler)
        if not history:
            self.log(f"nothing to train: iteration {self.start_iter - 1} of {self.total_iters} already done")
        if os.environ.get(RANK_WEIGHTS_ENV) == '1':
            torch.save(self.model.nets_state(), os.path.join(self.run_dir, f'rank{self.rank}_final.pth'))
        self.log(f"training finished at iteration {self.total_iters}; weights in {self.run_dir}")
        return history

    def after_iteration(self, it, lr, losses, reader, batch):
        if it % self.plan.log_interval == 0:
            self.log(log_line(it, self.total_iters, lr, losses, batch.average(), reader.average(), batch.ips()))
            reader.reset()
            batch.reset()
            if self.vdl is not None:
                for name, v in losses.items():
                    self.vdl.add_scalar(name, v, step=it)
                self.vdl.add_scalar('lr', lr, step=it)
        if self.plan.visual_interval and it % self.plan.visual_interval == 0 and self.is_main:
            self.make_strip(path=os.path.join(self.run_dir, 'visual_train', f'iter_{it}.png'))
        if self.plan.validate_due(it):
            self.validate(it)
        if self.plan.snapshot_due(it):
            self.save(it)

    def make_strip(self, index=0, path=None):
        """LQ / bicubic / SR / GT strip of batch item ``index`` (uint8 HWC RGB), written to ``path`` if given."""
        items = self.model.get_current_visuals()
        if 'output' not in items:
            return None
        lq = chw_to_uint8(items['lq'][index].detach().float().cpu().numpy(), self.min_max)
        sr = chw_to_uint8(items['output'][index].detach().float().cpu().numpy(), self.min_max)
        gt = items.get('gt')
        gt = chw_to_uint8(gt[index].detach().float().cpu().numpy(), self.min_max) if gt is not None else None
        strip = make_strip(lq, sr, gt)
        if path:
            write_image(path, strip)
        return strip

    # ------------------------------------------------------------------ saving
    def save(self, it):
        """iter_N_weight.pth and iter_N_checkpoint.pth (rank 0 only), each written atomically."""
        if not self.is_main:
            return
        save_weights(os.path.join(self.run_dir, checkpoint_name(it, 'weight', BACKEND)),
                     self.model.nets_state(for_weights=True))
        state = self.model.training_state()
        state.update(epoch=it, seed=self.seed, rng=rng_state(),
                     **{RECORD_KEY: optimizer_record(self.cfg.get('optimizer'))})
        save_checkpoint(os.path.join(self.run_dir, checkpoint_name(it, 'checkpoint', BACKEND)), state)

    def _save_interrupted(self):
        untouched = not self._in_update or self.model.steps_in_iteration == 0  # no half-done iteration in nets
        if self.last_finished >= self.start_iter and untouched:
            self.save(self.last_finished)
            self.log(f"interrupted: saved {checkpoint_name(self.last_finished, 'checkpoint', BACKEND)} in "
                     f"{self.run_dir}; continue with --resume")
        elif not untouched:
            self.log(f"interrupted inside iteration {self.last_finished + 1} after an optimizer step: not saving a "
                     f"half-updated state; resume from the last iter_N_checkpoint")
        else:
            self.log("interrupted: no finished iteration to save")

    # ------------------------------------------------------------------ validation
    def validate(self, it=None):
        """Run the (EMA) generator over dataset.test; logs and returns ``{metric: value}`` (rank 0)."""
        it = self.current_iter if it is None else it
        metrics = None
        if self.is_main:
            metrics = self._validate(it)
        if self.distributed:
            dist.barrier()
        self.last_metrics = metrics
        return metrics

    def _validate(self, it):
        test_cfg = (self.cfg.get('dataset') or {}).get('test')
        if not test_cfg:
            raise ConfigError("dataset.test is missing: validation needs a test set (or remove validate:)")
        from common_data.metrics import build_metrics
        if self._test_loader is None:
            self._test_loader = build_dataloader(test_cfg, is_train=False, distributed=False, seed=self.seed)
        vcfg = self.validate_cfg or {}
        if self.metrics is None:
            self.metrics = build_metrics(vcfg.get('metrics') or {}) if vcfg.get('metrics') else {}
        for metric in self.metrics.values():
            metric.reset()
        save_img = bool(vcfg.get('save_img', False))
        for batch in self._test_loader:
            self.model.setup_input(batch)
            self.model.test_iter(metrics=self.metrics)
            if save_img or self.vdl is not None:
                for j, path in enumerate(self.model.get_image_paths() or ['image']):
                    name = os.path.splitext(os.path.basename(path))[0]
                    out = os.path.join(self.run_dir, 'visual_test', f'iter_{it}_{name}.png') if save_img else None
                    strip = self.make_strip(j, out)
                    if self.vdl is not None and strip is not None:
                        self.vdl.add_image(f'visual_test/{name}', strip, step=it)
        values = OrderedDict((name, float(m.accumulate())) for name, m in self.metrics.items())
        if values:
            self.log(metrics_line(it, values))
            if self.vdl is not None:
                for name, v in values.items():
                    self.vdl.add_scalar(f'metric/{name}', v, step=it)
        return values

    def close(self):
        if self.run_lock is not None:
            self.run_lock.release()
        if self.vdl is not None:
            self.vdl.close()
            self.vdl = None
        self.run_log.close()
