"""The Paddle adapter of the training core (common_data/training/backend.py): processes, generator, device, files.

Multi-process: ``python -m paddle.distributed.launch --nproc_per_node 2 tools/main.py -c CFG`` wraps the nets in
paddle.DataParallel (gloo on the CPU build of paddle, NCCL on GPUs). bf16 trains in the static oneDNN step only
(``auto`` picks it on AMX / AVX512-BF16 CPUs); the eager step trains fp32 (paddle's eager autocast is a no-op on CPUs).
"""
import paddle

from common_data.errors import ConfigError, UserError, first_line
from common_data.config.precision import Precision, check_precision, onednn_bf16_capable, resolve_precision

from ..metrics import METRICS
from ..models import build_model
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .data import build_dataloader
from .static_step import choose_step


class PaddleBackend:
    """See common_data.training.backend.Backend for the contract of each method."""

    name = "paddle"
    metrics = METRICS  # the metrics that need paddle (LPIPSMetric)

    # ---- processes
    def init_distributed(self):
        env = paddle.distributed.ParallelEnv()
        if env.world_size <= 1:
            return 0, 1
        if not paddle.distributed.is_initialized():
            try:
                paddle.distributed.init_parallel_env()
            except Exception as e:  # noqa: BLE001 - any failure here means the processes cannot talk
                raise UserError(f"multi-process training: paddle.distributed.init_parallel_env failed "
                                f"({type(e).__name__}: {first_line(e)}); run one process with python tools/main.py"
                                ) from None
        return paddle.distributed.get_rank(), paddle.distributed.get_world_size()

    def describe_device(self):
        return f"device {paddle.get_device()}"

    @staticmethod
    def distributed():
        return paddle.distributed.is_initialized() and paddle.distributed.get_world_size() > 1

    def broadcast(self, value):
        if not self.distributed():
            return value
        box = [value]
        paddle.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def mean_over_ranks(self, values):
        t = paddle.to_tensor(values, dtype="float32")
        paddle.distributed.all_reduce(t)
        return (t / paddle.distributed.get_world_size()).numpy().tolist()

    def barrier(self):
        if self.distributed():
            paddle.distributed.barrier()

    def shutdown(self):
        """Nothing to do: paddle's parallel env ends with the process."""

    # ---- randomness
    def seed(self, seed):
        paddle.seed(seed)

    def rng_state(self):
        return {}  # paddle's generator is only used to initialise weights, before any checkpoint

    def set_rng_state(self, state):
        """Nothing to restore (see rng_state)."""

    # ---- model, data and precision
    def resolve_precision(self, requested, amp):
        """The CPU's choice (``--amp`` / ``amp: true`` mean auto); bf16 needs oneDNN's bf16 kernels (AVX-512) and
        trains in the static step only (step_strategy settles it); fp16 and GPUs train fp32 here."""
        name, on_cpu = check_precision(requested or "auto"), paddle.device.get_device() == "cpu"
        if name == "fp16" or (name == "bf16" and not on_cpu):
            raise ConfigError(f"precision {name}: the paddle backend trains fp32, or bf16 on a CPU; use --backend "
                              f"torch for {name} here, or precision auto / fp32")
        if name == "bf16" and not onednn_bf16_capable():
            raise ConfigError("precision bf16: oneDNN's bf16 kernels need AVX-512, which this CPU lacks; use fp32")
        if not on_cpu:
            return Precision("fp32", "the paddle backend trains fp32 on a GPU; --backend torch trains fp16 there", name)
        return resolve_precision(name, "cpu")

    def build_model(self, model_cfg):
        return build_model(model_cfg)

    def place_model(self, model, precision):
        """Nothing to move: paddle places tensors on its default device; the model made its EMA shadow."""

    def wrap_distributed(self, model, cfg):
        """paddle.DataParallel around every net (rank 0's weights are broadcast; gradients all-reduced).

        ``find_unused_parameters`` defaults to true for models with a discriminator: it runs twice (real and
        fake) before one backward and is frozen during the generator's step, which paddle's reducer only
        accepts in that mode (the gradients then equal an explicit all-reduce mean of the ranks' gradients).
        """
        if model.to_static is True:
            raise ConfigError("model.to_static trains one process only; set -o model.to_static=false for "
                              "multi-process training")
        find_unused = cfg.get("find_unused_parameters")
        find_unused = len(model.nets) > 1 if find_unused is None else bool(find_unused)
        for name, net in model.nets.items():
            model.nets[name] = paddle.DataParallel(net, find_unused_parameters=find_unused)

    def step_strategy(self, model, cfg, precision=None):
        """``model.to_static``: the static-graph + oneDNN step where asked or, for auto, where it fits (engine/
        static_step.py's choose_step), else eager; bf16 trains in the static step only."""
        return choose_step(model, cfg, multi_process=self.distributed(), precision=precision)

    def build_dataloader(self, cfg_block, is_train, distributed, seed):
        return build_dataloader(cfg_block, is_train=is_train, distributed=distributed, seed=seed)

    def to_numpy(self, tensor):
        return tensor.detach().astype("float32").numpy()

    # ---- files
    def load_checkpoint(self, path, what):
        return load_checkpoint(path, what)

    def save_checkpoint(self, path, state):
        save_checkpoint(path, state)

    def save_weights(self, path, nets_state):
        save_weights(path, nets_state)
