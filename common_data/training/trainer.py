"""The training loop both backends run (PaddleGAN's trainer, Real-ESRGAN's --debug / --auto_resume), written once.

Iteration N (1-based) is one optimizer step over ``accumulate_steps`` micro-batches; the schedulers step after it,
so iteration N trains with the lr of scheduler step N - 1 (PaddleGAN, BasicSR). After iteration N: its log line
(every ``log_config.interval``), training strip, validation, then ``iter_N_weight`` + ``iter_N_checkpoint`` (the
schedule is common_data.training.run_plan's). Data order is a function of (seed, epoch, rank, position) and the seed is in
the checkpoint, so a resumed run sees the batches of an uninterrupted one.

Ctrl-C / SIGTERM: during an optimizer update or a save, the run finishes it first; then the last finished
iteration is saved (never a half-updated state) and KeyboardInterrupt propagates (exit 130 / 143).
Multi-process: each rank reads its shard, losses are averaged over the ranks, rank 0 alone logs, validates and
saves. How a micro-batch trains is the backend's step strategy (common_data/training/steps.py).
"""
import copy
import math
import os
import time
from collections import OrderedDict

import yaml

from common_data.config.loading import parse_min_max, to_plain
from common_data.data.datasets import IterLoader
from common_data.data.imageio import write_image
from common_data.errors import ConfigError, UserError
from common_data.training.host_rng import host_rng_state, seed_host, set_host_rng_state
from common_data.training.logfmt import TimeAverager, format_eta, log_line
from common_data.training.optimizer_record import RECORD_KEY, check_same_optimizer, optimizer_record
from common_data.training.options import Options
from common_data.training.run_folders import find_auto_resume, make_run_dir
from common_data.training.run_guard import (install_stop_handlers, last_stop_signal, lock_run_dir, restore_handlers,
                                            signal_label)
from common_data.training.run_log import RunLog
from common_data.training.run_folders import run_config_hint
from common_data.training.run_plan import RunPlan
from common_data.training.validation import Validator
from common_data.training.visualdl_log import open_visualdl
from common_data.weights.checkpoints import checkpoint_name, parse_checkpoint_name


class TrainingCore:
    """Builds model, data and run folder from a loaded config; ``train()`` / ``validate()``.

    A backend's ``engine/trainer.py`` subclasses it and sets ``backend_class`` (common_data.training.backend).
    """

    backend_class = None

    def __init__(self, cfg, args=None):
        self.backend = self.backend_class()
        self.args = args if isinstance(args, Options) else Options(args)
        self.cfg = cfg = copy.deepcopy(cfg)
        self.evaluate_only = bool(self.args.evaluate_only)
        self.plan = RunPlan.from_config(cfg, self.args.debug, self.evaluate_only)
        self.rank, self.world_size = self.backend.init_distributed()
        self.is_main = self.rank == 0
        self.run_log = RunLog(enabled=self.is_main)
        self.run_dir = self.run_lock = self.vdl = None
        output_dir, config_name = cfg.get("output_dir") or "output_dir", cfg.get("config_name", "run")

        resume = self.args.resume
        if self.args.auto_resume and not resume and not self.evaluate_only:
            resume, self.run_dir = self.backend.broadcast(
                find_auto_resume(output_dir, config_name, self.plan.debug, self.backend.name) if self.is_main
                else None)
            self.log(f"auto_resume: continuing {resume} in {self.run_dir}" if resume else
                     f"auto_resume: no iter_N_checkpoint in run folders of {config_name} under {output_dir}; "
                     f"starting fresh")
        resume_state = self.read_resume_state(resume) if resume else None
        seed = self.args.seed if self.args.seed is not None else cfg.get("seed")
        if seed is None and resume_state is not None:
            seed = resume_state.get("seed")
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "little") >> 1
        self.seed = int(self.backend.broadcast(int(seed)))
        seed_host(self.seed)
        self.backend.seed(self.seed)

        self.min_max = parse_min_max(cfg.get("min_max") or (0.0, 1.0))
        self.model = self.backend.build_model(cfg.model)
        self.model.log, self.model.min_max = self.log, self.min_max
        # --precision, else the config's precision:, else auto (--amp / amp: true: the backend's mixed precision)
        self.precision = self.backend.resolve_precision(self.args.precision or cfg.get("precision"),
                                                        bool(self.args.amp or cfg.get("amp")))
        self.backend.place_model(self.model, self.precision)
        self.loader, self.total_iters = None, self.plan.total_iters
        self.notes = []  # lines for the log once the run folder is open
        if not self.evaluate_only:
            if not (cfg.get("dataset") or {}).get("train"):
                raise ConfigError("dataset.train is missing: add a train block (e.g. gt_folder / lq_folder)")
            self.notes += self.plan.debug_train_block(cfg.dataset.train)
            # built before the schedulers: with epochs, its length sets total_iters
            self.loader = self.backend.build_dataloader(cfg.dataset.train, True, self.world_size > 1, self.seed)
            self.total_iters = self.plan.set_epoch_length(self.loader.batches_per_epoch)
            lr_cfg = dict(cfg.get("lr_scheduler") or {})
            if "iters_per_epoch" in lr_cfg:
                lr_cfg["iters_per_epoch"] = self.plan.steps_per_epoch(self.loader.batches_per_epoch)
            self.model.setup_optimizers(cfg.get("optimizer"), lr_cfg)
        self.strategy = self.backend.step_strategy(self.model, cfg, self.precision)
        self.precision = getattr(self.strategy, "precision", None) or self.precision
        self.validator = Validator(self)
        self.start_iter, self.loaded_iter = 1, None
        with run_config_hint(self.args.load or resume, getattr(self.args, "config_file", None)):
            if self.args.load:
                self.load(self.args.load)
            if resume_state is not None:
                self.apply_resume_state(resume_state, resume)
        if self.world_size > 1:
            self.backend.wrap_distributed(self.model, cfg)
        # the run folder is made only once the config, the model and the weights are known to be good
        self.open_run_dir(output_dir, config_name)
        self.vdl = open_visualdl(self.run_dir) if cfg.get("enable_visualdl") and self.is_main else None
        self.current_iter = self.start_iter - 1
        self.last_metrics = None
        self.last_done = self.start_iter - 1
        self._busy = self._stop_requested = self._stop_logged = False

    # ---- run folder and log ------------------------------------------------------------------------------------
    def open_run_dir(self, output_dir, config_name):
        if self.run_dir is None:
            self.run_dir = self.backend.broadcast(make_run_dir(output_dir, config_name, self.plan.debug)
                                                  if self.is_main else None)
        self.run_lock = lock_run_dir(self.run_dir) if self.is_main else None
        self.run_log.open(self.run_dir)
        if self.is_main:
            with open(os.path.join(self.run_dir, "config.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump(to_plain(self.cfg), f, sort_keys=False, allow_unicode=True)
        self.log(f"run folder: {self.run_dir} (backend {self.backend.name}, {self.backend.describe_device()}, "
                 f"{self.world_size} process(es), seed {self.seed})")
        self.log(self.precision.describe())
        if getattr(self.strategy, "why", ""):
            self.log(f"training step: {self.strategy.name} ({self.strategy.why})")
        for note in self.notes:
            self.log(note)

    def log(self, message):
        """Rank 0: a stamped line on stdout and in run_dir/log.txt (common_data.training.run_log)."""
        self.run_log.info(message)

    def close(self):
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None
        if self.vdl is not None:
            self.vdl.close()
            self.vdl = None
        self.run_log.close()

    # ---- weights and checkpoints -------------------------------------------------------------------------------
    def load(self, path):
        """``--load``: net weights (iter_N_weight / iter_N_checkpoint / BasicSR / PaddleGAN / safetensors files)."""
        state = self.backend.load_checkpoint(path, "weights (--load)")
        loaded = self.model.load_weights(state, path)
        parsed = parse_checkpoint_name(path)
        self.loaded_iter = state["epoch"] if isinstance(state.get("epoch"), int) else parsed[0] if parsed else None
        self.log(f"loaded weights of {', '.join(loaded)} from {path}")

    def read_resume_state(self, path):
        state = self.backend.load_checkpoint(path, "resume checkpoint")
        if not isinstance(state.get("epoch"), int):
            raise UserError(f"{path} is not a training checkpoint (no 'epoch' entry): it is a weight file; use --load "
                            f"for it, or pass an iter_N_checkpoint file to --resume")
        return state

    def apply_resume_state(self, state, path):
        """Nets, optimizers, schedulers, EMA and generators as saved; training continues at iteration N + 1."""
        if self.evaluate_only:
            self.model.load_weights(state, path)
        else:
            check_same_optimizer(state, self.cfg.get("optimizer"), path)
            self.strategy.load_training_state(self.model, state, path)
        rng = state.get("rng") or {}
        set_host_rng_state(rng)
        self.backend.set_rng_state(rng)
        self.start_iter = state["epoch"] + 1
        self.log(f"resumed from {path}: continuing at iteration {self.start_iter}")

    def save(self, it):
        """iter_N_weight and iter_N_checkpoint (rank 0), each written atomically."""
        if not self.is_main:
            return
        self._busy = True
        try:
            name = self.backend.name
            self.backend.save_weights(os.path.join(self.run_dir, checkpoint_name(it, "weight", name)),
                                      self.model.nets_state(for_weights=True))
            state = self.strategy.training_state(self.model)
            state.update(epoch=it, seed=self.seed, rng={**host_rng_state(), **self.backend.rng_state()},
                         **{RECORD_KEY: optimizer_record(self.cfg.get("optimizer"))})
            self.backend.save_checkpoint(os.path.join(self.run_dir, checkpoint_name(it, "checkpoint", name)), state)
            self.log(f"saved {checkpoint_name(it, 'checkpoint', name)} in {self.run_dir}")
        finally:
            self._busy = False

    # ---- training ----------------------------------------------------------------------------------------------
    def train(self):
        """Iterations start_iter..total_iters; returns the per-iteration loss dicts (means over micro-batches)."""
        if self.loader is None:
            raise UserError("train() needs a trainer built without evaluate_only")
        history = []
        if self.start_iter > self.total_iters:
            self.log(f"nothing to train: iteration {self.start_iter - 1} of {self.total_iters} is already done")
            return history
        self.log(f"training iterations {self.start_iter}..{self.total_iters} ({self.loader.batches_per_epoch} "
                 f"batches per epoch, accumulate_steps {self.plan.accumulate_steps})")
        loader = IterLoader(self.loader, start_batch=(self.start_iter - 1) * self.plan.accumulate_steps)
        reader_cost, batch_cost = TimeAverager(), TimeAverager()
        self.last_done = self.start_iter - 1
        previous = install_stop_handlers(self.on_stop_signal)
        started = time.time()
        try:
            with self.run_log.progress(self.start_iter - 1, self.total_iters) as advance:
                for it in range(self.start_iter, self.total_iters + 1):
                    self.current_iter = self.model.current_iter = it
                    self.model.steps_in_iteration = 0  # optimizer steps of this iteration, counted by model.step
                    start, lr = time.time(), self.model.current_lr
                    losses, samples = self.train_step(loader, reader_cost)
                    batch_cost.record(time.time() - start, samples)
                    history.append(losses)
                    self.after_iteration(it, lr, losses, reader_cost, batch_cost)
                    advance()
        except KeyboardInterrupt:
            self.save_interrupted()
            raise
        except Exception:
            if not self._stop_requested:
                raise
            self.save_interrupted()  # a stop signal also ends the loader's workers: their error means "stop"
            raise KeyboardInterrupt from None
        finally:
            self._busy = False
            restore_handlers(previous)
        self.backend.barrier()  # the others wait while rank 0 validates and saves the last iteration
        self.log(self.summary(time.time() - started))
        return history

    def summary(self, seconds):
        """The run's last line: iterations and wall time, the last validation next to bicubic's, the files."""
        trained = self.total_iters - self.start_iter + 1
        parts = [f"training finished at iteration {self.total_iters} ({trained} iterations in "
                 f"{format_eta(seconds)})"]
        if self.last_metrics:
            parts.append("validation " + ", ".join(f"{k} {v:.4f}" for k, v in self.last_metrics.items()))
            baseline = self.validator.baseline
            if baseline:
                parts.append("bicubic " + ", ".join(f"{k} {v:.4f}" for k, v in baseline.items()))
        parts.append(f"weights in {self.run_dir}")
        if self.validator.save_img and self.last_metrics is not None:
            parts.append(f"strips in {os.path.join(self.run_dir, 'visual_test')}")
        return "; ".join(parts)

    def train_step(self, loader, reader_cost):
        """One iteration: ``accumulate_steps`` micro-batches, the optimizer steps, EMA, schedulers ->
        (mean losses over micro-batches and ranks, images trained)."""
        model, steps = self.model, self.plan.accumulate_steps
        sums, samples = OrderedDict(), 0
        for k in range(steps):
            t0 = time.time()
            batch = next(loader)
            reader_cost.record(time.time() - t0)
            self._busy = True
            model.set_micro_step(k, steps)
            model.setup_input(batch)
            self.strategy.train_iter(model)
            samples += len(batch["lq"])
            for name, value in model.get_current_losses().items():
                sums[name] = sums.get(name, 0.0) + value / steps
        model.end_iteration()
        model.step_schedulers()
        self.last_done = self.current_iter
        self._busy = False
        if self._stop_requested:
            raise KeyboardInterrupt
        losses = sums
        if self.world_size > 1 and sums:
            losses = OrderedDict(zip(sums, self.backend.mean_over_ranks(list(sums.values()))))
        for name, value in losses.items():
            if not math.isfinite(value):
                raise UserError(f"iteration {self.current_iter}: loss {name} is {value} (not finite); training "
                                f"diverged - lower lr_scheduler.learning_rate or the loss weights, or check the data; "
                                f"the checkpoints saved so far are untouched")
        return losses, samples * self.world_size

    def after_iteration(self, it, lr, losses, reader_cost, batch_cost):
        """Log line, training strip, validation and snapshot of iteration ``it``, as the run plan says."""
        if self.plan.log_due(it):
            self.log(log_line(it, self.total_iters, lr, losses, batch_cost.average(), reader_cost.average(),
                              batch_cost.ips()))
            reader_cost.reset()
            batch_cost.reset()
            if self.vdl is not None:
                for name, value in losses.items():
                    self.vdl.add_scalar(name, value, step=it)
                self.vdl.add_scalar("lr", lr, step=it)
                if getattr(self.model, "loss_stage", None) is not None:  # model.loss_stages: 1-based stage number
                    self.vdl.add_scalar("loss_stage", self.model.loss_stage + 1, step=it)
        if self.plan.visual_interval and it % self.plan.visual_interval == 0 and self.is_main:
            strip = self.validator.strip()
            if strip is not None:
                write_image(os.path.join(self.run_dir, "visual_train", f"iter_{it}.png"), strip)
        if self.plan.validate_due(it):
            self.validate(it)
        if self.plan.snapshot_due(it):
            self.save(it)

    # ---- stops -------------------------------------------------------------------------------------------------
    def on_stop_signal(self, signum, frame):
        if self._busy and not self._stop_requested:
            self._stop_requested = self._stop_logged = True
            self.log(f"{signal_label(signum)}: stopping after this iteration's optimizer step (send it again to "
                     f"stop at once)")
            return
        self._stop_requested = True
        raise KeyboardInterrupt

    def save_interrupted(self):
        signum = last_stop_signal()
        if signum is not None and not self._stop_logged:  # a signal outside an update stops at once, unlogged
            self.log(f"stopped by {signal_label(signum)}")
        done = self.last_done
        untouched = self.model.steps_in_iteration == 0 or done == self.current_iter
        saved = os.path.exists(os.path.join(self.run_dir, checkpoint_name(done, "checkpoint", self.backend.name)))
        if done >= self.start_iter and untouched:
            if not saved:
                self.save(done)
            self.log(f"interrupted: {checkpoint_name(done, 'checkpoint', self.backend.name)} is in {self.run_dir}; "
                     f"continue with --resume")
        elif not untouched:
            self.log(f"interrupted inside iteration {self.current_iter} after an optimizer step: not saving a "
                     f"half-updated state; resume from the last iter_N_checkpoint")
        else:
            self.log("interrupted: no finished iteration to save")

    # ---- validation --------------------------------------------------------------------------------------------
    def validate(self, it=None):
        """Validate the (EMA) generator on dataset.test as of iteration ``it``; rank 0 returns ``{metric: value}``,
        the others {}."""
        if it is None:
            it = self.loaded_iter or self.current_iter
        results = self.validator.run(it) if self.is_main else OrderedDict()
        self.backend.barrier()
        self.last_metrics = results
        return results
