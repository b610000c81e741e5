"""torch's mixed precision, one policy for training (engine/backend.py) and inference (deploy.py): autocast in bf16 or
fp16 over fp32 weights, with channels_last tensors for bf16 on a CPU, without which oneDNN's bf16 convolutions leave
their fast path (common_data/config/precision.py chooses the precision)."""
import numpy as np
import torch

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def wants_channels_last(precision, device):
    """Whether ``precision`` (fp32 / bf16 / fp16) on ``device`` runs in channels_last: bf16 on a CPU."""
    return precision == "bf16" and torch.device(device).type == "cpu"


def autocast(precision, device):
    """torch.autocast in ``precision``'s dtype on ``device``'s type; off for fp32."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def inference_fn(net, precision="fp32", device="cpu"):
    """np NCHW float32 -> np float32 through ``net`` on ``device`` ("cpu", "cuda:N"), no gradients, autocast in
    ``precision``. Running out of GPU memory raises MemoryError, as the CPU does (infer.py reports it per image)."""
    layout = torch.channels_last if wants_channels_last(precision, device) else torch.contiguous_format
    net = net.to(device, memory_format=layout)

    def run(x):
        x = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device, memory_format=layout)
        try:
            with torch.inference_mode(), autocast(precision, device):
                return net(x).float().cpu().contiguous().numpy()
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise MemoryError(f"out of memory on {device}") from None
    return run
