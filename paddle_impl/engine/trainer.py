"""Trainer: PaddleGAN's training loop (ppgan/engine/trainer.py) with run folders, EMA, resume and clean stops.

One iteration = one optimizer step over ``accumulate_steps`` micro-batches. Order inside iteration N: train step,
log (every ``log_config.interval``), training strip (every ``log_config.visiual_interval``), lr scheduler step,
validation (every ``validate.interval`` and at the last iteration), ``iter_N_weight`` + ``iter_N_checkpoint``
(every ``snapshot_config.interval`` and at the last iteration); the intervals and --debug are common_data.run_plan's.

Data order and augmentation are a function of (seed, epoch, rank, position) (engine/data.py), and the seed is
stored in the checkpoint, so a resumed run sees exactly the batches of an uninterrupted one.

Multi-process: ``python -m paddle.distributed.launch --nproc_per_node 2 tools/main.py -c CFG`` wraps the nets in
paddle.DataParallel (gloo on the CPU build of paddle, NCCL on GPUs); each rank reads its shard of the data; rank 0
alone logs, validates and saves. Logged losses are averaged over the ranks. Test hook: with the environment
variable ``ESRGAN_TWIN_SAVE_RANK_WEIGHTS=1`` every rank writes its final nets to ``run_dir/rank{r}_final.pdparams``.
"""
import datetime
import glob
import math
import os
import random
import re
import time
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import paddle
import yaml

from common_data.checkpoints import checkpoint_name, newest_checkpoint, parse_checkpoint_name
from common_data.config import parse_min_max, to_plain
from common_data.datasets import IterLoader
from common_data.errors import ConfigError, UserError
from common_data.imageio import write_image
from common_data.logfmt import TimeAverager, log_line, metrics_line
from common_data.metrics import build_metrics
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

BACKEND = "paddle"
RANK_WEIGHTS_ENV = "ESRGAN_TWIN_SAVE_RANK_WEIGHTS"
RUN_STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}"  # make_run_dir's %Y-%m-%d-%H-%M


def init_distributed():
    """(rank, world_size) from paddle.distributed.launch's environment; initialises the parallel env once.

    paddle picks the communication backend itself: gloo on the CPU build, NCCL on GPUs.
    """
    env = paddle.distributed.ParallelEnv()
    if env.world_size <= 1:
        return 0, 1
    if not paddle.distributed.is_initialized():
        try:
            paddle.distributed.init_parallel_env()
        except Exception as e:  # noqa: BLE001 - any failure here means the processes cannot talk
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise UserError(f"multi-process training: paddle.distributed.init_parallel_env failed "
                            f"({type(e).__name__}: {first}); run one process with python tools/main.py") from None
    return paddle.distributed.get_rank(), paddle.distributed.get_world_size()


def broadcast(value, world):
    """``value`` of rank 0 on every rank (any picklable object)."""
    if world <= 1:
        return value
    box = [value]
    paddle.distributed.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def plain_nets(model):
    """Temporarily the nets without their DataParallel wrappers (stable state-dict and optimizer-key names)."""
    wrapped = model.nets
    model.nets = OrderedDict((name, getattr(net, "_layers", net)) for name, net in wrapped.items())
    try:
        yield model
    finally:
        model.nets = wrapped


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    paddle.seed(seed)


def rng_state():
    """python and numpy generator states (paddle's generator is only used at initialisation)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}


def set_rng_state(state):
    if not state:
        return
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, np.uint32), int(pos), int(has_gauss), float(cached)))


def _arg(args, name, default=None):
    value = getattr(args, name, None)
    return default if value is None else value


class Trainer:
    """Builds the model, the loaders and the run folder from a loaded config; ``train()`` / ``test()``.

    ``args`` carries the command-line options (resume, load, evaluate_only, seed, amp, debug, auto_resume);
    any object with those attributes (or none of them) works.
    """

    def __init__(self, cfg, args=None):
        self.cfg = cfg
        self.args = args
        self.evaluate_only = bool(_arg(args, "evaluate_only", False))
        self.plan = RunPlan.from_config(cfg, _arg(args, "debug", False), self.evaluate_only)
        self.debug, self.total_iters, self.accumulate_steps = (self.plan.debug, self.plan.total_iters,
                                                               self.plan.accumulate_steps)
        val_cfg = cfg.get("validate") or {}
        self.save_img = bool(val_cfg.get("save_img", False))
        self.min_max = parse_min_max(cfg.get("min_max") or (0.0, 1.0))
        self.rank, self.nranks = init_distributed()
        self.run_log = RunLog(enabled=self.rank == 0)
        if _arg(args, "amp", False) or cfg.get("amp", False):
            self.amp_note = "amp requested: the paddle backend trains in float32 (eager autocast is a no-op on CPU)"
        else:
            self.amp_note = None

        resume = _arg(args, "resume")
        self.run_dir = None
        if _arg(args, "auto_resume", False) and not resume and not self.evaluate_only:
            resume, self.run_dir = broadcast(self.find_auto_resume() if self.rank == 0 else None, self.nranks)
        resume_state = self.read_resume_state(resume) if resume else None
        seed = _arg(args, "seed", cfg.get("seed"))
        if seed is None and resume_state is not None:
            seed = resume_state.get("seed")
        self.seed = int(broadcast(int(seed) if seed is not None else int.from_bytes(os.urandom(4), "little") >> 1,
                                  self.nranks))

        seed_everything(self.seed)
        self.model = build_model(cfg.model)
        self.model.min_max = self.min_max
        self.loader = None
        if not self.evaluate_only:
            if "train" not in (cfg.get("dataset") or {}):
                raise ConfigError("dataset.train is missing")
            # built before the scheduler: with epochs, its length sets total_iters
            self.loader = build_dataloader(cfg.dataset.train, is_train=True, distributed=self.nranks > 1,
                                           seed=self.seed)
            self.total_iters = self.plan.set_epoch_length(self.loader.batches_per_epoch)
            self.model.setup_lr_schedulers(cfg.get("lr_scheduler"))
            self.model.setup_optimizers(self.model.lr_scheduler, cfg.get("optimizer"))
        self.metrics = build_metrics(val_cfg.get("metrics")) if val_cfg else {}
        self.start_iter = 1
        self.current_iter = 0
        self.test_loader = None
        self.stop_requested = False
        notes = [self.amp_note] if self.amp_note else []
        if resume:
            notes.append(self.apply_resume_state(resume_state, resume))
        elif _arg(args, "load"):
            notes.append(self.load(args.load))
        if self.nranks > 1:
            self.wrap_data_parallel()

        # the run folder is made only once the config, the model and the weights are known to be good
        self.run_dir = self.run_dir or broadcast(self.make_run_dir() if self.rank == 0 else None, self.nranks)
        self.run_lock = lock_run_dir(self.run_dir) if self.rank == 0 else None
        self.run_log.open(self.run_dir)
        self.log(f"run folder: {self.run_dir} (backend {BACKEND}, {self.nranks} process(es), seed {self.seed})")
        for note in notes:
            self.log(note)
        self.vdl = open_visualdl(self.run_dir) if cfg.get("enable_visualdl", False) and self.rank == 0 else None

    # ---- setup helpers -----------------------------------------------------------------------------------------
    def wrap_data_parallel(self):
        """Wrap every net in paddle.DataParallel (rank 0's weights are broadcast; gradients all-reduced).

        ``find_unused_parameters`` defaults to true for models with a discriminator: it runs twice (real and
        fake) before one backward and is frozen during the generator's step, which paddle's reducer only
        accepts in that mode (the gradients then equal an explicit all-reduce mean of the ranks' gradients).
        """
        if getattr(self.model, "to_static", False):
            raise ConfigError("model.to_static trains one process only; set -o model.to_static=false for "
                              "multi-process training")
        find_unused = self.cfg.get("find_unused_parameters")
        find_unused = len(self.model.nets) > 1 if find_unused is None else bool(find_unused)
        for name, net in self.model.nets.items():
            self.model.nets[name] = paddle.DataParallel(net, find_unused_parameters=find_unused)
        if self.model.ema is not None:
            self.model.ema.copy_from_net()

    def config_name(self):
        name = self.cfg.get("config_name", "run")
        return f"debug_{name}" if self.debug else name

    def make_run_dir(self):
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M")
        base = os.path.join(self.cfg.get("output_dir") or "output_dir", f"{self.config_name()}-{stamp}")
        run_dir, n = base, 1
        while os.path.exists(run_dir):
            n += 1
            run_dir = f"{base}-{n}"
        os.makedirs(run_dir)
        with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(to_plain(self.cfg), f, sort_keys=False, allow_unicode=True)
        return run_dir

    def find_auto_resume(self):
        """(newest iter_N_checkpoint, its run folder) among this config's run folders, or (None, None)."""
        pattern = os.path.join(self.cfg.get("output_dir") or "output_dir", f"{self.config_name()}-*")
        # only <config_name>-<stamp>[-n]: config "foo" must not continue the runs of a config named "foo-v2"
        own = re.compile(rf"{re.escape(self.config_name())}-{RUN_STAMP}(-\d+)?")
        folders = [f for f in glob.glob(pattern) if own.fullmatch(os.path.basename(f))]
        for folder in sorted(folders, key=os.path.getmtime, reverse=True):
            ckpt = newest_checkpoint(folder, BACKEND)
            if ckpt:
                return ckpt, folder
        return None, None

    def log(self, message):
        """Rank 0: a stamped line on stdout and in run_dir/log.txt (common_data.run_log)."""
        self.run_log.info(message)

    def close(self):
        if self.run_lock is not None:
            self.run_lock.release()
        if self.vdl is not None:
            self.vdl.close()
        self.run_log.close()

    # ---- weights -----------------------------------------------------------------------------------------------
    def load(self, path):
        """--load: net weights only; the iteration shown by validation is taken from an iter_N_weight name."""
        loaded = self.model.load_weights(load_checkpoint(path, "weights"), path)
        parsed = parse_checkpoint_name(path)
        if parsed:
            self.current_iter = parsed[0]
        return f"loaded weights of {', '.join(loaded)} from {path}"

    @staticmethod
    def read_resume_state(path):
        state = load_checkpoint(path, "checkpoint")
        if not isinstance(state.get("epoch"), int):
            raise UserError(f"{path} is not a training checkpoint (no 'epoch' entry); use --load for weight files "
                            f"or pass an iter_N_checkpoint file to --resume")
        return state

    def apply_resume_state(self, state, path):
        check_same_optimizer(state, self.cfg.get("optimizer"), path)
        self.model.load_checkpoint_state(state, path)
        set_rng_state(state.get("rng"))
        self.start_iter = int(state["epoch"]) + 1
        self.current_iter = int(state["epoch"])
        return f"resumed from {path}: continuing at iteration {self.start_iter}"

    def save(self, iteration):
        if self.rank != 0:
            return
        with plain_nets(self.model):
            weights, state = self.model.weights_state(), self.model.checkpoint_state()
        save_weights(os.path.join(self.run_dir, checkpoint_name(iteration, "weight", BACKEND)), weights)
        state.update(epoch=iteration, seed=self.seed, rng=rng_state(),
                     **{RECORD_KEY: optimizer_record(self.cfg.get("optimizer"))})
        save_checkpoint(os.path.join(self.run_dir, checkpoint_name(iteration, "checkpoint", BACKEND)), state)
        self.log(f"saved {checkpoint_name(iteration, 'checkpoint', BACKEND)} in {self.run_dir}")

    # ---- training ----------------------------------------------------------------------------------------------
    def train_loader(self):
        return IterLoader(self.loader, start_batch=(self.start_iter - 1) * self.accumulate_steps)

    def train(self):
        """Run iterations start_iter..total_iters; returns the per-iteration loss dicts (means over micro-batches).

        Ctrl-C or SIGTERM finishes the current iteration, saves its checkpoint and raises KeyboardInterrupt.
        """
        history = []
        if self.start_iter > self.total_iters:
            self.log(f"nothing to do: the checkpoint is at iteration {self.start_iter - 1} of "
                             f"{self.total_iters}")
            return history
        loader = self.train_loader()
        batch_size = (self.cfg.dataset.train.get("batch_size") or 1) * self.accumulate_steps
        reader_cost, batch_cost = TimeAverager(), TimeAverager()
        last_done, last_saved = self.start_iter - 1, None
        previous_handler = install_stop_handlers(self.on_stop_signal)
        try:
            for it in range(self.start_iter, self.total_iters + 1):
                self.current_iter = self.model.current_iter = it
                losses, reader = self.train_step(loader)
                losses = self.reduce_losses(losses)
                self.check_finite(it, losses)
                batch_cost.record(time.time() - self._step_start, batch_size)
                reader_cost.record(reader)
                history.append(losses)
                if it % self.plan.log_interval == 0:
                    self.log_train(it, losses, batch_cost, reader_cost)
                    reader_cost.reset()
                    batch_cost.reset()
                if self.plan.visual_interval and it % self.plan.visual_interval == 0:
                    self.save_train_visual(it)
                self.model.lr_scheduler.step()
                last_done = it
                if self.plan.validate_due(it):
                    self.test()
                if self.plan.snapshot_due(it):
                    self.save(it)
                    last_saved = it
                if self.stop_requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if last_done >= self.start_iter and last_saved != last_done:
                self.save(last_done)
            self.log(f"interrupted after iteration {last_done}; resume with --resume "
                             f"{os.path.join(self.run_dir, checkpoint_name(last_done, 'checkpoint', BACKEND))}")
            raise
        finally:
            restore_handlers(previous_handler)
        if self.nranks > 1:
            paddle.distributed.barrier()  # the others wait while rank 0 validates and saves the last iteration
        if os.environ.get(RANK_WEIGHTS_ENV) == "1":
            with plain_nets(self.model):
                nets = OrderedDict((name, net.state_dict()) for name, net in self.model.nets.items())
            paddle.save(nets, os.path.join(self.run_dir, f"rank{self.rank}_final.pdparams"))
        return history

    def reduce_losses(self, losses):
        """The mean of each loss over the ranks (the same on every rank, so all stop together on a NaN)."""
        if self.nranks <= 1 or not losses:
            return losses
        values = paddle.to_tensor(list(losses.values()), dtype="float32")
        paddle.distributed.all_reduce(values)
        return OrderedDict(zip(losses, (values / self.nranks).numpy().tolist()))

    def train_step(self, loader):
        """One optimizer step over accumulate_steps micro-batches -> (mean losses, seconds spent reading)."""
        self._step_start = time.time()
        reader, sums = 0.0, OrderedDict()
        for k in range(self.accumulate_steps):
            t0 = time.time()
            batch = next(loader)
            reader += time.time() - t0
            self.model.set_micro_step(k, self.accumulate_steps)
            self.model.setup_input(batch)
            self.model.train_iter(self.model.optimizers)
            for name, value in self.model.get_current_losses().items():
                sums[name] = sums.get(name, 0.0) + value
        return OrderedDict((k, v / self.accumulate_steps) for k, v in sums.items()), reader

    @staticmethod
    def check_finite(it, losses):
        for name, value in losses.items():
            if not math.isfinite(value):
                raise UserError(f"iteration {it}: loss {name} is {value}; training diverged - lower "
                                f"lr_scheduler.learning_rate or the loss weights, or check the data")

    @property
    def current_lr(self):
        return float(self.model.lr_scheduler.last_lr)

    def log_train(self, it, losses, batch_cost, reader_cost):
        self.log(log_line(it, self.total_iters, self.current_lr, losses, batch_cost.average(),
                                  reader_cost.average(), batch_cost.ips()))
        if self.vdl is not None:
            for name, value in losses.items():
                self.vdl.add_scalar(name, value, step=it)
            self.vdl.add_scalar("lr", self.current_lr, step=it)

    def strip(self, index=0):
        """LQ | bicubic | SR | GT strip (uint8 HWC RGB) of item ``index`` of the current batch."""
        items = self.model.get_current_visuals()
        lq = chw_to_uint8(items["lq"][index].numpy(), self.min_max)
        sr = chw_to_uint8(items["output"][index].detach().numpy(), self.min_max)
        gt = chw_to_uint8(items["gt"][index].numpy(), self.min_max) if items.get("gt") is not None else None
        return make_strip(lq, sr, gt)

    def save_train_visual(self, it):
        if self.rank == 0:
            write_image(os.path.join(self.run_dir, "visual_train", f"iter_{it}.png"), self.strip())

    # ---- SIGINT / SIGTERM: finish the iteration, then stop ----------------------------------------------------
    def on_stop_signal(self, signum, frame):
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.log(f"{signal_label(signum)}: stopping after this iteration (send it again to stop at once)")

    # ---- validation --------------------------------------------------------------------------------------------
    def test(self):
        """Validate on dataset.test (rank 0 only; other ranks get {}); logs ``Iter: N Metric psnr: ...`` and
        returns {metric: value}."""
        if self.rank != 0:
            return OrderedDict()
        if "test" not in (self.cfg.get("dataset") or {}):
            raise ConfigError("dataset.test is missing: validation needs a test set (or remove validate:)")
        if self.test_loader is None:
            self.test_loader = build_dataloader(self.cfg.dataset.test, is_train=False, seed=self.seed)
        for metric in self.metrics.values():
            metric.reset()
        save = self.save_img or self.vdl is not None
        for i, batch in enumerate(self.test_loader):
            self.model.setup_input(batch)
            self.model.test_iter(self.metrics)
            if save and self.rank == 0:
                self.save_test_visuals(i, len(batch["lq"]))
        results = OrderedDict((name, float(m.accumulate())) for name, m in self.metrics.items())
        self.log(metrics_line(self.current_iter, results))
        if self.vdl is not None:
            for name, value in results.items():
                self.vdl.add_scalar(f"metric/{name}", value, step=self.current_iter)
        return results

    def save_test_visuals(self, batch_index, num):
        paths = self.model.get_image_paths()
        for j in range(num):
            base = os.path.splitext(os.path.basename(paths[j]))[0] if j < len(paths) else f"{batch_index:04d}_{j:04d}"
            strip = self.strip(j)
            if self.save_img:
                write_image(os.path.join(self.run_dir, "visual_test", f"iter_{self.current_iter}_{base}.png"), strip)
            if self.vdl is not None:
                self.vdl.add_image(f"visual_test/{base}", strip, step=self.current_iter, dataformats="HWC")
