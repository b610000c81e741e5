"""What a backend supplies to the training core: the adapter interface (tensors, steps, files, processes, AMP).

Everything a run decides (its schedule, losses and their targets, when G and D step, EMA, resume, logging,
validation, stops) lives in the core and the models; an adapter only does what needs the framework.
"""
from typing import Any, Protocol

import numpy as np

from common_data.config.precision import Precision


class Backend(Protocol):
    """One per framework: ``paddle_impl.engine.backend.PaddleBackend``, ``torch_impl.engine.backend.TorchBackend``."""

    name: str  # "paddle" / "torch": the checkpoint suffix (common_data.weights.checkpoints) and the log's backend
    metrics: Any  # a Registry of the metrics that need this framework (LPIPSMetric), for validate.metrics

    # ---- processes
    def init_distributed(self) -> tuple[int, int]:
        """(rank, world_size) from the launcher's environment; initialises the process group once."""

    def describe_device(self) -> str:
        """The device the nets run on, for the run folder's first log line."""

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""

    def mean_over_ranks(self, values: list[float]) -> list[float]:
        """The mean of each value over the ranks (the same list on every rank)."""

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""

    def shutdown(self) -> None:
        """Leave the process group at the end of a run (no-op for one process)."""

    # ---- randomness
    def seed(self, seed: int) -> None:
        """Seed the framework's generator (the core seeds python and numpy)."""

    def rng_state(self) -> dict:
        """The framework generator's state for checkpoints ({} when the framework's generator is not used)."""

    def set_rng_state(self, state: dict) -> None:
        """Restore what ``rng_state`` returned (missing keys are left alone)."""

    # ---- model, data and precision
    def resolve_precision(self, requested: str | None, amp: bool) -> Precision:
        """The training precision for ``requested`` (common_data.config.precision's choices; None: ``auto``, or the
        backend's mixed precision when ``amp``)."""

    def build_model(self, model_cfg) -> Any:
        """The training model named by ``model.name``."""

    def place_model(self, model, precision: Precision) -> None:
        """Move nets and criteria to the device, make the EMA shadow, set AMP (before optimizers are built)."""

    def wrap_distributed(self, model, cfg) -> None:
        """Wrap the trainable nets for multi-process training (after weights are loaded)."""

    def step_strategy(self, model, cfg, precision: Precision | None = None) -> Any:
        """How a micro-batch trains (common_data.training.steps.EagerStep unless the backend has a faster one). A
        strategy with a ``precision`` attribute trains at that one instead (paddle: bf16 in its static step only)."""

    def build_dataloader(self, cfg_block, is_train: bool, distributed: bool, seed: int) -> Any:
        """A loader with ``batches_per_epoch`` and ``set_epoch``, yielding dicts of numpy arrays."""

    def to_numpy(self, tensor) -> np.ndarray:
        """A float32 numpy copy of a tensor (detached, on the host)."""

    # ---- files (restricted loading only: common_data.weights.files)
    def load_checkpoint(self, path: str, what: str) -> dict: ...

    def save_checkpoint(self, path: str, state: dict) -> None: ...

    def save_weights(self, path: str, nets_state: dict) -> None: ...
