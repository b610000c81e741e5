"""Save weights and training checkpoints with torch.save, written atomically; load them without running code.

Layouts (flat, as PaddleGAN's trainer writes them; the same keys as paddle_impl/engine/checkpoint.py):
  iter_N_weight.pth      {net_name: state_dict}  (the EMA generator when EMA is on)
  iter_N_checkpoint.pth  {net_name: state_dict, optimizer_name: state_dict, 'lr_scheduler': state_dict,
                          'epoch': N (the iteration, PaddleGAN's key), 'ema': {'generator': state_dict},
                          'seed': data seed, 'rng': {'python', 'numpy', 'torch'}}
Every optimizer has its own torch scheduler, all following one schedule, so one 'lr_scheduler' state restores all.
Files load through ``torch.load(weights_only=True)`` (only tensors, numbers, strings, lists, tuples and dicts), or
``common_data.weights.files`` for a .safetensors generator / discriminator state dict; a Paddle pickle is told apart
by its bytes and never unpickled here.
"""
import os
import pickle
import re
import zipfile

import torch

from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError
from common_data.weights.files import checked_kind, read_safetensors, refused, unreadable

BACKEND = "torch"


def _save(obj, path):
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_weights(path, nets_state):
    """Write ``{net_name: state_dict}`` atomically."""
    _save(dict(nets_state), path)


def save_checkpoint(path, state):
    """Write a full training state (see the module docstring) atomically."""
    _save(dict(state), path)


def load_checkpoint(path, what="checkpoint"):
    """Read a PyTorch or .safetensors file as tensors, running nothing in it; a missing, corrupt, refused or
    Paddle file -> one-line UserError naming it."""
    path = os.fspath(path)
    if checked_kind(path, what, BACKEND) == "safetensors":
        state = {k: torch.from_numpy(v) for k, v in read_safetensors(path, what, BACKEND).items()}
    else:
        state = _torch_load(path, what)
    if not isinstance(state, dict):
        raise UserError(f"{what} {path} holds a {type(state).__name__}, not a dict of state dicts")
    return state


def _torch_load(path, what):
    """torch.load(weights_only=True) to CPU; what it refuses or cannot read -> one-line UserError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(refused(what, path, _refusal(e))) from None
    except (EOFError, ValueError, OSError, RuntimeError, TypeError, AttributeError, ImportError, IndexError,
            KeyError, zipfile.BadZipFile) as e:
        raise UserError(unreadable(what, path, e, "torch.save")) from None


def _refusal(error):
    """The global (or else the reason) in torch's multi-line weights_only message."""
    text = str(error)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    lines = [line.strip() for line in text.splitlines() if line.strip() and "Weights only load failed" not in line]
    return found.group(1) if found else (lines[0][:120] if lines else type(error).__name__)
