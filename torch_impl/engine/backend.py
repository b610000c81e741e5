"""The PyTorch adapter of the training core (common_data/training/backend.py): processes, generator, device, files.

Multi-process: ``torchrun --nproc_per_node 2 tools/main.py -c CFG --backend torch`` wraps the trainable nets in
DistributedDataParallel (gloo on CPU, NCCL on GPUs). Precision (common_data.config.precision): fp32, or torch.autocast in
bf16 (with channels_last on CPUs) or fp16 (with a GradScaler); master weights, optimizer state and checkpoints stay
fp32.
"""
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from common_data.config.precision import resolve_precision
from common_data.training.steps import EagerStep

from ..amp import AUTOCAST_DTYPES, wants_channels_last
from ..metrics import METRICS
from ..models import build_model
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .data import build_dataloader


class TorchBackend:
    """See common_data.training.backend.Backend for the contract of each method."""

    name = "torch"
    metrics = METRICS  # the metrics that need torch (LPIPSMetric)

    def __init__(self):
        self.local_rank = 0
        self.device = torch.device("cpu")

    # ---- processes
    def init_distributed(self):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1:
            self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                if backend == "nccl":
                    torch.cuda.set_device(self.local_rank)
                dist.init_process_group(backend=backend, init_method="env://")
        self.device = torch.device(f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu")
        if world <= 1:
            return 0, 1
        return dist.get_rank(), dist.get_world_size()

    def describe_device(self):
        return f"device {self.device}"

    @staticmethod
    def distributed():
        return dist.is_available() and dist.is_initialized()

    def broadcast(self, value):
        if not self.distributed():
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean_over_ranks(self, values):
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / dist.get_world_size()).tolist()

    def barrier(self):
        if self.distributed():
            dist.barrier()

    def shutdown(self):
        if self.distributed():
            dist.destroy_process_group()

    # ---- randomness
    def seed(self, seed):
        torch.manual_seed(seed)

    def rng_state(self):
        return {"torch": torch.get_rng_state()}

    def set_rng_state(self, state):
        if "torch" in state:
            torch.set_rng_state(state["torch"])

    # ---- model, data and precision
    def resolve_precision(self, requested, amp):
        """``--amp`` / ``amp: true`` without a precision: bf16 on a CPU, fp16 on a GPU (autocast either way)."""
        if requested is None and amp:
            requested = "bf16" if self.device.type == "cpu" else "fp16"
        cuda_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        return resolve_precision(requested, self.device.type, cuda_bf16=cuda_bf16)

    def build_model(self, model_cfg):
        return build_model(model_cfg)

    def place_model(self, model, precision):
        """Autocast in the precision's dtype; with bf16 on a CPU the nets and inputs are channels_last, without which
        oneDNN's bf16 convolutions leave their fast path (measured: 0.31 s vs 0.20 s per step on AMX)."""
        channels_last = wants_channels_last(precision.name, self.device)
        model.setup(self.device, AUTOCAST_DTYPES.get(precision.name), channels_last=channels_last)

    def wrap_distributed(self, model, cfg):
        """DDP around each trainable net; ``find_unused_parameters`` (default false) from the config."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        for name, net in model.nets.items():
            if any(p.requires_grad for p in net.parameters()):
                model.nets[name] = DistributedDataParallel(
                    net, device_ids=ids, find_unused_parameters=bool(cfg.get("find_unused_parameters", False)))

    def step_strategy(self, model, cfg, precision=None):
        """Eager (``model.to_static`` names the paddle backend's static-graph step); autocast is set by place_model."""
        return EagerStep()

    def build_dataloader(self, cfg_block, is_train, distributed, seed):
        return build_dataloader(cfg_block, is_train, distributed, seed)

    def to_numpy(self, tensor):
        return tensor.detach().float().cpu().numpy()

    # ---- files
    def load_checkpoint(self, path, what):
        return load_checkpoint(path, what)

    def save_checkpoint(self, path, state):
        save_checkpoint(path, state)

    def save_weights(self, path, nets_state):
        save_weights(path, nets_state)
